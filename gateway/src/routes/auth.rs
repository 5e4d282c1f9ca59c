//! Token exchange (PROTOCOL.md section 1).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use auth::UserStore;
use protocol::{TokenResponse, ValidateResponse};

use crate::errors::HttpError;
use crate::extract::record_user;
use crate::extract::Authenticated;
use crate::metrics::AuthResult;
use crate::state::AppState;

/// Counts the outcome of an authentication endpoint.
pub(crate) fn counted(
    state: &AppState,
    endpoint: &'static str,
    result: Result<HttpResponse, HttpError>,
) -> Result<HttpResponse, HttpError> {
    let outcome = match &result {
        Ok(_) => AuthResult::Ok,
        Err(e) if e.status.is_server_error() => AuthResult::Unavailable,
        Err(_) => AuthResult::Refused,
    };
    state.metrics.auth(endpoint, outcome);
    result
}

/// `POST /auth/token` with `X-API-Key`: a JWT for the key's owner.
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    let result = issue_token(&req, &state).await;
    counted(&state, "/auth/token", result)
}

async fn issue_token(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, HttpError> {
    let key = req
        .headers()
        .get("X-API-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| HttpError::auth_failed("missing X-API-Key header"))?;
    let authenticated = state.db.authenticate_api_key(key).await?;
    let user = authenticated.user;
    record_user(&user.id.to_string());
    let issued = state
        .jwt
        .issue(user.id, user.plan, Some(authenticated.key_id))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse::bearer(
            issued.access_token.expose().clone(),
            issued.expires_in,
            user.id.to_string(),
            user.plan,
        )))
}

/// `POST /auth/validate` with `Authorization: Bearer`: whether the token is good.
pub async fn validate(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    let result = Authenticated::check(&req, &state).map(validated);
    counted(&state, "/auth/validate", result)
}

fn validated(claims: auth::Claims) -> HttpResponse {
    HttpResponse::Ok().json(ValidateResponse {
        valid: true,
        user_id: claims.sub.to_string(),
        plan: claims.plan,
        expires_at: claims.exp,
    })
}
