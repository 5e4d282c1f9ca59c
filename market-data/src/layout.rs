//! File names of the data-manager layout under a data root:
//! `candles/daily/<SYMBOL>.parquet`, `candles/<timeframe>/<SYMBOL>/<YYYY-MM-DD>.parquet`
//! and `ohlcv/<SYMBOL>.csv`.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::timeframe::Timeframe;

/// Directory of Parquet candles under a root.
pub const CANDLES_DIR: &str = "candles";
/// Directory of CSV files under a root.
pub const OHLCV_DIR: &str = "ohlcv";

/// `<root>/candles/daily/<SYMBOL>.parquet`.
pub fn daily_file(root: &Path, symbol: &str) -> PathBuf {
    root.join(CANDLES_DIR)
        .join(Timeframe::Daily.name())
        .join(format!("{symbol}.parquet"))
}

/// `<root>/candles/<timeframe>/<SYMBOL>/<YYYY-MM-DD>.parquet`.
pub fn day_file(root: &Path, timeframe: Timeframe, symbol: &str, date: NaiveDate) -> PathBuf {
    root.join(CANDLES_DIR)
        .join(timeframe.name())
        .join(symbol)
        .join(format!("{}.parquet", date.format("%Y-%m-%d")))
}

/// The date of a day file name (`2017-04-19.parquet`).
pub fn parse_day_file(name: &str) -> Option<NaiveDate> {
    let stem = name.strip_suffix(".parquet")?;
    NaiveDate::parse_from_str(stem, "%Y-%m-%d")
        .ok()
        .filter(|_| stem.len() == 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let root = Path::new("/d");
        assert_eq!(
            daily_file(root, "GOOG"),
            Path::new("/d/candles/daily/GOOG.parquet")
        );
        let date = NaiveDate::from_ymd_opt(2017, 4, 9).unwrap();
        assert_eq!(
            day_file(root, Timeframe::H1, "EURUSD", date),
            Path::new("/d/candles/1h/EURUSD/2017-04-09.parquet")
        );
        assert_eq!(parse_day_file("2017-04-09.parquet"), Some(date));
        assert_eq!(parse_day_file("2017-4-9.parquet"), None);
        assert_eq!(parse_day_file("2017-04-09.csv"), None);
    }
}
