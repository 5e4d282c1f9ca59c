//! `simutrador-gateway admin backup` and `admin restore` (the real binary) against a
//! real gateway process on SQLite and on a fresh Postgres database, with generated secrets:
//! a backup taken under load restores API keys, logins, TOTP and stored results onto
//! a wiped node; damaged backups and refused restores change nothing.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::Method;
use auth::{AccountStore, NewApiKey, NewUser, ResultStore, Secret, StoreOptions, UserStore};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};
use support::{call_at, Backend, WsClient};

const PASSWORD: &str = "a long enough password for tests";
const SECRET_FILES: [&str; 3] = ["jwt_secret", "api_key_pepper", "encryption_key"];

/// Where a test node keeps its data: a data_dir with generated secrets and a
/// database (a SQLite file in it, or a Postgres database of its own).
struct Place {
    dir: tempfile::TempDir,
    url: String,
    /// Postgres: (admin URL, database name).
    pg: Option<(String, String)>,
}

impl Place {
    async fn new(backend: Backend) -> Place {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}/users.db?mode=rwc", dir.path().display()),
                None,
            ),
            Backend::Postgres => {
                let (admin, name, url) = support::fresh_postgres().await;
                (url, Some((admin, name)))
            }
        };
        Place { dir, url, pg }
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// This place's configuration (secrets left to be generated into data_dir).
    fn configure(&self, cmd: &mut Command) {
        cmd.env("SIMUTRADOR__DATA_DIR", self.data_dir())
            .env("SIMUTRADOR__DATABASE__URL", &self.url)
            .env("SIMUTRADOR__LOG__LEVEL", "warn")
            .stdin(Stdio::null());
    }

    /// Direct access to the database, with the generated pepper.
    async fn db(&self) -> auth::Database {
        let pepper = std::fs::read(self.data_dir().join("api_key_pepper")).unwrap();
        auth::connect(&self.url, StoreOptions::new(Secret::new(pepper)))
            .await
            .unwrap()
    }

    /// What a lost node leaves: no database, no secrets.
    async fn wipe(&self) {
        match &self.pg {
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(self.data_dir().join(format!("users.db{suffix}")));
                }
            }
            Some((admin, name)) => {
                let mut conn = PgConnection::connect(admin).await.unwrap();
                conn.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
                    .await
                    .unwrap();
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap();
            }
        }
        for f in SECRET_FILES {
            std::fs::remove_file(self.data_dir().join(f)).unwrap();
        }
    }

    /// Runs the binary with this place's configuration: (success, stdout, stderr).
    async fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_simutrador-gateway"));
        self.configure(&mut cmd);
        cmd.args(args);
        // Off the test's single thread, so the gateway under test keeps serving.
        let out = actix_web::rt::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }

    /// `admin restore --from file [--force]`: (success, stdout, stderr).
    async fn restore(&self, file: &Path, force: bool) -> (bool, String, String) {
        let file = file.to_str().unwrap();
        let mut args = vec!["admin", "restore", "--from", file];
        if force {
            args.push("--force");
        }
        self.cli(&args).await
    }

    fn secrets(&self) -> Vec<Vec<u8>> {
        SECRET_FILES
            .iter()
            .map(|f| std::fs::read(self.data_dir().join(f)).unwrap())
            .collect()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            support::drop_database(admin, name);
        }
    }
}

/// A gateway process (`simutrador-gateway serve`) on a [`Place`]; killed if the test
/// fails before stopping it.
struct Running {
    base: String,
    bootstrap_key: Option<String>,
    child: std::process::Child,
}

/// `simutrador-gateway serve` on `place`, listening on `port` (0: any), its stdout
/// piped.
fn serve_command(place: &Place, port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simutrador-gateway"));
    place.configure(&mut cmd);
    cmd.arg("serve")
        .env("SIMUTRADOR__SERVER__PORT", port.to_string())
        .env("SIMUTRADOR__SERVER__COMPAT_PORT", "0")
        .env(
            "SIMUTRADOR__MARKET_DATA__ROOTS__DEFAULT",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-data"),
        )
        .env("SIMUTRADOR__ACCOUNTS__ARGON2_MEMORY_KIB", "64")
        .env("SIMUTRADOR__ACCOUNTS__ARGON2_ITERATIONS", "1")
        // The load during a backup exchanges tokens as fast as it can, for as long as
        // the backup takes: on a busy machine that is past the per-address limit on
        // authentication (300 a minute), which is not what these tests are about.
        .env("SIMUTRADOR__RATE_LIMITS__AUTH__REQUESTS", "1000000")
        .stdout(Stdio::piped());
    cmd
}

