//! The one error type of this crate.
//!
//! Display strings are safe to show to clients: they never contain SQL, database
//! URLs, paths or secrets. The underlying cause, when there is one, is kept as the
//! error's `source()` for logs.

use crate::model::UserStatus;

/// Everything that can go wrong in `auth`.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No such user or key (or the key belongs to someone else).
    #[error("not found")]
    NotFound,
    /// A unique value is already taken; the text says which, in client-safe words.
    #[error("{0}")]
    Conflict(&'static str),
    /// A caller-supplied value was rejected before touching the database.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The offending field.
        field: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The presented API key does not authenticate. Every reason shares one message so
    /// clients cannot tell a wrong secret from a revoked key; the reason is for logs.
    #[error("invalid API key")]
    InvalidKey(KeyRejection),
    /// The credentials were right but the account is disabled or locked.
    #[error("account is not active")]
    AccountInactive(UserStatus),
    /// The presented JWT does not verify; the reason is for logs.
    #[error("invalid token")]
    InvalidToken(TokenRejection),
    /// A configuration value is unusable; the text names the setting.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// The database URL has no supported scheme or does not parse.
    #[error("invalid database url")]
    InvalidDatabaseUrl(#[source] Option<sqlx::Error>),
    /// The directory for the SQLite file could not be created.
    #[error("could not create the database directory")]
    DatabaseDirectory(#[source] std::io::Error),
    /// The database failed or returned something unexpected.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("database migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// Signing a token failed (only a broken crypto backend does this).
    #[error("could not issue token")]
    TokenEncoding(#[source] jsonwebtoken::errors::Error),
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random(#[source] getrandom::Error),
    /// Email and password do not authenticate. One message for every reason, so a
    /// client cannot learn whether the email exists; the reason is for logs.
    #[error("invalid email or password")]
    InvalidCredentials(CredentialRejection),
    /// The presented refresh token does not grant a new one; the reason is for logs.
    #[error("invalid refresh token")]
    InvalidRefreshToken(RefreshRejection),
    /// A refresh token that had already been rotated was presented again: someone
    /// holds a copy. Its whole login session has been revoked and audited.
    #[error("refresh token was already used; the login session has been revoked")]
    RefreshTokenReused,
    /// An email-verification token is unknown, used or expired; the reason is for logs.
    #[error("invalid or expired token")]
    InvalidOneTimeToken(OneTimeRejection),
    /// The right password for a user with TOTP, but no second factor was given; the
    /// caller should ask for the code.
    #[error("this account needs its second factor")]
    SecondFactorRequired,
    /// A TOTP code or recovery code was wrong, replayed or already used.
    #[error("invalid authentication code")]
    InvalidSecondFactor,
    /// Hashing a password failed (only out-of-range parameters do this).
    #[error("could not hash password")]
    PasswordHashing,
    /// The right password, but the email address was never verified: password login
    /// waits until it is. Told apart from a wrong password because the caller proved
    /// the password.
    #[error("email address is not verified")]
    EmailNotVerified,
    /// Every password-hashing slot stayed busy for the configured wait: the server is
    /// overloaded with logins. Nothing was counted; trying again later is fine.
    #[error("too many passwords are being checked; try again shortly")]
    Overloaded,
    /// Sealing or opening a secret kept at rest failed; the text is for logs.
    #[error("could not use an encrypted secret")]
    Crypto(&'static str),
}

impl From<sqlx::Error> for AuthError {
    fn from(error: sqlx::Error) -> Self {
        AuthError::Database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for AuthError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        AuthError::Migration(error)
    }
}

/// Why an API key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    /// Not of the form `stk_<8 chars>_<40 chars>`.
    Malformed,
    /// No key with that prefix.
    UnknownPrefix,
    /// The prefix exists but the secret does not match.
    WrongSecret,
    /// The key was revoked.
    Revoked,
    /// The key's expiry has passed.
    Expired,
}

/// Why a JWT was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Not a well-formed JWT with our claims.
    Malformed,
    /// The header names an algorithm other than the pinned one (including `none`).
    WrongAlgorithm,
    /// The signature does not match.
    BadSignature,
    /// `exp` has passed.
    Expired,
    /// `iat` lies in the future beyond the allowed leeway.
    IssuedInFuture,
    /// `iss` is not ours.
    WrongIssuer,
    /// `aud` is not ours.
    WrongAudience,
}

/// Why an email and password were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialRejection {
    /// No user has that email (a dummy hash was verified to spend the same time).
    UnknownEmail,
    /// The user has no password (API-key-only account).
    NoPassword,
    /// The password is wrong.
    WrongPassword,
    /// Too many recent failures: logins are refused until this instant.
    Locked {
        /// When logins are accepted again.
        until: chrono::DateTime<chrono::Utc>,
    },
    /// The window already counts `max_failed_logins` attempts (failed, or still being
    /// checked), so this one was refused without looking at the password.
    TooManyAttempts,
}

/// Why a refresh token was refused (other than re-use, which is
/// [`AuthError::RefreshTokenReused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRejection {
    /// Not of the form `srt_<43 base62>`.
    Malformed,
    /// No such token.
    Unknown,
    /// The token's own expiry has passed.
    Expired,
    /// Its login session was revoked (logout, cap, theft, admin).
    SessionRevoked,
    /// Its login session reached its maximum duration.
    SessionExpired,
}

/// Why a one-time token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimeRejection {
    /// Malformed or never issued.
    Unknown,
    /// Already used.
    Used,
    /// Expired.
    Expired,
}
