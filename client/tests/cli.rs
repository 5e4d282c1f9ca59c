//! The `simutrador` binary end to end against a real gateway, with HOME and
//! XDG_CONFIG_HOME pointed at a fresh directory per test.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use support::{spawn_app_in_thread, TestApp};

fn app() -> &'static TestApp {
    static APP: OnceLock<TestApp> = OnceLock::new();
    APP.get_or_init(spawn_app_in_thread)
}

/// A fresh HOME with `XDG_CONFIG_HOME` inside it.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn xdg(&self) -> PathBuf {
        self.dir.path().join("xdg")
    }

    fn config_dir(&self) -> PathBuf {
        self.xdg().join("simutrador")
    }

    fn token_file(&self) -> PathBuf {
        self.config_dir().join("token.json")
    }

    fn write_config(&self, text: &str) {
        std::fs::create_dir_all(self.config_dir()).unwrap();
        std::fs::write(self.config_dir().join("config.toml"), text).unwrap();
    }

    /// Runs the CLI with only HOME, XDG_CONFIG_HOME and `env` set.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_simutrador"));
        cmd.env_clear()
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.xdg())
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn server_env(app: &TestApp) -> Vec<(&'static str, String)> {
    vec![
        ("SIMUTRADOR_URL", app.url()),
        ("SIMUTRADOR_API_KEY", app.api_key.clone()),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

const GOOG_RUN: &[&str] = &[
    "run",
    "--strategy",
    "sma-cross",
    "--fast",
    "10",
    "--slow",
    "20",
    "--quantity",
    "100",
    "--symbols",
    "GOOG",
    "--timeframe",
    "daily",
    "--start",
    "2004-01-01",
    "--end",
    "2014-01-01",
    "--capital",
    "100000",
];

#[test]
fn run_json_prints_the_results_and_the_trades() {
    let app = app();
    let home = Home::new();
    let env = server_env(app);
    let mut args = GOOG_RUN.to_vec();
    args.push("--json");
    let out = home.run(&args, &as_refs(&env));
    // stderr is not a terminal here: no progress bar.
    assert!(!stderr(&out).contains("ticks"), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(doc["final_equity"], "194777.00");
    assert_eq!(doc["total_trades"], 46);
    assert_eq!(doc["ticks_processed"], 2148);
    assert_eq!(doc["reason"], "completed");
    assert!(doc["sharpe_ratio"].is_f64());
    let trades = doc["trades"].as_array().unwrap();
    assert_eq!(trades.len(), 46);
    let first = &trades[0];
    assert_eq!(
        (first["symbol"].as_str(), first["side"].as_str()),
        (Some("GOOG"), Some("long"))
    );
    assert_eq!(first["quantity"], 100);
    for key in [
        "entry_time",
        "exit_time",
        "entry_price",
        "exit_price",
        "pnl",
    ] {
        assert!(first[key].is_string(), "{key}: {first}");
    }
    // The table form of the same run.
    let text = ok(home.run(GOOG_RUN, &as_refs(&env)));
    assert!(
        text.contains("SMA crossover (10/20, 100 units) on GOOG, daily, 2004-01-01 .. 2014-01-01")
    );
    assert!(text.contains("194777.00"), "{text}");
    assert!(text.contains("Closed trades (46)"), "{text}");
}

#[test]
fn buy_and_hold_holds_one_position_to_the_end() {
    let app = app();
    let home = Home::new();
    let env = server_env(app);
    let out = ok(home.run(
        &[
            "run",
            "--strategy",
            "buy-and-hold",
            "--quantity",
            "10",
            "--start",
            "2010-01-01",
            "--end",
            "2011-01-01",
            "--json",
        ],
        &as_refs(&env),
    ));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["total_trades"], 0);
    assert_eq!(doc["trades"], serde_json::json!([]));
    assert!(doc["exposure_pct"].as_f64().unwrap() > 99.0);
}

#[test]
fn auth_login_status_logout_and_the_cached_token() {
    let app = app();
    let home = Home::new();
    let url = app.url();
    let key = app.api_key.as_str();

    let status = home.run(&["auth", "status"], &[]);
    assert_eq!(status.status.code(), Some(1));
    assert!(stderr(&status).contains("not logged in"));

    let out = ok(home.run(&["--url", &url, "auth", "login", "--api-key", key], &[]));
    assert!(out.contains("plan enterprise"), "{out}");
    let file = home.token_file();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");
    let cached: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(cached["url"], url.as_str());
    assert_eq!(cached["plan"], "enterprise");

    let out = ok(home.run(&["--url", &url, "auth", "status"], &[]));
    assert!(out.contains(cached["user_id"].as_str().unwrap()), "{out}");
    assert!(
        out.contains("enterprise") && out.contains("Expires") && out.contains("valid for"),
        "{out}"
    );

    // No API key anywhere: the cached token is enough.
    let out = ok(home.run(&["--url", &url, "session", "list", "--json"], &[]));
    assert!(serde_json::from_str::<Value>(&out).unwrap().is_array());

    // A token about to expire is replaced from the API key, and the cache refreshed.
    let mut stale = cached.clone();
    stale["expires_at"] = (chrono::Utc::now().timestamp() + 60).into();
    stale["access_token"] = "stale.token.value".into();
    std::fs::write(&file, stale.to_string()).unwrap();
    let no_key = home.run(&["--url", &url, "session", "list"], &[]);
    assert_eq!(no_key.status.code(), Some(1));
    assert!(
        stderr(&no_key).contains("no API key"),
        "{}",
        stderr(&no_key)
    );
    ok(home.run(
        &["--url", &url, "session", "list"],
        &[("SIMUTRADOR_API_KEY", key)],
    ));
    let refreshed: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_ne!(refreshed["access_token"], "stale.token.value");
    assert!(refreshed["expires_at"].as_i64() > stale["expires_at"].as_i64());
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A fresh-looking token the server refuses is replaced once from the key.
    let mut forged = refreshed.clone();
    forged["access_token"] = "forged.token.value".into();
    std::fs::write(&file, forged.to_string()).unwrap();
    ok(home.run(
        &["--url", &url, "session", "list"],
        &[("SIMUTRADOR_API_KEY", key)],
    ));
    let fixed: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_ne!(fixed["access_token"], "forged.token.value");

    let out = ok(home.run(&["auth", "logout"], &[]));
    assert!(out.contains("Logged out"));
    assert!(!file.exists());
    assert_eq!(home.run(&["auth", "status"], &[]).status.code(), Some(1));

    let bad = home.run(
        &["--url", &url, "auth", "login", "--api-key", "stk_wrong"],
        &[],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("authentication failed"),
        "{}",
        stderr(&bad)
    );
    assert!(!file.exists());
}

#[test]
fn settings_precedence_is_flags_then_env_then_file() {
    let app = app();
    let home = Home::new();
    let (url, key) = (app.url(), app.api_key.clone());
    let dead = "http://127.0.0.1:1";

    // File alone.
    home.write_config(&format!("url = \"{url}\"\napi_key = \"{key}\"\n"));
    let shown = ok(home.run(&["config"], &[]));
    assert!(shown.contains(&format!("{url} (config file)")), "{shown}");
    assert!(
        shown.contains("(config file)") && !shown.contains(&key),
        "{shown}"
    );
    ok(home.run(&["auth", "login"], &[]));

    // Environment over file: the file's URL is dead and its key wrong.
    home.write_config(&format!("url = \"{dead}\"\napi_key = \"stk_wrong\"\n"));
    let env = [
        ("SIMUTRADOR_URL", url.as_str()),
        ("SIMUTRADOR_API_KEY", key.as_str()),
    ];
    let shown = ok(home.run(&["config"], &env));
    assert!(shown.contains(&format!("{url} (environment)")), "{shown}");
    ok(home.run(&["auth", "login"], &env));
    let file_key_only = home.run(&["auth", "login"], &[("SIMUTRADOR_URL", url.as_str())]);
    assert!(stderr(&file_key_only).contains("authentication failed"));

    // Flags over environment.
    let shown = ok(home.run(&["--url", dead, "config"], &env));
    assert!(shown.contains(&format!("{dead} (flag)")), "{shown}");
    let out = home.run(&["--url", dead, "auth", "login"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
    let out = home.run(&["auth", "login", "--api-key", "stk_wrong"], &env);
    assert!(
        stderr(&out).contains("authentication failed"),
        "{}",
        stderr(&out)
    );

    // Nothing anywhere: the default URL.
    let bare = Home::new();
    let shown = ok(bare.run(&["config"], &[]));
    assert!(shown.contains("http://127.0.0.1:8003 (default)"), "{shown}");
    assert!(shown.contains("not set"), "{shown}");
    let _ = Path::new(&bare.config_dir());
}

#[test]
fn session_create_list_status_close() {
    let app = app();
    let home = Home::new();
    let env = server_env(app);
    let env = as_refs(&env);
    let out = ok(home.run(
        &[
            "session",
            "create",
            "--session-id",
            "cli-s1",
            "--start",
            "2010-01-01",
            "--end",
            "2011-01-01",
            "--json",
        ],
        &env,
    ));
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["session_id"], "cli-s1");
    assert_eq!(created["estimated_ticks"], 252);
    let list = ok(home.run(&["session", "list"], &env));
    assert!(
        list.contains("cli-s1") && list.contains("ready") && list.contains("0/252"),
        "{list}"
    );
    let status = ok(home.run(&["session", "status", "cli-s1"], &env));
    assert!(
        status.contains("ready") && status.contains("0/252 ticks"),
        "{status}"
    );
    assert!(ok(home.run(&["session", "close", "cli-s1"], &env)).contains("Closed session cli-s1"));
    let gone = home.run(&["session", "status", "cli-s1"], &env);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        stderr(&gone).contains("SESSION_NOT_FOUND"),
        "{}",
        stderr(&gone)
    );

    let usage = home.run(&["session", "status"], &env);
    assert_eq!(usage.status.code(), Some(2));
    let usage = home.run(&["run", "--start", "2010-01-01"], &env);
    assert_eq!(usage.status.code(), Some(2));
    assert!(stderr(&usage).contains("--end is required"));
}

#[test]
fn bench_is_bounded_and_reports_its_numbers() {
    let app = app();
    let home = Home::new();
    let env = server_env(app);
    let env = as_refs(&env);
    // A range no other test uses, to find this test's sessions afterwards.
    let common = [
        "--start",
        "2004-01-01",
        "--end",
        "2013-12-31",
        "--bars",
        "200",
        "--json",
    ];
    let mut args = vec!["bench", "--sessions", "3", "--mode", "lockstep"];
    args.extend_from_slice(&common);
    let doc: Value = serde_json::from_str(&ok(home.run(&args, &env))).unwrap();
    assert_eq!(doc["sessions_ok"], 3, "{doc}");
    assert_eq!(doc["ticks"], 600);
    assert_eq!(doc["errors"], serde_json::json!({}));
    assert!(doc["ticks_per_sec"].as_f64().unwrap() > 0.0);
    let rt = &doc["round_trip"];
    assert_eq!(rt["samples"], 3 * 199);
    assert!(rt["p50_ms"].as_f64().unwrap() <= rt["p99_ms"].as_f64().unwrap());

    let mut args = vec!["bench", "--sessions", "2", "--mode", "stream"];
    args.extend_from_slice(&common);
    let doc: Value = serde_json::from_str(&ok(home.run(&args, &env))).unwrap();
    assert_eq!(doc["sessions_ok"], 2, "{doc}");
    // Streaming overshoots the bar cap by whatever was in flight when stop arrived.
    assert!(doc["ticks"].as_u64().unwrap() >= 400, "{doc}");
    assert!(doc["round_trip"].is_null());
    assert_eq!(doc["trading"]["orders_sent"], 0, "{doc}");

    // Trading: an order on every bar but the last (the 200th stops the session), each
    // answered and filled at the next bar's open before that bar's tick.
    let mut args = vec!["bench", "--sessions", "2", "--order-every", "1"];
    args.extend_from_slice(&common);
    let doc: Value = serde_json::from_str(&ok(home.run(&args, &env))).unwrap();
    assert_eq!(
        (doc["sessions_ok"].as_u64(), doc["ticks"].as_u64()),
        (Some(2), Some(400)),
        "{doc}"
    );
    let t = &doc["trading"];
    assert_eq!(
        [
            &t["orders_sent"],
            &t["batch_acks"],
            &t["fills"],
            &t["orders_rejected"]
        ],
        [2 * 199, 2 * 199, 2 * 199, 0],
        "{doc}"
    );
    assert_eq!(doc["round_trip"]["samples"], 2 * 199);
    let mut args = vec!["bench", "--order-every", "2"];
    args.extend_from_slice(&common);
    let text = ok(home.run(&args[..args.len() - 1], &env));
    assert!(
        text.contains("one every 2 bar(s): 99 sent, 99 batch_ack(s), 0 rejected, 99 fill(s)"),
        "{text}"
    );

    // Sessions are closed afterwards: none left behind.
    let list: Value =
        serde_json::from_str(&ok(home.run(&["session", "list", "--json"], &env))).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|s| s["end_date"] != "2013-12-31T00:00:00Z"),
        "{list}"
    );

    let over = home.run(
        &[
            "bench",
            "--sessions",
            "5000",
            "--start",
            "2004-01-01",
            "--end",
            "2005-01-01",
        ],
        &env,
    );
    assert_eq!(over.status.code(), Some(2));
}
