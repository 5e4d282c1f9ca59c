//! `simutrador-gateway`: `serve` (the default) runs the gateway; `admin ...` manages
//! users and API keys in the configured database; `migrate` applies migrations.

use std::path::PathBuf;
use std::process::ExitCode;

use auth::{
    AccountStore, AuditKind, AuthError, Database, NewApiKey, NewAuditEvent, NewUser, Plan, Role,
    Secret, StoreOptions, UserStatus, UserStore,
};
use gateway::app::Application;
use gateway::cluster::revocation::{self, Revoked};
use gateway::config::Settings;
use gateway::logging;
use gateway::secrets;
use serde_json::json;

// Measured: glibc's malloc was about 9% of the gateway's CPU in lock-step trading
// (every frame allocates its text, its message and the session's outputs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: simutrador-gateway [--config FILE] [COMMAND]

commands:
  serve                                   run the gateway (default)
  migrate                                 create or upgrade the database schema
  admin create-user --email E [--plan P] [--role user|admin]
  admin create-key  --email E [--plan P] [--name N]
                                          creates the user if needed; prints the key
                                          alone on the last line
  admin revoke-key  --email E --prefix PREFIX
                                          PREFIX: the key's visible part, e.g. stk_AbCd1234
  admin disable-user --email E            refuse the user's keys and tokens
  admin enable-user  --email E
                                          Revocations close open connections on every
                                          node within a second.
  admin backup  --to FILE                 database and generated secrets into a new
                                          file (mode 0600), while serving
  admin restore --from FILE [--force]     check FILE in full, then replace the database
                                          (--force if it holds data) and the secrets;
                                          stop every gateway first

Settings come from built-in defaults, then FILE (TOML), then SIMUTRADOR__* environment
variables, e.g. SIMUTRADOR__SERVER__PORT=9000. Plans: free, professional, enterprise.
";

#[actix_web::main]
async fn main() -> ExitCode {
    let mut config_file: Option<PathBuf> = None;
    let mut rest = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => match args.next() {
                Some(f) => config_file = Some(PathBuf::from(f)),
                None => return usage_error("--config needs a file"),
            },
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => rest.push(arg),
        }
    }
    let settings = match Settings::load(config_file.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let words: Vec<&str> = rest.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] | ["serve"] => {
            // `log.format` and `log.level`; secrets are never logged (see logging).
            if let Err(e) = logging::init(&settings) {
                return fail(&e);
            }
            serve(settings).await
        }
        ["migrate"] => match open_db(&settings).await {
            Ok(_) => {
                println!("database is up to date");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        ["admin", "backup", options @ ..] => match options {
            ["--to", file] => backup(&settings, file).await,
            _ => usage_error("admin backup takes --to FILE"),
        },
        ["admin", "restore", options @ ..] => match options {
            ["--from", file] => restore(&settings, file, false).await,
            ["--from", file, "--force"] | ["--force", "--from", file] => {
                restore(&settings, file, true).await
            }
            _ => usage_error("admin restore takes --from FILE [--force]"),
        },
        ["admin", command, options @ ..] => match admin(&settings, command, options).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&*e),
        },
        _ => usage_error(&format!("unknown command `{}`", rest.join(" "))),
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let host = settings.server.host.clone();
    let app_metrics_host = settings.server.metrics_host.clone();
    let public_console = settings.console.public_url.origin().map(str::to_string);
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => return fail(&e),
    };
    let base = format!("http://{host}:{}", app.port());
    // Written in one go and any failure ignored: a server whose stdout was closed (a
    // supervisor that stopped reading) keeps serving instead of dying on `println!`.
    let mut banner = format!("SimuTrador gateway listening on {base}\n");
    let console = public_console.unwrap_or_else(|| base.clone());
    banner += &format!("Web console: {console}/ (sign in at {console}/login)\n");
    if let Some(p) = app.compat_port() {
        banner += &format!("Python SDK compatibility port: http://{host}:{p}\n");
    }
    if let Some(p) = app.metrics_port() {
        banner += &format!("Metrics: http://{app_metrics_host}:{p}/metrics\n");
    }
    if let Some(b) = app.bootstrap() {
        banner += &format!(
            "\nFirst start: created admin user {} and a demo API key (shown only now):\n  {}\n\
             Exchange it for a token:\n  curl -s -X POST -H 'X-API-Key: {}' {base}/auth/token\n\
             More keys: simutrador-gateway admin create-key --email you@example.com --plan free\n\n",
            b.email, b.api_key, b.api_key
        );
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    let code = match app.run_until_stopped().await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("simutrador-gateway: {e}");
            1
        }
    };
    // Everything worth keeping was drained; work still pending past the drain timeout
    // (database writes of an unreachable database) is abandoned here rather than
    // dropped outside its runtime while the process tears down.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

