//! Records and settings of human accounts: passwords, login sessions, refresh
//! tokens, second factors and the audit log (kept by an
//! [`AccountStore`](crate::AccountStore)).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{UnknownVariant, User};
use crate::password::PasswordParams;
use crate::secret::Secret;

/// The rules an account store enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPolicy {
    /// Argon2id costs for new password hashes.
    pub password: PasswordParams,
    /// Failed logins within [`failure_window`](Self::failure_window) that lock logins.
    pub max_failed_logins: u32,
    /// The window failures are counted in (from the first failure of a run).
    pub failure_window: Duration,
    /// How long logins stay locked after too many failures.
    pub lockout: Duration,
    /// Live login sessions per user; creating one more revokes the oldest.
    pub max_login_sessions: u32,
    /// A login session's absolute lifetime, however often it is refreshed.
    pub max_session_duration: Duration,
    /// A refresh token's lifetime (never beyond its session's end).
    pub refresh_token_lifetime: Duration,
    /// An email-verification token's lifetime.
    pub verification_token_lifetime: Duration,
    /// How long a password-reset token works (an invitation's works as long as a
    /// verification token).
    pub password_reset_token_lifetime: Duration,
    /// Recovery codes issued at a time.
    pub recovery_codes: u32,
    /// The issuer named in TOTP provisioning URIs.
    pub totp_issuer: String,
    /// Password hashes and verifications that may run at once (each holds the argon2
    /// memory cost); at least 1.
    pub hashing_permits: u32,
    /// How long a login or registration waits for a hashing slot before it is refused
    /// with [`AuthError::Overloaded`](crate::AuthError::Overloaded).
    pub hashing_wait: Duration,
}

impl Default for AccountPolicy {
    /// 5 failures in 15 minutes lock for 15 minutes; 5 sessions of at most 12 hours;
    /// refresh tokens for the session's life; verification links for 24 hours;
    /// 10 recovery codes; twice the available parallelism in hashing slots, waited
    /// for up to 5 seconds.
    fn default() -> Self {
        Self {
            password: PasswordParams::default(),
            max_failed_logins: 5,
            failure_window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            max_login_sessions: 5,
            max_session_duration: Duration::from_secs(12 * 3600),
            refresh_token_lifetime: Duration::from_secs(12 * 3600),
            verification_token_lifetime: Duration::from_secs(24 * 3600),
            password_reset_token_lifetime: Duration::from_secs(3600),
            recovery_codes: 10,
            totp_issuer: "SimuTrador".to_owned(),
            hashing_permits: u32::try_from(crate::password::HashingLimit::default_permits())
                .unwrap_or(u32::MAX),
            hashing_wait: Duration::from_secs(5),
        }
    }
}

/// A user with the state of their credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user record.
    pub user: User,
    /// Whether a password is set (API-key-only users have none).
    pub has_password: bool,
    /// When the email was verified, if it was.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// Failed logins in the current window.
    pub failed_logins: u32,
    /// Logins are refused until then (may lie in the past: then it no longer applies).
    pub locked_until: Option<DateTime<Utc>>,
    /// Whether a confirmed TOTP second factor is required.
    pub totp_enabled: bool,
    /// Counts password changes (not upgrades of its hash); see
    /// [`NewLoginSession::password_version`].
    pub password_version: i64,
}

impl Account {
    /// Whether a lockout is in force at `now`.
    pub fn is_locked_at(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }
}

/// A newly registered user and the token that verifies their email.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The stored user.
    pub user: User,
    /// The email-verification token.
    pub verification: OneTimeToken,
}

/// A one-time token, in clear for the only time.
#[derive(Debug, Clone)]
pub struct OneTimeToken {
    /// The token to send (e.g. in a link).
    pub token: Secret<String>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// What a password token is for; it decides how long the token works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordTokenPurpose {
    /// The user forgot the password (`password_reset_token_lifetime`).
    Reset,
    /// An operator created the user without a password
    /// (`verification_token_lifetime`).
    Invitation,
}

/// Why a login session ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevokeReason {
    /// The user logged out.
    Logout,
    /// Revoked because a newer session exceeded the per-user cap.
    SessionLimit,
    /// A rotated refresh token was presented again.
    RefreshTokenReused,
    /// The password changed.
    PasswordChanged,
    /// An operator revoked it.
    Admin,
}

impl RevokeReason {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::SessionLimit => "session_limit",
            RevokeReason::RefreshTokenReused => "refresh_token_reused",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::Admin => "admin",
        }
    }
}

impl FromStr for RevokeReason {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "logout" => Ok(RevokeReason::Logout),
            "session_limit" => Ok(RevokeReason::SessionLimit),
            "refresh_token_reused" => Ok(RevokeReason::RefreshTokenReused),
            "password_changed" => Ok(RevokeReason::PasswordChanged),
            "admin" => Ok(RevokeReason::Admin),
            _ => Err(UnknownVariant("revoke_reason")),
        }
    }
}

impl fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One login of a human user: a chain of refresh tokens with an absolute end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// Random id (for listings and `sid` claims).
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// The absolute end: `created_at` plus the maximum session duration.
    pub expires_at: DateTime<Utc>,
    /// Last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked.
    pub revoke_reason: Option<RevokeReason>,
    /// The client's User-Agent at login, if given.
    pub user_agent: Option<String>,
    /// The client's address at login, if given.
    pub ip: Option<String>,
}

impl LoginSession {
    /// Neither revoked nor past its end at `now`.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// Where a login comes from, as the gateway saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewLoginSession {
    /// The User-Agent header (at most 512 characters are kept).
    pub user_agent: Option<String>,
    /// The client address.
    pub ip: Option<String>,
    /// For a password login: the account's `password_version` its password was
    /// checked against. If the password changed since (a reset or change that ran
    /// while this login was being checked), the session is refused, so it cannot
    /// outlive the change that was meant to end it.
    pub password_version: Option<i64>,
}

