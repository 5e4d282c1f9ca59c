//! Operators' queries: the [`AdminStore`] trait, its SQL on both backends and its
//! dispatch through [`Database`].

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Encode, Executor, Row, Type};
use uuid::Uuid;

use super::shared::{decode_enum, USER};
use super::sql::{
    count, Borrowed, Column, Dialect, Id, Param, Statement, Store, Ts, Value, KEY_COLUMNS,
    USER_COLUMNS,
};
use super::Database;
use crate::account::{Account, AuditQuery};
use crate::admin::{PlanUsage, UsageListing, UsageQuery, UserListing, UserQuery, UserUsage};
use crate::error::AuthError;
use crate::model::{ApiKey, Role, User};

/// What the operators' REST API needs beyond [`UserStore`](super::UserStore) and
/// [`AccountStore`](super::AccountStore): searching users, counting audit events,
/// finding any key by id, and usage reports from the stored results.
///
/// Implemented by [`SqliteStore`](super::SqliteStore),
/// [`PostgresStore`](super::PostgresStore) and [`Database`]; both backends run the
/// same suite (`tests/suite/admin.rs`). Every value reaches SQL as a bound parameter.
pub trait AdminStore: Send + Sync {
    /// Users matching `query` in creation order, with how many match in all.
    /// [`AuthError::InvalidInput`] for an email fragment with NUL or over
    /// [`MAX_EMAIL_FILTER_CHARS`](crate::admin::MAX_EMAIL_FILTER_CHARS) characters.
    fn search_users(
        &self,
        query: UserQuery,
    ) -> impl Future<Output = Result<UserListing, AuthError>> + Send;

    /// Changes a user's role and returns the updated user; [`AuthError::NotFound`] if
    /// there is no such user.
    fn set_role(
        &self,
        user_id: Uuid,
        role: Role,
    ) -> impl Future<Output = Result<User, AuthError>> + Send;

    /// How many audit events match `query`'s filters (its page is ignored).
    fn count_audit(&self, query: AuditQuery)
        -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// Any user's key by its id, or [`AuthError::NotFound`].
    fn api_key_by_id(&self, key_id: Uuid)
        -> impl Future<Output = Result<ApiKey, AuthError>> + Send;

    /// Finished simulations per user (most recently active first), with how many users
    /// match in all.
    fn usage_by_user(
        &self,
        query: UsageQuery,
    ) -> impl Future<Output = Result<UsageListing, AuthError>> + Send;

    /// Finished simulations per plan, for the plans with any (in plan order).
    fn usage_by_plan(
        &self,
        query: UsageQuery,
    ) -> impl Future<Output = Result<Vec<PlanUsage>, AuthError>> + Send;
}

/// The email fragment of a search as stored emails are spelt (lowercase), or `None`
/// when it filters nothing.
pub(super) fn email_fragment(query: &UserQuery) -> Result<Option<String>, AuthError> {
    let Some(fragment) = query.email_contains.as_deref() else {
        return Ok(None);
    };
    if fragment.contains('\0') {
        return Err(AuthError::InvalidInput {
            field: "email",
            reason: "must not contain NUL characters",
        });
    }
    if fragment.chars().count() > crate::admin::MAX_EMAIL_FILTER_CHARS {
        return Err(AuthError::InvalidInput {
            field: "email",
            reason: "is too long",
        });
    }
    let fragment = fragment.trim().to_lowercase();
    Ok((!fragment.is_empty()).then_some(fragment))
}

/// Checks the address filter of an audit query (Postgres text cannot hold NUL).
pub(super) fn check_audit_query(query: &AuditQuery) -> Result<(), AuthError> {
    if query.ip.as_deref().is_some_and(|ip| ip.contains('\0')) {
        return Err(AuthError::InvalidInput {
            field: "ip",
            reason: "must not contain NUL characters",
        });
    }
    Ok(())
}