async fn start(place: &Place) -> Running {
    let mut child = serve_command(place, 0).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Drained to the end even after the test stops listening: a reader that
        // stopped would leave the gateway writing into a closed pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The address comes first; a first start's key follows at once.
    let (mut base, mut bootstrap_key) = (None, None);
    let mut lines = rx;
    loop {
        let wait = if base.is_some() { 500 } else { 30_000 };
        let (line, rx) = next_line(lines, Duration::from_millis(wait)).await;
        lines = rx;
        let Some(line) = line else { break };
        if let Some(b) = line.strip_prefix("SimuTrador gateway listening on ") {
            base = Some(b.replace("0.0.0.0", "127.0.0.1"));
        } else if let Some(k) = line.trim().strip_prefix("stk_") {
            bootstrap_key = Some(format!("stk_{k}"));
            break;
        }
    }
    Running {
        base: base.expect("the gateway printed its address"),
        bootstrap_key,
        child,
    }
}

/// The next line from `rx` within `wait`, waited for off the test's thread.
async fn next_line(
    rx: std::sync::mpsc::Receiver<String>,
    wait: Duration,
) -> (Option<String>, std::sync::mpsc::Receiver<String>) {
    actix_web::rt::task::spawn_blocking(move || (rx.recv_timeout(wait).ok(), rx))
        .await
        .unwrap()
}

