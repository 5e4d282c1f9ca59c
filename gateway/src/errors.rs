//! The one mapping from domain errors to HTTP statuses and wire error codes. Causes are
//! logged here with their chain; clients only ever see the code and a safe message.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError};
use auth::AuthError;
use protocol::{ApiError, ErrorCode};

/// An error answered over REST (`{"error": CODE, "message"}`), with the headers some
/// answers carry (`Allow` on a 405, `Retry-After` and `X-RateLimit-*` on a 429).
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HttpError {
    /// HTTP status.
    pub status: StatusCode,
    /// The machine-readable code.
    pub code: ErrorCode,
    /// Safe to show.
    pub message: String,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// How a rate limit is counted, for `X-RateLimit-Period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitPeriod {
    /// A window of this many seconds.
    Seconds(u64),
    /// A cap on things open at once.
    Concurrent,
}

/// A refusal over a limit: everything a 429 says (PROTOCOL.md section 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimited {
    /// `X-RateLimit-Type`: `auth`, `health`, `ws_connect`, `ws_connections`, `api`,
    /// `sessions`.
    pub kind: &'static str,
    /// The limit.
    pub limit: u64,
    /// What is left (0 when refused, except for caps that count what is open).
    pub remaining: u64,
    /// When the window ends (Unix seconds).
    pub reset: i64,
    /// Seconds until a retry can succeed.
    pub retry_after: u64,
    /// The window, or `concurrent`.
    pub period: LimitPeriod,
    /// Safe to show.
    pub message: String,
}

/// The largest JSON body any route takes; account and admin bodies are a few hundred
/// bytes, so this only bounds what a hostile client makes us buffer.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

impl HttpError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// The same error with one more header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 401 `AUTH_FAILED`.
    pub fn auth_failed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::AuthFailed, message)
    }

    /// 404 `SESSION_NOT_FOUND`: also the answer for another user's session, so that
    /// nobody learns which session ids exist.
    pub fn session_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::SessionNotFound,
            "session not found",
        )
    }

    /// 400 `INVALID_PARAMS`.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidParams, message)
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// 409 `CONFLICT`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    }

    /// 503 `SERVICE_UNAVAILABLE`.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServiceUnavailable,
            message,
        )
    }

    /// 500 `INTERNAL_ERROR`; the cause is logged by the caller, never sent.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "internal error",
        )
    }

    /// 405 `METHOD_NOT_ALLOWED` with `Allow` listing `methods` (lower or upper case).
    pub fn method_not_allowed(methods: &[&str]) -> Self {
        let allow = methods
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("this route takes {allow} only");
        let error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            message,
        );
        match HeaderValue::from_str(&allow) {
            Ok(value) => error.with_header(header::ALLOW, value),
            Err(_) => error,
        }
    }

    /// 404 `NOT_FOUND` for a path no route has.
    pub fn no_route() -> Self {
        Self::not_found("no such route (the routes are listed in the README)")
    }

    /// 408 `REQUEST_TIMEOUT`: the body did not arrive within `server.body_timeout_sec`.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::RequestTimeout,
            "the request body did not arrive in time",
        )
    }

    /// 413 `PAYLOAD_TOO_LARGE`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than the {limit} bytes this route takes"),
        )
    }

    /// 429 `RATE_LIMITED` with `Retry-After` and every `X-RateLimit-*` header: the one
    /// place a 429 is built.
    pub fn rate_limited(limit: RateLimited) -> Self {
        let period = match limit.period {
            LimitPeriod::Seconds(s) => HeaderValue::from(s),
            LimitPeriod::Concurrent => HeaderValue::from_static("concurrent"),
        };
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            limit.message,
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(limit.retry_after))
        .with_header(
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderValue::from(limit.limit),
        )
        .with_header(
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderValue::from(limit.remaining),
        )
        .with_header(
            HeaderName::from_static("x-ratelimit-reset"),
            HeaderValue::from(limit.reset),
        )
        .with_header(HeaderName::from_static("x-ratelimit-period"), period)
        .with_header(
            HeaderName::from_static("x-ratelimit-type"),
            HeaderValue::from_static(limit.kind),
        )
    }

    /// The code a bare status stands for, for answers built without one (the
    /// framework's own refusals).
    fn code_for(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::UNAUTHORIZED => ErrorCode::AuthFailed,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
            StatusCode::CONFLICT => ErrorCode::Conflict,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => ErrorCode::ServiceUnavailable,
            s if s.is_server_error() => ErrorCode::InternalError,
            _ => ErrorCode::InvalidParams,
        }
    }
}

