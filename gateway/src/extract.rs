//! Who is asking: the Bearer token (or the console's access cookie) and the client
//! address of a request, and the extractors that check them before a handler runs.
//!
//! - [`Authenticated`]: a verified, unrevoked token (401 otherwise), from the
//!   `Authorization: Bearer` header or, without one, the console's access cookie; an
//!   unsafe request authenticated by the cookie must also pass the CSRF and origin
//!   checks of [`crate::browser::check_unsafe`] (403 otherwise);
//! - [`LoginSession`]: the same, from a human login (403 for a token exchanged for an
//!   API key: a leaked key cannot manage its owner's account);
//! - [`Operator`]: an active user with the role `admin`, read from the database now,
//!   because tokens carry no role and a role can be taken away (403 otherwise).
//!
//! Handlers call `check` themselves instead where the order matters: those that count
//! an authentication's outcome in the metrics (so the refusal is counted too), and
//! those with a body (a bad or missing body is answered 400, 408 or 413 before a
//! missing token's 401, as the handlers always did).

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use auth::{AuthError, Claims, Role, User, UserStatus, UserStore};
use uuid::Uuid;

use crate::browser::{self, ACCESS_COOKIE};
use crate::errors::HttpError;
use crate::limits::requests::display_ip;
use crate::state::AppState;

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The access token a request presents: its Bearer token, or else the console's
/// access cookie.
pub fn presented_token(req: &HttpRequest) -> Option<String> {
    bearer(req)
        .map(str::to_string)
        .or_else(|| browser::cookie(req, ACCESS_COOKIE))
}

/// The client address of a request, as the rate limits see it (see
/// [`RateLimiter::client_ip`](crate::limits::requests::RateLimiter::client_ip)): what
/// audit events and login sessions record.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    let peer = req.peer_addr().map(|a| a.ip());
    let ip = match req.app_data::<web::Data<AppState>>() {
        Some(state) => state.limiter.client_ip(peer, req.headers()),
        None => peer,
    };
    ip.map(|ip| display_ip(Some(ip)))
}

/// Records the authenticated user in the current request's span (the `user_id` field
/// of [`observe`](crate::middleware::observe::observe)'s request span).
pub fn record_user(user_id: &str) {
    tracing::Span::current().record("user_id", user_id);
}

fn state(req: &HttpRequest) -> Result<&web::Data<AppState>, HttpError> {
    req.app_data::<web::Data<AppState>>()
        .ok_or_else(HttpError::internal)
}

/// The verified claims of the request's Bearer token (or console cookie).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

impl Authenticated {
    /// The verified claims of the request's Bearer token, or without one of the
    /// console's access cookie, unless its key, login session or user has been
    /// revoked. An unsafe request authenticated by the cookie must carry the CSRF
    /// token of its login session and come from this server's origin (403 otherwise).
    pub fn check(req: &HttpRequest, state: &AppState) -> Result<Claims, HttpError> {
        if let Some(token) = bearer(req) {
            return Self::verified(token, state);
        }
        let Some(token) = browser::cookie(req, ACCESS_COOKIE) else {
            return Err(HttpError::auth_failed("missing bearer token"));
        };
        let claims = Self::verified(&token, state)?;
        // Cookies are set only for login sessions.
        let Some(session) = claims.sid else {
            return Err(HttpError::auth_failed(
                "invalid, revoked or expired credentials",
            ));
        };
        browser::check_unsafe(req, &state.settings, &state.csrf, Some(session))?;
        Ok(claims)
    }

    /// The claims of `token`, unless it is invalid, expired or revoked.
    fn verified(token: &str, state: &AppState) -> Result<Claims, HttpError> {
        let claims = state.jwt.verify(token)?;
        if state.revocations.refuses_token(&claims) {
            return Err(HttpError::auth_failed(
                "invalid, revoked or expired credentials",
            ));
        }
        record_user(&claims.sub.to_string());
        Ok(claims)
    }
}

impl FromRequest for Authenticated {
    type Error = HttpError;
    type Future = Ready<Result<Self, HttpError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).and_then(|s| Self::check(req, s)).map(Self))
    }
}

/// The claims of a login session's access token, and that session's id.
#[derive(Debug, Clone)]
pub struct LoginSession {
    /// The token's claims.
    pub claims: Claims,
    /// The login session.
    pub id: Uuid,
}

impl LoginSession {
    /// The login session of `claims`; 403 for tokens exchanged for an API key.
    pub fn of(claims: Claims) -> Result<Self, HttpError> {
        match claims.sid {
            Some(id) => Ok(Self { claims, id }),
            None => Err(HttpError::forbidden(
                "managing the account needs a login session (POST /auth/login); API-key tokens cannot",
            )),
        }
    }

    /// [`Authenticated::check`], then [`LoginSession::of`].
    pub fn check(req: &HttpRequest, state: &AppState) -> Result<Self, HttpError> {
        Self::of(Authenticated::check(req, state)?)
    }
}

impl FromRequest for LoginSession {
    type Error = HttpError;
    type Future = Ready<Result<Self, HttpError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(req).and_then(|s| Self::check(req, s)))
    }
}

/// The operator making the request, an active admin now.
#[derive(Debug, Clone)]
pub struct Operator(pub User);

impl Operator {
    /// 401 without a valid token, 403 unless the token's user is an active admin now.
    pub async fn check(req: &HttpRequest, state: &AppState) -> Result<User, HttpError> {
        let claims = Authenticated::check(req, state)?;
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
}

impl FromRequest for Operator {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?.clone();
            Self::check(&req, &state).await.map(Self)
        })
    }
}
