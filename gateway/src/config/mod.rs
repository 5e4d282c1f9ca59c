//! Configuration: built-in defaults, then an optional TOML file, then `SIMUTRADOR__*`
//! environment variables (`SIMUTRADOR__SERVER__PORT=9000` sets `server.port`). One
//! source for everything the gateway enforces and advertises; validated at start with
//! an error that names the offending key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use auth::Secret;
use market_data::{Amount, Price};
use serde::Deserialize;

mod values;

pub use values::{
    AddressList, DatabaseUrl, EncryptionKeys, IpNet, LogFormat, LogFormatSetting, SmtpSecurity,
};

/// How the server runs; production refuses insecure defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Embedded defaults allowed (generated JWT secret, sample data).
    Development,
    /// Secrets must be configured.
    Production,
}

/// HTTP and WebSocket listener.
#[derive(Clone, Debug, Deserialize)]
pub struct ServerSettings {
    /// Address to bind.
    pub host: String,
    /// REST and WebSocket port (0 picks a free port).
    pub port: u16,
    /// Second port serving the same routes, where the Python SDK looks for
    /// `/auth/token`; 0 disables it.
    pub compat_port: u16,
    /// Largest accepted WebSocket frame, in bytes.
    pub max_frame_bytes: usize,
    /// Close a connection after this long without a client message.
    pub idle_timeout_sec: u64,
    /// A request body must arrive within this many seconds of its headers (408 otherwise).
    pub body_timeout_sec: u64,
    /// Frames queued per connection before its session pauses.
    pub outbound_queue: usize,
    /// Seconds to finish in-flight work on shutdown.
    pub shutdown_timeout_sec: u64,
    /// This node's name in the cluster (leases, logs); empty for `<hostname>-<pid>`.
    pub node_id: String,
    /// Port of a separate listener serving only `/metrics`; 0 serves `/metrics` on the
    /// main listener instead.
    pub metrics_port: u16,
    /// Address of the separate metrics listener.
    pub metrics_host: String,
}

/// Log output.
#[derive(Clone, Debug, Deserialize)]
pub struct LogSettings {
    /// `text`, `json`, or empty for text in development and JSON in production.
    pub format: LogFormatSetting,
    /// Level directives in `RUST_LOG` syntax, e.g. `info` or `info,gateway=debug`.
    pub level: String,
}

/// Human accounts: passwords, lockout, login sessions, secrets at rest.
#[derive(Clone, Debug, Deserialize)]
pub struct AccountSettings {
    /// Argon2id memory in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2id passes.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Password hashes and checks running at once (each holds the argon2 memory); 0
    /// for twice the number of cores.
    pub hashing_permits: u32,
    /// How long a login or registration waits for a hashing slot before a 503.
    pub hashing_wait_ms: u64,
    /// Failed logins within `failure_window_sec` that lock logins.
    pub max_failed_logins: u32,
    /// The window failures are counted in.
    pub failure_window_sec: u64,
    /// How long logins stay locked.
    pub lockout_sec: u64,
    /// Live login sessions per user; a new login past this ends the oldest.
    pub max_login_sessions: u32,
    /// A login session's absolute lifetime.
    pub max_session_duration_sec: u64,
    /// Access tokens of login sessions; refresh before they expire.
    pub access_token_lifetime_sec: u64,
    /// Email-verification links.
    pub verification_token_lifetime_sec: u64,
    /// How long a password-reset token works.
    pub password_reset_token_lifetime_sec: u64,
    /// `id:hexkey,...` (32-byte keys, 64 hex digits) for secrets at rest (TOTP); empty: a key
    /// generated under `data_dir` in development, none in production.
    pub encryption_keys: EncryptionKeys,
    /// The key id new secrets are sealed with; empty: the last one listed.
    pub encryption_key_current: String,
}

