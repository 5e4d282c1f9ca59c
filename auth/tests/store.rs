//! One suite, two backends: every test in `suite` runs against a fresh SQLite file
//! and against a fresh Postgres database (`TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Postgres being unreachable is a
//! failure, not a skip.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use auth::{
    connect, AuthError, Backend, Database, KeyRejection, ManualClock, NewApiKey, NewUser, Page,
    Plan, Role, Secret, StoreOptions, UserStatus, UserStore,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PEPPER: &[u8] = b"test pepper: 32 bytes or more, never used in production";

/// What each suite test gets: a migrated store, its clock and how to reach it again.
pub struct Ctx {
    store: Database,
    clock: Arc<ManualClock>,
    url: String,
}

impl Ctx {
    fn now(&self) -> DateTime<Utc> {
        auth::Clock::now(&*self.clock)
    }

    async fn reconnect(&self, pepper: &[u8]) -> Result<Database, AuthError> {
        connect(&self.url, options(Arc::clone(&self.clock), pepper)).await
    }
}

fn start_time() -> DateTime<Utc> {
    // Sub-microsecond digits on purpose: stores keep microseconds.
    Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap() + TimeDelta::nanoseconds(123_456_789)
}

fn options(clock: Arc<ManualClock>, pepper: &[u8]) -> StoreOptions {
    StoreOptions::new(Secret::new(pepper.to_vec()))
        .clock(clock)
        .max_connections(4)
        .last_used_interval(Duration::from_secs(60))
        .accounts(suite::accounts::policy())
        .keyring(suite::accounts::keyring())
}

async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet, like ./data on a first start.
    let url = format!("sqlite:{}", dir.path().join("data/simutrador.db").display());
    let clock = Arc::new(ManualClock::new(start_time()));
    let store = connect(&url, options(Arc::clone(&clock), PEPPER))
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    test(Ctx {
        store: store.clone(),
        clock,
        url,
    })
    .await;
    store.close().await;
}

fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin_url = admin_url();
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("Postgres must be reachable at TEST_POSTGRES_URL: {e}"));
    // A database per test: parallel tests share nothing, not even the migrations table.
    let database = format!("test_auth_{}", Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {database}").as_str())
        .await
        .unwrap();
    let url = with_database(&admin_url, &database);
    let clock = Arc::new(ManualClock::new(start_time()));
    let store = connect(&url, options(Arc::clone(&clock), PEPPER)).await;
    let outcome = match store {
        Ok(store) => {
            assert_eq!(store.backend(), Backend::Postgres);
            let ctx = Ctx {
                store: store.clone(),
                clock,
                url,
            };
            // Run the test as a task so a panic comes back as a value and the
            // database is dropped either way.
            let outcome = tokio::spawn(test(ctx)).await;
            store.close().await;
            outcome.map_err(|e| e.into_panic())
        }
        Err(e) => Err(Box::new(format!("connect failed: {e:?}")) as Box<dyn std::any::Any + Send>),
    };
    admin
        .execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str())
        .await
        .unwrap();
    admin.close().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::run_sqlite(crate::suite::$name).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::run_postgres(crate::suite::$name).await;
                }
            )*
        }
    };
}

