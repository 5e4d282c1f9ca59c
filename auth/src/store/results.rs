//! Where finished simulations live: the [`ResultStore`] trait, its SQL on both backends
//! (JSON as JSONB on Postgres, as checked TEXT on SQLite, bound and read as text
//! either way, so no JSON feature of sqlx is needed), its dispatch through
//! [`Database`], and the checks applied before writing.

use std::future::Future;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::{ColumnIndex, Decode, Executor, Row, Type};
use uuid::Uuid;

use super::shared::decode_enum_with;
use super::sql::{
    not_found_on_fk, Borrowed, Column, Dialect, Id, Param, RowsAffected, Store, Ts, Value,
};
use super::Database;
use crate::error::AuthError;
use crate::model::Page;
use crate::simulation::{
    parse_reason, reason_str, SimulationRecord, SimulationSummary, MAX_SESSION_ID_BYTES,
};

/// Storage of finished simulations, always scoped to their owner.
///
/// Every read and delete takes the caller's user id, and a session of another user is
/// [`AuthError::NotFound`] exactly like a session that does not exist, so the API
/// built on this cannot reveal which ids other users have. Implemented by
/// [`SqliteStore`](super::SqliteStore), [`PostgresStore`](super::PostgresStore) and
/// [`Database`]; both backends run the same test suite (`tests/store.rs`).
pub trait ResultStore: Send + Sync {
    /// Stores a finished simulation, replacing an earlier one of the same user with
    /// the same session id (a client may reuse its own ids). [`AuthError::InvalidInput`]
    /// for a record no backend can hold: a session id outside 1 to 128 bytes, NUL in
    /// any text, money that is not a decimal string, JSON fields that are not JSON.
    /// [`AuthError::NotFound`] if the user does not exist.
    fn save_result(
        &self,
        record: SimulationRecord,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// The simulation `session_id` of `user_id`, or [`AuthError::NotFound`].
    fn result_for_user(
        &self,
        user_id: Uuid,
        session_id: &str,
    ) -> impl Future<Output = Result<SimulationRecord, AuthError>> + Send;

    /// The simulations of `user_id`, newest first (by creation, then session id
    /// descending); `page.limit` is clamped to [`Page::MAX_LIMIT`].
    fn list_results(
        &self,
        user_id: Uuid,
        page: Page,
    ) -> impl Future<Output = Result<Vec<SimulationSummary>, AuthError>> + Send;

    /// Deletes the simulation `session_id` of `user_id`; [`AuthError::NotFound`] if
    /// `user_id` has none by that id.
    fn delete_result(
        &self,
        user_id: Uuid,
        session_id: &str,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;
}

impl ResultStore for Database {
    async fn save_result(&self, record: SimulationRecord) -> Result<(), AuthError> {
        dispatch!(self, store => store.save_result(record))
    }

    async fn result_for_user(
        &self,
        user_id: Uuid,
        session_id: &str,
    ) -> Result<SimulationRecord, AuthError> {
        dispatch!(self, store => store.result_for_user(user_id, session_id))
    }

    async fn list_results(
        &self,
        user_id: Uuid,
        page: Page,
    ) -> Result<Vec<SimulationSummary>, AuthError> {
        dispatch!(self, store => store.list_results(user_id, page))
    }

    async fn delete_result(&self, user_id: Uuid, session_id: &str) -> Result<(), AuthError> {
        dispatch!(self, store => store.delete_result(user_id, session_id))
    }
}

/// The columns of a summary, JSON read back as text.
fn summary_columns<DB: Dialect>() -> String {
    format!(
        "session_id, user_id, symbols{} AS symbols, timeframe, start_date, end_date, \
         initial_capital, final_equity, total_return_pct, total_trades, reason, created_at, \
         finished_at",
        DB::JSON_TEXT
    )
}

fn summary_from_row<DB: Dialect>(row: &DB::Row) -> Result<SimulationSummary, AuthError>
where
    for<'i> &'i str: ColumnIndex<DB::Row>,
    for<'a> &'a str: Decode<'a, DB> + Type<DB>,
    String: Value<DB>,
    i64: Value<DB>,
    Option<f64>: Value<DB>,
    Id: Value<DB>,
    DateTime<Utc>: Column<DB>,
{
    Ok(SimulationSummary {
        session_id: row.try_get("session_id")?,
        user_id: row.try_get::<Id, _>("user_id")?.0,
        symbols: parse_symbols("symbols", row.try_get("symbols")?)?,
        timeframe: row.try_get("timeframe")?,
        start_date: row.try_get("start_date")?,
        end_date: row.try_get("end_date")?,
        initial_capital: row.try_get("initial_capital")?,
        final_equity: row.try_get("final_equity")?,
        total_return_pct: row.try_get("total_return_pct")?,
        total_trades: stored_count("total_trades", row.try_get("total_trades")?)?,
        reason: decode_enum_with("reason", row.try_get("reason")?, parse_reason)?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

impl<DB: Dialect> ResultStore for Store<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'i> &'i str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
    for<'a> &'a str: Borrowed<'a, DB>,
    for<'a> &'a [u8]: Borrowed<'a, DB>,
    String: Value<DB>,
    Option<String>: Value<DB>,
    Vec<u8>: Value<DB>,
    i64: Value<DB>,
    bool: Value<DB>,
    Option<f64>: Value<DB>,
    Id: Value<DB>,
    Option<Id>: Value<DB>,
    Ts: Param<DB>,
    Option<Ts>: Param<DB>,
    DateTime<Utc>: Column<DB>,
{
    async fn save_result(&self, record: SimulationRecord) -> Result<(), AuthError> {
        let record = check_record(record)?;
        let s = &record.summary;
        let json = DB::JSON_PARAM;
        sqlx::query(&format!(
            "INSERT INTO simulation_results (session_id, user_id, symbols, timeframe, \
                 start_date, end_date, initial_capital, final_equity, total_return_pct, \
                 total_trades, reason, created_at, finished_at, params, metrics, trades, \
                 equity_curve, analytics) \
             VALUES ($1, $2, $3{json}, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                 $14{json}, $15{json}, $16{json}, $17{json}, $18{json}) \
             ON CONFLICT (user_id, session_id) DO UPDATE SET \
             symbols = excluded.symbols, timeframe = excluded.timeframe, \
             start_date = excluded.start_date, end_date = excluded.end_date, \
             initial_capital = excluded.initial_capital, final_equity = excluded.final_equity, \
             total_return_pct = excluded.total_return_pct, total_trades = excluded.total_trades, \
             reason = excluded.reason, created_at = excluded.created_at, \
             finished_at = excluded.finished_at, params = excluded.params, \
             metrics = excluded.metrics, trades = excluded.trades, \
             equity_curve = excluded.equity_curve, analytics = excluded.analytics"
        ))
        .bind(&s.session_id)
        .bind(Id(s.user_id))
        .bind(symbols_json(&s.symbols))
        .bind(&s.timeframe)
        .bind(Ts(s.start_date))
        .bind(Ts(s.end_date))
        .bind(&s.initial_capital)
        .bind(&s.final_equity)
        .bind(s.total_return_pct)
        .bind(count_to_i64(s.total_trades))
        .bind(reason_str(s.reason))
        .bind(Ts(s.created_at))
        .bind(Ts(s.finished_at))
        .bind(&record.params)
        .bind(&record.metrics)
        .bind(&record.trades)
        .bind(&record.equity_curve)
        .bind(&record.analytics)
        .execute(self.pool())
        .await
        .map_err(not_found_on_fk)?;
        Ok(())
    }

    async fn result_for_user(
        &self,
        user_id: Uuid,
        session_id: &str,
    ) -> Result<SimulationRecord, AuthError> {
        if !valid_session_id(session_id) {
            return Err(AuthError::NotFound);
        }
        let text = DB::JSON_TEXT;
        let row = sqlx::query(&format!(
            "SELECT {}, params{text} AS params, metrics{text} AS metrics, \
             trades{text} AS trades, equity_curve{text} AS equity_curve, \
             analytics{text} AS analytics \
             FROM simulation_results WHERE user_id = $1 AND session_id = $2",
            summary_columns::<DB>()
        ))
        .bind(Id(user_id))
        .bind(session_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)?;
        Ok(SimulationRecord {
            summary: summary_from_row::<DB>(&row)?,
            params: row.try_get("params")?,
            metrics: row.try_get("metrics")?,
            trades: row.try_get("trades")?,
            equity_curve: row.try_get("equity_curve")?,
            analytics: row.try_get("analytics")?,
        })
    }

    async fn list_results(
        &self,
        user_id: Uuid,
        page: Page,
    ) -> Result<Vec<SimulationSummary>, AuthError> {
        sqlx::query(&format!(
            "SELECT {} FROM simulation_results WHERE user_id = $1 \
             ORDER BY created_at DESC, session_id DESC LIMIT $2 OFFSET $3",
            summary_columns::<DB>()
        ))
        .bind(Id(user_id))
        .bind(page.sql_limit())
        .bind(page.sql_offset())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(summary_from_row::<DB>)
        .collect()
    }

    async fn delete_result(&self, user_id: Uuid, session_id: &str) -> Result<(), AuthError> {
        if !valid_session_id(session_id) {
            return Err(AuthError::NotFound);
        }
        let done =
            sqlx::query("DELETE FROM simulation_results WHERE user_id = $1 AND session_id = $2")
                .bind(Id(user_id))
                .bind(session_id)
                .execute(self.pool())
                .await?;
        match done.rows_affected() {
            0 => Err(AuthError::NotFound),
            _ => Ok(()),
        }
    }
}

/// Whether `session_id` could have been stored: 1 to [`MAX_SESSION_ID_BYTES`] bytes,
/// no NUL (Postgres text cannot hold it). Lookups of other ids answer `NotFound`
/// without a query.
pub(super) fn valid_session_id(session_id: &str) -> bool {
    (1..=MAX_SESSION_ID_BYTES).contains(&session_id.len()) && !session_id.contains('\0')
}

/// Validates `record` the same way for both backends and normalises it for storage:
/// timestamps to the microseconds both databases keep, a non-finite return to `None`.
///
/// Refused with [`AuthError::InvalidInput`]: a bad session id; NUL in any text (Postgres
/// cannot store it, not even escaped inside JSONB); money that is not a decimal string;
/// JSON fields that are not JSON.
pub(super) fn check_record(mut record: SimulationRecord) -> Result<SimulationRecord, AuthError> {
    let invalid = |field, reason| AuthError::InvalidInput { field, reason };
    let s = &mut record.summary;
    if !valid_session_id(&s.session_id) {
        return Err(invalid(
            "session_id",
            "must be 1 to 128 bytes without NUL characters",
        ));
    }
    if s.timeframe.is_empty() || s.timeframe.contains('\0') {
        return Err(invalid("timeframe", "must be non-empty text"));
    }
    if s.symbols.iter().any(|x| x.contains('\0')) {
        return Err(invalid("symbols", "must not contain NUL characters"));
    }
    if !is_decimal(&s.initial_capital) {
        return Err(invalid("initial_capital", "must be a decimal string"));
    }
    if !is_decimal(&s.final_equity) {
        return Err(invalid("final_equity", "must be a decimal string"));
    }
    s.total_return_pct = s.total_return_pct.filter(|x| x.is_finite());
    for at in [
        &mut s.start_date,
        &mut s.end_date,
        &mut s.created_at,
        &mut s.finished_at,
    ] {
        *at = at.trunc_subsecs(6);
    }
    for (field, json) in [
        ("params", Some(&record.params)),
        ("metrics", Some(&record.metrics)),
        ("trades", Some(&record.trades)),
        ("equity_curve", Some(&record.equity_curve)),
        ("analytics", record.analytics.as_ref()),
    ] {
        let Some(json) = json else { continue };
        if !storable_json(json) {
            return Err(invalid(field, "must be JSON without NUL characters"));
        }
    }
    Ok(record)
}

/// `-?digits(.digits)?`: what `Amount` prints.
fn is_decimal(s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    match unsigned.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(unsigned),
    }
}

/// Valid JSON with no NUL in any string or key.
pub(super) fn storable_json(text: &str) -> bool {
    fn clean(v: &serde_json::Value) -> bool {
        use serde_json::Value::*;
        match v {
            String(s) => !s.contains('\0'),
            Array(items) => items.iter().all(clean),
            Object(map) => map.iter().all(|(k, v)| !k.contains('\0') && clean(v)),
            Null | Bool(_) | Number(_) => true,
        }
    }
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| clean(&v))
}

/// Encodes symbols as a JSON array.
pub(super) fn symbols_json(symbols: &[String]) -> String {
    // Serialising strings cannot fail.
    serde_json::to_string(symbols).unwrap_or_else(|_| "[]".to_owned())
}

/// Decodes [`symbols_json`]; anything else is a decode error of `column`.
pub(super) fn parse_symbols(column: &str, text: &str) -> Result<Vec<String>, AuthError> {
    serde_json::from_str(text).map_err(|e| {
        AuthError::Database(sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(e),
        })
    })
}

/// A stored count as `u64` (the column has a `>= 0` check).
pub(super) fn stored_count(column: &str, value: i64) -> Result<u64, AuthError> {
    u64::try_from(value).map_err(|e| {
        AuthError::Database(sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(e),
        })
    })
}

/// A count for storage; counts beyond `i64` do not occur.
pub(super) fn count_to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        for ok in ["0", "100000.00", "-12.5", "1.07219"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in [
            "", "-", ".5", "5.", "1e5", "1,000", " 1", "NaN", "--1", "1.2.3",
        ] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }

    #[test]
    fn json_with_nul_is_not_storable() {
        assert!(storable_json(r#"{"a": ["b", 1, null]}"#));
        assert!(storable_json(r#""back\\u0000slash""#), "escaped backslash");
        assert!(!storable_json(r#"{"a": "x\u0000y"}"#));
        assert!(!storable_json(r#"{"x\u0000": 1}"#));
        assert!(!storable_json("{"));
        assert!(!storable_json(""));
    }
}
