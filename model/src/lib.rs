//! SimuTrador's pure data model, shared by the engine, the wire protocol, market data
//! and clients: exact fixed-point prices and amounts, OHLCV candles, timeframes, date
//! parsing and formatting, trading calendars, indicators and the multi-symbol
//! [`Slice`] a simulation runs over.
//!
//! No I/O, no async runtime, no file formats: serde, chrono and chrono-tz only.

pub mod calendar;
pub mod candle;
pub mod datetime;
pub mod fixed;
pub mod indicators;
pub mod slice;
pub mod timeframe;

pub use calendar::Calendar;
pub use candle::{Candle, CandleError, Timestamp};
pub use datetime::{format_ts, parse_timestamp, TimestampError};
pub use fixed::{Amount, FixedError, Price};
pub use indicators::{Cross, CutlerRsi, DonchianHigh, RsiReading, SmaCrossSignal};
pub use slice::{MarketHours, MarketSession, Slice, Step, SymbolBar};
pub use timeframe::{Timeframe, UnknownTimeframe};
