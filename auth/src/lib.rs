//! SimuTrador identity: users, API keys and access tokens.
//!
//! - [`store`]: the [`UserStore`] trait with SQLite and Postgres implementations;
//!   [`connect`] picks one from the database URL and applies `migrations/`.
//!   [`ResultStore`] keeps finished simulations ([`simulation`]) in the same database.
//! - [`api_key`]: the `stk_<prefix>_<secret>` format and its peppered HMAC.
//! - [`jwt`]: HS256 access tokens ([`Jwt::issue`], [`Jwt::verify`]).
//! - [`Secret`]: wraps anything that must not reach a log.
//! - Human accounts: [`AccountStore`] (registration, email verification, password
//!   login with lockout, login sessions with rotating refresh tokens and theft
//!   detection, TOTP and recovery codes, the audit log) on the same backends, with
//!   [`password`] (argon2id), [`totp`] (RFC 6238), [`crypto`] (AES-256-GCM keyring for
//!   secrets at rest) and [`token`] (opaque tokens) as its building blocks.
//! - Operators: [`AdminStore`] (user search, usage per user and per plan, any key by
//!   id, audit counts) with its query types in [`admin`].
//!
//! Time comes from a [`Clock`], so expiry is testable without sleeping.

pub mod account;
pub mod admin;
pub mod api_key;
pub mod clock;
pub mod crypto;
pub mod email;
pub mod error;
pub mod jwt;
pub mod model;
pub mod password;
pub mod secret;
pub mod simulation;
pub mod store;
pub mod token;
pub mod totp;

pub use account::{
    Account, AccountPolicy, AuditEvent, AuditKind, AuditQuery, LoginGrant, LoginSession,
    NewAuditEvent, NewLoginSession, OneTimeToken, PasswordTokenPurpose, Registration, RevokeReason,
    TotpEnrolment,
};
pub use admin::{PlanUsage, UsageListing, UsageQuery, UserListing, UserQuery, UserUsage};
pub use clock::{Clock, ManualClock, SystemClock};
pub use crypto::{Keyring, Sealed};
pub use email::normalise_email;
pub use error::{
    AuthError, CredentialRejection, KeyRejection, OneTimeRejection, RefreshRejection,
    TokenRejection,
};
pub use jwt::{Claims, IssuedToken, Jwt, JwtConfig};
pub use model::{
    ApiKey, AuthenticatedKey, CreatedApiKey, NewApiKey, NewUser, Page, Role, UnknownVariant, User,
    UserStatus,
};
pub use password::{PasswordHasher, PasswordParams};
pub use protocol::Plan;
pub use secret::Secret;
pub use simulation::{SimulationRecord, SimulationSummary, MAX_SESSION_ID_BYTES};
pub use store::{
    connect, AccountStore, AdminStore, Backend, Database, PostgresStore, ResultStore, Revocations,
    SecondFactor, SqliteStore, StoreOptions, UserStore, DEFAULT_DATABASE_URL,
};
