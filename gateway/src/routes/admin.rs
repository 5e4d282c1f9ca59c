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

use super::accounts::KeyEntry;
use crate::app::AppState;
use crate::control::{LiveSession, StopOutcome};
use crate::errors::HttpError;
use crate::ratelimit::client_ip;
use crate::revocation::Revoked;

/// Page size when the request gives none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size accepted.
pub const MAX_LIMIT: u32 = 500;

/// Registers the `/admin` routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    resource!(cfg, "/admin/users", get => list_users, post => create_user);
    resource!(cfg, "/admin/users/{id}", get => get_user, patch => update_user);
    resource!(cfg, "/admin/users/{id}/unlock", post => unlock);
    resource!(cfg, "/admin/users/{id}/reset-2fa", post => reset_second_factor);
    resource!(cfg, "/admin/users/{id}/keys", get => user_keys, post => create_key);
    resource!(cfg, "/admin/keys/{id}", delete => revoke_key);
    resource!(cfg, "/admin/sessions", get => sessions);
    resource!(cfg, "/admin/sessions/{id}", delete => stop_session);
    resource!(cfg, "/admin/audit", get => audit);
    resource!(cfg, "/admin/usage", get => usage);
}

// ---------------------------------------------------------------------------------
// Access, parsing and answers shared by the handlers.

