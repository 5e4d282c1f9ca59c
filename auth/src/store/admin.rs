//! Operators' queries: the [`AdminStore`] trait, its dispatch through [`Database`], and
//! the input checks both backends share.

use std::future::Future;

use uuid::Uuid;

use super::Database;
use crate::account::AuditQuery;
use crate::admin::{PlanUsage, UsageListing, UsageQuery, UserListing, UserQuery};
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

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Database::Sqlite($store) => $call.await,
            Database::Postgres($store) => $call.await,
        }
    };
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
