//! The records a [`ResultStore`](crate::ResultStore) keeps: finished simulations.

use chrono::{DateTime, Utc};
use protocol::EndReason;
use uuid::Uuid;

use crate::model::UnknownVariant;

/// Longest session id a store accepts, in bytes (the gateway's limit too).
pub const MAX_SESSION_ID_BYTES: usize = 128;

/// What a listing shows of a finished simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationSummary {
    /// Session id; unique per user, not globally (clients may choose it).
    pub session_id: String,
    /// Owner.
    pub user_id: Uuid,
    /// Symbols, in request order.
    pub symbols: Vec<String>,
    /// Bar duration as on the wire (`daily`, `1min`, ...).
    pub timeframe: String,
    /// Requested start.
    pub start_date: DateTime<Utc>,
    /// Requested end (exclusive).
    pub end_date: DateTime<Utc>,
    /// Starting cash, a decimal string.
    pub initial_capital: String,
    /// Equity after the last bar, a decimal string.
    pub final_equity: String,
    /// Total return in percent; `None` when not a finite number.
    pub total_return_pct: Option<f64>,
    /// Closed round trips.
    pub total_trades: u64,
    /// Why the run ended.
    pub reason: EndReason,
    /// When the session was created (listings are newest first by this).
    pub created_at: DateTime<Utc>,
    /// When the run ended.
    pub finished_at: DateTime<Utc>,
}

/// A finished simulation with its full results. The JSON fields hold JSON text in the
/// wire format; a store may normalise it (Postgres JSONB reorders keys and drops
/// whitespace), so compare them as parsed JSON, not as text.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationRecord {
    /// The listing fields.
    pub summary: SimulationSummary,
    /// The start request.
    pub params: String,
    /// Every `simulation_end` number.
    pub metrics: String,
    /// Closed round trips.
    pub trades: String,
    /// Sampled equity curve.
    pub equity_curve: String,
    /// Results analytics (`SessionDetail.analytics`); `None` for rows stored before
    /// analytics existed.
    pub analytics: Option<String>,
}

/// The database spelling of an end reason.
pub(crate) fn reason_str(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Completed => "completed",
        EndReason::Stopped => "stopped",
        EndReason::MaxDuration => "max_duration",
        EndReason::Error => "error",
    }
}

/// Parses [`reason_str`]'s spelling.
pub(crate) fn parse_reason(s: &str) -> Result<EndReason, UnknownVariant> {
    match s {
        "completed" => Ok(EndReason::Completed),
        "stopped" => Ok(EndReason::Stopped),
        "max_duration" => Ok(EndReason::MaxDuration),
        "error" => Ok(EndReason::Error),
        _ => Err(UnknownVariant("reason")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_match_the_wire() {
        for r in [
            EndReason::Completed,
            EndReason::Stopped,
            EndReason::MaxDuration,
            EndReason::Error,
        ] {
            assert_eq!(parse_reason(reason_str(r)), Ok(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", reason_str(r))
            );
        }
        assert!(parse_reason("Completed").is_err());
    }
}
