//! Prometheus metrics of this node: one [`Registry`] in [`crate::state::AppState`],
//! exposed at `GET /metrics` in the OpenMetrics text format.
//!
//! Where things are counted, and why it stays cheap:
//! - Ticks and fills are counted by the session actors when they produce them (hand
//!   them to the connection), accumulated per batch of steps and added once per batch
//!   (see [`SessionMetrics`]); outputs re-sent after a resume are not counted again.
//! - The lock-step round trip is measured by the session actor, from handing a tick to
//!   the connection to its `tick_ack` arriving: one clock read per lock-step tick and
//!   one histogram observation per acknowledgement.
//! - Counters and gauges are atomics; labelled families are looked up per event, never
//!   per tick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use session_actor::actor::SessionMetrics;
use session_actor::store::{
    Lease, SessionRecord, SessionStore, StoreError, StoreFuture, StoreTtl, Write,
};

/// `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Lock-step round trips: 20 µs to 1 s.
const ROUND_TRIP_BUCKETS: [f64; 15] = [
    0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0,
];
/// Session store calls: 100 µs (memory) to 5 s (a struggling Redis).
const STORE_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// HTTP requests: 500 µs to 10 s.
const HTTP_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreErrorLabels {
    operation: &'static str,
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    endpoint: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// Outcome of an authentication attempt, for `simutrador_auth_requests_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthResult {
    /// Credentials accepted.
    Ok,
    /// Credentials missing, wrong, expired or revoked.
    Refused,
    /// A dependency (the database) failed.
    Unavailable,
}

impl AuthResult {
    fn label(self) -> &'static str {
        match self {
            AuthResult::Ok => "ok",
            AuthResult::Refused => "refused",
            AuthResult::Unavailable => "unavailable",
        }
    }
}

/// Which limit refused a request (the `X-RateLimit-Type` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// The plan's concurrent WebSocket connections, at the handshake.
    WsConnections,
    /// The plan's messages per second on one connection.
    Messages,
    /// `/auth/*` requests per client IP.
    Auth,
    /// WebSocket handshakes per client IP.
    WsConnect,
    /// `/health`, `/ready`, `/ws/health` per client IP.
    Health,
    /// `/api/*` and `/admin/*` requests per user.
    Api,
    /// The plan's concurrent sessions, at `POST /api/backtests` (on the WebSocket a
    /// session over the cap is a `session_error`).
    Sessions,
}

impl RateLimit {
    /// The `X-RateLimit-Type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimit::WsConnections => "ws_connections",
            RateLimit::Messages => "messages",
            RateLimit::Auth => "auth",
            RateLimit::WsConnect => "ws_connect",
            RateLimit::Health => "health",
            RateLimit::Api => "api",
            RateLimit::Sessions => "sessions",
        }
    }
}

