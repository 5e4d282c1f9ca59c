//! [`AdminStore`](super::AdminStore) SQL on SQLite.

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::admin::{check_audit_query, email_fragment, non_negative, plan_order, AdminStore};
use super::shared::{decode_enum, USER};
use super::sqlite::{get_id, id, ts, user_from_row};
use super::sqlite_accounts::push_audit_filters;
use super::SqliteStore;
use crate::account::{Account, AuditQuery};
use crate::admin::{PlanUsage, UsageListing, UsageQuery, UserListing, UserQuery, UserUsage};
use crate::error::AuthError;
use crate::model::{ApiKey, Role, User};

/// Ticks of a stored run: `simulation_end.ticks_processed` from the metrics JSON
/// (0 if a record lacks it).
const TICKS: &str = "CASE WHEN json_type(r.metrics, '$.ticks_processed') = 'integer' \
                     THEN json_extract(r.metrics, '$.ticks_processed') ELSE 0 END";

/// Appends the filters of a user search (after a `WHERE`); values are bound.
fn push_user_filters(
    sql: &mut QueryBuilder<'_, Sqlite>,
    query: &UserQuery,
    email: Option<String>,
    now: String,
) {
    if let Some(email) = email {
        // instr() matches the text literally, unlike LIKE with its wildcards.
        sql.push(" AND instr(email, ")
            .push_bind(email)
            .push(") > 0");
    }
    if let Some(plan) = query.plan {
        sql.push(" AND plan = ").push_bind(plan.as_str());
    }
    if let Some(role) = query.role {
        sql.push(" AND role = ").push_bind(role.as_str());
    }
    if let Some(status) = query.status {
        sql.push(" AND status = ").push_bind(status.as_str());
    }
    match query.locked {
        Some(true) => {
            sql.push(" AND locked_until > ").push_bind(now);
        }
        Some(false) => {
            sql.push(" AND (locked_until IS NULL OR locked_until <= ")
                .push_bind(now)
                .push(")");
        }
        None => {}
    }
}

/// Appends the filters of a usage report (after a `WHERE`); values are bound.
fn push_usage_filters(sql: &mut QueryBuilder<'_, Sqlite>, query: &UsageQuery) {
    if let Some(from) = query.from {
        sql.push(" AND r.finished_at >= ").push_bind(ts(from));
    }
    if let Some(until) = query.until {
        sql.push(" AND r.finished_at < ").push_bind(ts(until));
    }
    if let Some(user_id) = query.user_id {
        sql.push(" AND u.id = ").push_bind(id(user_id));
    }
    if let Some(plan) = query.plan {
        sql.push(" AND u.plan = ").push_bind(plan.as_str());
    }
}

fn account_from_row(row: &SqliteRow) -> Result<Account, AuthError> {
    Ok(Account {
        user: user_from_row(row, &USER)?,
        has_password: row.try_get("has_password")?,
        email_verified_at: row.try_get("email_verified_at")?,
        failed_logins: u32::try_from(row.try_get::<i64, _>("failed_login_count")?)
            .unwrap_or(u32::MAX),
        locked_until: row.try_get("locked_until")?,
        totp_enabled: row.try_get("totp_enabled")?,
        password_version: row.try_get("password_version")?,
    })
}

