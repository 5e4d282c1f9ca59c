//! Human accounts over REST: registration with email verification, login with a
//! server choice (and a TOTP second factor when enrolled), rotating refresh tokens,
//! logout, and the user's own login sessions.
//!
//! The web console logs in with `X-Auth-Mode: cookie` and refreshes with its refresh
//! cookie: those answers carry the tokens in `HttpOnly` cookies instead of the body
//! (see [`crate::browser`]), and logout clears them.
//!
//! Every refusal of a login is the same 401 (`AUTH_FAILED`, "invalid email or
//! password") whether the email exists, the password is wrong or logins are locked,
//! and takes the same time (the store always runs one argon2 verification).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use auth::{
    AccountStore, AuthError, LoginGrant, NewLoginSession, NewUser, PasswordTokenPurpose,
    RevokeReason, SecondFactor, Secret, UserStatus, UserStore,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::browser::{self, SessionCookies, REFRESH_COOKIE};
use crate::errors::HttpError;
use crate::extract::record_user;
use crate::extract::{client_ip, LoginSession};
use crate::metrics::AuthResult;
use crate::routes::auth::counted;
use crate::routes::rfc3339;
use crate::state::AppState;

/// One entry of `GET /auth/servers`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ServerEntry {
    /// What `login.server` takes.
    pub id: String,
    /// What a login form shows.
    pub name: String,
}

/// `GET /auth/servers`: the servers a login may choose.
pub async fn servers(state: web::Data<AppState>) -> HttpResponse {
    let servers: Vec<ServerEntry> = state
        .settings
        .servers
        .iter()
        .map(|(id, s)| ServerEntry {
            id: id.clone(),
            name: s.name.clone(),
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({ "servers": servers }))
}

/// `POST /auth/register` body.
// No `Debug`: it holds a secret.
#[derive(Deserialize)]
pub struct RegisterRequest {
    email: String,
    password: String,
}

/// `POST /auth/register`: 202 whether or not the email was taken (an existing owner
/// is told instead), so registration does not reveal which emails have accounts.
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, HttpError> {
    let RegisterRequest { email, password } = body.into_inner();
    let ip = client_ip(&req);
    match state
        .db
        .register_user(NewUser::new(email.clone()), Secret::new(password), ip)
        .await
    {
        Ok(registration) => {
            state.notifier.verification(
                &registration.user.email,
                registration.verification.token.expose(),
            );
            state.metrics.auth("/auth/register", AuthResult::Ok);
        }
        Err(AuthError::Conflict(_)) => {
            state.notifier.already_registered(&email);
            state.metrics.auth("/auth/register", AuthResult::Refused);
        }
        Err(e) => return counted(&state, "/auth/register", Err(e.into())),
    }
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "status": "verification_sent",
        "message": "follow the link sent to this address to verify it"
    })))
}

/// `POST /auth/resend-verification` body.
#[derive(Debug, Deserialize)]
pub struct ResendRequest {
    email: String,
}

/// `POST /auth/resend-verification`: a new verification token for an account whose
/// address is not verified yet (earlier tokens stay valid until they expire). 202 in
/// every case, so the answer does not tell which addresses have accounts.
pub async fn resend_verification(
    state: web::Data<AppState>,
    body: web::Json<ResendRequest>,
) -> HttpResponse {
    state
        .metrics
        .auth("/auth/resend-verification", AuthResult::Ok);
    // Answered at once and done in the background, so neither the answer nor its
    // timing depends on whether the address has an account.
    let email = body.into_inner().email;
    let background = state.background.clone();
    background.spawn(async move {
        if let Err(e) = resend(&state, &email).await {
            tracing::warn!(error = %e, "verification link not re-sent");
        }
    });
    HttpResponse::Accepted().json(serde_json::json!({
        "status": "verification_sent",
        "message": "if this address has an account waiting for verification, a new link was sent to it"
    }))
}

