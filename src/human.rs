//! How sizes, durations and rates read for people: `1.5 MiB`, `3.2s`, `4m05s`, `12.5 MB/s`.

/// Megabytes (10^6 bytes) per second over `ms` milliseconds; none for instant stages.
pub fn throughput_mb_s(bytes: u64, ms: u64) -> Option<f64> {
    (ms >= 1 && bytes > 0).then(|| bytes as f64 / 1e6 / (ms as f64 / 1000.0))
}

/// Human-readable size: 1.5 MiB.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Human-readable duration: 850ms, 3.2s, 4m05s.
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_ms(850), "850ms");
        assert_eq!(human_ms(125_000), "2m05s");
        assert_eq!(throughput_mb_s(0, 10), None);
        assert_eq!(throughput_mb_s(2_000_000, 1000), Some(2.0));
    }
}
