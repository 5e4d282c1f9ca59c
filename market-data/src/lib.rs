//! Market data for SimuTrador: exact OHLCV candles, CSV and Parquet loaders, per-root
//! catalogs, resampling, multi-symbol slices and the [`MarketDataActor`] that serves
//! them to sessions.
//!
//! The pure data types (prices, candles, timeframes, dates, calendars, indicators,
//! slices) live in the `model` crate and are re-exported here under their old paths.

pub mod actor;
pub mod cache;
pub mod catalog;
pub mod csv;
pub mod error;
pub mod layout;
pub mod messages;
pub mod parquet;
pub mod resample;
pub mod series;
pub mod slice_builder;
pub mod synthetic;
mod validate;

pub use model::{calendar, candle, datetime, fixed, indicators, slice, timeframe};

pub use actor::{MarketDataActor, MarketDataConfig};
pub use cache::{ByteLru, CacheCounters};
pub use catalog::{Catalog, SeriesSource, StoredSeries, Unservable};
pub use csv::{load_csv, read_csv};
pub use error::{LoadError, LoadErrorKind, MarketDataError, WriteError};
pub use messages::{GetCatalog, GetSeries, GetSlice, GetStats, ListProviders, MarketDataStats};
pub use model::{
    format_ts, parse_timestamp, Amount, Calendar, Candle, CandleError, Cross, FixedError,
    MarketHours, MarketSession, Price, Slice, SmaCrossSignal, Step, SymbolBar, Timeframe,
    Timestamp, TimestampError, UnknownTimeframe,
};
pub use parquet::{load_parquet, write_layout, write_parquet, PriceEncoding};
pub use resample::{downsample, resample};
pub use series::Series;
pub use slice_builder::{build_slice, filter_market_hours, SliceRequest};
pub use synthetic::{generate, SplitMix64, SyntheticSpec};