store_suite!(
    create_and_read_back_user,
    emails_are_normalised_and_unique,
    invalid_emails_are_rejected,
    missing_rows_are_not_found,
    users_list_in_creation_order_and_count,
    plan_and_status_changes_persist,
    api_key_happy_path,
    wrong_secret_with_valid_prefix_is_refused,
    revoked_keys_are_refused_and_scoped_to_their_owner,
    expired_keys_are_refused,
    inactive_users_are_refused,
    last_used_is_written_at_most_once_per_interval,
    sql_injection_strings_are_stored_verbatim,
    only_a_keyed_hash_is_stored,
    data_survives_reconnect_and_pepper_matters,
    concurrent_authentications_all_succeed,
    database_errors_do_not_leak_details,
    results_round_trip_and_stay_with_their_owner,
    results_list_newest_first_in_pages,
    results_can_be_deleted,
    sql_injection_strings_in_session_ids_are_plain_ids,
    results_that_no_backend_can_hold_are_refused_alike,
    registration_verification_and_password_login,
    unknown_emails_and_wrong_passwords_are_refused_alike,
    failed_logins_lock_and_unlock,
    verification_tokens_are_single_use_and_expire,
    refresh_tokens_rotate_and_reuse_revokes_the_session,
    a_sixth_login_session_revokes_the_oldest,
    login_sessions_end_after_twelve_hours,
    login_sessions_can_be_revoked_one_or_all,
    totp_enrolment_confirmation_and_replay,
    totp_secrets_are_sealed_at_rest_and_disable_resets,
    recovery_codes_are_single_use,
    tokens_are_stored_only_as_hashes,
    sql_injection_strings_in_account_fields_are_stored_verbatim,
    audit_log_filters_and_pages,
    admin_user_search_filters_pages_and_counts,
    admin_audit_counts_and_ip_filter,
    admin_finds_any_key_by_id,
    admin_usage_per_user_and_plan,
    concurrent_guesses_get_at_most_the_allowed_checks,
    a_right_password_among_concurrent_guesses_adds_no_tries,
    totp_accounts_keep_failures_until_the_second_factor,
    concurrent_code_guesses_get_at_most_the_allowed_checks,
    unverified_emails_cannot_log_in_until_verified,
    password_tokens_set_a_password_once,
    changing_the_password_needs_the_current_one_and_ends_other_sessions,
    logins_checked_against_a_changed_password_get_no_session,
    concurrent_reset_requests_issue_one_token,
    api_keys_rotate_once_even_concurrently,
);

mod suite {
    use super::*;

    pub mod accounts;
    mod admin;
    mod results;
    pub use accounts::*;
    pub use admin::*;
    pub use results::*;

    fn invalid_key(result: Result<auth::AuthenticatedKey, AuthError>) -> KeyRejection {
        match result {
            Err(AuthError::InvalidKey(reason)) => reason,
            other => panic!("expected InvalidKey, got {other:?}"),
        }
    }

    pub async fn create_and_read_back_user(ctx: Ctx) {
        let store = &ctx.store;
        let created = store
            .create_user(NewUser::new("trader@example.com").plan(Plan::Professional))
            .await
            .unwrap();
        assert_eq!(created.email, "trader@example.com");
        assert_eq!(created.plan, Plan::Professional);
        assert_eq!(created.role, Role::User);
        assert_eq!(created.status, UserStatus::Active);
        assert_eq!(created.created_at, created.updated_at);
        assert_eq!(created.created_at, ctx.now() - TimeDelta::nanoseconds(789));

        assert_eq!(store.user_by_id(created.id).await.unwrap(), created);
        assert_eq!(
            store.user_by_email("trader@example.com").await.unwrap(),
            created
        );
        let admin = store
            .create_user(NewUser::new("ops@example.com").role(Role::Admin))
            .await
            .unwrap();
        assert_eq!(store.user_by_id(admin.id).await.unwrap().role, Role::Admin);
        assert_eq!(store.count_users().await.unwrap(), 2);
        store.ping().await.unwrap();
    }

    pub async fn emails_are_normalised_and_unique(ctx: Ctx) {
        let store = &ctx.store;
        let alice = store
            .create_user(NewUser::new("  Alice.Smith@Example.COM \n"))
            .await
            .unwrap();
        assert_eq!(alice.email, "alice.smith@example.com");
        assert_eq!(
            store
                .user_by_email(" ALICE.smith@example.com")
                .await
                .unwrap()
                .id,
            alice.id
        );
        for duplicate in [
            "alice.smith@example.com",
            "ALICE.SMITH@EXAMPLE.COM",
            "\talice.smith@example.com",
        ] {
            let err = store
                .create_user(NewUser::new(duplicate))
                .await
                .unwrap_err();
            assert!(
                matches!(err, AuthError::Conflict(_)),
                "{duplicate:?}: {err:?}"
            );
            assert!(err.to_string().contains("already exists"));
        }
        assert_eq!(store.count_users().await.unwrap(), 1);
        // A different address still works after the conflicts.
        store
            .create_user(NewUser::new("alice.smith@example.org"))
            .await
            .unwrap();
        assert_eq!(store.count_users().await.unwrap(), 2);
    }

