//! Error codes and the `error` / `session_error` payloads (PROTOCOL.md section 5), plus
//! [`ProtocolError`], what parsing a frame fails with.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every `error_code` the server sends (`error`, `session_error`, REST bodies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// A field is missing or has the wrong type.
    InvalidParams,
    /// Fields are well-formed but their values are not acceptable.
    ValidationError,
    /// The server cannot take the request now; retry later.
    ServiceBusy,
    /// A session could not be created.
    SessionCreateFailed,
    /// The message type is known but not handled by this server.
    NotImplemented,
    /// The message type is unknown.
    UnknownType,
    /// Missing, invalid or expired credentials.
    AuthFailed,
    /// Over a rate limit.
    RateLimited,
    /// A handler did not answer in time.
    HandlerTimeout,
    /// The frame is not a JSON object.
    InvalidJson,
    /// The frame exceeds the size limit.
    FrameTooLarge,
    /// No such session (or it expired).
    SessionNotFound,
    /// The session belongs to someone else.
    Forbidden,
    /// Market data could not be loaded (unknown symbol, no data in range).
    DataFetchFailed,
    /// A session exists but cannot be resumed from where the client is.
    ResumeFailed,
    /// The session was taken over by another node; resume it there.
    SessionMoved,
    /// A running session failed and stopped.
    SessionError,
    /// A dependency (database, session service) cannot answer now; retry later.
    ServiceUnavailable,
    /// An unexpected server-side failure (details are logged, never sent).
    InternalError,
    /// No such resource (REST), or no route at this path.
    NotFound,
    /// The request conflicts with the resource's current state (taken email, used key).
    Conflict,
    /// The right password of an address not verified yet.
    EmailNotVerified,
    /// The account needs its second factor (`totp_code` or `recovery_code`).
    TotpRequired,
    /// The node that owns the session did not confirm in time.
    NodeTimeout,
    /// The route exists but not with this method (the `Allow` header lists those it has).
    MethodNotAllowed,
    /// The request body did not arrive in time.
    RequestTimeout,
    /// The request body is larger than the route accepts.
    PayloadTooLarge,
    /// The request body's `Content-Type` is not one the route accepts.
    UnsupportedMediaType,
}

/// A code that is not one of [`ErrorCode`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code `{0}`")]
pub struct UnknownErrorCode(pub String);

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 28] = [
        ErrorCode::InvalidParams,
        ErrorCode::ValidationError,
        ErrorCode::ServiceBusy,
        ErrorCode::SessionCreateFailed,
        ErrorCode::NotImplemented,
        ErrorCode::UnknownType,
        ErrorCode::AuthFailed,
        ErrorCode::RateLimited,
        ErrorCode::HandlerTimeout,
        ErrorCode::InvalidJson,
        ErrorCode::FrameTooLarge,
        ErrorCode::SessionNotFound,
        ErrorCode::Forbidden,
        ErrorCode::DataFetchFailed,
        ErrorCode::ResumeFailed,
        ErrorCode::SessionMoved,
        ErrorCode::SessionError,
        ErrorCode::ServiceUnavailable,
        ErrorCode::InternalError,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::EmailNotVerified,
        ErrorCode::TotpRequired,
        ErrorCode::NodeTimeout,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParams => "INVALID_PARAMS",
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::ServiceBusy => "SERVICE_BUSY",
            ErrorCode::SessionCreateFailed => "SESSION_CREATE_FAILED",
            ErrorCode::NotImplemented => "NOT_IMPLEMENTED",
            ErrorCode::UnknownType => "UNKNOWN_TYPE",
            ErrorCode::AuthFailed => "AUTH_FAILED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::HandlerTimeout => "HANDLER_TIMEOUT",
            ErrorCode::InvalidJson => "INVALID_JSON",
            ErrorCode::FrameTooLarge => "FRAME_TOO_LARGE",
            ErrorCode::SessionNotFound => "SESSION_NOT_FOUND",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::DataFetchFailed => "DATA_FETCH_FAILED",
            ErrorCode::ResumeFailed => "RESUME_FAILED",
            ErrorCode::SessionMoved => "SESSION_MOVED",
            ErrorCode::SessionError => "SESSION_ERROR",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            ErrorCode::TotpRequired => "TOTP_REQUIRED",
            ErrorCode::NodeTimeout => "NODE_TIMEOUT",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
        }
    }

    /// The `error_type` an `error` with this code carries.
    pub const fn error_type(self) -> ErrorType {
        match self {
            ErrorCode::InvalidParams
            | ErrorCode::ValidationError
            | ErrorCode::NotImplemented
            | ErrorCode::UnknownType
            | ErrorCode::InvalidJson
            | ErrorCode::FrameTooLarge
            | ErrorCode::Conflict
            | ErrorCode::MethodNotAllowed
            | ErrorCode::PayloadTooLarge
            | ErrorCode::UnsupportedMediaType => ErrorType::Validation,
            ErrorCode::SessionCreateFailed
            | ErrorCode::HandlerTimeout
            | ErrorCode::SessionNotFound
            | ErrorCode::ResumeFailed
            | ErrorCode::SessionMoved
            | ErrorCode::SessionError
            | ErrorCode::InternalError
            | ErrorCode::NotFound
            | ErrorCode::NodeTimeout => ErrorType::Execution,
            ErrorCode::ServiceBusy
            | ErrorCode::ServiceUnavailable
            | ErrorCode::AuthFailed
            | ErrorCode::Forbidden
            | ErrorCode::EmailNotVerified
            | ErrorCode::TotpRequired
            | ErrorCode::RequestTimeout => ErrorType::Connection,
            ErrorCode::DataFetchFailed => ErrorType::Data,
            ErrorCode::RateLimited => ErrorType::RateLimit,
        }
    }

    /// The `severity` an `error` with this code carries.
    pub const fn severity(self) -> Severity {
        match self {
            ErrorCode::ServiceBusy | ErrorCode::ServiceUnavailable | ErrorCode::RateLimited => {
                Severity::Warning
            }
            ErrorCode::AuthFailed => Severity::Fatal,
            _ => Severity::Error,
        }
    }

    /// Whether the connection stays usable after an `error` with this code.
    pub const fn recoverable(self) -> bool {
        !matches!(self, ErrorCode::AuthFailed)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_string()))
    }
}

