//! The SimuTrador wire contract (PROTOCOL.md), shared by the gateway and the client.
//!
//! - [`envelope`]: the `{type, data, request_id, timestamp}` frame.
//! - [`client`]: what clients send; [`parse_client_frame`] reads and classifies it.
//! - [`server`]: what the server sends; [`ServerMessage::to_frame`] writes it,
//!   [`parse_server_frame`] reads it back.
//! - [`connection`], [`session`], [`market`], [`trading`]: server payloads by topic.
//! - [`errors`]: error codes and the `error` / `session_error` payloads.
//! - [`rest`], [`plan`]: the token endpoints' bodies and the plan names; [`results`]:
//!   the `/api/sessions` bodies; [`strategies`]: the `/api/strategies` body (the
//!   built-in strategies and their parameters).
//! - [`time`]: RFC 3339 / bare-date handling; [`orders`]: the order vocabulary.
//! - [`round_trips`]: the bookkeeping that turns fills into round-trip trades, shared
//!   by the engine and clients.

pub mod backtests;
pub mod client;
pub mod connection;
pub mod envelope;
pub mod errors;
pub mod market;
pub mod orders;
pub mod parse;
pub mod plan;
pub mod rest;
pub mod results;
pub mod round_trips;
pub mod server;
pub mod session;
pub mod strategies;
pub mod time;
pub mod trading;
pub mod validate;

pub use backtests::{BacktestRequest, BacktestState, BacktestStatus};
pub use client::{
    CancelOrdersData, ClientMessage, CreateSessionData, Empty, MarketHours, OrderBatchData,
    ProcessingStatus, ResumeSessionData, SessionParams, SessionRef, SimulationStartData,
    StartSimulationData, TickAckData,
};
pub use connection::{
    CloseReason, ConnectionClosingData, ConnectionReadyData, ConnectionWarningData, HealthData,
    HealthStatus, PongData, WarningType,
};
pub use envelope::Envelope;
pub use errors::{
    ErrorCode, ErrorData, ErrorType, ProtocolError, SessionErrorData, Severity, UnknownErrorCode,
};
pub use market::{
    BarsResponse, HistorySnapshotData, MarketDataResponse, ProviderEntry, StoredEntry, SymbolEntry,
    TickData, WireCandle,
};
pub use model::MarketSession;
pub use orders::{ExecutionMode, OrderRequest, OrderType, Side, TimeInForce};
pub use parse::{parse_client_frame, parse_server_frame, ServerFrame};
pub use plan::{Plan, UnknownPlan};
pub use rest::{ApiError, TokenResponse, ValidateResponse};
pub use results::{
    Analytics, AnalyticsPoint, EquityPoint, Percent, PercentError, PeriodReturn, SessionDetail,
    SessionEntry, SessionListResponse, TradeData,
};
pub use server::ServerMessage;
pub use session::{
    EndReason, SessionCreatedData, SessionResumedData, SessionSummary, SessionsData,
    SimulationEndData, SimulationStartedData, SimulationState, SimulationStateData,
};
pub use strategies::{ParamDescription, ParamType, StrategiesResponse, StrategyDescription};
pub use time::{format_wire_time, parse_wire_time, TimeError};
pub use trading::{
    AccountSnapshotData, BatchAckData, ExecutionReportData, FillReason, FillStatus, OrderStatus,
    OrderUpdateData, OrdersCancelledData, PositionData,
};
