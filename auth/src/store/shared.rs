//! Policy the store applies on either backend, apart from its SQL.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use uuid::Uuid;

use super::StoreOptions;
use crate::account::AccountPolicy;
use crate::api_key::{self, ApiKeyHasher};
use crate::clock::Clock;
use crate::crypto::Keyring;
use crate::email::normalise_email;
use crate::error::{AuthError, KeyRejection};
use crate::model::{ApiKey, CreatedApiKey, NewApiKey, NewUser, User, UserStatus};
use crate::password::{HashingLimit, PasswordHasher};

/// Longest accepted API-key name, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 100;

/// The conflict message for a taken email.
pub(super) const EMAIL_TAKEN: &str = "a user with this email already exists";

/// How often key creation retries after a (very unlikely) prefix collision.
pub(super) const KEY_INSERT_ATTEMPTS: usize = 4;

/// Hasher, clock and settings held by each store.
#[derive(Debug, Clone)]
pub(super) struct StoreCore {
    hasher: ApiKeyHasher,
    clock: Arc<dyn Clock>,
    last_used_interval: TimeDelta,
    pub(super) passwords: PasswordHasher,
    /// Shared by every hash and verification of this store (and its clones).
    pub(super) hashing: HashingLimit,
    pub(super) rules: AccountRules,
    pub(super) keyring: Option<Arc<Keyring>>,
}

/// [`AccountPolicy`] with durations as `TimeDelta`, checked once at connect.
#[derive(Debug, Clone)]
pub(super) struct AccountRules {
    pub max_failed_logins: u32,
    pub failure_window: TimeDelta,
    pub lockout: TimeDelta,
    pub max_login_sessions: u32,
    pub max_session_duration: TimeDelta,
    pub refresh_token_lifetime: TimeDelta,
    pub verification_token_lifetime: TimeDelta,
    pub password_reset_token_lifetime: TimeDelta,
    pub recovery_codes: u32,
    pub totp_issuer: String,
}

impl AccountRules {
    fn new(policy: &AccountPolicy) -> Result<Self, AuthError> {
        let delta = |d: std::time::Duration, what: &'static str| {
            TimeDelta::from_std(d)
                .ok()
                .filter(|d| *d > TimeDelta::zero() && *d < TimeDelta::days(3650))
                .ok_or(AuthError::Config(what))
        };
        if policy.max_failed_logins == 0 {
            return Err(AuthError::Config("max_failed_logins must be at least 1"));
        }
        if policy.max_login_sessions == 0 {
            return Err(AuthError::Config("max_login_sessions must be at least 1"));
        }
        if !(1..=100).contains(&policy.recovery_codes) {
            return Err(AuthError::Config("recovery_codes must be 1 to 100"));
        }
        if policy.hashing_permits == 0 {
            return Err(AuthError::Config("hashing_permits must be at least 1"));
        }
        Ok(Self {
            max_failed_logins: policy.max_failed_logins,
            failure_window: delta(policy.failure_window, "failure_window must be positive")?,
            lockout: delta(policy.lockout, "lockout must be positive")?,
            max_login_sessions: policy.max_login_sessions,
            max_session_duration: delta(
                policy.max_session_duration,
                "max_session_duration must be positive",
            )?,
            refresh_token_lifetime: delta(
                policy.refresh_token_lifetime,
                "refresh_token_lifetime must be positive",
            )?,
            verification_token_lifetime: delta(
                policy.verification_token_lifetime,
                "verification_token_lifetime must be positive",
            )?,
            password_reset_token_lifetime: delta(
                policy.password_reset_token_lifetime,
                "password_reset_token_lifetime must be positive",
            )?,
            recovery_codes: policy.recovery_codes,
            totp_issuer: policy.totp_issuer.clone(),
        })
    }
}

impl StoreCore {
    pub(super) fn new(options: &StoreOptions) -> Result<Self, AuthError> {
        if options.max_connections == 0 {
            return Err(AuthError::Config(
                "database max_connections must be at least 1",
            ));
        }
        let last_used_interval = TimeDelta::from_std(options.last_used_interval)
            .map_err(|_| AuthError::Config("last_used_interval is too large"))?;
        Ok(Self {
            hasher: ApiKeyHasher::new(&options.api_key_pepper)?,
            clock: Arc::clone(&options.clock),
            last_used_interval,
            passwords: PasswordHasher::new(options.accounts.password)?,
            hashing: HashingLimit::new(
                options.accounts.hashing_permits as usize,
                options.accounts.hashing_wait,
            ),
            rules: AccountRules::new(&options.accounts)?,
            keyring: options.keyring.clone(),
        })
    }

    /// The stored form of a token or recovery code: HMAC-SHA256 under the pepper.
    pub(super) fn token_hash(&self, token: &str) -> Vec<u8> {
        self.hasher.hash(token)
    }

    /// Now, at the microsecond precision both databases store, so values read back
    /// compare equal to values written.
    pub(super) fn now(&self) -> DateTime<Utc> {
        self.clock.now().trunc_subsecs(6)
    }

