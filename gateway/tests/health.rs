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
