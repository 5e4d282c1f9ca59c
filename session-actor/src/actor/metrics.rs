//! What a session reports about itself for monitoring. The gateway exports it as
//! Prometheus metrics; this crate stays free of any metrics library.

use std::time::Duration;

/// Receives a session's counts. Ticks and fills are accumulated by the session and
/// reported once per batch of steps, so implementations may do real work per call.
pub trait SessionMetrics: Send + Sync + 'static {
    /// `n` ticks were produced and handed to the connection.
    fn ticks(&self, n: u64);
    /// `n` fills (execution reports) were produced.
    fn fills(&self, n: u64);
    /// An `order_batch` was answered: `accepted` orders taken, `rejected` refused.
    fn orders(&self, accepted: usize, rejected: usize);
    /// A lock-step tick was acknowledged `elapsed` after the session emitted it.
    fn tick_round_trip(&self, elapsed: Duration);
}