/// Every metric of the node.
pub struct Metrics {
    registry: Registry,
    connections_active: Gauge,
    sessions_active: Gauge,
    ticks_sent: Counter,
    orders: Family<ResultLabel, Counter>,
    fills: Counter,
    tick_round_trip: Histogram,
    store_operations: HistogramFamily<OperationLabel>,
    store_errors: Family<StoreErrorLabels, Counter>,
    auth_requests: Family<AuthLabels, Counter>,
    rate_limited: Family<TypeLabel, Counter>,
    http_requests: HistogramFamily<HttpLabels>,
    backtests: Family<ResultLabel, Counter>,
    backtest_bars: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every series registered (labelled ones with their known label
    /// values at zero, so dashboards see them before the first event).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("simutrador");
        let m = Metrics {
            registry: Registry::default(),
            connections_active: Gauge::default(),
            sessions_active: Gauge::default(),
            ticks_sent: Counter::default(),
            orders: Family::default(),
            fills: Counter::default(),
            tick_round_trip: Histogram::new(ROUND_TRIP_BUCKETS),
            store_operations: Family::new_with_constructor(|| Histogram::new(STORE_BUCKETS)),
            store_errors: Family::default(),
            auth_requests: Family::default(),
            rate_limited: Family::default(),
            http_requests: Family::new_with_constructor(|| Histogram::new(HTTP_BUCKETS)),
            backtests: Family::default(),
            backtest_bars: Counter::default(),
        };
        let build_info = Family::<VersionLabel, Gauge>::default();
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "Build of this gateway (always 1)", build_info);
        registry.register(
            "connections_active",
            "Open /ws/simulate connections on this node",
            m.connections_active.clone(),
        );
        registry.register(
            "sessions_active",
            "Live (not finished) simulation sessions on this node",
            m.sessions_active.clone(),
        );
        registry.register(
            "ticks_sent",
            "Ticks produced by this node's sessions and handed to their connections",
            m.ticks_sent.clone(),
        );
        registry.register(
            "orders",
            "Orders in order_batch requests, by result",
            m.orders.clone(),
        );
        registry.register(
            "fills",
            "Fills (execution reports) produced by this node's sessions",
            m.fills.clone(),
        );
        registry.register_with_unit(
            "tick_round_trip",
            "Server-side time from a lock-step tick leaving its session to its tick_ack arriving",
            Unit::Seconds,
            m.tick_round_trip.clone(),
        );
        registry.register_with_unit(
            "session_store_operation",
            "Duration of session store calls, by operation",
            Unit::Seconds,
            m.store_operations.clone(),
        );
        registry.register(
            "session_store_errors",
            "Failed session store calls, by operation and error",
            m.store_errors.clone(),
        );
        registry.register(
            "auth_requests",
            "Authentication attempts, by endpoint and result",
            m.auth_requests.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a plan limit, by X-RateLimit-Type",
            m.rate_limited.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "HTTP request duration, by matched route pattern and status",
            Unit::Seconds,
            m.http_requests.clone(),
        );
        registry.register(
            "backtests",
            "Server-side backtests ended on this node, by result (completed, stopped, max_duration, error)",
            m.backtests.clone(),
        );
        registry.register(
            "backtest_bars",
            "Bars run by this node's server-side backtests",
            m.backtest_bars.clone(),
        );
        for result in ["accepted", "rejected"] {
            let _ = m.orders.get_or_create(&ResultLabel { result });
        }
        for result in ["completed", "stopped", "max_duration", "error"] {
            let _ = m.backtests.get_or_create(&ResultLabel { result });
        }
        for operation in ["write", "renew", "load", "acquire"] {
            let _ = m
                .store_operations
                .get_or_create(&OperationLabel { operation });
            let _ = m.store_errors.get_or_create(&StoreErrorLabels {
                operation,
                error: "unavailable",
            });
        }
        for endpoint in ["/auth/token", "/auth/validate", "/ws/simulate"] {
            for result in [AuthResult::Ok, AuthResult::Refused, AuthResult::Unavailable] {
                let _ = m.auth_requests.get_or_create(&AuthLabels {
                    endpoint,
                    result: result.label(),
                });
            }
        }
        for limit in [
            RateLimit::WsConnections,
            RateLimit::Messages,
            RateLimit::Auth,
            RateLimit::WsConnect,
            RateLimit::Health,
            RateLimit::Api,
            RateLimit::Sessions,
        ] {
            let _ = m.rate_limited.get_or_create(&TypeLabel {
                r#type: limit.as_str(),
            });
        }
        Metrics { registry, ..m }
    }

    /// The exposition, in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts an open connection until the returned guard is dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGauge {
        self.connections_active.inc();
        ConnectionGauge(Arc::clone(self))
    }

    /// Sets the number of live sessions.
    pub fn set_sessions_active(&self, n: usize) {
        self.sessions_active
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts the orders of one `order_batch`.
    pub fn orders(&self, accepted: usize, rejected: usize) {
        for (result, n) in [("accepted", accepted), ("rejected", rejected)] {
            if n > 0 {
                self.orders
                    .get_or_create(&ResultLabel { result })
                    .inc_by(n as u64);
            }
        }
    }

    /// Counts a server-side backtest that ended with `result` (`completed`, `stopped`,
    /// `max_duration` or `error`) after `bars` bars.
    pub fn backtest_ended(&self, result: &'static str, bars: u64) {
        self.backtests.get_or_create(&ResultLabel { result }).inc();
        self.backtest_bars.inc_by(bars);
    }

    /// Counts an authentication attempt at `endpoint`.
    pub fn auth(&self, endpoint: &'static str, result: AuthResult) {
        self.auth_requests
            .get_or_create(&AuthLabels {
                endpoint,
                result: result.label(),
            })
            .inc();
    }

    /// Counts a request refused by `limit`.
    pub fn rate_limited(&self, limit: RateLimit) {
        self.rate_limited
            .get_or_create(&TypeLabel {
                r#type: limit.as_str(),
            })
            .inc();
    }

    /// Records an HTTP request by its route pattern (never the raw path).
    pub fn http_request(&self, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                status,
            })
            .observe(elapsed.as_secs_f64());
    }

    fn store_call<T>(
        &self,
        operation: &'static str,
        timed: bool,
        started: Instant,
        result: &Result<T, StoreError>,
    ) {
        if timed {
            self.store_operations
                .get_or_create(&OperationLabel { operation })
                .observe(started.elapsed().as_secs_f64());
        }
        if let Err(e) = result {
            let error = match e {
                StoreError::Unavailable(_) => "unavailable",
                StoreError::Corrupt(_) => "corrupt",
                StoreError::Fenced => "fenced",
                StoreError::Lost => "lost",
                StoreError::Conflict { .. } => "conflict",
            };
            self.store_errors
                .get_or_create(&StoreErrorLabels { operation, error })
                .inc();
        }
    }
}