/// Account mail (verification links) over SMTP; an empty `host` writes the messages
/// to the log instead.
#[derive(Clone, Debug, Deserialize)]
pub struct SmtpSettings {
    /// Mail server; empty for the log notifier.
    pub host: String,
    /// Mail server port (587 for STARTTLS, 465 for TLS, 25 for none).
    pub port: u16,
    /// `starttls` (upgrade after connecting, required), `tls` (TLS from the first byte)
    /// or `none` (plain text; refused with credentials in production).
    /// Read only with a `host` (without one the other mail keys are not used, so an
    /// unknown value is `None` and refused only then).
    #[serde(deserialize_with = "values::lenient")]
    pub security: Option<SmtpSecurity>,
    /// SMTP AUTH user; empty for no authentication.
    pub username: String,
    /// SMTP AUTH password; never logged.
    pub password: Secret<String>,
    /// Sender, e.g. `SimuTrador <no-reply@example.com>`.
    pub from: String,
    /// Page of the verification link: the mail links to `<verify_url>?token=<token>`,
    /// and that page posts the token to `/auth/verify-email`.
    pub verify_url: String,
    /// Page of password links (a reset, or an invitation): the mail links to
    /// `<password_url>?token=<token>`, and that page posts the token with the new
    /// password to `/auth/password/reset`. Empty: the mail carries the token only.
    pub password_url: String,
}

impl SmtpSettings {
    fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
        let host = self.host.trim();
        if host.is_empty() {
            return Ok(());
        }
        let name = |h: &str| {
            h.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        };
        if host.parse::<std::net::IpAddr>().is_err() && !name(host) {
            return bad(
                "smtp.host",
                "must be a host name or an IP address (the port goes in smtp.port)",
            );
        }
        if self.port == 0 {
            return bad("smtp.port", "must be a port number (587 for starttls)");
        }
        let Some(security) = self.security else {
            return bad("smtp.security", "must be `none`, `starttls` or `tls`");
        };
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return bad(
                "smtp.from",
                "must be a mail address, e.g. `SimuTrador <no-reply@example.com>`",
            );
        }
        let url = self.verify_url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(' ') {
            return bad(
                "smtp.verify_url",
                "must be the http(s) URL of the page that verifies the token",
            );
        }
        let url = self.password_url.trim();
        if !url.is_empty()
            && (!(url.starts_with("https://") || url.starts_with("http://")) || url.contains(' '))
        {
            return bad(
                "smtp.password_url",
                "must be empty or the http(s) URL of the page that sets a new password",
            );
        }
        let has_password = !self.password.expose().is_empty();
        if self.username.is_empty() && has_password {
            return bad("smtp.username", "must be set when smtp.password is");
        }
        if !self.username.is_empty() && !has_password {
            return bad("smtp.password", "must be set when smtp.username is");
        }
        if mode == Mode::Production && security == SmtpSecurity::None && has_password {
            return bad(
                "smtp.security",
                "production mode does not send the SMTP password unencrypted: use starttls or tls",
            );
        }
        Ok(())
    }
}

/// A server users can choose at login (`GET /auth/servers`).
#[derive(Clone, Debug, Deserialize)]
pub struct ServerChoice {
    /// Shown in the login form.
    pub name: String,
}

/// Where session state lives between connections and nodes.
#[derive(Clone, Debug, Deserialize)]
pub struct SessionStoreSettings {
    /// Empty for this process's memory (single node); `redis://` for Redis (clusters).
    pub redis_url: String,
    /// Key prefix in Redis.
    pub key_prefix: String,
    /// A node that stops renewing its sessions' leases loses them after this long.
    pub lease_ms: u64,
    /// Checkpoint a running session every this many ticks...
    pub checkpoint_every_ticks: u64,
    /// ...or this many milliseconds, whichever comes first.
    pub checkpoint_every_ms: u64,
}

/// The user database.
#[derive(Clone, Debug, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite:` file URL or `postgres://` URL; empty for `<data_dir>/simutrador.db`.
    pub url: DatabaseUrl,
}

/// Token signing.
#[derive(Clone, Debug, Deserialize)]
pub struct JwtSettings {
    /// HS256 secret; empty in development generates one under the data directory.
    pub secret: Secret<String>,
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim.
    pub audience: String,
    /// Token lifetime in seconds.
    pub lifetime_sec: u64,
}

/// API keys and the first start.
#[derive(Clone, Debug, Deserialize)]
pub struct AuthSettings {
    /// Server-side key for hashing API keys (at least 32 bytes); empty in development
    /// generates one under the data directory. All nodes must share it.
    pub api_key_pepper: Secret<String>,
    /// Email of the admin user created on an empty database.
    pub admin_email: String,
}

/// Market data providers.
#[derive(Clone, Debug, Deserialize)]
pub struct MarketDataSettings {
    /// Provider name -> data root; the provider named `default_provider` serves
    /// requests without `data_provider`.
    pub roots: BTreeMap<String, PathBuf>,
    /// Provider used when a request names none.
    pub default_provider: String,
    /// Byte budget of the series cache.
    pub cache_bytes: usize,
}