    /// The row for a new user, with a normalised email.
    pub(super) fn new_user(&self, new: NewUser) -> Result<User, AuthError> {
        let now = self.now();
        Ok(User {
            id: Uuid::new_v4(),
            email: normalise_email(&new.email)?,
            plan: new.plan,
            role: new.role,
            status: UserStatus::Active,
            created_at: now,
            updated_at: now,
        })
    }

    /// Validates `new` before any key material is generated.
    pub(super) fn check_new_key(&self, new: &NewApiKey) -> Result<(), AuthError> {
        let invalid = |field, reason| AuthError::InvalidInput { field, reason };
        if new.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if new.name.chars().count() > MAX_KEY_NAME_CHARS {
            return Err(invalid("name", "is too long"));
        }
        if new
            .expires_at
            .is_some_and(|at| at.trunc_subsecs(6) <= self.now())
        {
            return Err(invalid("expires_at", "must lie in the future"));
        }
        Ok(())
    }

    /// A fresh key for `user_id`: the record, the hash to store and the secret.
    pub(super) fn new_key(
        &self,
        user_id: Uuid,
        new: &NewApiKey,
    ) -> Result<(CreatedApiKey, Vec<u8>), AuthError> {
        let generated = api_key::generate()?;
        let hash = self.hasher.hash(generated.full.expose());
        let key = ApiKey {
            id: Uuid::new_v4(),
            user_id,
            name: new.name.clone(),
            prefix: generated.prefix,
            created_at: self.now(),
            last_used_at: None,
            expires_at: new.expires_at.map(|at| at.trunc_subsecs(6)),
            revoked_at: None,
        };
        Ok((
            CreatedApiKey {
                key,
                secret: generated.full,
            },
            hash,
        ))
    }

    /// Decides whether a key found by its prefix lets `presented` in.
    ///
    /// The secret is checked first, so a caller without it learns nothing about
    /// the key's state, not even in logs.
    pub(super) fn check_key(
        &self,
        presented: &str,
        stored_hash: &[u8],
        key: &ApiKey,
        user: &User,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        if !self.hasher.verify(presented, stored_hash) {
            return Err(AuthError::InvalidKey(KeyRejection::WrongSecret));
        }
        if key.revoked_at.is_some() {
            return Err(AuthError::InvalidKey(KeyRejection::Revoked));
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(AuthError::InvalidKey(KeyRejection::Expired));
        }
        if user.status != UserStatus::Active {
            return Err(AuthError::AccountInactive(user.status));
        }
        Ok(())
    }

    /// If `key.last_used_at` is stale at `now`, the cut-off for a conditional update
    /// (`... WHERE last_used_at IS NULL OR last_used_at < cutoff`), so that of many
    /// concurrent requests only the first writes.
    pub(super) fn touch_cutoff(&self, key: &ApiKey, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cutoff = now - self.last_used_interval;
        match key.last_used_at {
            Some(last) if last > cutoff => None,
            _ => Some(cutoff),
        }
    }
}

/// Parses the prefix of a presented key, or refuses it without a lookup.
pub(super) fn presented_prefix(presented: &str) -> Result<&str, AuthError> {
    api_key::parse_prefix(presented).map_err(AuthError::InvalidKey)
}

/// Maps a unique-constraint violation to `Conflict(what)`, anything else to `Database`.
pub(super) fn conflict_or(error: sqlx::Error, what: &'static str) -> AuthError {
    if is_unique_violation(&error) {
        AuthError::Conflict(what)
    } else {
        AuthError::Database(error)
    }
}

pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

pub(super) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}

/// Parses a stored enumeration; a value outside the CHECK constraint means a
/// newer schema or a hand-edited row, reported as a decode error.
pub(super) fn decode_enum<T>(column: &str, value: &str) -> Result<T, AuthError>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    T::from_str(value).map_err(|e| {
        AuthError::Database(sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(e),
        })
    })
}

/// Like [`decode_enum`] for a type with a parsing function instead of `FromStr`.
pub(super) fn decode_enum_with<T, E>(
    column: &str,
    value: &str,
    parse: fn(&str) -> Result<T, E>,
) -> Result<T, AuthError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    parse(value).map_err(|e| {
        AuthError::Database(sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(e),
        })
    })
}

/// Logs a failed `last_used_at` update: bookkeeping must not fail a login.
pub(super) fn log_touch_failure(key_id: Uuid, error: &sqlx::Error) {
    tracing::warn!(%key_id, error = %error, "could not record api key use");
}

/// Column names of a user in a result row.
pub(super) struct UserColumns {
    pub id: &'static str,
    pub email: &'static str,
    pub plan: &'static str,
    pub role: &'static str,
    pub status: &'static str,
    pub created_at: &'static str,
    pub updated_at: &'static str,
}

pub(super) const USER: UserColumns = UserColumns {
    id: "id",
    email: "email",
    plan: "plan",
    role: "role",
    status: "status",
    created_at: "created_at",
    updated_at: "updated_at",
};

pub(super) const JOINED_USER: UserColumns = UserColumns {
    id: "user_id",
    email: "u_email",
    plan: "u_plan",
    role: "u_role",
    status: "u_status",
    created_at: "u_created_at",
    updated_at: "u_updated_at",
};
