//! Server messages about sessions: creation, start, control, resume and the end
//! (PROTOCOL.md sections 3 and 4).

use model::{Amount, Price, Timeframe, Timestamp};
use serde::{Deserialize, Serialize};

/// A session's lifecycle state (`simulation_state.state` and elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimulationState {
    /// Loading data.
    Initializing,
    /// Created, not started.
    Ready,
    /// Producing ticks.
    Running,
    /// Paused by the client or by a disconnect.
    Paused,
    /// Finished; `simulation_end` was sent.
    Completed,
    /// Failed; `session_error` was sent.
    Error,
}

/// `session_created` data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreatedData {
    /// The new session.
    pub session_id: String,
    /// Always `created`.
    pub status: String,
    /// Session symbols, in request order.
    pub symbols: Vec<String>,
    /// First bar time.
    #[serde(with = "crate::time::rfc3339")]
    pub start_date: Timestamp,
    /// End of the range (exclusive).
    #[serde(with = "crate::time::rfc3339")]
    pub end_date: Timestamp,
    /// Starting cash.
    pub initial_capital: Amount,
    /// Lifecycle state (`ready` once data is loaded).
    pub state: SimulationState,
    /// Server wall-clock time of creation.
    #[serde(with = "crate::time::rfc3339")]
    pub created_at: Timestamp,
    /// The provider the data comes from.
    pub data_provider: String,
    /// Effective commission per unit.
    pub commission_per_share: Price,
    /// Effective slippage in basis points.
    pub slippage_bps: u32,
    /// Number of ticks the run will have.
    pub estimated_ticks: u64,
    /// Place in the queue when the user is at the concurrent-session cap and queueing
    /// is enabled; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
}

/// `simulation_started` data (two-step start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulationStartedData {
    /// The session.
    pub session_id: String,
    /// Server wall-clock time of the start.
    #[serde(with = "crate::time::rfc3339")]
    pub started_at: Timestamp,
    /// Whether ticks are lock-step.
    pub flow_control_enabled: bool,
    /// Estimate of the run's wall-clock length, `null` when it depends on the client
    /// (lock-step or unpaced runs).
    #[serde(default)]
    pub estimated_duration_sec: Option<u64>,
    /// Pacing between ticks, 0 for none.
    pub tick_interval_ms: u64,
}

/// `simulation_state` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulationStateData {
    /// The session.
    pub session_id: String,
    /// Lifecycle state.
    pub state: SimulationState,
    /// Last tick sent, 0 before the first.
    pub sequence_id: u64,
    /// Time of the last processed bar, `null` before the first.
    #[serde(with = "crate::time::rfc3339_opt")]
    pub sim_time: Option<Timestamp>,
    /// Share of the bars processed, 0 to 100.
    pub progress_pct: f64,
    /// Number of bars in the run.
    pub ticks_total: u64,
}

/// `simulation_end.reason` (extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Every bar was processed.
    Completed,
    /// `stop_simulation`.
    Stopped,
    /// The plan's wall-clock limit was reached.
    MaxDuration,
    /// The session failed.
    Error,
}

/// `simulation_end` data: results. Money is decimal strings; ratios and percentages
/// are JSON numbers (a non-finite ratio is sent as `null` and read back as NaN).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulationEndData {
    /// The session.
    pub session_id: String,
    /// Equity after the last bar.
    pub final_equity: Amount,
    /// Closed round trips (flat to flat).
    pub total_trades: u64,
    /// Annualised Sharpe ratio of per-bar equity returns, risk-free 0.
    #[serde(with = "finite_or_null")]
    pub sharpe_ratio: f64,
    /// Total return in percent.
    #[serde(with = "finite_or_null")]
    pub total_return_pct: f64,
    /// Fraction of winning round trips, 0 to 1.
    #[serde(with = "finite_or_null")]
    pub win_rate: f64,
    /// Maximum drawdown in percent.
    #[serde(with = "finite_or_null")]
    pub max_drawdown_pct: f64,
    /// Wall-clock length of the run, in whole seconds.
    pub simulation_duration_sec: u64,
    /// Why the run ended (extension).
    pub reason: EndReason,
    /// Annualised Sortino ratio (extension).
    #[serde(with = "finite_or_null")]
    pub sortino_ratio: f64,
    /// CAGR over maximum drawdown (extension).
    #[serde(with = "finite_or_null")]
    pub calmar_ratio: f64,
    /// Gross profit / gross loss, `null` without losing trades (extension).
    #[serde(default)]
    pub profit_factor: Option<f64>,
    /// Compound annual growth rate in percent (extension).
    #[serde(with = "finite_or_null")]
    pub cagr_pct: f64,
    /// Annualised volatility of bar returns in percent (extension).
    #[serde(with = "finite_or_null")]
    pub volatility_ann_pct: f64,
    /// Share of bars with an open position, in percent (extension).
    #[serde(with = "finite_or_null")]
    pub exposure_pct: f64,
    /// Buy-and-hold return of the symbols, in percent (extension).
    #[serde(with = "finite_or_null")]
    pub buy_and_hold_return_pct: f64,
    /// Best trade return in percent (extension).
    #[serde(with = "finite_or_null")]
    pub best_trade_pct: f64,
    /// Worst trade return in percent (extension).
    #[serde(with = "finite_or_null")]
    pub worst_trade_pct: f64,
    /// Mean trade return in percent (extension).
    #[serde(with = "finite_or_null")]
    pub avg_trade_pct: f64,
    /// Longest drawdown in bars (extension).
    pub max_drawdown_duration_bars: u64,
    /// Commissions paid (extension).
    pub total_commission: Amount,
    /// Bars processed (extension).
    pub ticks_processed: u64,
}

/// Writes a non-finite float as `null` and reads `null` back as NaN, so results with
/// an undefined ratio (no variance, no drawdown) still round-trip instead of failing
/// the whole `simulation_end`.
pub(crate) mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// One entry of `sessions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// The session.
    pub session_id: String,
    /// Lifecycle state.
    pub state: SimulationState,
    /// Session symbols.
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
    /// Last tick sent, 0 before the first.
    pub sequence_id: u64,
    /// Number of bars in the run.
    pub ticks_total: u64,
}

/// `sessions` data: the user's sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsData {
    /// One entry per session.
    pub sessions: Vec<SessionSummary>,
}

/// `session_resumed` data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResumedData {
    /// The session.
    pub session_id: String,
    /// Stored-state epoch; changes whenever stored state was lost.
    pub epoch: u64,
    /// Ticks continue after this one.
    pub resumed_from_sequence: u64,
    /// Lifecycle state after resuming.
    pub state: SimulationState,
}
