//! Human accounts: the [`AccountStore`] trait, its dispatch through [`Database`], and
//! the rules both backends share.
//!
//! [`AccountBackend`] is the small SQL operations, written once for both backends in
//! `account_sql.rs`. The rules (lockout, session cap, refresh-token rotation and
//! theft, TOTP replay, auditing) are written once here on top of them, so SQLite and
//! Postgres cannot drift apart.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use super::shared::{StoreCore, KEY_INSERT_ATTEMPTS};
use super::sql::{Dialect, Store};
use super::{Database, UserStore};
use crate::account::{
    Account, AuditEvent, AuditKind, AuditQuery, LoginGrant, LoginSession, NewAuditEvent,
    NewLoginSession, OneTimeToken, PasswordTokenPurpose, Registration, RevokeReason, TotpEnrolment,
};
use crate::crypto::Sealed;
use crate::email::normalise_email;
use crate::error::{AuthError, CredentialRejection, OneTimeRejection, RefreshRejection};
use crate::model::{ApiKey, CreatedApiKey, NewApiKey, NewUser, User, UserStatus};
use crate::password::{HashingPermit, PasswordHasher};
use crate::secret::Secret;
use crate::{token, totp};

/// Longest stored User-Agent, in characters; longer ones are cut.
pub const MAX_USER_AGENT_CHARS: usize = 512;
/// Longest stored client address, in characters.
pub const MAX_IP_CHARS: usize = 64;

const TOTP_ENABLED: &str = "two-factor authentication is already enabled";

/// Storage and rules of human accounts: passwords, email verification, lockout,
/// login sessions with rotating refresh tokens, TOTP, recovery codes and the audit log.
///
/// Every time decision uses the store's [`Clock`](crate::Clock). Implemented by
/// [`SqliteStore`](super::SqliteStore), [`PostgresStore`](super::PostgresStore) and
/// [`Database`]; both backends run the same suite (`tests/accounts.rs`).
pub trait AccountStore: Send + Sync {
    /// Creates a user with a password and an email-verification token.
    /// [`AuthError::Conflict`] if the normalised email is taken;
    /// [`AuthError::InvalidInput`] for a password under 8 characters or over 1024 bytes.
    fn register_user(
        &self,
        new: NewUser,
        password: Secret<String>,
        ip: Option<String>,
    ) -> impl Future<Output = Result<Registration, AuthError>> + Send;

