//! Reads a mysqldump / mariadb-dump stream as it passes, without buffering it: counts the
//! rows each table's INSERT statements carry and sums a hash of each row's text (a content
//! checksum independent of row order, compared with a dump of the restored tables), notes the statements a sandbox restore must
//! neutralise (DEFINER clauses, GTID_PURGED), and checks the closing `-- Dump completed`
//! line that a complete dump ends with.
//!
//! Why: the server cannot share mysqldump's snapshot, so the only exact row counts of
//! what is *in the dump* come from the dump itself.

use std::collections::BTreeMap;

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use crate::error::{Error, Result};

/// How much of a line's start is kept to recognise it (`INSERT INTO `t` VALUES `, `USE`).
const HEAD: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// At the start of a line, collecting its head.
    LineHead,
    /// In the rest of a line we do not care about.
    SkipLine,
    /// Inside the VALUES list of an INSERT.
    Values,
}

/// Where a byte of a VALUES list stands relative to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowEdge {
    None,
    /// The `(` opening a row.
    Start,
    /// The `)` closing it.
    End,
}

/// The checksum of a table as the manifest records it.
pub fn checksum_text(rows: u64, sum: u64) -> String {
    format!("xxh3sum:{rows}:{sum:016x}")
}

/// Streaming scanner state.
pub struct DumpScanner {
    mode: Mode,
    head: Vec<u8>,
    database: Option<String>,
    table: Option<String>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    rows: BTreeMap<String, u64>,
    /// Per table, the wrapping sum of the XXH3 hashes of its rows' text.
    sums: BTreeMap<String, u64>,
    /// Inside a row of the VALUES list.
    in_row: bool,
    /// The hash of a row that spans chunks (a row within one chunk is hashed in one go).
    row: Option<Xxh3>,
    /// Rows and hash sum of the current INSERT, added to `rows` and `sums` when it ends:
    /// no map lookup per row.
    cur_rows: u64,
    cur_sum: u64,
    tables_seen: Vec<String>,
    definers: u64,
    gtid_purged: u64,
    tail: Vec<u8>,
    bytes: u64,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    /// Rows per `database.table`, for every table whose structure or data the dump holds.
    pub rows: BTreeMap<String, u64>,
    /// Per `database.table` with rows, the wrapping sum of its rows' XXH3 hashes.
    pub sums: BTreeMap<String, u64>,
    pub definers: u64,
    pub gtid_purged: u64,
}

impl std::fmt::Debug for DumpScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DumpScanner")
            .field("mode", &self.mode)
            .field("table", &self.table)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl crate::sandbox::OutputSink for DumpScanner {
    fn take(&mut self, chunk: &[u8]) {
        self.update(chunk);
    }
}

impl Default for DumpScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl DumpScanner {
    pub fn new() -> Self {
        DumpScanner {
            mode: Mode::LineHead,
            head: Vec::with_capacity(256),
            database: None,
            table: None,
            depth: 0,
            in_string: false,
            escaped: false,
            rows: BTreeMap::new(),
            sums: BTreeMap::new(),
            in_row: false,
            row: None,
            cur_rows: 0,
            cur_sum: 0,
            tables_seen: Vec::new(),
            definers: 0,
            gtid_purged: 0,
            tail: Vec::with_capacity(512),
            bytes: 0,
        }
    }

