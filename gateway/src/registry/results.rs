//! Finished sessions between the engine, the database and REST: the record stored for a
//! run, and the `/api/sessions` bodies built from stored records or live sessions.
//!
//! What is stored is already the wire JSON (money as decimal strings, RFC 3339 times),
//! so reading it back is a parse, not a translation, and a client sees the same
//! numbers `simulation_end` carried.

use auth::{SimulationRecord, SimulationSummary};
use chrono::{DateTime, Utc};
use engine::SimulationResults;
use model::{Amount, Timeframe, Timestamp};
use protocol::{
    Analytics, EquityPoint, SessionDetail, SessionEntry, SimulationEndData, SimulationState,
};
use session_actor::actor::StateView;
use uuid::Uuid;

use crate::errors::{log_chain, HttpError};
use crate::registry::SessionHandle;
use crate::translate;

/// A stored record that does not read back as the wire types (a newer schema or a
/// hand-edited row). Logged; clients get a 500 without details.
#[derive(Debug, thiserror::Error)]
pub enum StoredDataError {
    /// A JSON column does not parse as its wire type.
    #[error("stored {field} does not parse")]
    Json {
        /// Which column.
        field: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A text column holds a value its type does not accept.
    #[error("stored {0} is not valid")]
    Value(&'static str),
}

/// A session's fixed facts, kept by the registry for the record it stores.
#[derive(Clone, Debug)]
pub struct SessionFacts {
    /// Session id.
    pub session_id: String,
    /// Owner.
    pub user_id: Uuid,
    /// The start request as JSON.
    pub params_json: String,
    /// Symbols, in request order.
    pub symbols: Vec<String>,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// Requested start.
    pub start: Timestamp,
    /// Requested end.
    pub end: Timestamp,
    /// Starting cash.
    pub initial_capital: Amount,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// The record stored for a finished run.
pub fn finished_record(
    facts: &SessionFacts,
    results: &SimulationResults,
    finished_at: DateTime<Utc>,
) -> Result<SimulationRecord, serde_json::Error> {
    let duration = (finished_at - facts.created_at).num_seconds().max(0) as u64;
    let metrics = translate::end_data(&facts.session_id, results, duration);
    let curve: Vec<EquityPoint> = results
        .equity_curve
        .iter()
        .map(|&(time, equity)| EquityPoint { time, equity })
        .collect();
    let m = &results.metrics;
    Ok(SimulationRecord {
        summary: SimulationSummary {
            session_id: facts.session_id.clone(),
            user_id: facts.user_id,
            symbols: facts.symbols.clone(),
            timeframe: facts.timeframe.to_string(),
            start_date: time(facts.start),
            end_date: time(facts.end),
            initial_capital: facts.initial_capital.to_string(),
            final_equity: m.final_equity.to_string(),
            total_return_pct: Some(m.total_return_pct).filter(|x| x.is_finite()),
            total_trades: m.total_trades,
            reason: metrics.reason,
            created_at: facts.created_at,
            finished_at,
        },
        params: storable_params(&facts.params_json),
        metrics: serde_json::to_string(&metrics)?,
        trades: serde_json::to_string(&results.trades)?,
        equity_curve: serde_json::to_string(&curve)?,
        analytics: Some(serde_json::to_string(&results.analytics)?),
    })
}

/// Unix seconds as a `DateTime`; times come from parsed requests and bars, always in
/// range, so the epoch fallback is never used.
fn time(ts: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(ts, 0).unwrap_or_default()
}

/// The request JSON with NUL characters replaced: clients may send them inside
/// `metadata`, and Postgres cannot store them.
fn storable_params(params_json: &str) -> String {
    fn clean(v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{fffd}"),
            Value::Array(items) => items.iter_mut().for_each(clean),
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    *map = std::mem::take(map)
                        .into_iter()
                        .map(|(k, v)| (k.replace('\0', "\u{fffd}"), v))
                        .collect();
                }
                map.values_mut().for_each(clean);
            }
            _ => {}
        }
    }
    let mut value = serde_json::from_str(params_json).unwrap_or(serde_json::Value::Null);
    clean(&mut value);
    value.to_string()
}

