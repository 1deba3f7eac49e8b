//! Durations and byte sizes as people write them in drill files ("90s", "2GiB").

use std::time::Duration;

/// Parses "30s", "5m", "1h 30m", "250ms". Zero is refused: a zero timeout is a typo.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        format!("`{s}` is not a duration ({e}); write e.g. \"90s\", \"5m\" or \"2h\"")
    })?;
    if d.is_zero() {
        return Err(format!(
            "`{s}` is zero; give a positive duration such as \"30s\""
        ));
    }
    Ok(d)
}

/// Parses "512MiB", "2GiB", "1.5 GB", "1048576" into bytes.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. \"512MiB\" or \"2GiB\""))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024.0f64.powi(4),
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}`; use B, KiB, MiB, GiB, TiB (or kB, MB, GB, TB)"
            ))
        }
    };
    Ok((n * mult).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_byte_size("512 MiB").unwrap(), 512 << 20);
        assert_eq!(parse_byte_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_byte_size("100").unwrap(), 100);
        assert!(parse_byte_size("lots").is_err());
        assert!(parse_byte_size("3 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