/// A request body that could not be read: 408 when it stopped arriving, 413 when it
/// grew past the limit, 400 otherwise.
fn payload_error(e: &PayloadError, limit: usize) -> HttpError {
    match e {
        PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            HttpError::body_timeout()
        }
        PayloadError::Overflow => HttpError::payload_too_large(limit),
        _ => HttpError::invalid_params("the request body could not be read"),
    }
}

impl From<JsonPayloadError> for HttpError {
    fn from(e: JsonPayloadError) -> Self {
        match e {
            JsonPayloadError::OverflowKnownLength { limit, .. }
            | JsonPayloadError::Overflow { limit } => HttpError::payload_too_large(limit),
            JsonPayloadError::ContentType => HttpError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "the body must be JSON (Content-Type: application/json)",
            ),
            // serde's text names the field and the position, never server internals.
            JsonPayloadError::Deserialize(e) => {
                HttpError::invalid_params(format!("bad JSON body: {e}"))
            }
            JsonPayloadError::Payload(e) => payload_error(&e, JSON_BODY_LIMIT),
            other => {
                log_chain(&other);
                HttpError::internal()
            }
        }
    }
}

impl From<QueryPayloadError> for HttpError {
    fn from(e: QueryPayloadError) -> Self {
        HttpError::invalid_params(format!("bad query parameters: {e}"))
    }
}

impl From<PathError> for HttpError {
    fn from(e: PathError) -> Self {
        HttpError::invalid_params(format!("bad path: {e}"))
    }
}

/// The extractor settings every app registers, so that their refusals are JSON too.
pub fn extractor_configs(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::web;
    cfg.app_data(
        web::JsonConfig::default()
            .limit(JSON_BODY_LIMIT)
            .error_handler(|e, _| HttpError::from(e).into()),
    )
    .app_data(web::QueryConfig::default().error_handler(|e, _| HttpError::from(e).into()))
    .app_data(web::PathConfig::default().error_handler(|e, _| HttpError::from(e).into()))
    .app_data(web::PayloadConfig::default().limit(JSON_BODY_LIMIT))
    .default_service(web::to(|| async {
        Err::<HttpResponse, _>(HttpError::no_route())
    }));
}

/// Middleware: any error answer that is not already JSON (the framework's own, e.g. a
/// `Bytes` body over its limit) is rewritten as `{"error", "message"}` with the code of
/// its status, so every 4xx and 5xx has one shape.
pub fn json_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_json = res
            .response()
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let error = HttpError::from_framework(res.response().error(), res.status());
        let (req, old) = res.into_parts();
        let mut response = error.error_response();
        // Keep what the framework said besides the body (`Allow`, `Retry-After`, ...).
        for (name, value) in old.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, response).map_into_right_body(),
        ))
    })
}

impl HttpError {
    /// The JSON error for an answer the framework built: its status's code, and for
    /// client errors the framework's own text (about the request, never internals).
    fn from_framework(error: Option<&actix_web::Error>, status: StatusCode) -> HttpError {
        if let Some(e) = error.and_then(|e| e.as_error::<PayloadError>()) {
            return payload_error(e, JSON_BODY_LIMIT);
        }
        let message = match error {
            Some(e) if status.is_client_error() => e.to_string(),
            Some(e) => {
                log_chain(e);
                "internal error".to_string()
            }
            None => status.canonical_reason().unwrap_or("error").to_string(),
        };
        HttpError::new(status, HttpError::code_for(status), message)
    }
}

