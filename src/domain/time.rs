//! Times are stored as milliseconds since the Unix epoch (UTC) in both databases; these helpers
//! turn them into what a reviewer reads.

/// "3m", "5h", "2d": a compact relative duration for dense tables.
pub fn compact_duration(ms: i64) -> String {
    let secs = ms.unsigned_abs() / 1000;
    let text = if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else if secs < 86_400 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86_400)
    };
    if ms < 0 {
        format!("-{text}")
    } else {
        text
    }
}

/// An ISO 8601 UTC timestamp ("2026-11-21T09:30:00Z") for `datetime` attributes and hovers.
pub fn iso_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Midnight UTC of a `YYYY-MM-DD` date, in milliseconds; `None` unless it is a real date.
pub fn parse_day(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Reject 31 April, 30 February and the like: the date must survive a round trip.
    (civil_from_days(days) == (y, m as u32, d as u32)).then_some(days * 86_400_000)
}

/// A proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_durations() {
        assert_eq!(compact_duration(0), "0s");
        assert_eq!(compact_duration(59_999), "59s");
        assert_eq!(compact_duration(60_000), "1m");
        assert_eq!(compact_duration(5 * 3_600_000 + 1), "5h");
        assert_eq!(compact_duration(3 * 86_400_000), "3d");
        assert_eq!(compact_duration(-120_000), "-2m");
    }

    #[test]
    fn iso_formatting_matches_known_instants() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_795_219_200_000), "2026-11-21T00:00:00Z");
        assert_eq!(iso_utc(-1000), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn days_parse_only_when_real() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(parse_day("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_day("2026-11-21"), Some(1_795_219_200_000));
        for bad in [
            "2026-02-29",
            "2026-04-31",
            "2026-13-01",
            "2026-00-10",
            "26-11-21",
            "2026/11/21",
            "2026-11-2x",
            "",
        ] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
    }
}
