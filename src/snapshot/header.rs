//! What a dump is, read from its first bytes (never its name): age-encrypted or not,
//! zstd- or gzip-compressed or not, pg_dump custom, tar or directory format, plain SQL of
//! pg_dump or mysqldump/mariadb-dump; and the server version its own header records,
//! which picks the sandbox image.

use std::io::Read;

use crate::engine::kind::Engine;

/// How much of a dump is read to identify it.
pub const PEEK_BYTES: usize = 4 << 20;

/// What the first bytes of a dump say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DumpHeader {
    /// `pg_dump custom`, `pg_dump tar`, `tar of a pg_dump directory`, `pg_dump plain SQL`,
    /// `mysqldump SQL`, `age-encrypted`, or `unknown`.
    pub format: String,
    /// `zstd`, `gzip` or `none`.
    pub compression: &'static str,
    pub engine: Option<Engine>,
    /// The server's version as the dump records it (`15.14 (Debian 15.14-0+deb12u1)`,
    /// `10.11.6-MariaDB-0+deb12u1`).
    pub server_version: Option<String>,
}

impl DumpHeader {
    /// The server series (`15`, `10.11`, `8.0`), which names the sandbox image.
    pub fn series(&self) -> Option<String> {
        let v = self.server_version.as_deref()?;
        series_of(self.engine?, v)
    }

    pub fn encrypted(&self) -> bool {
        self.format == "age-encrypted"
    }
}

/// The release series of a server version: PostgreSQL 10 and later by their first
/// number, older ones and MySQL/MariaDB by their first two.
pub fn series_of(engine: Engine, version: &str) -> Option<String> {
    let nums: Vec<&str> = version
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|p| !p.is_empty())
        .take(2)
        .collect();
    let first: u32 = nums.first()?.parse().ok()?;
    match engine {
        Engine::Postgres if first >= 10 => Some(first.to_string()),
        _ => Some(format!("{first}.{}", nums.get(1)?)),
    }
}

/// Identifies a dump from its first bytes (as many as [`PEEK_BYTES`], fewer if it is
/// shorter).
pub fn identify(prefix: &[u8]) -> DumpHeader {
    if prefix.starts_with(b"age-encryption.org/") {
        return DumpHeader {
            format: "age-encrypted".into(),
            compression: "unknown",
            ..Default::default()
        };
    }
    let (plain, compression) = if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        (
            partial(zstd::stream::read::Decoder::new(prefix).ok()),
            "zstd",
        )
    } else if prefix.starts_with(&[0x1f, 0x8b]) {
        (partial(Some(flate2::read::GzDecoder::new(prefix))), "gzip")
    } else {
        (prefix.to_vec(), "none")
    };
    let mut h = read_plain(&plain);
    h.compression = compression;
    h
}

