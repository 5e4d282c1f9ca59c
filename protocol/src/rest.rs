//! REST bodies of PROTOCOL.md section 1 (token issue and validation) and the common
//! REST error body.

use model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::errors::ErrorCode;
use crate::plan::Plan;

/// `POST /auth/token` 200 body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: String,
    /// The key owner's user id.
    pub user_id: String,
    /// The user's plan.
    pub plan: Plan,
}

impl TokenResponse {
    /// A `Bearer` token response.
    pub fn bearer(
        access_token: impl Into<String>,
        expires_in: u64,
        user_id: impl Into<String>,
        plan: Plan,
    ) -> Self {
        TokenResponse {
            access_token: access_token.into(),
            expires_in,
            token_type: "Bearer".to_string(),
            user_id: user_id.into(),
            plan,
        }
    }
}

/// `POST /auth/validate` 200 body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidateResponse {
    /// Always true in a 200 answer.
    pub valid: bool,
    /// The token's subject.
    pub user_id: String,
    /// The token's plan.
    pub plan: Plan,
    /// When the token expires (RFC 3339 on the wire).
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

/// Every REST error body (and the 401/429 bodies of the WebSocket handshake):
/// `{"error": CODE, "message"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// Machine-readable code, e.g. `AUTH_FAILED`, `RATE_LIMITED`: one of [`ErrorCode`]'s
    /// names. Kept as text when read, so a client still understands the message of a
    /// newer server's code.
    #[cfg_attr(feature = "openapi", schema(value_type = ErrorCode))]
    pub error: String,
    /// Human-readable text, safe to show.
    pub message: String,
}

impl ApiError {
    /// An error body; codes are always one of [`ErrorCode`]'s.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            error: code.as_str().to_string(),
            message: message.into(),
        }
    }

    /// The code, when it is one this crate knows.
    pub fn code(&self) -> Option<ErrorCode> {
        self.error.parse().ok()
    }
}
