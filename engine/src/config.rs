//! Per-session engine parameters.

use std::collections::BTreeSet;

use model::{Amount, Price};
use serde::{Deserialize, Serialize};

/// Parameters of one simulation, fixed for its lifetime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Session symbols; indices in bars refer to this list.
    pub symbols: Vec<String>,
    /// Starting cash.
    pub initial_capital: Amount,
    /// Commission per unit traded.
    pub commission_per_share: Price,
    /// Minimum commission per fill.
    pub min_commission: Amount,
    /// Slippage on market and stop fills, in basis points.
    pub slippage_bps: u32,
    /// Selling more than held opens a short.
    pub allow_short: bool,
    /// Cap on one bar's fills per symbol, in basis points of the bar's volume.
    pub max_volume_participation_bps: Option<u32>,
    /// Bars per year, for annualised metrics (see [`super::metrics::periods_per_year`]).
    pub periods_per_year: f64,
    /// Also emit an account snapshot every N bars (0 = only when something changed).
    pub account_snapshot_every: u32,
    /// Maximum points kept in the equity curve of the results.
    pub equity_curve_points: usize,
    /// Most working-order slots the session may hold (the plan's `max_working_orders`);
    /// `None` for no cap. Every working order takes one slot, and a bracket entry also
    /// reserves one per exit it declares until that exit is in the book, so the book
    /// never holds more orders than this.
    pub max_working_orders: Option<u32>,
}

impl EngineConfig {
    /// Defaults for `symbols` and `initial_capital`: no costs, daily equity annualisation.
    pub fn new(symbols: Vec<String>, initial_capital: Amount) -> Self {
        EngineConfig {
            symbols,
            initial_capital,
            commission_per_share: Price::ZERO,
            min_commission: Amount::ZERO,
            slippage_bps: 0,
            allow_short: false,
            max_volume_participation_bps: None,
            periods_per_year: 252.0,
            account_snapshot_every: 0,
            equity_curve_points: 2048,
            max_working_orders: None,
        }
    }

    /// Checks every parameter; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, why: &str| {
            Err(ConfigError {
                field,
                message: why.to_string(),
            })
        };
        if self.symbols.is_empty() {
            return bad("symbols", "at least one symbol is required");
        }
        if self.symbols.iter().collect::<BTreeSet<_>>().len() != self.symbols.len() {
            return bad("symbols", "symbols must be unique");
        }
        if self.symbols.len() > u32::MAX as usize {
            return bad("symbols", "too many symbols");
        }
        if !self.initial_capital.is_positive() {
            return bad("initial_capital", "must be greater than 0");
        }
        if self.commission_per_share.raw() < 0 {
            return bad("commission_per_share", "must not be negative");
        }
        if self.min_commission.is_negative() {
            return bad("min_commission", "must not be negative");
        }
        if self.slippage_bps > 10_000 {
            return bad("slippage_bps", "must be between 0 and 10000");
        }
        if let Some(p) = self.max_volume_participation_bps {
            if p == 0 || p > 10_000 {
                return bad(
                    "max_volume_participation_bps",
                    "must be between 1 and 10000",
                );
            }
        }
        if self.max_working_orders == Some(0) {
            return bad("max_working_orders", "must be at least 1");
        }
        if !(self.periods_per_year.is_finite() && self.periods_per_year > 0.0) {
            return bad("periods_per_year", "must be a positive number");
        }
        Ok(())
    }
}

/// An invalid engine parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct ConfigError {
    /// The parameter's name.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}
