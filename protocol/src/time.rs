//! Wire times: RFC 3339 in UTC on the way out; RFC 3339 or a bare `YYYY-MM-DD`
//! (midnight UTC) on the way in. Inside the crate a time is `i64` Unix seconds.

use model::{format_ts, parse_timestamp, Timestamp};

/// A time field that is neither RFC 3339 nor `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an RFC 3339 time or a YYYY-MM-DD date")]
pub struct TimeError(pub String);

/// Longest time text considered; anything longer cannot be a time and is not echoed.
const MAX_TIME_LEN: usize = 64;

/// Parses an RFC 3339 time (any offset), a naive `YYYY-MM-DDTHH:MM:SS` (UTC) or a bare
/// `YYYY-MM-DD` (midnight UTC) into Unix seconds. Fractions of a second are dropped:
/// Python's `datetime.isoformat()` adds microseconds whenever they are non-zero, and
/// bars are at least a minute long.
pub fn parse_wire_time(text: &str) -> Result<Timestamp, TimeError> {
    if text.len() > MAX_TIME_LEN {
        return Err(TimeError(format!("{}...", truncate(text, 24))));
    }
    let s = text.trim();
    let whole = strip_fraction(s);
    parse_timestamp(whole.as_deref().unwrap_or(s)).map_err(|_| TimeError(text.to_string()))
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_wire_time(ts: Timestamp) -> String {
    format_ts(ts)
}

/// `s` without the `.digits` after the seconds of `YYYY-MM-DDTHH:MM:SS`, if it has one.
fn strip_fraction(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() <= 20 || b[19] != b'.' {
        return None;
    }
    let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    // Byte 19 is an ASCII '.', and the digits are ASCII, so both cuts are char
    // boundaries.
    Some(format!("{}{}", &s[..19], &s[20 + digits..]))
}

/// At most `max` bytes of `s`, cut at a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Serde helpers for a required time field (`#[serde(with = "crate::time::rfc3339")]`).
pub mod rfc3339 {
    use super::{format_wire_time, parse_wire_time};
    use model::Timestamp;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// Writes the time as RFC 3339 UTC.
    pub fn serialize<S: Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_wire_time(*ts))
    }

    /// Reads RFC 3339 or `YYYY-MM-DD`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        parse_wire_time(&text).map_err(D::Error::custom)
    }
}

/// Serde helpers for an optional time field; `null` is `None`.
pub mod rfc3339_opt {
    use super::{format_wire_time, parse_wire_time};
    use model::Timestamp;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// Writes the time as RFC 3339 UTC, or `null`.
    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&format_wire_time(*ts)),
            None => s.serialize_none(),
        }
    }

    /// Reads RFC 3339, `YYYY-MM-DD` or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => parse_wire_time(&text).map(Some).map_err(D::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dates_times_and_fractions() {
        assert_eq!(parse_wire_time("2023-01-03").unwrap(), 1_672_704_000);
        assert_eq!(
            parse_wire_time("2023-01-03T00:00:00Z").unwrap(),
            1_672_704_000
        );
        assert_eq!(
            parse_wire_time("2023-01-03T00:00:00").unwrap(),
            1_672_704_000
        );
        assert_eq!(
            parse_wire_time("2023-01-03T01:00:00+01:00").unwrap(),
            1_672_704_000
        );
        assert_eq!(
            parse_wire_time("2023-01-03T00:00:00.123456").unwrap(),
            1_672_704_000
        );
        assert_eq!(
            parse_wire_time("2023-01-03T00:00:00.5Z").unwrap(),
            1_672_704_000
        );
        assert_eq!(format_wire_time(1_672_704_000), "2023-01-03T00:00:00Z");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "2023-02-30",
            "2023-01-03T00:00:00.Z",
            "2023-01-03T00:00:00.",
            "2023-01-03T00:00:00.é",
            "2023-01-03Téééééééééé",
            "1672704000",
        ] {
            assert!(parse_wire_time(bad).is_err(), "{bad}");
        }
        let long = "9".repeat(10_000);
        let err = parse_wire_time(&long).unwrap_err();
        assert!(err.0.len() < 40);
    }

    #[test]
    fn truncates_at_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