/// A stored sum or count as `u64`; negative values cannot occur (the summed columns
/// are checked `>= 0`, ticks are counts), so they read as 0.
pub(super) fn non_negative(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Where a plan sorts in listings: smallest first, as [`Plan::ALL`](protocol::Plan::ALL).
pub(super) fn plan_order(plan: protocol::Plan) -> usize {
    protocol::Plan::ALL
        .iter()
        .position(|p| *p == plan)
        .unwrap_or(usize::MAX)
}

impl AdminStore for Database {
    async fn search_users(&self, query: UserQuery) -> Result<UserListing, AuthError> {
        dispatch!(self, store => store.search_users(query))
    }

    async fn set_role(&self, user_id: Uuid, role: Role) -> Result<User, AuthError> {
        dispatch!(self, store => store.set_role(user_id, role))
    }

    async fn count_audit(&self, query: AuditQuery) -> Result<u64, AuthError> {
        dispatch!(self, store => store.count_audit(query))
    }

    async fn api_key_by_id(&self, key_id: Uuid) -> Result<ApiKey, AuthError> {
        dispatch!(self, store => store.api_key_by_id(key_id))
    }

    async fn usage_by_user(&self, query: UsageQuery) -> Result<UsageListing, AuthError> {
        dispatch!(self, store => store.usage_by_user(query))
    }

    async fn usage_by_plan(&self, query: UsageQuery) -> Result<Vec<PlanUsage>, AuthError> {
        dispatch!(self, store => store.usage_by_plan(query))
    }
}

/// Appends the filters of a user search (after a `WHERE`); values are bound.
fn push_user_filters<DB: Dialect>(
    sql: &mut Statement<'_, DB>,
    query: &UserQuery,
    email: Option<String>,
    now: DateTime<Utc>,
) where
    String: Param<DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    Ts: Param<DB>,
{
    if let Some(email) = email {
        sql.push(&format!(" AND {}(email, ", DB::TEXT_POSITION))
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
            sql.push(" AND locked_until > ").push_bind(Ts(now));
        }
        Some(false) => {
            sql.push(" AND (locked_until IS NULL OR locked_until <= ")
                .push_bind(Ts(now))
                .push(")");
        }
        None => {}
    }
}

