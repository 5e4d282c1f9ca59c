//! A user's own API keys over REST: list, create, revoke and rotate. Managed only from
//! a login session (a token exchanged for an API key gets 403), so a leaked key cannot
//! mint new keys; every change is written to the audit log.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use auth::{AccountStore, AuditKind, NewAuditEvent, UserStore};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cluster::revocation::Revoked;
use crate::errors::HttpError;
use crate::extract::{client_ip, LoginSession};
use crate::routes::rfc3339;
use crate::state::AppState;

/// Writes a user's own key change to the audit log; the change has happened, so a
/// failure to record it is logged rather than undone.
async fn audited(
    state: &AppState,
    req: &HttpRequest,
    kind: AuditKind,
    user: Uuid,
    detail: serde_json::Value,
) {
    let event = NewAuditEvent::new(kind)
        .actor(user)
        .subject(user)
        .ip(client_ip(req).as_deref())
        .detail(detail);
    if let Err(e) = state.db.append_audit(event).await {
        tracing::error!(%kind, %user, error = %e, "key change not written to the audit log");
    }
}

/// How long a rotated API key keeps working beside its replacement.
const KEY_ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(24);

/// One entry of `GET /api/keys`.
#[derive(Debug, Serialize)]
pub struct KeyEntry {
    /// Key id (for revoke and rotate).
    pub id: String,
    /// Label.
    pub name: String,
    /// The visible part, `stk_<prefix>_…`.
    pub prefix: String,
    /// Creation time.
    pub created_at: String,
    /// Last use, at most a minute stale.
    pub last_used_at: Option<String>,
    /// When it stops working, if ever.
    pub expires_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

impl From<auth::ApiKey> for KeyEntry {
    fn from(k: auth::ApiKey) -> Self {
        KeyEntry {
            id: k.id.to_string(),
            prefix: k.display_prefix(),
            name: k.name,
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
            expires_at: k.expires_at.map(rfc3339),
            revoked_at: k.revoked_at.map(rfc3339),
        }
    }
}

/// `GET /api/keys`: the caller's API keys (never the secrets).
pub async fn keys(
    state: web::Data<AppState>,
    LoginSession { claims, .. }: LoginSession,
) -> Result<HttpResponse, HttpError> {
    let keys: Vec<KeyEntry> = state
        .db
        .list_api_keys(claims.sub)
        .await?
        .into_iter()
        .map(KeyEntry::from)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "keys": keys })))
}

/// `POST /api/keys` body.
#[derive(Debug, Deserialize)]
pub struct NewKeyRequest {
    name: String,
    /// Days until the key expires (1 to [`MAX_KEY_DAYS`]); none for no expiry.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// The longest expiry a new key can be given, in days (ten years).
const MAX_KEY_DAYS: u32 = 3650;

/// When a key created now with `expires_in_days` expires: none without, 400 outside
/// 1 to [`MAX_KEY_DAYS`]. For users' own keys and the keys operators create alike.
pub(crate) fn key_expiry(
    state: &AppState,
    expires_in_days: Option<u32>,
) -> Result<Option<DateTime<Utc>>, HttpError> {
    match expires_in_days {
        None => Ok(None),
        Some(d @ 1..=MAX_KEY_DAYS) => Ok(Some(
            state.clock.now() + chrono::Duration::days(i64::from(d)),
        )),
        Some(_) => Err(HttpError::invalid_params(format!(
            "`expires_in_days` must be 1 to {MAX_KEY_DAYS}"
        ))),
    }
}

/// `POST /api/keys`: a new key, its secret shown only in this answer (201).
pub async fn create_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<NewKeyRequest>,
) -> Result<HttpResponse, HttpError> {
    // Checked after the body is read, so a bad body is answered 400 first.
    let LoginSession { claims, .. } = LoginSession::check(&req, &state)?;
    let mut new = auth::NewApiKey::new(body.name.clone());
    new.expires_at = key_expiry(&state, body.expires_in_days)?;
    let created = state.db.create_api_key(claims.sub, new).await?;
    audited(
        &state,
        &req,
        AuditKind::ApiKeyCreated,
        claims.sub,
        created.key.audit_detail(),
    )
    .await;
    created_answer(created)
}

fn created_answer(created: auth::CreatedApiKey) -> Result<HttpResponse, HttpError> {
    let mut body = serde_json::to_value(KeyEntry::from(created.key))
        .map_err(|_| HttpError::invalid_params("unencodable key"))?;
    body["key"] = serde_json::Value::String(created.secret.expose().clone());
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

fn no_such_key() -> HttpError {
    HttpError::not_found("no such key")
}

fn key_id(path: &str) -> Result<Uuid, HttpError> {
    path.parse().map_err(|_| no_such_key())
}

/// `DELETE /api/keys/{id}`: revokes a key; its tokens and connections end on every
/// node within a second (204).
pub async fn revoke_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    LoginSession { claims, .. }: LoginSession,
) -> Result<HttpResponse, HttpError> {
    let key = state.db.revoke_api_key(claims.sub, key_id(&path)?).await?;
    state.revoke(Revoked::Key(key.id)).await;
    audited(
        &state,
        &req,
        AuditKind::ApiKeyRevoked,
        claims.sub,
        key.audit_detail(),
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/keys/{id}/rotate`: a new key with the same name (201); the old one keeps
/// working for 24 hours, then expires. A key is rotated once (409 `CONFLICT` after).
pub async fn rotate_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    LoginSession { claims, .. }: LoginSession,
) -> Result<HttpResponse, HttpError> {
    let id = key_id(&path)?;
    // One atomic step in the store: a key is rotated once, however many requests
    // race (409 for the others); the replacement keeps the old key's end, so
    // rotating never extends a key.
    let (old, created) = match state
        .db
        .rotate_api_key(claims.sub, id, state.clock.now() + KEY_ROTATION_GRACE)
        .await
    {
        Err(auth::AuthError::NotFound) => return Err(no_such_key()),
        other => other?,
    };
    audited(&state, &req, AuditKind::ApiKeyCreated, claims.sub, {
        let mut detail = created.key.audit_detail();
        detail["rotated_from"] = serde_json::json!(old.id);
        detail["old_key_expires_at"] = serde_json::json!(old.expires_at.map(|t| t.to_rfc3339()));
        detail
    })
    .await;
    created_answer(created)
}
