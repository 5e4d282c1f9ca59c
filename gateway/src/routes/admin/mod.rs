//! The operators' REST API under `/admin`: users (search, create or invite, plan, role,
//! disable and enable, unlock, second-factor reset), any user's API keys, live
//! simulation sessions across the cluster, the audit log and usage.
//!
//! Only an active user with the role `admin` gets in: the Bearer token is checked as
//! for every route (401 without a valid one), then the user is read from the database,
//! because tokens carry no role and a role can be taken away; anyone else gets 403
//! `FORBIDDEN`. Every change is written to the audit log with the operator as the actor
//! and the user concerned as the subject.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use auth::{
    Account, AccountStore, AdminStore, AuditKind, AuditQuery, AuthError, NewAuditEvent, NewUser,
    Page, PasswordTokenPurpose, Plan, Role, Secret, UsageQuery, User, UserQuery, UserStatus,
    UserStore,
};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use protocol::ErrorCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::keys::KeyEntry;
use super::rfc3339;
use crate::cluster::control::{LiveSession, StopOutcome};
use crate::cluster::revocation::Revoked;
use crate::errors::HttpError;
use crate::extract::{client_ip, Operator};
use crate::state::AppState;

mod audit;
mod keys;
mod sessions;
mod usage;
mod users;

pub use users::created_user_detail;

/// Page size when the request gives none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size accepted.
pub const MAX_LIMIT: u32 = 500;

/// Registers the `/admin` routes.
pub fn configure(cfg: &mut impl super::Registrar) {
    resource!(cfg, "/admin/users", get => users::list_users, post => users::create_user);
    resource!(cfg, "/admin/users/{id}", get => users::get_user, patch => users::update_user);
    resource!(cfg, "/admin/users/{id}/unlock", post => users::unlock);
    resource!(cfg, "/admin/users/{id}/reset-2fa", post => users::reset_second_factor);
    resource!(cfg, "/admin/users/{id}/keys", get => keys::user_keys, post => keys::create_key);
    resource!(cfg, "/admin/keys/{id}", delete => keys::revoke_key);
    resource!(cfg, "/admin/sessions", get => sessions::sessions);
    resource!(cfg, "/admin/sessions/{id}", delete => sessions::stop_session);
    resource!(cfg, "/admin/audit", get => audit::audit);
    resource!(cfg, "/admin/usage", get => usage::usage);
}

// Access, parsing and answers shared by the handlers.

fn not_found(what: &str) -> HttpError {
    HttpError::not_found(format!("no such {what}"))
}

/// A path id that is not a UUID names nothing.
fn path_id(raw: &str, what: &str) -> Result<Uuid, HttpError> {
    raw.parse().map_err(|_| not_found(what))
}

/// The query string as `T`; unknown parameters are refused, so a misspelt filter
/// never silently widens a listing.
fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, HttpError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| HttpError::invalid_params(format!("bad query parameters: {e}")))
}

/// A JSON body as `T`, refused with a 400 that says what is wrong.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    serde_json::from_slice(bytes)
        .map_err(|e| HttpError::invalid_params(format!("bad JSON body: {e}")))
}

fn page(limit: Option<u32>, offset: Option<u64>) -> Result<(u32, u64), HttpError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(HttpError::invalid_params(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok((limit, offset.unwrap_or(0)))
}

fn parse_plan(s: &str) -> Result<Plan, HttpError> {
    s.parse()
        .map_err(|_| HttpError::invalid_params("plan must be free, professional or enterprise"))
}

fn parse_role(s: &str) -> Result<Role, HttpError> {
    s.parse()
        .map_err(|_| HttpError::invalid_params("role must be user or admin"))
}

fn parse_user(s: &str) -> Result<Uuid, HttpError> {
    s.parse()
        .map_err(|_| HttpError::invalid_params("user must be a user id (UUID)"))
}

/// An instant: RFC 3339 (`2024-05-01T12:00:00Z`) or a date (`2024-05-01`, midnight
/// UTC).
fn parse_time(name: &str, s: &str) -> Result<DateTime<Utc>, HttpError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(s) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            HttpError::invalid_params(format!(
                "{name} must be an RFC 3339 time (2024-05-01T12:00:00Z) or a date (2024-05-01)"
            ))
        })
}

/// A time range `[from, until)`; either end may be open.
type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `[from, until)` from the query, checked.
fn time_range(from: Option<&str>, until: Option<&str>) -> Result<TimeRange, HttpError> {
    let from = from.map(|s| parse_time("from", s)).transpose()?;
    let until = until.map(|s| parse_time("until", s)).transpose()?;
    if let (Some(f), Some(u)) = (from, until) {
        if f > u {
            return Err(HttpError::invalid_params("from must not be after until"));
        }
    }
    Ok((from, until))
}

/// Writes an operator's action to the audit log. The action has happened by now, so a
/// failed write is logged rather than turned into an error the operator would retry.
async fn audited(
    state: &AppState,
    req: &HttpRequest,
    admin: &User,
    kind: AuditKind,
    subject: Option<Uuid>,
    detail: serde_json::Value,
) {
    let mut event = NewAuditEvent::new(kind)
        .actor(admin.id)
        .ip(client_ip(req).as_deref())
        .detail(detail);
    event.subject_user_id = subject;
    if let Err(e) = state.db.append_audit(event).await {
        tracing::error!(%kind, admin = %admin.id, error = %e, "operator action not written to the audit log");
    }
}

async fn account(state: &AppState, user_id: Uuid) -> Result<Account, HttpError> {
    match state.db.account(user_id).await {
        Ok(a) => Ok(a),
        Err(AuthError::NotFound) => Err(not_found("user")),
        Err(e) => Err(e.into()),
    }
}