    /// Sets or replaces a user's password (audited). Sessions are left alone; call
    /// [`revoke_login_sessions`](Self::revoke_login_sessions) too where wanted.
    fn set_password(
        &self,
        user_id: Uuid,
        password: Secret<String>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Checks an email, a password and, for users with TOTP, the second factor: a
    /// human login.
    ///
    /// Always runs exactly one argon2 verification (against a dummy hash for unknown
    /// emails, password-less users and refused attempts), so the time taken does not
    /// reveal whether the email exists. Refused with [`AuthError::InvalidCredentials`]
    /// (one message for every reason).
    ///
    /// The attempt is counted in the failure window *before* the password is checked,
    /// by one conditional write that refuses (without checking the password) while
    /// logins are locked or once `max_failed_logins` attempts are counted in the
    /// window: so however many attempts run at once, at most that many are checked
    /// per window. A wrong password leaves its attempt counted, and the last allowed
    /// one locks logins for the lockout time. After the right password:
    /// - a disabled or locked-status user gets [`AuthError::AccountInactive`], and a
    ///   user whose email is not verified [`AuthError::EmailNotVerified`]; the attempt
    ///   is given back;
    /// - a user with TOTP and no `second_factor` gets
    ///   [`AuthError::SecondFactorRequired`], the attempt given back; a wrong, replayed
    ///   or used second factor is [`AuthError::InvalidSecondFactor`] and counts like a
    ///   wrong password. The attempt stays counted while the code is checked, so the
    ///   password alone never opens more than the window's attempts at the code;
    /// - otherwise the login succeeds and the failure count is cleared (unless a lock
    ///   is in force).
    ///
    /// `second_factor` is ignored for users without TOTP. [`AuthError::Overloaded`]
    /// when no hashing slot frees up in time (nothing is counted then).
    fn authenticate_password(
        &self,
        email: &str,
        password: Secret<String>,
        second_factor: Option<SecondFactor>,
        ip: Option<String>,
    ) -> impl Future<Output = Result<Account, AuthError>> + Send;

    /// The user and the state of their credentials, or [`AuthError::NotFound`].
    fn account(&self, user_id: Uuid) -> impl Future<Output = Result<Account, AuthError>> + Send;

    /// Issues a new email-verification token (earlier ones stay valid until used or
    /// expired).
    fn create_email_verification(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<OneTimeToken, AuthError>> + Send;

    /// Uses a verification token once and marks the email verified.
    /// [`AuthError::InvalidOneTimeToken`] for unknown, used or expired tokens.
    fn verify_email(&self, token: &str) -> impl Future<Output = Result<User, AuthError>> + Send;

    /// Issues a single-use token that sets the password: for a forgotten password, or
    /// to invite a user an operator created without one. For a reset, `None` (nothing
    /// issued) when the user already has an unused token from the last minute, so a
    /// mailbox cannot be flooded; an invitation is always issued.
    /// [`AuthError::NotFound`] if there is no such user.
    fn create_password_token(
        &self,
        user_id: Uuid,
        purpose: PasswordTokenPurpose,
    ) -> impl Future<Output = Result<Option<OneTimeToken>, AuthError>> + Send;

    /// Sets a new password with a token from
    /// [`create_password_token`](Self::create_password_token), once and before it
    /// expires. The email counts as verified (the token went to it), the user's other
    /// password tokens stop working, and every login session of the user ends.
    /// [`AuthError::InvalidOneTimeToken`] for unknown, used or expired tokens;
    /// [`AuthError::InvalidInput`] for an unacceptable password (the token is kept).
    /// Audited.
    fn reset_password(
        &self,
        token: &str,
        password: Secret<String>,
    ) -> impl Future<Output = Result<User, AuthError>> + Send;

    /// Changes a user's password, given the current one: the attempt counts toward
    /// the lockout like a login's (a stolen session cannot guess its way to a new
    /// password), the new one must pass the password rules (checked first, nothing
    /// counted), and every other login session of the user ends (`keep_session`, the
    /// caller's, stays). [`AuthError::InvalidCredentials`] for a wrong or locked
    /// current password. Audited.
    fn change_password(
        &self,
        user_id: Uuid,
        current: Secret<String>,
        new: Secret<String>,
        keep_session: Option<Uuid>,
        ip: Option<String>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Marks the email verified without a token, for users an operator creates (the
    /// operator vouches for the address); audited with `actor`. Idempotent;
    /// [`AuthError::NotFound`] if there is no such user.
    fn mark_email_verified(
        &self,
        user_id: Uuid,
        actor: Option<Uuid>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Locks logins until `until` (an operator's action, audited with `actor`).
    fn lock_logins_until(
        &self,
        user_id: Uuid,
        until: DateTime<Utc>,
        actor: Option<Uuid>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Lifts a lockout and forgets failures (audited with `actor`). A user whose
    /// status is `locked` is also set back to `active`.
    fn unlock_logins(
        &self,
        user_id: Uuid,
        actor: Option<Uuid>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Starts a login session (after the password and any second factor) and issues
    /// its first refresh token. The session ends at the latest after the maximum
    /// session duration. When the user already has `max_login_sessions` live
    /// sessions, the oldest ones are revoked (`session_limit`) so the new login
    /// always succeeds. Audited.
    fn create_login_session(
        &self,
        user_id: Uuid,
        new: NewLoginSession,
    ) -> impl Future<Output = Result<LoginGrant, AuthError>> + Send;

    /// Exchanges a refresh token for a new one; the presented token is used up.
    ///
    /// Presenting a token that was already exchanged means a copy exists: the whole
    /// login session is revoked, an audit event written, and
    /// [`AuthError::RefreshTokenReused`] returned. Other refusals are
    /// [`AuthError::InvalidRefreshToken`] or [`AuthError::AccountInactive`].
    fn rotate_refresh_token(
        &self,
        presented: &str,
    ) -> impl Future<Output = Result<LoginGrant, AuthError>> + Send;

    /// The user's live login sessions, newest first.
    fn login_sessions(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Vec<LoginSession>, AuthError>> + Send;

    /// One login session of `user_id` (live or not), or [`AuthError::NotFound`].
    fn login_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
    ) -> impl Future<Output = Result<LoginSession, AuthError>> + Send;

    /// Revokes one session of `user_id` (idempotent; the first reason stays);
    /// [`AuthError::NotFound`] for another user's session.
    fn revoke_login_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        reason: RevokeReason,
    ) -> impl Future<Output = Result<LoginSession, AuthError>> + Send;

    /// Revokes every live session of `user_id`; returns how many.
    fn revoke_login_sessions(
        &self,
        user_id: Uuid,
        reason: RevokeReason,
    ) -> impl Future<Output = Result<u64, AuthError>> + Send;

    /// Starts TOTP enrolment: a new secret, sealed at rest, not yet required.
    /// Replaces an unconfirmed one; [`AuthError::Conflict`] if TOTP is already on;
    /// [`AuthError::Config`] without a keyring.
    fn enrol_totp(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<TotpEnrolment, AuthError>> + Send;

    /// Confirms enrolment with a first code; from then on TOTP is required.
    fn confirm_totp(
        &self,
        user_id: Uuid,
        code: &str,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Checks a code of a confirmed TOTP. A code (or an older one) is accepted once:
    /// [`AuthError::InvalidSecondFactor`] for wrong, replayed or not-enrolled.
    /// Counts nothing toward the lockout: a login checks its code through
    /// [`authenticate_password`](Self::authenticate_password), which does.
    fn verify_totp(
        &self,
        user_id: Uuid,
        code: &str,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Removes TOTP and the recovery codes (a user's own choice or an operator's
    /// reset, audited with `actor`); [`AuthError::NotFound`] if none was enrolled.
    fn disable_totp(
        &self,
        user_id: Uuid,
        actor: Option<Uuid>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Replaces the user's recovery codes with new ones, returned in clear this once.
    fn generate_recovery_codes(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Vec<Secret<String>>, AuthError>> + Send;

    /// Uses a recovery code once (dashes, spaces and case ignored); returns how many
    /// are left. [`AuthError::InvalidSecondFactor`] for a wrong or used code.
    /// Counts nothing toward the lockout: a login uses its recovery code through
    /// [`authenticate_password`](Self::authenticate_password), which does.
    fn consume_recovery_code(
        &self,
        user_id: Uuid,
        code: &str,
    ) -> impl Future<Output = Result<u32, AuthError>> + Send;

    /// Rotates a key of `user_id`: a new key with the same name and expiry, while the
    /// old one keeps working until `grace_until` (or its own earlier expiry). Returns
    /// the old key as updated and the new one (its secret shown only now).
    ///
    /// A key is rotated once, atomically: of concurrent rotations of one key exactly
    /// one succeeds, and rotating it again is [`AuthError::Conflict`] (the replacement
    /// is the key to rotate next). [`AuthError::InvalidInput`] (`key`) for a revoked
    /// or expired key; [`AuthError::NotFound`] if `user_id` has no such key.
    fn rotate_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        grace_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(ApiKey, CreatedApiKey), AuthError>> + Send;

    /// Appends an event to the audit log.
    fn append_audit(
        &self,
        event: NewAuditEvent,
    ) -> impl Future<Output = Result<AuditEvent, AuthError>> + Send;

    /// Audit events matching `query`, newest first.
    fn audit_events(
        &self,
        query: AuditQuery,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, AuthError>> + Send;
}

/// A user's row with the stored password hash.
pub(super) struct AccountRow {
    pub account: Account,
    pub password_hash: Option<String>,
}

/// How [`AccountBackend::account_row`] finds a user.
#[derive(Clone, Copy)]
pub(super) enum AccountKey<'a> {
    Id(Uuid),
    Email(&'a str),
}

/// A refresh token to insert.
pub(super) struct NewRefresh {
    pub id: Uuid,
    pub session_id: Uuid,
    pub hash: Vec<u8>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A stored refresh token with its session and user.
pub(super) struct RefreshRow {
    pub token_id: Uuid,
    pub used_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub session: LoginSession,
    pub user: User,
}

/// A stored TOTP secret.
pub(super) struct TotpRow {
    pub sealed: Sealed,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_used_step: Option<i64>,
}

/// Why [`AccountBackend::replace_api_key`] changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyRotationRefusal {
    /// No such key of this user.
    NotFound,
    /// Rotated before.
    AlreadyRotated,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
    /// The new key's prefix is taken: draw another.
    PrefixTaken,
}

/// A stored key's `(rotated_at, revoked_at)`.
pub(super) type KeyRotationState = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

impl KeyRotationRefusal {
    /// Which refusal a key's stored state gives, once the conditional update refused
    /// it (`NotFound` without a row).
    pub(super) fn of(state: Option<KeyRotationState>) -> Self {
        match state {
            None => KeyRotationRefusal::NotFound,
            Some((Some(_), _)) => KeyRotationRefusal::AlreadyRotated,
            Some((None, Some(_))) => KeyRotationRefusal::Revoked,
            // Neither rotated nor revoked: the update refused it for its expiry.
            Some((None, None)) => KeyRotationRefusal::Expired,
        }
    }
}

/// The SQL the rules run on (`account_sql.rs`); see there for the exact guarantees.
pub(super) trait AccountBackend: UserStore {
    fn core(&self) -> &StoreCore;

    /// Inserts `user` with a password hash; `Conflict(EMAIL_TAKEN)` if taken.
    fn insert_user_with_password(
        &self,
        user: &User,
        hash: &str,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// A new password: stores its hash, bumps `password_version` and voids the user's
    /// unused password tokens. `NotFound` if the user does not exist.
    fn store_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// The same password re-hashed with new costs: replaces `old` only if it is still
    /// the stored hash (a password changed meanwhile stays); false otherwise.
    fn upgrade_password_hash(
        &self,
        user_id: Uuid,
        old: &str,
        new: &str,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    fn account_row(
        &self,
        key: AccountKey<'_>,
    ) -> impl Future<Output = Result<Option<AccountRow>, AuthError>> + Send;

    /// Counts a login attempt in the failure window before its password is checked,
    /// unless logins are locked at `now` or the window already counts `max` attempts
    /// (failed or still being checked). One conditional write, so of many concurrent
    /// attempts at most `max` pass. The attempt's number in the window; `None` if it
    /// was refused (or there is no such user).
    fn take_attempt(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        max: u32,
    ) -> impl Future<Output = Result<Option<u32>, AuthError>> + Send;

    /// After the last allowed attempt failed: locks logins until `until` (a later
    /// lock is kept) and forgets the counted attempts.
    fn lock_after_attempts(
        &self,
        user_id: Uuid,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// After a right password: forgets every counted attempt (`clear`) or gives back
    /// just one counted in the current window, unless logins are locked at `now`, so
    /// a lock set by a concurrent attempt is never undone.
    fn settle_attempt(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        clear: bool,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Sets `email_verified_at` to `now` unless it is set; true if it changed.
    /// `NotFound` if no such user.
    fn set_email_verified(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Sets `locked_until`. `NotFound` if no such user.
    fn set_lock(
        &self,
        user_id: Uuid,
        until: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Forgets failed logins and turns a `locked` status back to `active` (an
    /// operator's unlock). `NotFound` if no such user.
    fn reset_failures(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    fn insert_verification(
        &self,
        user_id: Uuid,
        hash: &[u8],
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Stores a password token, unless the user has an unused one issued after
    /// `unless_after`; false when skipped. `NotFound` if no such user.
    fn insert_password_token(
        &self,
        user_id: Uuid,
        hash: &[u8],
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        unless_after: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Why a password token cannot be used now, or `None` if it can (it is still
    /// checked again when used).
    fn peek_password_token(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<OneTimeRejection>, AuthError>> + Send;

    /// Uses a password token, atomically with: storing `password_hash`, marking the
    /// email verified (the token went to it) and voiding the user's other password
    /// tokens.
    fn consume_password_token(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
        password_hash: &str,
    ) -> impl Future<Output = Result<Result<Uuid, OneTimeRejection>, AuthError>> + Send;

    /// Uses the token and marks the email verified, atomically.
    fn consume_verification(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Result<Uuid, OneTimeRejection>, AuthError>> + Send;

    /// Inserts the session and its first token, then revokes the oldest live
    /// sessions beyond `cap` (never the new one), atomically; returns their ids.
    fn insert_login_session(
        &self,
        session: &LoginSession,
        refresh: &NewRefresh,
        cap: u32,
    ) -> impl Future<Output = Result<Vec<Uuid>, AuthError>> + Send;

    fn refresh_row(
        &self,
        hash: &[u8],
    ) -> impl Future<Output = Result<Option<RefreshRow>, AuthError>> + Send;

    /// Marks `old` used and inserts `new`, atomically; false if `old` was already used.
    fn rotate_refresh(
        &self,
        old: Uuid,
        new: &NewRefresh,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Revokes `user_id`'s live (unrevoked) sessions, or just `session_id`; returns
    /// the ids it revoked now.
    fn revoke_sessions(
        &self,
        user_id: Uuid,
        session_id: Option<Uuid>,
        reason: RevokeReason,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Uuid>, AuthError>> + Send;

    /// `user_id`'s sessions (or just `session_id`), newest first.
    fn sessions(
        &self,
        user_id: Uuid,
        session_id: Option<Uuid>,
    ) -> impl Future<Output = Result<Vec<LoginSession>, AuthError>> + Send;

    /// Stores an unconfirmed secret; false if a confirmed one exists.
    fn upsert_totp(
        &self,
        user_id: Uuid,
        sealed: &Sealed,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    fn totp_row(
        &self,
        user_id: Uuid,
    ) -> impl Future<Output = Result<Option<TotpRow>, AuthError>> + Send;

    /// Records `step` as used if it is newer than the last one; with `confirm_at`,
    /// only for an unconfirmed secret, which it confirms. False if nothing changed.
    fn mark_totp_step(
        &self,
        user_id: Uuid,
        step: i64,
        confirm_at: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<bool, AuthError>> + Send;

    /// Deletes the secret and the recovery codes; false if there was no secret.
    fn delete_totp(&self, user_id: Uuid) -> impl Future<Output = Result<bool, AuthError>> + Send;

    fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        hashes: &[Vec<u8>],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), AuthError>> + Send;

    /// Uses an unused code; returns how many unused remain, `None` if it was no
    /// unused code of this user.
    fn use_recovery_code(
        &self,
        user_id: Uuid,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<u32>, AuthError>> + Send;

    /// Marks `key_id` of `user_id` rotated at `now`, brings its expiry forward to
    /// `grace_until`, and inserts `new` with `hash`, atomically, but only while the
    /// key is unrevoked, unexpired at `now` and not yet rotated: the old key as
    /// updated, or why not (nothing changed then).
    fn replace_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        now: DateTime<Utc>,
        grace_until: DateTime<Utc>,
        new: &ApiKey,
        hash: &[u8],
    ) -> impl Future<Output = Result<Result<ApiKey, KeyRotationRefusal>, AuthError>> + Send;

    /// Appends a checked event.
    fn insert_audit(
        &self,
        event: &NewAuditEvent,
        at: DateTime<Utc>,
        detail: &str,
    ) -> impl Future<Output = Result<AuditEvent, AuthError>> + Send;

    fn query_audit(
        &self,
        query: &AuditQuery,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, AuthError>> + Send;
}

/// Checks text that goes into a column: no NUL (Postgres text cannot hold it), at
/// most `max` characters.
fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), AuthError> {
    if value.contains('\0') {
        return Err(AuthError::InvalidInput {
            field,
            reason: "must not contain NUL characters",
        });
    }
    if value.chars().count() > max {
        return Err(AuthError::InvalidInput {
            field,
            reason: "is too long",
        });
    }
    Ok(())
}

fn check_ip(ip: Option<&str>) -> Result<(), AuthError> {
    ip.map_or(Ok(()), |ip| check_text("ip", ip, MAX_IP_CHARS))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One argon2 hash off the async threads, in a hashing slot of the store.
async fn hash_password(core: &StoreCore, password: Secret<String>) -> Result<String, AuthError> {
    PasswordHasher::check_new(password.expose())?;
    let hasher = core.passwords.clone();
    core.hashing.run(move || hasher.hash(&password)).await?
}

/// One argon2 verification off the async threads, in the slot `permit` holds:
/// against `stored`, or against the dummy hash when there is none. Never answers
/// sooner than a verification at the configured costs takes (see
/// [`PasswordHasher::verify_padded`]), so timing does not tell accounts with old
/// hashes from unknown emails.
async fn verify_password(
    core: &StoreCore,
    permit: HashingPermit,
    password: Secret<String>,
    stored: Option<String>,
) -> Result<bool, AuthError> {
    let hasher = core.passwords.clone();
    let (matches, pad) = permit
        .run(move || match stored {
            Some(stored) => hasher.verify_padded(&password, &stored),
            None => (hasher.verify_dummy(&password), Duration::ZERO),
        })
        .await?;
    // A hash from before the costs were raised: answer no sooner than one at the
    // current costs would (the hashing slot is free again meanwhile).
    if !pad.is_zero() {
        tokio::time::sleep(pad).await;
    }
    Ok(matches)
}

pub(super) async fn append_audit<S: AccountBackend>(
    store: &S,
    event: NewAuditEvent,
) -> Result<AuditEvent, AuthError> {
    check_ip(event.ip.as_deref())?;
    if !super::results::storable_json(&event.detail.to_string()) {
        return Err(AuthError::InvalidInput {
            field: "detail",
            reason: "must be JSON without NUL characters",
        });
    }
    let detail = event.detail.to_string();
    store
        .insert_audit(&event, store.core().now(), &detail)
        .await
}

/// Audit events the rules write themselves: a failure to record one is logged, not
/// returned, so bookkeeping never turns a refusal into a different error.
async fn audit<S: AccountBackend>(store: &S, event: NewAuditEvent) {
    let kind = event.kind;
    if let Err(e) = append_audit(store, event).await {
        tracing::warn!(%kind, error = %e, "could not write audit event");
    }
}

pub(super) async fn register_user<S: AccountBackend>(
    store: &S,
    new: NewUser,
    password: Secret<String>,
    ip: Option<String>,
) -> Result<Registration, AuthError> {
    check_ip(ip.as_deref())?;
    let user = store.core().new_user(new)?;
    let hash = hash_password(store.core(), password).await?;
    store.insert_user_with_password(&user, &hash).await?;
    let verification = create_email_verification(store, user.id).await?;
    audit(
        store,
        NewAuditEvent::new(AuditKind::UserRegistered)
            .subject(user.id)
            .actor(user.id)
            .ip(ip.as_deref()),
    )
    .await;
    Ok(Registration { user, verification })
}

pub(super) async fn set_password<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    password: Secret<String>,
) -> Result<(), AuthError> {
    let hash = hash_password(store.core(), password).await?;
    store.store_password_hash(user_id, &hash).await?;
    audit(
        store,
        NewAuditEvent::new(AuditKind::PasswordChanged).subject(user_id),
    )
    .await;
    Ok(())
}

/// A right password, with its attempt still counted in the failure window.
struct PasswordAttempt {
    account: Account,
    password_hash: Option<String>,
    attempt: u32,
}

/// Checks `password` against `row` (`None`: an unknown email, named in the audit by
/// `email`), counting the attempt first: the shared first step of logins and password
/// changes. Always runs exactly one argon2 verification. On a wrong password the
/// attempt stays counted (the last allowed one locks) and the answer is
/// [`AuthError::InvalidCredentials`]; on the right one the caller settles the
/// attempt.
async fn check_password_attempt<S: AccountBackend>(
    store: &S,
    row: Option<AccountRow>,
    email: Option<&str>,
    password: Secret<String>,
    ip: Option<&str>,
) -> Result<PasswordAttempt, AuthError> {
    let core = store.core();
    let rules = &core.rules;
    // Taken before the attempt is counted, so an overloaded server counts nothing.
    // Every path below spends it on exactly one argon2 verification.
    let permit = core.hashing.acquire().await?;
    let Some(AccountRow {
        account,
        password_hash,
    }) = row
    else {
        verify_password(core, permit, password, None).await?;
        audit(
            store,
            NewAuditEvent::new(AuditKind::LoginFailed)
                .ip(ip)
                .detail(json!({ "reason": "unknown_email", "email": email })),
        )
        .await;
        return Err(AuthError::InvalidCredentials(
            CredentialRejection::UnknownEmail,
        ));
    };
    let user_id = account.user.id;
    let now = core.now();
    // The attempt is counted before the password is checked, in one conditional
    // write: checking first would let any number of concurrent guesses all read
    // "not locked" and all get a verdict.
    let attempt = store
        .take_attempt(
            user_id,
            now,
            now - rules.failure_window,
            rules.max_failed_logins,
        )
        .await?;
    let Some(attempt) = attempt else {
        verify_password(core, permit, password, None).await?;
        let (reason, why) = match account.locked_until.filter(|until| *until > now) {
            Some(until) => (CredentialRejection::Locked { until }, "locked"),
            None => (CredentialRejection::TooManyAttempts, "too_many_attempts"),
        };
        audit(
            store,
            NewAuditEvent::new(AuditKind::LoginFailed)
                .subject(user_id)
                .ip(ip)
                .detail(json!({ "reason": why })),
        )
        .await;
        return Err(AuthError::InvalidCredentials(reason));
    };
    let has_password = password_hash.is_some();
    let matches = verify_password(core, permit, password, password_hash.clone()).await?;
    if !matches {
        let (reason, why) = if has_password {
            (CredentialRejection::WrongPassword, "wrong_password")
        } else {
            (CredentialRejection::NoPassword, "no_password")
        };
        attempt_failed(store, user_id, ip, why, attempt).await?;
        return Err(AuthError::InvalidCredentials(reason));
    }
    Ok(PasswordAttempt {
        account,
        password_hash,
        attempt,
    })
}

pub(super) async fn change_password<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    current: Secret<String>,
    new: Secret<String>,
    keep_session: Option<Uuid>,
    ip: Option<String>,
) -> Result<(), AuthError> {
    check_ip(ip.as_deref())?;
    // An unacceptable new password is refused before anything is counted.
    PasswordHasher::check_new(new.expose())?;
    let core = store.core();
    let rules = &core.rules;
    let row = store
        .account_row(AccountKey::Id(user_id))
        .await?
        .ok_or(AuthError::NotFound)?;
    let checked = check_password_attempt(store, Some(row), None, current, ip.as_deref()).await?;
    // The attempt is given back; earlier failures are forgotten only without a
    // second factor (with one, only a complete login clears them).
    let now = core.now();
    let clear = !checked.account.totp_enabled;
    store
        .settle_attempt(user_id, now, now - rules.failure_window, clear)
        .await?;
    let hash = hash_password(core, new).await?;
    store.store_password_hash(user_id, &hash).await?;
    audit(
        store,
        NewAuditEvent::new(AuditKind::PasswordChanged)
            .subject(user_id)
            .actor(user_id)
            .ip(ip.as_deref())
            .detail(json!({ "by": "user" })),
    )
    .await;
    // Every other login session ends: whoever else knew the old password is out.
    let others: Vec<Uuid> = login_sessions(store, user_id)
        .await?
        .into_iter()
        .filter(|s| Some(s.id) != keep_session)
        .map(|s| s.id)
        .collect();
    for session_id in others {
        match revoke_login_session(store, user_id, session_id, RevokeReason::PasswordChanged).await
        {
            // Ended meanwhile by its own logout or expiry: nothing left to do.
            Ok(_) | Err(AuthError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(super) async fn authenticate_password<S: AccountBackend>(
    store: &S,
    email: &str,
    password: Secret<String>,
    second_factor: Option<SecondFactor>,
    ip: Option<String>,
) -> Result<Account, AuthError> {
    check_ip(ip.as_deref())?;
    let core = store.core();
    let rules = &core.rules;
    let email = normalise_email(email).ok();
    let row = match &email {
        Some(email) => store.account_row(AccountKey::Email(email)).await?,
        None => None,
    };
    let PasswordAttempt {
        mut account,
        password_hash,
        attempt,
    } = check_password_attempt(
        store,
        row,
        email.as_deref(),
        password.clone(),
        ip.as_deref(),
    )
    .await?;
    let user_id = account.user.id;
    let refused = if account.user.status != UserStatus::Active {
        Some(AuthError::AccountInactive(account.user.status))
    } else if account.email_verified_at.is_none() {
        Some(AuthError::EmailNotVerified)
    } else {
        None
    };
    // With a second factor the attempt stays counted until the code is checked:
    // giving it back first would let whoever knows the password have any number of
    // code guesses in flight at once.
    let refused = match refused {
        None if account.totp_enabled => {
            match check_second_factor(store, user_id, second_factor).await {
                Ok(()) => None,
                Err(AuthError::InvalidSecondFactor) => {
                    attempt_failed(
                        store,
                        user_id,
                        ip.as_deref(),
                        "wrong_second_factor",
                        attempt,
                    )
                    .await?;
                    return Err(AuthError::InvalidSecondFactor);
                }
                Err(e) => Some(e),
            }
        }
        refused => refused,
    };
    // The right password (and code) gives its attempt back. Earlier failures are
    // forgotten only by a login that goes through.
    let clear = refused.is_none();
    let now = core.now();
    store
        .settle_attempt(user_id, now, now - rules.failure_window, clear)
        .await?;
    if let Some(refused) = refused {
        if matches!(refused, AuthError::EmailNotVerified) {
            audit(
                store,
                NewAuditEvent::new(AuditKind::LoginFailed)
                    .subject(user_id)
                    .ip(ip.as_deref())
                    .detail(json!({ "reason": "email_not_verified" })),
            )
            .await;
        }
        return Err(refused);
    }
    account.failed_logins = 0;
    // Costs were raised since this hash was made: replace it while the password is at
    // hand, if a hashing slot is free now (a busy server does it at a later login).
    // Failing to is harmless, the old hash still verifies.
    let rehash = password_hash
        .filter(|h| core.passwords.needs_rehash(h))
        .and_then(|h| core.hashing.try_acquire().map(|permit| (h, permit)));
    if let Some((old, permit)) = rehash {
        let hasher = core.passwords.clone();
        let upgraded = match permit.run(move || hasher.hash(&password)).await {
            Ok(Ok(new)) => store.upgrade_password_hash(user_id, &old, &new).await,
            Ok(Err(e)) | Err(e) => Err(e),
        };
        if let Err(e) = upgraded {
            tracing::warn!(%user_id, error = %e, "could not upgrade password hash");
        }
    }
    Ok(account)
}

/// The second factor of a login: a current TOTP code or an unused recovery code.
/// Its `Debug` names the kind only.
#[derive(Clone)]
pub enum SecondFactor {
    /// A code from the authenticator app.
    Totp(String),
    /// One of the recovery codes (used up by a successful login).
    RecoveryCode(String),
}

impl std::fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecondFactor::Totp(_) => "SecondFactor::Totp(..)",
            SecondFactor::RecoveryCode(_) => "SecondFactor::RecoveryCode(..)",
        })
    }
}

/// Checks (and uses up) `factor` for a user with TOTP; [`AuthError::SecondFactorRequired`]
/// without one.
async fn check_second_factor<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    factor: Option<SecondFactor>,
) -> Result<(), AuthError> {
    match factor {
        None => Err(AuthError::SecondFactorRequired),
        Some(SecondFactor::Totp(code)) => verify_totp(store, user_id, &code).await,
        Some(SecondFactor::RecoveryCode(code)) => {
            consume_recovery_code(store, user_id, &code).await.map(drop)
        }
    }
}

/// A wrong password or second factor: its attempt stays counted; the last allowed
/// one locks.
async fn attempt_failed<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    ip: Option<&str>,
    reason: &str,
    attempt: u32,
) -> Result<(), AuthError> {
    let core = store.core();
    let rules = &core.rules;
    let locks = attempt >= rules.max_failed_logins;
    let until = core.now() + rules.lockout;
    if locks {
        store.lock_after_attempts(user_id, until).await?;
    }
    audit(
        store,
        NewAuditEvent::new(AuditKind::LoginFailed)
            .subject(user_id)
            .ip(ip)
            .detail(json!({ "reason": reason, "failures": attempt })),
    )
    .await;
    if locks {
        audit(
            store,
            NewAuditEvent::new(AuditKind::AccountLocked)
                .subject(user_id)
                .ip(ip)
                .detail(json!({ "until": rfc3339(until), "failures": rules.max_failed_logins })),
        )
        .await;
    }
    Ok(())
}

pub(super) async fn account<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
) -> Result<Account, AuthError> {
    store
        .account_row(AccountKey::Id(user_id))
        .await?
        .map(|row| row.account)
        .ok_or(AuthError::NotFound)
}

pub(super) async fn lock_logins_until<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    until: DateTime<Utc>,
    actor: Option<Uuid>,
) -> Result<(), AuthError> {
    store.set_lock(user_id, Some(until)).await?;
    let mut event = NewAuditEvent::new(AuditKind::AccountLocked)
        .subject(user_id)
        .detail(json!({ "until": rfc3339(until), "manual": true }));
    event.actor_user_id = actor;
    audit(store, event).await;
    Ok(())
}

pub(super) async fn unlock_logins<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    actor: Option<Uuid>,
) -> Result<(), AuthError> {
    let now = store.core().now();
    store.set_lock(user_id, None).await?;
    store.reset_failures(user_id, now).await?;
    let mut event = NewAuditEvent::new(AuditKind::AccountUnlocked).subject(user_id);
    event.actor_user_id = actor;
    audit(store, event).await;
    Ok(())
}

pub(super) async fn create_email_verification<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
) -> Result<OneTimeToken, AuthError> {
    let core = store.core();
    let token = token::generate(token::VERIFICATION_PREFIX)?;
    let now = core.now();
    let expires_at = now + core.rules.verification_token_lifetime;
    store
        .insert_verification(user_id, &core.token_hash(token.expose()), now, expires_at)
        .await?;
    Ok(OneTimeToken { token, expires_at })
}

pub(super) async fn mark_email_verified<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    actor: Option<Uuid>,
) -> Result<(), AuthError> {
    if store
        .set_email_verified(user_id, store.core().now())
        .await?
    {
        let mut event = NewAuditEvent::new(AuditKind::EmailVerified)
            .subject(user_id)
            .detail(json!({ "by": "operator" }));
        event.actor_user_id = actor;
        audit(store, event).await;
    }
    Ok(())
}

pub(super) async fn verify_email<S: AccountBackend>(
    store: &S,
    presented: &str,
) -> Result<User, AuthError> {
    if !token::well_formed(presented, token::VERIFICATION_PREFIX) {
        return Err(AuthError::InvalidOneTimeToken(OneTimeRejection::Unknown));
    }
    let core = store.core();
    let user_id = store
        .consume_verification(&core.token_hash(presented), core.now())
        .await?
        .map_err(AuthError::InvalidOneTimeToken)?;
    audit(
        store,
        NewAuditEvent::new(AuditKind::EmailVerified)
            .subject(user_id)
            .actor(user_id),
    )
    .await;
    store.user_by_id(user_id).await
}

pub(super) async fn create_password_token<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    purpose: PasswordTokenPurpose,
) -> Result<Option<OneTimeToken>, AuthError> {
    let core = store.core();
    let token = token::generate(token::PASSWORD_PREFIX)?;
    let now = core.now();
    let lifetime = match purpose {
        PasswordTokenPurpose::Reset => core.rules.password_reset_token_lifetime,
        PasswordTokenPurpose::Invitation => core.rules.verification_token_lifetime,
    };
    let expires_at = now + lifetime;
    // Resets are limited to one unused token a minute; an operator's invitation
    // always goes out (`expires_at` is later than any token's creation).
    let unless_after = match purpose {
        PasswordTokenPurpose::Reset => now - TimeDelta::minutes(1),
        PasswordTokenPurpose::Invitation => expires_at,
    };
    let hash = core.token_hash(token.expose());
    let issued = store
        .insert_password_token(user_id, &hash, now, expires_at, unless_after)
        .await?;
    Ok(issued.then_some(OneTimeToken { token, expires_at }))
}

pub(super) async fn reset_password<S: AccountBackend>(
    store: &S,
    presented: &str,
    password: Secret<String>,
) -> Result<User, AuthError> {
    if !token::well_formed(presented, token::PASSWORD_PREFIX) {
        return Err(AuthError::InvalidOneTimeToken(OneTimeRejection::Unknown));
    }
    let core = store.core();
    let token_hash = core.token_hash(presented);
    // A dead token is refused before any argon2 work, so made-up tokens cost the
    // server nothing but a lookup.
    if let Some(why) = store.peek_password_token(&token_hash, core.now()).await? {
        return Err(AuthError::InvalidOneTimeToken(why));
    }
    let hash = hash_password(core, password).await?;
    let user_id = store
        .consume_password_token(&token_hash, core.now(), &hash)
        .await?
        .map_err(AuthError::InvalidOneTimeToken)?;
    audit(
        store,
        NewAuditEvent::new(AuditKind::PasswordChanged)
            .subject(user_id)
            .actor(user_id)
            .detail(json!({ "by": "password_token" })),
    )
    .await;
    revoke_login_sessions(store, user_id, RevokeReason::PasswordChanged).await?;
    store.user_by_id(user_id).await
}

fn new_refresh(
    core: &StoreCore,
    session: &LoginSession,
    now: DateTime<Utc>,
) -> Result<(Secret<String>, NewRefresh), AuthError> {
    let token = token::generate(token::REFRESH_PREFIX)?;
    let refresh = NewRefresh {
        id: Uuid::new_v4(),
        session_id: session.id,
        hash: core.token_hash(token.expose()),
        issued_at: now,
        expires_at: (now + core.rules.refresh_token_lifetime).min(session.expires_at),
    };
    Ok((token, refresh))
}

pub(super) async fn create_login_session<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    new: NewLoginSession,
) -> Result<LoginGrant, AuthError> {
    let user_agent = new
        .user_agent
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect::<String>());
    if let Some(ua) = &user_agent {
        check_text("user_agent", ua, MAX_USER_AGENT_CHARS)?;
    }
    check_ip(new.ip.as_deref())?;
    let user = store.user_by_id(user_id).await?;
    if user.status != UserStatus::Active {
        return Err(AuthError::AccountInactive(user.status));
    }
    let core = store.core();
    let now = core.now();
    let session = LoginSession {
        id: Uuid::new_v4(),
        user_id,
        created_at: now,
        expires_at: now + core.rules.max_session_duration,
        last_used_at: now,
        revoked_at: None,
        revoke_reason: None,
        user_agent,
        ip: new.ip,
    };
    let (refresh_token, refresh) = new_refresh(core, &session, now)?;
    let evicted = store
        .insert_login_session(&session, &refresh, core.rules.max_login_sessions)
        .await?;
    for id in evicted {
        audit(
            store,
            NewAuditEvent::new(AuditKind::SessionRevoked)
                .subject(user_id)
                .detail(json!({ "session_id": id, "reason": RevokeReason::SessionLimit.as_str() })),
        )
        .await;
    }
    // Checked after the insert: a password change either saw this session (and ended
    // it) or committed before this read, which then sees its new version.
    if let Some(checked) = new.password_version {
        let current = store
            .account_row(AccountKey::Id(user_id))
            .await?
            .map(|row| row.account.password_version);
        if current != Some(checked) {
            store
                .revoke_sessions(
                    user_id,
                    Some(session.id),
                    RevokeReason::PasswordChanged,
                    core.now(),
                )
                .await?;
            return Err(AuthError::InvalidCredentials(
                CredentialRejection::WrongPassword,
            ));
        }
    }
    audit(
        store,
        NewAuditEvent::new(AuditKind::LoginSucceeded)
            .subject(user_id)
            .actor(user_id)
            .ip(session.ip.as_deref())
            .detail(json!({ "session_id": session.id })),
    )
    .await;
    Ok(LoginGrant {
        user,
        session,
        refresh_token,
        refresh_expires_at: refresh.expires_at,
    })
}

/// A rotated token came back: revoke its session and record the theft.
async fn refresh_token_reused<S: AccountBackend>(
    store: &S,
    row: &RefreshRow,
    now: DateTime<Utc>,
) -> AuthError {
    let revoked = store
        .revoke_sessions(
            row.user.id,
            Some(row.session.id),
            RevokeReason::RefreshTokenReused,
            now,
        )
        .await;
    if let Err(e) = revoked {
        return e;
    }
    audit(
        store,
        NewAuditEvent::new(AuditKind::RefreshTokenReused)
            .subject(row.user.id)
            .detail(json!({ "session_id": row.session.id, "token_id": row.token_id })),
    )
    .await;
    tracing::warn!(user_id = %row.user.id, session_id = %row.session.id,
        "refresh token reused; login session revoked");
    AuthError::RefreshTokenReused
}

pub(super) async fn rotate_refresh_token<S: AccountBackend>(
    store: &S,
    presented: &str,
) -> Result<LoginGrant, AuthError> {
    if !token::well_formed(presented, token::REFRESH_PREFIX) {
        return Err(AuthError::InvalidRefreshToken(RefreshRejection::Malformed));
    }
    let core = store.core();
    let row = store
        .refresh_row(&core.token_hash(presented))
        .await?
        .ok_or(AuthError::InvalidRefreshToken(RefreshRejection::Unknown))?;
    let now = core.now();
    if row.used_at.is_some() {
        return Err(refresh_token_reused(store, &row, now).await);
    }
    let reject = |why| Err(AuthError::InvalidRefreshToken(why));
    if row.session.revoked_at.is_some() {
        return reject(RefreshRejection::SessionRevoked);
    }
    if row.session.expires_at <= now {
        return reject(RefreshRejection::SessionExpired);
    }
    if row.expires_at <= now {
        return reject(RefreshRejection::Expired);
    }
    if row.user.status != UserStatus::Active {
        return Err(AuthError::AccountInactive(row.user.status));
    }
    let (refresh_token, refresh) = new_refresh(core, &row.session, now)?;
    if !store.rotate_refresh(row.token_id, &refresh, now).await? {
        // Another request exchanged the same token in the meantime.
        return Err(refresh_token_reused(store, &row, now).await);
    }
    let mut session = row.session;
    session.last_used_at = now;
    Ok(LoginGrant {
        user: row.user,
        session,
        refresh_token,
        refresh_expires_at: refresh.expires_at,
    })
}

pub(super) async fn login_sessions<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
) -> Result<Vec<LoginSession>, AuthError> {
    let now = store.core().now();
    let mut sessions = store.sessions(user_id, None).await?;
    sessions.retain(|s| s.is_active_at(now));
    Ok(sessions)
}

pub(super) async fn login_session<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    session_id: Uuid,
) -> Result<LoginSession, AuthError> {
    store
        .sessions(user_id, Some(session_id))
        .await?
        .into_iter()
        .next()
        .ok_or(AuthError::NotFound)
}

pub(super) async fn revoke_login_session<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    session_id: Uuid,
    reason: RevokeReason,
) -> Result<LoginSession, AuthError> {
    let now = store.core().now();
    let revoked = store
        .revoke_sessions(user_id, Some(session_id), reason, now)
        .await?;
    let session = login_session(store, user_id, session_id).await?;
    if !revoked.is_empty() {
        audit(
            store,
            NewAuditEvent::new(AuditKind::SessionRevoked)
                .subject(user_id)
                .detail(json!({ "session_id": session_id, "reason": reason.as_str() })),
        )
        .await;
    }
    Ok(session)
}

pub(super) async fn revoke_login_sessions<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    reason: RevokeReason,
) -> Result<u64, AuthError> {
    let now = store.core().now();
    let revoked = store.revoke_sessions(user_id, None, reason, now).await?;
    if !revoked.is_empty() {
        audit(
            store,
            NewAuditEvent::new(AuditKind::SessionRevoked)
                .subject(user_id)
                .detail(json!({ "session_ids": revoked, "reason": reason.as_str() })),
        )
        .await;
    }
    Ok(revoked.len() as u64)
}

fn keyring(core: &StoreCore) -> Result<&crate::crypto::Keyring, AuthError> {
    core.keyring.as_deref().ok_or(AuthError::Config(
        "no encryption key is configured for secrets at rest",
    ))
}

pub(super) async fn enrol_totp<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
) -> Result<TotpEnrolment, AuthError> {
    let core = store.core();
    let keyring = keyring(core)?;
    let user = store.user_by_id(user_id).await?;
    let secret = totp::generate_secret()?;
    let sealed = keyring.seal(secret.expose(), user_id.as_bytes())?;
    if !store.upsert_totp(user_id, &sealed, core.now()).await? {
        return Err(AuthError::Conflict(TOTP_ENABLED));
    }
    audit(
        store,
        NewAuditEvent::new(AuditKind::TotpEnrolled)
            .subject(user_id)
            .actor(user_id),
    )
    .await;
    Ok(TotpEnrolment {
        secret_base32: Secret::new(totp::base32_encode(secret.expose())),
        provisioning_uri: totp::provisioning_uri(
            &core.rules.totp_issuer,
            &user.email,
            secret.expose(),
        ),
    })
}

/// The matching step of `code` for `row`, if any.
fn totp_step(
    core: &StoreCore,
    user_id: Uuid,
    row: &TotpRow,
    code: &str,
) -> Result<Option<i64>, AuthError> {
    let secret = keyring(core)?.open(&row.sealed, user_id.as_bytes())?;
    Ok(totp::verify(
        secret.expose(),
        code,
        core.now().timestamp(),
        row.last_used_step,
    ))
}

pub(super) async fn confirm_totp<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    code: &str,
) -> Result<(), AuthError> {
    let core = store.core();
    let row = store.totp_row(user_id).await?.ok_or(AuthError::NotFound)?;
    if row.confirmed_at.is_some() {
        return Err(AuthError::Conflict(TOTP_ENABLED));
    }
    let step = totp_step(core, user_id, &row, code)?.ok_or(AuthError::InvalidSecondFactor)?;
    if !store
        .mark_totp_step(user_id, step, Some(core.now()))
        .await?
    {
        return Err(AuthError::InvalidSecondFactor);
    }
    audit(
        store,
        NewAuditEvent::new(AuditKind::TotpConfirmed)
            .subject(user_id)
            .actor(user_id),
    )
    .await;
    Ok(())
}

pub(super) async fn verify_totp<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    code: &str,
) -> Result<(), AuthError> {
    let core = store.core();
    let row = store
        .totp_row(user_id)
        .await?
        .filter(|row| row.confirmed_at.is_some())
        .ok_or(AuthError::InvalidSecondFactor)?;
    let step = totp_step(core, user_id, &row, code)?.ok_or(AuthError::InvalidSecondFactor)?;
    // The conditional write is what stops two concurrent uses of one code.
    if store.mark_totp_step(user_id, step, None).await? {
        Ok(())
    } else {
        Err(AuthError::InvalidSecondFactor)
    }
}

pub(super) async fn disable_totp<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    actor: Option<Uuid>,
) -> Result<(), AuthError> {
    if !store.delete_totp(user_id).await? {
        return Err(AuthError::NotFound);
    }
    let mut event = NewAuditEvent::new(AuditKind::TotpDisabled).subject(user_id);
    event.actor_user_id = actor;
    audit(store, event).await;
    Ok(())
}

fn recovery_hash(core: &StoreCore, user_id: Uuid, canonical: &str) -> Vec<u8> {
    core.token_hash(&format!("recovery:{user_id}:{canonical}"))
}

pub(super) async fn generate_recovery_codes<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
) -> Result<Vec<Secret<String>>, AuthError> {
    let core = store.core();
    let mut codes = Vec::new();
    let mut hashes = Vec::new();
    while codes.len() < core.rules.recovery_codes as usize {
        let code = token::generate_recovery_code()?;
        let canonical =
            token::normalise_recovery_code(code.expose()).ok_or(AuthError::PasswordHashing)?;
        let hash = recovery_hash(core, user_id, &canonical);
        // Duplicates within one batch are astronomically rare; skip rather than fail.
        if !hashes.contains(&hash) {
            hashes.push(hash);
            codes.push(code);
        }
    }
    store
        .replace_recovery_codes(user_id, &hashes, core.now())
        .await?;
    audit(
        store,
        NewAuditEvent::new(AuditKind::RecoveryCodesGenerated)
            .subject(user_id)
            .detail(json!({ "count": codes.len() })),
    )
    .await;
    Ok(codes)
}

pub(super) async fn consume_recovery_code<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    code: &str,
) -> Result<u32, AuthError> {
    let core = store.core();
    let canonical = token::normalise_recovery_code(code).ok_or(AuthError::InvalidSecondFactor)?;
    let remaining = store
        .use_recovery_code(
            user_id,
            &recovery_hash(core, user_id, &canonical),
            core.now(),
        )
        .await?
        .ok_or(AuthError::InvalidSecondFactor)?;
    audit(
        store,
        NewAuditEvent::new(AuditKind::RecoveryCodeUsed)
            .subject(user_id)
            .actor(user_id)
            .detail(json!({ "remaining": remaining })),
    )
    .await;
    Ok(remaining)
}

/// Implements [`AccountStore`] for a backend by delegating to the shared rules.
pub(super) async fn rotate_api_key<S: AccountBackend>(
    store: &S,
    user_id: Uuid,
    key_id: Uuid,
    grace_until: DateTime<Utc>,
) -> Result<(ApiKey, CreatedApiKey), AuthError> {
    // The name and the end the replacement inherits. Only a rotation changes a key's
    // expiry, and the write below refuses a rotated key, so this read cannot go stale.
    let current = store
        .list_api_keys(user_id)
        .await?
        .into_iter()
        .find(|k| k.id == key_id)
        .ok_or(AuthError::NotFound)?;
    let mut new = NewApiKey::new(current.name.clone());
    new.expires_at = current.expires_at;
    for _ in 0..KEY_INSERT_ATTEMPTS {
        let (created, hash) = store.core().new_key(user_id, &new)?;
        let now = store.core().now();
        let refusal = match store
            .replace_api_key(user_id, key_id, now, grace_until, &created.key, &hash)
            .await?
        {
            Ok(old) => return Ok((old, created)),
            Err(refusal) => refusal,
        };
        let invalid = |reason| AuthError::InvalidInput {
            field: "key",
            reason,
        };
        let error = match refusal {
            KeyRotationRefusal::PrefixTaken => continue,
            KeyRotationRefusal::NotFound => AuthError::NotFound,
            KeyRotationRefusal::AlreadyRotated => {
                AuthError::Conflict("this key was already rotated; rotate its replacement instead")
            }
            KeyRotationRefusal::Revoked => invalid("was revoked; a revoked key cannot be rotated"),
            KeyRotationRefusal::Expired => invalid("has expired; an expired key cannot be rotated"),
        };
        return Err(error);
    }
    Err(AuthError::Conflict(
        "could not draw an unused key prefix; try again",
    ))
}

/// The rules above on either backend.
impl<DB: Dialect> AccountStore for Store<DB>
where
    Self: AccountBackend,
{
    async fn register_user(
        &self,
        new: NewUser,
        password: Secret<String>,
        ip: Option<String>,
    ) -> Result<Registration, AuthError> {
        register_user(self, new, password, ip).await
    }

    async fn set_password(&self, user_id: Uuid, password: Secret<String>) -> Result<(), AuthError> {
        set_password(self, user_id, password).await
    }

    async fn authenticate_password(
        &self,
        email: &str,
        password: Secret<String>,
        second_factor: Option<SecondFactor>,
        ip: Option<String>,
    ) -> Result<Account, AuthError> {
        authenticate_password(self, email, password, second_factor, ip).await
    }

    async fn account(&self, user_id: Uuid) -> Result<Account, AuthError> {
        account(self, user_id).await
    }

    async fn create_email_verification(&self, user_id: Uuid) -> Result<OneTimeToken, AuthError> {
        create_email_verification(self, user_id).await
    }

    async fn verify_email(&self, token: &str) -> Result<User, AuthError> {
        verify_email(self, token).await
    }

    async fn create_password_token(
        &self,
        user_id: Uuid,
        purpose: PasswordTokenPurpose,
    ) -> Result<Option<OneTimeToken>, AuthError> {
        create_password_token(self, user_id, purpose).await
    }

    async fn reset_password(
        &self,
        token: &str,
        password: Secret<String>,
    ) -> Result<User, AuthError> {
        reset_password(self, token, password).await
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        current: Secret<String>,
        new: Secret<String>,
        keep_session: Option<Uuid>,
        ip: Option<String>,
    ) -> Result<(), AuthError> {
        change_password(self, user_id, current, new, keep_session, ip).await
    }

    async fn mark_email_verified(
        &self,
        user_id: Uuid,
        actor: Option<Uuid>,
    ) -> Result<(), AuthError> {
        mark_email_verified(self, user_id, actor).await
    }

    async fn lock_logins_until(
        &self,
        user_id: Uuid,
        until: DateTime<Utc>,
        actor: Option<Uuid>,
    ) -> Result<(), AuthError> {
        lock_logins_until(self, user_id, until, actor).await
    }

    async fn unlock_logins(&self, user_id: Uuid, actor: Option<Uuid>) -> Result<(), AuthError> {
        unlock_logins(self, user_id, actor).await
    }

    async fn create_login_session(
        &self,
        user_id: Uuid,
        new: NewLoginSession,
    ) -> Result<LoginGrant, AuthError> {
        create_login_session(self, user_id, new).await
    }

    async fn rotate_refresh_token(&self, presented: &str) -> Result<LoginGrant, AuthError> {
        rotate_refresh_token(self, presented).await
    }

    async fn login_sessions(&self, user_id: Uuid) -> Result<Vec<LoginSession>, AuthError> {
        login_sessions(self, user_id).await
    }

    async fn login_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<LoginSession, AuthError> {
        login_session(self, user_id, session_id).await
    }

    async fn revoke_login_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        reason: RevokeReason,
    ) -> Result<LoginSession, AuthError> {
        revoke_login_session(self, user_id, session_id, reason).await
    }

    async fn revoke_login_sessions(
        &self,
        user_id: Uuid,
        reason: RevokeReason,
    ) -> Result<u64, AuthError> {
        revoke_login_sessions(self, user_id, reason).await
    }

    async fn enrol_totp(&self, user_id: Uuid) -> Result<TotpEnrolment, AuthError> {
        enrol_totp(self, user_id).await
    }

    async fn confirm_totp(&self, user_id: Uuid, code: &str) -> Result<(), AuthError> {
        confirm_totp(self, user_id, code).await
    }

    async fn verify_totp(&self, user_id: Uuid, code: &str) -> Result<(), AuthError> {
        verify_totp(self, user_id, code).await
    }

    async fn disable_totp(&self, user_id: Uuid, actor: Option<Uuid>) -> Result<(), AuthError> {
        disable_totp(self, user_id, actor).await
    }

    async fn generate_recovery_codes(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<Secret<String>>, AuthError> {
        generate_recovery_codes(self, user_id).await
    }

    async fn consume_recovery_code(&self, user_id: Uuid, code: &str) -> Result<u32, AuthError> {
        consume_recovery_code(self, user_id, code).await
    }

    async fn rotate_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        grace_until: DateTime<Utc>,
    ) -> Result<(ApiKey, CreatedApiKey), AuthError> {
        rotate_api_key(self, user_id, key_id, grace_until).await
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent, AuthError> {
        append_audit(self, event).await
    }

    async fn audit_events(&self, query: AuditQuery) -> Result<Vec<AuditEvent>, AuthError> {
        AccountBackend::query_audit(self, &query).await
    }
}

impl AccountStore for Database {
    async fn register_user(
        &self,
        new: NewUser,
        password: Secret<String>,
        ip: Option<String>,
    ) -> Result<Registration, AuthError> {
        dispatch!(self, s => s.register_user(new, password, ip))
    }

    async fn set_password(&self, user_id: Uuid, password: Secret<String>) -> Result<(), AuthError> {
        dispatch!(self, s => s.set_password(user_id, password))
    }

    async fn authenticate_password(
        &self,
        email: &str,
        password: Secret<String>,
        second_factor: Option<SecondFactor>,
        ip: Option<String>,
    ) -> Result<Account, AuthError> {
        dispatch!(self, s => s.authenticate_password(email, password, second_factor, ip))
    }

    async fn account(&self, user_id: Uuid) -> Result<Account, AuthError> {
        dispatch!(self, s => AccountStore::account(s, user_id))
    }

    async fn create_email_verification(&self, user_id: Uuid) -> Result<OneTimeToken, AuthError> {
        dispatch!(self, s => s.create_email_verification(user_id))
    }

    async fn verify_email(&self, token: &str) -> Result<User, AuthError> {
        dispatch!(self, s => s.verify_email(token))
    }

    async fn create_password_token(
        &self,
        user_id: Uuid,
        purpose: PasswordTokenPurpose,
    ) -> Result<Option<OneTimeToken>, AuthError> {
        dispatch!(self, s => s.create_password_token(user_id, purpose))
    }

    async fn reset_password(
        &self,
        token: &str,
        password: Secret<String>,
    ) -> Result<User, AuthError> {
        dispatch!(self, s => s.reset_password(token, password))
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        current: Secret<String>,
        new: Secret<String>,
        keep_session: Option<Uuid>,
        ip: Option<String>,
    ) -> Result<(), AuthError> {
        dispatch!(self, s => s.change_password(user_id, current, new, keep_session, ip))
    }

    async fn mark_email_verified(
        &self,
        user_id: Uuid,
        actor: Option<Uuid>,
    ) -> Result<(), AuthError> {
        dispatch!(self, s => s.mark_email_verified(user_id, actor))
    }

    async fn lock_logins_until(
        &self,
        user_id: Uuid,
        until: DateTime<Utc>,
        actor: Option<Uuid>,
    ) -> Result<(), AuthError> {
        dispatch!(self, s => s.lock_logins_until(user_id, until, actor))
    }

    async fn unlock_logins(&self, user_id: Uuid, actor: Option<Uuid>) -> Result<(), AuthError> {
        dispatch!(self, s => s.unlock_logins(user_id, actor))
    }

    async fn create_login_session(
        &self,
        user_id: Uuid,
        new: NewLoginSession,
    ) -> Result<LoginGrant, AuthError> {
        dispatch!(self, s => s.create_login_session(user_id, new))
    }

    async fn rotate_refresh_token(&self, presented: &str) -> Result<LoginGrant, AuthError> {
        dispatch!(self, s => s.rotate_refresh_token(presented))
    }

    async fn login_sessions(&self, user_id: Uuid) -> Result<Vec<LoginSession>, AuthError> {
        dispatch!(self, s => s.login_sessions(user_id))
    }

    async fn login_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<LoginSession, AuthError> {
        dispatch!(self, s => s.login_session(user_id, session_id))
    }

    async fn revoke_login_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        reason: RevokeReason,
    ) -> Result<LoginSession, AuthError> {
        dispatch!(self, s => s.revoke_login_session(user_id, session_id, reason))
    }

    async fn revoke_login_sessions(
        &self,
        user_id: Uuid,
        reason: RevokeReason,
    ) -> Result<u64, AuthError> {
        dispatch!(self, s => s.revoke_login_sessions(user_id, reason))
    }

    async fn enrol_totp(&self, user_id: Uuid) -> Result<TotpEnrolment, AuthError> {
        dispatch!(self, s => s.enrol_totp(user_id))
    }

    async fn confirm_totp(&self, user_id: Uuid, code: &str) -> Result<(), AuthError> {
        dispatch!(self, s => s.confirm_totp(user_id, code))
    }

    async fn verify_totp(&self, user_id: Uuid, code: &str) -> Result<(), AuthError> {
        dispatch!(self, s => s.verify_totp(user_id, code))
    }

    async fn disable_totp(&self, user_id: Uuid, actor: Option<Uuid>) -> Result<(), AuthError> {
        dispatch!(self, s => s.disable_totp(user_id, actor))
    }

    async fn generate_recovery_codes(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<Secret<String>>, AuthError> {
        dispatch!(self, s => s.generate_recovery_codes(user_id))
    }

    async fn consume_recovery_code(&self, user_id: Uuid, code: &str) -> Result<u32, AuthError> {
        dispatch!(self, s => s.consume_recovery_code(user_id, code))
    }

    async fn rotate_api_key(
        &self,
        user_id: Uuid,
        key_id: Uuid,
        grace_until: DateTime<Utc>,
    ) -> Result<(ApiKey, CreatedApiKey), AuthError> {
        dispatch!(self, s => s.rotate_api_key(user_id, key_id, grace_until))
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent, AuthError> {
        dispatch!(self, s => s.append_audit(event))
    }

    async fn audit_events(&self, query: AuditQuery) -> Result<Vec<AuditEvent>, AuthError> {
        dispatch!(self, s => s.audit_events(query))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::account::AccountPolicy;
    use crate::password::PasswordParams;
    use crate::store::{SqliteStore, StoreOptions};

    const PASSWORD: &str = "correct horse battery";

    fn pw(s: &str) -> Secret<String> {
        Secret::new(s.to_owned())
    }

    #[tokio::test]
    async fn without_a_hashing_slot_logins_are_overloaded_and_count_nothing() {
        let policy = AccountPolicy {
            password: PasswordParams {
                m_cost: 64,
                t_cost: 1,
                p_cost: 1,
            },
            hashing_permits: 1,
            hashing_wait: Duration::from_millis(50),
            ..AccountPolicy::default()
        };
        let options = StoreOptions::new(Secret::new(vec![7; 32])).accounts(policy);
        let store = SqliteStore::connect("sqlite::memory:", options)
            .await
            .unwrap();
        let reg = store
            .register_user(NewUser::new("busy@example.com"), pw(PASSWORD), None)
            .await
            .unwrap();
        store.mark_email_verified(reg.user.id, None).await.unwrap();

        // Someone else holds the only slot.
        let held = store.core().hashing.acquire().await.unwrap();
        let started = Instant::now();
        for password in ["wrong password", PASSWORD] {
            let result = store
                .authenticate_password("busy@example.com", pw(password), None, None)
                .await;
            assert!(matches!(result, Err(AuthError::Overloaded)), "{result:?}");
        }
        assert!(matches!(
            store
                .register_user(NewUser::new("later@example.com"), pw(PASSWORD), None)
                .await,
            Err(AuthError::Overloaded)
        ));
        assert!(started.elapsed() >= Duration::from_millis(150));
        // Nothing was counted or audited: an overloaded server locks nobody out.
        assert_eq!(store.account(reg.user.id).await.unwrap().failed_logins, 0);
        let failures = store
            .audit_events(AuditQuery {
                kind: Some(AuditKind::LoginFailed),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert!(failures.is_empty(), "{failures:?}");

        drop(held);
        store
            .authenticate_password("busy@example.com", pw(PASSWORD), None, None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn raised_costs_upgrade_the_hash_at_login() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("upgrade.db").display());
        let options = |m_cost| {
            StoreOptions::new(Secret::new(vec![7; 32])).accounts(AccountPolicy {
                password: PasswordParams {
                    m_cost,
                    t_cost: 1,
                    p_cost: 1,
                },
                ..AccountPolicy::default()
            })
        };
        let old = SqliteStore::connect(&url, options(64)).await.unwrap();
        let reg = old
            .register_user(NewUser::new("old@example.com"), pw(PASSWORD), None)
            .await
            .unwrap();
        old.mark_email_verified(reg.user.id, None).await.unwrap();
        old.close().await;

        let new = SqliteStore::connect(&url, options(128)).await.unwrap();
        let stored = |store: &SqliteStore| {
            let store = store.clone();
            async move {
                store
                    .account_row(AccountKey::Id(reg.user.id))
                    .await
                    .unwrap()
                    .unwrap()
                    .password_hash
                    .unwrap()
            }
        };
        assert!(stored(&new).await.contains("m=64,"));
        new.authenticate_password("old@example.com", pw(PASSWORD), None, None)
            .await
            .unwrap();
        let upgraded = stored(&new).await;
        assert!(upgraded.contains("m=128,"), "{upgraded}");
        new.authenticate_password("old@example.com", pw(PASSWORD), None, None)
            .await
            .unwrap();
    }
}
