//! Market data on the wire: candles, `history_snapshot` and `tick` (PROTOCOL.md
//! section 3, "Candle" and "Tick").

use std::collections::BTreeMap;

use model::{Amount, Candle, MarketSession, Price, Timeframe, Timestamp};
use serde::{Deserialize, Serialize};

use crate::time::{format_wire_time, parse_wire_time, TimeError};

/// A candle as sent: `date` RFC 3339, prices and volume decimal strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCandle {
    /// Bar open time, RFC 3339 UTC.
    pub date: String,
    /// First price.
    pub open: Price,
    /// Highest price.
    pub high: Price,
    /// Lowest price.
    pub low: Price,
    /// Last price.
    pub close: Price,
    /// Traded volume.
    pub volume: Amount,
}

impl From<&Candle> for WireCandle {
    fn from(c: &Candle) -> Self {
        WireCandle {
            date: format_wire_time(c.ts),
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
        }
    }
}

impl WireCandle {
    /// Back to an engine candle (for the Rust client).
    pub fn to_candle(&self) -> Result<Candle, TimeError> {
        Ok(Candle {
            ts: parse_wire_time(&self.date)?,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
        })
    }
}

/// `history_snapshot` data: warm-up bars before `start_date`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistorySnapshotData {
    /// The session.
    pub session_id: String,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// Up to `warmup_bars` candles per symbol, oldest first; every session symbol has
    /// an entry (possibly empty).
    pub candles: BTreeMap<String, Vec<WireCandle>>,
    /// Time of the oldest candle in the snapshot, `null` when it has none.
    #[serde(with = "crate::time::rfc3339_opt")]
    pub start: Option<Timestamp>,
    /// Time of the newest candle in the snapshot, `null` when it has none.
    #[serde(with = "crate::time::rfc3339_opt")]
    pub end: Option<Timestamp>,
    /// Number of candles over all symbols.
    pub count: u64,
}

/// `tick` data: one bar time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickData {
    /// The session.
    pub session_id: String,
    /// Bar time.
    #[serde(with = "crate::time::rfc3339")]
    pub sim_time: Timestamp,
    /// 1 for the first tick, +1 per tick.
    pub sequence_id: u64,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// The bar of every symbol that has one at `sim_time`; others are absent.
    pub candles: BTreeMap<String, WireCandle>,
    /// Symbols with a bar in this tick.
    pub symbols_trading: Vec<String>,
    /// `pre_market`, `regular` or `after_hours`.
    pub market_session: MarketSession,
    /// Last bar of a trading day (where `day` orders expire).
    pub is_eod: bool,
}

/// `GET /api/market-data` 200 body: what every provider can serve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketDataResponse {
    /// Providers, the default first.
    pub providers: Vec<ProviderEntry>,
}

/// One data provider (`data_provider` in `start_simulation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEntry {
    /// Its name.
    pub name: String,
    /// Whether requests without `data_provider` use it.
    pub default: bool,
    /// Its symbols, in name order.
    pub symbols: Vec<SymbolEntry>,
}

/// One symbol of a provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolEntry {
    /// The symbol.
    pub symbol: String,
    /// The series stored for it, finest first.
    pub stored: Vec<StoredEntry>,
    /// Every timeframe a session or a chart can ask for: the stored ones and those
    /// built from them.
    pub servable: Vec<Timeframe>,
}

/// One stored series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    /// Bar duration.
    pub timeframe: Timeframe,
    /// Open time of the first bar, RFC 3339 UTC.
    pub first: String,
    /// Open time of the last bar, RFC 3339 UTC.
    pub last: String,
    /// Number of bars, where the files say so without being read (single Parquet
    /// files); `null` otherwise.
    pub bars: Option<u64>,
}

/// `GET /api/market-data/{provider}/{symbol}/bars` 200 body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarsResponse {
    /// The provider.
    pub provider: String,
    /// The symbol.
    pub symbol: String,
    /// Bar duration of the series read.
    pub timeframe: Timeframe,
    /// Bars of the series in the range asked for.
    pub bars_in_range: u64,
    /// How many of those each returned bar covers: 1 unless the range held more than
    /// `max_points` bars, which are then merged in runs of this many (open of the
    /// first, highest high, lowest low, close of the last, summed volume; stamped with
    /// the first bar's time).
    pub bucket_bars: u64,
    /// The bars, oldest first.
    pub bars: Vec<WireCandle>,
}
