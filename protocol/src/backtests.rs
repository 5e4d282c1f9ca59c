//! REST bodies of server-side backtests: `POST /api/backtests` runs a built-in strategy
//! on the server, `GET /api/backtests/{id}` follows it, and its results are stored and
//! served like any session's (`GET /api/sessions/{id}`).

use model::{Amount, MarketHours, Price, Timeframe, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::SessionParams;

/// `POST /api/backtests` body: a built-in strategy (`GET /api/strategies` lists them
/// with their parameters), its parameters, and the session to run it on, with the same
/// fields and defaults as `start_simulation` minus those about pacing a client
/// (`flow_control`, `max_pending_ticks`, `tick_interval_ms`, `account_snapshot_every`),
/// which a run on the server has no use for. Unknown fields are refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestRequest {
    /// Strategy id, e.g. `sma_crossover`.
    pub strategy: String,
    /// The strategy's parameters by name; missing ones take their defaults.
    #[serde(default)]
    pub params: Map<String, Value>,
    /// Symbols to simulate, non-empty and unique.
    pub symbols: Vec<String>,
    /// First bar time (inclusive).
    #[serde(with = "crate::time::rfc3339")]
    pub start_date: Timestamp,
    /// End of the range (exclusive); after `start_date`.
    #[serde(with = "crate::time::rfc3339")]
    pub end_date: Timestamp,
    /// Starting cash, > 0.
    pub initial_capital: Amount,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// Bars per symbol before `start_date` the strategy warms up on (default 0).
    #[serde(default)]
    pub warmup_bars: u32,
    /// Catalog/provider to read; the server default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_provider: Option<String>,
    /// Commission per unit; the server default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission_per_share: Option<Price>,
    /// Slippage in basis points; the server default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slippage_bps: Option<u32>,
    /// Selling more than held opens a short (default false).
    #[serde(default)]
    pub allow_short: bool,
    /// Intraday equity bars to keep (default `all`).
    #[serde(default)]
    pub market_hours: MarketHours,
    /// Free-form object stored with the results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl BacktestRequest {
    /// The session part, as a `start_simulation` would give it (validated by
    /// [`crate::validate::validate_params`]).
    pub fn session_params(&self) -> SessionParams {
        let mut p = SessionParams::new(
            self.symbols.clone(),
            self.start_date,
            self.end_date,
            self.initial_capital,
            self.timeframe,
        );
        p.warmup_bars = self.warmup_bars;
        p.data_provider = self.data_provider.clone();
        p.commission_per_share = self.commission_per_share;
        p.slippage_bps = self.slippage_bps;
        p.allow_short = self.allow_short;
        p.market_hours = self.market_hours;
        p.metadata = self.metadata.clone();
        p
    }
}

/// Where a backtest is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BacktestState {
    /// Waiting for a worker.
    Queued,
    /// Being run.
    Running,
    /// Ran to the end of its range.
    Completed,
    /// Cancelled (or its node shut down); the results cover the bars run so far.
    Stopped,
    /// Ran into the plan's `max_simulation_duration_sec`; results so far.
    MaxDuration,
    /// Failed.
    Error,
}

/// `POST /api/backtests` 202 body and `GET /api/backtests/{id}` 200 body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BacktestStatus {
    /// The session id: its results are at `GET /api/sessions/{id}` once finished.
    pub session_id: String,
    /// Where it is.
    pub state: BacktestState,
    /// Strategy id.
    pub strategy: String,
    /// Every strategy parameter it runs with, defaults filled in.
    pub params: Map<String, Value>,
    /// Bars processed so far (updated every 1024 bars while running).
    pub ticks_processed: u64,
    /// Bars in the run.
    pub ticks_total: u64,
    /// `ticks_processed` over `ticks_total`, 0 to 100.
    pub progress_pct: f64,
    /// A cancel was asked for and the run has not stopped yet.
    pub cancel_requested: bool,
    /// When it was accepted.
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: Timestamp,
    /// When it ended; absent while queued or running.
    #[serde(
        default,
        with = "crate::time::rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<Timestamp>,
    /// `/api/sessions/{id}`: the stored results once finished.
    pub results_url: String,
}
