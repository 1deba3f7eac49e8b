//! WAL positions and segment names, and the archive's segments: what a gap in the WAL
//! between a backup and its recovery target is, computed from a listing of the archive.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A WAL position (`0/304CB70`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl Lsn {
    pub fn parse(s: &str) -> Option<Lsn> {
        let (hi, lo) = s.trim().split_once('/')?;
        let hi = u64::from_str_radix(hi, 16).ok()?;
        let lo = u64::from_str_radix(lo, 16).ok()?;
        (hi <= u32::MAX as u64 && lo <= u32::MAX as u64).then_some(Lsn((hi << 32) | lo))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// A WAL segment: its timeline and its number from the start of WAL, for a segment size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment {
    pub tli: u32,
    pub no: u64,
}

/// The three parts of a segment's file name, before the segment size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentName {
    pub tli: u32,
    pub log: u32,
    pub seg: u32,
}

impl SegmentName {
    /// `000000010000000000000003`, alone or at the start of an archived file's name
    /// (`…-<sha1>.gz`); not a `.backup`, `.history` or `.partial` file.
    pub fn parse(name: &str) -> Option<SegmentName> {
        let head = name.get(..24)?;
        if !head.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        match name.as_bytes().get(24) {
            None | Some(b'-') => {}
            _ => return None,
        }
        Some(SegmentName {
            tli: u32::from_str_radix(&head[..8], 16).ok()?,
            log: u32::from_str_radix(&head[8..16], 16).ok()?,
            seg: u32::from_str_radix(&head[16..], 16).ok()?,
        })
    }

    pub fn segment(self, seg_size: u64) -> Segment {
        Segment {
            tli: self.tli,
            no: u64::from(self.log) * per_log(seg_size) + u64::from(self.seg),
        }
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}{:08X}{:08X}", self.tli, self.log, self.seg)
    }
}

/// Segments per "log file" (the middle 8 hex digits of a name).
fn per_log(seg_size: u64) -> u64 {
    (0x1_0000_0000 / seg_size.max(1)).max(1)
}

impl Segment {
    pub fn of(tli: u32, lsn: Lsn, seg_size: u64) -> Segment {
        Segment {
            tli,
            no: lsn.0 / seg_size.max(1),
        }
    }

    pub fn name(self, seg_size: u64) -> SegmentName {
        let per = per_log(seg_size);
        SegmentName {
            tli: self.tli,
            log: (self.no / per) as u32,
            seg: (self.no % per) as u32,
        }
    }
}

/// The segments an archive holds, by timeline, and its timelines' history files.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    pub names: BTreeSet<SegmentName>,
    pub histories: BTreeSet<u32>,
    /// When the newest segment was written (the file's time), when the listing says.
    pub newest_at: Option<jiff::Timestamp>,
}

impl Archive {
    /// Adds a file of the listing (its name without directories, and its time).
    pub fn add(&mut self, file: &str, time: Option<jiff::Timestamp>) {
        if let Some(n) = SegmentName::parse(file) {
            let newer = self.names.last().is_none_or(|last| n > *last);
            self.names.insert(n);
            if newer {
                self.newest_at = time.or(self.newest_at);
            }
        } else if let Some(t) = file.strip_suffix(".history") {
            if let Ok(t) = u32::from_str_radix(t, 16) {
                self.histories.insert(t);
            }
        }
    }

    /// The segments of `tli`, numbered for `seg_size`.
    pub fn on(&self, tli: u32, seg_size: u64) -> BTreeSet<u64> {
        self.names
            .iter()
            .filter(|n| n.tli == tli)
            .map(|n| n.segment(seg_size).no)
            .collect()
    }

    /// The newest segment of `tli`.
    pub fn last_on(&self, tli: u32, seg_size: u64) -> Option<u64> {
        self.on(tli, seg_size).last().copied()
    }

    /// The highest timeline with segments.
    pub fn top_timeline(&self) -> Option<u32> {
        self.names.iter().map(|n| n.tli).max()
    }