    pub async fn invalid_emails_are_rejected(ctx: Ctx) {
        for bad in ["", "   ", "not-an-address", "@example.com", "a@"] {
            let err = ctx.store.create_user(NewUser::new(bad)).await.unwrap_err();
            assert!(
                matches!(err, AuthError::InvalidInput { field: "email", .. }),
                "{bad:?}: {err:?}"
            );
        }
        assert_eq!(ctx.store.count_users().await.unwrap(), 0);
        assert!(matches!(
            ctx.store.user_by_email("not-an-address").await,
            Err(AuthError::NotFound)
        ));
    }

    pub async fn missing_rows_are_not_found(ctx: Ctx) {
        let store = &ctx.store;
        let nobody = Uuid::new_v4();
        assert!(matches!(
            store.user_by_id(nobody).await,
            Err(AuthError::NotFound)
        ));
        assert!(matches!(
            store.user_by_email("nobody@example.com").await,
            Err(AuthError::NotFound)
        ));
        assert!(matches!(
            store.set_plan(nobody, Plan::Enterprise).await,
            Err(AuthError::NotFound)
        ));
        assert!(matches!(
            store.set_status(nobody, UserStatus::Disabled).await,
            Err(AuthError::NotFound)
        ));
        assert!(matches!(
            store.create_api_key(nobody, NewApiKey::new("ci")).await,
            Err(AuthError::NotFound)
        ));
        assert!(store.list_api_keys(nobody).await.unwrap().is_empty());
        assert!(matches!(
            store.revoke_api_key(nobody, Uuid::new_v4()).await,
            Err(AuthError::NotFound)
        ));
    }