async fn resend(state: &AppState, email: &str) -> Result<(), AuthError> {
    let user = match state.db.user_by_email(email).await {
        Ok(user) => user,
        Err(AuthError::NotFound | AuthError::InvalidInput { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let account = state.db.account(user.id).await?;
    if account.email_verified_at.is_none() && account.has_password {
        let token = state.db.create_email_verification(user.id).await?;
        state
            .notifier
            .verification(&user.email, token.token.expose());
    }
    Ok(())
}

/// `POST /auth/verify-email` body.
#[derive(Debug, Deserialize)]
pub struct VerifyRequest {
    token: String,
}

/// `POST /auth/verify-email`: consumes a verification token.
pub async fn verify_email(
    state: web::Data<AppState>,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, HttpError> {
    let user = state.db.verify_email(&body.token).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "user_id": user.id.to_string(),
        "email": user.email,
        "email_verified": true,
    })))
}

/// `POST /auth/password/forgot` body.
#[derive(Debug, Deserialize)]
pub struct ForgotRequest {
    email: String,
}

/// `POST /auth/password/forgot`: mails a password token to the address if it belongs
/// to an active account (at most one a minute per account). 202 in every case, and
/// the lookup happens after answering, so neither the answer nor its timing tells
/// which addresses have accounts.
pub async fn forgot_password(
    state: web::Data<AppState>,
    body: web::Json<ForgotRequest>,
) -> HttpResponse {
    state.metrics.auth("/auth/password/forgot", AuthResult::Ok);
    let email = body.into_inner().email;
    let background = state.background.clone();
    background.spawn(async move {
        if let Err(e) = send_password_reset(&state, &email).await {
            tracing::warn!(error = %e, "password reset not sent");
        }
    });
    HttpResponse::Accepted().json(serde_json::json!({
        "status": "reset_sent",
        "message": "if this address has an account, a password reset token was sent to it"
    }))
}

async fn send_password_reset(state: &AppState, email: &str) -> Result<(), AuthError> {
    let user = match state.db.user_by_email(email).await {
        Ok(user) => user,
        Err(AuthError::NotFound | AuthError::InvalidInput { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    if user.status != UserStatus::Active {
        return Ok(());
    }
    if let Some(token) = state
        .db
        .create_password_token(user.id, PasswordTokenPurpose::Reset)
        .await?
    {
        state
            .notifier
            .password_reset(&user.email, token.token.expose());
    }
    Ok(())
}

/// `POST /auth/password/reset` body.
// No `Debug`: it holds a secret.
#[derive(Deserialize)]
pub struct ResetRequest {
    token: String,
    password: String,
}

/// `POST /auth/password/reset`: sets a new password with a token from a reset or an
/// invitation mail. The address counts as verified, and every login session of the
/// account ends (their tokens are refused on every node within a second).
pub async fn reset_password(
    state: web::Data<AppState>,
    body: web::Json<ResetRequest>,
) -> Result<HttpResponse, HttpError> {
    let body = body.into_inner();
    let result = state
        .db
        .reset_password(&body.token, Secret::new(body.password))
        .await
        .map(|user| {
            HttpResponse::Ok().json(serde_json::json!({
                "status": "password_set",
                "user_id": user.id.to_string(),
                "email": user.email,
            }))
        })
        .map_err(HttpError::from);
    counted(&state, "/auth/password/reset", result)
}

/// `POST /auth/password/change` body.
// No `Debug`: it holds a secret.
#[derive(Deserialize)]
pub struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

/// `POST /auth/password/change` (a login session): a new password, given the current
/// one (wrong ones count toward the lockout). 204; every other login session of the
/// user ends, the caller's stays.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, HttpError> {
    let result = async {
        let claims = LoginSession::check(&req, &state)?.claims;
        let body = body.into_inner();
        state
            .db
            .change_password(
                claims.sub,
                Secret::new(body.current_password),
                Secret::new(body.new_password),
                claims.sid,
                client_ip(&req),
            )
            .await?;
        Ok(HttpResponse::NoContent().finish())
    }
    .await;
    counted(&state, "/auth/password/change", result)
}

/// `POST /auth/login` body.
// No `Debug`: it holds a secret.
#[derive(Deserialize)]
pub struct LoginRequest {
    email: String,
    password: String,
    /// One of `GET /auth/servers`.
    server: String,
    /// The current TOTP code, when a second factor is enrolled.
    #[serde(default)]
    totp_code: Option<String>,
    /// A recovery code instead of the TOTP code.
    #[serde(default)]
    recovery_code: Option<String>,
}

/// A login or refresh answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Short-lived access JWT (Bearer).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Exchanged at `POST /auth/refresh` for a new pair; single use.
    pub refresh_token: String,
    /// When the refresh token (and the login session) ends.
    pub refresh_expires_at: String,
    /// The login session.
    pub session_id: String,
    /// The user.
    pub user_id: String,
    /// The user's plan.
    pub plan: auth::Plan,
}

/// A login or refresh answer of the console: the tokens went into cookies.
#[derive(Debug, Serialize, Deserialize)]
pub struct CookieLoginResponse {
    /// Always `cookie`: the tokens are in the `st_access` and `st_refresh` cookies.
    pub token_type: String,
    /// Seconds until the access token (and its cookie) expires.
    pub expires_in: u64,
    /// When the refresh token (and the login session) ends.
    pub refresh_expires_at: String,
    /// The login session.
    pub session_id: String,
    /// The user.
    pub user_id: String,
    /// The user's plan.
    pub plan: auth::Plan,
}

/// How a login or refresh hands its tokens over.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    /// In the JSON body (programs).
    Body,
    /// In cookies (the console), `Secure` or not.
    Cookies {
        /// Whether the cookies are `Secure`.
        secure: bool,
    },
}