async fn open_db(settings: &Settings) -> Result<Database, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let pepper = secrets::configured_or_generated(
        &settings.auth.api_key_pepper,
        &settings.data_dir,
        "api_key_pepper",
    )?;
    let options = StoreOptions::new(Secret::new(pepper.into_bytes()));
    Ok(auth::connect(&settings.database_url(), options).await?)
}

/// Writes an operator's console action to the audit log, as the admin REST API does
/// for its own (no actor: the console has no user; `"via": "cli"` says where it came
/// from). A failure is reported but does not undo the action.
async fn audit(db: &Database, kind: AuditKind, subject: uuid::Uuid, mut detail: serde_json::Value) {
    detail["via"] = json!("cli");
    let event = NewAuditEvent::new(kind).subject(subject).detail(detail);
    if let Err(e) = db.append_audit(event).await {
        eprintln!("warning: not written to the audit log: {e}");
    }
}

/// Creates a user from the console: verified (the operator vouches for the address)
/// and audited.
async fn create_user(db: &Database, new: NewUser) -> Result<auth::User, AuthError> {
    let user = db.create_user(new).await?;
    db.mark_email_verified(user.id, None).await?;
    let detail = gateway::routes::admin::created_user_detail(&user, false);
    audit(db, AuditKind::AdminAction, user.id, detail).await;
    Ok(user)
}

/// Value of `--name` in `options`.
fn option<'a>(options: &[&'a str], name: &str) -> Option<&'a str> {
    options.windows(2).find(|w| w[0] == name).map(|w| w[1])
}

async fn admin(
    settings: &Settings,
    command: &str,
    options: &[&str],
) -> Result<(), Box<dyn std::error::Error>> {
    let email = option(options, "--email").ok_or("--email is required")?;
    let plan: Option<Plan> = option(options, "--plan").map(str::parse).transpose()?;
    let db = open_db(settings).await?;
    match command {
        "create-user" => {
            let role: Role = option(options, "--role").unwrap_or("user").parse()?;
            let mut new = NewUser::new(email);
            new.plan = plan.unwrap_or(Plan::Free);
            new.role = role;
            let user = create_user(&db, new).await?;
            println!(
                "created user {} ({}, plan {}, role {:?})",
                user.email,
                user.id,
                user.plan.as_str(),
                user.role
            );
            println!("{}", user.id);
        }
        "create-key" => {
            let user = match db.user_by_email(email).await {
                Ok(u) => match plan {
                    Some(p) if p != u.plan => {
                        let changed = db.set_plan(u.id, p).await?;
                        let detail = json!({ "from": u.plan.as_str(), "to": p.as_str() });
                        audit(&db, AuditKind::PlanChanged, u.id, detail).await;
                        changed
                    }
                    _ => u,
                },
                Err(AuthError::NotFound) => {
                    let mut new = NewUser::new(email);
                    new.plan = plan.unwrap_or(Plan::Free);
                    create_user(&db, new).await?
                }
                Err(e) => return Err(e.into()),
            };
            let name = option(options, "--name").unwrap_or("cli");
            let key = db.create_api_key(user.id, NewApiKey::new(name)).await?;
            audit(
                &db,
                AuditKind::ApiKeyCreated,
                user.id,
                key.key.audit_detail(),
            )
            .await;
            println!(
                "API key for {} (plan {}), shown only now:",
                user.email,
                user.plan.as_str()
            );
            println!("{}", key.secret.expose());
        }
        "revoke-key" => {
            // Accepts the visible part as listed (`AbCd1234`), with `stk_`, or the whole key.
            let given = option(options, "--prefix").ok_or("--prefix is required")?;
            let prefix = given
                .strip_prefix("stk_")
                .unwrap_or(given)
                .split('_')
                .next()
                .unwrap_or_default();
            let user = db.user_by_email(email).await?;
            let keys = db.list_api_keys(user.id).await?;
            let key = keys
                .iter()
                .find(|k| k.prefix == prefix)
                .ok_or("no key with that prefix for this user")?;
            db.revoke_api_key(user.id, key.id).await?;
            if key.revoked_at.is_none() {
                audit(&db, AuditKind::ApiKeyRevoked, user.id, key.audit_detail()).await;
            }
            println!("revoked key {} of {}", key.prefix, user.email);
            announce(settings, Revoked::Key(key.id)).await;
        }
        "disable-user" | "enable-user" => {
            let before = db.user_by_email(email).await?;
            let (status, done) = if command == "disable-user" {
                (UserStatus::Disabled, "disabled")
            } else {
                (UserStatus::Active, "enabled")
            };
            let user = db.set_status(before.id, status).await?;
            if before.status != status {
                let detail = json!({ "from": before.status.as_str(), "to": status.as_str() });
                audit(&db, AuditKind::StatusChanged, user.id, detail).await;
            }
            println!("{done} user {} ({})", user.email, user.id);
            if status == UserStatus::Disabled {
                announce(settings, Revoked::User(user.id)).await;
            }
        }
        other => return Err(format!("unknown admin command `{other}`").into()),
    }
    Ok(())
}

