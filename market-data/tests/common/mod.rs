//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use market_data::{parse_timestamp, Timestamp};

/// The bundled sample data root.
pub fn sample_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sample-data")
}

/// A data root whose only file is corrupt (BADHL: high < low in row 4).
pub fn invalid_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/candles-invalid")
}

/// A UTC timestamp from text.
pub fn t(text: &str) -> Timestamp {
    parse_timestamp(text).unwrap()
}

/// A price or amount from text.
pub fn d<T: std::str::FromStr>(text: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    text.parse().unwrap()
}
