//! `AccountStore` tests of the shared suite (run on SQLite and Postgres by `store.rs`).

use std::time::Duration;

use auth::{
    totp, AccountPolicy, AccountStore, AuditKind, AuditQuery, AuthError, CredentialRejection,
    Database, Keyring, NewAuditEvent, NewLoginSession, NewUser, OneTimeRejection, Page,
    PasswordParams, PasswordTokenPurpose, RefreshRejection, RevokeReason, SecondFactor, Secret,
    UserStatus, UserStore,
};
use chrono::{TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::Ctx;

const PASSWORD: &str = "correct horse battery";

/// The suite's rules: cheap argon2 so tests stay fast, 3 failures in 10 minutes lock
/// for 15, refresh tokens for an hour.
pub fn policy() -> AccountPolicy {
    AccountPolicy {
        password: PasswordParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        },
        max_failed_logins: 3,
        failure_window: Duration::from_secs(600),
        lockout: Duration::from_secs(900),
        refresh_token_lifetime: Duration::from_secs(3600),
        ..AccountPolicy::default()
    }
}

pub fn keyring() -> Keyring {
    Keyring::new(
        "test-2024",
        [
            ("test-2023".to_owned(), Secret::new(vec![3; 32])),
            ("test-2024".to_owned(), Secret::new(vec![4; 32])),
        ],
    )
    .unwrap()
}

fn pw(s: &str) -> Secret<String> {
    Secret::new(s.to_owned())
}

/// A registered user whose email is verified, so they can log in.
async fn registered(ctx: &Ctx, email: &str) -> auth::User {
    let reg = ctx
        .store
        .register_user(NewUser::new(email), pw(PASSWORD), None)
        .await
        .unwrap();
    ctx.store
        .verify_email(reg.verification.token.expose())
        .await
        .unwrap();
    reg.user
}

async fn audit(ctx: &Ctx, user_id: Uuid, kind: AuditKind) -> Vec<auth::AuditEvent> {
    ctx.store
        .audit_events(AuditQuery {
            user_id: Some(user_id),
            kind: Some(kind),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

fn credentials<T: std::fmt::Debug>(result: Result<T, AuthError>) -> CredentialRejection {
    match result {
        Err(AuthError::InvalidCredentials(reason)) => reason,
        other => panic!("expected InvalidCredentials, got {other:?}"),
    }
}

async fn raw_rows<T>(ctx: &Ctx, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    match &ctx.store {
        Database::Sqlite(s) => sqlx::query_as(sql).fetch_all(s.pool()).await.unwrap(),
        Database::Postgres(s) => sqlx::query_as(sql).fetch_all(s.pool()).await.unwrap(),
    }
}

pub async fn registration_verification_and_password_login(ctx: Ctx) {
    let store = &ctx.store;
    let reg = store
        .register_user(
            NewUser::new("  New.User@Example.COM "),
            pw(PASSWORD),
            Some("203.0.113.9".into()),
        )
        .await
        .unwrap();
    assert_eq!(reg.user.email, "new.user@example.com");
    assert_eq!(reg.user.status, UserStatus::Active);
    assert_eq!(
        reg.verification.expires_at,
        ctx.now().trunc_subsecs_6() + TimeDelta::hours(24)
    );
    let account = store.account(reg.user.id).await.unwrap();
    assert!(account.has_password);
    assert_eq!(account.email_verified_at, None);
    assert!(!account.totp_enabled);

    // The same email in another spelling is taken.
    assert!(matches!(
        store
            .register_user(NewUser::new("NEW.USER@example.com"), pw(PASSWORD), None)
            .await,
        Err(AuthError::Conflict(_))
    ));
    assert!(matches!(
        store
            .register_user(NewUser::new("short@example.com"), pw("1234567"), None)
            .await,
        Err(AuthError::InvalidInput {
            field: "password",
            ..
        })
    ));

    let verified = store
        .verify_email(reg.verification.token.expose())
        .await
        .unwrap();
    assert_eq!(verified.id, reg.user.id);
    let account = store.account(reg.user.id).await.unwrap();
    assert_eq!(account.email_verified_at, Some(ctx.now().trunc_subsecs_6()));

    let logged_in = store
        .authenticate_password("NEW.user@example.com ", pw(PASSWORD), None, None)
        .await
        .unwrap();
    assert_eq!(logged_in.user.id, reg.user.id);

    // A changed password replaces the old one.
    store
        .set_password(reg.user.id, pw("another long password"))
        .await
        .unwrap();
    assert_eq!(
        credentials(
            store
                .authenticate_password("new.user@example.com", pw(PASSWORD), None, None)
                .await
        ),
        CredentialRejection::WrongPassword
    );
    store
        .authenticate_password(
            "new.user@example.com",
            pw("another long password"),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        audit(&ctx, reg.user.id, AuditKind::UserRegistered).await[0]
            .ip
            .as_deref(),
        Some("203.0.113.9")
    );
    assert_eq!(
        audit(&ctx, reg.user.id, AuditKind::PasswordChanged)
            .await
            .len(),
        1
    );

    // Disabled users with the right password are told apart only after the check.
    store
        .set_status(reg.user.id, UserStatus::Disabled)
        .await
        .unwrap();
    assert!(matches!(
        store
            .authenticate_password(
                "new.user@example.com",
                pw("another long password"),
                None,
                None
            )
            .await,
        Err(AuthError::AccountInactive(UserStatus::Disabled))
    ));
}

pub async fn unknown_emails_and_wrong_passwords_are_refused_alike(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "known@example.com").await;
    let key_only = store
        .create_user(NewUser::new("keys@example.com"))
        .await
        .unwrap();
    let unknown = store
        .authenticate_password("nobody@example.com", pw(PASSWORD), None, None)
        .await;
    let wrong = store
        .authenticate_password("known@example.com", pw("wrong password"), None, None)
        .await;
    let no_password = store
        .authenticate_password("keys@example.com", pw(PASSWORD), None, None)
        .await;
    let garbage = store
        .authenticate_password("not an email", pw(PASSWORD), None, None)
        .await;
    // One message for every reason; the reasons are for logs.
    let messages: Vec<String> = [&unknown, &wrong, &no_password, &garbage]
        .iter()
        .map(|r| r.as_ref().unwrap_err().to_string())
        .collect();
    assert!(messages.iter().all(|m| m == "invalid email or password"));
    assert_eq!(credentials(unknown), CredentialRejection::UnknownEmail);
    assert_eq!(credentials(wrong), CredentialRejection::WrongPassword);
    assert_eq!(credentials(no_password), CredentialRejection::NoPassword);
    assert_eq!(credentials(garbage), CredentialRejection::UnknownEmail);
    assert!(!store.account(key_only.id).await.unwrap().has_password);

    // Unknown emails are audited without a subject.
    let failures = store
        .audit_events(AuditQuery {
            kind: Some(AuditKind::LoginFailed),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(failures.len(), 4);
    let unknown_event = failures
        .iter()
        .find(|e| e.detail["email"] == "nobody@example.com")
        .unwrap();
    assert_eq!(unknown_event.subject_user_id, None);
    assert_eq!(unknown_event.detail["reason"], "unknown_email");
    assert_eq!(audit(&ctx, user.id, AuditKind::LoginFailed).await.len(), 1);
}

pub async fn failed_logins_lock_and_unlock(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "locked@example.com").await;
    let login = |password: &'static str| {
        store.authenticate_password(
            "locked@example.com",
            pw(password),
            None,
            Some("198.51.100.7".into()),
        )
    };

    // Two failures, then success: the count starts again.
    for _ in 0..2 {
        login("wrong").await.unwrap_err();
    }
    assert_eq!(store.account(user.id).await.unwrap().failed_logins, 2);
    login(PASSWORD).await.unwrap();
    assert_eq!(store.account(user.id).await.unwrap().failed_logins, 0);

    // Failures spread wider than the window do not lock.
    for _ in 0..2 {
        login("wrong").await.unwrap_err();
    }
    ctx.clock.advance(TimeDelta::minutes(11));
    login("wrong").await.unwrap_err();
    let account = store.account(user.id).await.unwrap();
    assert_eq!(account.failed_logins, 1);
    assert!(!account.is_locked_at(ctx.now()));

    // Three within the window lock for 15 minutes, even for the right password.
    ctx.clock.advance(TimeDelta::minutes(1));
    login("wrong").await.unwrap_err();
    login("wrong").await.unwrap_err();
    let until = ctx.now().trunc_subsecs_6() + TimeDelta::minutes(15);
    assert_eq!(
        store.account(user.id).await.unwrap().locked_until,
        Some(until)
    );
    assert_eq!(
        credentials(login(PASSWORD).await),
        CredentialRejection::Locked { until }
    );
    // Failures while locked do not extend the lock.
    login("wrong").await.unwrap_err();
    assert_eq!(
        store.account(user.id).await.unwrap().locked_until,
        Some(until)
    );
    let locked = audit(&ctx, user.id, AuditKind::AccountLocked).await;
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0].ip.as_deref(), Some("198.51.100.7"));
    // The lock is for logins only: the status (and so API keys) is untouched.
    assert_eq!(
        store.user_by_id(user.id).await.unwrap().status,
        UserStatus::Active
    );

    // It lapses by itself...
    ctx.clock.advance(TimeDelta::minutes(15));
    login(PASSWORD).await.unwrap();

    // ...or an operator lifts it.
    for _ in 0..3 {
        login("wrong").await.unwrap_err();
    }
    assert!(store
        .account(user.id)
        .await
        .unwrap()
        .is_locked_at(ctx.now()));
    let admin = registered(&ctx, "admin@example.com").await;
    store.unlock_logins(user.id, Some(admin.id)).await.unwrap();
    login(PASSWORD).await.unwrap();
    let unlocked = audit(&ctx, user.id, AuditKind::AccountUnlocked).await;
    assert_eq!(unlocked[0].actor_user_id, Some(admin.id));

    // A manual lock refuses even the right password.
    let until = ctx.now() + TimeDelta::hours(1);
    store
        .lock_logins_until(user.id, until, Some(admin.id))
        .await
        .unwrap();
    assert!(matches!(
        credentials(login(PASSWORD).await),
        CredentialRejection::Locked { .. }
    ));
    assert!(matches!(
        store.unlock_logins(Uuid::new_v4(), None).await,
        Err(AuthError::NotFound)
    ));
}

