//! [`AdminStore`](super::AdminStore) SQL on Postgres.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::admin::{check_audit_query, email_fragment, non_negative, plan_order, AdminStore};
use super::postgres::{get_id, user_from_row};
use super::postgres_accounts::push_audit_filters;
use super::shared::{decode_enum, USER};
use super::PostgresStore;
use crate::account::{Account, AuditQuery};
use crate::admin::{PlanUsage, UsageListing, UsageQuery, UserListing, UserQuery, UserUsage};
use crate::error::AuthError;
use crate::model::{ApiKey, Role, User};

/// Ticks of a stored run: `simulation_end.ticks_processed` from the metrics JSON
/// (0 if a record lacks it or holds something else there).
const TICKS: &str = "CASE WHEN jsonb_typeof(r.metrics -> 'ticks_processed') = 'number' \
                     THEN (r.metrics ->> 'ticks_processed')::numeric ELSE 0 END";

/// Appends the filters of a user search (after a `WHERE`); values are bound.
fn push_user_filters(
    sql: &mut QueryBuilder<'_, Postgres>,
    query: &UserQuery,
    email: Option<String>,
    now: DateTime<Utc>,
) {
    if let Some(email) = email {
        // strpos() matches the text literally, unlike LIKE with its wildcards.
        sql.push(" AND strpos(email, ")
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
fn push_usage_filters(sql: &mut QueryBuilder<'_, Postgres>, query: &UsageQuery) {
    if let Some(from) = query.from {
        sql.push(" AND r.finished_at >= ").push_bind(from);
    }
    if let Some(until) = query.until {
        sql.push(" AND r.finished_at < ").push_bind(until);
    }
    if let Some(user_id) = query.user_id {
        sql.push(" AND u.id = ").push_bind(user_id);
    }
    if let Some(plan) = query.plan {
        sql.push(" AND u.plan = ").push_bind(plan.as_str());
    }
}

fn account_from_row(row: &PgRow) -> Result<Account, AuthError> {
    Ok(Account {
        user: user_from_row(row, &USER)?,
        has_password: row.try_get("has_password")?,
        email_verified_at: row.try_get("email_verified_at")?,
        failed_logins: u32::try_from(row.try_get::<i32, _>("failed_login_count")?)
            .unwrap_or(u32::MAX),
        locked_until: row.try_get("locked_until")?,
        totp_enabled: row.try_get("totp_enabled")?,
        password_version: row.try_get("password_version")?,
    })
}

impl AdminStore for PostgresStore {
    async fn search_users(&self, query: UserQuery) -> Result<UserListing, AuthError> {
        let email = email_fragment(&query)?;
        let now = self.core.now();
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM users WHERE 1 = 1");
        push_user_filters(&mut count, &query, email.clone(), now);
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;

        let mut sql = QueryBuilder::<Postgres>::new(concat!(
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
            "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3 RETURNING ",
            user_columns!()
        ))
        .bind(role.as_str())
        .bind(self.core.now())
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| user_from_row(&row, &USER))
    }

    async fn count_audit(&self, query: AuditQuery) -> Result<u64, AuthError> {
        check_audit_query(&query)?;
        let mut sql =
            QueryBuilder::<Postgres>::new("SELECT COUNT(*) FROM audit_events WHERE 1 = 1");
        push_audit_filters(&mut sql, &query);
        let total: i64 = sql.build_query_scalar().fetch_one(self.pool()).await?;
        Ok(non_negative(total))
    }

    async fn api_key_by_id(&self, key_id: Uuid) -> Result<ApiKey, AuthError> {
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM api_keys WHERE id = $1"
        ))
        .bind(key_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| super::postgres::key_from_row(&row))
    }

    async fn usage_by_user(&self, query: UsageQuery) -> Result<UsageListing, AuthError> {
        let mut count = QueryBuilder::<Postgres>::new(
            "SELECT COUNT(DISTINCT r.user_id) FROM simulation_results r \
             JOIN users u ON u.id = r.user_id WHERE 1 = 1",
        );
        push_usage_filters(&mut count, &query);
        let total: i64 = count.build_query_scalar().fetch_one(self.pool()).await?;

        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT u.id, u.email, u.plan, COUNT(*) AS simulations, \
             COALESCE(SUM({TICKS}), 0)::BIGINT AS ticks, \
             COALESCE(SUM(r.total_trades), 0)::BIGINT AS trades, \
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
                Ok(UserUsage {
                    user_id: get_id(row, "id")?,
                    email: row.try_get("email")?,
                    plan: decode_enum("plan", row.try_get("plan")?)?,
                    simulations: non_negative(row.try_get("simulations")?),
                    ticks: non_negative(row.try_get("ticks")?),
                    trades: non_negative(row.try_get("trades")?),
                    last_finished_at: row.try_get("last_finished_at")?,
                })
            })
            .collect::<Result<_, AuthError>>()?;
        Ok(UsageListing {
            users,
            total: non_negative(total),
        })
    }

    async fn usage_by_plan(&self, query: UsageQuery) -> Result<Vec<PlanUsage>, AuthError> {
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT u.plan, COUNT(DISTINCT u.id) AS active_users, COUNT(*) AS simulations, \
             COALESCE(SUM({TICKS}), 0)::BIGINT AS ticks, \
             COALESCE(SUM(r.total_trades), 0)::BIGINT AS trades, \
             MAX(r.finished_at) AS last_finished_at \
             FROM simulation_results r JOIN users u ON u.id = r.user_id WHERE 1 = 1"
        ));
        push_usage_filters(&mut sql, &query);
        sql.push(" GROUP BY u.plan");
        let mut plans = sql
            .build()
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|row| {
                Ok(PlanUsage {
                    plan: decode_enum("plan", row.try_get("plan")?)?,
                    active_users: non_negative(row.try_get("active_users")?),
                    simulations: non_negative(row.try_get("simulations")?),
                    ticks: non_negative(row.try_get("ticks")?),
                    trades: non_negative(row.try_get("trades")?),
                    last_finished_at: row.try_get("last_finished_at")?,
                })
            })
            .collect::<Result<Vec<_>, AuthError>>()?;
        plans.sort_by_key(|p| plan_order(p.plan));
        Ok(plans)
    }
}