/// Simulation defaults and limits.
#[derive(Clone, Debug, Deserialize)]
pub struct SimulationSettings {
    /// Seconds a disconnected session is kept for `resume_session`.
    pub resume_grace_sec: u64,
    /// Commission per share when a request gives none.
    pub default_commission_per_share: Price,
    /// Minimum commission per fill.
    pub min_commission: Amount,
    /// Slippage when a request gives none.
    pub default_slippage_bps: u32,
    /// Cap on fills per bar as basis points of bar volume; 0 disables it.
    pub max_volume_participation_bps: u32,
    /// Largest `warmup_bars` accepted.
    pub max_warmup_bars: usize,
    /// Largest number of bars one session may run.
    pub max_bars: usize,
}

/// Highest `plans.*.max_working_orders` accepted: each working order costs every bar
/// of its session a match attempt, so a cap beyond this would not protect the node.
pub const MAX_WORKING_ORDERS_CAP: u32 = 1_000_000;

/// Limits of one plan, advertised in `connection_ready` and enforced.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PlanLimits {
    /// Open WebSocket connections per user.
    pub concurrent_connections: u32,
    /// Live simulation sessions per user.
    pub concurrent_sessions: u32,
    /// Client messages per second per connection.
    pub messages_per_second: u32,
    /// Wall-clock limit of one simulation.
    pub max_simulation_duration_sec: u64,
    /// Working orders one session may hold, bracket exits included (see
    /// `EngineConfig::max_working_orders`); more are refused with `MAX_WORKING_ORDERS`.
    pub max_working_orders: u32,
}

/// One request limit: at most `requests` per fixed window of `period_sec` seconds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RateRule {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length in seconds.
    pub period_sec: u64,
}

/// Request rate limits (PROTOCOL.md section 7). Per-plan caps are under `plans`.
#[derive(Clone, Debug, Deserialize)]
pub struct RateLimitSettings {
    /// `false` turns off the request limits below (plan caps still apply).
    pub enabled: bool,
    /// Peers (IPs or CIDR blocks, comma-separated) whose `X-Forwarded-For` names the
    /// client, e.g. the load balancer; every other peer is the client itself.
    pub trusted_proxies: AddressList,
    /// Every `/auth/*` request, per client IP.
    pub auth: RateRule,
    /// WebSocket handshakes (`/ws/simulate`), per client IP.
    pub ws_connect: RateRule,
    /// `/health`, `/ready` and `/ws/health`, per client IP, counted on each node.
    pub health: RateRule,
    /// `/api/*` and `/admin/*`, per user (per client IP for requests without a valid
    /// token).
    pub api: RateRule,
}

/// Per-plan limits.
#[derive(Clone, Debug, Deserialize)]
pub struct PlanSettings {
    /// `free`.
    pub free: PlanLimits,
    /// `professional`.
    pub professional: PlanLimits,
    /// `enterprise`.
    pub enterprise: PlanLimits,
}

impl PlanSettings {
    /// The limits of `plan`.
    pub fn of(&self, plan: protocol::Plan) -> &PlanLimits {
        match plan {
            protocol::Plan::Free => &self.free,
            protocol::Plan::Professional => &self.professional,
            protocol::Plan::Enterprise => &self.enterprise,
        }
    }
}

/// All gateway settings.
#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    /// Development or production.
    pub mode: Mode,
    /// Directory for the SQLite file and generated secrets.
    pub data_dir: PathBuf,
    /// Listener.
    pub server: ServerSettings,
    /// User database.
    pub database: DatabaseSettings,
    /// Tokens.
    pub jwt: JwtSettings,
    /// API keys and bootstrap.
    pub auth: AuthSettings,
    /// Market data.
    pub market_data: MarketDataSettings,
    /// Simulations.
    pub simulation: SimulationSettings,
    /// Session state storage.
    pub session_store: SessionStoreSettings,
    /// Human accounts.
    pub accounts: AccountSettings,
    /// Account mail.
    pub smtp: SmtpSettings,
    /// Servers selectable at login, by id.
    pub servers: BTreeMap<String, ServerChoice>,
    /// Plans.
    pub plans: PlanSettings,
    /// Request rate limits.
    pub rate_limits: RateLimitSettings,
    /// Logging.
    pub log: LogSettings,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error at `{key}`: {message}")]
