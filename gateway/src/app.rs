//! Building and running the gateway, the same way in `main` and in tests: bind (port 0
//! picks a free port), report the ports, run until stopped.

use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use market_data::{Catalog, MarketDataActor, MarketDataConfig};

use crate::config::Settings;
use crate::routes;

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
    /// A port could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// host:port.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Shared, read-mostly state of all handlers.
pub struct AppState {
    /// Validated settings.
    pub settings: Settings,
    /// Market data for sessions.
    pub market: Addr<MarketDataActor>,
}

/// A bound, not yet running gateway.
pub struct Application {
    port: u16,
    compat_port: Option<u16>,
    server: Server,
}

impl Application {
    /// Opens the data providers and binds the listeners. Must run inside an actix
    /// system (`#[actix_web::main]` or `#[actix_web::test]`).
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        let market = start_market_data(&settings)?;
        let state = web::Data::new(AppState {
            settings: settings.clone(),
            market,
        });
        let bind = |port: u16| {
            let address = format!("{}:{}", settings.server.host, port);
            TcpListener::bind(&address).map_err(|source| StartError::Bind { address, source })
        };
        let main = bind(settings.server.port)?;
        let port = local_port(&main)?;
        let compat = match settings.server.compat_port {
            0 => None,
            p => Some(bind(p)?),
        };
        let compat_port = compat.as_ref().map(local_port).transpose()?;
        let shutdown = settings.server.shutdown_timeout_sec;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(routes::configure)
        })
        .shutdown_timeout(shutdown)
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
        Ok(Application {
            port,
            compat_port,
            server: server.run(),
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

    /// Serves until the server is stopped (SIGINT/SIGTERM stop it gracefully).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn local_port(l: &TcpListener) -> Result<u16, StartError> {
    l.local_addr()
        .map(|a| a.port())
        .map_err(|source| StartError::Bind {
            address: "listener".into(),
            source,
        })
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
