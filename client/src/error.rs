//! What SDK calls fail with: transport problems, refusals before the WebSocket upgrade,
//! and the server's `error` / `session_error` answers, each with its protocol code.

use protocol::{ConnectionClosingData, ErrorCode, ErrorData, ProtocolError, SessionErrorData};

/// An SDK error. Server answers keep their [`ErrorCode`], so callers can match on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base URL is not `http://host[:port]` (or `https://`, which this build cannot
    /// speak: it has no TLS).
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// 401: missing, invalid, revoked or expired API key or token.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    /// 429: a rate limit or the plan's connection cap.
    #[error("rate limited{}: {message}", retry_after.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    RateLimited {
        /// Seconds from `Retry-After`, when the server sent it.
        retry_after: Option<u64>,
        /// The server's explanation.
        message: String,
    },
    /// Any other non-success HTTP answer.
    #[error("HTTP {status} {code}: {message}")]
    Http {
        /// Status code.
        status: u16,
        /// The body's `error` code, or empty.
        code: String,
        /// The body's `message`, or empty.
        message: String,
    },
    /// The server answered a request with `error` or `session_error`.
    #[error("{code}: {message}")]
    Server {
        /// The protocol error code.
        code: ErrorCode,
        /// The server's explanation (safe to show).
        message: String,
        /// The session concerned, when the server named one.
        session_id: Option<String>,
        /// Whether the connection stays usable (`error.recoverable`; true for
        /// `session_error`).
        recoverable: bool,
    },
    /// The server sent a frame this client cannot read.
    #[error("unreadable server frame: {0}")]
    Protocol(#[from] ProtocolError),
    /// A frame arrived that does not fit the conversation (e.g. the wrong reply type).
    #[error("unexpected server message `{got}` while waiting for {expected}")]
    Unexpected {
        /// What the client waited for.
        expected: &'static str,
        /// The message type that came instead.
        got: String,
    },
    /// No answer within the client's time limit.
    #[error("no answer from the server within {0:?} while waiting for {1}")]
    Timeout(std::time::Duration, &'static str),
    /// The server closed the connection (`connection_closing` tells why, when sent).
    #[error("connection closed by the server{}", .0.as_ref().map(|c| format!(": {:?}: {}", c.reason, c.message)).unwrap_or_default())]
    Closed(Option<ConnectionClosingData>),
    /// More unread frames of other sessions piled up than the client keeps.
    #[error("more than {0} unread messages of other sessions are buffered")]
    Backlog(usize),
    /// More order batches sent without waiting (`send_orders`) are still unanswered
    /// than the client keeps track of.
    #[error("more than {0} order batches sent without waiting are unanswered")]
    Unanswered(usize),
}

impl Error {
    /// The protocol error code, for server answers and HTTP refusals that carry one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            Error::AuthFailed(_) => Some(ErrorCode::AuthFailed),
            Error::RateLimited { .. } => Some(ErrorCode::RateLimited),
            Error::Http { code, .. } => code.parse().ok(),
            _ => None,
        }
    }

    /// True when retrying the same request later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::RateLimited | ErrorCode::ServiceBusy | ErrorCode::HandlerTimeout)
        ) || matches!(self, Error::Transport(_) | Error::Timeout(..))
    }

    pub(crate) fn from_error(e: ErrorData) -> Self {
        Error::Server {
            code: e.error_code,
            message: e.message,
            session_id: None,
            recoverable: e.recoverable,
        }
    }

    pub(crate) fn from_session_error(e: SessionErrorData) -> Self {
        Error::Server {
            code: e.error_code,
            message: e.message,
            session_id: e.session_id,
            recoverable: true,
        }
    }
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_survive_the_mapping() {
        let e = Error::from_session_error(SessionErrorData {
            session_id: Some("s".into()),
            error_code: ErrorCode::DataFetchFailed,
            message: "no data".into(),
        });
        assert_eq!(e.code(), Some(ErrorCode::DataFetchFailed));
        assert_eq!(e.to_string(), "DATA_FETCH_FAILED: no data");
        let e = Error::Http {
            status: 404,
            code: "SESSION_NOT_FOUND".into(),
            message: String::new(),
        };
        assert_eq!(e.code(), Some(ErrorCode::SessionNotFound));
        assert!(Error::RateLimited {
            retry_after: Some(3),
            message: "slow down".into()
        }
        .is_retryable());
        assert!(!Error::AuthFailed("bad key".into()).is_retryable());
    }
}