pub async fn verification_tokens_are_single_use_and_expire(ctx: Ctx) {
    let store = &ctx.store;
    let reg = store
        .register_user(NewUser::new("verify@example.com"), pw(PASSWORD), None)
        .await
        .unwrap();
    let token = reg.verification.token.expose().clone();
    store.verify_email(&token).await.unwrap();
    assert!(matches!(
        store.verify_email(&token).await,
        Err(AuthError::InvalidOneTimeToken(OneTimeRejection::Used))
    ));

    let later = store.create_email_verification(reg.user.id).await.unwrap();
    ctx.clock.advance(TimeDelta::hours(24));
    assert!(matches!(
        store.verify_email(later.token.expose()).await,
        Err(AuthError::InvalidOneTimeToken(OneTimeRejection::Expired))
    ));
    let fresh = store.create_email_verification(reg.user.id).await.unwrap();
    ctx.clock
        .advance(TimeDelta::hours(24) - TimeDelta::seconds(1));
    store.verify_email(fresh.token.expose()).await.unwrap();

    let bogus = format!("sev_{}", "A".repeat(43));
    for bad in [bogus.as_str(), "", "sev_short", &token[..token.len() - 1]] {
        assert!(
            matches!(
                store.verify_email(bad).await,
                Err(AuthError::InvalidOneTimeToken(OneTimeRejection::Unknown))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        store.create_email_verification(Uuid::new_v4()).await,
        Err(AuthError::NotFound)
    ));
}

pub async fn refresh_tokens_rotate_and_reuse_revokes_the_session(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "rotate@example.com").await;
    let first = store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    assert_eq!(first.user.id, user.id);
    assert_eq!(
        first.refresh_expires_at,
        ctx.now().trunc_subsecs_6() + TimeDelta::hours(1)
    );
    assert!(first.refresh_token.expose().starts_with("srt_"));

    ctx.clock.advance(TimeDelta::minutes(5));
    let second = store
        .rotate_refresh_token(first.refresh_token.expose())
        .await
        .unwrap();
    assert_eq!(second.session.id, first.session.id);
    assert_eq!(second.session.last_used_at, ctx.now().trunc_subsecs_6());
    assert_ne!(second.refresh_token.expose(), first.refresh_token.expose());
    let third = store
        .rotate_refresh_token(second.refresh_token.expose())
        .await
        .unwrap();

    // An attacker replays the first token: the whole session goes, the newest
    // token included, and the theft is audited.
    assert!(matches!(
        store
            .rotate_refresh_token(first.refresh_token.expose())
            .await,
        Err(AuthError::RefreshTokenReused)
    ));
    let session = store
        .login_session(user.id, first.session.id)
        .await
        .unwrap();
    assert_eq!(
        session.revoke_reason,
        Some(RevokeReason::RefreshTokenReused)
    );
    assert!(matches!(
        store
            .rotate_refresh_token(third.refresh_token.expose())
            .await,
        Err(AuthError::InvalidRefreshToken(
            RefreshRejection::SessionRevoked
        ))
    ));
    let theft = audit(&ctx, user.id, AuditKind::RefreshTokenReused).await;
    assert_eq!(theft.len(), 1);
    assert_eq!(
        theft[0].detail["session_id"],
        json!(first.session.id.to_string())
    );
    assert!(store.login_sessions(user.id).await.unwrap().is_empty());

    // Other sessions of the user are not affected.
    let other = store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    let other = store
        .rotate_refresh_token(other.refresh_token.expose())
        .await
        .unwrap();

    // A token past its own lifetime is refused; malformed and unknown ones too.
    ctx.clock.advance(TimeDelta::hours(1));
    assert!(matches!(
        store
            .rotate_refresh_token(other.refresh_token.expose())
            .await,
        Err(AuthError::InvalidRefreshToken(RefreshRejection::Expired))
    ));
    for (bad, why) in [
        ("srt_short".to_owned(), RefreshRejection::Malformed),
        (format!("srt_{}", "x".repeat(43)), RefreshRejection::Unknown),
        (String::new(), RefreshRejection::Malformed),
    ] {
        match store.rotate_refresh_token(&bad).await {
            Err(AuthError::InvalidRefreshToken(got)) => assert_eq!(got, why, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }

    // A disabled user cannot refresh.
    let fresh = store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    store
        .set_status(user.id, UserStatus::Disabled)
        .await
        .unwrap();
    assert!(matches!(
        store
            .rotate_refresh_token(fresh.refresh_token.expose())
            .await,
        Err(AuthError::AccountInactive(UserStatus::Disabled))
    ));
    assert!(matches!(
        store
            .create_login_session(user.id, NewLoginSession::default())
            .await,
        Err(AuthError::AccountInactive(UserStatus::Disabled))
    ));
}

pub async fn a_sixth_login_session_revokes_the_oldest(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "sessions@example.com").await;
    let neighbour = registered(&ctx, "neighbour@example.com").await;
    let theirs = store
        .create_login_session(neighbour.id, NewLoginSession::default())
        .await
        .unwrap();
    let mut grants = Vec::new();
    for _ in 0..5 {
        ctx.clock.advance(TimeDelta::seconds(1));
        grants.push(
            store
                .create_login_session(user.id, NewLoginSession::default())
                .await
                .unwrap(),
        );
    }
    assert_eq!(store.login_sessions(user.id).await.unwrap().len(), 5);

    ctx.clock.advance(TimeDelta::seconds(1));
    let sixth = store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    let live = store.login_sessions(user.id).await.unwrap();
    assert_eq!(live.len(), 5);
    // Newest first; the oldest is gone.
    assert_eq!(live[0].id, sixth.session.id);
    assert!(live.iter().all(|s| s.id != grants[0].session.id));
    let oldest = store
        .login_session(user.id, grants[0].session.id)
        .await
        .unwrap();
    assert_eq!(oldest.revoke_reason, Some(RevokeReason::SessionLimit));
    assert!(matches!(
        store
            .rotate_refresh_token(grants[0].refresh_token.expose())
            .await,
        Err(AuthError::InvalidRefreshToken(
            RefreshRejection::SessionRevoked
        ))
    ));
    store
        .rotate_refresh_token(grants[1].refresh_token.expose())
        .await
        .unwrap();
    let evicted = audit(&ctx, user.id, AuditKind::SessionRevoked).await;
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].detail["reason"], "session_limit");

    // Revoked sessions do not count towards the cap; other users are untouched.
    store
        .revoke_login_session(user.id, grants[1].session.id, RevokeReason::Logout)
        .await
        .unwrap();
    store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    assert_eq!(store.login_sessions(user.id).await.unwrap().len(), 5);
    assert!(store
        .login_session(user.id, grants[2].session.id)
        .await
        .unwrap()
        .is_active_at(ctx.now()));
    assert_eq!(
        store.login_sessions(neighbour.id).await.unwrap()[0].id,
        theirs.session.id
    );
}

