//! REST bodies of `/api/sessions` (PROTOCOL.md section 6): a user's sessions, live or
//! finished, and the stored results of a finished one. Money is decimal strings, times
//! RFC 3339, as everywhere on the wire.

use model::{Amount, Price, Timeframe, Timestamp};
use serde::{Deserialize, Serialize};

use crate::session::{finite_or_null, EndReason, SimulationEndData, SimulationState};

/// `GET /api/sessions` 200 body: newest first, live sessions of the answering node
/// before finished ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionListResponse {
    /// One page of sessions.
    pub sessions: Vec<SessionEntry>,
    /// Sessions skipped (the request's `offset`).
    pub offset: u64,
    /// Most sessions this page could hold (the request's `limit`); fewer means the end.
    pub limit: u32,
}

/// A session as `/api/sessions` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// The session.
    pub session_id: String,
    /// `ready`, `running` or `paused` while live; `completed` or `error` once finished.
    pub state: SimulationState,
    /// Symbols, in request order.
    pub symbols: Vec<String>,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// First bar time.
    #[serde(with = "crate::time::rfc3339")]
    pub start_date: Timestamp,
    /// End of the range (exclusive).
    #[serde(with = "crate::time::rfc3339")]
    pub end_date: Timestamp,
    /// Server wall-clock time of creation.
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: Timestamp,
    /// Starting cash.
    pub initial_capital: Amount,
    /// When the run ended; absent while live.
    #[serde(
        default,
        with = "crate::time::rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<Timestamp>,
    /// Why the run ended; absent while live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<EndReason>,
    /// Equity after the last bar; absent while live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_equity: Option<Amount>,
    /// Total return in percent; absent while live or when undefined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_return_pct: Option<f64>,
    /// Closed round trips; absent while live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_trades: Option<u64>,
    /// Last tick produced; live sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<u64>,
    /// Bars in the run; live sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticks_total: Option<u64>,
}

/// `GET /api/sessions/{id}` 200 body: the list entry plus the start request and, for a
/// finished session, its stored results; for a live one, its progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionDetail {
    /// The fields of the list entry.
    #[serde(flatten)]
    pub session: SessionEntry,
    /// The `start_simulation` / `create_session` data as the server read it.
    pub params: serde_json::Value,
    /// Time of the last processed bar; live sessions only.
    #[serde(
        default,
        with = "crate::time::rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub sim_time: Option<Timestamp>,
    /// Share of the bars processed, 0 to 100; live sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_pct: Option<f64>,
    /// The `simulation_end` data; finished sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SimulationEndData>,
    /// Closed round trips in closing order; finished sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trades: Option<Vec<TradeData>>,
    /// Sampled equity curve (at most 2048 points, first and last bar included);
    /// finished sessions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equity_curve: Option<Vec<EquityPoint>>,
}

/// A closed round trip: from flat back to flat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TradeData {
    /// Symbol.
    pub symbol: String,
    /// `long` or `short`.
    pub side: String,
    /// Largest absolute position held during the trade.
    pub quantity: i64,
    /// Time of the first fill.
    #[serde(with = "crate::time::rfc3339")]
    pub entry_time: Timestamp,
    /// Time of the closing fill.
    #[serde(with = "crate::time::rfc3339")]
    pub exit_time: Timestamp,
    /// Average entry price.
    pub entry_price: Price,
    /// Average exit price.
    pub exit_price: Price,
    /// Profit or loss net of commissions.
    pub pnl: Amount,
    /// Commissions paid.
    pub commission: Amount,
    /// PnL over entry notional, in percent.
    #[serde(with = "finite_or_null")]
    pub return_pct: f64,
}

/// One point of an equity curve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EquityPoint {
    /// Bar time.
    #[serde(with = "crate::time::rfc3339")]
    pub time: Timestamp,
    /// Equity after that bar.
    pub equity: Amount,
}
