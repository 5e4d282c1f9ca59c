//! The sections of the settings, each with the checks it makes of itself.

use std::collections::BTreeMap;
use std::path::PathBuf;

use auth::Secret;
use model::{Amount, Price};
use serde::Deserialize;

use super::values::{
    self, AddressList, EncryptionKeys, LogFormatSetting, PublicUrl, ServiceUrl, SmtpSecurity,
};
use super::{ConfigError, Mode};

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
    /// and that page posts the token to `/auth/verify-email`. Empty: the console's
    /// `/verify-email` page (see [`super::Settings::console_origin`]).
    pub verify_url: String,
    /// Page of password links (a reset, or an invitation): the mail links to
    /// `<password_url>?token=<token>`, and that page posts the token with the new
    /// password to `/auth/password/reset`. Empty: the console's `/reset-password`
    /// page, or in production without `console.public_url` no link (the mail carries
    /// the token only).
    pub password_url: String,
}

impl SmtpSettings {
    pub(super) fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
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

/// The web console: where people open it and how its login cookies are marked.
#[derive(Clone, Debug, Deserialize)]
pub struct ConsoleSettings {
    /// The origin people open the console at (`https://app.example.com`): account
    /// mail links to its pages, and cookie-authenticated requests may come from it
    /// besides the request's own `Host`. Empty: this server's own address in
    /// development, none in production.
    pub public_url: PublicUrl,
    /// Marks the login cookies `Secure` on every answer. Without it they are
    /// `Secure` when the request came over HTTPS: TLS on the listener, or
    /// `X-Forwarded-Proto: https` from a peer in `rate_limits.trusted_proxies`.
    pub secure_cookies: bool,
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
    pub redis_url: ServiceUrl,
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
    pub url: ServiceUrl,
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
    /// Server-side backtests running at once on a node; 0 for one per core.
    pub backtest_workers: usize,
    /// Backtests a node keeps waiting for a worker; more are refused as busy.
    pub backtest_queue: usize,
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

/// The error for `key`.
pub(super) fn bad<T>(key: &str, message: &str) -> Result<T, ConfigError> {
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = self.level.parse::<tracing_subscriber::EnvFilter>() {
            return bad("log.level", &format!("not a level or directive list: {e}"));
        }
        Ok(())
    }
}

impl SessionStoreSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.redis_url.is_empty() || self.redis_url.expose().starts_with("redis://")) {
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
    pub(super) fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
        check_secret(
            "auth.api_key_pepper",
            self.api_key_pepper.expose(),
            mode,
            "SIMUTRADOR__AUTH__API_KEY_PEPPER",
        )
    }
}

impl AccountSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
