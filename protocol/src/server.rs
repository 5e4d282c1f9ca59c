//! Every message the server sends, and turning one into a frame.

use model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::client::SessionRef;
use crate::connection::{
    ConnectionClosingData, ConnectionReadyData, ConnectionWarningData, HealthData, PongData,
};
use crate::errors::{ErrorData, SessionErrorData};
use crate::market::{HistorySnapshotData, TickData};
use crate::session::{
    SessionCreatedData, SessionResumedData, SessionsData, SimulationEndData, SimulationStartedData,
    SimulationStateData,
};
use crate::time::format_wire_time;
use crate::trading::{
    AccountSnapshotData, BatchAckData, ExecutionReportData, OrderUpdateData, OrdersCancelledData,
};

/// Every message the server sends. On the wire: `{"type": <snake_case name>, "data": ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First frame after the upgrade.
    ConnectionReady(ConnectionReadyData),
    /// Something is about to happen to the connection.
    ConnectionWarning(ConnectionWarningData),
    /// The connection is closing; a close frame follows.
    ConnectionClosing(ConnectionClosingData),
    /// Answer to `ping`.
    Pong(PongData),
    /// Answer of `GET /ws/health`.
    Health(HealthData),
    /// A session was created.
    SessionCreated(SessionCreatedData),
    /// Warm-up bars.
    HistorySnapshot(HistorySnapshotData),
    /// One bar time.
    Tick(TickData),
    /// Two-step start acknowledged.
    SimulationStarted(SimulationStartedData),
    /// A fill.
    ExecutionReport(ExecutionReportData),
    /// An order changed without a fill (extension).
    OrderUpdate(OrderUpdateData),
    /// The account.
    AccountSnapshot(AccountSnapshotData),
    /// Answer to `order_batch`.
    BatchAck(BatchAckData),
    /// Answer to `cancel_orders` (extension).
    OrdersCancelled(OrdersCancelledData),
    /// Answer to `pause_simulation`.
    SimulationPaused(SessionRef),
    /// Answer to `resume_simulation`.
    SimulationResumed(SessionRef),
    /// Answer to `get_simulation_state`.
    SimulationState(SimulationStateData),
    /// Results.
    SimulationEnd(SimulationEndData),
    /// Answer to `list_sessions`.
    Sessions(SessionsData),
    /// Answer to `close_session`.
    SessionClosed(SessionRef),
    /// Answer to `resume_session`.
    SessionResumed(SessionResumedData),
    /// A session could not be created, resumed or continued.
    SessionError(SessionErrorData),
    /// A request failed.
    Error(ErrorData),
}

impl ServerMessage {
    /// Every server message type, as on the wire.
    pub const TYPES: [&'static str; 23] = [
        "connection_ready",
        "connection_warning",
        "connection_closing",
        "pong",
        "health",
        "session_created",
        "history_snapshot",
        "tick",
        "simulation_started",
        "execution_report",
        "order_update",
        "account_snapshot",
        "batch_ack",
        "orders_cancelled",
        "simulation_paused",
        "simulation_resumed",
        "simulation_state",
        "simulation_end",
        "sessions",
        "session_closed",
        "session_resumed",
        "session_error",
        "error",
    ];

    /// The wire `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ServerMessage::ConnectionReady(_) => "connection_ready",
            ServerMessage::ConnectionWarning(_) => "connection_warning",
            ServerMessage::ConnectionClosing(_) => "connection_closing",
            ServerMessage::Pong(_) => "pong",
            ServerMessage::Health(_) => "health",
            ServerMessage::SessionCreated(_) => "session_created",
            ServerMessage::HistorySnapshot(_) => "history_snapshot",
            ServerMessage::Tick(_) => "tick",
            ServerMessage::SimulationStarted(_) => "simulation_started",
            ServerMessage::ExecutionReport(_) => "execution_report",
            ServerMessage::OrderUpdate(_) => "order_update",
            ServerMessage::AccountSnapshot(_) => "account_snapshot",
            ServerMessage::BatchAck(_) => "batch_ack",
            ServerMessage::OrdersCancelled(_) => "orders_cancelled",
            ServerMessage::SimulationPaused(_) => "simulation_paused",
            ServerMessage::SimulationResumed(_) => "simulation_resumed",
            ServerMessage::SimulationState(_) => "simulation_state",
            ServerMessage::SimulationEnd(_) => "simulation_end",
            ServerMessage::Sessions(_) => "sessions",
            ServerMessage::SessionClosed(_) => "session_closed",
            ServerMessage::SessionResumed(_) => "session_resumed",
            ServerMessage::SessionError(_) => "session_error",
            ServerMessage::Error(_) => "error",
        }
    }

    /// The frame to send: the envelope with `request_id` (echo the request's) and
    /// `timestamp` set to `server_time`, the server's wall clock in Unix seconds. The
    /// crate never reads a clock itself, so tests and replays are reproducible.
    pub fn to_frame(&self, request_id: Option<&str>, server_time: Timestamp) -> String {
        frame_text(self, request_id, Some(&format_wire_time(server_time)))
    }
}

/// A typed message inside the envelope, serialised in one pass.
#[derive(Serialize)]
struct FrameOut<'a, M: Serialize> {
    #[serde(flatten)]
    message: &'a M,
    request_id: Option<&'a str>,
    timestamp: Option<&'a str>,
}

/// What a frame's text starts with room for: a tick with a few symbols, an execution
/// report or an account snapshot.
const FRAME_CAPACITY: usize = 512;

/// Envelope text of `message` (an adjacently tagged `{"type", "data"}` enum).
pub(crate) fn frame_text<M: Serialize>(
    message: &M,
    request_id: Option<&str>,
    timestamp: Option<&str>,
) -> String {
    let out = FrameOut {
        message,
        request_id,
        timestamp,
    };
    // Most frames fit: one allocation instead of a string grown by doubling.
    let mut text = Vec::with_capacity(FRAME_CAPACITY);
    // Our message types hold only strings, numbers, string-keyed maps and decimals,
    // none of which can fail to serialise; the fallback keeps this total anyway.
    serde_json::to_writer(&mut text, &out)
        .ok()
        .and_then(|()| String::from_utf8(text).ok())
        .unwrap_or_else(|| {
        r#"{"type":"error","data":{"error_code":"SERVICE_BUSY","message":"internal serialization error","error_type":"connection","severity":"warning","recoverable":true,"details":null},"request_id":null,"timestamp":null}"#
            .to_string()
    })
}