/// A line on standard output; a closed pipe (`| head`) is not worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

async fn backup(settings: &Settings, file: &str) -> ExitCode {
    let report = match gateway::backup::backup(settings, file.as_ref()).await {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let m = &report.manifest;
    say!(
        "wrote {} ({} bytes): {} database at migration {}, taken {} on {}",
        report.path.display(),
        report.bytes,
        m.database.kind.as_str(),
        m.database.schema_version,
        m.created_at,
        m.node
    );
    let mut included = Vec::new();
    for s in &m.secrets {
        match &s.source {
            gateway::backup::SecretSource::File { .. } => included.push(s.name.as_str()),
            gateway::backup::SecretSource::Configuration { setting, .. }
            | gateway::backup::SecretSource::ConfiguredKeys { setting, .. } => say!(
                "not included: {} comes from the configuration ({setting}); keep the configuration safe too",
                s.name
            ),
            gateway::backup::SecretSource::Absent => {}
        }
    }
    if !included.is_empty() {
        say!("included secrets: {}", included.join(", "));
    }
    say!(
        "WARNING: this file holds secrets and every user's data (password hashes, API-key \
         hashes, results); with it, anyone can sign tokens and verify keys as this server. \
         It is mode 0600: keep it so, encrypted, on other storage than this host."
    );
    ExitCode::SUCCESS
}

async fn restore(settings: &Settings, file: &str, force: bool) -> ExitCode {
    let report = match gateway::backup::restore(settings, file.as_ref(), force).await {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let m = &report.manifest;
    say!(
        "restored the {} database of {} taken {} on {} ({} users; migrated to this version)",
        m.database.kind.as_str(),
        file,
        m.created_at,
        m.node,
        report.users
    );
    for path in &report.restored_secrets {
        say!("restored {} (mode 0600)", path.display());
    }
    for action in &report.actions {
        say!("ACTION NEEDED: {action}");
    }
    ExitCode::SUCCESS
}

/// Tells every node at once (nodes also read revocations from the database every
/// half second, so a failure here only delays the effect).
async fn announce(settings: &Settings, revoked: Revoked) {
    if let Err(e) = revocation::announce(&settings.session_store, revoked).await {
        eprintln!("note: could not notify other nodes through Redis ({e}); they see it within a second from the database");
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("simutrador-gateway: {e}");
    ExitCode::FAILURE
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("simutrador-gateway: {message}\n{USAGE}");
    ExitCode::from(2)
}
