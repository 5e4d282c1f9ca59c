//! What a client asked for, parsed, and why a session could not be created.

use super::*;

/// What a client asked for, already parsed (`start_simulation` / `create_session`).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSpec {
    /// Client-chosen id, or None to generate one.
    pub session_id: Option<String>,
    /// Symbols.
    pub symbols: Vec<String>,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// First bar (inclusive).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
    /// Warm-up bars per symbol.
    pub warmup_bars: usize,
    /// Starting cash.
    pub initial_capital: Amount,
    /// Data provider; None for the default.
    pub data_provider: Option<String>,
    /// Commission per share; None for the configured default.
    pub commission_per_share: Option<Price>,
    /// Slippage; None for the configured default.
    pub slippage_bps: Option<u32>,
    /// Shorting allowed.
    pub allow_short: bool,
    /// Periodic account snapshots.
    pub account_snapshot_every: u32,
    /// The request as JSON, stored with the session.
    pub params_json: String,
    /// Which intraday equity bars the session sees.
    pub market_hours: MarketHours,
}

impl SessionSpec {
    /// The spec of a `start_simulation` / `create_session` request.
    pub fn from_params(session_id: Option<String>, params: &protocol::SessionParams) -> Self {
        SessionSpec {
            session_id,
            symbols: params.symbols.clone(),
            timeframe: params.timeframe,
            start: params.start_date,
            end: params.end_date,
            warmup_bars: params.warmup_bars as usize,
            initial_capital: params.initial_capital,
            data_provider: params.data_provider.clone(),
            commission_per_share: params.commission_per_share,
            slippage_bps: params.slippage_bps,
            allow_short: params.allow_short,
            account_snapshot_every: params.account_snapshot_every,
            // Plain data; serializing it cannot fail.
            params_json: serde_json::to_string(params).unwrap_or_default(),
            market_hours: params.market_hours,
        }
    }

    /// The market data the session runs on.
    pub fn slice_request(&self) -> SliceRequest {
        SliceRequest {
            provider: self.data_provider.clone(),
            symbols: self.symbols.clone(),
            timeframe: self.timeframe,
            start: self.start,
            end: self.end,
            warmup_bars: self.warmup_bars,
        }
    }
}

/// Why a session could not be created; `code` is the PROTOCOL.md `error_code`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CreateError {
    /// `INVALID_PARAMS`, `VALIDATION_ERROR`, `DATA_FETCH_FAILED`, `SESSION_CREATE_FAILED`
    /// or `SERVICE_BUSY`.
    pub code: ErrorCode,
    /// Safe to show to the client.
    pub message: String,
}