    pub async fn users_list_in_creation_order_and_count(ctx: Ctx) {
        let store = &ctx.store;
        assert_eq!(store.count_users().await.unwrap(), 0);
        assert!(store.list_users(Page::default()).await.unwrap().is_empty());
        let mut ids = Vec::new();
        for i in 0..5 {
            // Crossing a second boundary and a ten-second boundary checks that stored
            // timestamps order as times, not as strings of varying width.
            ctx.clock.advance(TimeDelta::milliseconds(900 + 1000 * i));
            let user = store
                .create_user(NewUser::new(format!("user{i}@example.com")))
                .await
                .unwrap();
            ids.push(user.id);
        }
        assert_eq!(store.count_users().await.unwrap(), 5);
        let first: Vec<_> = store
            .list_users(Page::new(0, 3))
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(first, ids[..3]);
        let rest: Vec<_> = store
            .list_users(Page::new(3, 100))
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.id)
            .collect();
        assert_eq!(rest, ids[3..]);
        assert!(store.list_users(Page::new(5, 10)).await.unwrap().is_empty());
        assert!(store.list_users(Page::new(0, 0)).await.unwrap().is_empty());
    }

    pub async fn plan_and_status_changes_persist(ctx: Ctx) {
        let store = &ctx.store;
        let user = store
            .create_user(NewUser::new("upgrade@example.com"))
            .await
            .unwrap();
        ctx.clock.advance(TimeDelta::minutes(5));
        let upgraded = store.set_plan(user.id, Plan::Enterprise).await.unwrap();
        assert_eq!(upgraded.plan, Plan::Enterprise);
        assert_eq!(upgraded.created_at, user.created_at);
        assert_eq!(upgraded.updated_at, user.created_at + TimeDelta::minutes(5));
        assert_eq!(store.user_by_id(user.id).await.unwrap(), upgraded);

        let locked = store.set_status(user.id, UserStatus::Locked).await.unwrap();
        assert_eq!(locked.status, UserStatus::Locked);
        assert_eq!(locked.plan, Plan::Enterprise);
        assert_eq!(
            store
                .user_by_email("upgrade@example.com")
                .await
                .unwrap()
                .status,
            UserStatus::Locked
        );
    }

    pub async fn api_key_happy_path(ctx: Ctx) {
        let store = &ctx.store;
        let user = store
            .create_user(NewUser::new("keys@example.com"))
            .await
            .unwrap();
        let created = store
            .create_api_key(user.id, NewApiKey::new("laptop"))
            .await
            .unwrap();
        let secret = created.secret.expose().clone();
        assert!(secret.starts_with(&format!("stk_{}_", created.key.prefix)));
        assert_eq!(secret.len(), auth::api_key::KEY_LEN);
        assert!(!format!("{created:?}").contains(&secret[13..]));
        assert_eq!(created.key.user_id, user.id);
        assert_eq!(created.key.name, "laptop");
        assert_eq!(created.key.last_used_at, None);
        assert_eq!(created.key.revoked_at, None);

        let listed = store.list_api_keys(user.id).await.unwrap();
        assert_eq!(listed, vec![created.key.clone()]);

        ctx.clock.advance(TimeDelta::seconds(3));
        let authed = store.authenticate_api_key(&secret).await.unwrap();
        assert_eq!(authed.user, user);
        assert_eq!(authed.key_id, created.key.id);
        let listed = store.list_api_keys(user.id).await.unwrap();
        assert_eq!(
            listed[0].last_used_at,
            Some(created.key.created_at + TimeDelta::seconds(3))
        );

        // A second key is independent and listed after the first.
        ctx.clock.advance(TimeDelta::seconds(1));
        let second = store
            .create_api_key(user.id, NewApiKey::new("ci"))
            .await
            .unwrap();
        assert_ne!(second.key.prefix, created.key.prefix);
        assert_eq!(
            store
                .authenticate_api_key(second.secret.expose())
                .await
                .unwrap()
                .key_id,
            second.key.id
        );
        let names: Vec<_> = store
            .list_api_keys(user.id)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.name)
            .collect();
        assert_eq!(names, ["laptop", "ci"]);
    }

    pub async fn wrong_secret_with_valid_prefix_is_refused(ctx: Ctx) {
        let store = &ctx.store;
        let user = store
            .create_user(NewUser::new("guess@example.com"))
            .await
            .unwrap();
        let created = store
            .create_api_key(user.id, NewApiKey::new("k"))
            .await
            .unwrap();
        let secret = created.secret.expose();

        let mut wrong = secret.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'a' { 'b' } else { 'a' });
        assert_eq!(
            invalid_key(store.authenticate_api_key(&wrong).await),
            KeyRejection::WrongSecret
        );

        let other_prefix = format!("stk_{}{}", "Z".repeat(8), &secret[12..]);
        assert_eq!(
            invalid_key(store.authenticate_api_key(&other_prefix).await),
            KeyRejection::UnknownPrefix
        );
        for malformed in [
            "",
            "stk_",
            &secret[..secret.len() - 1],
            &format!("{secret} "),
            "Bearer x",
        ] {
            assert_eq!(
                invalid_key(store.authenticate_api_key(malformed).await),
                KeyRejection::Malformed,
                "{malformed:?}"
            );
        }
        // Failed attempts do not count as use.
        assert_eq!(
            store.list_api_keys(user.id).await.unwrap()[0].last_used_at,
            None
        );
        // And the real key still works.
        store.authenticate_api_key(secret).await.unwrap();
    }

    pub async fn revoked_keys_are_refused_and_scoped_to_their_owner(ctx: Ctx) {
        let store = &ctx.store;
        let owner = store
            .create_user(NewUser::new("owner@example.com"))
            .await
            .unwrap();
        let other = store
            .create_user(NewUser::new("other@example.com"))
            .await
            .unwrap();
        let doomed = store
            .create_api_key(owner.id, NewApiKey::new("doomed"))
            .await
            .unwrap();
        let kept = store
            .create_api_key(owner.id, NewApiKey::new("kept"))
            .await
            .unwrap();

        assert!(matches!(
            store.revoke_api_key(other.id, doomed.key.id).await,
            Err(AuthError::NotFound)
        ));
        store
            .authenticate_api_key(doomed.secret.expose())
            .await
            .unwrap();

        ctx.clock.advance(TimeDelta::minutes(1));
        let revoked = store.revoke_api_key(owner.id, doomed.key.id).await.unwrap();
        let revoked_at = revoked.revoked_at.expect("revoked_at set");
        assert_eq!(revoked_at, doomed.key.created_at + TimeDelta::minutes(1));
        assert_eq!(
            invalid_key(store.authenticate_api_key(doomed.secret.expose()).await),
            KeyRejection::Revoked
        );

        // Revoking again keeps the first revocation time.
        ctx.clock.advance(TimeDelta::minutes(1));
        let again = store.revoke_api_key(owner.id, doomed.key.id).await.unwrap();
        assert_eq!(again.revoked_at, Some(revoked_at));

        assert_eq!(
            store
                .authenticate_api_key(kept.secret.expose())
                .await
                .unwrap()
                .key_id,
            kept.key.id
        );
        let keys = store.list_api_keys(owner.id).await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(store.list_api_keys(other.id).await.unwrap().is_empty());
    }

    pub async fn expired_keys_are_refused(ctx: Ctx) {
        let store = &ctx.store;
        let user = store
            .create_user(NewUser::new("expiry@example.com"))
            .await
            .unwrap();
        let expires_at = ctx.now() + TimeDelta::hours(1);
        let created = store
            .create_api_key(user.id, NewApiKey::new("1h").expires_at(expires_at))
            .await
            .unwrap();
        assert_eq!(
            created.key.expires_at,
            Some(expires_at - TimeDelta::nanoseconds(789))
        );
        assert_eq!(
            store.list_api_keys(user.id).await.unwrap()[0].expires_at,
            created.key.expires_at
        );

        ctx.clock.advance(TimeDelta::minutes(59));
        store
            .authenticate_api_key(created.secret.expose())
            .await
            .unwrap();
        ctx.clock.advance(TimeDelta::minutes(1));
        assert_eq!(
            invalid_key(store.authenticate_api_key(created.secret.expose()).await),
            KeyRejection::Expired
        );

        for past in [ctx.now(), ctx.now() - TimeDelta::days(1)] {
            assert!(matches!(
                store
                    .create_api_key(user.id, NewApiKey::new("past").expires_at(past))
                    .await,
                Err(AuthError::InvalidInput {
                    field: "expires_at",
                    ..
                })
            ));
        }
        for name in ["", "   ", &"x".repeat(101)] {
            assert!(matches!(
                store.create_api_key(user.id, NewApiKey::new(name)).await,
                Err(AuthError::InvalidInput { field: "name", .. })
            ));
        }
        assert_eq!(store.list_api_keys(user.id).await.unwrap().len(), 1);
    }

    pub async fn inactive_users_are_refused(ctx: Ctx) {
        let store = &ctx.store;
        let user = store
            .create_user(NewUser::new("status@example.com"))
            .await
            .unwrap();
        let created = store
            .create_api_key(user.id, NewApiKey::new("k"))
            .await
            .unwrap();
        let key = created.secret.expose();
        store.authenticate_api_key(key).await.unwrap();

        for status in [UserStatus::Disabled, UserStatus::Locked] {
            store.set_status(user.id, status).await.unwrap();
            match store.authenticate_api_key(key).await {
                Err(AuthError::AccountInactive(got)) => assert_eq!(got, status),
                other => panic!("expected AccountInactive({status:?}), got {other:?}"),
            }
        }
        // A wrong secret for an inactive user is still just an invalid key.
        let wrong = format!(
            "{}{}",
            &key[..key.len() - 1],
            if key.ends_with('a') { 'b' } else { 'a' }
        );
        assert_eq!(
            invalid_key(store.authenticate_api_key(&wrong).await),
            KeyRejection::WrongSecret
        );

        store.set_status(user.id, UserStatus::Active).await.unwrap();
        let authed = store.authenticate_api_key(key).await.unwrap();
        assert_eq!(authed.user.status, UserStatus::Active);
    }

    pub async fn last_used_is_written_at_most_once_per_interval(ctx: Ctx) {
        let store = &ctx.store;
        let user = store
            .create_user(NewUser::new("busy@example.com"))
            .await
            .unwrap();
        let created = store
            .create_api_key(user.id, NewApiKey::new("k"))
            .await
            .unwrap();
        let key = created.secret.expose();
        let user_id = user.id;
        let last_used =
            || async move { store.list_api_keys(user_id).await.unwrap()[0].last_used_at };
        let t0 = created.key.created_at;

        store.authenticate_api_key(key).await.unwrap();
        assert_eq!(last_used().await, Some(t0));

        ctx.clock.advance(TimeDelta::seconds(30));
        store.authenticate_api_key(key).await.unwrap();
        assert_eq!(last_used().await, Some(t0), "within the interval: no write");

        ctx.clock.advance(TimeDelta::seconds(31));
        store.authenticate_api_key(key).await.unwrap();
        assert_eq!(last_used().await, Some(t0 + TimeDelta::seconds(61)));

        // A clock that steps back never moves last_used_at backwards.
        ctx.clock.advance(TimeDelta::minutes(-10));
        store.authenticate_api_key(key).await.unwrap();
        assert_eq!(last_used().await, Some(t0 + TimeDelta::seconds(61)));
    }

    pub async fn sql_injection_strings_are_stored_verbatim(ctx: Ctx) {
        let store = &ctx.store;
        // Addresses keep the SQL-significant characters the address syntax allows
        // (quotes, dashes, `=`, `%`, `_`, `*`, `/`, `$`, `?`); the rest are refused
        // before any SQL runs (below).
        let emails = [
            "robert'--drop-table-users@example.com",
            "'or'1'='1@example.com",
            "x'/*comment*/@example.com",
            "$1?{name}@example.com",
            "o'neil%_wild@example.com",
        ];
        let names = [
            "'; DROP TABLE api_keys; --",
            "Robert'); DROP TABLE users;--",
            "\" OR 1=1 --",
            "$1 ? ?1 :name @p1",
            "名前 🗝️ \\0",
        ];
        let mut users = Vec::new();
        for (email, name) in emails.iter().zip(names) {
            let user = store.create_user(NewUser::new(*email)).await.unwrap();
            assert_eq!(user.email, *email);
            let key = store
                .create_api_key(user.id, NewApiKey::new(name))
                .await
                .unwrap();
            assert_eq!(key.key.name, name);
            users.push((user, key));
        }
        assert_eq!(store.count_users().await.unwrap(), emails.len() as u64);
        for ((user, key), (email, name)) in users.iter().zip(emails.iter().zip(names)) {
            assert_eq!(store.user_by_email(email).await.unwrap().id, user.id);
            let keys = store.list_api_keys(user.id).await.unwrap();
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].name, name);
            store
                .authenticate_api_key(key.secret.expose())
                .await
                .unwrap();
        }
        for refused in [
            "robert'); drop table users;--@example.com",
            "\"; delete from api_keys where ''='@example.com",
            "x@example.com' union select * from users --",
        ] {
            assert!(matches!(
                store.create_user(NewUser::new(refused)).await,
                Err(AuthError::InvalidInput { field: "email", .. })
            ));
        }
        assert_eq!(store.count_users().await.unwrap(), emails.len() as u64);
        // LIKE wildcards in a lookup match nothing but themselves.
        assert!(matches!(
            store.user_by_email("%@example.com").await,
            Err(AuthError::NotFound)
        ));
        assert!(matches!(
            store.user_by_email("' or '1'='1").await,
            Err(AuthError::InvalidInput { .. } | AuthError::NotFound)
        ));
    }

    pub async fn only_a_keyed_hash_is_stored(ctx: Ctx) {
        let store = &ctx.store;
        let user = store
            .create_user(NewUser::new("hash@example.com"))
            .await
            .unwrap();
        let created = store
            .create_api_key(user.id, NewApiKey::new("k"))
            .await
            .unwrap();
        let secret_part = &created.secret.expose()[13..];
        let sql = "SELECT name, prefix, key_hash FROM api_keys";
        let rows: Vec<(String, String, Vec<u8>)> = match &ctx.store {
            Database::Sqlite(s) => sqlx::query_as(sql).fetch_all(s.pool()).await.unwrap(),
            Database::Postgres(s) => sqlx::query_as(sql).fetch_all(s.pool()).await.unwrap(),
        };
        assert_eq!(rows.len(), 1);
        let (name, prefix, hash) = &rows[0];
        assert_eq!(name, "k");
        assert_eq!(prefix, &created.key.prefix);
        assert_eq!(hash.len(), 32);
        assert!(!String::from_utf8_lossy(hash).contains(secret_part));
        assert!(!hash
            .windows(secret_part.len())
            .any(|w| w == secret_part.as_bytes()));
    }

    pub async fn data_survives_reconnect_and_pepper_matters(ctx: Ctx) {
        let user = ctx
            .store
            .create_user(NewUser::new("durable@example.com"))
            .await
            .unwrap();
        let created = ctx
            .store
            .create_api_key(user.id, NewApiKey::new("k"))
            .await
            .unwrap();

        // Connecting again re-runs the migrator, which must find nothing to do.
        let again = ctx.reconnect(PEPPER).await.unwrap();
        assert_eq!(again.user_by_id(user.id).await.unwrap(), user);
        again
            .authenticate_api_key(created.secret.expose())
            .await
            .unwrap();
        again.close().await;

        let other_pepper = ctx
            .reconnect(b"another pepper, also at least 32 bytes long")
            .await
            .unwrap();
        assert_eq!(
            invalid_key(
                other_pepper
                    .authenticate_api_key(created.secret.expose())
                    .await
            ),
            KeyRejection::WrongSecret
        );
        other_pepper.close().await;

        assert!(matches!(
            ctx.reconnect(b"too short").await,
            Err(AuthError::Config(_))
        ));
    }

    pub async fn concurrent_authentications_all_succeed(ctx: Ctx) {
        let user = ctx
            .store
            .create_user(NewUser::new("parallel@example.com"))
            .await
            .unwrap();
        let created = ctx
            .store
            .create_api_key(user.id, NewApiKey::new("k"))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let store = ctx.store.clone();
                let key = created.secret.clone();
                tokio::spawn(async move { store.authenticate_api_key(key.expose()).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().user.id, user.id);
        }
        assert_eq!(
            ctx.store.list_api_keys(user.id).await.unwrap()[0].last_used_at,
            Some(created.key.created_at)
        );
    }

    pub async fn database_errors_do_not_leak_details(ctx: Ctx) {
        ctx.store.close().await;
        let err = ctx.store.count_users().await.unwrap_err();
        assert!(matches!(err, AuthError::Database(_)), "{err:?}");
        assert_eq!(err.to_string(), "database error");
        assert!(
            std::error::Error::source(&err).is_some(),
            "cause kept for logs"
        );
    }
}