impl AdminStore for SqliteStore {
    async fn search_users(&self, query: UserQuery) -> Result<UserListing, AuthError> {
        let email = email_fragment(&query)?;
        let now = ts(self.core.now());
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM users WHERE 1 = 1");
        push_user_filters(&mut count, &query, email.clone(), now.clone());
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;

        let mut sql = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            user_columns!(),
            ", password_hash IS NOT NULL AS has_password, password_version, \
             email_verified_at, failed_login_count, locked_until, \
             EXISTS (SELECT 1 FROM totp_secrets t WHERE t.user_id = users.id \
                     AND t.confirmed_at IS NOT NULL) AS totp_enabled \
             FROM users WHERE 1 = 1"
        ));
        push_user_filters(&mut sql, &query, email, now);
        sql.push(" ORDER BY created_at, id LIMIT ")
            .push_bind(query.page.sql_limit())
            .push(" OFFSET ")
            .push_bind(query.page.sql_offset());
        let accounts = sql
            .build()
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(account_from_row)
            .collect::<Result<_, _>>()?;
        Ok(UserListing {
            accounts,
            total: non_negative(total),
        })
    }

    async fn set_role(&self, user_id: Uuid, role: Role) -> Result<User, AuthError> {
        sqlx::query(concat!(
            "UPDATE users SET role = ?, updated_at = ? WHERE id = ? RETURNING ",
            user_columns!()
        ))
        .bind(role.as_str())
        .bind(ts(self.core.now()))
        .bind(id(user_id))
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| user_from_row(&row, &USER))
    }

    async fn count_audit(&self, query: AuditQuery) -> Result<u64, AuthError> {
        check_audit_query(&query)?;
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM audit_events WHERE 1 = 1");
        push_audit_filters(&mut sql, &query);
        let total: i64 = sql.build_query_scalar().fetch_one(self.pool()).await?;
        Ok(non_negative(total))
    }

    async fn api_key_by_id(&self, key_id: Uuid) -> Result<ApiKey, AuthError> {
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE id = ?"
        ))
        .bind(id(key_id))
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| super::sqlite::key_from_row(&row))
    }

    async fn usage_by_user(&self, query: UsageQuery) -> Result<UsageListing, AuthError> {
        let mut count = QueryBuilder::<Sqlite>::new(
            "SELECT COUNT(DISTINCT r.user_id) FROM simulation_results r \
             JOIN users u ON u.id = r.user_id WHERE 1 = 1",
        );
        push_usage_filters(&mut count, &query);
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;

        let mut sql = QueryBuilder::<Sqlite>::new(format!(
            "SELECT u.id, u.email, u.plan, COUNT(*) AS simulations, \
             COALESCE(SUM({TICKS}), 0) AS ticks, COALESCE(SUM(r.total_trades), 0) AS trades, \
             MAX(r.finished_at) AS last_finished_at \
             FROM simulation_results r JOIN users u ON u.id = r.user_id WHERE 1 = 1"
        ));
        push_usage_filters(&mut sql, &query);
        sql.push(" GROUP BY u.id, u.email, u.plan ORDER BY last_finished_at DESC, u.id LIMIT ")
            .push_bind(query.page.sql_limit())
            .push(" OFFSET ")
            .push_bind(query.page.sql_offset());
        let users = sql
            .build()
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                let last: Option<String> = row.try_get("last_finished_at")?;
                Ok(UserUsage {
                    user_id: get_id(row, "id")?,
                    email: row.try_get("email")?,
                    plan: decode_enum("plan", row.try_get("plan")?)?,
                    simulations: non_negative(row.try_get("simulations")?),
                    ticks: non_negative(row.try_get("ticks")?),
                    trades: non_negative(row.try_get("trades")?),
                    last_finished_at: parse_ts("last_finished_at", last)?,
                })
            })
            .collect::<Result<_, AuthError>>()?;
        Ok(UsageListing {
            users,
            total: non_negative(total),
        })
    }

    async fn usage_by_plan(&self, query: UsageQuery) -> Result<Vec<PlanUsage>, AuthError> {
        let mut sql = QueryBuilder::<Sqlite>::new(format!(
            "SELECT u.plan, COUNT(DISTINCT u.id) AS active_users, COUNT(*) AS simulations, \
             COALESCE(SUM({TICKS}), 0) AS ticks, COALESCE(SUM(r.total_trades), 0) AS trades, \
             MAX(r.finished_at) AS last_finished_at \
             FROM simulation_results r JOIN users u ON u.id = r.user_id WHERE 1 = 1"
        ));
        push_usage_filters(&mut sql, &query);
        sql.push(" GROUP BY u.plan ORDER BY u.plan");
        let mut plans = sql
            .build()
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                let last: Option<String> = row.try_get("last_finished_at")?;
                Ok(PlanUsage {
                    plan: decode_enum("plan", row.try_get("plan")?)?,
                    active_users: non_negative(row.try_get("active_users")?),
                    simulations: non_negative(row.try_get("simulations")?),
                    ticks: non_negative(row.try_get("ticks")?),
                    trades: non_negative(row.try_get("trades")?),
                    last_finished_at: parse_ts("last_finished_at", last)?,
                })
            })
            .collect::<Result<Vec<_>, AuthError>>()?;
        plans.sort_by_key(|p| plan_order(p.plan));
        Ok(plans)
    }
}

/// A stored timestamp read through an aggregate (which SQLite hands back as plain
/// text, without the column's declared type).
fn parse_ts(
    column: &str,
    text: Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, AuthError> {
    text.map(|t| {
        chrono::DateTime::parse_from_rfc3339(&t)
            .map(|at| at.with_timezone(&chrono::Utc))
            .map_err(|e| {
                AuthError::Database(sqlx::Error::ColumnDecode {
                    index: column.to_owned(),
                    source: Box::new(e),
                })
            })
    })
    .transpose()
}
