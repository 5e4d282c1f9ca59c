//! The entry point: a server address, the token exchange (`POST /auth/token`) and the
//! WebSocket handshake (`GET /ws/simulate`).

use std::fmt;
use std::time::Duration;

use awc::http::StatusCode;
use protocol::{ApiError, Plan, TokenResponse};

use crate::connection::Connection;
use crate::error::{Error, Result};

/// Largest frame the client accepts: a `history_snapshot` with many warm-up bars is big.
const MAX_FRAME_BYTES: usize = 64 << 20;

/// A JWT with what the token endpoint said about it. `Debug` hides the token itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    access_token: String,
    /// Expiry as Unix seconds (client clock: issue time plus `expires_in`).
    pub expires_at: i64,
    /// The key owner's user id.
    pub user_id: String,
    /// The user's plan.
    pub plan: Plan,
}

impl Token {
    /// A token from its parts (e.g. read back from a cache).
    pub fn new(
        access_token: impl Into<String>,
        expires_at: i64,
        user_id: impl Into<String>,
        plan: Plan,
    ) -> Self {
        Token {
            access_token: access_token.into(),
            expires_at,
            user_id: user_id.into(),
            plan,
        }
    }

    /// The JWT; treat it like a password.
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// Seconds of validity left at `now` (Unix seconds); negative once expired.
    pub fn remaining_secs(&self, now: i64) -> i64 {
        self.expires_at - now
    }

    /// True when the token is still valid for more than `margin` at `now`, the check the
    /// official SDK makes with a 5-minute margin before reusing a token.
    pub fn is_fresh(&self, now: i64, margin: Duration) -> bool {
        self.remaining_secs(now) > margin.as_secs() as i64
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("user_id", &self.user_id)
            .field("plan", &self.plan)
            .finish()
    }
}

/// A SimuTrador server. Cheap to clone. Like every awc client it must be used on an
/// actix-rt system (`#[actix_rt::main]`, `actix_rt::System::new().block_on(..)`).
#[derive(Clone)]
pub struct Client {
    base_url: String,
    http: awc::Client,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A client for the server at `base_url` (`http://host:port`, trailing slash
    /// optional). The URL is checked on first use.
    pub fn new(base_url: impl Into<String>) -> Self {
        let base_url = base_url.into().trim().trim_end_matches('/').to_string();
        let timeout = Duration::from_secs(30);
        // No pool limit: a load generator holds one socket per session. TCP_NODELAY
        // on every socket (see `tcp`), so a strategy's orders do not wait on Nagle.
        let http = awc::Client::builder()
            .connector(
                awc::Connector::new()
                    .connector(crate::tcp::connector())
                    .limit(0)
                    .timeout(timeout),
            )
            .timeout(timeout)
            .finish();
        Client {
            base_url,
            http,
            timeout,
        }
    }

    /// The same client with another limit on how long one request or reply may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The server address as given (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn checked_base(&self) -> Result<&str> {
        let invalid = |reason| Error::InvalidUrl {
            url: self.base_url.clone(),
            reason,
        };
        let rest = if let Some(rest) = self.base_url.strip_prefix("http://") {
            rest
        } else if self.base_url.starts_with("https://") {
            return Err(invalid(
                "https is not supported by this build (no TLS); use http://",
            ));
        } else {
            return Err(invalid("expected http://host[:port]"));
        };
        if rest.is_empty() || rest.contains(['?', '#', ' ']) {
            return Err(invalid("expected http://host[:port]"));
        }
        Ok(&self.base_url)
    }

    /// Exchanges an API key for a token (`POST /auth/token`).
    pub async fn authenticate(&self, api_key: &str) -> Result<Token> {
        let url = format!("{}/auth/token", self.checked_base()?);
        let mut res = self
            .http
            .post(url)
            .insert_header(("X-API-Key", api_key.trim()))
            .timeout(self.timeout)
            .send_json(&serde_json::json!({}))
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        let status = res.status();
        let body = res
            .body()
            .limit(1 << 20)
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        if status != StatusCode::OK {
            let retry_after = res
                .headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            return Err(http_error(status, &body, retry_after));
        }
        let issued: TokenResponse = serde_json::from_slice(&body).map_err(|e| Error::Http {
            status: status.as_u16(),
            code: String::new(),
            message: format!("unreadable token response: {e}"),
        })?;
        Ok(Token {
            access_token: issued.access_token,
            expires_at: now_unix() + issued.expires_in as i64,
            user_id: issued.user_id,
            plan: issued.plan,
        })
    }

    /// Opens `/ws/simulate` with `token` and waits for `connection_ready`.
    pub async fn connect(&self, token: &Token) -> Result<Connection> {
        self.connect_jwt(token.access_token()).await
    }

    /// Like [`Client::connect`] with a bare JWT.
    pub async fn connect_jwt(&self, jwt: &str) -> Result<Connection> {
        let url = format!("{}/ws/simulate?token={jwt}", self.checked_base()?);
        let connecting = self.http.ws(url).max_frame_size(MAX_FRAME_BYTES).connect();
        let (_res, framed) = tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| Error::Timeout(self.timeout, "the WebSocket handshake"))?
            .map_err(|e| match e {
                awc::error::WsClientError::InvalidResponseStatus(s) => http_error(s, b"", None),
                other => Error::Transport(other.to_string()),
            })?;
        Connection::handshake(framed, self.timeout).await
    }
}

/// The error of a non-success HTTP answer, from its status and `{error, message}` body.
fn http_error(status: StatusCode, body: &[u8], retry_after: Option<u64>) -> Error {
    let parsed: Option<ApiError> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .map(|b| b.message.clone())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
    match status {
        StatusCode::UNAUTHORIZED => Error::AuthFailed(message),
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited {
            retry_after,
            message,
        },
        _ => Error::Http {
            status: status.as_u16(),
            code: parsed.map(|b| b.error).unwrap_or_default(),
            message,
        },
    }
}

/// The wall clock in Unix seconds.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(Client::new("http://127.0.0.1:8003/").checked_base().is_ok());
        assert_eq!(
            Client::new("http://127.0.0.1:8003/").base_url(),
            "http://127.0.0.1:8003"
        );
        for bad in ["127.0.0.1:8003", "https://x", "ftp://x", "http://"] {
            assert!(
                matches!(
                    Client::new(bad).checked_base(),
                    Err(Error::InvalidUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn tokens_expire_with_a_margin_and_hide_in_debug() {
        let t = Token::new("secret.jwt.value", 1_000, "u1", Plan::Free);
        assert!(t.is_fresh(600, Duration::from_secs(300)));
        assert!(!t.is_fresh(700, Duration::from_secs(300)));
        assert!(!format!("{t:?}").contains("secret"));
    }

    #[test]
    fn http_errors_keep_their_code() {
        let body = br#"{"error":"RATE_LIMITED","message":"too many"}"#;
        match http_error(StatusCode::TOO_MANY_REQUESTS, body, Some(7)) {
            Error::RateLimited {
                retry_after: Some(7),
                message,
            } => assert_eq!(message, "too many"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            http_error(StatusCode::UNAUTHORIZED, b"", None),
            Error::AuthFailed(_)
        ));
    }
}
