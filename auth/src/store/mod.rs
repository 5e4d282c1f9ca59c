//! Where users and API keys live: the [`UserStore`] trait, its SQLite and Postgres
//! implementations, and [`connect`], which picks one from the database URL. Finished
//! simulations share the database through [`ResultStore`].
//!
//! Both backends run one SQL layer: [`Store`] is generic over the sqlx database
//! ([`SqliteStore`] and [`PostgresStore`] are `Store<Sqlite>` and `Store<Postgres>`),
//! and every query is written once, with `$N` placeholders, in the file of its traits
//! (`users.rs`, `account_sql.rs`, `admin.rs`, `results.rs`). Ids and timestamps are
//! bound through the `Id` and `Ts` newtypes, which encode exactly as each backend
//! stores them (TEXT on SQLite, `uuid` and `timestamptz` on Postgres); the few real
//! differences of SQL (row locks, an unlimited `LIMIT`, JSONB casts, text search,
//! JSON access, the width of `INTEGER`) are the members of [`Dialect`]. [`Database`]
//! holds either store and forwards each call with one `dispatch!`. To add a table:
//! add its migration under both `migrations/sqlite` and `migrations/postgres`, then
//! write its queries once in a generic `impl<DB: Dialect>` (with the same bounds as
//! the others), binding `Id`/`Ts` for uuids and times and reaching for a [`Dialect`]
//! member only where the two SQL dialects really differ (adding one there if needed).

/// Forwards a call to whichever store a [`Database`] holds: the one dispatch of each
/// store trait from the enum to the generic [`Store`].
macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Database::Sqlite($store) => $call.await,
            Database::Postgres($store) => $call.await,
        }
    };
}

mod account_sql;
mod accounts;
mod admin;
mod results;
mod shared;
mod sql;
mod users;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::Plan;
use uuid::Uuid;

use crate::account::AccountPolicy;
use crate::clock::{Clock, SystemClock};
use crate::crypto::Keyring;
use crate::error::AuthError;
use crate::model::{
    ApiKey, AuthenticatedKey, CreatedApiKey, NewApiKey, NewUser, Page, User, UserStatus,
};
use crate::secret::Secret;

pub use self::accounts::{AccountStore, SecondFactor};
pub use self::admin::AdminStore;
pub use self::results::ResultStore;
pub use self::sql::{Dialect, PostgresStore, SqliteStore, Store};

/// The embedded single-node default.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:./data/simutrador.db";

/// Storage of users and API keys.
///
/// Implemented by [`SqliteStore`], [`PostgresStore`] and [`Database`], which
/// dispatches to whichever of the two [`connect`] chose. Both backends run the same
/// test suite (`tests/store.rs`).
pub trait UserStore: Send + Sync {
    /// Creates a user; [`AuthError::Conflict`] if the normalised email is taken.
    fn create_user(&self, new: NewUser) -> impl Future<Output = Result<User, AuthError>> + Send;

    /// The user with this id, or [`AuthError::NotFound`].
    fn user_by_id(&self, id: Uuid) -> impl Future<Output = Result<User, AuthError>> + Send;

    /// The user with this email (normalised before lookup), or [`AuthError::NotFound`].
    fn user_by_email(&self, email: &str) -> impl Future<Output = Result<User, AuthError>> + Send;

    /// Users in creation order.
    fn list_users(&self, page: Page) -> impl Future<Output = Result<Vec<User>, AuthError>> + Send;

    /// How many users exist.
    fn count_users(&self) -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// Changes a user's plan and returns the updated user.
    fn set_plan(
        &self,
        id: Uuid,
        plan: Plan,
    ) -> impl Future<Output = Result<User, AuthError>> + Send;

    /// Changes a user's status and returns the updated user.
    fn set_status(
        &self,
        id: Uuid,
        status: UserStatus,
    ) -> impl Future<Output = Result<User, AuthError>> + Send;

    /// Creates a key for `user_id`; the returned secret is never available again.
    fn create_api_key(
        &self,
        user_id: Uuid,
        new: NewApiKey,
    ) -> impl Future<Output = Result<CreatedApiKey, AuthError>> + Send;

    /// The keys of `user_id` (revoked and expired ones included), oldest first.
    fn list_api_keys(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Vec<ApiKey>, AuthError>> + Send;

    /// Revokes a key of `user_id` (idempotent); [`AuthError::NotFound`] if `user_id`
    /// has no such key, so nobody can revoke someone else's key.
    fn revoke_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
    ) -> impl Future<Output = Result<ApiKey, AuthError>> + Send;

    /// Sets when a key of `user_id` stops working (earlier only: a later or absent
    /// expiry is kept); [`AuthError::NotFound`] if `user_id` has no such key.
    fn expire_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<ApiKey, AuthError>> + Send;

    /// Checks a presented key and returns its owner.
    ///
    /// [`AuthError::InvalidKey`] for unknown, wrong, revoked or expired keys;
    /// [`AuthError::AccountInactive`] when the owner is disabled or locked. Records
    /// `last_used_at`, but writes at most once per key per
    /// [`StoreOptions::last_used_interval`] so the hot path is normally read-only.
    fn authenticate_api_key(
        &self,
        presented: &str,
    ) -> impl Future<Output = Result<AuthenticatedKey, AuthError>> + Send;

    /// Keys and login sessions revoked at or after `since`, and every user who is not
    /// active: what gateways must refuse even with a valid token.
    fn revocations_since(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Revocations, AuthError>> + Send;

    /// Round-trips to the database (for `/ready`).
    fn ping(&self) -> impl Future<Output = Result<(), AuthError>> + Send;
}

/// See [`UserStore::revocations_since`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    /// Revoked API keys.
    pub keys: Vec<Uuid>,
    /// Disabled or locked users.
    pub users: Vec<Uuid>,
    /// Login sessions ended (logout, revocation, theft) at or after `since`.
    pub sessions: Vec<Uuid>,
}

