//! Bar durations with their wire names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::candle::Timestamp;

/// A bar duration. Wire and directory names: `1min 5min 15min 30min 1h 2h 4h daily`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timeframe {
    /// One minute.
    #[serde(rename = "1min")]
    Min1,
    /// Five minutes.
    #[serde(rename = "5min")]
    Min5,
    /// Fifteen minutes.
    #[serde(rename = "15min")]
    Min15,
    /// Thirty minutes.
    #[serde(rename = "30min")]
    Min30,
    /// One hour.
    #[serde(rename = "1h")]
    H1,
    /// Two hours.
    #[serde(rename = "2h")]
    H2,
    /// Four hours.
    #[serde(rename = "4h")]
    H4,
    /// One calendar day (UTC date).
    #[serde(rename = "daily")]
    Daily,
}

/// An unknown timeframe name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown timeframe `{0}` (expected one of 1min, 5min, 15min, 30min, 1h, 2h, 4h, daily)")]
pub struct UnknownTimeframe(pub String);

impl Timeframe {
    /// All timeframes, finest first.
    pub const ALL: [Timeframe; 8] = [
        Timeframe::Min1,
        Timeframe::Min5,
        Timeframe::Min15,
        Timeframe::Min30,
        Timeframe::H1,
        Timeframe::H2,
        Timeframe::H4,
        Timeframe::Daily,
    ];

    /// The wire (and directory) name.
    pub const fn name(self) -> &'static str {
        match self {
            Timeframe::Min1 => "1min",
            Timeframe::Min5 => "5min",
            Timeframe::Min15 => "15min",
            Timeframe::Min30 => "30min",
            Timeframe::H1 => "1h",
            Timeframe::H2 => "2h",
            Timeframe::H4 => "4h",
            Timeframe::Daily => "daily",
        }
    }

    /// Bar length in seconds.
    pub const fn seconds(self) -> i64 {
        match self {
            Timeframe::Min1 => 60,
            Timeframe::Min5 => 300,
            Timeframe::Min15 => 900,
            Timeframe::Min30 => 1800,
            Timeframe::H1 => 3600,
            Timeframe::H2 => 7200,
            Timeframe::H4 => 14_400,
            Timeframe::Daily => 86_400,
        }
    }

    /// Start of the bar containing `ts`: bars are aligned to multiples of their length
    /// from midnight UTC (so 4h bars start at 00:00, 04:00, ... UTC and daily bars at
    /// midnight UTC).
    pub const fn bucket(self, ts: Timestamp) -> Timestamp {
        ts - ts.rem_euclid(self.seconds())
    }

    /// True when bars of `self` can be built by aggregating bars of `finer`.
    pub fn can_resample_from(self, finer: Timeframe) -> bool {
        finer.seconds() <= self.seconds() && self.seconds() % finer.seconds() == 0
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Timeframe {
    type Err = UnknownTimeframe;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timeframe::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownTimeframe(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Timeframe::ALL {
            assert_eq!(t.name().parse::<Timeframe>().unwrap(), t);
            assert_eq!(
                serde_json::to_string(&t).unwrap(),
                format!("\"{}\"", t.name())
            );
        }
        assert!("1d".parse::<Timeframe>().is_err());
    }

    #[test]
    fn buckets_align_to_utc_midnight() {
        let ts = 1_500_000_123; // 2017-07-14T02:42:03Z
        assert_eq!(Timeframe::H4.bucket(ts), 1_499_990_400); // 00:00
        assert_eq!(Timeframe::Min5.bucket(ts) % 300, 0);
        assert!(Timeframe::Daily.can_resample_from(Timeframe::H1));
        assert!(!Timeframe::H1.can_resample_from(Timeframe::Daily));
    }
}