/// Appends the filters of a usage report (after a `WHERE`); values are bound.
fn push_usage_filters<DB: Dialect>(sql: &mut Statement<'_, DB>, query: &UsageQuery)
where
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    Id: Param<DB>,
    Ts: Param<DB>,
{
    if let Some(from) = query.from {
        sql.push(" AND r.finished_at >= ").push_bind(Ts(from));
    }
    if let Some(until) = query.until {
        sql.push(" AND r.finished_at < ").push_bind(Ts(until));
    }
    if let Some(user_id) = query.user_id {
        sql.push(" AND u.id = ").push_bind(Id(user_id));
    }
    if let Some(plan) = query.plan {
        sql.push(" AND u.plan = ").push_bind(plan.as_str());
    }
}

/// The aggregates of a usage report, before its `FROM`: ticks are
/// `simulation_end.ticks_processed` from the metrics JSON (0 if a record lacks it).
fn usage_columns<DB: Dialect>() -> String {
    let ticks = DB::json_number("r.metrics", "ticks_processed");
    format!(
        "COUNT(*) AS simulations, CAST(COALESCE(SUM({ticks}), 0) AS BIGINT) AS ticks, \
         CAST(COALESCE(SUM(r.total_trades), 0) AS BIGINT) AS trades, \
         MAX(r.finished_at) AS last_finished_at"
    )
}

impl<DB: Dialect> AdminStore for Store<DB>
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
    async fn search_users(&self, query: UserQuery) -> Result<UserListing, AuthError> {
        let email = email_fragment(&query)?;
        let now = self.core.now();
        let mut count_sql = Statement::<DB>::new("SELECT COUNT(*) FROM users WHERE 1 = 1");
        push_user_filters(&mut count_sql, &query, email.clone(), now);
        let (sql_text, args) = count_sql.into_parts()?;
        let total: i64 = sqlx::query_scalar_with(&sql_text, args)
            .fetch_one(self.pool())
            .await?;

        let mut sql = Statement::<DB>::new(format!(
            "SELECT {USER_COLUMNS}, password_hash IS NOT NULL AS has_password, \
             password_version, email_verified_at, failed_login_count, locked_until, \
             EXISTS (SELECT 1 FROM totp_secrets t WHERE t.user_id = users.id \
                     AND t.confirmed_at IS NOT NULL) AS totp_enabled \
             FROM users WHERE 1 = 1"
        ));
        push_user_filters(&mut sql, &query, email, now);
        sql.push(" ORDER BY created_at, id LIMIT ")
            .push_bind(query.page.sql_limit())
            .push(" OFFSET ")
            .push_bind(query.page.sql_offset());
        let (sql, args) = sql.into_parts()?;
        let rows = sqlx::query_with(&sql, args).fetch_all(self.pool()).await?;
        let accounts = rows
            .iter()
            .map(|row| {
                Ok(Account {
                    user: Self::user_from_row(row, &USER)?,
                    has_password: row.try_get("has_password")?,
                    email_verified_at: row.try_get("email_verified_at")?,
                    failed_logins: count(row.try_get::<DB::Int, _>("failed_login_count")?),
                    locked_until: row.try_get("locked_until")?,
                    totp_enabled: row.try_get("totp_enabled")?,
                    password_version: row.try_get("password_version")?,
                })
            })
            .collect::<Result<_, AuthError>>()?;
        Ok(UserListing {
            accounts,
            total: non_negative(total),
        })
    }

    async fn set_role(&self, user_id: Uuid, role: Role) -> Result<User, AuthError> {
        sqlx::query(&format!(
            "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3 RETURNING {USER_COLUMNS}"
        ))
        .bind(role.as_str())
        .bind(Ts(self.core.now()))
        .bind(Id(user_id))
        .fetch_optional(self.pool())
        .await?
        .ok_or(AuthError::NotFound)
        .and_then(|row| Self::user_from_row(&row, &USER))
    }

    async fn count_audit(&self, query: AuditQuery) -> Result<u64, AuthError> {
        check_audit_query(&query)?;
        let mut sql = Statement::<DB>::new("SELECT COUNT(*) FROM audit_events WHERE 1 = 1");
        Self::push_audit_filters(&mut sql, &query);
        let (sql_text, args) = sql.into_parts()?;
        let total: i64 = sqlx::query_scalar_with(&sql_text, args)
            .fetch_one(self.pool())
            .await?;
        Ok(non_negative(total))
    }

    async fn api_key_by_id(&self, key_id: Uuid) -> Result<ApiKey, AuthError> {
        sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(Id(key_id))
            .fetch_optional(self.pool())
            .await?
            .ok_or(AuthError::NotFound)
            .and_then(|row| Self::key_from_row(&row))
    }

    async fn usage_by_user(&self, query: UsageQuery) -> Result<UsageListing, AuthError> {
        let mut count_sql = Statement::<DB>::new(
            "SELECT COUNT(DISTINCT r.user_id) FROM simulation_results r \
             JOIN users u ON u.id = r.user_id WHERE 1 = 1",
        );
        push_usage_filters(&mut count_sql, &query);
        let (sql_text, args) = count_sql.into_parts()?;
        let total: i64 = sqlx::query_scalar_with(&sql_text, args)
            .fetch_one(self.pool())
            .await?;

        let mut sql = Statement::<DB>::new(format!(
            "SELECT u.id, u.email, u.plan, {} \
             FROM simulation_results r JOIN users u ON u.id = r.user_id WHERE 1 = 1",
            usage_columns::<DB>()
        ));
        push_usage_filters(&mut sql, &query);
        sql.push(" GROUP BY u.id, u.email, u.plan ORDER BY last_finished_at DESC, u.id LIMIT ")
            .push_bind(query.page.sql_limit())
            .push(" OFFSET ")
            .push_bind(query.page.sql_offset());
        let (sql, args) = sql.into_parts()?;
        let rows = sqlx::query_with(&sql, args).fetch_all(self.pool()).await?;
        let users = rows
            .iter()
            .map(|row| {
                Ok(UserUsage {
                    user_id: Self::get_id(row, "id")?,
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
        let mut sql = Statement::<DB>::new(format!(
            "SELECT u.plan, COUNT(DISTINCT u.id) AS active_users, {} \
             FROM simulation_results r JOIN users u ON u.id = r.user_id WHERE 1 = 1",
            usage_columns::<DB>()
        ));
        push_usage_filters(&mut sql, &query);
        sql.push(" GROUP BY u.plan");
        let (sql, args) = sql.into_parts()?;
        let rows = sqlx::query_with(&sql, args).fetch_all(self.pool()).await?;
        let mut plans = rows
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
