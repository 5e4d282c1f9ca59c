//! The gateway starts on free ports and answers over real sockets.

use gateway::app::Application;
use gateway::config::Settings;

fn settings() -> Settings {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-data");
    Settings::load_from(
        None,
        [
            ("SIMUTRADOR__SERVER__PORT", "0"),
            ("SIMUTRADOR__SERVER__COMPAT_PORT", "0"),
            ("SIMUTRADOR__MARKET_DATA__ROOTS__DEFAULT", root),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap()
}

#[actix_web::test]
async fn health_answers_on_a_random_port() {
    let app = Application::build(settings()).await.unwrap();
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
    let mut s = settings();
    s.market_data
        .roots
        .insert("default".into(), "/nonexistent/root".into());
    let err = Application::build(s).await.err().unwrap();
    assert!(
        err.to_string().contains("market data provider `default`"),
        "{err}"
    );
}