pub async fn login_sessions_end_after_twelve_hours(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "twelve@example.com").await;
    let start = ctx.now().trunc_subsecs_6();
    let mut grant = store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    assert_eq!(grant.session.expires_at, start + TimeDelta::hours(12));
    // Refreshing every 50 minutes never extends the session past 12 hours.
    for _ in 0..14 {
        ctx.clock.advance(TimeDelta::minutes(50));
        if ctx.now() >= start + TimeDelta::hours(12) {
            break;
        }
        grant = store
            .rotate_refresh_token(grant.refresh_token.expose())
            .await
            .unwrap();
        assert!(grant.refresh_expires_at <= start + TimeDelta::hours(12));
        assert_eq!(grant.session.expires_at, start + TimeDelta::hours(12));
    }
    // The last token was issued at 11h40: it would live an hour but the session ends.
    assert_eq!(grant.refresh_expires_at, start + TimeDelta::hours(12));
    assert_eq!(ctx.now().trunc_subsecs_6(), start + TimeDelta::minutes(700));
    ctx.clock.advance(TimeDelta::minutes(20));
    assert!(matches!(
        store
            .rotate_refresh_token(grant.refresh_token.expose())
            .await,
        Err(AuthError::InvalidRefreshToken(
            RefreshRejection::SessionExpired
        ))
    ));
    assert!(store.login_sessions(user.id).await.unwrap().is_empty());
    // Expired sessions no longer count towards the cap either.
    for _ in 0..5 {
        store
            .create_login_session(user.id, NewLoginSession::default())
            .await
            .unwrap();
    }
    assert!(audit(&ctx, user.id, AuditKind::SessionRevoked)
        .await
        .is_empty());
}

pub async fn login_sessions_can_be_revoked_one_or_all(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "revoke@example.com").await;
    let intruder = registered(&ctx, "intruder@example.com").await;
    let a = store
        .create_login_session(
            user.id,
            NewLoginSession {
                user_agent: Some("Mozilla/5.0".into()),
                ip: Some("2001:db8::1".into()),
                ..NewLoginSession::default()
            },
        )
        .await
        .unwrap();
    let b = store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    assert_eq!(a.session.user_agent.as_deref(), Some("Mozilla/5.0"));

    // Nobody revokes someone else's session.
    assert!(matches!(
        store
            .revoke_login_session(intruder.id, a.session.id, RevokeReason::Logout)
            .await,
        Err(AuthError::NotFound)
    ));
    let revoked = store
        .revoke_login_session(user.id, a.session.id, RevokeReason::Logout)
        .await
        .unwrap();
    assert_eq!(revoked.revoke_reason, Some(RevokeReason::Logout));
    assert_eq!(revoked.revoked_at, Some(ctx.now().trunc_subsecs_6()));
    // Idempotent: the first reason stays.
    let again = store
        .revoke_login_session(user.id, a.session.id, RevokeReason::Admin)
        .await
        .unwrap();
    assert_eq!(again.revoke_reason, Some(RevokeReason::Logout));
    assert!(matches!(
        store.rotate_refresh_token(a.refresh_token.expose()).await,
        Err(AuthError::InvalidRefreshToken(
            RefreshRejection::SessionRevoked
        ))
    ));

    store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    assert_eq!(
        store
            .revoke_login_sessions(user.id, RevokeReason::PasswordChanged)
            .await
            .unwrap(),
        2
    );
    assert!(store.login_sessions(user.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .login_session(user.id, b.session.id)
            .await
            .unwrap()
            .revoke_reason,
        Some(RevokeReason::PasswordChanged)
    );
    assert_eq!(
        store
            .revoke_login_sessions(user.id, RevokeReason::Admin)
            .await
            .unwrap(),
        0
    );
    assert!(matches!(
        store.login_session(user.id, Uuid::new_v4()).await,
        Err(AuthError::NotFound)
    ));
    assert!(matches!(
        store
            .create_login_session(Uuid::new_v4(), NewLoginSession::default())
            .await,
        Err(AuthError::NotFound)
    ));
}

