//! [`ResultStore`] on SQLite: JSON as checked TEXT, times as fixed-width text.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

use super::results::{
    check_record, count_to_i64, parse_symbols, stored_count, symbols_json, valid_session_id,
    ResultStore,
};
use super::shared::{decode_enum_with, is_foreign_key_violation};
use super::sqlite::{get_id, id, ts};
use super::SqliteStore;
use crate::error::AuthError;
use crate::model::Page;
use crate::simulation::{parse_reason, reason_str, SimulationRecord, SimulationSummary};

macro_rules! summary_columns {
    () => {
        "session_id, user_id, symbols, timeframe, start_date, end_date, initial_capital, \
         final_equity, total_return_pct, total_trades, reason, created_at, finished_at"
    };
}

fn summary_from_row(row: &SqliteRow) -> Result<SimulationSummary, AuthError> {
    Ok(SimulationSummary {
        session_id: row.try_get("session_id")?,
        user_id: get_id(row, "user_id")?,
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

impl ResultStore for SqliteStore {
    async fn save_result(&self, record: SimulationRecord) -> Result<(), AuthError> {
        let record = check_record(record)?;
        let s = &record.summary;
        sqlx::query(concat!(
            "INSERT INTO simulation_results (",
            summary_columns!(),
            ", params, metrics, trades, equity_curve) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (user_id, session_id) DO UPDATE SET \
             symbols = excluded.symbols, timeframe = excluded.timeframe, \
             start_date = excluded.start_date, end_date = excluded.end_date, \
             initial_capital = excluded.initial_capital, final_equity = excluded.final_equity, \
             total_return_pct = excluded.total_return_pct, total_trades = excluded.total_trades, \
             reason = excluded.reason, created_at = excluded.created_at, \
             finished_at = excluded.finished_at, params = excluded.params, \
             metrics = excluded.metrics, trades = excluded.trades, \
             equity_curve = excluded.equity_curve"
        ))
        .bind(&s.session_id)
        .bind(id(s.user_id))
        .bind(symbols_json(&s.symbols))
        .bind(&s.timeframe)
        .bind(ts(s.start_date))
        .bind(ts(s.end_date))
        .bind(&s.initial_capital)
        .bind(&s.final_equity)
        .bind(s.total_return_pct)
        .bind(count_to_i64(s.total_trades))
        .bind(reason_str(s.reason))
        .bind(ts(s.created_at))
        .bind(ts(s.finished_at))
        .bind(&record.params)
        .bind(&record.metrics)
        .bind(&record.trades)
        .bind(&record.equity_curve)
        .execute(self.pool())
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                AuthError::NotFound
            } else {
                AuthError::Database(e)
            }
        })?;
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
        let row = sqlx::query(concat!(
            "SELECT ",
            summary_columns!(),
            ", params, metrics, trades, equity_curve FROM simulation_results \
             WHERE user_id = ? AND session_id = ?"
        ))
        .bind(id(user_id))
        .bind(session_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)?;
        Ok(SimulationRecord {
            summary: summary_from_row(&row)?,
            params: row.try_get("params")?,
            metrics: row.try_get("metrics")?,
            trades: row.try_get("trades")?,
            equity_curve: row.try_get("equity_curve")?,
        })
    }

    async fn list_results(
        &self,
        user_id: Uuid,
        page: Page,
    ) -> Result<Vec<SimulationSummary>, AuthError> {
        sqlx::query(concat!(
            "SELECT ",
            summary_columns!(),
            " FROM simulation_results WHERE user_id = ? \
             ORDER BY created_at DESC, session_id DESC LIMIT ? OFFSET ?"
        ))
        .bind(id(user_id))
        .bind(page.sql_limit())
        .bind(page.sql_offset())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(summary_from_row)
        .collect()
    }

    async fn delete_result(&self, user_id: Uuid, session_id: &str) -> Result<(), AuthError> {
        if !valid_session_id(session_id) {
            return Err(AuthError::NotFound);
        }
        let done =
            sqlx::query("DELETE FROM simulation_results WHERE user_id = ? AND session_id = ?")
                .bind(id(user_id))
                .bind(session_id)
                .execute(self.pool())
                .await?;
        match done.rows_affected() {
            0 => Err(AuthError::NotFound),
            _ => Ok(()),
        }
    }
}
