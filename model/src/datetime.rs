//! Parsing and formatting of bar timestamps. Everything is UTC.

use chrono::{DateTime, NaiveDate, Timelike};

use crate::candle::Timestamp;

/// A date or timestamp that [`parse_timestamp`] refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// Not one of the accepted formats, or not a valid date or time.
    #[error("cannot parse date `{0}` (expected YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or RFC 3339)")]
    BadDate(String),
    /// A timestamp is not a whole number of seconds.
    #[error("timestamp `{0}` is not a whole second")]
    SubSecond(String),
}

/// Formats a timestamp as RFC 3339 UTC (`2004-08-19T00:00:00Z`), or the raw number when
/// it is outside chrono's range.
pub fn format_ts(ts: Timestamp) -> String {
    // Every tick and candle on the wire carries a date: computing the civil date
    // directly is several times cheaper than chrono's format-string machinery.
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return match DateTime::from_timestamp(ts, 0) {
            Some(dt) => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            None => ts.to_string(),
        };
    }
    let mut out = String::with_capacity(20);
    let push2 = |out: &mut String, v: i64| {
        out.push((b'0' + (v / 10) as u8) as char);
        out.push((b'0' + (v % 10) as u8) as char);
    };
    push2(&mut out, y / 100);
    push2(&mut out, y % 100);
    out.push('-');
    push2(&mut out, m);
    out.push('-');
    push2(&mut out, d);
    out.push('T');
    push2(&mut out, secs / 3600);
    out.push(':');
    push2(&mut out, secs / 60 % 60);
    out.push(':');
    push2(&mut out, secs % 60);
    out.push('Z');
    out
}

/// (year, month, day) of a count of days since 1970-01-01 in the proleptic Gregorian
/// calendar (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The UTC calendar date of a timestamp.
pub fn utc_date(ts: Timestamp) -> Option<NaiveDate> {
    DateTime::from_timestamp(ts, 0).map(|dt| dt.date_naive())
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` (or with `T`), both meaning UTC, or an
/// RFC 3339 timestamp with any offset. Fractions of a second must be zero.
pub fn parse_timestamp(text: &str) -> Result<Timestamp, TimestampError> {
    let s = text.trim();
    let b = s.as_bytes();
    // Fast path for the two formats data files actually use; chrono's general parser
    // is several times slower and CSV loads parse one date per row.
    if b.len() == 10 || (b.len() == 19 && (b[10] == b' ' || b[10] == b'T')) {
        if let Some(ts) = parse_plain(b) {
            return Ok(ts);
        }
        return Err(TimestampError::BadDate(text.to_string()));
    }
    let rfc = DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .map_err(|_| TimestampError::BadDate(text.to_string()))?;
    if rfc.nanosecond() != 0 {
        return Err(TimestampError::SubSecond(text.to_string()));
    }
    Ok(rfc.timestamp())
}

/// `YYYY-MM-DD` or `YYYY-MM-DD?HH:MM:SS`, already length-checked.
fn parse_plain(b: &[u8]) -> Option<Timestamp> {
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in b.get(range)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = if b.len() == 19 {
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?
    } else {
        date.and_hms_opt(0, 0, 0)?
    };
    Some(time.and_utc().timestamp())
}

#[cfg(test)]
mod tests {

    #[test]
    fn fast_formatting_matches_chrono() {
        let chrono_fmt = |ts: i64| {
            DateTime::from_timestamp(ts, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        };
        let mut ts: i64 = -62_135_596_800; // 0001-01-01
        while ts < 253_402_300_799 {
            assert_eq!(format_ts(ts), chrono_fmt(ts), "{ts}");
            ts += 86_399 * 7 + 3_601;
        }
        for ts in [
            0,
            -1,
            951_782_400,
            1_709_164_800,
            253_402_300_799,
            4_102_444_800 - 1,
        ] {
            assert_eq!(format_ts(ts), chrono_fmt(ts), "{ts}");
        }
        assert_eq!(format_ts(1_092_873_600), "2004-08-19T00:00:00Z");
    }

    use super::*;

    #[test]
    fn parses_supported_formats() {
        assert_eq!(parse_timestamp("2004-08-19").unwrap(), 1_092_873_600);
        assert_eq!(
            parse_timestamp("2017-04-19 09:00:00").unwrap(),
            1_492_592_400
        );
        assert_eq!(
            parse_timestamp("2017-04-19T09:00:00").unwrap(),
            1_492_592_400
        );
        assert_eq!(
            parse_timestamp("2017-04-19T09:00:00Z").unwrap(),
            1_492_592_400
        );
        assert_eq!(
            parse_timestamp("2017-04-19T11:00:00+02:00").unwrap(),
            1_492_592_400
        );
        assert_eq!(
            parse_timestamp("2017-04-19 09:00:00+00:00").unwrap(),
            1_492_592_400
        );
        assert_eq!(parse_timestamp(" 2004-08-19 ").unwrap(), 1_092_873_600);
    }

    #[test]
    fn rejects_bad_dates() {
        for bad in [
            "",
            "2004-13-01",
            "2004-02-30",
            "19/08/2004",
            "2004-08-19 25:00:00",
            "abcd-ef-gh",
        ] {
            assert!(
                matches!(parse_timestamp(bad), Err(TimestampError::BadDate(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_timestamp("2017-04-19T09:00:00.5Z"),
            Err(TimestampError::SubSecond(_))
        ));
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(format_ts(1_092_873_600), "2004-08-19T00:00:00Z");
        assert_eq!(format_ts(i64::MAX), i64::MAX.to_string());
    }
}
