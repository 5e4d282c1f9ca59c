//! Semantic checks of well-formed client messages: failures are `VALIDATION_ERROR`s
//! naming the field. (Missing fields and wrong types are caught earlier, by serde, as
//! `INVALID_PARAMS`.)
//!
//! Strings a client chooses are bounded here too, in one place, as `INVALID_PARAMS`
//! naming the field: ids (`session_id`, `batch_id`, `order_id`, `request_id`), symbols
//! and `data_provider` must fit their length and hold no control or invisible
//! direction-changing characters (they are echoed in replies, logs and URLs), and
//! `metadata` (stored with the results) must fit [`MAX_METADATA_BYTES`] and
//! [`MAX_METADATA_DEPTH`]. Error messages name the field and never quote the value.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

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
/// Longest `order_id` (also each id of `cancel_orders.order_ids`), in bytes.
pub const MAX_ORDER_ID_LEN: usize = 128;
/// Longest `batch_id`, in bytes.
pub const MAX_BATCH_ID_LEN: usize = 128;
/// Longest `request_id`, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;
/// Longest `data_provider`, in bytes.
pub const MAX_PROVIDER_LEN: usize = 64;
/// Largest `metadata`, serialized as compact JSON, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Deepest nesting of `metadata`: the object itself is level 1, an object or array
/// inside it level 2, and so on.
pub const MAX_METADATA_DEPTH: usize = 8;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ProtocolError {
    let field = field.into();
    let message = format!("invalid `{field}`: {}", message.into());
    ProtocolError::new(ErrorCode::ValidationError, message).with_field(field)
}

fn bad_text(field: impl Into<String>, message: impl Into<String>) -> ProtocolError {
    let field = field.into();
    let message = format!("invalid `{field}`: {}", message.into());
    ProtocolError::new(ErrorCode::InvalidParams, message).with_field(field)
}

/// Characters refused in client strings: control characters, and the invisible
/// format characters that reorder or hide text where it is shown (zero-width and
/// bidirectional controls, the byte order mark).
fn forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Checks a client-chosen string: at most `max` bytes, no forbidden characters, and
/// not empty unless `may_be_empty`. The error names `field` and never quotes `value`.
pub fn check_text(
    field: impl Into<String>,
    value: &str,
    max: usize,
    may_be_empty: bool,
) -> Result<(), ProtocolError> {
    if value.is_empty() && !may_be_empty {
        return Err(bad_text(field, format!("must be 1 to {max} bytes")));
    }
    if value.len() > max {
        return Err(bad_text(
            field,
            format!("must be at most {max} bytes (got {})", value.len()),
        ));
    }
    if value.chars().any(forbidden_char) {
        return Err(bad_text(
            field,
            "must not contain control characters or invisible formatting characters",
        ));
    }
    Ok(())
}

/// Checks `metadata`: nesting at most [`MAX_METADATA_DEPTH`], compact JSON at most
/// [`MAX_METADATA_BYTES`].
fn check_metadata(metadata: &Map<String, Value>) -> Result<(), ProtocolError> {
    fn depth(v: &Value) -> usize {
        match v {
            Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let deepest = 1 + metadata.values().map(depth).max().unwrap_or(0);
    if deepest > MAX_METADATA_DEPTH {
        return Err(bad_text(
            "metadata",
            format!("must nest at most {MAX_METADATA_DEPTH} levels deep"),
        ));
    }
    let mut size = ByteCount(0);
    // Writing into a counter fails only past the limit, which is the answer then too.
    let _ = serde_json::to_writer(&mut size, metadata);
    if size.0 > MAX_METADATA_BYTES {
        return Err(bad_text(
            "metadata",
            format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"),
        ));
    }
    Ok(())
}

/// Counts the bytes written to it, refusing more once past [`MAX_METADATA_BYTES`] so a
/// large value is not serialized to the end.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        if self.0 > MAX_METADATA_BYTES {
            return Err(std::io::Error::other("metadata too large"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ClientMessage {
    /// Checks the values of a well-formed message; the error is a `VALIDATION_ERROR`
    /// naming the field, or `INVALID_PARAMS` for a client string out of bounds.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if let Some(id) = self.session_id() {
            check_text("session_id", id, MAX_SESSION_ID_LEN, false)?;
        }
        match self {
            ClientMessage::StartSimulation(p) => validate_params(p),
            ClientMessage::CreateSession(d) => validate_params(&d.params),
            ClientMessage::SimulationStart(d) => window(d.max_pending_ticks),
            ClientMessage::OrderBatch(b) => {
                check_text("batch_id", &b.batch_id, MAX_BATCH_ID_LEN, true)?;
                b.orders
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, o)| validate_order(i, o))
            }
            ClientMessage::CancelOrders(c) => {
                c.order_ids.iter().enumerate().try_for_each(|(i, id)| {
                    check_text(format!("order_ids[{i}]"), id, MAX_ORDER_ID_LEN, false)
                })
            }
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

/// The semantic checks of a session's parameters (`start_simulation`, `create_session`,
/// a backtest's session): `VALIDATION_ERROR` or `INVALID_PARAMS` naming the field.
pub fn validate_params(p: &SessionParams) -> Result<(), ProtocolError> {
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
        check_text(field.as_str(), s, MAX_SYMBOL_LEN, false)?;
        if !seen.insert(s.as_str()) {
            return Err(invalid(field, "duplicate symbol"));
        }
    }
    if let Some(provider) = &p.data_provider {
        check_text("data_provider", provider, MAX_PROVIDER_LEN, false)?;
    }
    if let Some(m) = &p.metadata {
        check_metadata(m)?;
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
    check_text(
        format!("orders[{i}].order_id"),
        &o.order_id,
        MAX_ORDER_ID_LEN,
        false,
    )?;
    check_text(
        format!("orders[{i}].symbol"),
        &o.symbol,
        MAX_SYMBOL_LEN,
        false,
    )?;
    if o.quantity <= 0 {
        return Err(invalid(
            format!("orders[{i}].quantity"),
            "must be greater than 0",
        ));
    }
    Ok(())
}
