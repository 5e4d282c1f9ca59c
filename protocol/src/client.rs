//! Messages a client sends (PROTOCOL.md sections 2-4), with their documented defaults.
//! Unknown fields are ignored. The gateway parses them with
//! [`crate::parse_client_frame`]; the Rust client builds them and calls
//! [`ClientMessage::to_frame`].

use model::{Amount, Price, Timeframe, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::orders::{ExecutionMode, OrderRequest};

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// Which intraday equity bars a session sees (extension `market_hours`).
pub use model::MarketHours;

/// Parameters of a new session: `start_simulation` data, and `create_session` data
/// without its `session_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionParams {
    /// Symbols to simulate, non-empty and unique.
    pub symbols: Vec<String>,
    /// First bar time (inclusive).
    #[serde(with = "crate::time::rfc3339")]
    pub start_date: Timestamp,
    /// End of the range (exclusive); after `start_date`.
    #[serde(with = "crate::time::rfc3339")]
    pub end_date: Timestamp,
    /// Starting cash, > 0.
    pub initial_capital: Amount,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// Bars per symbol before `start_date`, sent in `history_snapshot` (default 0).
    #[serde(default)]
    pub warmup_bars: u32,
    /// Split/dividend-adjusted prices (default true).
    #[serde(default = "yes")]
    pub adjusted: bool,
    /// Catalog/provider to read; the server default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_provider: Option<String>,
    /// Commission per unit; the server default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission_per_share: Option<Price>,
    /// Slippage in basis points; the server default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slippage_bps: Option<u32>,
    /// Free-form object stored with the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Lock-step ticks (extension; default false here, true for `simulation_start`).
    #[serde(default)]
    pub flow_control: bool,
    /// Credit window under flow control (extension; default 1).
    #[serde(default = "one")]
    pub max_pending_ticks: u32,
    /// Pacing without flow control, 0 for as fast as possible (extension; default 0).
    #[serde(default)]
    pub tick_interval_ms: u64,
    /// Selling more than held opens a short (extension; default false).
    #[serde(default)]
    pub allow_short: bool,
    /// Also send an account snapshot every N bars, 0 for never (extension; default 0).
    #[serde(default)]
    pub account_snapshot_every: u32,
    /// Intraday equity bars to keep (extension; default `all`).
    #[serde(default)]
    pub market_hours: MarketHours,
}

/// `start_simulation` data.
pub type StartSimulationData = SessionParams;

impl SessionParams {
    /// Parameters with every optional field at its documented default.
    pub fn new(
        symbols: Vec<String>,
        start_date: Timestamp,
        end_date: Timestamp,
        initial_capital: Amount,
        timeframe: Timeframe,
    ) -> Self {
        SessionParams {
            symbols,
            start_date,
            end_date,
            initial_capital,
            timeframe,
            warmup_bars: 0,
            adjusted: true,
            data_provider: None,
            commission_per_share: None,
            slippage_bps: None,
            metadata: None,
            flow_control: false,
            max_pending_ticks: 1,
            tick_interval_ms: 0,
            allow_short: false,
            account_snapshot_every: 0,
            market_hours: MarketHours::All,
        }
    }
}

/// `create_session` data: [`SessionParams`] plus an optional client-chosen id.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CreateSessionData {
    /// Client-chosen session id; the server picks one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Everything else, at the same level on the wire.
    #[serde(flatten)]
    pub params: SessionParams,
}

/// The `session_id` of a `create_session` frame, read beside [`SessionParams`].
#[derive(Deserialize)]
pub(crate) struct OptionalSessionId {
    #[serde(default)]
    pub(crate) session_id: Option<String>,
}

// Not derived with `#[serde(flatten)]`: flattening buffers the fields, which loses the
// field path in error messages. `parse_client_frame` reads the two parts separately.
impl<'de> Deserialize<'de> for CreateSessionData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        let id = OptionalSessionId::deserialize(&value).map_err(D::Error::custom)?;
        let params = SessionParams::deserialize(value).map_err(D::Error::custom)?;
        Ok(CreateSessionData {
            session_id: id.session_id,
            params,
        })
    }
}

/// `simulation_start` data (second step of the two-step start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimulationStartData {
    /// The created session.
    pub session_id: String,
    /// Lock-step ticks (default true).
    #[serde(default = "yes")]
    pub flow_control: bool,
    /// Credit window (default 1).
    #[serde(default = "one")]
    pub max_pending_ticks: u32,
}

/// `tick_ack.processing_status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingStatus {
    /// Done with the tick.
    #[default]
    Ready,
    /// Still working on it.
    Processing,
    /// Needs more time before the next tick.
    NeedTime,
}

fn default_max_wait_ms() -> u64 {
    1000
}

/// `tick_ack` data: releases one credit under flow control.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickAckData {
    /// The session.
    pub session_id: String,
    /// The tick acknowledged.
    pub sequence_id: u64,
    /// Client state (default `ready`).
    #[serde(default)]
    pub processing_status: ProcessingStatus,
    /// Orders the client is about to send (default 0).
    #[serde(default)]
    pub orders_pending: u32,
    /// How long the client may still need, in ms (default 1000, as in the Python SDK).
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
}