/// A login session and a refresh token for it: the result of a login or a rotation.
#[derive(Debug, Clone)]
pub struct LoginGrant {
    /// The user as stored now (for the access token's claims).
    pub user: User,
    /// The session the token belongs to.
    pub session: LoginSession,
    /// The refresh token, in clear for the only time.
    pub refresh_token: Secret<String>,
    /// When the refresh token stops working.
    pub refresh_expires_at: DateTime<Utc>,
}

/// A TOTP secret waiting for its first code.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// The secret in base32, for manual entry.
    pub secret_base32: Secret<String>,
    /// The `otpauth://` URI, for a QR code.
    pub provisioning_uri: Secret<String>,
}

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// A user registered.
    UserRegistered,
    /// An email address was verified.
    EmailVerified,
    /// A password was set or changed.
    PasswordChanged,
    /// A login succeeded (a login session was created).
    LoginSucceeded,
    /// A login failed.
    LoginFailed,
    /// Too many failures locked logins.
    AccountLocked,
    /// A lockout was lifted by an operator.
    AccountUnlocked,
    /// A login session was revoked.
    SessionRevoked,
    /// A rotated refresh token was presented again.
    RefreshTokenReused,
    /// A TOTP secret was enrolled (not yet confirmed).
    TotpEnrolled,
    /// A TOTP secret was confirmed: the second factor is on.
    TotpConfirmed,
    /// The second factor was switched off.
    TotpDisabled,
    /// New recovery codes were issued.
    RecoveryCodesGenerated,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// A plan changed.
    PlanChanged,
    /// A role changed.
    RoleChanged,
    /// A status changed (disabled, enabled).
    StatusChanged,
    /// Any other operator action (see the detail).
    AdminAction,
}

impl AuditKind {
    /// Every kind, for listings and tests.
    pub const ALL: [AuditKind; 20] = [
        AuditKind::UserRegistered,
        AuditKind::EmailVerified,
        AuditKind::PasswordChanged,
        AuditKind::LoginSucceeded,
        AuditKind::LoginFailed,
        AuditKind::AccountLocked,
        AuditKind::AccountUnlocked,
        AuditKind::SessionRevoked,
        AuditKind::RefreshTokenReused,
        AuditKind::TotpEnrolled,
        AuditKind::TotpConfirmed,
        AuditKind::TotpDisabled,
        AuditKind::RecoveryCodesGenerated,
        AuditKind::RecoveryCodeUsed,
        AuditKind::ApiKeyCreated,
        AuditKind::ApiKeyRevoked,
        AuditKind::PlanChanged,
        AuditKind::RoleChanged,
        AuditKind::StatusChanged,
        AuditKind::AdminAction,
    ];

    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::UserRegistered => "user_registered",
            AuditKind::EmailVerified => "email_verified",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::LoginSucceeded => "login_succeeded",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::AccountLocked => "account_locked",
            AuditKind::AccountUnlocked => "account_unlocked",
            AuditKind::SessionRevoked => "session_revoked",
            AuditKind::RefreshTokenReused => "refresh_token_reused",
            AuditKind::TotpEnrolled => "totp_enrolled",
            AuditKind::TotpConfirmed => "totp_confirmed",
            AuditKind::TotpDisabled => "totp_disabled",
            AuditKind::RecoveryCodesGenerated => "recovery_codes_generated",
            AuditKind::RecoveryCodeUsed => "recovery_code_used",
            AuditKind::ApiKeyCreated => "api_key_created",
            AuditKind::ApiKeyRevoked => "api_key_revoked",
            AuditKind::PlanChanged => "plan_changed",
            AuditKind::RoleChanged => "role_changed",
            AuditKind::StatusChanged => "status_changed",
            AuditKind::AdminAction => "admin_action",
        }
    }
}

impl FromStr for AuditKind {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or(UnknownVariant("audit kind"))
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event to append to the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// Who did it (an operator, or the user themself); `None` for the system or an
    /// unauthenticated caller.
    pub actor_user_id: Option<Uuid>,
    /// Whom it concerns.
    pub subject_user_id: Option<Uuid>,
    /// The client address.
    pub ip: Option<String>,
    /// Anything else, as a JSON object (never secrets).
    pub detail: serde_json::Value,
}

impl NewAuditEvent {
    /// An event of `kind` with no actor, subject, address or detail.
    pub fn new(kind: AuditKind) -> Self {
        Self {
            kind,
            actor_user_id: None,
            subject_user_id: None,
            ip: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Sets the actor.
    pub fn actor(mut self, user_id: Uuid) -> Self {
        self.actor_user_id = Some(user_id);
        self
    }

    /// Sets the subject.
    pub fn subject(mut self, user_id: Uuid) -> Self {
        self.subject_user_id = Some(user_id);
        self
    }

    /// Sets the client address.
    pub fn ip(mut self, ip: Option<&str>) -> Self {
        self.ip = ip.map(str::to_owned);
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Increasing with insertion order.
    pub id: i64,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: AuditKind,
    /// Who did it.
    pub actor_user_id: Option<Uuid>,
    /// Whom it concerns.
    pub subject_user_id: Option<Uuid>,
    /// The client address.
    pub ip: Option<String>,
    /// The detail object.
    pub detail: serde_json::Value,
}

/// Filters of an audit listing; results are newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Events where this user is the actor or the subject.
    pub user_id: Option<Uuid>,
    /// Events of this kind.
    pub kind: Option<AuditKind>,
    /// Events at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Events before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Events recorded with this client address (exact match).
    pub ip: Option<String>,
    /// The window of the result.
    pub page: crate::model::Page,
}
