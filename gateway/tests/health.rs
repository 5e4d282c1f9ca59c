//! The gateway starts on free ports and answers over real sockets.

use gateway::app::Application;
use gateway::config::Settings;

mod support;

fn settings(dir: &tempfile::TempDir) -> Settings {
    support::base_settings(
        dir.path(),
        &format!("sqlite://{}/u.db?mode=rwc", dir.path().display()),
    )
}

#[actix_web::test]
async fn health_answers_on_a_random_port() {
    let dir = tempfile::tempdir().unwrap();
    let app = Application::build(settings(&dir)).await.unwrap();
    let port = app.port();
    assert_ne!(port, 0);
    assert_eq!(app.compat_port(), None);
    actix_web::rt::spawn(app.run_until_stopped());
    let mut res = awc::Client::new()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["server_version"], env!("CARGO_PKG_VERSION"));
}

#[actix_web::test]
async fn a_bad_data_root_is_a_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&dir);
    s.market_data
        .roots
        .insert("default".into(), "/nonexistent/root".into());
    let err = Application::build(s).await.err().unwrap();
    assert!(
        err.to_string().contains("market data provider `default`"),
        "{err}"
    );
}

#[actix_web::test]
async fn ready_and_ws_health_report_the_backends() {
    let dir = tempfile::tempdir().unwrap();
    let app = Application::build(settings(&dir)).await.unwrap();
    let port = app.port();
    actix_web::rt::spawn(app.run_until_stopped());
    let mut res = awc::Client::new()
        .get(format!("http://127.0.0.1:{port}/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    use futures_util::StreamExt;
    let (_, mut framed) = awc::Client::new()
        .ws(format!("ws://127.0.0.1:{port}/ws/health"))
        .connect()
        .await
        .unwrap();
    let frame = framed.next().await.unwrap().unwrap();
    let awc::ws::Frame::Text(text) = frame else {
        panic!("{frame:?}")
    };
    let msg: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(msg["type"], "health");
    assert_eq!(msg["data"]["status"], "ok");
    assert_eq!(msg["data"]["server_version"], env!("CARGO_PKG_VERSION"));
    assert!(matches!(
        framed.next().await,
        Some(Ok(awc::ws::Frame::Close(_))) | None
    ));
}

#[actix_web::test]
async fn ready_is_503_when_the_database_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    // A database that disappears after start: readiness must say so instead of lying.
    let name = format!("gw_ready_{}", std::process::id());
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    conn.execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
        .await
        .unwrap();
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let app = Application::build(support::base_settings(dir.path(), &url))
        .await
        .unwrap();
    let port = app.port();
    actix_web::rt::spawn(app.run_until_stopped());
    conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    let mut res = awc::Client::new()
        .get(format!("http://127.0.0.1:{port}/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["message"], "user database unreachable");
}
