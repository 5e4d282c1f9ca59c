//! Semantic checks of well-formed client messages: failures are `VALIDATION_ERROR`s
//! naming the field. (Missing fields and wrong types are caught earlier, by serde, as
//! `INVALID_PARAMS`.)

use std::collections::BTreeSet;

use crate::client::{ClientMessage, SessionParams};
use crate::errors::{ErrorCode, ProtocolError};
use crate::orders::OrderRequest;

/// Most symbols one session may have.
pub const MAX_SYMBOLS: usize = 1000;
/// Longest symbol, in bytes.
pub const MAX_SYMBOL_LEN: usize = 64;
/// Most warm-up bars per symbol (a `history_snapshot` carries them all in one frame).
pub const MAX_WARMUP_BARS: u32 = 10_000;
/// Largest slippage, in basis points (100%).
pub const MAX_SLIPPAGE_BPS: u32 = 10_000;
/// Slowest pacing, in milliseconds between ticks.
pub const MAX_TICK_INTERVAL_MS: u64 = 60_000;
/// Longest client-chosen session id, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 128;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ProtocolError {
    let field = field.into();
    let message = format!("invalid `{field}`: {}", message.into());
    ProtocolError::new(ErrorCode::ValidationError, message).with_field(field)
}

impl ClientMessage {
    /// Checks the values of a well-formed message; the error is a `VALIDATION_ERROR`
    /// naming the field.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        match self {
            ClientMessage::StartSimulation(p) => validate_params(p),
            ClientMessage::CreateSession(d) => {
                if let Some(id) = &d.session_id {
                    if id.is_empty() || id.len() > MAX_SESSION_ID_LEN {
                        return Err(invalid(
                            "session_id",
                            format!("must be 1 to {MAX_SESSION_ID_LEN} bytes"),
                        ));
                    }
                }
                validate_params(&d.params)
            }
            ClientMessage::SimulationStart(d) => window(d.max_pending_ticks),
            ClientMessage::OrderBatch(b) => b
                .orders
                .iter()
                .enumerate()
                .try_for_each(|(i, o)| validate_order(i, o)),
            _ => Ok(()),
        }
    }
}

fn window(max_pending_ticks: u32) -> Result<(), ProtocolError> {
    if max_pending_ticks < 1 {
        return Err(invalid("max_pending_ticks", "must be at least 1"));
    }
    Ok(())
}

fn validate_params(p: &SessionParams) -> Result<(), ProtocolError> {
    if p.symbols.is_empty() {
        return Err(invalid("symbols", "at least one symbol is required"));
    }
    if p.symbols.len() > MAX_SYMBOLS {
        return Err(invalid(
            "symbols",
            format!("at most {MAX_SYMBOLS} symbols are allowed"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, s) in p.symbols.iter().enumerate() {
        let field = format!("symbols[{i}]");
        if s.trim().is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
        if s.len() > MAX_SYMBOL_LEN {
            return Err(invalid(
                field,
                format!("must be at most {MAX_SYMBOL_LEN} bytes"),
            ));
        }
        if !seen.insert(s.as_str()) {
            return Err(invalid(field, "duplicate symbol"));
        }
    }
    if p.start_date >= p.end_date {
        return Err(invalid("end_date", "must be after start_date"));
    }
    if !p.initial_capital.is_positive() {
        return Err(invalid("initial_capital", "must be greater than 0"));
    }
    if p.warmup_bars > MAX_WARMUP_BARS {
        return Err(invalid(
            "warmup_bars",
            format!("must be at most {MAX_WARMUP_BARS}"),
        ));
    }
    if let Some(c) = p.commission_per_share {
        if c.raw() < 0 {
            return Err(invalid("commission_per_share", "must not be negative"));
        }
    }
    if let Some(bps) = p.slippage_bps {
        if bps > MAX_SLIPPAGE_BPS {
            return Err(invalid(
                "slippage_bps",
                format!("must be between 0 and {MAX_SLIPPAGE_BPS}"),
            ));
        }
    }
    window(p.max_pending_ticks)?;
    if p.tick_interval_ms > MAX_TICK_INTERVAL_MS {
        return Err(invalid(
            "tick_interval_ms",
            format!("must be at most {MAX_TICK_INTERVAL_MS}"),
        ));
    }
    Ok(())
}

fn validate_order(i: usize, o: &OrderRequest) -> Result<(), ProtocolError> {
    if o.quantity <= 0 {
        return Err(invalid(
            format!("orders[{i}].quantity"),
            "must be greater than 0",
        ));
    }
    Ok(())
}
