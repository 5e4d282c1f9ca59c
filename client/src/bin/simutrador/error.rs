//! Why a command failed, and its exit code.

use std::process::ExitCode;

/// A command failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad command line (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Bad or unreadable settings.
    #[error("{0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Nothing to authenticate with.
    #[error("no API key: pass --api-key, set SIMUTRADOR_API_KEY, or put api_key in {0}")]
    NoApiKey(String),
    /// The server or the connection failed.
    #[error(transparent)]
    Sdk(#[from] simutrador_client::Error),
    /// A command found nothing to act on (e.g. `auth status` when logged out).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// 2 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::from(1),
        }
    }

    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let what = what.into();
        move |source| CliError::Io { what, source }
    }
}
