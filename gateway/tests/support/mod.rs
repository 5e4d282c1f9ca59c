//! Starting a real gateway on free ports against SQLite or a fresh Postgres database.

#![allow(dead_code)]

pub mod browser;
pub mod logs;
pub mod proxy;
pub mod sma;

use auth::{Database, NewApiKey, NewUser, Plan, Secret, StoreOptions, UserStore};
use gateway::app::{Application, Options, ShutdownTrigger};
use gateway::config::Settings;
use sqlx::{Connection, Executor, PgConnection};

/// Which user database a test runs against.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const PEPPER: &str = "test-pepper-test-pepper-test-pepper-0123";
pub const JWT_SECRET: &str = "test-jwt-secret-test-jwt-secret-0123456789";

pub struct TestApp {
    pub port: u16,
    pub compat_port: Option<u16>,
    /// The bootstrap admin's demo key.
    pub admin_key: String,
    /// Direct access to the same database.
    pub db: Database,
    /// The database URL, for more nodes on the same database.
    pub database_url: String,
    /// Drains and stops the gateway.
    pub shutdown: ShutdownTrigger,
    /// Resolves when the gateway has stopped.
    pub stopped: Option<actix_web::rt::task::JoinHandle<std::io::Result<()>>>,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fresh database on the test server; (admin url, database name, url).
pub async fn fresh_postgres() -> (String, String, String) {
    let admin = postgres_admin_url();
    let name = format!("gw_test_{}", random_suffix());
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("Postgres must be reachable at TEST_POSTGRES_URL");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
    (admin, name.clone(), format!("{base}/{name}"))
}

pub fn base_settings(dir: &std::path::Path, database_url: &str) -> Settings {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-data");
    Settings::load_from(
        None,
        [
            ("SIMUTRADOR__SERVER__PORT", "0"),
            ("SIMUTRADOR__SERVER__COMPAT_PORT", "0"),
            ("SIMUTRADOR__DATA_DIR", dir.to_str().unwrap()),
            ("SIMUTRADOR__DATABASE__URL", database_url),
            ("SIMUTRADOR__AUTH__API_KEY_PEPPER", PEPPER),
            ("SIMUTRADOR__JWT__SECRET", JWT_SECRET),
            ("SIMUTRADOR__MARKET_DATA__ROOTS__DEFAULT", root),
            // Cheap password hashes keep the suites fast; the real costs are measured
            // in BENCHMARKS.md.
            ("SIMUTRADOR__ACCOUNTS__ARGON2_MEMORY_KIB", "64"),
            ("SIMUTRADOR__ACCOUNTS__ARGON2_ITERATIONS", "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap()
}

/// Starts a gateway; `tweak` adjusts the settings first.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_options(backend, Options::default(), tweak).await
}

/// Starts a gateway built with `options` (an injected clock); `tweak` adjusts the
/// settings first.
pub async fn spawn_app_with_options(
    backend: Backend,
    options: Options,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}/users.db?mode=rwc", dir.path().display()),
            None,
        ),
        Backend::Postgres => {
            let (admin, name, url) = fresh_postgres().await;
            (url, Some((admin, name)))
        }
    };
    let mut settings = base_settings(dir.path(), &url);
    tweak(&mut settings);
    let app = Application::build_with(settings, options).await.unwrap();
    let admin_key = app
        .bootstrap()
        .expect("empty database bootstraps")
        .api_key
        .clone();
    let (port, compat_port) = (app.port(), app.compat_port());
    let shutdown = app.shutdown_trigger();
    let stopped = Some(actix_web::rt::spawn(app.run_until_stopped()));
    let db = auth::connect(
        &url,
        StoreOptions::new(Secret::new(PEPPER.as_bytes().to_vec())),
    )
    .await
    .unwrap();
    TestApp {
        port,
        compat_port,
        admin_key,
        db,
        database_url: url,
        shutdown,
        stopped,
        dir,
        pg,
    }
}