/// `order_batch` data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderBatchData {
    /// The session.
    pub session_id: String,
    /// Client-chosen batch id, echoed in `batch_ack`.
    pub batch_id: String,
    /// The orders.
    pub orders: Vec<OrderRequest>,
    /// `atomic` or `best_effort` (default).
    #[serde(default)]
    pub execution_mode: ExecutionMode,
}

/// `cancel_orders` data (extension).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelOrdersData {
    /// The session.
    pub session_id: String,
    /// Orders to cancel.
    pub order_ids: Vec<String>,
}

/// Data of the messages that only name a session (`pause_simulation`,
/// `resume_simulation`, `get_simulation_state`, `stop_simulation`, `get_account`,
/// `close_session`; and the server's `simulation_paused`, `simulation_resumed`,
/// `session_closed`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionRef {
    /// The session.
    pub session_id: String,
}

impl SessionRef {
    /// A reference to `session_id`.
    pub fn new(session_id: impl Into<String>) -> Self {
        SessionRef {
            session_id: session_id.into(),
        }
    }
}

/// `resume_session` data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeSessionData {
    /// The session to re-attach to.
    pub session_id: String,
    /// Last tick the client processed; ticks continue after it.
    pub last_sequence_id: u64,
    /// Epoch the client last saw, if any; a mismatch means stored state was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
}

/// Data of messages without parameters (`list_sessions`, `ping`); anything sent is
/// ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Empty {}

/// Every message a client sends. On the wire: `{"type": <snake_case name>, "data": ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ClientMessage {
    /// One-step start: create, load and run.
    StartSimulation(SessionParams),
    /// Two-step start, step one.
    CreateSession(CreateSessionData),
    /// Two-step start, step two.
    SimulationStart(SimulationStartData),
    /// Flow-control acknowledgement.
    TickAck(TickAckData),
    /// Orders.
    OrderBatch(OrderBatchData),
    /// Cancel working orders (extension).
    CancelOrders(CancelOrdersData),
    /// Pause a running session.
    PauseSimulation(SessionRef),
    /// Resume a paused session.
    ResumeSimulation(SessionRef),
    /// Ask for `simulation_state`.
    GetSimulationState(SessionRef),
    /// End early (`simulation_end` with reason `stopped`).
    StopSimulation(SessionRef),
    /// Ask for `account_snapshot`.
    GetAccount(SessionRef),
    /// Ask for `sessions`.
    ListSessions(Empty),
    /// Drop a session.
    CloseSession(SessionRef),
    /// Re-attach after a reconnect.
    ResumeSession(ResumeSessionData),
    /// Liveness check; answered with `pong`.
    Ping(Empty),
}

impl ClientMessage {
    /// Every client message type, as on the wire.
    pub const TYPES: [&'static str; 15] = [
        "start_simulation",
        "create_session",
        "simulation_start",
        "tick_ack",
        "order_batch",
        "cancel_orders",
        "pause_simulation",
        "resume_simulation",
        "get_simulation_state",
        "stop_simulation",
        "get_account",
        "list_sessions",
        "close_session",
        "resume_session",
        "ping",
    ];

    /// The wire `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::StartSimulation(_) => "start_simulation",
            ClientMessage::CreateSession(_) => "create_session",
            ClientMessage::SimulationStart(_) => "simulation_start",
            ClientMessage::TickAck(_) => "tick_ack",
            ClientMessage::OrderBatch(_) => "order_batch",
            ClientMessage::CancelOrders(_) => "cancel_orders",
            ClientMessage::PauseSimulation(_) => "pause_simulation",
            ClientMessage::ResumeSimulation(_) => "resume_simulation",
            ClientMessage::GetSimulationState(_) => "get_simulation_state",
            ClientMessage::StopSimulation(_) => "stop_simulation",
            ClientMessage::GetAccount(_) => "get_account",
            ClientMessage::ListSessions(_) => "list_sessions",
            ClientMessage::CloseSession(_) => "close_session",
            ClientMessage::ResumeSession(_) => "resume_session",
            ClientMessage::Ping(_) => "ping",
        }
    }

    /// The session the message is about, if it names one.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            ClientMessage::StartSimulation(_)
            | ClientMessage::ListSessions(_)
            | ClientMessage::Ping(_) => None,
            ClientMessage::CreateSession(d) => d.session_id.as_deref(),
            ClientMessage::SimulationStart(d) => Some(&d.session_id),
            ClientMessage::TickAck(d) => Some(&d.session_id),
            ClientMessage::OrderBatch(d) => Some(&d.session_id),
            ClientMessage::CancelOrders(d) => Some(&d.session_id),
            ClientMessage::PauseSimulation(d)
            | ClientMessage::ResumeSimulation(d)
            | ClientMessage::GetSimulationState(d)
            | ClientMessage::StopSimulation(d)
            | ClientMessage::GetAccount(d)
            | ClientMessage::CloseSession(d) => Some(&d.session_id),
            ClientMessage::ResumeSession(d) => Some(&d.session_id),
        }
    }

    /// The frame to send: the envelope with `request_id` and a `null` timestamp.
    pub fn to_frame(&self, request_id: Option<&str>) -> String {
        crate::server::frame_text(self, request_id, None)
    }
}
