//! The records a [`UserStore`](crate::UserStore) keeps and returns.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use protocol::Plan;

use crate::secret::Secret;

/// A stored value did not name a known variant of the named enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown {0} value")]
pub struct UnknownVariant(pub &'static str);

/// What a user may do beyond their own resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// A customer.
    #[default]
    User,
    /// An operator with access to `/admin`.
    Admin,
}

impl Role {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownVariant("role")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a user may authenticate at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UserStatus {
    /// May authenticate.
    #[default]
    Active,
    /// Switched off by an operator.
    Disabled,
    /// Blocked automatically (for example after repeated failed logins).
    Locked,
}

impl UserStatus {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
            UserStatus::Locked => "locked",
        }
    }
}

impl FromStr for UserStatus {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(UserStatus::Active),
            "disabled" => Ok(UserStatus::Disabled),
            "locked" => Ok(UserStatus::Locked),
            _ => Err(UnknownVariant("status")),
        }
    }
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Random (v4) id; the JWT `sub`.
    pub id: Uuid,
    /// Normalised email: trimmed and lowercased; unique.
    pub email: String,
    /// Subscription plan.
    pub plan: Plan,
    /// Access level.
    pub role: Role,
    /// Whether the user may authenticate.
    pub status: UserStatus,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When plan, role or status last changed.
    pub updated_at: DateTime<Utc>,
}

/// The fields needed to create a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Email as typed; the store normalises it.
    pub email: String,
    /// Initial plan.
    pub plan: Plan,
    /// Initial role.
    pub role: Role,
}

impl NewUser {
    /// An active `user` on the `free` plan.
    pub fn new(email: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            plan: Plan::Free,
            role: Role::User,
        }
    }

    /// Sets the initial plan.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.plan = plan;
        self
    }

    /// Sets the initial role.
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }
}

/// A stored API key, without its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Random (v4) id, used to name the key in the REST API.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Label chosen by the user.
    pub name: String,
    /// The public part of the key (`stk_<prefix>_…`), safe to show in listings.
    pub prefix: String,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
    /// Last successful authentication, updated at most once per configured interval.
    pub last_used_at: Option<DateTime<Utc>>,
    /// After this instant the key no longer authenticates.
    pub expires_at: Option<DateTime<Utc>>,
    /// Set once the key is revoked; revoked keys never authenticate again.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// The key as users see it in listings, e.g. `stk_Ab3dEf9h_…`.
    pub fn display_prefix(&self) -> String {
        format!("{}{}_…", crate::api_key::KEY_PREFIX, self.prefix)
    }

    /// What the audit log records of the key (never its secret), the same wherever it
    /// was created or revoked.
    pub fn audit_detail(&self) -> serde_json::Value {
        serde_json::json!({
            "key_id": self.id.to_string(),
            "prefix": self.display_prefix(),
            "name": self.name,
        })
    }
}

/// The fields needed to create an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// Label chosen by the user.
    pub name: String,
    /// Optional expiry; must lie in the future.
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewApiKey {
    /// A key that never expires.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            expires_at: None,
        }
    }

    /// Sets an expiry.
    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// A freshly created key: the only time its secret is available.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    /// The stored record.
    pub key: ApiKey,
    /// The full key to hand to the user once (`stk_<prefix>_<secret>`).
    pub secret: Secret<String>,
}

/// The result of a successful API-key authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedKey {
    /// The key's owner, as stored now.
    pub user: User,
    /// Which key was used.
    pub key_id: Uuid,
}

/// A window of a listing, in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return at most.
    pub limit: u32,
}

impl Page {
    /// The largest `limit` a store honours; larger values are clamped.
    pub const MAX_LIMIT: u32 = 1000;

    /// A page of `limit` rows starting after `offset` rows.
    pub fn new(offset: u64, limit: u32) -> Self {
        Self { offset, limit }
    }

    pub(crate) fn sql_limit(self) -> i64 {
        i64::from(self.limit.min(Self::MAX_LIMIT))
    }

    pub(crate) fn sql_offset(self) -> i64 {
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new(0, 100)
    }
}