/// `POST /auth/login`; with `X-Auth-Mode: cookie` the tokens go into cookies.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, HttpError> {
    let result = do_login(&req, &state, body.into_inner()).await;
    counted(&state, "/auth/login", result)
}

async fn do_login(
    req: &HttpRequest,
    state: &AppState,
    body: LoginRequest,
) -> Result<HttpResponse, HttpError> {
    if !state.settings.servers.contains_key(&body.server) {
        return Err(HttpError::invalid_params(
            "`server` must be one of GET /auth/servers",
        ));
    }
    let delivery = if browser::wants_cookies(req) {
        // Before the password is looked at: another site's page cannot sign its
        // visitor in (to the attacker's account) either.
        if !browser::origin_allowed(req, &state.settings) {
            return Err(HttpError::forbidden(
                "cross-origin login refused: the console signs in from this server's own pages",
            ));
        }
        Delivery::Cookies {
            secure: browser::secure_cookies(req, &state.settings),
        }
    } else {
        Delivery::Body
    };
    let ip = client_ip(req);
    // A TOTP code is preferred when both are given; the store ignores either for
    // accounts without a second factor.
    let second_factor = match (body.totp_code, body.recovery_code) {
        (Some(code), _) => Some(SecondFactor::Totp(code)),
        (None, Some(code)) => Some(SecondFactor::RecoveryCode(code)),
        (None, None) => None,
    };
    let account = state
        .db
        .authenticate_password(
            &body.email,
            Secret::new(body.password),
            second_factor,
            ip.clone(),
        )
        .await?;
    let user_id = account.user.id;
    record_user(&user_id.to_string());
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let grant = state
        .db
        .create_login_session(
            user_id,
            NewLoginSession {
                user_agent,
                ip,
                password_version: Some(account.password_version),
            },
        )
        .await?;
    granted(state, grant, delivery)
}