    /// The runs of segments of `tli` missing from `from` to `to` (inclusive), as
    /// `(first, last)` segment numbers.
    pub fn missing(&self, tli: u32, from: u64, to: u64, seg_size: u64) -> Vec<(u64, u64)> {
        let have = self.on(tli, seg_size);
        let mut gaps = Vec::new();
        let mut open: Option<u64> = None;
        for no in from..=to {
            match (have.contains(&no), open) {
                (false, None) => open = Some(no),
                (true, Some(start)) => {
                    gaps.push((start, no - 1));
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(start) = open {
            gaps.push((start, to));
        }
        gaps
    }
}

/// A gap in the WAL, for messages: "between A and B; the archive is missing C (and N more)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The last segment before the gap, if the archive has one on this timeline.
    pub after: Option<SegmentName>,
    pub first_missing: SegmentName,
    pub last_missing: SegmentName,
    pub count: u64,
    /// The first segment after the gap.
    pub before: Option<SegmentName>,
}

impl Gap {
    pub fn new(archive: &Archive, tli: u32, (a, b): (u64, u64), seg_size: u64) -> Gap {
        let have = archive.on(tli, seg_size);
        let name = |no: u64| Segment { tli, no }.name(seg_size);
        Gap {
            after: have.range(..a).next_back().map(|&n| name(n)),
            first_missing: name(a),
            last_missing: name(b),
            count: b - a + 1,
            before: have.range(b + 1..).next().map(|&n| name(n)),
        }
    }
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = |s: &Option<SegmentName>, none: &str| {
            s.map(|s| s.to_string()).unwrap_or_else(|| none.to_string())
        };
        write!(
            f,
            "WAL gap between {} and {}; the archive is missing {}",
            end(&self.after, "the backup's start"),
            end(&self.before, "the archive's end"),
            self.first_missing
        )?;
        if self.count > 1 {
            write!(f, " to {} ({} segments)", self.last_missing, self.count)?;
        }
        Ok(())
    }
}

/// Segments by timeline, for a report: `000000010000000000000002 … 000000010000000000000009`.
pub fn range_text(first: &SegmentName, last: &SegmentName) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first} … {last}")
    }
}

/// The timelines an archive's segments are on, with their first and last segment.
pub fn timelines(archive: &Archive) -> BTreeMap<u32, (SegmentName, SegmentName)> {
    let mut m: BTreeMap<u32, (SegmentName, SegmentName)> = BTreeMap::new();
    for n in &archive.names {
        m.entry(n.tli)
            .and_modify(|(_, last)| *last = *n)
            .or_insert((*n, *n));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB16: u64 = 16 << 20;

    #[test]
    fn lsns_and_segments() {
        let l = Lsn::parse("0/304CB70").unwrap();
        assert_eq!(l.to_string(), "0/304CB70");
        let s = Segment::of(1, l, MB16);
        assert_eq!(s.name(MB16).to_string(), "000000010000000000000003");
        let big = Lsn::parse("1/2000000").unwrap();
        assert_eq!(
            Segment::of(2, big, MB16).name(MB16).to_string(),
            "000000020000000100000002"
        );
        // 64 MiB segments: 64 per log file.
        let n = SegmentName::parse("00000001000000010000003F").unwrap();
        assert_eq!(n.segment(64 << 20).no, 64 + 63);
        assert_eq!(n.segment(64 << 20).name(64 << 20), n);
        assert!(Lsn::parse("0/").is_none());
    }

    #[test]
    fn archived_names_and_other_files() {
        let mut a = Archive::default();
        for f in [
            "000000010000000000000001-fd7b6c7ac7647039d947201ac3757bc9a65b9fe8.gz",
            "000000010000000000000002.00000028.backup",
            "000000010000000000000002-28dbdb1d5f6996c7dec510f07aca3da13dadaa69",
            "000000010000000000000004-aa.zst",
            "000000010000000000000005.partial-bb.gz",
            "00000002.history",
            "archive.info",
        ] {
            a.add(f, None);
        }
        assert_eq!(a.on(1, MB16), [1, 2, 4].into_iter().collect());
        assert_eq!(a.histories, [2].into_iter().collect());
        assert_eq!(a.missing(1, 2, 4, MB16), vec![(3, 3)]);
        assert_eq!(a.missing(1, 1, 6, MB16), vec![(3, 3), (5, 6)]);
        let g = Gap::new(&a, 1, (3, 3), MB16);
        assert_eq!(
            g.to_string(),
            "WAL gap between 000000010000000000000002 and 000000010000000000000004; the archive is missing 000000010000000000000003"
        );
        let g = Gap::new(&a, 1, (5, 6), MB16);
        assert_eq!(
            g.to_string(),
            "WAL gap between 000000010000000000000004 and the archive's end; the archive is missing 000000010000000000000005 to 000000010000000000000006 (2 segments)"
        );
    }
}