/// Another gateway on `app`'s database; `tweak` adjusts its settings.
pub async fn spawn_node(app: &TestApp, name: &str, tweak: impl FnOnce(&mut Settings)) -> Node {
    let dir = app.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut settings = base_settings(&dir, &app.database_url);
    settings.server.node_id = name.to_string();
    tweak(&mut settings);
    let node = Application::build(settings).await.unwrap();
    let port = node.port();
    let shutdown = node.shutdown_trigger();
    let stopped = actix_web::rt::spawn(node.run_until_stopped());
    Node {
        port,
        shutdown,
        stopped,
    }
}

/// A further gateway node of a [`TestApp`].
pub struct Node {
    pub port: u16,
    pub shutdown: ShutdownTrigger,
    pub stopped: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
}

impl Node {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The Redis test server.
/// One request to `base` (with a Bearer token and a JSON body when given): the status
/// and the JSON answer (Null when there is none).
pub async fn call_at(
    base: &str,
    method: actix_web::http::Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    // awc's default of 5 s is too short for a loaded CI machine loading a large series.
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .finish();
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(token) = bearer {
        req = req.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut res = match body {
        Some(b) => req.send_json(&b).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let status = res.status().as_u16();
    let body = res
        .json::<serde_json::Value>()
        .limit(4 << 20)
        .await
        .unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// A raw WebSocket upgrade request for `/ws/simulate` on `base` with `token`, to see
/// a refused handshake's status and headers (a WebSocket client reports only an error).
pub fn handshake(base: &str, token: &str) -> awc::ClientRequest {
    awc::Client::new()
        .get(format!("{base}/ws/simulate?token={token}"))
        .insert_header(("Connection", "Upgrade"))
        .insert_header(("Upgrade", "websocket"))
        .insert_header(("Sec-WebSocket-Version", "13"))
        .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A Redis key prefix of its own for a test.
pub fn redis_prefix(test: &str) -> String {
    format!("test-{test}-{}", random_suffix())
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A new user with `plan` and an API key for it.
    pub async fn user_with_key(&self, email: &str, plan: Plan) -> String {
        let mut new = NewUser::new(email);
        new.plan = plan;
        let user = self.db.create_user(new).await.unwrap();
        self.db
            .create_api_key(user.id, NewApiKey::new("test"))
            .await
            .unwrap()
            .secret
            .expose()
            .clone()
    }

    /// Exchanges an API key for a JWT.
    pub async fn token(&self, key: &str) -> String {
        let mut res = awc::Client::new()
            .post(self.url("/auth/token"))
            .insert_header(("X-API-Key", key))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Registers `email` through the API and verifies it with a token made directly
    /// in the database (no mail in these tests): the account can log in. The token,
    /// now used up.
    pub async fn register_verified(&self, email: &str, password: &str) -> String {
        use actix_web::http::Method;
        use auth::AccountStore;
        let body = serde_json::json!({"email": email, "password": password});
        let (status, answer) = self
            .call(Method::POST, "/auth/register", None, Some(body))
            .await;
        assert_eq!(status, 202, "{answer}");
        let user = self.db.user_by_email(email).await.unwrap();
        let token = self.db.create_email_verification(user.id).await.unwrap();
        let token = token.token.expose().clone();
        let body = serde_json::json!({ "token": token });
        let (status, answer) = self
            .call(Method::POST, "/auth/verify-email", None, Some(body))
            .await;
        assert_eq!(
            (status, &answer["email_verified"]),
            (200, &serde_json::json!(true))
        );
        token
    }

    /// The access token of a login (`POST /auth/login` on the default server) of an
    /// account that can log in.
    pub async fn login_token(&self, email: &str, password: &str) -> String {
        let body = serde_json::json!({"email": email, "password": password, "server": "default"});
        let (status, login) = self
            .call(
                actix_web::http::Method::POST,
                "/auth/login",
                None,
                Some(body),
            )
            .await;
        assert_eq!(status, 200, "{login}");
        login["access_token"].as_str().unwrap().to_string()
    }

    /// [`call_at`] this gateway.
    pub async fn call(
        &self,
        method: actix_web::http::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        call_at(&self.url(""), method, path, bearer, body).await
    }

    /// Whether `GET path` with `bearer` is refused (401) within a second, the time
    /// revocations take to reach every node; polled every 20 ms.
    pub async fn refused_within_a_second(&self, path: &str, bearer: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let status = awc::Client::new()
                .get(self.url(path))
                .insert_header(("Authorization", format!("Bearer {bearer}")))
                .send()
                .await
                .map_or(0, |r| r.status().as_u16());
            if status == 401 {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Closes the pool; dropping the app then drops its Postgres database.
    pub async fn cleanup(self) {
        self.db.close().await;
    }
}

impl Drop for TestApp {
    /// Drops the test's Postgres database even when the test panicked, so databases
    /// never pile up on the shared server.
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            drop_database(admin, name);
        }
    }
}

/// Drops a test database (from any context, panicking or not), so databases never
/// pile up on the shared server.
pub fn drop_database(admin: String, name: String) {
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            if let Ok(mut conn) = PgConnection::connect(&admin).await {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
            }
        });
    })
    .join();
}

/// Runs one async test body against both backends.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[actix_web::test]
            async fn sqlite() {
                $body(support::Backend::Sqlite).await;
            }
            #[actix_web::test]
            async fn postgres() {
                $body(support::Backend::Postgres).await;
            }
        }
    };
}

