//! Market data for SimuTrador: exact OHLCV candles, CSV and Parquet loaders, per-root
//! catalogs, resampling, multi-symbol slices and the [`MarketDataActor`] that serves
//! them to sessions.

pub mod candle;
pub mod fixed;
pub mod timeframe;

pub use candle::{Candle, CandleError, Timestamp};
pub use fixed::{Amount, FixedError, Price};
pub use timeframe::{Timeframe, UnknownTimeframe};
pub mod slice;
pub use slice::{MarketSession, Slice, Step, SymbolBar};