/// The operator making the request: 401 without a valid token, 403 unless the token's
/// user is an active admin now.
async fn operator(req: &HttpRequest, state: &AppState) -> Result<User, HttpError> {
    let claims = super::auth::authenticated(req, state)?;
    let user = match state.db.user_by_id(claims.sub).await {
        Ok(user) => user,
        // Deleted since the token was issued.
        Err(AuthError::NotFound) => {
            return Err(HttpError::auth_failed(
                "invalid, revoked or expired credentials",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if user.role != Role::Admin || user.status != UserStatus::Active {
        tracing::info!(user_id = %user.id, "admin route refused: not an operator");
        return Err(HttpError::forbidden(
            "operators only: this account does not have the admin role",
        ));
    }
    Ok(user)
}

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

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
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

/// Applies a revocation here and announces it to the other nodes (they also read it
/// from the database within half a second).
async fn announce(state: &AppState, revoked: Revoked) {
    state.revocations.apply(revoked);
    if let Err(e) = crate::revocation::announce(&state.settings.session_store, revoked).await {
        tracing::warn!(error = %e, "revocation not announced on Redis; nodes read it from the database");
    }
}

// ---------------------------------------------------------------------------------
// Users.

/// A user as operators see it.
#[derive(Debug, Serialize)]
pub struct UserEntry {
    /// User id.
    pub id: String,
    /// Normalised email.
    pub email: String,
    /// `free`, `professional` or `enterprise`.
    pub plan: Plan,
    /// `user` or `admin`.
    pub role: String,
    /// `active`, `disabled` or `locked`.
    pub status: String,
    /// Creation time.
    pub created_at: String,
    /// Last change of plan, role, status or password.
    pub updated_at: String,
    /// Whether a password is set (API-key-only and invited users have none).
    pub has_password: bool,
    /// When the email was verified.
    pub email_verified_at: Option<String>,
    /// Whether a TOTP second factor is required at login.
    pub totp_enabled: bool,
    /// Failed logins in the current window.
    pub failed_logins: u32,
    /// Logins are refused until then (only while that lies ahead).
    pub locked_until: Option<String>,
}

impl UserEntry {
    fn new(a: Account, now: DateTime<Utc>) -> Self {
        let locked_until = a.locked_until.filter(|until| *until > now).map(rfc3339);
        UserEntry {
            id: a.user.id.to_string(),
            email: a.user.email,
            plan: a.user.plan,
            role: a.user.role.to_string(),
            status: a.user.status.to_string(),
            created_at: rfc3339(a.user.created_at),
            updated_at: rfc3339(a.user.updated_at),
            has_password: a.has_password,
            email_verified_at: a.email_verified_at.map(rfc3339),
            totp_enabled: a.totp_enabled,
            failed_logins: a.failed_logins,
            locked_until,
        }
    }
}

async fn account(state: &AppState, user_id: Uuid) -> Result<Account, HttpError> {
    match state.db.account(user_id).await {
        Ok(a) => Ok(a),
        Err(AuthError::NotFound) => Err(not_found("user")),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFilters {
    email: Option<String>,
    plan: Option<String>,
    role: Option<String>,
    status: Option<String>,
    locked: Option<bool>,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// `GET /admin/users?email=&plan=&role=&status=&locked=&limit=&offset=`: users in
/// creation order with the total matching.
pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    operator(&req, &state).await?;
    let f: UserFilters = query(&req)?;
    let (limit, offset) = page(f.limit, f.offset)?;
    let q = UserQuery {
        email_contains: f.email,
        plan: f.plan.as_deref().map(parse_plan).transpose()?,
        role: f.role.as_deref().map(parse_role).transpose()?,
        status: f
            .status
            .as_deref()
            .map(|s| {
                s.parse::<UserStatus>().map_err(|_| {
                    HttpError::invalid_params("status must be active, disabled or locked")
                })
            })
            .transpose()?,
        locked: f.locked,
        page: Page::new(offset, limit),
    };
    let listing = state.db.search_users(q).await?;
    let now = state.clock.now();
    let users: Vec<UserEntry> = listing
        .accounts
        .into_iter()
        .map(|a| UserEntry::new(a, now))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "users": users,
        "total": listing.total,
        "limit": limit,
        "offset": offset,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    email: String,
    /// Without one, the user is invited: a token that sets the password goes out (and
    /// until it is used the account works only with API keys an operator creates).
    password: Option<String>,
    plan: Option<String>,
    role: Option<String>,
}

/// What the audit log says of a user an operator created (here or at the console).
pub fn created_user_detail(user: &User, invited: bool) -> serde_json::Value {
    json!({
        "action": "create_user",
        "email": user.email,
        "plan": user.plan,
        "role": user.role.as_str(),
        "invited": invited,
    })
}

/// `POST /admin/users`: creates a user with a password (the operator vouches for the
/// address, so it counts as verified and the user can log in at once), or invites one
/// without: then a password token goes out through the notifier, and setting the
/// password with it (`POST /auth/password/reset`) also verifies the address (201).
pub async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let admin = operator(&req, &state).await?;
    let b: CreateUser = body(&bytes)?;
    let mut new = NewUser::new(b.email);
    if let Some(plan) = &b.plan {
        new = new.plan(parse_plan(plan)?);
    }
    if let Some(role) = &b.role {
        new = new.role(parse_role(role)?);
    }
    let invited = b.password.is_none();
    let mut invitation_sent = false;
    let user = match b.password {
        Some(password) => {
            let r = state
                .db
                .register_user(new, Secret::new(password), client_ip(&req))
                .await?;
            // The operator vouches for the address, so the password works at once
            // (the registration's verification token is not sent; it expires unused).
            state
                .db
                .mark_email_verified(r.user.id, Some(admin.id))
                .await?;
            r.user
        }
        None => {
            // An invitation: the user chooses a password with the token, which also
            // proves the address.
            let user = state.db.create_user(new).await?;
            if let Some(token) = state
                .db
                .create_password_token(user.id, PasswordTokenPurpose::Invitation)
                .await?
            {
                state.notifier.invitation(&user.email, token.token.expose());
                invitation_sent = true;
            }
            user
        }
    };
    audited(
        &state,
        &req,
        &admin,
        AuditKind::AdminAction,
        Some(user.id),
        created_user_detail(&user, invited),
    )
    .await;
    let entry = UserEntry::new(account(&state, user.id).await?, state.clock.now());
    Ok(HttpResponse::Created().json(json!({
        "user": entry,
        "invited": invited,
        "invitation_sent": invitation_sent,
    })))
}

/// `GET /admin/users/{id}`: the user, their API keys and live login sessions.
pub async fn get_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    operator(&req, &state).await?;
    let id = path_id(&path, "user")?;
    let now = state.clock.now();
    let entry = UserEntry::new(account(&state, id).await?, now);
    let keys: Vec<KeyEntry> = state
        .db
        .list_api_keys(id)
        .await?
        .into_iter()
        .map(KeyEntry::from)
        .collect();
    let logins: Vec<serde_json::Value> = state
        .db
        .login_sessions(id)
        .await?
        .into_iter()
        .filter(|s| s.is_active_at(now))
        .map(|s| {
            json!({
                "id": s.id.to_string(),
                "created_at": rfc3339(s.created_at),
                "last_used_at": rfc3339(s.last_used_at),
                "expires_at": rfc3339(s.expires_at),
                "user_agent": s.user_agent,
                "ip": s.ip,
            })
        })
        .collect();
    let mut body =
        serde_json::to_value(entry).map_err(|_| HttpError::invalid_params("unencodable user"))?;
    body["keys"] = json!(keys);
    body["login_sessions"] = json!(logins);
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUser {
    plan: Option<String>,
    role: Option<String>,
    /// `active` or `disabled`.
    status: Option<String>,
}

/// `PATCH /admin/users/{id}` with any of `plan`, `role`, `status` (`active` or
/// `disabled`). Disabling refuses the user's tokens and closes their connections on
/// every node within a second. Operators cannot demote or disable themselves.
pub async fn update_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let admin = operator(&req, &state).await?;
    let id = path_id(&path, "user")?;
    let b: UpdateUser = body(&bytes)?;
    let plan = b.plan.as_deref().map(parse_plan).transpose()?;
    let role = b.role.as_deref().map(parse_role).transpose()?;
    let status = match b.status.as_deref() {
        None => None,
        Some("active") => Some(UserStatus::Active),
        Some("disabled") => Some(UserStatus::Disabled),
        Some(_) => {
            return Err(HttpError::invalid_params(
                "status must be active or disabled (a lockout is lifted with POST /admin/users/{id}/unlock)",
            ))
        }
    };
    if plan.is_none() && role.is_none() && status.is_none() {
        return Err(HttpError::invalid_params(
            "give at least one of plan, role and status",
        ));
    }
    if id == admin.id && (role == Some(Role::User) || status == Some(UserStatus::Disabled)) {
        return Err(HttpError::invalid_params(
            "operators cannot demote or disable their own account",
        ));
    }
    let before = account(&state, id).await?.user;
    if let Some(plan) = plan.filter(|p| *p != before.plan) {
        state.db.set_plan(id, plan).await?;
        let detail = json!({ "from": before.plan, "to": plan });
        audited(
            &state,
            &req,
            &admin,
            AuditKind::PlanChanged,
            Some(id),
            detail,
        )
        .await;
    }
    if let Some(role) = role.filter(|r| *r != before.role) {
        state.db.set_role(id, role).await?;
        let detail = json!({ "from": before.role.as_str(), "to": role.as_str() });
        audited(
            &state,
            &req,
            &admin,
            AuditKind::RoleChanged,
            Some(id),
            detail,
        )
        .await;
    }
    if let Some(status) = status.filter(|s| *s != before.status) {
        state.db.set_status(id, status).await?;
        if status == UserStatus::Disabled {
            // Tokens are refused and open WebSockets close on every node.
            announce(&state, Revoked::User(id)).await;
        }
        let detail = json!({ "from": before.status.as_str(), "to": status.as_str() });
        audited(
            &state,
            &req,
            &admin,
            AuditKind::StatusChanged,
            Some(id),
            detail,
        )
        .await;
    }
    let entry = UserEntry::new(account(&state, id).await?, state.clock.now());
    Ok(HttpResponse::Ok().json(entry))
}

/// `POST /admin/users/{id}/unlock`: lifts a failed-login lockout (and a `locked`
/// status) and forgets the failures.
pub async fn unlock(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let admin = operator(&req, &state).await?;
    let id = path_id(&path, "user")?;
    account(&state, id).await?;
    // Audited by the store (account_unlocked, the operator as actor).
    match state.db.unlock_logins(id, Some(admin.id)).await {
        Ok(()) => {}
        Err(AuthError::NotFound) => return Err(not_found("user")),
        Err(e) => return Err(e.into()),
    }
    Ok(HttpResponse::Ok().json(UserEntry::new(
        account(&state, id).await?,
        state.clock.now(),
    )))
}

/// `POST /admin/users/{id}/reset-2fa`: removes the user's TOTP secret and recovery
/// codes, so they log in with the password alone (and may enrol again).
pub async fn reset_second_factor(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let admin = operator(&req, &state).await?;
    let id = path_id(&path, "user")?;
    account(&state, id).await?;
    // Audited by the store when there was a factor (totp_disabled, the operator as
    // actor); a reset that found none is recorded here.
    let removed = match state.db.disable_totp(id, Some(admin.id)).await {
        Ok(()) => true,
        Err(AuthError::NotFound) => false,
        Err(e) => return Err(e.into()),
    };
    if !removed {
        let detail = json!({ "action": "reset_2fa", "removed": false });
        audited(
            &state,
            &req,
            &admin,
            AuditKind::AdminAction,
            Some(id),
            detail,
        )
        .await;
    }
    let entry = UserEntry::new(account(&state, id).await?, state.clock.now());
    Ok(HttpResponse::Ok().json(json!({ "user": entry, "removed": removed })))
}

// ---------------------------------------------------------------------------------
// Keys.

/// `GET /admin/users/{id}/keys`: the user's API keys (never secrets).
pub async fn user_keys(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    operator(&req, &state).await?;
    let id = path_id(&path, "user")?;
    account(&state, id).await?;
    let keys: Vec<KeyEntry> = state
        .db
        .list_api_keys(id)
        .await?
        .into_iter()
        .map(KeyEntry::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "user_id": id.to_string(), "keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    expires_in_days: Option<u32>,
}

/// `POST /admin/users/{id}/keys`: a new key for the user, its secret shown only in
/// this answer (201).
pub async fn create_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    bytes: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let admin = operator(&req, &state).await?;
    let id = path_id(&path, "user")?;
    let b: NewKey = body(&bytes)?;
    account(&state, id).await?;
    let mut new = auth::NewApiKey::new(b.name);
    new.expires_at = super::accounts::key_expiry(&state, b.expires_in_days)?;
    let created = state.db.create_api_key(id, new).await?;
    let detail = created.key.audit_detail();
    audited(
        &state,
        &req,
        &admin,
        AuditKind::ApiKeyCreated,
        Some(id),
        detail,
    )
    .await;
    let mut body = serde_json::to_value(KeyEntry::from(created.key))
        .map_err(|_| HttpError::invalid_params("unencodable key"))?;
    body["user_id"] = json!(id.to_string());
    body["key"] = json!(created.secret.expose());
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

/// `DELETE /admin/keys/{id}`: revokes any user's key; its tokens and connections end on
/// every node within a second (204, also for a key revoked already).
pub async fn revoke_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let admin = operator(&req, &state).await?;
    let key_id = path_id(&path, "key")?;
    let key = match state.db.api_key_by_id(key_id).await {
        Ok(k) => k,
        Err(AuthError::NotFound) => return Err(not_found("key")),
        Err(e) => return Err(e.into()),
    };
    let revoked = state.db.revoke_api_key(key.user_id, key.id).await?;
    announce(&state, Revoked::Key(key.id)).await;
    if key.revoked_at.is_none() {
        let detail = revoked.audit_detail();
        audited(
            &state,
            &req,
            &admin,
            AuditKind::ApiKeyRevoked,
            Some(key.user_id),
            detail,
        )
        .await;
    }
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------------------------
// Live sessions.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionFilters {
    user: Option<String>,
    node: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// Emails of `users`, looked up once each; a user that cannot be read is left out.
async fn emails(state: &AppState, users: impl Iterator<Item = String>) -> HashMap<String, String> {
    let mut found = HashMap::new();
    for user in users {
        if found.contains_key(&user) {
            continue;
        }
        if let Ok(id) = user.parse::<Uuid>() {
            if let Ok(u) = state.db.user_by_id(id).await {
                found.insert(user, u.email);
            }
        }
    }
    found
}

/// `GET /admin/sessions?user=&node=&limit=&offset=`: live simulation sessions on every
/// node, newest first.
pub async fn sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    operator(&req, &state).await?;
    let f: SessionFilters = query(&req)?;
    let (limit, offset) = page(f.limit, f.offset)?;
    let user = f.user.as_deref().map(parse_user).transpose()?;
    let cluster = state.control.cluster().await;
    let matching: Vec<LiveSession> = cluster
        .sessions
        .into_iter()
        .filter(|s| user.is_none_or(|u| s.user_id == u.to_string()))
        .filter(|s| f.node.as_ref().is_none_or(|n| s.node == *n))
        .collect();
    let total = matching.len();
    let page: Vec<LiveSession> = matching
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .collect();
    let emails = emails(&state, page.iter().map(|s| s.user_id.clone())).await;
    let sessions: Vec<serde_json::Value> = page
        .into_iter()
        .map(|s| {
            let email = emails.get(&s.user_id).cloned();
            let mut v = json!(s);
            v["email"] = json!(email);
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "sessions": sessions,
        "total": total,
        "limit": limit,
        "offset": offset,
        "nodes": cluster.nodes,
        "complete": cluster.complete,
    })))
}

/// `?user=` of `DELETE /admin/sessions/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StopFilter {
    user: Option<String>,
}

/// `DELETE /admin/sessions/{id}?user=`: stops a live session on whichever node runs it.
/// Its client gets `simulation_end` with reason `stopped`, and the results are stored.
/// Session ids are unique per user: `user` names the owner, and may be left out when
/// only one user has a live session with this id.
pub async fn stop_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let admin = operator(&req, &state).await?;
    let session_id = path.into_inner();
    if session_id.is_empty()
        || session_id.len() > auth::MAX_SESSION_ID_BYTES
        || session_id.chars().any(char::is_control)
    {
        return Err(HttpError::session_not_found());
    }
    let filter = web::Query::<StopFilter>::from_query(req.query_string())
        .map_err(|_| HttpError::invalid_params("the only query parameter is `user`"))?
        .into_inner();
    match state
        .control
        .stop(&session_id, filter.user.as_deref())
        .await
    {
        StopOutcome::Stopped { node, user_id } => {
            let detail =
                json!({ "action": "stop_session", "session_id": session_id, "node": node });
            let subject = user_id.parse().ok();
            audited(
                &state,
                &req,
                &admin,
                AuditKind::AdminAction,
                subject,
                detail,
            )
            .await;
            Ok(HttpResponse::Ok().json(json!({
                "session_id": session_id,
                "node": node,
                "user_id": user_id,
                "stopped": true,
            })))
        }
        StopOutcome::NotFound => Err(HttpError::session_not_found()),
        StopOutcome::Ambiguous { users } => Err(HttpError::invalid_params(format!(
            "{} users have a live session with this id; name its owner with ?user= (one of {})",
            users.len(),
            users.join(", ")
        ))),
        StopOutcome::NoAnswer { node } => Err(HttpError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::NodeTimeout,
            format!(
                "node `{node}` runs this session but did not confirm the stop within {} s",
                crate::control::STOP_TIMEOUT.as_secs()
            ),
        )),
        StopOutcome::Unavailable => Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            "the session store is unavailable; sessions on other nodes cannot be reached",
        )),
    }
}

