//! Server notices about the connection itself (PROTOCOL.md section 2).

use model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// `connection_ready` data: the first frame after the upgrade; advertises the limits
/// that are enforced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReadyData {
    /// The authenticated user.
    pub user_id: String,
    /// The user's plan.
    pub plan: Plan,
    /// When the server will close the connection at the latest.
    #[serde(with = "crate::time::rfc3339")]
    pub connection_expires_at: Timestamp,
    /// Seconds without a client frame before the connection closes.
    pub idle_timeout_sec: u64,
    /// Wall-clock limit of one simulation.
    pub max_simulation_duration_sec: u64,
    /// The plan's concurrent connection cap.
    pub concurrent_connections_limit: u32,
    /// Extension: the plan's cap on working orders per session (bracket exits
    /// included); orders beyond it are rejected with `MAX_WORKING_ORDERS`. Absent from
    /// servers that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_working_orders: Option<u32>,
    /// Server wall-clock time.
    #[serde(with = "crate::time::rfc3339")]
    pub server_time: Timestamp,
    /// Optional features this server supports (e.g. `flow_control`, `resume_session`).
    #[serde(default)]
    pub supported_features: Vec<String>,
}

/// `connection_warning.warning_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningType {
    /// The connection will reach a time limit soon.
    ApproachingTimeout,
    /// The connection is about to close.
    ImminentClosure,
    /// The client is close to a rate limit.
    RateLimitWarning,
}

/// `connection_warning` data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionWarningData {
    /// What is coming.
    pub warning_type: WarningType,
    /// Human-readable text.
    pub message: String,
    /// When the announced event happens, if it has a time.
    #[serde(default, with = "crate::time::rfc3339_opt")]
    pub expires_at: Option<Timestamp>,
    /// What the client should do (free text, as in the Python SDK's model).
    pub action_required: String,
    /// Seconds until the event, if it has a time.
    #[serde(default)]
    pub seconds_remaining: Option<u64>,
}

/// `connection_closing.reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// No client frame for too long.
    IdleTimeout,
    /// The connection reached its maximum lifetime.
    MaxDuration,
    /// The API key behind the token was revoked.
    ApiKeyRevoked,
    /// Sustained flood.
    RateLimit,
    /// The simulation is over and nothing else is open.
    SimulationComplete,
    /// The server is shutting down or draining.
    ServerMaintenance,
}

/// `connection_closing` data, followed by a close frame with `close_code`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionClosingData {
    /// Why.
    pub reason: CloseReason,
    /// Human-readable text.
    pub message: String,
    /// The WebSocket close code that follows.
    pub close_code: u16,
    /// Whether reconnecting makes sense.
    pub reconnect_allowed: bool,
    /// What happens to the connection's sessions (e.g. `paused`), if any.
    #[serde(default)]
    pub session_state: Option<String>,
}

/// `pong` data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PongData {
    /// Server wall-clock time.
    #[serde(with = "crate::time::rfc3339")]
    pub server_time: Timestamp,
}

/// `health.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Everything works.
    Ok,
    /// Serving, with reduced capacity or a dependency down.
    Degraded,
    /// Not serving.
    Unhealthy,
}

/// `health` data (`GET /ws/health`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthData {
    /// Overall status.
    pub status: HealthStatus,
    /// Server wall-clock time.
    #[serde(with = "crate::time::rfc3339")]
    pub server_time: Timestamp,
    /// Server version.
    pub server_version: String,
    /// Human-readable detail, or `null`.
    #[serde(default)]
    pub message: Option<String>,
}