    /// A scanner for a dump that names no database (a dump of some tables of `database`).
    pub fn in_database(database: &str) -> Self {
        DumpScanner {
            database: Some(database.to_string()),
            ..Self::new()
        }
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        self.keep_tail(chunk);
        // Where the current row's bytes start in this chunk: rows are hashed a slice at a
        // time, not a byte at a time.
        let mut row_from = 0;
        let mut i = 0;
        while i < chunk.len() {
            match self.mode {
                Mode::LineHead => {
                    let b = chunk[i];
                    i += 1;
                    if b == b'\n' {
                        // MariaDB 10.x writes `INSERT INTO `t` VALUES` and then one row
                        // per line.
                        if self.head.starts_with(b"INSERT INTO ")
                            && self.head.trim_ascii_end().ends_with(b" VALUES")
                        {
                            let end = self.head.trim_ascii_end().len() - b" VALUES".len();
                            // `get`: in `INSERT INTO VALUES` the two overlap (fuzzing).
                            let name = parse_ident(
                                self.head
                                    .get(b"INSERT INTO ".len()..end)
                                    .unwrap_or_default(),
                            );
                            self.start_values(name);
                            continue;
                        }
                        self.end_head_line();
                    } else {
                        self.head.push(b);
                        if self.head.starts_with(b"INSERT INTO ") && b == b' ' {
                            if let Some(pos) = find(&self.head, b" VALUES ") {
                                let name = parse_ident(
                                    self.head
                                        .get(b"INSERT INTO ".len()..pos)
                                        .unwrap_or_default(),
                                );
                                self.start_values(name);
                                continue;
                            }
                        }
                        if self.head.len() >= HEAD {
                            self.inspect_head();
                            self.head.clear();
                            self.mode = Mode::SkipLine;
                        }
                    }
                }
                Mode::SkipLine => match memchr::memchr(b'\n', &chunk[i..]) {
                    Some(p) => {
                        i += p + 1;
                        self.mode = Mode::LineHead;
                    }
                    None => i = chunk.len(),
                },
                Mode::Values => {
                    if self.in_string && self.escaped {
                        // The byte after a backslash, whatever it is.
                        self.escaped = false;
                        i += 1;
                        continue;
                    }
                    // Jump to the next byte that can matter where we stand.
                    let rest = &chunk[i..];
                    let next = if self.in_string {
                        memchr::memchr2(b'\\', b'\'', rest)
                    } else if self.depth == 0 {
                        memchr::memchr3(b'\'', b'(', b';', rest)
                    } else {
                        memchr::memchr3(b'\'', b'(', b')', rest)
                    };
                    let Some(p) = next else {
                        i = chunk.len();
                        continue;
                    };
                    let at = i + p;
                    i = at + 1;
                    match self.values_byte(chunk[at]) {
                        RowEdge::Start => {
                            self.in_row = true;
                            row_from = at;
                        }
                        RowEdge::End if self.in_row => {
                            self.in_row = false;
                            let digest = match self.row.take() {
                                Some(mut h) => {
                                    h.update(&chunk[row_from..=at]);
                                    h.digest()
                                }
                                None => xxh3_64(&chunk[row_from..=at]),
                            };
                            self.cur_sum = self.cur_sum.wrapping_add(digest);
                        }
                        RowEdge::End | RowEdge::None => {}
                    }
                }
            }
        }
        if self.in_row {
            self.row
                .get_or_insert_with(Xxh3::new)
                .update(&chunk[row_from..]);
        }
    }

    /// Adds the finished INSERT's rows and hash sum to its table.
    fn end_insert(&mut self) {
        if let Some(t) = self.table.take() {
            if self.cur_rows > 0 {
                *self.rows.entry(t.clone()).or_insert(0) += self.cur_rows;
                let sum = self.sums.entry(t).or_insert(0);
                *sum = sum.wrapping_add(self.cur_sum);
            }
        }
        self.cur_rows = 0;
        self.cur_sum = 0;
    }