/// A WebSocket client speaking the wire protocol.
pub struct WsClient {
    framed: actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
}

impl WsClient {
    pub async fn connect(app: &TestApp, token: &str) -> WsClient {
        Self::connect_to(&format!("http://127.0.0.1:{}", app.port), token).await
    }

    /// Connects to the gateway (or load balancer) at `base` (`http://host:port`).
    pub async fn connect_to(base: &str, token: &str) -> WsClient {
        let ws_base = base.replacen("http", "ws", 1);
        let (res, framed) = awc::Client::new()
            .ws(format!("{ws_base}/ws/simulate?token={token}"))
            .max_frame_size(16 << 20)
            .connect()
            .await
            .unwrap();
        assert_eq!(res.status(), 101);
        WsClient { framed }
    }

    pub async fn send_text(&mut self, text: String) {
        use futures_util::SinkExt;
        self.framed
            .send(awc::ws::Message::Text(text.into()))
            .await
            .unwrap();
    }

    pub async fn send(
        &mut self,
        msg_type: &str,
        data: serde_json::Value,
        request_id: Option<&str>,
    ) {
        let frame = serde_json::json!({"type": msg_type, "data": data, "request_id": request_id});
        self.send_text(frame.to_string()).await;
    }

    /// The next server message as JSON (type, data, request_id), or None when closed.
    pub async fn recv(&mut self) -> Option<serde_json::Value> {
        use futures_util::StreamExt;
        loop {
            let frame =
                tokio::time::timeout(std::time::Duration::from_secs(20), self.framed.next())
                    .await
                    .expect("server answered within 20 s")?;
            match frame.ok()? {
                awc::ws::Frame::Text(t) => return Some(serde_json::from_slice(&t).unwrap()),
                awc::ws::Frame::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Sends `start_simulation` with `params` and returns the new session's id.
    pub async fn start_session(&mut self, params: serde_json::Value) -> String {
        self.send("start_simulation", params, None).await;
        self.until("session_created").await["data"]["session_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Reads until a message of `msg_type` arrives, returning it.
    pub async fn until(&mut self, msg_type: &str) -> serde_json::Value {
        loop {
            let m = self
                .recv()
                .await
                .unwrap_or_else(|| panic!("closed while waiting for {msg_type}"));
            if m["type"] == msg_type {
                return m;
            }
        }
    }
}