#[tokio::test]
async fn unknown_schemes_are_refused_without_echoing_the_url() {
    let clock = Arc::new(ManualClock::new(start_time()));
    for url in [
        "mysql://root:hunter2@db/simutrador",
        "./data/simutrador.db",
        "postgres:/missing-slashes",
        "",
    ] {
        let err = connect(url, options(Arc::clone(&clock), PEPPER))
            .await
            .unwrap_err();
        assert!(
            matches!(err, AuthError::InvalidDatabaseUrl(_)),
            "{url}: {err:?}"
        );
        assert!(!err.to_string().contains("hunter2"));
    }
    // Each backend refuses the other's URL instead of misreading it as a file name.
    let sqlite = auth::SqliteStore::connect(
        "postgres://postgres@127.0.0.1:5432/test",
        options(Arc::clone(&clock), PEPPER),
    )
    .await;
    assert!(matches!(sqlite, Err(AuthError::InvalidDatabaseUrl(None))));
    let postgres =
        auth::PostgresStore::connect("sqlite::memory:", options(Arc::clone(&clock), PEPPER)).await;
    assert!(matches!(postgres, Err(AuthError::InvalidDatabaseUrl(None))));
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dirs/simutrador.db");
    let url = format!("sqlite://{}", path.display());
    let clock = Arc::new(ManualClock::new(start_time()));
    let store = connect(&url, options(clock, PEPPER)).await.unwrap();
    assert!(path.is_file());
    let Database::Sqlite(sqlite) = &store else {
        panic!("expected SQLite for {url}");
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(sqlite.pool())
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
    store.close().await;
}

#[tokio::test]
async fn in_memory_sqlite_works_across_calls() {
    let clock = Arc::new(ManualClock::new(start_time()));
    let store = connect("sqlite::memory:", options(clock, PEPPER))
        .await
        .unwrap();
    let user = store
        .create_user(NewUser::new("memory@example.com"))
        .await
        .unwrap();
    let key = store
        .create_api_key(user.id, NewApiKey::new("k"))
        .await
        .unwrap();
    assert_eq!(
        store
            .authenticate_api_key(key.secret.expose())
            .await
            .unwrap()
            .user,
        user
    );
    assert_eq!(store.count_users().await.unwrap(), 1);
}

#[test]
fn test_database_urls_keep_credentials_and_parameters() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=disable", "t2"),
        "postgresql://u:p@h/t2?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "t3"),
        "postgres://h:5432/t3"
    );
}
