//! What every handler shares: [`AppState`], built once by [`crate::app::Application`].

use std::sync::Arc;

use actix::Addr;
use auth::{Clock, Database, Jwt};
use market_data::MarketDataActor;
use session_actor::store::SessionStore;

use crate::browser::CsrfKey;
use crate::cluster::control::Control;
use crate::cluster::revocation::{announce, Revocations, Revoked};
use crate::config::Settings;
use crate::limits::requests::RateLimiter;
use crate::limits::Concurrency;
use crate::metrics::Metrics;
use crate::notify::{Background, Notifier};
use crate::registry::SessionRegistry;

/// Shared, read-mostly state of all handlers.
pub struct AppState {
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// Market data for sessions.
    pub market: Addr<MarketDataActor>,
    /// Users and API keys.
    pub db: Database,
    /// Token issuer and verifier.
    pub jwt: Jwt,
    /// This node's sessions.
    pub registry: Addr<SessionRegistry>,
    /// Where session state is kept between connections.
    pub session_store: Arc<dyn SessionStore>,
    /// Becomes true when the node starts draining.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Revoked keys and disabled users, cluster-wide.
    pub revocations: Arc<Revocations>,
    /// Concurrent connections and sessions per user (on this node, and across the
    /// cluster with Redis).
    pub concurrency: Arc<Concurrency>,
    /// This node's name.
    pub node_id: String,
    /// Account messages (verification links).
    pub notifier: Arc<dyn Notifier>,
    /// This node's Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Request rate limits.
    pub limiter: Arc<RateLimiter>,
    /// Live sessions across the cluster, for operators (`/admin/sessions`).
    pub control: Arc<Control>,
    /// What account routes take the time from (the one the store and tokens use).
    pub clock: Arc<dyn Clock>,
    /// Account work still running after its answer (waited for when draining).
    pub background: Background,
    /// The key of the console's CSRF tokens (derived from the JWT secret).
    pub csrf: CsrfKey,
}

impl AppState {
    /// Applies a revocation on this node and tells the other nodes (they also read it
    /// from the database within half a second).
    pub async fn revoke(&self, revoked: Revoked) {
        self.revocations.apply(revoked);
        if let Err(e) = announce(&self.settings.session_store, revoked).await {
            tracing::warn!(error = %e, "revocation not announced on Redis; nodes read it from the database");
        }
    }

    /// True while the node drains for shutdown.
    pub fn draining(&self) -> bool {
        *self.shutdown.borrow()
    }
}