/// The list entry of a stored session.
pub fn stored_entry(s: &SimulationSummary) -> Result<SessionEntry, StoredDataError> {
    let amount = |field, text: &str| {
        text.parse::<Amount>()
            .map_err(|_| StoredDataError::Value(field))
    };
    Ok(SessionEntry {
        session_id: s.session_id.clone(),
        state: match s.reason {
            protocol::EndReason::Error => SimulationState::Error,
            _ => SimulationState::Completed,
        },
        symbols: s.symbols.clone(),
        timeframe: s
            .timeframe
            .parse()
            .map_err(|_| StoredDataError::Value("timeframe"))?,
        start_date: s.start_date.timestamp(),
        end_date: s.end_date.timestamp(),
        created_at: s.created_at.timestamp(),
        initial_capital: amount("initial_capital", &s.initial_capital)?,
        finished_at: Some(s.finished_at.timestamp()),
        reason: Some(s.reason),
        final_equity: Some(amount("final_equity", &s.final_equity)?),
        total_return_pct: s.total_return_pct,
        total_trades: Some(s.total_trades),
        sequence_id: None,
        ticks_total: None,
    })
}

/// The detail of a stored session: its entry, request and results.
pub fn stored_detail(r: &SimulationRecord) -> Result<SessionDetail, StoredDataError> {
    fn parse<T: serde::de::DeserializeOwned>(
        field: &'static str,
        text: &str,
    ) -> Result<T, StoredDataError> {
        serde_json::from_str(text).map_err(|source| StoredDataError::Json { field, source })
    }
    Ok(SessionDetail {
        session: stored_entry(&r.summary)?,
        params: parse("params", &r.params)?,
        sim_time: None,
        progress_pct: None,
        metrics: Some(parse::<SimulationEndData>("metrics", &r.metrics)?),
        trades: Some(parse("trades", &r.trades)?),
        equity_curve: Some(parse("equity_curve", &r.equity_curve)?),
        // Rows stored before analytics existed have none.
        analytics: r
            .analytics
            .as_deref()
            .map(|text| parse::<Analytics>("analytics", text))
            .transpose()?,
    })
}

/// The list entry of a live session of this node.
pub fn live_entry(h: &SessionHandle, v: &StateView) -> SessionEntry {
    SessionEntry {
        session_id: h.session_id.clone(),
        state: translate::state(v.state),
        symbols: h.config.symbols.clone(),
        timeframe: h.timeframe,
        start_date: h.start,
        end_date: h.end,
        created_at: h.created_at,
        initial_capital: h.config.initial_capital,
        finished_at: None,
        reason: None,
        final_equity: None,
        total_return_pct: None,
        total_trades: None,
        sequence_id: Some(v.sequence_id),
        ticks_total: Some(v.ticks_total),
    }
}

/// The detail of a live session: its entry, request and progress.
pub fn live_detail(h: &SessionHandle, v: &StateView, params_json: &str) -> SessionDetail {
    SessionDetail {
        session: live_entry(h, v),
        params: serde_json::from_str(params_json).unwrap_or(serde_json::Value::Null),
        sim_time: v.sim_time,
        progress_pct: Some(v.progress_pct).filter(|p| p.is_finite()),
        metrics: None,
        trades: None,
        equity_curve: None,
        analytics: None,
    }
}

impl From<StoredDataError> for HttpError {
    fn from(e: StoredDataError) -> Self {
        log_chain(&e);
        HttpError::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_in_params_are_replaced() {
        let cleaned = storable_params(r#"{"metadata": {"a\u0000": ["x\u0000y", 1]}}"#);
        let v: serde_json::Value = serde_json::from_str(&cleaned).unwrap();
        assert_eq!(v["metadata"]["a\u{fffd}"][0], "x\u{fffd}y");
        assert!(!cleaned.contains("\\u0000"));
        assert_eq!(storable_params("not json"), "null");
        assert_eq!(storable_params(r#"{"k":"v"}"#), r#"{"k":"v"}"#);
    }
}
