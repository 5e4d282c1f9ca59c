//! The built-in strategies a server-side backtest runs, chosen by id with parameters
//! given as JSON.
//!
//! [`strategies`] describes them (the `GET /api/strategies` body); [`build`] checks a
//! request's `params` against the same tables and returns the strategy, ready for
//! [`run`](crate::strategy::run), with the resolved parameters a stored run records.
//!
//! # Parameters
//!
//! - `params` is a JSON object. A key that is not a parameter of the strategy is
//!   refused; a parameter left out takes its default.
//! - An `integer` parameter takes a JSON integer: `20`, not `20.0` or `"20"`.
//! - A `decimal` parameter takes a decimal string (`"2.5"`, `"1e-1"`) or a JSON number
//!   (`2.5`), read exactly with at most 8 decimal places. A JSON number is read from
//!   the shortest text that gives its binary value, which for a decimal of up to 15
//!   significant digits is the text the client wrote: `0.1` is exactly 0.1, never
//!   0.1000000000000000055.
//! - Bounds are inclusive and listed by [`strategies`]. Rules between parameters:
//!   `sma_crossover` needs `fast < slow`, `rsi_mean_reversion` `oversold <
//!   overbought`.
//! - [`Built::params`] holds every parameter, defaults filled in, integers as JSON
//!   numbers and decimals as strings without exponent or trailing zeros (`"2.50"`
//!   becomes `"2.5"`, `"4.0"` becomes `"4"`): with the session's settings, all a run
//!   needs to be reproduced.
//! - A refusal is a [`ParamError`] whose message names the problem and the parameter:
//!   an unknown strategy id (listing the valid ones), an unknown parameter (listing
//!   the strategy's), a value of the wrong type, a value out of bounds (stating them),
//!   a broken rule between parameters.
//!
//! # How the strategies trade
//!
//! Rules common to all of them:
//!
//! - Each symbol of the session is traded on its own, from its own bars; long only, in
//!   whole units.
//! - A strategy decides after each bar of a symbol, from that bar and the ones before;
//!   its orders are submitted then and evaluated from the next bar on, exactly like a
//!   client's (README.md, "Engine semantics"): a market order fills at the open of the
//!   symbol's next bar, plus the session's slippage.
//! - Signals are exact: integer arithmetic on the fixed-point prices, never floats.
//! - Warm-up bars (the session's `warmup_bars`) feed the indicators before the first
//!   bar, so a signal can come on the first bar; without them an indicator first needs
//!   its length of bars from the run itself.
//! - An order the engine refuses (not enough buying power, say) is not retried; the
//!   next signal places a new one.
//! - Order ids are a prefix and a counter over the run (`sma-1`, `sma-2`, `brk-1`,
//!   `rsi-1`; `bh-<symbol index>` for buy and hold), so they are unique within a run;
//!   bracket exits are the engine's `<entry>-sl` and `<entry>-tp`.
//!
//! ## `sma_crossover`
//!
//! The fast and slow simple moving averages of closes over `fast` and `slow` bars
//! ([`SmaCrossover`]). A cross up is fast < slow on the previous bar and fast > slow
//! on this one; a cross down the mirror; equal averages are neither (compared exactly
//! as `sum_fast x slow = sum_slow x fast`). The first cross can come once both
//! averages have had `slow` bars and one more bar to compare with. On a cross up
//! while flat: buy `quantity` at market. On a cross down while long: sell the whole
//! position at market.
//!
//! ## `buy_and_hold`
//!
//! After the first bar of each symbol in the run, buy `quantity` at market, once
//! ([`BuyAndHold`]); never sell. An open position at the end is marked at the last
//! close in the final equity.
//!
//! ## `breakout`
//!
//! A Donchian-channel breakout with bracket exits ([`Breakout`]). The band is the
//! highest high of the `lookback` bars before the current one (the current bar is
//! never part of it). When a bar closes strictly above the band, while the symbol is
//! flat and no order is working on it (no pending entry, no exit left): buy
//! `quantity` at market with a bracket attached,
//!
//! - `stop_loss = close x (1 - stop_loss_pct / 100)`, rounded down to the price grid
//!   of 10^-8;
//! - `take_profit = close x (1 + take_profit_pct / 100)`, rounded up to 10^-8;
//!
//! where `close` is the signal bar's close. Rounding moves each exit away from the
//! close, so `stop_loss < close < take_profit` always holds and the engine accepts the
//! bracket (it requires a buy's `stop_loss < take_profit`, both positive). A signal
//! whose exits cannot be prices (a stop-loss rounding to zero on a close of a few
//! 10^-8, a take-profit beyond the largest price) places no order. The exits attach
//! when the entry fills at the next open and are live for the rest of that bar (the
//! engine's bracket rules: one cancels the other; both inside one bar count as the
//! stop-loss first unless the bar opens at or beyond the take-profit). The strategy
//! never sells by itself: a position is closed only by its stop-loss or take-profit,
//! and one still open at the end stays open.
//!
//! ## `rsi_mean_reversion`
//!
//! Cutler's RSI of closes over `period` moves ([`model::CutlerRsi`]): `gains` and
//! `losses` are the sums of the up and down close-to-close moves of the last `period`
//! moves, `RSI = 100 x gains / (gains + losses)`, compared with a level `t` exactly as
//! `RSI < t <=> 100 x gains < t x (gains + losses)` (and mirrored for `>`); an RSI
//! equal to the level is neither below nor above it. There is no RSI before `period`
//! moves (`period + 1` closes) have been seen, and none on a flat window (`gains +
//! losses = 0`). While no order is working on the symbol (an entry or exit not yet
//! filled): while flat, buy `quantity` at market when RSI < `oversold`; while long,
//! sell the whole position at market when RSI > `overbought`.