/// `POST /auth/refresh` body.
// No `Debug`: it holds a secret.
#[derive(Deserialize)]
pub struct RefreshRequest {
    /// Without it, the console's refresh cookie.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// `POST /auth/refresh`: a new access token and refresh token; the presented refresh
/// token is used up. Presenting a used one ends the whole login session. A body
/// without `refresh_token` uses the console's refresh cookie (with the CSRF token in
/// `X-CSRF-Token`) and is answered with new cookies; a refused one clears them.
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, HttpError> {
    let result = match body.into_inner().refresh_token {
        Some(token) => match state.db.rotate_refresh_token(&token).await {
            Ok(grant) => granted(&state, grant, Delivery::Body),
            Err(e) => Err(e.into()),
        },
        None => refresh_cookie(&req, &state).await,
    };
    counted(&state, "/auth/refresh", result)
}

/// The console's refresh: the refresh cookie for new cookies.
async fn refresh_cookie(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, HttpError> {
    let Some(token) = browser::cookie(req, REFRESH_COOKIE) else {
        return Err(HttpError::invalid_params(
            "`refresh_token` is required (no console refresh cookie came with the request)",
        ));
    };
    browser::check_unsafe(req, &state.settings, &state.csrf, None)?;
    let secure = browser::secure_cookies(req, &state.settings);
    let rotated = state.db.rotate_refresh_token(&token).await;
    match rotated {
        Ok(grant) => granted(state, grant, Delivery::Cookies { secure }),
        // Stale cookies would only be tried again.
        Err(e) => Err(with_cookies(
            HttpError::from(e),
            browser::cleared_cookies(secure),
        )),
    }
}

/// `error` with `Set-Cookie` headers for `cookies`.
fn with_cookies(error: HttpError, cookies: [actix_web::cookie::Cookie<'static>; 3]) -> HttpError {
    cookies.iter().fold(error, |error, cookie| {
        match header::HeaderValue::from_str(&cookie.to_string()) {
            Ok(value) => error.with_header(header::SET_COOKIE, value),
            Err(_) => error,
        }
    })
}

fn granted(
    state: &AppState,
    grant: LoginGrant,
    delivery: Delivery,
) -> Result<HttpResponse, HttpError> {
    // No access token outlives its login session: the session's absolute end refuses
    // the refresh token, and without this a token issued just before would go on for
    // its full lifetime. `last_used_at` is the store's "now" of this login or refresh.
    let session_left = (grant.session.expires_at - grant.session.last_used_at).num_seconds();
    let lifetime = (state.settings.accounts.access_token_lifetime_sec as i64).min(session_left);
    let issued =
        state
            .jwt
            .issue_for_session(grant.user.id, grant.user.plan, grant.session.id, lifetime)?;
    if let Delivery::Cookies { secure } = delivery {
        let csrf = state.csrf.token(grant.session.id);
        let cookies = SessionCookies {
            access_token: issued.access_token.expose(),
            access_max_age: issued.expires_in as i64,
            refresh_token: grant.refresh_token.expose(),
            refresh_max_age: (grant.refresh_expires_at - grant.session.last_used_at).num_seconds(),
            csrf_token: &csrf,
            secure,
        };
        let mut answer = HttpResponse::Ok();
        answer.insert_header((header::CACHE_CONTROL, "no-store"));
        for cookie in cookies.cookies() {
            answer.cookie(cookie);
        }
        return Ok(answer.json(CookieLoginResponse {
            token_type: "cookie".into(),
            expires_in: issued.expires_in,
            refresh_expires_at: rfc3339(grant.refresh_expires_at),
            session_id: grant.session.id.to_string(),
            user_id: grant.user.id.to_string(),
            plan: grant.user.plan,
        }));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(LoginResponse {
            access_token: issued.access_token.expose().clone(),
            token_type: "Bearer".into(),
            expires_in: issued.expires_in,
            refresh_token: grant.refresh_token.expose().clone(),
            refresh_expires_at: rfc3339(grant.refresh_expires_at),
            session_id: grant.session.id.to_string(),
            user_id: grant.user.id.to_string(),
            plan: grant.user.plan,
        }))
}

/// `POST /auth/logout`: ends the login session of the Bearer token or console cookie
/// (204), and clears the console's cookies when the request came with any.
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: LoginSession,
) -> Result<HttpResponse, HttpError> {
    let mut answer = end_session(&state, session.claims.sub, session.id).await?;
    if browser::has_session_cookie(&req) {
        let secure = browser::secure_cookies(&req, &state.settings);
        for cookie in browser::cleared_cookies(secure) {
            answer
                .add_cookie(&cookie)
                .map_err(|_| HttpError::internal())?;
        }
    }
    Ok(answer)
}

/// `GET /auth/me`: the signed-in user as the console shows them.
pub async fn me(
    state: web::Data<AppState>,
    LoginSession { claims, id }: LoginSession,
) -> Result<HttpResponse, HttpError> {
    let account = state.db.account(claims.sub).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "user_id": account.user.id.to_string(),
            "email": account.user.email,
            "plan": account.user.plan,
            "role": account.user.role.as_str(),
            "email_verified": account.email_verified_at.is_some(),
            "totp_enabled": account.totp_enabled,
            "created_at": rfc3339(account.user.created_at),
            "session_id": id.to_string(),
        })))
}

