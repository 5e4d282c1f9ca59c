//! Starting a real gateway on a free port with a fresh SQLite database, the way the
//! gateway's own tests do (a trimmed copy of `gateway/tests/support/mod.rs`).

#![allow(dead_code)]

use std::path::Path;

use gateway::app::Application;
use gateway::config::Settings;

pub const PEPPER: &str = "test-pepper-test-pepper-test-pepper-0123";
pub const JWT_SECRET: &str = "test-jwt-secret-test-jwt-secret-0123456789";

/// A running gateway.
pub struct TestApp {
    pub port: u16,
    /// The bootstrap admin's demo key (enterprise plan).
    pub api_key: String,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn settings(dir: &Path) -> Settings {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-data");
    let db = format!("sqlite://{}/users.db?mode=rwc", dir.display());
    Settings::load_from(
        None,
        [
            ("SIMUTRADOR__SERVER__PORT", "0"),
            ("SIMUTRADOR__SERVER__COMPAT_PORT", "0"),
            ("SIMUTRADOR__DATA_DIR", dir.to_str().unwrap()),
            ("SIMUTRADOR__DATABASE__URL", db.as_str()),
            ("SIMUTRADOR__AUTH__API_KEY_PEPPER", PEPPER),
            ("SIMUTRADOR__JWT__SECRET", JWT_SECRET),
            ("SIMUTRADOR__MARKET_DATA__ROOTS__DEFAULT", root),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap()
}

/// Starts a gateway on the current actix system (call from `#[actix_rt::test]`).
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let app = Application::build(settings(dir.path())).await.unwrap();
    let api_key = app
        .bootstrap()
        .expect("empty database bootstraps")
        .api_key
        .clone();
    let port = app.port();
    actix_rt::spawn(app.run_until_stopped());
    TestApp {
        port,
        api_key,
        _dir: dir,
    }
}

/// Starts a gateway on its own thread and actix system, for tests that block (e.g.
/// waiting for the CLI binary). It runs until the test process exits.
pub fn spawn_app_in_thread() -> TestApp {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let dir = tempfile::tempdir().unwrap();
            let app = Application::build(settings(dir.path())).await.unwrap();
            let key = app.bootstrap().unwrap().api_key.clone();
            let port = app.port();
            let run = app.run_until_stopped();
            tx.send((port, key, dir)).unwrap();
            let _ = run.await;
        })
    });
    let (port, api_key, dir) = rx.recv().unwrap();
    TestApp {
        port,
        api_key,
        _dir: dir,
    }
}