pub struct ConfigError {
    /// Dotted key, e.g. `server.port`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

const DEFAULTS: &str = r#"
mode = "development"
data_dir = "./data"

[server]
host = "127.0.0.1"
port = 8003
compat_port = 8001
max_frame_bytes = 1048576
idle_timeout_sec = 300
body_timeout_sec = 10
outbound_queue = 256
shutdown_timeout_sec = 30
node_id = ""
metrics_port = 0
metrics_host = "127.0.0.1"

[log]
format = ""
level = "info"

[accounts]
argon2_memory_kib = 38912
argon2_iterations = 3
argon2_parallelism = 1
hashing_permits = 0
hashing_wait_ms = 5000
max_failed_logins = 5
failure_window_sec = 900
lockout_sec = 900
max_login_sessions = 5
max_session_duration_sec = 43200
access_token_lifetime_sec = 2700
verification_token_lifetime_sec = 86400
password_reset_token_lifetime_sec = 3600
encryption_keys = ""
encryption_key_current = ""

[smtp]
host = ""
port = 587
security = "starttls"
username = ""
password = ""
from = ""
verify_url = ""
password_url = ""

[servers.default]
name = "SimuTrador"

[session_store]
redis_url = ""
key_prefix = "st"
lease_ms = 3000
checkpoint_every_ticks = 10000
checkpoint_every_ms = 5000

[database]
url = ""

[jwt]
secret = ""
issuer = "simutrador"
audience = "simutrador-clients"
lifetime_sec = 3600

[auth]
api_key_pepper = ""
admin_email = "admin@simutrador.local"

[market_data]
default_provider = "default"
cache_bytes = 536870912
[market_data.roots]
default = "sample-data"

[simulation]
resume_grace_sec = 300
default_commission_per_share = "0"
min_commission = "0"
default_slippage_bps = 0
max_volume_participation_bps = 0
max_warmup_bars = 10000
max_bars = 5000000

[rate_limits]
enabled = true
trusted_proxies = ""
auth = { requests = 300, period_sec = 60 }
ws_connect = { requests = 300, period_sec = 60 }
health = { requests = 600, period_sec = 60 }
api = { requests = 1200, period_sec = 60 }

[plans.free]
concurrent_connections = 2
concurrent_sessions = 1
messages_per_second = 50
max_simulation_duration_sec = 3600
max_working_orders = 100

[plans.professional]
concurrent_connections = 10
concurrent_sessions = 5
messages_per_second = 500
max_simulation_duration_sec = 14400
max_working_orders = 1000

[plans.enterprise]
concurrent_connections = 100
concurrent_sessions = 50
messages_per_second = 5000
max_simulation_duration_sec = 86400
max_working_orders = 10000
"#;

impl Settings {
    /// This node's name: `server.node_id`, or `<hostname>-<pid>` when that is empty.
    pub fn node_id(&self) -> String {
        if !self.server.node_id.is_empty() {
            return self.server.node_id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into());
        format!("{host}-{}", std::process::id())
    }

    /// Defaults, then `file` if given (it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let vars: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("SIMUTRADOR__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("SIMUTRADOR")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(vars)),
        );
        let settings: Settings =
            builder
                .build()
                .and_then(|c| c.try_deserialize())
                .map_err(|e| {
                    let key = error_key(&e);
                    // The key is named once, by `ConfigError`'s own message.
                    let text = e.to_string();
                    let message = text
                        .split(" for key `")
                        .next()
                        .unwrap_or(&text)
                        .to_string();
                    ConfigError { key, message }
                })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Each section checks itself; a few rules span sections.
    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.log.validate()?;
        self.session_store.validate()?;
        self.database.validate(self.mode)?;
        self.jwt.validate(self.mode)?;
        self.auth.validate(self.mode)?;
        self.accounts.validate()?;
        self.smtp.validate(self.mode)?;
        if self.servers.is_empty() {
            return bad("servers", "at least one server must be selectable at login");
        }
        self.market_data.validate()?;
        self.simulation.validate()?;
        self.plans.validate()?;
        self.rate_limits.validate()
    }

    /// The log format: `log.format`, or by default text in development and JSON in
    /// production.
    pub fn log_format(&self) -> LogFormat {
        self.log.format.0.unwrap_or(match self.mode {
            Mode::Production => LogFormat::Json,
            Mode::Development => LogFormat::Text,
        })
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        let url = self.database.url.expose().trim();
        if url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("simutrador.db").display()
            )
        } else {
            url.to_string()
        }
    }
}