pub async fn totp_enrolment_confirmation_and_replay(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "totp@example.com").await;
    let enrolment = store.enrol_totp(user.id).await.unwrap();
    let secret = totp::base32_decode(enrolment.secret_base32.expose()).unwrap();
    assert_eq!(secret.len(), 20);
    assert!(enrolment
        .provisioning_uri
        .expose()
        .starts_with("otpauth://totp/SimuTrador:totp%40example.com?secret="));
    // Not required until confirmed.
    assert!(!store.account(user.id).await.unwrap().totp_enabled);
    let now = || ctx.now().timestamp();
    assert!(matches!(
        store
            .verify_totp(user.id, &totp::code_at(&secret, now()))
            .await,
        Err(AuthError::InvalidSecondFactor)
    ));

    // A second enrolment before confirmation replaces the secret.
    let enrolment = store.enrol_totp(user.id).await.unwrap();
    let stale = secret;
    let secret = totp::base32_decode(enrolment.secret_base32.expose()).unwrap();
    assert_ne!(stale, secret);
    assert!(matches!(
        store
            .confirm_totp(user.id, &totp::code_at(&stale, now()))
            .await,
        Err(AuthError::InvalidSecondFactor)
    ));
    store
        .confirm_totp(user.id, &totp::code_at(&secret, now()))
        .await
        .unwrap();
    assert!(store.account(user.id).await.unwrap().totp_enabled);
    assert!(matches!(
        store.enrol_totp(user.id).await,
        Err(AuthError::Conflict(_))
    ));

    // The confirming code cannot be used again, nor can any code of that step.
    assert!(matches!(
        store
            .verify_totp(user.id, &totp::code_at(&secret, now()))
            .await,
        Err(AuthError::InvalidSecondFactor)
    ));
    ctx.clock.advance(TimeDelta::seconds(30));
    let code = totp::code_at(&secret, now());
    store.verify_totp(user.id, &code).await.unwrap();
    assert!(matches!(
        store.verify_totp(user.id, &code).await,
        Err(AuthError::InvalidSecondFactor)
    ));
    // One step of clock drift either way is accepted, two are not.
    ctx.clock.advance(TimeDelta::seconds(60));
    store
        .verify_totp(user.id, &totp::code_at(&secret, now() + 30))
        .await
        .unwrap();
    ctx.clock.advance(TimeDelta::seconds(120));
    assert!(matches!(
        store
            .verify_totp(user.id, &totp::code_at(&secret, now() - 60))
            .await,
        Err(AuthError::InvalidSecondFactor)
    ));
    for bad in ["", "12345", "abcdef", "1234567"] {
        assert!(store.verify_totp(user.id, bad).await.is_err(), "{bad}");
    }
    assert_eq!(audit(&ctx, user.id, AuditKind::TotpEnrolled).await.len(), 2);
    assert_eq!(
        audit(&ctx, user.id, AuditKind::TotpConfirmed).await.len(),
        1
    );
}

pub async fn totp_secrets_are_sealed_at_rest_and_disable_resets(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "sealed@example.com").await;
    let admin = registered(&ctx, "root@example.com").await;
    let enrolment = store.enrol_totp(user.id).await.unwrap();
    let secret = totp::base32_decode(enrolment.secret_base32.expose()).unwrap();
    let rows: Vec<(Vec<u8>, String, Vec<u8>)> = raw_rows(
        &ctx,
        "SELECT secret_ciphertext, key_id, nonce FROM totp_secrets",
    )
    .await;
    let (ciphertext, key_id, nonce) = &rows[0];
    assert_eq!(key_id, "test-2024");
    assert_eq!(nonce.len(), 12);
    assert_eq!(ciphertext.len(), secret.len() + 16);
    assert!(!ciphertext
        .windows(8)
        .any(|w| secret.windows(8).any(|s| s == w)));
    let sealed = auth::Sealed {
        key_id: key_id.clone(),
        nonce: nonce.clone(),
        ciphertext: ciphertext.clone(),
    };
    // Bound to its user: it does not open as anyone else's.
    assert_eq!(
        keyring()
            .open(&sealed, user.id.as_bytes())
            .unwrap()
            .expose(),
        &secret
    );
    assert!(keyring().open(&sealed, admin.id.as_bytes()).is_err());

    store
        .confirm_totp(user.id, &totp::code_at(&secret, ctx.now().timestamp()))
        .await
        .unwrap();
    store.generate_recovery_codes(user.id).await.unwrap();
    store.disable_totp(user.id, Some(admin.id)).await.unwrap();
    assert!(!store.account(user.id).await.unwrap().totp_enabled);
    let left: Vec<(i64,)> = raw_rows(&ctx, "SELECT COUNT(*) FROM recovery_codes").await;
    assert_eq!(left[0].0, 0);
    assert!(matches!(
        store.disable_totp(user.id, Some(admin.id)).await,
        Err(AuthError::NotFound)
    ));
    let reset = audit(&ctx, user.id, AuditKind::TotpDisabled).await;
    assert_eq!(reset[0].actor_user_id, Some(admin.id));
    // After a reset the user can enrol again.
    store.enrol_totp(user.id).await.unwrap();
}

pub async fn recovery_codes_are_single_use(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "recovery@example.com").await;
    let other = registered(&ctx, "other@example.com").await;
    let codes = store.generate_recovery_codes(user.id).await.unwrap();
    assert_eq!(codes.len(), 10);
    let first = codes[0].expose().clone();
    assert!(matches!(
        store.consume_recovery_code(other.id, &first).await,
        Err(AuthError::InvalidSecondFactor)
    ));
    assert_eq!(
        store
            .consume_recovery_code(user.id, &first.to_uppercase().replace('-', " "))
            .await
            .unwrap(),
        9
    );
    assert!(matches!(
        store.consume_recovery_code(user.id, &first).await,
        Err(AuthError::InvalidSecondFactor)
    ));
    assert_eq!(
        store
            .consume_recovery_code(user.id, codes[1].expose())
            .await
            .unwrap(),
        8
    );
    assert!(matches!(
        store.consume_recovery_code(user.id, "aaaaa-aaaaa").await,
        Err(AuthError::InvalidSecondFactor)
    ));
    assert!(matches!(
        store.consume_recovery_code(user.id, "' OR 1=1 --").await,
        Err(AuthError::InvalidSecondFactor)
    ));
    // New codes replace all old ones.
    let fresh = store.generate_recovery_codes(user.id).await.unwrap();
    assert!(matches!(
        store
            .consume_recovery_code(user.id, codes[2].expose())
            .await,
        Err(AuthError::InvalidSecondFactor)
    ));
    assert_eq!(
        store
            .consume_recovery_code(user.id, fresh[9].expose())
            .await
            .unwrap(),
        9
    );
    assert_eq!(
        audit(&ctx, user.id, AuditKind::RecoveryCodeUsed)
            .await
            .len(),
        3
    );
}

pub async fn tokens_are_stored_only_as_hashes(ctx: Ctx) {
    let store = &ctx.store;
    let reg = store
        .register_user(NewUser::new("hashes@example.com"), pw(PASSWORD), None)
        .await
        .unwrap();
    let grant = store
        .create_login_session(reg.user.id, NewLoginSession::default())
        .await
        .unwrap();
    let codes = store.generate_recovery_codes(reg.user.id).await.unwrap();
    let mut stored: Vec<Vec<u8>> = Vec::new();
    for sql in [
        "SELECT token_hash FROM refresh_tokens",
        "SELECT token_hash FROM email_verification_tokens",
        "SELECT code_hash FROM recovery_codes",
    ] {
        let rows: Vec<(Vec<u8>,)> = raw_rows(&ctx, sql).await;
        assert!(!rows.is_empty(), "{sql}");
        stored.extend(rows.into_iter().map(|(h,)| h));
    }
    let clear: Vec<String> = [
        grant.refresh_token.expose().clone(),
        reg.verification.token.expose().clone(),
    ]
    .into_iter()
    .chain(codes.iter().map(|c| c.expose().replace('-', "")))
    .collect();
    for hash in &stored {
        assert_eq!(hash.len(), 32);
        for token in &clear {
            let tail = &token.as_bytes()[token.len() - 8..];
            assert!(!hash.windows(8).any(|w| w == tail));
        }
    }
    let hashes: Vec<(Option<String>,)> = raw_rows(&ctx, "SELECT password_hash FROM users").await;
    let phc = hashes[0].0.as_deref().unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
    assert!(!phc.contains(PASSWORD));
}