mod breakout;
mod params;
mod rsi;
#[cfg(test)]
mod tests;

use std::fmt;

use model::Price;
use serde_json::{Map, Value};

use crate::strategy::{BuyAndHold, SmaCrossover, Strategy};

pub use breakout::Breakout;
pub use rsi::RsiMeanReversion;

use params::{cut, describe, resolve, tenths, Kind, Param, Values};

/// Why [`build`] refused a request: the message names the problem and the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParamError {
    /// What is wrong, for the person who sent the request.
    pub message: String,
}

impl ParamError {
    fn new(message: String) -> Self {
        ParamError { message }
    }
}

/// A strategy ready to run, with the parameters it was built from.
pub struct Built {
    /// The strategy, for [`run`](crate::strategy::run).
    pub strategy: Box<dyn Strategy + Send>,
    /// Every parameter, defaults filled in, in the canonical encoding (integers as
    /// numbers, decimals as normalised strings).
    pub params: Map<String, Value>,
}

impl fmt::Debug for Built {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Built")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// One catalog entry: the description, the parameter table, and how to build it.
struct Entry {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    make: fn(&Values) -> Result<Box<dyn Strategy + Send>, ParamError>,
}

/// The `quantity` row every strategy has.
const fn quantity(description: &'static str) -> Param {
    Param {
        name: "quantity",
        label: "Quantity",
        kind: Kind::Integer {
            default: 100,
            min: 1,
            max: 1_000_000,
        },
        description,
    }
}

const SMA_PARAMS: &[Param] = &[
    Param {
        name: "fast",
        label: "Fast average",
        kind: Kind::Integer {
            default: 10,
            min: 1,
            // At most `slow`'s maximum less one: `fast < slow` must stay possible.
            max: 999,
        },
        description: "Length of the fast simple moving average of closes, in bars.",
    },
    Param {
        name: "slow",
        label: "Slow average",
        kind: Kind::Integer {
            default: 20,
            min: 2,
            max: 1000,
        },
        description: "Length of the slow simple moving average of closes, in bars; \
                      greater than fast.",
    },
    quantity("Units bought on a cross up, in whole units; a cross down sells the whole position."),
];

const BUY_AND_HOLD_PARAMS: &[Param] = &[quantity(
    "Units bought of each symbol after its first bar, in whole units.",
)];

const BREAKOUT_PARAMS: &[Param] = &[
    Param {
        name: "lookback",
        label: "Lookback",
        kind: Kind::Integer {
            default: 20,
            min: 2,
            max: 1000,
        },
        description: "Number of previous bars whose highest high a close must exceed, \
                      in bars.",
    },
    Param {
        name: "stop_loss_pct",
        label: "Stop-loss %",
        kind: Kind::Decimal {
            default: Price::from_int(2),
            min: tenths(1),
            max: Price::from_int(50),
        },
        description: "Distance of the stop-loss below the signal bar's close, in \
                      percent of that close.",
    },
    Param {
        name: "take_profit_pct",
        label: "Take-profit %",
        kind: Kind::Decimal {
            default: Price::from_int(4),
            min: tenths(1),
            max: Price::from_int(500),
        },
        description: "Distance of the take-profit above the signal bar's close, in \
                      percent of that close.",
    },
    quantity("Units bought on each breakout, in whole units; the bracket exits sell them."),
];

const RSI_PARAMS: &[Param] = &[
    Param {
        name: "period",
        label: "RSI period",
        kind: Kind::Integer {
            default: 14,
            min: 2,
            max: 500,
        },
        description: "Number of close-to-close moves Cutler's RSI sums, in bars.",
    },
    Param {
        name: "oversold",
        label: "Oversold level",
        kind: Kind::Integer {
            default: 30,
            min: 1,
            // At most `overbought`'s maximum less one: `oversold < overbought` must
            // stay possible.
            max: 98,
        },
        description: "Buy while flat when the RSI (0-100) is below this level; less \
                      than overbought.",
    },
    Param {
        name: "overbought",
        label: "Overbought level",
        kind: Kind::Integer {
            default: 70,
            min: 2,
            max: 99,
        },
        description: "Sell the whole position when the RSI (0-100) is above this level.",
    },
    quantity(
        "Units bought on each oversold signal, in whole units; the exit sells the whole position.",
    ),
];

fn make_sma(v: &Values) -> Result<Box<dyn Strategy + Send>, ParamError> {
    v.require_less("fast", "slow")?;
    Ok(Box::new(SmaCrossover::new(
        v.count("fast")?,
        v.count("slow")?,
        v.integer("quantity")?,
    )))
}

fn make_buy_and_hold(v: &Values) -> Result<Box<dyn Strategy + Send>, ParamError> {
    Ok(Box::new(BuyAndHold::new(v.integer("quantity")?)))
}

fn make_breakout(v: &Values) -> Result<Box<dyn Strategy + Send>, ParamError> {
    Ok(Box::new(Breakout::new(
        v.count("lookback")?,
        v.decimal("stop_loss_pct")?,
        v.decimal("take_profit_pct")?,
        v.integer("quantity")?,
    )))
}

fn make_rsi(v: &Values) -> Result<Box<dyn Strategy + Send>, ParamError> {
    v.require_less("oversold", "overbought")?;
    Ok(Box::new(RsiMeanReversion::new(
        v.count("period")?,
        v.level("oversold")?,
        v.level("overbought")?,
        v.integer("quantity")?,
    )))
}

/// The catalog, in the order [`strategies`] lists it.
const CATALOG: &[Entry] = &[
    Entry {
        id: "sma_crossover",
        name: "SMA crossover",
        description: "Buys when the fast simple moving average of closes crosses above \
                      the slow one while flat; sells the whole position when it crosses \
                      below.",
        params: SMA_PARAMS,
        make: make_sma,
    },
    Entry {
        id: "buy_and_hold",
        name: "Buy and hold",
        description: "Buys a fixed quantity of every symbol after its first bar and \
                      holds it to the end.",
        params: BUY_AND_HOLD_PARAMS,
        make: make_buy_and_hold,
    },
    Entry {
        id: "breakout",
        name: "Donchian breakout",
        description: "While flat, buys when a close breaks above the highest high of the \
                      previous bars, with a stop-loss and a take-profit set in percent of \
                      that close; only those exits close the position.",
        params: BREAKOUT_PARAMS,
        make: make_breakout,
    },
    Entry {
        id: "rsi_mean_reversion",
        name: "RSI mean reversion",
        description: "Buys while flat when Cutler's RSI of closes falls below the oversold \
                      level; sells the whole position when it rises above the overbought \
                      level.",
        params: RSI_PARAMS,
        make: make_rsi,
    },
];

/// Every built-in strategy with its parameters, in a stable order (the `GET
/// /api/strategies` list).
pub fn strategies() -> Vec<protocol::StrategyDescription> {
    CATALOG
        .iter()
        .map(|e| protocol::StrategyDescription {
            id: e.id.to_string(),
            name: e.name.to_string(),
            description: e.description.to_string(),
            params: e.params.iter().map(describe).collect(),
        })
        .collect()
}

/// The strategy `id` built from `params` (rules in the module documentation), with the
/// resolved parameters; refused with a message naming the problem.
pub fn build(id: &str, params: &Map<String, Value>) -> Result<Built, ParamError> {
    let Some(entry) = CATALOG.iter().find(|e| e.id == id) else {
        let ids: Vec<&str> = CATALOG.iter().map(|e| e.id).collect();
        return Err(ParamError::new(format!(
            "unknown strategy `{}`; valid ids: {}",
            cut(id),
            ids.join(", ")
        )));
    };
    let values = resolve(entry.id, entry.params, params)?;
    let strategy = (entry.make)(&values)?;
    Ok(Built {
        strategy,
        params: values.to_json(),
    })
}