impl Running {
    /// SIGTERM, then waits for the drain to finish.
    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let mut child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let code = actix_web::rt::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(code.success(), "{code}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `POST /auth/token` with `key`: the status and the token.
async fn exchange(base: &str, key: &str) -> (u16, String) {
    let mut res = awc::Client::new()
        .post(format!("{base}/auth/token"))
        .insert_header(("X-API-Key", key))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let token = body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (res.status().as_u16(), token)
}

async fn login(base: &str, email: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({"email": email, "password": PASSWORD, "server": "default"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    call_at(base, Method::POST, "/auth/login", None, Some(body)).await
}

/// Registers and verifies `email`, logs in and enrols TOTP: the TOTP secret and the
/// time of the code that confirmed it.
async fn enrolled(base: &str, db: &auth::Database, email: &str) -> (Vec<u8>, i64) {
    let body = json!({"email": email, "password": PASSWORD});
    let (status, _) = call_at(base, Method::POST, "/auth/register", None, Some(body)).await;
    assert_eq!(status, 202);
    let user = db.user_by_email(email).await.unwrap();
    let token = db.create_email_verification(user.id).await.unwrap();
    let body = json!({ "token": token.token.expose() });
    let (status, _) = call_at(base, Method::POST, "/auth/verify-email", None, Some(body)).await;
    assert_eq!(status, 200);
    let (status, body) = login(base, email, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_string();
    let (status, enrolment) = call_at(
        base,
        Method::POST,
        "/auth/totp/enrol",
        Some(&access),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{enrolment}");
    let secret = auth::totp::base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let code = auth::totp::code_at(&secret, now);
    let (status, body) = call_at(
        base,
        Method::POST,
        "/auth/totp/confirm",
        Some(&access),
        Some(json!({ "code": code })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (secret, now)
}

/// Runs GOOG daily over January 2010 with one buy, to the end; the session id.
async fn short_run(base: &str, token: &str) -> String {
    let mut ws = WsClient::connect_to(base, token).await;
    ws.until("connection_ready").await;
    let start = json!({
        "symbols": ["GOOG"], "start_date": "2010-01-01", "end_date": "2010-02-01",
        "initial_capital": "100000", "timeframe": "daily", "flow_control": true,
        "max_pending_ticks": 1
    });
    ws.send("start_simulation", start, Some("start")).await;
    let created = ws.until("session_created").await;
    let sid = created["data"]["session_id"].as_str().unwrap().to_string();
    loop {
        let m = ws.recv().await.expect("open until the end");
        match m["type"].as_str().unwrap_or_default() {
            "tick" => {
                let seq = m["data"]["sequence_id"].as_u64().unwrap();
                if seq == 2 {
                    let order = json!({"order_id": "o1", "symbol": "GOOG", "side": "buy",
                                       "type": "market", "quantity": 10});
                    let batch = json!({"session_id": sid, "batch_id": "b1", "orders": [order]});
                    ws.send("order_batch", batch, None).await;
                    ws.until("batch_ack").await;
                }
                let ack = json!({"session_id": sid, "sequence_id": seq});
                ws.send("tick_ack", ack, None).await;
            }
            "simulation_end" => return sid,
            _ => {}
        }
    }
}

async fn stored_result(db: &auth::Database, email: &str, sid: &str) -> auth::SimulationRecord {
    let user = db.user_by_email(email).await.unwrap();
    for _ in 0..200 {
        if let Ok(r) = db.result_for_user(user.id, sid).await {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("results of {sid} were never stored");
}

/// The backup file in `dir` after `admin backup`, checked for mode 0600.
async fn take_backup(place: &Place, name: &str) -> PathBuf {
    let file = place.data_dir().join(name);
    let (ok, out, err) = place
        .cli(&["admin", "backup", "--to", file.to_str().unwrap()])
        .await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("WARNING: this file holds secrets"), "{out}");
    assert!(
        out.contains("included secrets: jwt_secret, api_key_pepper, encryption_key"),
        "{out}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    file
}

async fn recovery_after_a_lost_node(backend: Backend) {
    let place = Place::new(backend).await;
    let node = start(&place).await;
    let base = node.base.clone();
    let demo_key = node
        .bootstrap_key
        .clone()
        .expect("empty database bootstraps");
    let db = place.db().await;
    let trader = db
        .create_user(NewUser::new("trader@example.com"))
        .await
        .unwrap();
    let trader_key = db
        .create_api_key(trader.id, NewApiKey::new("bot"))
        .await
        .unwrap()
        .secret
        .expose()
        .clone();
    let (totp, confirmed_at) = enrolled(&base, &db, "ann@example.com").await;
    let (status, token) = exchange(&base, &trader_key).await;
    assert_eq!(status, 200);
    let before = short_run(&base, &token).await;
    let stored = stored_result(&db, "trader@example.com", &before).await;

    // Load while the backup runs: token exchanges and sessions that run to the end
    // and store their results, without pause.
    let stop = Arc::new(AtomicBool::new(false));
    let (exchanges, refused, runs) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let exchanging = {
        let (stop, exchanges, refused) = (stop.clone(), exchanges.clone(), refused.clone());
        let (base, key) = (base.clone(), demo_key.clone());
        actix_web::rt::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match exchange(&base, &key).await.0 {
                    200 => exchanges.fetch_add(1, Ordering::Relaxed),
                    status => {
                        eprintln!("token exchange refused during the backup: {status}");
                        refused.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        })
    };
    let running = {
        let (stop, runs) = (stop.clone(), runs.clone());
        let base = base.clone();
        actix_web::rt::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                short_run(&base, &token).await;
                runs.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = (
        exchanges.load(Ordering::Relaxed),
        runs.load(Ordering::Relaxed),
    );
    let took = std::time::Instant::now();
    let file = take_backup(&place, "backup.tar").await;
    let took = took.elapsed();
    let after = (
        exchanges.load(Ordering::Relaxed),
        runs.load(Ordering::Relaxed),
    );
    eprintln!(
        "backup took {took:?} while {} token exchanges and {} finished runs went on",
        after.0 - during.0,
        after.1 - during.1
    );
    stop.store(true, Ordering::Relaxed);
    exchanging.await.unwrap();
    running.await.unwrap();
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "every exchange succeeded"
    );
    assert!(
        after.0 > during.0,
        "exchanges went on during the backup: {during:?} {after:?}"
    );
    db.close().await;
    node.stop().await;

    place.wipe().await;
    let (ok, out, err) = place.restore(&file, false).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("restored the"), "{out}");
    assert!(!out.contains("ACTION NEEDED"), "{out}");
    for f in SECRET_FILES {
        let mode = std::fs::metadata(place.data_dir().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }

    let node = start(&place).await;
    assert!(
        node.bootstrap_key.is_none(),
        "the restored database has its users"
    );
    let base = node.base.clone();
    for key in [&demo_key, &trader_key] {
        assert_eq!(exchange(&base, key).await.0, 200, "API keys work again");
    }
    let (status, body) = login(&base, "ann@example.com", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("TOTP_REQUIRED")),
        "{body}"
    );
    let (status, _) = login(&base, "ann@example.com", json!({"totp_code": "000000"})).await;
    assert_eq!(status, 401);
    // A later step than the code that confirmed the enrolment (that one is used up).
    let at = chrono::Utc::now().timestamp().max(confirmed_at + 30);
    let code = auth::totp::code_at(&totp, at);
    let (status, body) = login(&base, "ann@example.com", json!({"totp_code": code})).await;
    assert_eq!(status, 200, "TOTP secrets can be read again: {body}");
    let (_, token) = exchange(&base, &trader_key).await;
    let (status, result) = call_at(
        &base,
        Method::GET,
        &format!("/api/sessions/{before}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["session_id"], before.as_str());
    assert_eq!(
        result["final_equity"].as_str(),
        Some(stored.summary.final_equity.as_str()),
        "{result}"
    );
    node.stop().await;
}
both_backends!(recovery_after_a_lost_node_works, recovery_after_a_lost_node);

/// A gateway whose stdout is closed before it prints its banner (a supervisor that
/// stopped reading) serves anyway instead of dying on the write.
#[actix_web::test]
async fn a_closed_stdout_does_not_stop_the_server() {
    let place = Place::new(Backend::Sqlite).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = serve_command(&place, port);
    cmd.env("SIMUTRADOR__SERVER__HOST", "127.0.0.1");
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let base = format!("http://127.0.0.1:{port}");
    let mut healthy = false;
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the gateway exited ({status}) once its stdout was closed");
        }
        if let Ok(res) = awc::Client::new()
            .get(format!("{base}/health"))
            .send()
            .await
        {
            healthy = res.status().is_success();
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "the gateway never answered /health");
    let _ = child.kill();
    let _ = child.wait();
}

/// What a database holds, to compare before and after a refused restore.
async fn users(place: &Place) -> Vec<String> {
    let db = place.db().await;
    let mut emails: Vec<String> = db
        .list_users(auth::Page::new(0, 1000))
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    db.close().await;
    emails.sort();
    emails
}

async fn refusals_change_nothing(backend: Backend) {
    let place = Place::new(backend).await;
    let node = start(&place).await;
    let file = take_backup(&place, "backup.tar").await;
    // Made after the backup: gone only when a restore really happens.
    let db = place.db().await;
    db.create_user(NewUser::new("later@example.com"))
        .await
        .unwrap();
    db.close().await;
    if matches!(backend, Backend::Sqlite) {
        let (ok, _, err) = place.restore(&file, true).await;
        assert!(!ok && err.contains("is in use"), "{err}");
    }
    node.stop().await;
    let (users_before, secrets_before) = (users(&place).await, place.secrets());
    assert!(users_before.contains(&"later@example.com".to_string()));

    let full = std::fs::read(&file).unwrap();
    let damaged = place.data_dir().join("damaged.tar");
    // The manifest, then the database entry (its first page follows the manifest's
    // header and data blocks), then the middle of the database.
    let mut flipped = full.clone();
    flipped[full.len() / 2] ^= 0x01;
    let cases: [(&str, Vec<u8>); 4] = [
        ("truncated", full[..full.len() / 2].to_vec()),
        ("cut at the end", full[..full.len() - 1024 - 512].to_vec()),
        ("corrupted", flipped),
        ("not a backup", b"hello".to_vec()),
    ];
    for (what, bytes) in cases {
        std::fs::write(&damaged, bytes).unwrap();
        let (ok, out, err) = place.restore(&damaged, true).await;
        assert!(!ok, "{what}: {out}");
        assert!(
            err.contains("the backup is not usable, nothing was changed"),
            "{what}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(users(&place).await, users_before, "{what}");
        assert_eq!(place.secrets(), secrets_before, "{what}");
    }

    // A backup of the other kind of database.
    let other = Place::new(match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    })
    .await;
    let (ok, out, err) = other
        .cli(&["admin", "create-user", "--email", "o@example.com"])
        .await;
    assert!(ok, "{out}{err}");
    let foreign = other.data_dir().join("other.tar");
    let (ok, out, err) = other
        .cli(&["admin", "backup", "--to", foreign.to_str().unwrap()])
        .await;
    assert!(ok, "{out}{err}");
    let (ok, _, err) = place.restore(&foreign, true).await;
    assert!(
        !ok && err.contains("but the configured one (database.url) is"),
        "{err}"
    );
    assert_eq!(users(&place).await, users_before);

    // A database with data needs --force.
    let (ok, _, err) = place.restore(&file, false).await;
    assert!(!ok && err.contains("add --force"), "{err}");
    assert_eq!(users(&place).await, users_before);
    assert!(
        std::fs::read_dir(place.data_dir()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".simutrador-backup")),
        "no scratch files are left behind"
    );

    let (ok, out, err) = place.restore(&file, true).await;
    assert!(ok, "{out}{err}");
    let restored = users(&place).await;
    assert!(
        !restored.contains(&"later@example.com".to_string()),
        "{restored:?}"
    );
    assert_eq!(restored.len(), users_before.len() - 1);

    // Bad invocations are usage errors.
    for args in [
        &["admin", "backup"][..],
        &["admin", "restore", "--from"],
        &["admin", "restore", "--from", "x", "--forse"],
    ] {
        let (ok, _, err) = place.cli(args).await;
        assert!(!ok && err.contains("usage:"), "{args:?}: {err}");
    }
    let (ok, _, err) = place
        .cli(&["admin", "backup", "--to", file.to_str().unwrap()])
        .await;
    assert!(!ok && err.contains("never overwritten"), "{err}");
}
both_backends!(
    refused_and_damaged_restores_change_nothing,
    refusals_change_nothing
);