/// Settings shared by both backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Server-side key for hashing API keys; at least 32 bytes. Changing it
    /// invalidates every stored key.
    pub api_key_pepper: Secret<Vec<u8>>,
    /// Connection-pool size (an in-memory SQLite database always uses one).
    pub max_connections: u32,
    /// How long `last_used_at` may lag behind real use.
    pub last_used_interval: Duration,
    /// Source of timestamps and of "now" for expiry checks.
    pub clock: Arc<dyn Clock>,
    /// Rules for human accounts (passwords, lockout, login sessions).
    pub accounts: AccountPolicy,
    /// Keys for secrets kept encrypted at rest (TOTP seeds); without one, TOTP
    /// enrolment is refused with [`AuthError::Config`].
    pub keyring: Option<Arc<Keyring>>,
}

impl StoreOptions {
    /// Defaults: 10 connections, `last_used_at` kept to the minute, system clock,
    /// [`AccountPolicy::default`], no keyring.
    pub fn new(api_key_pepper: Secret<Vec<u8>>) -> Self {
        Self {
            api_key_pepper,
            max_connections: 10,
            last_used_interval: Duration::from_secs(60),
            clock: Arc::new(SystemClock),
            accounts: AccountPolicy::default(),
            keyring: None,
        }
    }

    /// Replaces the account rules.
    pub fn accounts(mut self, policy: AccountPolicy) -> Self {
        self.accounts = policy;
        self
    }

    /// Sets the keys for secrets at rest.
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(Arc::new(keyring));
        self
    }

    /// Replaces the clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the pool size.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max;
        self
    }

    /// Replaces the `last_used_at` granularity.
    pub fn last_used_interval(mut self, interval: Duration) -> Self {
        self.last_used_interval = interval;
        self
    }
}

/// Which database a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a URL names, from its scheme alone.
    pub fn from_url(url: &str) -> Result<Self, AuthError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(AuthError::InvalidDatabaseUrl(None))
        }
    }
}

impl Backend {
    /// The newest migration this build applies on the backend: the schema version a
    /// database has after [`connect`] (`MAX(version)` of its `_sqlx_migrations`).
    pub fn schema_version(self) -> i64 {
        let migrator = match self {
            Backend::Sqlite => sqlx::Sqlite::migrator(),
            Backend::Postgres => sqlx::Postgres::migrator(),
        };
        migrator.iter().map(|m| m.version).max().unwrap_or(0)
    }
}

/// A connected, migrated store on either backend.
#[derive(Debug, Clone)]
pub enum Database {
    /// SQLite.
    Sqlite(SqliteStore),
    /// Postgres.
    Postgres(PostgresStore),
}

/// Connects to `url` (`sqlite:…`, `postgres://…` or `postgresql://…`), applies
/// pending migrations and returns the store. A SQLite file and its directory are
/// created if missing.
pub async fn connect(url: &str, options: StoreOptions) -> Result<Database, AuthError> {
    match Backend::from_url(url)? {
        Backend::Sqlite => SqliteStore::connect(url, options)
            .await
            .map(Database::Sqlite),
        Backend::Postgres => PostgresStore::connect(url, options)
            .await
            .map(Database::Postgres),
    }
}

impl Database {
    /// See [`connect`].
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, AuthError> {
        connect(url, options).await
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Database::Sqlite(store) => store.close().await,
            Database::Postgres(store) => store.close().await,
        }
    }
}

impl UserStore for Database {
    async fn create_user(&self, new: NewUser) -> Result<User, AuthError> {
        dispatch!(self, store => store.create_user(new))
    }

    async fn user_by_id(&self, id: Uuid) -> Result<User, AuthError> {
        dispatch!(self, store => store.user_by_id(id))
    }

    async fn user_by_email(&self, email: &str) -> Result<User, AuthError> {
        dispatch!(self, store => store.user_by_email(email))
    }

    async fn list_users(&self, page: Page) -> Result<Vec<User>, AuthError> {
        dispatch!(self, store => store.list_users(page))
    }

    async fn count_users(&self) -> Result<u64, AuthError> {
        dispatch!(self, store => store.count_users())
    }

    async fn set_plan(&self, id: Uuid, plan: Plan) -> Result<User, AuthError> {
        dispatch!(self, store => store.set_plan(id, plan))
    }

    async fn set_status(&self, id: Uuid, status: UserStatus) -> Result<User, AuthError> {
        dispatch!(self, store => store.set_status(id, status))
    }

    async fn create_api_key(
        &self,
        user_id: Uuid,
        new: NewApiKey,
    ) -> Result<CreatedApiKey, AuthError> {
        dispatch!(self, store => store.create_api_key(user_id, new))
    }

    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, AuthError> {
        dispatch!(self, store => store.list_api_keys(user_id))
    }

    async fn revoke_api_key(&self, user_id: Uuid, key_id: Uuid) -> Result<ApiKey, AuthError> {
        dispatch!(self, store => store.revoke_api_key(user_id, key_id))
    }

    async fn expire_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<ApiKey, AuthError> {
        dispatch!(self, store => store.expire_api_key(user_id, key_id, at))
    }

    async fn authenticate_api_key(&self, presented: &str) -> Result<AuthenticatedKey, AuthError> {
        dispatch!(self, store => store.authenticate_api_key(presented))
    }

    async fn revocations_since(&self, since: DateTime<Utc>) -> Result<Revocations, AuthError> {
        dispatch!(self, store => store.revocations_since(since))
    }

    async fn ping(&self) -> Result<(), AuthError> {
        dispatch!(self, store => store.ping())
    }
}