pub async fn sql_injection_strings_in_account_fields_are_stored_verbatim(ctx: Ctx) {
    let store = &ctx.store;
    let nasty = [
        "'; DROP TABLE login_sessions; --",
        "Robert'); DROP TABLE users;--",
        "\" OR 1=1 --",
        "$1 ? ?1 :name @p1 %s",
        "名前 🗝️ \\0 \\x00",
    ];
    for (i, text) in nasty.iter().enumerate() {
        // The address keeps the characters of `text` an address may hold.
        let local: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "'-=$?%!#&*+/^_`{|}~".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let email = format!("{local}{i}@example.com");
        let password = format!("{text} {text}");
        let reg = store
            .register_user(
                NewUser::new(email.as_str()),
                pw(&password),
                Some(text.to_string()),
            )
            .await
            .unwrap();
        assert_eq!(reg.user.email, email.to_lowercase());
        store
            .verify_email(reg.verification.token.expose())
            .await
            .unwrap();
        let account = store
            .authenticate_password(&email, pw(&password), None, Some(text.to_string()))
            .await
            .unwrap();
        assert_eq!(account.user.id, reg.user.id);
        let grant = store
            .create_login_session(
                reg.user.id,
                NewLoginSession {
                    user_agent: Some(text.to_string()),
                    ip: Some(text.to_string()),
                    ..NewLoginSession::default()
                },
            )
            .await
            .unwrap();
        let session = store
            .login_session(reg.user.id, grant.session.id)
            .await
            .unwrap();
        assert_eq!(session.user_agent.as_deref(), Some(*text));
        assert_eq!(session.ip.as_deref(), Some(*text));
        let event = store
            .append_audit(
                NewAuditEvent::new(AuditKind::AdminAction)
                    .subject(reg.user.id)
                    .ip(Some(text))
                    .detail({
                        let mut detail = serde_json::Map::new();
                        detail.insert("note".into(), json!(text));
                        detail.insert(text.to_string(), json!([text, 1, null]));
                        serde_json::Value::Object(detail)
                    }),
            )
            .await
            .unwrap();
        let read = store
            .audit_events(AuditQuery {
                user_id: Some(reg.user.id),
                kind: Some(AuditKind::AdminAction),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(read, vec![event]);
        assert_eq!(read[0].detail["note"], *text);
        assert_eq!(read[0].ip.as_deref(), Some(*text));
        let registered = audit(&ctx, reg.user.id, AuditKind::UserRegistered).await;
        assert_eq!(registered[0].ip.as_deref(), Some(*text));
    }
    // Every table is still there.
    assert_eq!(store.count_users().await.unwrap(), nasty.len() as u64);
    // Text neither backend can hold is refused the same way on both.
    let user = registered(&ctx, "nul@example.com").await;
    assert!(matches!(
        store
            .create_login_session(
                user.id,
                NewLoginSession {
                    user_agent: Some("a\0b".into()),
                    ip: None,
                    ..NewLoginSession::default()
                }
            )
            .await,
        Err(AuthError::InvalidInput {
            field: "user_agent",
            ..
        })
    ));
    assert!(matches!(
        store
            .append_audit(NewAuditEvent::new(AuditKind::AdminAction).detail(json!({"x": "a\0b"})))
            .await,
        Err(AuthError::InvalidInput {
            field: "detail",
            ..
        })
    ));
    // Long User-Agents are cut, not refused.
    let long = store
        .create_login_session(
            user.id,
            NewLoginSession {
                user_agent: Some("x".repeat(2000)),
                ip: None,
                ..NewLoginSession::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(long.session.user_agent.unwrap().len(), 512);
}

pub async fn audit_log_filters_and_pages(ctx: Ctx) {
    let store = &ctx.store;
    let ann = Uuid::new_v4();
    let bob = Uuid::new_v4();
    let admin = Uuid::new_v4();
    let t0 = ctx.now().trunc_subsecs_6();
    let mut written = Vec::new();
    for i in 0..25i64 {
        let (kind, subject) = match i % 3 {
            0 => (AuditKind::PlanChanged, ann),
            1 => (AuditKind::ApiKeyCreated, bob),
            _ => (AuditKind::StatusChanged, ann),
        };
        let event = store
            .append_audit(
                NewAuditEvent::new(kind)
                    .actor(if i % 5 == 0 { admin } else { subject })
                    .subject(subject)
                    .detail(json!({ "i": i })),
            )
            .await
            .unwrap();
        assert_eq!(event.at, ctx.now().trunc_subsecs_6());
        written.push(event);
        // Two events per instant, so ordering ties are broken by id.
        if i % 2 == 1 {
            ctx.clock.advance(TimeDelta::minutes(1));
        }
    }
    let query = |q: AuditQuery| store.audit_events(q);
    let all = query(AuditQuery {
        page: Page::new(0, 1000),
        ..AuditQuery::default()
    })
    .await
    .unwrap();
    assert_eq!(all.len(), 25);
    let mut newest_first = written.clone();
    newest_first.reverse();
    assert_eq!(all, newest_first);

    // Pages of 10 walk the same order without gaps or repeats.
    let mut paged = Vec::new();
    for offset in [0, 10, 20, 30] {
        let page = query(AuditQuery {
            page: Page::new(offset, 10),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
        paged.extend(page);
    }
    assert_eq!(paged, all);

    let ann_events = query(AuditQuery {
        user_id: Some(ann),
        ..AuditQuery::default()
    })
    .await
    .unwrap();
    assert_eq!(ann_events.len(), 17);
    assert!(ann_events.iter().all(|e| e.subject_user_id == Some(ann)));
    // The user filter matches actors too.
    let by_admin = query(AuditQuery {
        user_id: Some(admin),
        ..AuditQuery::default()
    })
    .await
    .unwrap();
    assert_eq!(by_admin.len(), 5);
    let plan_changes = query(AuditQuery {
        user_id: Some(ann),
        kind: Some(AuditKind::PlanChanged),
        ..AuditQuery::default()
    })
    .await
    .unwrap();
    assert_eq!(plan_changes.len(), 9);
    assert!(plan_changes
        .iter()
        .all(|e| e.kind == AuditKind::PlanChanged));

    // Time range: [from, until).
    let window = query(AuditQuery {
        from: Some(t0 + TimeDelta::minutes(2)),
        until: Some(t0 + TimeDelta::minutes(4)),
        ..AuditQuery::default()
    })
    .await
    .unwrap();
    let is: Vec<i64> = window
        .iter()
        .map(|e| e.detail["i"].as_i64().unwrap())
        .collect();
    assert_eq!(is, vec![7, 6, 5, 4]);
    let none = query(AuditQuery {
        kind: Some(AuditKind::RefreshTokenReused),
        ..AuditQuery::default()
    })
    .await
    .unwrap();
    assert!(none.is_empty());
    let last_page = query(AuditQuery {
        user_id: Some(bob),
        page: Page::new(5, 5),
        ..AuditQuery::default()
    })
    .await
    .unwrap();
    assert_eq!(last_page.len(), 3);
    assert_eq!(last_page[2].detail["i"], 1);
}

trait TruncMicros {
    fn trunc_subsecs_6(self) -> Self;
}

impl TruncMicros for chrono::DateTime<Utc> {
    fn trunc_subsecs_6(self) -> Self {
        chrono::SubsecRound::trunc_subsecs(self, 6)
    }
}

/// Logs in as `email` with each of `passwords` at once; the results in that order.
async fn at_once(
    ctx: &Ctx,
    email: &str,
    passwords: Vec<String>,
) -> Vec<Result<auth::Account, AuthError>> {
    let tasks: Vec<_> = passwords
        .into_iter()
        .map(|password| {
            let store = ctx.store.clone();
            let email = email.to_owned();
            tokio::spawn(async move {
                store
                    .authenticate_password(&email, pw(&password), None, None)
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Whether the store checked the password and found it wrong (rather than refusing
/// the attempt without checking).
fn checked_wrong(result: &Result<auth::Account, AuthError>) -> bool {
    matches!(
        result,
        Err(AuthError::InvalidCredentials(
            CredentialRejection::WrongPassword
        ))
    )
}

fn refused_unchecked(result: &Result<auth::Account, AuthError>) -> bool {
    matches!(
        result,
        Err(AuthError::InvalidCredentials(
            CredentialRejection::TooManyAttempts | CredentialRejection::Locked { .. }
        ))
    )
}

pub async fn concurrent_guesses_get_at_most_the_allowed_checks(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "flood@example.com").await;
    let results = at_once(&ctx, "flood@example.com", vec!["wrong guess".into(); 20]).await;
    // The suite allows 3 failures: only 3 of the 20 guesses got a verdict, however
    // they interleaved; the rest were refused before their password was looked at.
    let checked = results.iter().filter(|r| checked_wrong(r)).count();
    assert_eq!(checked, 3, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| checked_wrong(r) || refused_unchecked(r)),
        "{results:?}"
    );
    // Every refusal reads the same to the client.
    assert!(results
        .iter()
        .all(|r| r.as_ref().unwrap_err().to_string() == "invalid email or password"));
    let failed = audit(&ctx, user.id, AuditKind::LoginFailed).await;
    assert_eq!(failed.len(), 20);
    assert_eq!(
        failed
            .iter()
            .filter(|e| e.detail["reason"] == "wrong_password")
            .count(),
        3
    );
    assert_eq!(
        audit(&ctx, user.id, AuditKind::AccountLocked).await.len(),
        1
    );
    let until = ctx.now().trunc_subsecs_6() + TimeDelta::minutes(15);
    let account = store.account(user.id).await.unwrap();
    assert_eq!(account.locked_until, Some(until));
    assert_eq!(account.failed_logins, 0);
    // Locked: the right password is refused too.
    assert_eq!(
        credentials(
            store
                .authenticate_password("flood@example.com", pw(PASSWORD), None, None)
                .await
        ),
        CredentialRejection::Locked { until }
    );
    ctx.clock.advance(TimeDelta::minutes(15));
    store
        .authenticate_password("flood@example.com", pw(PASSWORD), None, None)
        .await
        .unwrap();
}

pub async fn a_right_password_among_concurrent_guesses_adds_no_tries(ctx: Ctx) {
    let store = &ctx.store;
    for round in 0..4 {
        let email = format!("race{round}@example.com");
        let user = registered(&ctx, &email).await;
        let mut passwords = vec!["wrong guess".to_owned(); 20];
        let right_at = round * 6;
        passwords.insert(right_at, PASSWORD.to_owned());
        let mut results = at_once(&ctx, &email, passwords).await;
        let right = results.remove(right_at);
        let checked = results.iter().filter(|r| checked_wrong(r)).count();
        assert!(
            results
                .iter()
                .all(|r| checked_wrong(r) || refused_unchecked(r)),
            "{results:?}"
        );
        match right {
            // It was one of the 3 attempts let through; its success cleared the count,
            // which gives at most 3 more.
            Ok(_) => assert!(checked <= 2 + 3, "round {round}: {checked} checked"),
            // Refused unchecked: only the 3 allowed attempts got a verdict.
            Err(e) => {
                assert!(refused_unchecked(&Err(e)), "round {round}");
                assert_eq!(checked, 3, "round {round}");
            }
        }
        // Whatever the interleaving, the guesses ended in a lock, which the right
        // password does not get through.
        let account = store.account(user.id).await.unwrap();
        assert!(
            account.is_locked_at(ctx.now()),
            "round {round}: {account:?}"
        );
        assert!(matches!(
            credentials(
                store
                    .authenticate_password(&email, pw(PASSWORD), None, None)
                    .await
            ),
            CredentialRejection::Locked { .. }
        ));
    }
}

/// A registered user with TOTP confirmed at the clock's current time; its secret.
async fn with_totp(ctx: &Ctx, email: &str) -> (auth::User, Vec<u8>) {
    let user = registered(ctx, email).await;
    let enrolment = ctx.store.enrol_totp(user.id).await.unwrap();
    let secret = totp::base32_decode(enrolment.secret_base32.expose()).unwrap();
    ctx.store
        .confirm_totp(user.id, &totp::code_at(&secret, ctx.now().timestamp()))
        .await
        .unwrap();
    (user, secret)
}

pub async fn totp_accounts_keep_failures_until_the_second_factor(ctx: Ctx) {
    let store = &ctx.store;
    let (user, secret) = with_totp(&ctx, "second@example.com").await;
    let login = |password: &'static str, factor: Option<SecondFactor>| {
        store.authenticate_password("second@example.com", pw(password), factor, None)
    };
    let failures = || async { store.account(user.id).await.unwrap().failed_logins };
    // Codes of the next 30-second step (the one at enrolment is used up).
    let fresh_code = || {
        ctx.clock.advance(TimeDelta::seconds(30));
        Some(SecondFactor::Totp(totp::code_at(
            &secret,
            ctx.now().timestamp(),
        )))
    };
    login("wrong", None).await.unwrap_err();
    login("wrong", None).await.unwrap_err();
    // The right password alone is asked for the code: neither counted nor cleared.
    assert!(matches!(
        login(PASSWORD, None).await,
        Err(AuthError::SecondFactorRequired)
    ));
    assert_eq!(failures().await, 2);
    // A wrong code is the third failure: locked, even for the right password and code.
    assert!(matches!(
        login(PASSWORD, Some(SecondFactor::Totp("000000".into()))).await,
        Err(AuthError::InvalidSecondFactor)
    ));
    let events = audit(&ctx, user.id, AuditKind::LoginFailed).await;
    assert_eq!(events[0].detail["reason"], "wrong_second_factor");
    assert_eq!(events[0].detail["failures"], 3);
    assert_eq!(
        audit(&ctx, user.id, AuditKind::AccountLocked).await.len(),
        1
    );
    assert!(matches!(
        credentials(login(PASSWORD, fresh_code()).await),
        CredentialRejection::Locked { .. }
    ));
    // After the lock, one failure, then a full login clears it.
    ctx.clock.advance(TimeDelta::minutes(15));
    login("wrong", None).await.unwrap_err();
    assert_eq!(failures().await, 1);
    let account = login(PASSWORD, fresh_code()).await.unwrap();
    assert_eq!(account.failed_logins, 0);
    assert_eq!(failures().await, 0);
    // A recovery code works once; used again it counts as a wrong code.
    let codes = store.generate_recovery_codes(user.id).await.unwrap();
    let recovery = || Some(SecondFactor::RecoveryCode(codes[0].expose().clone()));
    login(PASSWORD, recovery()).await.unwrap();
    assert!(matches!(
        login(PASSWORD, recovery()).await,
        Err(AuthError::InvalidSecondFactor)
    ));
    assert_eq!(failures().await, 1);
    // A code given for an account without TOTP is ignored.
    registered(&ctx, "plain@example.com").await;
    store
        .authenticate_password(
            "plain@example.com",
            pw(PASSWORD),
            Some(SecondFactor::Totp("000000".into())),
            None,
        )
        .await
        .unwrap();
}

/// Knowing the password opens no more code guesses than the failure window allows,
/// however many are sent at once: each holds its attempt until its code is checked.
pub async fn concurrent_code_guesses_get_at_most_the_allowed_checks(ctx: Ctx) {
    let store = &ctx.store;
    let (user, secret) = with_totp(&ctx, "codes@example.com").await;
    // Twenty codes that are surely wrong: none valid anywhere near now.
    let now = ctx.now().timestamp();
    let valid: Vec<String> = (-4..=4)
        .map(|step| totp::code_at(&secret, now + step * 30))
        .collect();
    let guesses: Vec<String> = (100_000..)
        .map(|n: u32| n.to_string())
        .filter(|code| !valid.contains(code))
        .take(20)
        .collect();
    let tasks: Vec<_> = guesses
        .into_iter()
        .map(|code| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .authenticate_password(
                        "codes@example.com",
                        pw(PASSWORD),
                        Some(SecondFactor::Totp(code)),
                        None,
                    )
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    // The suite allows 3 failures: only 3 codes were checked, however the requests
    // interleaved; the rest were refused before their password was looked at.
    let checked = results
        .iter()
        .filter(|r| matches!(r, Err(AuthError::InvalidSecondFactor)))
        .count();
    assert_eq!(checked, 3, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(AuthError::InvalidSecondFactor)) || refused_unchecked(r)),
        "{results:?}"
    );
    assert!(store
        .account(user.id)
        .await
        .unwrap()
        .is_locked_at(ctx.now()));
}

pub async fn unverified_emails_cannot_log_in_until_verified(ctx: Ctx) {
    let store = &ctx.store;
    let reg = store
        .register_user(NewUser::new("unverified@example.com"), pw(PASSWORD), None)
        .await
        .unwrap();
    let login = |password: &'static str| {
        store.authenticate_password("unverified@example.com", pw(password), None, None)
    };
    // A wrong password is refused like any other.
    assert_eq!(
        credentials(login("wrong").await),
        CredentialRejection::WrongPassword
    );
    // The right one is refused with its own error: only who knows the password
    // learns the email is unverified.
    let refused = login(PASSWORD).await;
    assert!(
        matches!(refused, Err(AuthError::EmailNotVerified)),
        "{refused:?}"
    );
    // It did not count as a failure, nor clear the earlier one.
    assert_eq!(store.account(reg.user.id).await.unwrap().failed_logins, 1);
    let failed = audit(&ctx, reg.user.id, AuditKind::LoginFailed).await;
    assert_eq!(failed[0].detail["reason"], "email_not_verified");

    store
        .verify_email(reg.verification.token.expose())
        .await
        .unwrap();
    let account = login(PASSWORD).await.unwrap();
    assert!(account.email_verified_at.is_some());
    assert_eq!(account.failed_logins, 0);

    // An operator vouches for an address instead (users they create).
    let admin = registered(&ctx, "operator@example.com").await;
    let vouched = store
        .register_user(NewUser::new("vouched@example.com"), pw(PASSWORD), None)
        .await
        .unwrap();
    store
        .mark_email_verified(vouched.user.id, Some(admin.id))
        .await
        .unwrap();
    let verified_at = store
        .account(vouched.user.id)
        .await
        .unwrap()
        .email_verified_at;
    assert_eq!(verified_at, Some(ctx.now().trunc_subsecs_6()));
    store
        .authenticate_password("vouched@example.com", pw(PASSWORD), None, None)
        .await
        .unwrap();
    // Idempotent: the first time stays, audited once with the operator.
    ctx.clock.advance(TimeDelta::minutes(1));
    store
        .mark_email_verified(vouched.user.id, Some(admin.id))
        .await
        .unwrap();
    assert_eq!(
        store
            .account(vouched.user.id)
            .await
            .unwrap()
            .email_verified_at,
        verified_at
    );
    let events = audit(&ctx, vouched.user.id, AuditKind::EmailVerified).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor_user_id, Some(admin.id));
    assert_eq!(events[0].detail["by"], "operator");
    assert!(matches!(
        store.mark_email_verified(Uuid::new_v4(), None).await,
        Err(AuthError::NotFound)
    ));
}

fn one_time(result: Result<auth::User, AuthError>) -> OneTimeRejection {
    match result {
        Err(AuthError::InvalidOneTimeToken(why)) => why,
        other => panic!("expected a refused token, got {other:?}"),
    }
}

pub async fn password_tokens_set_a_password_once(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "forgot@example.com").await;
    let grant = store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    let login = |password: &'static str| {
        store.authenticate_password("forgot@example.com", pw(password), None, None)
    };
    let token =
        |purpose| async move { store.create_password_token(user.id, purpose).await.unwrap() };

    // One unused token a minute at most: a mailbox cannot be flooded.
    let first = token(PasswordTokenPurpose::Reset).await.unwrap();
    assert!(first.token.expose().starts_with("spw_"));
    assert_eq!(
        first.expires_at,
        ctx.now().trunc_subsecs_6() + TimeDelta::hours(1)
    );
    assert!(token(PasswordTokenPurpose::Reset).await.is_none());
    ctx.clock.advance(TimeDelta::seconds(61));
    let second = token(PasswordTokenPurpose::Reset).await.unwrap();

    // A password that breaks the rules is refused and the token kept.
    assert!(matches!(
        store
            .reset_password(first.token.expose(), pw("short"))
            .await,
        Err(AuthError::InvalidInput {
            field: "password",
            ..
        })
    ));
    let changed = store
        .reset_password(first.token.expose(), pw("a brand new password"))
        .await
        .unwrap();
    assert_eq!(changed.id, user.id);
    login("a brand new password").await.unwrap();
    assert!(login(PASSWORD).await.is_err());
    // Used once; the user's other token is void too; every login session ended.
    assert_eq!(
        one_time(
            store
                .reset_password(first.token.expose(), pw("yet another one"))
                .await
        ),
        OneTimeRejection::Used
    );
    assert_eq!(
        one_time(
            store
                .reset_password(second.token.expose(), pw("yet another one"))
                .await
        ),
        OneTimeRejection::Used
    );
    let session = store
        .login_session(user.id, grant.session.id)
        .await
        .unwrap();
    assert_eq!(session.revoke_reason, Some(RevokeReason::PasswordChanged));
    let events = audit(&ctx, user.id, AuditKind::PasswordChanged).await;
    assert_eq!(events[0].detail["by"], "password_token");

    // Reset tokens expire after an hour; unknown and malformed ones are refused alike.
    ctx.clock.advance(TimeDelta::seconds(61));
    let late = token(PasswordTokenPurpose::Reset).await.unwrap();
    ctx.clock.advance(TimeDelta::minutes(61));
    assert_eq!(
        one_time(
            store
                .reset_password(late.token.expose(), pw("yet another one"))
                .await
        ),
        OneTimeRejection::Expired
    );
    let unknown = format!("spw_{}", "A".repeat(43));
    for bad in [unknown.as_str(), "spw_short", "", "' OR 1=1 --"] {
        assert_eq!(
            one_time(store.reset_password(bad, pw("yet another one")).await),
            OneTimeRejection::Unknown,
            "{bad}"
        );
    }

    // An invited user (no password, email unverified) sets one with an invitation,
    // which lasts as long as a verification link, and can then log in.
    let invited = store
        .create_user(NewUser::new("invited@example.com"))
        .await
        .unwrap();
    let invitation = store
        .create_password_token(invited.id, PasswordTokenPurpose::Invitation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        invitation.expires_at,
        ctx.now().trunc_subsecs_6() + TimeDelta::hours(24)
    );
    ctx.clock.advance(TimeDelta::hours(23));
    store
        .reset_password(invitation.token.expose(), pw("my first password"))
        .await
        .unwrap();
    let account = store
        .authenticate_password("invited@example.com", pw("my first password"), None, None)
        .await
        .unwrap();
    assert!(account.email_verified_at.is_some());
    assert!(matches!(
        store
            .create_password_token(Uuid::new_v4(), PasswordTokenPurpose::Reset)
            .await,
        Err(AuthError::NotFound)
    ));
}

pub async fn changing_the_password_needs_the_current_one_and_ends_other_sessions(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "change@example.com").await;
    let mine = store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    let other = store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    let change = |current: &'static str, new: &'static str| {
        store.change_password(user.id, pw(current), pw(new), Some(mine.session.id), None)
    };
    // A weak new password is refused before anything is counted.
    assert!(matches!(
        change(PASSWORD, "short").await,
        Err(AuthError::InvalidInput {
            field: "password",
            ..
        })
    ));
    assert_eq!(store.account(user.id).await.unwrap().failed_logins, 0);
    // A wrong current password counts like a failed login.
    assert_eq!(
        credentials(change("wrong", "a new long password").await),
        CredentialRejection::WrongPassword
    );
    assert_eq!(store.account(user.id).await.unwrap().failed_logins, 1);
    change(PASSWORD, "a new long password").await.unwrap();
    assert_eq!(store.account(user.id).await.unwrap().failed_logins, 0);
    store
        .authenticate_password("change@example.com", pw("a new long password"), None, None)
        .await
        .unwrap();
    // The caller's session stays; the other one ended.
    let live: Vec<Uuid> = store
        .login_sessions(user.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .filter(|id| *id == mine.session.id || *id == other.session.id)
        .collect();
    assert_eq!(live, [mine.session.id]);
    let ended = store
        .login_session(user.id, other.session.id)
        .await
        .unwrap();
    assert_eq!(ended.revoke_reason, Some(RevokeReason::PasswordChanged));
    let events = audit(&ctx, user.id, AuditKind::PasswordChanged).await;
    assert_eq!(events[0].detail["by"], "user");
    // Guessing the current password locks like guessing at login.
    for _ in 0..3 {
        change("wrong", "another long password").await.unwrap_err();
    }
    assert!(store
        .account(user.id)
        .await
        .unwrap()
        .is_locked_at(ctx.now()));
    assert!(matches!(
        credentials(change("a new long password", "another long password").await),
        CredentialRejection::Locked { .. }
    ));
}

/// A login checked against a password that changed before its session was created (a
/// reset or change that ran while it was being checked) gets no session.
pub async fn logins_checked_against_a_changed_password_get_no_session(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "racing@example.com").await;
    let checked = store
        .authenticate_password("racing@example.com", pw(PASSWORD), None, None)
        .await
        .unwrap();
    let mine = store
        .create_login_session(user.id, NewLoginSession::default())
        .await
        .unwrap();
    store
        .change_password(
            user.id,
            pw(PASSWORD),
            pw("a new long password"),
            Some(mine.session.id),
            None,
        )
        .await
        .unwrap();
    let stale = NewLoginSession {
        password_version: Some(checked.password_version),
        ..NewLoginSession::default()
    };
    assert_eq!(
        credentials(store.create_login_session(user.id, stale).await),
        CredentialRejection::WrongPassword
    );
    let live = store.login_sessions(user.id).await.unwrap();
    assert_eq!(
        live.iter().map(|s| s.id).collect::<Vec<_>>(),
        [mine.session.id],
        "the refused login left a session behind"
    );
    // A login checked against the new password gets its session.
    let fresh = store
        .authenticate_password("racing@example.com", pw("a new long password"), None, None)
        .await
        .unwrap();
    assert_eq!(fresh.password_version, checked.password_version + 1);
    let current = NewLoginSession {
        password_version: Some(fresh.password_version),
        ..NewLoginSession::default()
    };
    store.create_login_session(user.id, current).await.unwrap();
}

/// Requests for a reset sent at once issue one token, not one each.
pub async fn concurrent_reset_requests_issue_one_token(ctx: Ctx) {
    let user = registered(&ctx, "flooded@example.com").await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let store = ctx.store.clone();
            tokio::spawn(async move {
                store
                    .create_password_token(user.id, PasswordTokenPurpose::Reset)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut issued = 0;
    for task in tasks {
        issued += usize::from(task.await.unwrap().is_some());
    }
    assert_eq!(issued, 1);
}

pub async fn api_keys_rotate_once_even_concurrently(ctx: Ctx) {
    let store = &ctx.store;
    let user = registered(&ctx, "rotor@example.com").await;
    let mut new = auth::NewApiKey::new("ci");
    new.expires_at = Some(ctx.now() + TimeDelta::days(30));
    let original = store.create_api_key(user.id, new).await.unwrap();
    let grace = ctx.now() + TimeDelta::hours(24);

    // Eight rotations at once: exactly one wins, the others are conflicts.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let key_id = original.key.id;
            tokio::spawn(async move { store.rotate_api_key(user.id, key_id, grace).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let (won, lost): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.is_ok());
    assert_eq!(won.len(), 1, "{lost:?}");
    for refused in &lost {
        match refused {
            Err(AuthError::Conflict(message)) => {
                assert!(message.contains("already rotated"), "{message}");
                assert!(!message.contains(&original.key.prefix), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    let Some(Ok((old, replacement))) = won.into_iter().next() else {
        unreachable!()
    };
    assert_eq!(old.id, original.key.id);
    assert_eq!(old.expires_at.unwrap().timestamp(), grace.timestamp());
    assert_eq!(replacement.key.name, "ci");
    assert_eq!(
        replacement.key.expires_at, original.key.expires_at,
        "the replacement keeps the old key's end"
    );
    // Two live keys: the old one (until the grace ends) and its one replacement.
    let keys = store.list_api_keys(user.id).await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in [original.secret.expose(), replacement.secret.expose()] {
        store.authenticate_api_key(key).await.unwrap();
    }

    // Again, one at a time: still refused; the replacement rotates normally.
    assert!(matches!(
        store.rotate_api_key(user.id, original.key.id, grace).await,
        Err(AuthError::Conflict(_))
    ));
    let (_, third) = store
        .rotate_api_key(user.id, replacement.key.id, grace)
        .await
        .unwrap();
    assert_eq!(store.list_api_keys(user.id).await.unwrap().len(), 3);

    // Revoked, expired, someone else's or unknown keys are not rotated.
    store.revoke_api_key(user.id, third.key.id).await.unwrap();
    assert!(matches!(
        store.rotate_api_key(user.id, third.key.id, grace).await,
        Err(AuthError::InvalidInput { field: "key", .. })
    ));
    let mut short = auth::NewApiKey::new("short");
    short.expires_at = Some(ctx.now() + TimeDelta::hours(1));
    let short = store.create_api_key(user.id, short).await.unwrap();
    ctx.clock.advance(TimeDelta::hours(2));
    assert!(matches!(
        store.rotate_api_key(user.id, short.key.id, grace).await,
        Err(AuthError::InvalidInput { field: "key", .. })
    ));
    let other = registered(&ctx, "other-rotor@example.com").await;
    let theirs = store
        .create_api_key(other.id, auth::NewApiKey::new("theirs"))
        .await
        .unwrap();
    for (owner, key) in [(user.id, theirs.key.id), (user.id, Uuid::new_v4())] {
        assert!(matches!(
            store.rotate_api_key(owner, key, grace).await,
            Err(AuthError::NotFound)
        ));
    }
    assert_eq!(store.list_api_keys(other.id).await.unwrap().len(), 1);
}