/// One entry of `GET /auth/sessions`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionEntry {
    /// Login session id.
    pub id: String,
    /// Login time.
    pub created_at: String,
    /// Last login or refresh.
    pub last_used_at: String,
    /// The absolute end.
    pub expires_at: String,
    /// The client at login.
    pub user_agent: Option<String>,
    /// The address at login.
    pub ip: Option<String>,
    /// The session of the token making this request.
    pub current: bool,
}

/// `GET /auth/sessions`: the user's live login sessions.
pub async fn sessions(
    state: web::Data<AppState>,
    LoginSession { claims, .. }: LoginSession,
) -> Result<HttpResponse, HttpError> {
    // Live sessions only, by the store's clock.
    let sessions: Vec<SessionEntry> = state
        .db
        .login_sessions(claims.sub)
        .await?
        .into_iter()
        .map(|s| SessionEntry {
            current: claims.sid == Some(s.id),
            id: s.id.to_string(),
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            expires_at: rfc3339(s.expires_at),
            user_agent: s.user_agent,
            ip: s.ip,
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "sessions": sessions })))
}

/// `DELETE /auth/sessions/{id}`: ends one of the user's login sessions (204); another
/// user's session id is a 404 like an unknown one.
pub async fn end(
    state: web::Data<AppState>,
    path: web::Path<String>,
    LoginSession { claims, .. }: LoginSession,
) -> Result<HttpResponse, HttpError> {
    let session: Uuid = path
        .parse()
        .map_err(|_| HttpError::not_found("no such login session"))?;
    end_session(&state, claims.sub, session).await
}

async fn end_session(
    state: &AppState,
    user: Uuid,
    session: Uuid,
) -> Result<HttpResponse, HttpError> {
    state
        .db
        .revoke_login_session(user, session, RevokeReason::Logout)
        .await?;
    // Open connections and access tokens of the session end on every node.
    state
        .revoke(crate::cluster::revocation::Revoked::Session(session))
        .await;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /auth/totp/enrol`: a new TOTP secret (unconfirmed until a code is shown).
pub async fn totp_enrol(
    state: web::Data<AppState>,
    LoginSession { claims, .. }: LoginSession,
) -> Result<HttpResponse, HttpError> {
    let enrolment = state.db.enrol_totp(claims.sub).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "secret": enrolment.secret_base32.expose(),
            "provisioning_uri": enrolment.provisioning_uri.expose(),
        })))
}

/// A TOTP code in a request body.
// No `Debug`: it holds a secret.
#[derive(Deserialize)]
pub struct CodeRequest {
    code: String,
}

/// `POST /auth/totp/confirm`: turns the second factor on with a first code; answers
/// with recovery codes, shown only now.
pub async fn totp_confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, HttpError> {
    // Checked after the body is read, so a bad body is answered 400 first.
    let LoginSession { claims, .. } = LoginSession::check(&req, &state)?;
    state.db.confirm_totp(claims.sub, &body.code).await?;
    let codes = state.db.generate_recovery_codes(claims.sub).await?;
    let codes: Vec<&String> = codes.iter().map(|c| c.expose()).collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "recovery_codes": codes })))
}

/// `POST /auth/totp/disable` body: the password and a current code.
// No `Debug`: it holds a secret.
#[derive(Deserialize)]
pub struct DisableRequest {
    password: String,
    code: String,
}

/// `POST /auth/totp/disable`: turns the second factor off, given the password and a
/// current code (204). Wrong ones count toward the lockout, as at login, so a stolen
/// access token cannot guess its way to removing the second factor.
pub async fn totp_disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<DisableRequest>,
) -> Result<HttpResponse, HttpError> {
    // Checked after the body is read, so a bad body is answered 400 first.
    let LoginSession { claims, .. } = LoginSession::check(&req, &state)?;
    let body = body.into_inner();
    let ip = client_ip(&req);
    let user = state.db.user_by_id(claims.sub).await?;
    if !state.db.account(claims.sub).await?.totp_enabled {
        return Err(AuthError::NotFound.into());
    }
    // Checked like a login, so wrong passwords and codes count toward the lockout.
    state
        .db
        .authenticate_password(
            &user.email,
            Secret::new(body.password),
            Some(SecondFactor::Totp(body.code)),
            ip,
        )
        .await?;
    state.db.disable_totp(claims.sub, Some(claims.sub)).await?;
    Ok(HttpResponse::NoContent().finish())
}