/// The error for `key`.
fn bad<T>(key: &str, message: &str) -> Result<T, ConfigError> {
    Err(ConfigError {
        key: key.into(),
        message: message.into(),
    })
}

/// A secret setting (`key`): at least 32 bytes when set, set in production, and never
/// one of the published examples there.
fn check_secret(key: &str, value: &str, mode: Mode, variable: &str) -> Result<(), ConfigError> {
    if mode == Mode::Production && value.len() < 32 {
        return bad(
            key,
            &format!("production mode needs a secret of at least 32 bytes ({variable})"),
        );
    }
    if mode == Mode::Production && is_published_example(value) {
        return bad(key, PUBLISHED_EXAMPLE);
    }
    if !value.is_empty() && value.len() < 32 {
        return bad(key, "must be at least 32 bytes when set");
    }
    Ok(())
}

const PUBLISHED_EXAMPLE: &str = "production mode refuses the example value published in docker-compose.yml, deploy/k8s/secret.example.yaml or the README: set a secret of your own (e.g. openssl rand -hex 32)";

impl ServerSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return bad("server.host", "must not be empty");
        }
        if self.max_frame_bytes < 1024 {
            return bad("server.max_frame_bytes", "must be at least 1024");
        }
        if self.outbound_queue == 0 {
            return bad("server.outbound_queue", "must be at least 1");
        }
        if self.idle_timeout_sec == 0 {
            return bad("server.idle_timeout_sec", "must be at least 1");
        }
        if self.body_timeout_sec == 0 {
            return bad("server.body_timeout_sec", "must be at least 1");
        }
        if self.metrics_port != 0 {
            if self.metrics_host.trim().is_empty() {
                return bad("server.metrics_host", "must not be empty");
            }
            if [self.port, self.compat_port].contains(&self.metrics_port) {
                return bad(
                    "server.metrics_port",
                    "must differ from server.port and server.compat_port (0 serves /metrics on the main listener)",
                );
            }
        }
        Ok(())
    }
}

impl LogSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = self.level.parse::<tracing_subscriber::EnvFilter>() {
            return bad("log.level", &format!("not a level or directive list: {e}"));
        }
        Ok(())
    }
}

impl SessionStoreSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.redis_url.is_empty() || self.redis_url.starts_with("redis://")) {
            return bad("session_store.redis_url", "must be empty or a redis:// URL");
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}', ' ']) {
            return bad(
                "session_store.key_prefix",
                "must be non-empty, without braces or spaces",
            );
        }
        if self.lease_ms < 300 {
            return bad("session_store.lease_ms", "must be at least 300");
        }
        if self.checkpoint_every_ticks == 0 || self.checkpoint_every_ms == 0 {
            return bad(
                "session_store.checkpoint_every_ticks",
                "checkpoint intervals must be at least 1",
            );
        }
        Ok(())
    }
}

impl DatabaseSettings {
    fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
        let url = self.url.expose().trim();
        if !(url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return bad("database.url", "must be a sqlite: or postgres:// URL");
        }
        if mode == Mode::Production && is_published_example(url) {
            return bad("database.url", PUBLISHED_EXAMPLE);
        }
        Ok(())
    }
}

impl JwtSettings {
    fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
        check_secret(
            "jwt.secret",
            self.secret.expose(),
            mode,
            "SIMUTRADOR__JWT__SECRET",
        )?;
        if self.lifetime_sec < 60 {
            return bad("jwt.lifetime_sec", "must be at least 60");
        }
        Ok(())
    }
}

impl AuthSettings {
    fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
        check_secret(
            "auth.api_key_pepper",
            self.api_key_pepper.expose(),
            mode,
            "SIMUTRADOR__AUTH__API_KEY_PEPPER",
        )
    }
}

impl AccountSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.argon2_memory_kib < 8 * self.argon2_parallelism.max(1)
            || self.argon2_iterations == 0
            || self.argon2_parallelism == 0
        {
            return bad(
                "accounts.argon2_memory_kib",
                "argon2 costs are out of range",
            );
        }
        if self.max_failed_logins == 0 || self.max_login_sessions == 0 {
            return bad("accounts.max_failed_logins", "limits must be at least 1");
        }
        if self.access_token_lifetime_sec < 60
            || self.access_token_lifetime_sec > self.max_session_duration_sec
        {
            return bad(
                "accounts.access_token_lifetime_sec",
                "must be at least 60 and at most accounts.max_session_duration_sec",
            );
        }
        Ok(())
    }
}

