//! Market data for SimuTrador: exact OHLCV candles, CSV and Parquet loaders, per-root
//! catalogs, resampling, multi-symbol slices and the [`MarketDataActor`] that serves
//! them to sessions.

#![warn(missing_docs)]

pub mod actor;
pub mod cache;
pub mod calendar;
pub mod candle;
pub mod catalog;
pub mod csv;
pub mod datetime;
pub mod error;
pub mod fixed;
pub mod indicators;
pub mod layout;
pub mod messages;
pub mod parquet;
pub mod resample;
pub mod series;
pub mod slice;
pub mod slice_builder;
pub mod synthetic;
pub mod timeframe;
mod validate;

pub use actor::{MarketDataActor, MarketDataConfig};
pub use cache::{ByteLru, CacheCounters};
pub use calendar::Calendar;
pub use candle::{Candle, CandleError, Timestamp};
pub use catalog::{Catalog, SeriesSource, StoredSeries, Unservable};
pub use csv::{load_csv, read_csv};
pub use datetime::{format_ts, parse_timestamp};
pub use error::{LoadError, LoadErrorKind, MarketDataError, WriteError};
pub use fixed::{Amount, FixedError, Price};
pub use indicators::{Cross, SmaCrossSignal};
pub use messages::{GetCatalog, GetSeries, GetSlice, GetStats, ListProviders, MarketDataStats};
pub use parquet::{load_parquet, write_layout, write_parquet, PriceEncoding};
pub use resample::resample;
pub use series::Series;
pub use slice::{MarketSession, Slice, Step, SymbolBar};
pub use slice_builder::{build_slice, filter_market_hours, MarketHours, SliceRequest};
pub use synthetic::{generate, SplitMix64, SyntheticSpec};
pub use timeframe::{Timeframe, UnknownTimeframe};