/// `error.error_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// The request was malformed or not acceptable.
    Validation,
    /// The request was valid but could not be carried out.
    Execution,
    /// About the connection itself (auth, capacity).
    Connection,
    /// Market data problems.
    Data,
    /// Over a limit.
    RateLimit,
}

/// `error.severity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational; nothing failed for good.
    Warning,
    /// The request failed.
    Error,
    /// The connection is about to close.
    Fatal,
}

/// `error` data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorData {
    /// Machine-readable code.
    pub error_code: ErrorCode,
    /// Human-readable text, safe to show (never internal error text).
    pub message: String,
    /// Category.
    pub error_type: ErrorType,
    /// How bad.
    pub severity: Severity,
    /// Whether the connection stays usable.
    pub recoverable: bool,
    /// Structured context (e.g. `{"field": "orders[0].quantity"}`), or `null`.
    #[serde(default)]
    pub details: Option<Map<String, Value>>,
}

impl ErrorData {
    /// An error with the code's default type, severity and recoverability.
    pub fn new(error_code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorData {
            error_code,
            message: message.into(),
            error_type: error_code.error_type(),
            severity: error_code.severity(),
            recoverable: error_code.recoverable(),
            details: None,
        }
    }

    /// The same error with one more `details` entry.
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details
            .get_or_insert_with(Map::new)
            .insert(key.into(), value.into());
        self
    }
}

/// `session_error` data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionErrorData {
    /// The session, or `null` when none was created.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Machine-readable code.
    pub error_code: ErrorCode,
    /// Human-readable text, safe to show.
    pub message: String,
}

/// Why a frame could not be turned into a typed message. Carries what the answer needs:
/// the code, a message naming the offending field, and the frame's `request_id` and
/// `type` when they could be read, so the error can echo them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    /// `INVALID_JSON`, `INVALID_PARAMS`, `UNKNOWN_TYPE` or `VALIDATION_ERROR`.
    pub code: ErrorCode,
    /// Human-readable text naming the field.
    pub message: String,
    /// Path of the offending field inside `data` (`orders[0].quantity`), when known.
    pub field: Option<String>,
    /// The frame's `request_id`, when it was a string.
    pub request_id: Option<String>,
    /// The frame's `type`, when it was a string.
    pub message_type: Option<String>,
}

/// Message types whose bad requests are answered with `session_error` rather than
/// `error` (PROTOCOL.md section 3: "nothing is created").
const SESSION_CREATING_TYPES: [&str; 2] = ["start_simulation", "create_session"];

impl ProtocolError {
    /// An error without field, request id or type.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
            field: None,
            request_id: None,
            message_type: None,
        }
    }

    /// The same error naming a field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// `error` data for this error; `details` names the field and the message type.
    pub fn to_error_data(&self) -> ErrorData {
        let mut data = ErrorData::new(self.code, self.message.clone());
        if let Some(field) = &self.field {
            data = data.with_detail("field", field.clone());
        }
        if let Some(t) = &self.message_type {
            data = data.with_detail("type", crate::time::truncate(t, 64));
        }
        data
    }

    /// The answer to send: `session_error` (with `session_id: null`) for a bad
    /// `start_simulation` / `create_session`, `error` for everything else.
    pub fn to_server_message(&self) -> crate::server::ServerMessage {
        use crate::server::ServerMessage;
        match self.message_type.as_deref() {
            Some(t) if SESSION_CREATING_TYPES.contains(&t) => {
                ServerMessage::SessionError(SessionErrorData {
                    session_id: None,
                    error_code: self.code,
                    message: self.message.clone(),
                })
            }
            _ => ServerMessage::Error(self.to_error_data()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in ErrorCode::ALL {
            assert_eq!(c.as_str().parse::<ErrorCode>().unwrap(), c);
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                Value::String(c.as_str().to_string())
            );
        }
    }
}
