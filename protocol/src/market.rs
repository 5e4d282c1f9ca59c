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
