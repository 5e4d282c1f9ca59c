//! Log output: text or JSON lines (`log.format`), filtered by `log.level` directives
//! (`RUST_LOG` syntax), and the helpers that keep secrets out of the logs.

use tracing::Subscriber;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Query parameters whose values are never logged.
const SECRET_PARAMS: [&str; 8] = [
    "token",
    "access_token",
    "refresh_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "secret",
];

/// What replaces a secret value.
pub const REDACTED: &str = "[redacted]";

/// A subscriber writing to `writer` as configured.
pub fn subscriber(
    format: LogFormat,
    level: &str,
    writer: BoxMakeWriter,
) -> Result<Box<dyn Subscriber + Send + Sync>, String> {
    let filter = level
        .parse::<EnvFilter>()
        .map_err(|e| format!("log.level: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    Ok(match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.with_ansi(false).finish()),
    })
}

/// Installs the process-wide subscriber (to standard error) from `settings`.
pub fn init(settings: &Settings) -> Result<(), String> {
    let sub = subscriber(
        settings.log_format(),
        &settings.log.level,
        BoxMakeWriter::new(std::io::stderr),
    )?;
    tracing::subscriber::set_global_default(sub).map_err(|e| e.to_string())
}

/// `query` with the values of secret parameters (`token`, `api_key`, `password`, ...)
/// replaced by [`REDACTED`].
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret(name) => format!("{name}={REDACTED}"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_secret(name: &str) -> bool {
    SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// `path?query` as it may be logged.
pub fn loggable_target(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", redact_query(query))
    }
}

/// A client's `X-Request-Id` is kept if it is 1 to 64 characters of letters, digits,
/// `-`, `_`, `.` and `:` (so it cannot forge log lines or carry much).
pub fn valid_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A fresh request id.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_queries() {
        assert_eq!(
            redact_query("token=eyJhbGciOi.abc.def&x=1"),
            "token=[redacted]&x=1"
        );
        assert_eq!(
            redact_query("a=1&API_KEY=stk_x&Password=p&access_token=t"),
            "a=1&API_KEY=[redacted]&Password=[redacted]&access_token=[redacted]"
        );
        assert_eq!(redact_query("offset=0&limit=5"), "offset=0&limit=5");
        assert_eq!(
            loggable_target("/ws/simulate", "token=secret"),
            "/ws/simulate?token=[redacted]"
        );
        assert_eq!(loggable_target("/health", ""), "/health");
    }

    #[test]
    fn request_ids() {
        assert!(valid_request_id("abc-123_x.y:z"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id("line\nbreak"));
        assert!(!valid_request_id(&"a".repeat(65)));
        let id = new_request_id();
        assert!(valid_request_id(&id) && id.len() == 32);
    }
}