impl From<actix::MailboxError> for HttpError {
    fn from(e: actix::MailboxError) -> Self {
        log_chain(&e);
        HttpError::service_unavailable("the session service is unavailable; try again shortly")
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut response =
            HttpResponse::build(self.status).json(ApiError::new(self.code, self.message.clone()));
        // Appended: an answer may carry several of one header (`Set-Cookie`).
        for (name, value) in &self.headers {
            response.headers_mut().append(name.clone(), value.clone());
        }
        response
    }
}

impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> Self {
        match &e {
            AuthError::InvalidKey(_)
            | AuthError::InvalidToken(_)
            | AuthError::AccountInactive(_) => {
                tracing::info!(reason = %e, "authentication refused");
                // One message for every refusal: which part was wrong is not the client's business.
                HttpError::auth_failed("invalid, revoked or expired credentials")
            }
            AuthError::InvalidCredentials(reason) => {
                tracing::info!(?reason, "login refused");
                // The same answer for an unknown email, a wrong password and a lock.
                HttpError::auth_failed("invalid email or password")
            }
            AuthError::InvalidRefreshToken(reason) => {
                tracing::info!(?reason, "refresh refused");
                HttpError::auth_failed("invalid or expired refresh token")
            }
            AuthError::RefreshTokenReused => {
                tracing::warn!(
                    "a used refresh token was presented again; its login session was revoked"
                );
                HttpError::auth_failed(e.to_string())
            }
            AuthError::InvalidSecondFactor => HttpError::auth_failed("invalid second factor"),
            // Only after the right password, like EMAIL_NOT_VERIFIED below.
            AuthError::SecondFactorRequired => HttpError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::TotpRequired,
                "this account needs its TOTP code (`totp_code`) or a recovery code \
                          (`recovery_code`)",
            ),
            // Only after the right password, so telling it apart reveals nothing new.
            AuthError::EmailNotVerified => HttpError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::EmailNotVerified,
                "verify your email first (POST /auth/verify-email)",
            ),
            AuthError::Overloaded => {
                tracing::warn!("no password-hashing slot freed up in time; request refused");
                HttpError::service_unavailable("the server is busy; try again shortly")
            }
            AuthError::InvalidOneTimeToken(reason) => {
                tracing::info!(?reason, "one-time token refused");
                HttpError::invalid_params("invalid or expired token")
            }
            AuthError::NotFound => HttpError::not_found("not found"),
            AuthError::Conflict(_) => HttpError::conflict(e.to_string()),
            AuthError::InvalidInput { .. } => HttpError::invalid_params(e.to_string()),
            AuthError::Database(_)
            | AuthError::InvalidDatabaseUrl(_)
            | AuthError::DatabaseDirectory(_) => {
                log_chain(&e);
                HttpError::service_unavailable(
                    "the user database is unavailable; try again shortly",
                )
            }
            _ => {
                log_chain(&e);
                HttpError::internal()
            }
        }
    }
}

/// Logs an error with its whole source chain.
pub fn log_chain(e: &dyn std::error::Error) {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(error = %chain, "request failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unverified_email_and_overload_have_their_own_answers() {
        let unverified = HttpError::from(AuthError::EmailNotVerified);
        assert_eq!(
            (unverified.status.as_u16(), unverified.code),
            (403, ErrorCode::EmailNotVerified)
        );
        assert!(unverified.message.contains("/auth/verify-email"));
        let busy = HttpError::from(AuthError::Overloaded);
        assert_eq!(
            (busy.status.as_u16(), busy.code),
            (503, ErrorCode::ServiceUnavailable)
        );
    }
}