    fn keep_tail(&mut self, chunk: &[u8]) {
        const TAIL: usize = 256;
        if chunk.len() >= TAIL {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - TAIL..]);
        } else {
            self.tail.extend_from_slice(chunk);
            if self.tail.len() > TAIL {
                self.tail.drain(..self.tail.len() - TAIL);
            }
        }
    }

    fn qualified(&self, table: &str) -> String {
        match &self.database {
            Some(db) => format!("{db}.{table}"),
            None => table.to_string(),
        }
    }

    fn start_values(&mut self, table: String) {
        self.end_insert();
        let q = self.qualified(&table);
        self.rows.entry(q.clone()).or_insert(0);
        self.table = Some(q);
        self.head.clear();
        self.mode = Mode::Values;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
    }

    fn values_byte(&mut self, b: u8) -> RowEdge {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'\'' {
                self.in_string = false;
            }
            return RowEdge::None;
        }
        match b {
            b'\'' => self.in_string = true,
            b'(' => {
                self.depth += 1;
                if self.depth == 1 {
                    self.cur_rows += 1;
                    return RowEdge::Start;
                }
            }
            b')' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    return RowEdge::End;
                }
            }
            b';' if self.depth == 0 => {
                self.end_insert();
                self.mode = Mode::SkipLine;
            }
            _ => {}
        }
        RowEdge::None
    }

    fn end_head_line(&mut self) {
        self.inspect_head();
        self.head.clear();
    }

    /// Looks at a complete line head (or the first HEAD bytes of a long line).
    fn inspect_head(&mut self) {
        let line = String::from_utf8_lossy(&self.head).into_owned();
        let l = line.trim_end_matches('\r');
        if let Some(rest) = l.strip_prefix("USE ") {
            let name = rest.trim_end_matches(';');
            self.database = Some(parse_ident(name.as_bytes()));
        } else if let Some(rest) = l.strip_prefix("CREATE TABLE ") {
            let rest = rest.trim_start_matches("IF NOT EXISTS ");
            let end = rest.find(" (").unwrap_or(rest.len());
            let q = self.qualified(&parse_ident(&rest.as_bytes()[..end]));
            self.rows.entry(q.clone()).or_insert(0);
            self.tables_seen.push(q);
        }
        if l.contains("DEFINER=") {
            self.definers += l.matches("DEFINER=`").count() as u64;
        }
        if l.contains("GTID_PURGED") {
            self.gtid_purged += 1;
        }
    }

    /// Ends the scan. A dump without its closing `-- Dump completed` line, or cut inside
    /// an INSERT, is refused: it was cut short, whatever the tool's exit code said.
    pub fn finish(mut self) -> Result<ScanResult> {
        if self.mode == Mode::LineHead && !self.head.is_empty() {
            self.end_head_line();
        }
        if self.mode == Mode::Values {
            return Err(Error::backup(format!(
                "the dump ends inside an INSERT into {} after {} bytes: it was cut short",
                self.table.clone().unwrap_or_default(),
                self.bytes
            ))
            .with_hint(
                "the dump tool died or its output was truncated; nothing from this dump was kept",
            ));
        }
        let tail = String::from_utf8_lossy(&self.tail);
        if !tail.contains("-- Dump completed") {
            return Err(Error::backup(format!(
                "the dump lacks its closing `-- Dump completed` line after {} bytes: it is incomplete",
                self.bytes
            ))
            .with_hint("the dump tool stopped before the end (killed, out of disk, lost connection); nothing from this dump was kept"));
        }
        Ok(ScanResult {
            rows: self.rows,
            sums: self.sums,
            definers: self.definers,
            gtid_purged: self.gtid_purged,
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `` `a``b` `` → ``a`b``; unquoted names pass through.
fn parse_ident(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        inner.replace("``", "`")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "-- MariaDB dump 10.19\n\
CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop`;\n\
USE `shop`;\n\
CREATE TABLE `orders` (\n  `id` int NOT NULL\n) ENGINE=InnoDB;\n\
INSERT INTO `orders` VALUES (1,'a (b)'),(2,'it''s'),(3,'x\\');('),(4,0xDEADBEEF);\n\
INSERT INTO `orders` VALUES (5,NULL);\n\
CREATE TABLE `empty` (\n  `id` int\n);\n\
CREATE TABLE `we``ird` (`x` int);\n\
INSERT INTO `we``ird` VALUES (1),(2);\n\
/*!50003 CREATE*/ /*!50017 DEFINER=`app`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON orders FOR EACH ROW SET @x=1 */;;\n\
-- Dump completed on 2026-11-26 10:00:00\n";

    #[test]
    fn counts_rows_per_table_across_chunk_boundaries() {
        for chunk in [1usize, 2, 3, 7, 64, 4096] {
            let mut s = DumpScanner::new();
            for c in DUMP.as_bytes().chunks(chunk) {
                s.update(c);
            }
            let r = s.finish().unwrap();
            assert_eq!(r.rows.get("shop.orders"), Some(&5), "chunk {chunk}");
            assert_eq!(r.rows.get("shop.empty"), Some(&0));
            assert_eq!(r.rows.get("shop.we`ird"), Some(&2));
            assert_eq!(r.definers, 1);
        }
    }

    #[test]
    fn row_checksums_ignore_chunking_order_and_layout_but_not_values() {
        let sums = |dump: &str, chunk: usize| {
            let mut s = DumpScanner::new();
            for c in dump.as_bytes().chunks(chunk) {
                s.update(c);
            }
            s.finish().unwrap().sums
        };
        let a = "USE `d`;\nINSERT INTO `t` VALUES (1,'a(b)'),(2,'c\\'d');\n-- Dump completed\n";
        let b = "USE `d`;\nINSERT INTO `t` VALUES\n(2,'c\\'d'),\n(1,'a(b)');\n-- Dump completed\n";
        let c = "USE `d`;\nINSERT INTO `t` VALUES (1,'a(b)'),(2,'c\\'e');\n-- Dump completed\n";
        let want = sums(a, 4096);
        assert_eq!(want.len(), 1);
        for chunk in [1, 2, 5, 13] {
            assert_eq!(sums(a, chunk), want, "chunk {chunk}");
            assert_eq!(sums(b, chunk), want, "row order and layout, chunk {chunk}");
        }
        assert_ne!(sums(c, 3), want, "one changed character");
        let mut s = DumpScanner::in_database("d");
        s.update(b"INSERT INTO `t` VALUES (1,'a(b)'),(2,'c\\'d');\n-- Dump completed\n");
        assert_eq!(s.finish().unwrap().sums, want);
    }

    #[test]
    fn counts_mariadb_one_row_per_line_inserts() {
        let dump = "USE `d`;\nCREATE TABLE `t` (\n  `id` int\n);\nINSERT INTO `t` VALUES\n(1,'a\n(b'),\n(2,'c'),\n(3,'d');\n-- Dump completed on x\n";
        for chunk in [1usize, 5, 4096] {
            let mut s = DumpScanner::new();
            for c in dump.as_bytes().chunks(chunk) {
                s.update(c);
            }
            assert_eq!(
                s.finish().unwrap().rows.get("d.t"),
                Some(&3),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_dump_cut_mid_insert_is_refused() {
        let cut = &DUMP[..DUMP.find("(3,").unwrap()];
        let mut s = DumpScanner::new();
        s.update(cut.as_bytes());
        let e = s.finish().unwrap_err();
        assert!(
            e.message.contains("inside an INSERT into shop.orders"),
            "{e}"
        );
    }

    #[test]
    fn a_dump_without_its_trailer_is_refused() {
        let cut = &DUMP[..DUMP.find("-- Dump completed").unwrap()];
        let mut s = DumpScanner::new();
        s.update(cut.as_bytes());
        let e = s.finish().unwrap_err();
        assert!(e.message.contains("-- Dump completed"), "{e}");
    }

    #[test]
    fn long_lines_do_not_grow_memory() {
        let mut s = DumpScanner::new();
        s.update(b"USE `d`;\nINSERT INTO `t` VALUES ('");
        let big = vec![b'a'; 1 << 20];
        for _ in 0..8 {
            s.update(&big);
        }
        s.update(b"'),(2);\n-- Dump completed on x\n");
        assert!(s.head.capacity() <= 2 * HEAD);
        assert_eq!(s.finish().unwrap().rows.get("d.t"), Some(&2));
    }
}
