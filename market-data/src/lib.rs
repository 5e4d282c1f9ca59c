//! Market data for SimuTrador: exact OHLCV candles, CSV and Parquet loaders, per-root
//! catalogs, resampling, multi-symbol slices and the [`MarketDataActor`] that serves
//! them to sessions.

pub mod candle;
pub mod csv;
pub mod datetime;
pub mod error;
pub mod fixed;
pub mod layout;
pub mod parquet;
pub mod slice;
pub mod timeframe;
mod validate;

pub use candle::{Candle, CandleError, Timestamp};
pub use csv::{load_csv, read_csv};
pub use datetime::{format_ts, parse_timestamp};
pub use error::{LoadError, LoadErrorKind, MarketDataError, WriteError};
pub use fixed::{Amount, FixedError, Price};
pub use parquet::{load_parquet, write_layout, write_parquet, PriceEncoding};
pub use slice::{MarketSession, Slice, Step, SymbolBar};
pub use timeframe::{Timeframe, UnknownTimeframe};
