//! Token and login-session lifetimes against the running gateway, with an injected
//! clock (`Application::build_with`) moved by the test instead of sleeping, on SQLite
//! and Postgres: a login session ends at `accounts.max_session_duration_sec` (12 hours)
//! however often it is refreshed, together with its access tokens; access tokens of
//! logins live `accounts.access_token_lifetime_sec` (45 minutes) and API-key tokens
//! `jwt.lifetime_sec` (1 hour).

mod support;

use std::sync::Arc;

use auth::ManualClock;
use chrono::{TimeDelta, Utc};
use gateway::app::Options;
use serde_json::{json, Value};
use support::{Backend, TestApp};

const EMAIL: &str = "clock@example.com";
const PASSWORD: &str = "a password long enough";

async fn spawn(backend: Backend, clock: &Arc<ManualClock>) -> TestApp {
    let options = Options {
        clock: Arc::clone(clock) as Arc<dyn auth::Clock>,
    };
    support::spawn_app_with_options(backend, options, |_| {}).await
}

async fn post(app: &TestApp, path: &str, body: Value, bearer: Option<&str>) -> (u16, Value) {
    app.call(actix_web::http::Method::POST, path, bearer, Some(body))
        .await
}

/// Whether every authenticated route accepts `access`: `/auth/validate` and
/// `/api/sessions` must agree.
async fn accepted(app: &TestApp, access: &str) -> bool {
    let validate = post(app, "/auth/validate", json!({}), Some(access)).await.0;
    let sessions = awc::Client::new()
        .get(app.url("/api/sessions"))
        .insert_header(("Authorization", format!("Bearer {access}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(validate, sessions, "the routes disagree about the token");
    assert!(matches!(validate, 200 | 401), "{validate}");
    validate == 200
}

/// Registers and verifies [`EMAIL`] and logs in: the login answer.
async fn logged_in(app: &TestApp) -> Value {
    app.register_verified(EMAIL, PASSWORD).await;
    let (status, body) = post(
        app,
        "/auth/login",
        json!({"email": EMAIL, "password": PASSWORD, "server": "default"}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn refresh(app: &TestApp, refresh_token: &Value) -> (u16, Value) {
    post(
        app,
        "/auth/refresh",
        json!({ "refresh_token": refresh_token }),
        None,
    )
    .await
}

fn access(grant: &Value) -> &str {
    grant["access_token"].as_str().unwrap()
}

async fn session_ends_after_twelve_hours(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn(backend, &clock).await;
    let login = logged_in(&app).await;
    let mut grant = login.clone();

    // Refreshed every 40 minutes, as a client renewing 45-minute tokens would, up to
    // 11h20m...
    for _ in 0..17 {
        clock.advance(TimeDelta::minutes(40));
        let (status, next) = refresh(&app, &grant["refresh_token"]).await;
        assert_eq!(status, 200, "{next}");
        assert_eq!(next["session_id"], login["session_id"]);
        assert!(accepted(&app, access(&next)).await);
        grant = next;
    }
    let at_11h20 = grant.clone();
    // ...whose access token, with 40 minutes of the session left, ends with it.
    assert_eq!(at_11h20["expires_in"], 40 * 60);

    // 11h59m: refreshing still works, and the new access token lives only the
    // session's last minute.
    clock.advance(TimeDelta::minutes(39));
    let (status, last) = refresh(&app, &grant["refresh_token"]).await;
    assert_eq!(status, 200, "{last}");
    assert_eq!(last["expires_in"], 60);
    assert!(accepted(&app, access(&last)).await);
    assert!(accepted(&app, access(&at_11h20)).await);

    // 12h00m: the session is over. Its refresh token is refused...
    clock.advance(TimeDelta::minutes(1));
    let (status, body) = refresh(&app, &last["refresh_token"]).await;
    assert_eq!(status, 401, "{body}");
    // ...and so are its access tokens, the one issued a minute ago included.
    assert!(!accepted(&app, access(&last)).await);
    assert!(!accepted(&app, access(&at_11h20)).await);

    // A second later nothing has come back, and a new login starts a new session.
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(refresh(&app, &last["refresh_token"]).await.0, 401);
    let (status, again) = post(
        &app,
        "/auth/login",
        json!({"email": EMAIL, "password": PASSWORD, "server": "default"}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(again["session_id"], login["session_id"]);
    assert!(accepted(&app, access(&again)).await);
    // The user's list of sessions goes by the same clock: the ended one is gone.
    let mut res = awc::Client::new()
        .get(app.url("/auth/sessions"))
        .insert_header(("Authorization", format!("Bearer {}", access(&again))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let listed: Value = res.json().await.unwrap();
    let ids: Vec<&Value> = listed
        .as_array()
        .or_else(|| listed["sessions"].as_array())
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(ids, [&again["session_id"]], "{listed}");
    app.cleanup().await;
}
both_backends!(twelve_hour_session, session_ends_after_twelve_hours);

async fn access_tokens_live_45_minutes(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn(backend, &clock).await;
    let login = logged_in(&app).await;
    assert_eq!(login["expires_in"], 45 * 60);
    // An API-key token issued at the same instant lives `jwt.lifetime_sec` (1 hour).
    let key_token = app.token(&app.admin_key).await;

    clock.advance(TimeDelta::minutes(45) - TimeDelta::seconds(1));
    assert!(accepted(&app, access(&login)).await, "valid at 44m59s");
    clock.advance(TimeDelta::seconds(1));
    assert!(!accepted(&app, access(&login)).await, "expired at 45m");
    // The refresh token outlives its access token: a new pair, a new 45 minutes.
    let (status, next) = refresh(&app, &login["refresh_token"]).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["expires_in"], 45 * 60);
    assert!(accepted(&app, access(&next)).await);

    assert!(accepted(&app, &key_token).await, "API-key token at 45m");
    clock.advance(TimeDelta::minutes(15) - TimeDelta::seconds(1));
    assert!(accepted(&app, &key_token).await, "API-key token at 59m59s");
    clock.advance(TimeDelta::seconds(1));
    assert!(!accepted(&app, &key_token).await, "API-key token at 1h");
    // The pair from the refresh at 45m is still within its own 45 minutes.
    assert!(accepted(&app, access(&next)).await);
    app.cleanup().await;
}
both_backends!(access_token_lifetime, access_tokens_live_45_minutes);

/// Key expiry is counted from the injected clock, like everything else.
async fn key_expiry_follows_the_clock(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = spawn(backend, &clock).await;
    let grant = logged_in(&app).await;
    // 40 minutes on, the access token still valid: counted from the system clock,
    // the expiry would be 40 minutes early.
    clock.advance(TimeDelta::minutes(40));
    let (status, key) = post(
        &app,
        "/api/keys",
        json!({"name": "expiring", "expires_in_days": 1}),
        Some(access(&grant)),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let expires = chrono::DateTime::parse_from_rfc3339(key["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let expected = auth::Clock::now(clock.as_ref()) + TimeDelta::days(1);
    assert!(
        (expires - expected).num_seconds().abs() <= 1,
        "expires {expires}, expected {expected}"
    );
    app.cleanup().await;
}
both_backends!(key_expiry, key_expiry_follows_the_clock);
