//! Load generator for `POST /auth/login` against a running gateway on this machine: how
//! many logins per second the argon2 costs allow. Not a test: a benchmark, bounded in
//! time and concurrency, and only against loopback addresses.
//!
//! It reads the gateway's settings from the same `SIMUTRADOR__*` environment (database
//! URL, data directory, pepper, argon2 costs), creates `--accounts` verified accounts
//! directly in that database with those costs (existing ones are kept), then logs in
//! for `--seconds` over `--concurrency` connections:
//!
//! - `--mode ok`: the right password, accounts in turn (each login opens a login
//!   session; past `accounts.max_login_sessions` the oldest is ended);
//! - `--mode wrong`: a wrong password, accounts in turn; start the gateway with a high
//!   `accounts.max_failed_logins` or accounts lock after 5 failures (a locked account
//!   is refused after the same argon2 verification, but skips the failure bookkeeping);
//! - `--mode unknown`: emails without an account (verified against a dummy hash).
//!
//! ```sh
//! export SIMUTRADOR__DATA_DIR=$(mktemp -d) SIMUTRADOR__SERVER__PORT=18003 SIMUTRADOR__SERVER__COMPAT_PORT=0 \
//!   SIMUTRADOR__RATE_LIMITS__ENABLED=false SIMUTRADOR__ACCOUNTS__MAX_FAILED_LOGINS=1000000
//! target/release/simutrador-gateway &
//! target/release/examples/login_rate --url http://127.0.0.1:18003 --mode ok --concurrency 8 --seconds 10
//! ```

use std::time::{Duration, Instant};

use auth::{AccountPolicy, AccountStore, AuthError, NewUser, PasswordParams, Secret, StoreOptions};
use gateway::config::Settings;

const PASSWORD: &str = "login-bench password 0123";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Ok,
    Wrong,
    Unknown,
}

struct Plan {
    url: String,
    mode: Mode,
    accounts: usize,
    concurrency: usize,
    seconds: u64,
}

fn plan() -> Result<Plan, String> {
    let mut plan = Plan {
        url: "http://127.0.0.1:8003".into(),
        mode: Mode::Ok,
        accounts: 200,
        concurrency: 8,
        seconds: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |max: u64| {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or(format!("{flag}: 1 to {max}"))
        };
        match flag.as_str() {
            "--url" => plan.url = value.trim_end_matches('/').to_string(),
            "--mode" => {
                plan.mode = match value.as_str() {
                    "ok" => Mode::Ok,
                    "wrong" => Mode::Wrong,
                    "unknown" => Mode::Unknown,
                    _ => return Err("--mode: ok, wrong or unknown".into()),
                }
            }
            "--accounts" => plan.accounts = number(10_000)? as usize,
            "--concurrency" => plan.concurrency = number(256)? as usize,
            "--seconds" => plan.seconds = number(120)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let host = plan
        .url
        .strip_prefix("http://")
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or_default();
    let host = host.trim_start_matches('[');
    if !(host == "localhost"
        || host.starts_with("127.")
        || host.is_empty() && plan.url.contains("[::1]"))
    {
        return Err(
            "--url must be http:// on a loopback address (127.0.0.0/8, localhost, [::1])".into(),
        );
    }
    Ok(plan)
}

fn email(i: usize) -> String {
    format!("login-bench-{i}@example.com")
}

/// Creates the accounts the way registration does, with the gateway's costs.
async fn prepare(settings: &Settings, accounts: usize) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let pepper = gateway::secrets::configured_or_generated(
        &settings.auth.api_key_pepper,
        &settings.data_dir,
        "api_key_pepper",
    )?;
    let a = &settings.accounts;
    let policy = AccountPolicy {
        password: PasswordParams {
            m_cost: a.argon2_memory_kib,
            t_cost: a.argon2_iterations,
            p_cost: a.argon2_parallelism,
        },
        ..AccountPolicy::default()
    };
    let db = auth::connect(
        &settings.database_url(),
        StoreOptions::new(Secret::new(pepper.into_bytes())).accounts(policy),
    )
    .await?;
    let started = Instant::now();
    let mut created = 0;
    for i in 0..accounts {
        match db
            .register_user(NewUser::new(email(i)), Secret::new(PASSWORD.into()), None)
            .await
        {
            Ok(registration) => {
                db.verify_email(registration.verification.token.expose())
                    .await?;
                created += 1;
            }
            Err(AuthError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!(
        "{accounts} accounts ready ({created} created in {:.1} s, argon2id m={} KiB t={} p={})",
        started.elapsed().as_secs_f64(),
        a.argon2_memory_kib,
        a.argon2_iterations,
        a.argon2_parallelism
    );
    db.close().await;
    Ok(())
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    ok: u64,
    refused: u64,
    limited: u64,
    other: u64,
}

async fn worker(plan: std::rc::Rc<Plan>, index: usize, deadline: Instant) -> Tally {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let mut tally = Tally::default();
    let mut n = index;
    while Instant::now() < deadline {
        let (email, password) = match plan.mode {
            Mode::Ok => (email(n % plan.accounts), PASSWORD),
            Mode::Wrong => (email(n % plan.accounts), "not the password at all"),
            Mode::Unknown => (format!("nobody-{n}@example.com"), PASSWORD),
        };
        n += plan.concurrency;
        let body = serde_json::json!({"email": email, "password": password, "server": "default"});
        let started = Instant::now();
        let status = match client
            .post(format!("{}/auth/login", plan.url))
            .send_json(&body)
            .await
        {
            Ok(mut res) => {
                let _ = res.body().await;
                res.status().as_u16()
            }
            Err(_) => 0,
        };
        tally.latencies.push(started.elapsed());
        match status {
            200 => tally.ok += 1,
            401 => tally.refused += 1,
            429 => tally.limited += 1,
            _ => tally.other += 1,
        }
    }
    tally
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plan = std::rc::Rc::new(plan()?);
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; build with --release for numbers");
    }
    let settings = Settings::load(None)?;
    if plan.mode != Mode::Unknown {
        prepare(&settings, plan.accounts).await?;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(plan.seconds);
    let workers: Vec<_> = (0..plan.concurrency)
        .map(|i| actix_web::rt::spawn(worker(std::rc::Rc::clone(&plan), i, deadline)))
        .collect();
    let mut total = Tally::default();
    for w in workers {
        let t = w.await?;
        total.latencies.extend(t.latencies);
        total.ok += t.ok;
        total.refused += t.refused;
        total.limited += t.limited;
        total.other += t.other;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut l = total.latencies;
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let count = l.len();
    println!(
        "mode {:?}, {} connections, {:.1} s: {count} requests, {:.1} req/s; 200: {}, 401: {}, 429: {}, other/failed: {}",
        plan.mode,
        plan.concurrency,
        elapsed,
        count as f64 / elapsed,
        total.ok,
        total.refused,
        total.limited,
        total.other
    );
    println!(
        "latency ms: p50 {:.1}, p90 {:.1}, p99 {:.1}, max {:.1}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        l.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    if total.limited > 0 {
        eprintln!("warning: 429s: the auth rate limit counted these requests (rate_limits.*)");
    }
    Ok(())
}