impl MarketDataSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.roots.contains_key(&self.default_provider) {
            return bad(
                "market_data.default_provider",
                "must name one of market_data.roots",
            );
        }
        Ok(())
    }
}

impl SimulationSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.default_commission_per_share.raw() < 0 {
            return bad(
                "simulation.default_commission_per_share",
                "must be a non-negative decimal",
            );
        }
        if self.min_commission.is_negative() {
            return bad(
                "simulation.min_commission",
                "must be a non-negative decimal",
            );
        }
        if self.default_slippage_bps > 10_000 {
            return bad("simulation.default_slippage_bps", "must be at most 10000");
        }
        if self.max_volume_participation_bps > 10_000 {
            return bad(
                "simulation.max_volume_participation_bps",
                "must be at most 10000",
            );
        }
        Ok(())
    }
}

impl PlanSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        for (name, plan) in [
            ("free", &self.free),
            ("professional", &self.professional),
            ("enterprise", &self.enterprise),
        ] {
            if plan.concurrent_connections == 0
                || plan.concurrent_sessions == 0
                || plan.messages_per_second == 0
            {
                return bad(&format!("plans.{name}"), "limits must be at least 1");
            }
            if plan.max_simulation_duration_sec == 0 {
                return bad(
                    &format!("plans.{name}.max_simulation_duration_sec"),
                    "must be at least 1",
                );
            }
            if plan.max_working_orders == 0 || plan.max_working_orders > MAX_WORKING_ORDERS_CAP {
                return bad(
                    &format!("plans.{name}.max_working_orders"),
                    &format!("must be between 1 and {MAX_WORKING_ORDERS_CAP}"),
                );
            }
        }
        Ok(())
    }
}

impl RateLimitSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        for (name, rule) in [
            ("auth", &self.auth),
            ("ws_connect", &self.ws_connect),
            ("health", &self.health),
            ("api", &self.api),
        ] {
            if rule.requests == 0 || rule.period_sec == 0 || rule.period_sec > 86_400 {
                return bad(
                    &format!("rate_limits.{name}"),
                    "requests must be at least 1 and period_sec between 1 and 86400",
                );
            }
        }
        Ok(())
    }
}

