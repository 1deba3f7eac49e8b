//! What the restored server's own log says of its recovery: the WAL it restored, where
//! and why it stopped, the timeline it chose, and what ended it early.

use super::wal::{Lsn, SegmentName};

/// A recovery, as the server logged it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryLog {
    /// Segments restored from the archive, in order.
    pub restored: Vec<SegmentName>,
    /// `recovery stopping before commit of transaction 745, time 2026-…`.
    pub stopping: Option<String>,
    /// `consistent recovery state reached at 0/…`.
    pub consistent_at: Option<Lsn>,
    /// `redo done at 0/…`.
    pub redo_done: Option<Lsn>,
    /// `last completed transaction was at log time …`.
    pub last_transaction: Option<String>,
    /// `selected new timeline ID: 2`.
    pub new_timeline: Option<u32>,
    /// The server's own reasons for ending replay where it did: an invalid record (a
    /// damaged segment), a missing one.
    pub ends: Vec<String>,
    /// FATAL and PANIC messages.
    pub fatal: Vec<String>,
    /// `recovery ended before configured recovery target was reached`.
    pub ended_before_target: bool,
}

/// Reads a server log (PostgreSQL's stderr, `… [pid] LOG:  message`).
pub fn parse(log: &str) -> RecoveryLog {
    let mut r = RecoveryLog::default();
    for line in log.lines() {
        let Some((level, msg)) = message(line) else {
            continue;
        };
        let msg = msg.trim();
        match level {
            "FATAL" | "PANIC" => {
                if msg.contains("recovery ended before configured recovery target was reached") {
                    r.ended_before_target = true;
                }
                r.fatal.push(msg.to_string());
            }
            "LOG" => {
                if let Some(rest) = msg.strip_prefix("restored log file \"") {
                    if let Some(n) = rest.split('"').next().and_then(SegmentName::parse) {
                        r.restored.push(n);
                    }
                } else if msg.starts_with("recovery stopping ") {
                    r.stopping = Some(msg.to_string());
                } else if let Some(rest) = msg.strip_prefix("consistent recovery state reached at ")
                {
                    r.consistent_at = Lsn::parse(rest.split_whitespace().next().unwrap_or(""));
                } else if let Some(rest) = msg.strip_prefix("redo done at ") {
                    r.redo_done = Lsn::parse(rest.split_whitespace().next().unwrap_or(""));
                } else if let Some(rest) =
                    msg.strip_prefix("last completed transaction was at log time ")
                {
                    r.last_transaction = Some(rest.trim().to_string());
                } else if let Some(rest) = msg.strip_prefix("selected new timeline ID: ") {
                    r.new_timeline = rest.trim().parse().ok();
                } else if is_end_of_wal(msg) {
                    r.ends.push(msg.to_string());
                }
            }
            _ => {}
        }
    }
    r
}

/// A time as the server logs it (`2026-12-01 09:29:39.880855+00`).
pub fn log_time(t: &str) -> Option<jiff::Timestamp> {
    let t = t.trim();
    t.parse().ok().or_else(|| format!("{t}:00").parse().ok())
}

/// The level and message of a server log line.
fn message(line: &str) -> Option<(&str, &str)> {
    for level in ["LOG", "FATAL", "PANIC"] {
        let tag = format!("] {level}:  ");
        if let Some(i) = line.find(&tag) {
            return Some((level, &line[i + tag.len()..]));
        }
        let tag = format!("{level}:  ");
        if line.starts_with(&tag) {
            return Some((level, &line[tag.len()..]));
        }
    }
    None
}

/// Messages with which replay meets the end of usable WAL.
fn is_end_of_wal(msg: &str) -> bool {
    [
        "invalid record length",
        "incorrect resource manager data checksum",
        "invalid magic number",
        "invalid resource manager ID",
        "record with incorrect prev-link",
        "unexpected pageaddr",
        "invalid contrecord length",
        "missing contrecord",
        "out-of-sequence timeline ID",
        "invalid info bits",
    ]
    .iter()
    .any(|m| msg.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovery_to_the_end_of_the_archive() {
        let log = "\
2026-12-01 09:30:23.900 UTC [123] LOG:  starting point-in-time recovery to earliest consistent point
2026-12-01 09:30:23.950 UTC [123] LOG:  restored log file \"000000010000000000000002\" from archive
2026-12-01 09:30:24.000 UTC [123] LOG:  consistent recovery state reached at 0/2000100
2026-12-01 09:30:24.100 UTC [123] LOG:  restored log file \"000000010000000000000003\" from archive
2026-12-01 09:30:24.120 UTC [123] LOG:  invalid record length at 0/304CBA8: wanted 24, got 0
2026-12-01 09:30:24.126 UTC [123] LOG:  redo done at 0/304CB70 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.11 s
2026-12-01 09:30:24.126 UTC [123] LOG:  last completed transaction was at log time 2026-12-01 09:29:39.880855+00
2026-12-01 09:30:24.198 UTC [123] LOG:  selected new timeline ID: 2
2026-12-01 09:30:24.229 UTC [123] LOG:  archive recovery complete
";
        let r = parse(log);
        assert_eq!(r.restored.len(), 2);
        assert_eq!(r.restored[1].to_string(), "000000010000000000000003");
        assert_eq!(r.redo_done, Lsn::parse("0/304CB70"));
        assert_eq!(r.consistent_at, Lsn::parse("0/2000100"));
        assert_eq!(r.new_timeline, Some(2));
        assert_eq!(
            r.last_transaction.as_deref(),
            Some("2026-12-01 09:29:39.880855+00")
        );
        assert_eq!(r.ends.len(), 1);
        assert!(!r.ended_before_target);
        assert_eq!(
            log_time(r.last_transaction.as_deref().unwrap()).map(|t| t.to_string()),
            Some("2026-12-01T09:29:39.880855Z".into())
        );
        assert_eq!(
            log_time("2026-12-01 09:29:39+05:30").map(|t| t.to_string()),
            Some("2026-12-01T03:59:39Z".into())
        );
        assert_eq!(log_time("yesterday"), None);
    }

    #[test]
    fn a_target_past_the_end_of_the_wal() {
        let log = "\
2026-12-01 09:30:24.120 UTC [123] LOG:  recovery stopping before commit of transaction 745, time 2026-12-01 09:29:40.1+00
2026-12-01 09:30:24.126 UTC [123] FATAL:  recovery ended before configured recovery target was reached
";
        let r = parse(log);
        assert!(r.ended_before_target);
        assert!(r.stopping.unwrap().contains("transaction 745"));
    }
}
