//! The one mapping from domain errors to HTTP statuses and wire error codes. Causes are
//! logged here with their chain; clients only ever see the code and a safe message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use auth::AuthError;
use protocol::ApiError;

/// An error answered over REST (`{"error": CODE, "message"}`).
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HttpError {
    /// HTTP status.
    pub status: StatusCode,
    /// `AUTH_FAILED`, `SERVICE_UNAVAILABLE`, ...
    pub code: &'static str,
    /// Safe to show.
    pub message: String,
}

impl HttpError {
    /// 401 `AUTH_FAILED`.
    pub fn auth_failed(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::UNAUTHORIZED,
            code: "AUTH_FAILED",
            message: message.into(),
        }
    }

    /// 404 `SESSION_NOT_FOUND`: also the answer for another user's session, so that
    /// nobody learns which session ids exist.
    pub fn session_not_found() -> Self {
        HttpError {
            status: StatusCode::NOT_FOUND,
            code: "SESSION_NOT_FOUND",
            message: "session not found".into(),
        }
    }

    /// 400 `INVALID_PARAMS`.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_PARAMS",
            message: message.into(),
        }
    }
}

impl From<actix::MailboxError> for HttpError {
    fn from(e: actix::MailboxError) -> Self {
        log_chain(&e);
        HttpError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "SERVICE_UNAVAILABLE",
            message: "the session service is unavailable; try again shortly".into(),
        }
    }
}

impl From<crate::results::StoredDataError> for HttpError {
    fn from(e: crate::results::StoredDataError) -> Self {
        log_chain(&e);
        HttpError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "INTERNAL_ERROR",
            message: "internal error".into(),
        }
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ApiError::new(self.code, self.message.clone()))
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
            AuthError::SecondFactorRequired => HttpError {
                status: StatusCode::UNAUTHORIZED,
                code: "TOTP_REQUIRED",
                message: "this account needs its TOTP code (`totp_code`) or a recovery code \
                          (`recovery_code`)"
                    .into(),
            },
            // Only after the right password, so telling it apart reveals nothing new.
            AuthError::EmailNotVerified => HttpError {
                status: StatusCode::FORBIDDEN,
                code: "EMAIL_NOT_VERIFIED",
                message: "verify your email first (POST /auth/verify-email)".into(),
            },
            AuthError::Overloaded => {
                tracing::warn!("no password-hashing slot freed up in time; request refused");
                HttpError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "SERVICE_UNAVAILABLE",
                    message: "the server is busy; try again shortly".into(),
                }
            }
            AuthError::InvalidOneTimeToken(reason) => {
                tracing::info!(?reason, "one-time token refused");
                HttpError::invalid_params("invalid or expired token")
            }
            AuthError::NotFound => HttpError {
                status: StatusCode::NOT_FOUND,
                code: "NOT_FOUND",
                message: "not found".into(),
            },
            AuthError::Conflict(_) => HttpError {
                status: StatusCode::CONFLICT,
                code: "CONFLICT",
                message: e.to_string(),
            },
            AuthError::InvalidInput { .. } => HttpError {
                status: StatusCode::BAD_REQUEST,
                code: "INVALID_PARAMS",
                message: e.to_string(),
            },
            AuthError::Database(_)
            | AuthError::InvalidDatabaseUrl(_)
            | AuthError::DatabaseDirectory(_) => {
                log_chain(&e);
                HttpError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "SERVICE_UNAVAILABLE",
                    message: "the user database is unavailable; try again shortly".into(),
                }
            }
            _ => {
                log_chain(&e);
                HttpError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "INTERNAL_ERROR",
                    message: "internal error".into(),
                }
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
            (403, "EMAIL_NOT_VERIFIED")
        );
        assert!(unverified.message.contains("/auth/verify-email"));
        let busy = HttpError::from(AuthError::Overloaded);
        assert_eq!(
            (busy.status.as_u16(), busy.code),
            (503, "SERVICE_UNAVAILABLE")
        );
    }
}