impl SessionMetrics for Metrics {
    fn ticks(&self, n: u64) {
        self.ticks_sent.inc_by(n);
    }

    fn fills(&self, n: u64) {
        self.fills.inc_by(n);
    }

    fn tick_round_trip(&self, elapsed: Duration) {
        self.tick_round_trip.observe(elapsed.as_secs_f64());
    }

    fn orders(&self, accepted: usize, rejected: usize) {
        Metrics::orders(self, accepted, rejected);
    }
}

/// An open connection in `simutrador_connections_active`; dropping it closes it.
pub struct ConnectionGauge(Arc<Metrics>);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.connections_active.dec();
    }
}

/// A [`SessionStore`] that times its calls and counts its errors.
pub struct MeteredStore {
    inner: Arc<dyn SessionStore>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SessionStore>, metrics: Arc<Metrics>) -> Self {
        MeteredStore { inner, metrics }
    }
}

impl SessionStore for MeteredStore {
    fn acquire<'a>(
        &'a self,
        session_id: &'a str,
        node_id: &'a str,
        expected: u64,
        ttl: StoreTtl,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let started = Instant::now();
            let r = self.inner.acquire(session_id, node_id, expected, ttl).await;
            self.metrics.store_call("acquire", true, started, &r);
            r
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, ttl: StoreTtl) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let started = Instant::now();
            let r = self.inner.renew(lease, ttl).await;
            self.metrics.store_call("renew", true, started, &r);
            r
        })
    }

    fn write<'a>(&'a self, lease: &'a Lease, write: Write, ttl: StoreTtl) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let started = Instant::now();
            let r = self.inner.write(lease, write, ttl).await;
            self.metrics.store_call("write", true, started, &r);
            r
        })
    }

    fn load<'a>(&'a self, session_id: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        Box::pin(async move {
            let started = Instant::now();
            let r = self.inner.load(session_id).await;
            self.metrics.store_call("load", true, started, &r);
            r
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let r = self.inner.release(lease).await;
            self.metrics
                .store_call("release", false, Instant::now(), &r);
            r
        })
    }

    fn delete<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let r = self.inner.delete(lease).await;
            self.metrics.store_call("delete", false, Instant::now(), &r);
            r
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let r = self.inner.ping().await;
            self.metrics.store_call("ping", false, Instant::now(), &r);
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_types() {
        let m = Metrics::new();
        m.ticks(3);
        m.orders(2, 1);
        m.http_request("/api/sessions/{id}", 404, Duration::from_millis(3));
        let text = m.encode();
        for line in [
            "# TYPE simutrador_build_info gauge",
            "simutrador_build_info{version=\"",
            "# TYPE simutrador_ticks_sent counter",
            "simutrador_ticks_sent_total 3",
            "simutrador_orders_total{result=\"accepted\"} 2",
            "simutrador_orders_total{result=\"rejected\"} 1",
            "# TYPE simutrador_tick_round_trip_seconds histogram",
            "simutrador_tick_round_trip_seconds_bucket{le=\"0.00002\"} 0",
            "simutrador_session_store_operation_seconds_count{operation=\"acquire\"} 0",
            "simutrador_http_request_duration_seconds_count{route=\"/api/sessions/{id}\",status=\"404\"} 1",
            "simutrador_rate_limited_total{type=\"ws_connections\"} 0",
            "simutrador_backtests_total{result=\"completed\"} 0",
            "simutrador_backtest_bars_total 0",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
    }
}