// ---------------------------------------------------------------------------------
// Audit.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFilters {
    user: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    until: Option<String>,
    ip: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// `GET /admin/audit?user=&kind=&from=&until=&ip=&limit=&offset=`: audit events, newest
/// first, with the total matching. `user` matches the actor or the subject.
pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    operator(&req, &state).await?;
    let f: AuditFilters = query(&req)?;
    let (limit, offset) = page(f.limit, f.offset)?;
    let (from, until) = time_range(f.from.as_deref(), f.until.as_deref())?;
    let kind = f
        .kind
        .as_deref()
        .map(|k| {
            k.parse::<AuditKind>().map_err(|_| {
                let kinds: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
                HttpError::invalid_params(format!("kind must be one of {}", kinds.join(", ")))
            })
        })
        .transpose()?;
    if f.ip.as_deref().is_some_and(|ip| ip.chars().count() > 64) {
        return Err(HttpError::invalid_params("ip is too long"));
    }
    let q = AuditQuery {
        user_id: f.user.as_deref().map(parse_user).transpose()?,
        kind,
        from,
        until,
        ip: f.ip,
        page: Page::new(offset, limit),
    };
    let total = state.db.count_audit(q.clone()).await?;
    let events: Vec<serde_json::Value> = state
        .db
        .audit_events(q)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": e.at.to_rfc3339_opts(SecondsFormat::Micros, true),
                "kind": e.kind.as_str(),
                "actor_user_id": e.actor_user_id.map(|u| u.to_string()),
                "subject_user_id": e.subject_user_id.map(|u| u.to_string()),
                "ip": e.ip,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "events": events,
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}

