//! Configuration: built-in defaults, then an optional TOML file, then `SIMUTRADOR__*`
//! environment variables (`SIMUTRADOR__SERVER__PORT=9000` sets `server.port`). One
//! source for everything the gateway enforces and advertises; validated at start with
//! an error that names the offending key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod sections;
mod values;

pub use sections::*;

pub use values::{
    AddressList, EncryptionKeys, IpNet, LogFormat, LogFormatSetting, PublicUrl, ServiceUrl,
    SmtpSecurity,
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
    /// The web console.
    pub console: ConsoleSettings,
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

[console]
public_url = ""
secure_cookies = false

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
backtest_workers = 0
backtest_queue = 64

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
                    let message = text.split(" for key `").next().unwrap_or(&text).to_string();
                    ConfigError { key, message }
                })?;
        let mut settings = settings;
        settings.default_mail_links();
        settings.validate()?;
        Ok(settings)
    }

    /// Where people open the console: `console.public_url`, or in development this
    /// server's own address (`http://<server.host>:<server.port>`, a wildcard host
    /// shown as the loopback address); none in production without `console.public_url`.
    pub fn console_origin(&self) -> Option<String> {
        if let Some(origin) = self.console.public_url.origin() {
            return Some(origin.to_string());
        }
        if self.mode == Mode::Production {
            return None;
        }
        let host = match self.server.host.trim() {
            "" | "0.0.0.0" => "127.0.0.1".to_string(),
            "::" | "[::]" => "[::1]".to_string(),
            h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
            h => h.to_string(),
        };
        Some(format!("http://{host}:{}", self.server.port))
    }

    /// `smtp.verify_url` and `smtp.password_url` left empty point at the console's
    /// `/verify-email` and `/reset-password` pages on [`Settings::console_origin`].
    /// Production without `console.public_url` keeps them as given (a verification
    /// page is then required with `smtp.host`, and password mail carries the token
    /// only), since a guessed address would send people elsewhere.
    fn default_mail_links(&mut self) {
        let Some(origin) = self.console_origin() else {
            return;
        };
        if self.smtp.verify_url.trim().is_empty() {
            self.smtp.verify_url = format!("{origin}/verify-email");
        }
        if self.smtp.password_url.trim().is_empty() {
            self.smtp.password_url = format!("{origin}/reset-password");
        }
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

/// The key named in a `config` error message (`... for key `server.port``), if any.
fn error_key(e: &config::ConfigError) -> String {
    let text = e.to_string();
    text.split("key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .map(|k| k.trim_start_matches("SIMUTRADOR__").to_lowercase())
        .unwrap_or_else(|| "configuration".to_string())
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
    fn debug_of_the_settings_shows_no_secret() {
        let secret = "0f3a9c1d2e4b5a6978877665544332211aabbccddeeff00112233445566778899";
        let s = Settings::load_from(
            None,
            env(&[
                ("SIMUTRADOR__JWT__SECRET", secret),
                ("SIMUTRADOR__AUTH__API_KEY_PEPPER", &secret[1..]),
                ("SIMUTRADOR__DATABASE__URL", "postgres://u:pa55word@db/x"),
                (
                    "SIMUTRADOR__ACCOUNTS__ENCRYPTION_KEYS",
                    &format!("k1:{}", &secret[..64]),
                ),
            ]),
        )
        .unwrap();
        let shown = format!("{s:?}");
        for hidden in [secret, &secret[1..], &secret[..64], "pa55word"] {
            assert!(!shown.contains(hidden), "Debug shows {hidden}: {shown}");
        }
        assert_eq!(s.jwt.secret.expose(), secret);
        assert_eq!(s.database_url(), "postgres://u:pa55word@db/x");
    }

    #[test]
    fn a_commission_is_read_once_as_a_decimal() {
        let s = Settings::load_from(
            None,
            env(&[
                (
                    "SIMUTRADOR__SIMULATION__DEFAULT_COMMISSION_PER_SHARE",
                    "0.005",
                ),
                ("SIMUTRADOR__SIMULATION__MIN_COMMISSION", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.simulation.default_commission_per_share.to_string(),
            "0.005"
        );
        assert_eq!(s.simulation.min_commission.to_string(), "1.00");
        for bad in ["abc", "-0.01"] {
            let e = Settings::load_from(
                None,
                env(&[("SIMUTRADOR__SIMULATION__DEFAULT_COMMISSION_PER_SHARE", bad)]),
            )
            .unwrap_err();
            assert_eq!(
                e.key, "simulation.default_commission_per_share",
                "{bad}: {e}"
            );
            assert!(!e.message.contains("for key"), "{e}");
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
    fn mail_links_default_to_the_console_pages() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.console_origin().as_deref(), Some("http://127.0.0.1:8003"));
        assert_eq!(s.smtp.verify_url, "http://127.0.0.1:8003/verify-email");
        assert_eq!(s.smtp.password_url, "http://127.0.0.1:8003/reset-password");
        let s = Settings::load_from(
            None,
            env(&[
                ("SIMUTRADOR__SERVER__HOST", "0.0.0.0"),
                ("SIMUTRADOR__SERVER__PORT", "9000"),
                ("SIMUTRADOR__SMTP__VERIFY_URL", "https://mail.example.com/v"),
            ]),
        )
        .unwrap();
        // An explicit setting is kept; the other one follows the server's address.
        assert_eq!(s.smtp.verify_url, "https://mail.example.com/v");
        assert_eq!(s.smtp.password_url, "http://127.0.0.1:9000/reset-password");
        let s = Settings::load_from(
            None,
            env(&[(
                "SIMUTRADOR__CONSOLE__PUBLIC_URL",
                "https://app.example.com/",
            )]),
        )
        .unwrap();
        assert_eq!(s.smtp.verify_url, "https://app.example.com/verify-email");
        assert_eq!(
            s.smtp.password_url,
            "https://app.example.com/reset-password"
        );
        // Production guesses no address.
        let secret = "x".repeat(32);
        let prod = [
            ("SIMUTRADOR__MODE", "production"),
            ("SIMUTRADOR__JWT__SECRET", secret.as_str()),
            ("SIMUTRADOR__AUTH__API_KEY_PEPPER", secret.as_str()),
        ];
        let s = Settings::load_from(None, env(&prod)).unwrap();
        assert_eq!(s.console_origin(), None);
        assert_eq!(
            (s.smtp.verify_url.as_str(), s.smtp.password_url.as_str()),
            ("", "")
        );
        let mut with_url = prod.to_vec();
        with_url.push(("SIMUTRADOR__CONSOLE__PUBLIC_URL", "https://app.example.com"));
        let s = Settings::load_from(None, env(&with_url)).unwrap();
        assert_eq!(
            s.smtp.password_url,
            "https://app.example.com/reset-password"
        );
        let e = Settings::load_from(
            None,
            env(&[(
                "SIMUTRADOR__CONSOLE__PUBLIC_URL",
                "https://app.example.com/console",
            )]),
        )
        .unwrap_err();
        assert_eq!(e.key, "console.public_url", "{e}");
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