/// As much as a decoder gives of a cut-off stream.
fn partial<R: Read>(r: Option<R>) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(mut r) = r else {
        return out;
    };
    let mut buf = [0u8; 64 * 1024];
    while out.len() < PEEK_BYTES {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

fn read_plain(p: &[u8]) -> DumpHeader {
    if p.starts_with(b"PGDMP") {
        return DumpHeader {
            format: "pg_dump custom".into(),
            engine: Some(Engine::Postgres),
            server_version: pg_archive_version(p),
            ..Default::default()
        };
    }
    if p.len() >= 262 && &p[257..262] == b"ustar" {
        return read_tar(p);
    }
    let text = String::from_utf8_lossy(&p[..p.len().min(64 * 1024)]);
    let mut h = DumpHeader {
        format: "unknown".into(),
        ..Default::default()
    };
    for line in text.lines().take(60) {
        if line.starts_with("-- PostgreSQL database dump") {
            h.format = "pg_dump plain SQL".into();
            h.engine = Some(Engine::Postgres);
        } else if let Some(v) = line.strip_prefix("-- Dumped from database version ") {
            h.engine = Some(Engine::Postgres);
            h.format = "pg_dump plain SQL".into();
            h.server_version = Some(v.trim().to_string());
        } else if line.starts_with("-- MariaDB dump") || line.starts_with("-- MySQL dump") {
            h.format = "mysqldump SQL".into();
            h.engine.get_or_insert(if line.contains("MariaDB") {
                Engine::Mariadb
            } else {
                Engine::Mysql
            });
        } else if let Some(v) = line.strip_prefix("-- Server version") {
            let v = v.trim().to_string();
            h.format = "mysqldump SQL".into();
            h.engine = Some(if v.contains("MariaDB") {
                Engine::Mariadb
            } else {
                Engine::Mysql
            });
            h.server_version = Some(v);
        }
    }
    h
}

/// A tar: pg_dump's tar format (its `toc.dat` first), or a tar of a directory-format
/// dump (its `toc.dat` anywhere in it). The version is in `toc.dat`'s header.
fn read_tar(p: &[u8]) -> DumpHeader {
    let mut at = 0usize;
    let mut first = true;
    while at + 512 <= p.len() {
        let hdr = &p[at..at + 512];
        if hdr.iter().all(|b| *b == 0) {
            break;
        }
        let name = cstr(&hdr[..100]);
        let size = u64::from_str_radix(cstr(&hdr[124..136]).trim(), 8).unwrap_or(0) as usize;
        let body = at + 512;
        let base = name
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        if base == "toc.dat" && p.len() > body + 5 && p[body..].starts_with(b"PGDMP") {
            return DumpHeader {
                format: if first && name == "toc.dat" {
                    "pg_dump tar".into()
                } else {
                    "tar of a pg_dump directory".into()
                },
                engine: Some(Engine::Postgres),
                server_version: pg_archive_version(&p[body..]),
                ..Default::default()
            };
        }
        first = false;
        at = body + size.div_ceil(512) * 512;
    }
    DumpHeader {
        format: "tar without a pg_dump toc.dat in its first MiBs".into(),
        ..Default::default()
    }
}

fn cstr(b: &[u8]) -> &str {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    std::str::from_utf8(&b[..end]).unwrap_or_default()
}

/// The server version in a pg_dump archive's header (`ReadHead` in pg_backup_archiver.c):
/// after the magic, the archive version, int and offset sizes and format, the
/// compression, the creation time and the database name.
fn pg_archive_version(p: &[u8]) -> Option<String> {
    let mut r = Cursor { p, at: 5 };
    let (vmaj, vmin) = (r.byte()?, r.byte()?);
    let _vrev = r.byte()?;
    let version = (vmaj as u32) << 8 | vmin as u32;
    let int_size = r.byte()? as usize;
    let _off_size = r.byte()?;
    let _format = r.byte()?;
    if version >= 0x010f {
        r.byte()?; // compression algorithm
    } else if version >= 0x0104 {
        r.int(int_size)?; // compression level
    } else if version >= 0x0102 {
        r.byte()?;
    }
    if version < 0x010a {
        return None;
    }
    for _ in 0..7 {
        r.int(int_size)?; // creation time
    }
    r.string(int_size)?; // database name
    r.string(int_size)
}

struct Cursor<'a> {
    p: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.p.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// pg_dump's integers: a sign byte, then `size` bytes, least significant first.
    fn int(&mut self, size: usize) -> Option<i64> {
        if size == 0 || size > 8 {
            return None;
        }
        let sign = self.byte()?;
        let mut v: i64 = 0;
        for i in 0..size {
            v |= (self.byte()? as i64) << (8 * i);
        }
        Some(if sign != 0 { -v } else { v })
    }

    fn string(&mut self, size: usize) -> Option<String> {
        let n = self.int(size)?;
        if n < 0 {
            return Some(String::new());
        }
        let n = n as usize;
        let s = self.p.get(self.at..self.at + n)?;
        self.at += n;
        Some(String::from_utf8_lossy(s).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PostgreSQL 15 custom-format header, as pg_dump 15 writes it (archive 1.14).
    fn pg15_header() -> Vec<u8> {
        let mut v = b"PGDMP".to_vec();
        v.extend([1, 14, 0, 4, 8, 1]);
        let int = |v: &mut Vec<u8>, x: i32| {
            v.push(if x < 0 { 1 } else { 0 });
            v.extend((x.unsigned_abs()).to_le_bytes());
        };
        int(&mut v, 0); // compression
        for x in [26, 1, 18, 30, 10, 126, 0] {
            int(&mut v, x);
        }
        for s in [
            "shop",
            "15.14 (Debian 15.14-0+deb12u1)",
            "15.14 (Debian 15.14-0+deb12u1)",
        ] {
            int(&mut v, s.len() as i32);
            v.extend(s.as_bytes());
        }
        v.extend([0u8; 100]);
        v
    }

    #[test]
    fn custom_format_and_its_version() {
        let h = identify(&pg15_header());
        assert_eq!(h.format, "pg_dump custom");
        assert_eq!(h.engine, Some(Engine::Postgres));
        assert_eq!(h.series().as_deref(), Some("15"));
        // What a peek holds: the first part of a stream of many blocks.
        let mut dump = pg15_header();
        let mut x: u32 = 1;
        dump.extend((0..600_000).map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        }));
        let z = zstd::encode_all(&dump[..], 3).unwrap();
        let h = identify(&z[..z.len() / 2]);
        assert_eq!((h.compression, h.series().as_deref()), ("zstd", Some("15")));
    }

    #[test]
    fn plain_sql_of_both_families() {
        let pg = b"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 13.16 (Debian 13.16-0+deb11u1)\n-- Dumped by pg_dump version 15.14\n";
        let h = identify(pg);
        assert_eq!(
            (h.engine, h.series().as_deref()),
            (Some(Engine::Postgres), Some("13"))
        );
        let my = b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n-- Host: 127.0.0.1    Database: shop\n-- ------------------------------------------------------\n-- Server version\t10.11.6-MariaDB-0+deb12u1\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, my).unwrap();
        let h = identify(&gz.finish().unwrap());
        assert_eq!(
            (h.engine, h.series().as_deref(), h.compression),
            (Some(Engine::Mariadb), Some("10.11"), "gzip")
        );
        let mysql =
            b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n-- Server version\t8.0.36\n";
        assert_eq!(identify(mysql).series().as_deref(), Some("8.0"));
        assert_eq!(identify(b"hello world").engine, None);
        assert!(identify(b"age-encryption.org/v1\n-> X25519 abc\n").encrypted());
    }

    #[test]
    fn tars_of_pg_dumps() {
        let tar = |entries: &[(&str, Vec<u8>)]| {
            let mut out = Vec::new();
            for (name, body) in entries {
                let mut h = [0u8; 512];
                h[..name.len()].copy_from_slice(name.as_bytes());
                let size = format!("{:011o}\0", body.len());
                h[124..136].copy_from_slice(size.as_bytes());
                h[257..262].copy_from_slice(b"ustar");
                out.extend(h);
                out.extend(body);
                out.resize(out.len().div_ceil(512) * 512, 0);
            }
            out
        };
        let t = tar(&[("toc.dat", pg15_header()), ("3001.dat", b"1\n".to_vec())]);
        let h = identify(&t);
        assert_eq!(
            (h.format.as_str(), h.series().as_deref()),
            ("pg_dump tar", Some("15"))
        );
        let d = tar(&[
            ("shop/", vec![]),
            ("shop/3001.dat.gz", vec![7; 700]),
            ("shop/toc.dat", pg15_header()),
        ]);
        let h = identify(&d);
        assert_eq!(
            (h.format.as_str(), h.series().as_deref()),
            ("tar of a pg_dump directory", Some("15"))
        );
    }

    #[test]
    fn series() {
        assert_eq!(
            series_of(Engine::Postgres, "9.6.24").as_deref(),
            Some("9.6")
        );
        assert_eq!(
            series_of(Engine::Postgres, "17.2 (Debian)").as_deref(),
            Some("17")
        );
        assert_eq!(
            series_of(Engine::Mariadb, "11.8.3-MariaDB").as_deref(),
            Some("11.8")
        );
        assert_eq!(series_of(Engine::Mariadb, "garbage"), None);
    }
}