/// The key named in a `config` error message (`... for key `server.port``), if any.
fn error_key(e: &config::ConfigError) -> String {
    let text = e.to_string();
    text.split("key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .map(|k| k.trim_start_matches("SIMUTRADOR__").to_lowercase())
        .unwrap_or_else(|| "configuration".to_string())
}

/// Values that were published as examples (docker-compose.yml defaults, the
/// Kubernetes Secret template, README snippets). Anyone can read them, so a production
/// server must not run with them. Compared case-insensitively, and as markers: an
/// example with a character changed is still an example.
const PUBLISHED_EXAMPLES: &[&str] = &[
    "EXAMPLE-ONLY-replace-me-jwt-secret-0123456789abcdef",
    "EXAMPLE-ONLY-replace-me-api-key-pepper-0123456789",
    "EXAMPLE-ONLY-postgres-password",
    "REPLACE-ME-example-jwt-secret-at-least-32-bytes",
    "REPLACE-ME-example-api-key-pepper-at-least-32-bytes",
    "REPLACE-ME-user",
    "REPLACE-ME-password",
];

/// The markers every published example carries.
const EXAMPLE_MARKERS: &[&str] = &["example-only", "replace-me"];

/// Whether `value` is, or contains, a published example.
fn is_published_example(value: &str) -> bool {
    let value = value.to_ascii_lowercase();
    PUBLISHED_EXAMPLES
        .iter()
        .any(|example| value.contains(&example.to_ascii_lowercase()))
        || EXAMPLE_MARKERS.iter().any(|marker| value.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!((s.server.port, s.server.compat_port), (8003, 8001));
        assert_eq!(s.mode, Mode::Development);
        assert!(s
            .database_url()
            .starts_with("sqlite://./data/simutrador.db"));
        assert_eq!(s.plans.free.concurrent_sessions, 1);
        let caps = [&s.plans.free, &s.plans.professional, &s.plans.enterprise]
            .map(|p| p.max_working_orders);
        assert_eq!(caps, [100, 1_000, 10_000]);
    }

    #[test]
    fn environment_overrides() {
        let s = Settings::load_from(
            None,
            env(&[
                ("SIMUTRADOR__SERVER__PORT", "9100"),
                ("SIMUTRADOR__DATA_DIR", "/tmp/x"),
                ("SIMUTRADOR__DATABASE__URL", "postgres://u@h/db"),
                ("SIMUTRADOR__PLANS__FREE__CONCURRENT_SESSIONS", "3"),
                ("OTHER__SERVER__PORT", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.port, 9100);
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.database_url(), "postgres://u@h/db");
        assert_eq!(s.plans.free.concurrent_sessions, 3);
    }

    #[test]
    fn toml_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, "[server]\nport = 7000\nidle_timeout_sec = 10\n").unwrap();
        let s =
            Settings::load_from(Some(&path), env(&[("SIMUTRADOR__SERVER__PORT", "7001")])).unwrap();
        assert_eq!((s.server.port, s.server.idle_timeout_sec), (7001, 10));
        assert!(Settings::load_from(Some(&dir.path().join("missing.toml")), env(&[])).is_err());
    }

    #[test]
    fn errors_name_the_key() {
        let e = Settings::load_from(None, env(&[("SIMUTRADOR__SERVER__PORT", "not-a-port")]))
            .unwrap_err();
        assert_eq!(e.key, "server.port", "{e}");
        let e = Settings::load_from(None, env(&[("SIMUTRADOR__MODE", "production")])).unwrap_err();
        assert_eq!(e.key, "jwt.secret");
        let e = Settings::load_from(None, env(&[("SIMUTRADOR__DATABASE__URL", "mysql://x")]))
            .unwrap_err();
        assert_eq!(e.key, "database.url");
        let e = Settings::load_from(
            None,
            env(&[("SIMUTRADOR__SIMULATION__MIN_COMMISSION", "-1")]),
        )
        .unwrap_err();
        assert_eq!(e.key, "simulation.min_commission");
        let e = Settings::load_from(
            None,
            env(&[("SIMUTRADOR__PLANS__FREE__MESSAGES_PER_SECOND", "0")]),
        )
        .unwrap_err();
        assert_eq!(e.key, "plans.free");
        for value in ["0", "1000001"] {
            let e = Settings::load_from(
                None,
                env(&[("SIMUTRADOR__PLANS__PROFESSIONAL__MAX_WORKING_ORDERS", value)]),
            )
            .unwrap_err();
            assert_eq!(e.key, "plans.professional.max_working_orders", "{value}");
        }
        for (var, value, key) in [
            (
                "SIMUTRADOR__RATE_LIMITS__AUTH__REQUESTS",
                "0",
                "rate_limits.auth",
            ),
            (
                "SIMUTRADOR__RATE_LIMITS__API__PERIOD_SEC",
                "0",
                "rate_limits.api",
            ),
            (
                "SIMUTRADOR__RATE_LIMITS__TRUSTED_PROXIES",
                "10.0.0.0/33",
                "rate_limits.trusted_proxies",
            ),
            (
                "SIMUTRADOR__RATE_LIMITS__TRUSTED_PROXIES",
                "nginx",
                "rate_limits.trusted_proxies",
            ),
        ] {
            let e = Settings::load_from(None, env(&[(var, value)])).unwrap_err();
            assert_eq!(e.key, key, "{var}={value}: {e}");
        }
    }

    #[test]
    fn production_refuses_the_published_example_secrets() {
        let own = "0f3a9c1d2e4b5a6978877665544332211aabbccddeeff00112233445566778899";
        let production = |jwt: &str, pepper: &str, url: &str| {
            Settings::load_from(
                None,
                env(&[
                    ("SIMUTRADOR__MODE", "production"),
                    ("SIMUTRADOR__JWT__SECRET", jwt),
                    ("SIMUTRADOR__AUTH__API_KEY_PEPPER", pepper),
                    ("SIMUTRADOR__DATABASE__URL", url),
                ]),
            )
        };
        let url = "postgres://simutrador:s3cr3t-of-mine@db:5432/simutrador";
        assert!(production(own, own, url).is_ok());
        for (jwt, pepper, url, key) in [
            // docker-compose.yml's former defaults.
            (
                "EXAMPLE-ONLY-replace-me-jwt-secret-0123456789abcdef",
                own,
                url,
                "jwt.secret",
            ),
            (
                own,
                "EXAMPLE-ONLY-replace-me-api-key-pepper-0123456789",
                url,
                "auth.api_key_pepper",
            ),
            (
                own,
                own,
                "postgres://simutrador:EXAMPLE-ONLY-postgres-password@postgres:5432/simutrador",
                "database.url",
            ),
            // deploy/k8s/secret.example.yaml.
            (
                "REPLACE-ME-example-jwt-secret-at-least-32-bytes",
                own,
                url,
                "jwt.secret",
            ),
            (
                own,
                "REPLACE-ME-example-api-key-pepper-at-least-32-bytes",
                url,
                "auth.api_key_pepper",
            ),
            (
                own,
                own,
                "postgres://REPLACE-ME-user:REPLACE-ME-password@postgres.example.internal:5432/simutrador",
                "database.url",
            ),
            // Edited, but still the example.
            (
                "replace-me-example-jwt-secret-at-least-32-bytes!",
                own,
                url,
                "jwt.secret",
            ),
        ] {
            let e = production(jwt, pepper, url).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains("example"), "{e}");
        }
        // Development keeps accepting them (local try-outs).
        let dev = Settings::load_from(
            None,
            env(&[(
                "SIMUTRADOR__JWT__SECRET",
                "REPLACE-ME-example-jwt-secret-at-least-32-bytes",
            )]),
        );
        assert!(dev.is_ok());
    }

    #[test]
    fn trusted_proxies_are_addresses_and_blocks() {
        let s = Settings::load_from(
            None,
            env(&[(
                "SIMUTRADOR__RATE_LIMITS__TRUSTED_PROXIES",
                "10.0.0.0/8, 192.168.1.5,::1, fd00::/8",
            )]),
        )
        .unwrap();
        let nets = &s.rate_limits.trusted_proxies;
        assert_eq!(nets.len(), 4);
        let inside = |ip: &str| nets.iter().any(|n| n.contains(ip.parse().unwrap()));
        assert!(inside("10.200.3.4"));
        assert!(
            inside("::ffff:10.1.2.3"),
            "IPv4-mapped addresses count as IPv4"
        );
        assert!(inside("192.168.1.5"));
        assert!(!inside("192.168.1.6"));
        assert!(inside("::1"));
        assert!(inside("fd12:3456::1"));
        assert!(!inside("11.0.0.1"));
        assert!(!inside("fe80::1"));
    }

    #[test]
    fn metrics_listener_and_log_settings() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(
            (s.server.metrics_port, s.server.metrics_host.as_str()),
            (0, "127.0.0.1")
        );
        assert_eq!(
            (s.log_format(), s.log.level.as_str()),
            (LogFormat::Text, "info")
        );
        let s = Settings::load_from(
            None,
            env(&[
                ("SIMUTRADOR__SERVER__METRICS_PORT", "9464"),
                ("SIMUTRADOR__LOG__FORMAT", "json"),
                ("SIMUTRADOR__LOG__LEVEL", "warn,gateway=debug"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.metrics_port, 9464);
        assert_eq!(s.log_format(), LogFormat::Json);
        let secret = "x".repeat(32);
        let prod = Settings::load_from(
            None,
            env(&[
                ("SIMUTRADOR__MODE", "production"),
                ("SIMUTRADOR__JWT__SECRET", &secret),
                ("SIMUTRADOR__AUTH__API_KEY_PEPPER", &secret),
            ]),
        )
        .unwrap();
        assert_eq!(prod.log_format(), LogFormat::Json);
        for (key, value, named) in [
            ("SIMUTRADOR__LOG__FORMAT", "xml", "log.format"),
            ("SIMUTRADOR__LOG__LEVEL", "info,=[", "log.level"),
            (
                "SIMUTRADOR__SERVER__METRICS_PORT",
                "8003",
                "server.metrics_port",
            ),
            (
                "SIMUTRADOR__SERVER__METRICS_PORT",
                "70000",
                "server.metrics_port",
            ),
        ] {
            let e = Settings::load_from(None, env(&[(key, value)])).unwrap_err();
            assert_eq!(e.key, named, "{key}={value}: {e}");
        }
    }
}
