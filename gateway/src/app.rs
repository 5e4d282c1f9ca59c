//! Building and running the gateway, the same way in `main` and in tests: bind (port 0
//! picks a free port), report the ports, run until stopped.
//!
//! Shutdown (SIGTERM, SIGINT or [`ShutdownTrigger`]) drains the node within
//! `server.shutdown_timeout_sec`: `/ready` turns 503 and new connections are refused,
//! every connection gets `connection_closing` (`server_maintenance`, reconnect allowed)
//! and closes, every session stores its state and gives up its lease so another node
//! can take it over at once, results of finished runs are stored, the server stops,
//! and account mail already queued is sent.
//!
//! `/metrics` is served on the main listener, or with `server.metrics_port` set, only
//! on a separate listener at `server.metrics_host`.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use auth::{
    AccountPolicy, Clock, Jwt, JwtConfig, Keyring, PasswordParams, Secret, StoreOptions,
    SystemClock,
};
use market_data::{Catalog, MarketDataActor, MarketDataConfig};
use session_actor::store::{MemoryStore, RedisStore, SessionStore, StoreError};

use crate::bootstrap::{first_start, Bootstrap};
use crate::cluster::revocation::{self, Revocations};
use crate::config::Settings;
use crate::limits::cluster::ClusterCounts;
use crate::limits::requests::RateLimiter;
use crate::limits::Concurrency;
use crate::metrics::{MeteredStore, Metrics};
use crate::registry::{Drain, PendingSaves, SessionRegistry};
use crate::state::AppState;
use crate::{routes, secrets};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A data root could not be opened.
    #[error("market data provider `{provider}`: {message}")]
    MarketData {
        /// Provider name.
        provider: String,
        /// What went wrong.
        message: String,
    },
    /// The data directory or a generated secret could not be written.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The user database could not be opened or migrated.
    #[error("user database: {0}")]
    Database(#[source] auth::AuthError),
    /// A setting is unusable beyond what validation checks.
    #[error("configuration error at `{key}`: {message}")]
    Config {
        /// Dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The session store (`session_store.redis_url`) could not be reached.
    #[error("session store (session_store.redis_url): {0}")]
    SessionStore(#[source] StoreError),
    /// A port could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// host:port.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Starts a graceful shutdown of a running [`Application`] (what SIGTERM does).
#[derive(Clone)]
pub struct ShutdownTrigger(Arc<tokio::sync::watch::Sender<bool>>);

impl ShutdownTrigger {
    /// Begins draining; returns at once.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

/// What [`Application::build_with`] takes besides the settings: things tests and
/// embedders inject rather than configure.
#[derive(Clone, Debug)]
pub struct Options {
    /// "Now" for tokens (issue and expiry) and for the user database (login sessions,
    /// lockouts, one-time tokens, API-key expiry), so tests can move time instead of
    /// sleeping. The system clock by default.
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
        }
    }
}

/// A bound, not yet running gateway.
pub struct Application {
    port: u16,
    compat_port: Option<u16>,
    metrics_port: Option<u16>,
    server: Server,
    metrics_server: Option<Server>,
    bootstrap: Option<Bootstrap>,
    registry: Addr<SessionRegistry>,
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    drain_timeout: Duration,
    notifier: Arc<dyn crate::notify::Notifier>,
    background: crate::notify::Background,
}

impl Application {
    /// Opens the data providers and binds the listeners. Must run inside an actix
    /// system (`#[actix_web::main]` or `#[actix_web::test]`).
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        Self::build_with(settings, Options::default()).await
    }

    /// [`Application::build`] with injected [`Options`].
    pub async fn build_with(
        settings: Settings,
        injected: Options,
    ) -> Result<Application, StartError> {
        let data_dir = settings.data_dir.clone();
        let dir_error = |source| StartError::DataDir {
            path: data_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&data_dir).map_err(dir_error)?;
        let jwt_secret =
            secrets::configured_or_generated(&settings.jwt.secret, &data_dir, "jwt_secret")
                .map_err(dir_error)?;
        let pepper = secrets::configured_or_generated(
            &settings.auth.api_key_pepper,
            &data_dir,
            "api_key_pepper",
        )
        .map_err(dir_error)?;
        let (policy, keyring) = account_options(&settings, &data_dir)?;
        let mut options = StoreOptions::new(Secret::new(pepper.into_bytes()))
            .accounts(policy)
            .clock(Arc::clone(&injected.clock));
        if let Some(keyring) = keyring {
            options = options.keyring(keyring);
        }
        let db = auth::connect(&settings.database_url(), options)
            .await
            .map_err(StartError::Database)?;
        let bootstrap = first_start(&db, &settings.auth.admin_email)
            .await
            .map_err(StartError::Database)?;
        let csrf = crate::browser::CsrfKey::derive(jwt_secret.as_bytes());
        let mut jwt_config = JwtConfig::new(
            Secret::new(jwt_secret),
            &settings.jwt.issuer,
            &settings.jwt.audience,
        );
        jwt_config.lifetime = Duration::from_secs(settings.jwt.lifetime_sec);
        let clock = injected.clock;
        let jwt = Jwt::with_clock(jwt_config, Arc::clone(&clock)).map_err(StartError::Database)?;
        let market = start_market_data(&settings)?;
        let settings = Arc::new(settings);
        let metrics = Arc::new(Metrics::new());
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let store_settings = &settings.session_store;
        let (session_store, counts): (Arc<dyn SessionStore>, _) =
            if store_settings.redis_url.is_empty() {
                (Arc::new(MemoryStore::new()), None)
            } else {
                let url = store_settings.redis_url.expose();
                let store = RedisStore::connect(url, &store_settings.key_prefix)
                    .await
                    .map_err(StartError::SessionStore)?;
                let ttl = Duration::from_millis(store_settings.lease_ms);
                let counts = ClusterCounts::connect(url, &store_settings.key_prefix, ttl)
                    .await
                    .map_err(|e| StartError::SessionStore(StoreError::Unavailable(e)))?;
                actix_web::rt::spawn(Arc::clone(&counts).refresh());
                (Arc::new(store), Some(counts))
            };
        let session_store: Arc<dyn SessionStore> =
            Arc::new(MeteredStore::new(session_store, Arc::clone(&metrics)));
        let concurrency = Arc::new(Concurrency::new(settings.node_id(), counts));
        let registry = SessionRegistry::new(
            Arc::clone(&settings),
            market.clone(),
            Arc::clone(&session_store),
            workers,
        )
        .with_results(db.clone())
        .with_concurrency(Arc::clone(&concurrency))
        .with_metrics(Arc::clone(&metrics))
        .start();
        // No token outlives its lifetime plus a day of clock skew; older revocations
        // are kept from earlier reads for as long.
        let horizon = Duration::from_secs(settings.jwt.lifetime_sec + 24 * 3600);
        let revocations = Arc::new(Revocations::new(horizon));
        actix_web::rt::spawn(revocation::poll_database(
            Arc::clone(&revocations),
            db.clone(),
            horizon,
        ));
        if !settings.session_store.redis_url.is_empty() {
            actix_web::rt::spawn(revocation::subscribe_redis(
                Arc::clone(&revocations),
                settings.session_store.redis_url.expose().to_string(),
                settings.session_store.key_prefix.clone(),
            ));
        }
        let limiter = rate_limiter(&settings).await?;
        actix_web::rt::spawn(Arc::clone(&limiter).sweep());
        let background = crate::notify::Background::default();
        let notifier = crate::notify::from_settings(&settings).map_err(|e| StartError::Config {
            key: e.key,
            message: e.message,
        })?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let control = crate::cluster::control::Control::start(
            &settings,
            registry.clone(),
            shutdown_rx.clone(),
        )
        .await
        .map_err(|e| StartError::SessionStore(StoreError::Unavailable(e)))?;
        let state = web::Data::new(AppState {
            settings: Arc::clone(&settings),
            market,
            db,
            jwt,
            registry: registry.clone(),
            session_store,
            shutdown: shutdown_rx,
            revocations,
            concurrency,
            node_id: settings.node_id(),
            notifier: Arc::clone(&notifier),
            metrics: Arc::clone(&metrics),
            limiter,
            control,
            clock,
            background: background.clone(),
            csrf,
        });
        let bind = |port: u16| {
            let address = format!("{}:{}", settings.server.host, port);
            listen(&address).map_err(|source| StartError::Bind { address, source })
        };
        let main = bind(settings.server.port)?;
        let port = local_port(&main)?;
        let compat = match settings.server.compat_port {
            0 => None,
            p => Some(bind(p)?),
        };
        let compat_port = compat.as_ref().map(local_port).transpose()?;
        let shutdown = settings.server.shutdown_timeout_sec;
        let separate_metrics = settings.server.metrics_port != 0;
        let metrics_data = web::Data::new(Arc::clone(&metrics));
        let main_metrics = metrics_data.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    crate::middleware::deadline::body_deadline,
                ))
                .wrap(crate::errors::json_errors())
                .wrap(actix_web::middleware::from_fn(
                    crate::middleware::ratelimit::middleware,
                ))
                .wrap(actix_web::middleware::from_fn(
                    crate::middleware::observe::observe,
                ))
                // Outermost, so every answer has them, refusals of the others too.
                .wrap(actix_web::middleware::from_fn(
                    crate::middleware::security::security_headers,
                ))
                .app_data(state.clone())
                .app_data(main_metrics.clone())
                .configure(crate::errors::extractor_configs)
                .configure(routes::configure)
                .configure(crate::console::configure)
                .configure(|cfg| {
                    if !separate_metrics {
                        routes::metrics::configure(cfg);
                    }
                })
        })
        .shutdown_timeout(shutdown)
        // Signals are handled here, to drain sessions before the server stops.
        .disable_signals()
        .on_connect(set_nodelay)
        .listen(main)
        .map_err(|source| StartError::Bind {
            address: format!("port {port}"),
            source,
        })?;
        if let Some(l) = compat {
            server = server.listen(l).map_err(|source| StartError::Bind {
                address: "compat port".into(),
                source,
            })?;
        }
        let (metrics_server, metrics_port) = if separate_metrics {
            let address = format!(
                "{}:{}",
                settings.server.metrics_host, settings.server.metrics_port
            );
            let listener = listen(&address).map_err(|source| StartError::Bind {
                address: address.clone(),
                source,
            })?;
            let port = local_port(&listener)?;
            let server = HttpServer::new(move || {
                App::new()
                    .wrap(crate::errors::json_errors())
                    .app_data(metrics_data.clone())
                    .configure(crate::errors::extractor_configs)
                    .configure(routes::metrics::configure)
            })
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .on_connect(set_nodelay)
            .listen(listener)
            .map_err(|source| StartError::Bind { address, source })?
            .run();
            (Some(server), Some(port))
        } else {
            (None, None)
        };
        Ok(Application {
            port,
            compat_port,
            metrics_port,
            metrics_server,
            server: server.run(),
            bootstrap,
            registry,
            shutdown: Arc::new(shutdown_tx),
            drain_timeout: Duration::from_secs(settings.server.shutdown_timeout_sec),
            notifier,
            background,
        })
    }

    /// The REST and WebSocket port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The second port for the Python SDK, if enabled.
    pub fn compat_port(&self) -> Option<u16> {
        self.compat_port
    }

    /// The separate metrics listener's port, when `server.metrics_port` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Credentials created on this first start, to show once.
    pub fn bootstrap(&self) -> Option<&Bootstrap> {
        self.bootstrap.as_ref()
    }

    /// Starts a graceful shutdown from code (tests, embedding).
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        ShutdownTrigger(Arc::clone(&self.shutdown))
    }

    /// Serves until SIGTERM, SIGINT or the [`ShutdownTrigger`], then drains (see the
    /// module documentation) and stops.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application {
            server,
            metrics_server,
            registry,
            shutdown,
            drain_timeout,
            notifier,
            background,
            ..
        } = self;
        // Metrics stay available while draining; they stop with the main server.
        let metrics_handle = metrics_server.map(|m| {
            let handle = m.handle();
            actix_web::rt::spawn(m);
            handle
        });
        let mail = Mail {
            notifier,
            background,
        };
        let result = Self::serve(server, registry, shutdown, drain_timeout, mail).await;
        if let Some(h) = metrics_handle {
            h.stop(false).await;
        }
        result
    }

    async fn serve(
        server: Server,
        registry: Addr<SessionRegistry>,
        shutdown: Arc<tokio::sync::watch::Sender<bool>>,
        drain_timeout: Duration,
        mail: Mail,
    ) -> std::io::Result<()> {
        let handle = server.handle();
        let mut serving = actix_web::rt::spawn(server);
        let mut requested = shutdown.subscribe();
        tokio::select! {
            result = &mut serving => return result.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            _ = stop_requested(&mut requested) => {}
        }
        shutdown.send_replace(true);
        let started = std::time::Instant::now();
        tracing::info!(
            timeout_sec = drain_timeout.as_secs(),
            "draining for shutdown"
        );
        handle.pause().await;
        // Connections see the flag and close themselves, detaching their sessions;
        // then every session stores itself and lets go of its lease.
        match tokio::time::timeout(drain_timeout, registry.send(Drain)).await {
            Ok(Ok(n)) => tracing::info!(
                sessions = n,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "sessions stored"
            ),
            Ok(Err(_)) => tracing::warn!("session registry gone before draining"),
            Err(_) => tracing::warn!("drain timeout reached before every session was stored"),
        }
        // Results of finished runs still on their way to the database are waited for
        // (dropping their writes at exit would lose them).
        let deadline = started + drain_timeout;
        loop {
            match registry.send(PendingSaves).await {
                Ok(0) | Err(_) => break,
                Ok(n) if std::time::Instant::now() >= deadline => {
                    tracing::warn!(
                        results = n,
                        "drain timeout reached with results not yet stored"
                    );
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        // Account work answered already (a lookup that may mail) finishes while the
        // workers still run; then the server stops, and the mail queued by then or by
        // the last requests goes out.
        mail.wait(deadline).await;
        let left = drain_timeout.saturating_sub(started.elapsed());
        let _ = tokio::time::timeout(left.max(Duration::from_millis(100)), handle.stop(true)).await;
        mail.wait(deadline).await;
        Ok(())
    }
}

/// Account mail a draining node waits for: background work that may queue some, and
/// the queue itself.
struct Mail {
    notifier: Arc<dyn crate::notify::Notifier>,
    background: crate::notify::Background,
}

impl Mail {
    /// Until nothing is left or `deadline`; what is left then is logged.
    async fn wait(&self, deadline: std::time::Instant) {
        loop {
            let (running, queued) = (self.background.running(), self.notifier.pending());
            if running == 0 && queued == 0 {
                return;
            }
            if std::time::Instant::now() >= deadline {
                tracing::warn!(
                    running,
                    queued,
                    "drain timeout reached with account mail not yet sent"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sets `TCP_NODELAY` on every accepted connection, explicitly: Linux does not carry
/// the option over from the listening socket. Without it, Nagle's algorithm holds a
/// frame (the next `tick`) while an earlier one (the `batch_ack`) is unacknowledged,
/// and the client's delayed ACK turns that into a 40 ms stall per bar for a strategy
/// that sends orders. A failure is logged; the connection still works, only slower.
fn set_nodelay(io: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
    }
}

/// Pending connections the kernel queues per listener (capped by
/// `net.core.somaxconn`); std's default of 128 overflowed when a thousand clients
/// connected at once.
const LISTEN_BACKLOG: i32 = 2048;

/// Binds `address` (`host:port`; the first resolved address that binds) with
/// [`LISTEN_BACKLOG`].
fn listen(address: &str) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::ToSocketAddrs;
    let mut last = None;
    for addr in address.to_socket_addrs()? {
        let bound = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .and_then(|socket| {
                socket.set_reuse_address(true)?;
                socket.bind(&addr.into())?;
                socket.listen(LISTEN_BACKLOG)?;
                Ok(socket)
            });
        match bound {
            Ok(socket) => return Ok(socket.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

fn local_port(l: &TcpListener) -> Result<u16, StartError> {
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| StartError::Bind {
            address: "listener".into(),
            source,
        })
}

/// The request limits: counted in Redis when the session store is, else in memory.
async fn rate_limiter(settings: &Settings) -> Result<Arc<RateLimiter>, StartError> {
    let limits = settings.rate_limits.clone();
    let store = &settings.session_store;
    if store.redis_url.is_empty() {
        return Ok(RateLimiter::local(limits));
    }
    RateLimiter::with_redis(limits, store.redis_url.expose(), &store.key_prefix)
        .await
        .map_err(|e| StartError::SessionStore(StoreError::Unavailable(e)))
}

fn start_market_data(settings: &Settings) -> Result<Addr<MarketDataActor>, StartError> {
    let md = &settings.market_data;
    let open = |name: &String, root| {
        Catalog::open(root)
            .map(Arc::new)
            .map_err(|e| StartError::MarketData {
                provider: name.clone(),
                message: e.to_string(),
            })
    };
    let default_root = &md.roots[&md.default_provider];
    let mut actor = MarketDataActor::new(
        md.default_provider.clone(),
        open(&md.default_provider, default_root)?,
        MarketDataConfig {
            cache_bytes: md.cache_bytes,
        },
    );
    for (name, root) in md.roots.iter().filter(|(n, _)| **n != md.default_provider) {
        actor = actor.with_provider(name.clone(), open(name, root)?);
    }
    Ok(actor.start())
}

/// The account rules and the keys for secrets at rest, from the settings.
fn account_options(
    settings: &Settings,
    data_dir: &std::path::Path,
) -> Result<(AccountPolicy, Option<Keyring>), StartError> {
    let a = &settings.accounts;
    let mut policy = AccountPolicy {
        password: PasswordParams {
            m_cost: a.argon2_memory_kib,
            t_cost: a.argon2_iterations,
            p_cost: a.argon2_parallelism,
        },
        max_failed_logins: a.max_failed_logins,
        failure_window: Duration::from_secs(a.failure_window_sec),
        lockout: Duration::from_secs(a.lockout_sec),
        max_login_sessions: a.max_login_sessions,
        max_session_duration: Duration::from_secs(a.max_session_duration_sec),
        refresh_token_lifetime: Duration::from_secs(a.max_session_duration_sec),
        verification_token_lifetime: Duration::from_secs(a.verification_token_lifetime_sec),
        password_reset_token_lifetime: Duration::from_secs(a.password_reset_token_lifetime_sec),
        hashing_wait: Duration::from_millis(a.hashing_wait_ms),
        ..AccountPolicy::default()
    };
    if a.hashing_permits > 0 {
        policy.hashing_permits = a.hashing_permits;
    }
    let bad = |message: &str| StartError::Config {
        key: "accounts.encryption_keys".into(),
        message: message.into(),
    };
    let mut keys = a.encryption_keys.keys().to_vec();
    if keys.is_empty() {
        if settings.mode == crate::config::Mode::Production {
            // Without keys, TOTP enrolment is refused; everything else works.
            return Ok((policy, None));
        }
        let generated =
            secrets::load_or_create(&data_dir.join("encryption_key"), 32).map_err(|source| {
                StartError::DataDir {
                    path: data_dir.display().to_string(),
                    source,
                }
            })?;
        let key = secrets::decode_hex(&generated)
            .ok_or_else(|| bad("the generated key file is damaged"))?;
        keys.push(("generated".into(), Secret::new(key)));
    }
    let current = if a.encryption_key_current.is_empty() {
        keys.last().map(|(id, _)| id.clone()).unwrap_or_default()
    } else {
        a.encryption_key_current.clone()
    };
    let keyring = Keyring::new(current, keys).map_err(|e| bad(&e.to_string()))?;
    Ok((policy, Some(keyring)))
}

/// Resolves on SIGTERM, SIGINT, or when `requested` turns true.
async fn stop_requested(requested: &mut tokio::sync::watch::Receiver<bool>) {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let term = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    let int = async {
        match int.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM"),
        _ = int => tracing::info!("SIGINT"),
        _ = requested.wait_for(|stop| *stop) => {}
    }
}