// ---------------------------------------------------------------------------------
// Usage.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageFilters {
    from: Option<String>,
    until: Option<String>,
    user: Option<String>,
    plan: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

/// Live sessions of one user, from the cluster listing.
#[derive(Default, Clone, Copy)]
struct Live {
    sessions: u64,
    ticks: u64,
}

/// `GET /admin/usage?from=&until=&user=&plan=&limit=&offset=`: per plan and per user,
/// finished simulations (runs, ticks, trades, last run) whose run ended in
/// `[from, until)`, and the live sessions running now. Users with finished runs come
/// first (most recently active first), then users who only have live sessions.
pub async fn usage(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    operator(&req, &state).await?;
    let f: UsageFilters = query(&req)?;
    let (limit, offset) = page(f.limit, f.offset)?;
    let (from, until) = time_range(f.from.as_deref(), f.until.as_deref())?;
    let user = f.user.as_deref().map(parse_user).transpose()?;
    let plan = f.plan.as_deref().map(parse_plan).transpose()?;
    let q = UsageQuery {
        from,
        until,
        user_id: user,
        plan,
        page: Page::new(offset, limit),
    };

    // Live sessions per user, with each user's current plan.
    let cluster = state.control.cluster().await;
    let mut live: HashMap<Uuid, Live> = HashMap::new();
    for s in &cluster.sessions {
        let Ok(id) = s.user_id.parse::<Uuid>() else {
            continue;
        };
        if user.is_some_and(|u| u != id) {
            continue;
        }
        let l = live.entry(id).or_default();
        l.sessions += 1;
        l.ticks += s.ticks;
    }
    let mut live_users: HashMap<Uuid, User> = HashMap::new();
    for id in live.keys() {
        match state.db.user_by_id(*id).await {
            Ok(u) if plan.is_none_or(|p| p == u.plan) => {
                live_users.insert(*id, u);
            }
            Ok(_) | Err(AuthError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    live.retain(|id, _| live_users.contains_key(id));

    let stored = state.db.usage_by_user(q.clone()).await?;
    let mut users: Vec<serde_json::Value> = stored
        .users
        .iter()
        .map(|u| {
            let l = live.get(&u.user_id).copied().unwrap_or_default();
            json!({
                "user_id": u.user_id.to_string(),
                "email": u.email,
                "plan": u.plan,
                "simulations": u.simulations,
                "ticks": u.ticks,
                "trades": u.trades,
                "last_finished_at": u.last_finished_at.map(rfc3339),
                "live_sessions": l.sessions,
                "live_ticks": l.ticks,
            })
        })
        .collect();
    // Users with live sessions and no finished run in the range follow the stored
    // ones, in a fixed order, so pages continue across both.
    let mut live_only: Vec<&User> = Vec::new();
    for (id, u) in &live_users {
        let probe = UsageQuery {
            user_id: Some(*id),
            page: Page::new(0, 1),
            ..q.clone()
        };
        if state.db.usage_by_user(probe).await?.total == 0 {
            live_only.push(u);
        }
    }
    live_only.sort_by_key(|u| (u.email.clone(), u.id));
    let stored_total = stored.total;
    let skip_live = offset.saturating_sub(stored_total);
    let room = (limit as usize).saturating_sub(users.len());
    for u in live_only
        .iter()
        .skip(usize::try_from(skip_live).unwrap_or(usize::MAX))
        .take(room)
    {
        let l = live.get(&u.id).copied().unwrap_or_default();
        users.push(json!({
            "user_id": u.id.to_string(),
            "email": u.email,
            "plan": u.plan,
            "simulations": 0,
            "ticks": 0,
            "trades": 0,
            "last_finished_at": null,
            "live_sessions": l.sessions,
            "live_ticks": l.ticks,
        }));
    }

    let per_plan = state.db.usage_by_plan(q).await?;
    let plans: Vec<serde_json::Value> = Plan::ALL
        .into_iter()
        .filter(|p| plan.is_none_or(|want| want == *p))
        .map(|p| {
            let s = per_plan.iter().find(|u| u.plan == p);
            let live_here: Vec<&Live> = live_users
                .iter()
                .filter(|(_, u)| u.plan == p)
                .filter_map(|(id, _)| live.get(id))
                .collect();
            json!({
                "plan": p,
                "active_users": s.map_or(0, |s| s.active_users),
                "simulations": s.map_or(0, |s| s.simulations),
                "ticks": s.map_or(0, |s| s.ticks),
                "trades": s.map_or(0, |s| s.trades),
                "last_finished_at": s.and_then(|s| s.last_finished_at).map(rfc3339),
                "live_users": live_here.len(),
                "live_sessions": live_here.iter().map(|l| l.sessions).sum::<u64>(),
                "live_ticks": live_here.iter().map(|l| l.ticks).sum::<u64>(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "from": from.map(rfc3339),
        "until": until.map(rfc3339),
        "plans": plans,
        "users": users,
        "total": stored_total + live_only.len() as u64,
        "limit": limit,
        "offset": offset,
        "live_complete": cluster.complete,
    })))
}
