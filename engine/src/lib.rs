//! The pure, deterministic simulation core: orders, fills, portfolio and metrics.
//!
//! No actix, no tokio, no I/O, no clock, no randomness. The engine is driven by
//! [`Engine::on_step`] (one merged time step of bars) and by [`Command`]s applied
//! between steps ([`Engine::apply`]), and it appends [`Event`]s to a caller-owned
//! buffer. Every collection whose iteration order is observable is ordered, so
//! identical inputs give byte-identical outputs, and the whole state round-trips
//! through [`Engine::snapshot`] / [`Engine::restore`].
//!
//! Dependencies are the pure `model` and `protocol` crates, serde and postcard: the
//! session actor (`session-actor`) runs the engine, this crate knows nothing of it.

pub mod analytics;
mod book;
pub mod catalog;
pub mod command;
pub mod config;
pub mod events;
pub mod fill;
mod matching;
pub mod metrics;
pub mod order;
pub mod portfolio;
mod snapshot;
pub mod strategy;
mod submit;
#[cfg(test)]
mod tests;

use model::{Amount, Candle, Step, SymbolBar, Timestamp};
use serde::{Deserialize, Serialize};

pub use command::{Apply, CancelOrders, Command, Outcome, Scheduled, SubmitOrders};
pub use config::{ConfigError, EngineConfig};
pub use events::{
    AccountSnapshot, Event, ExecutionReport, FillReason, FillStatus, OrderStatus, OrderUpdate,
    PositionView, TickEvent,
};
pub use metrics::{periods_per_year, session_calendar, Metrics};
pub use order::{OrderRequest, OrderType, Side, TimeInForce};
pub use portfolio::ClosedTrade;
/// A closed round trip with its symbol name, as results carry it (the wire type).
pub use protocol::TradeData;
/// Results analytics in exact decimals (the wire types; computed by [`analytics`]).
pub use protocol::{Analytics, AnalyticsPoint, Percent, PeriodReturn};
pub use snapshot::SnapshotError;
pub use submit::{BatchResult, CancelResult, ExecutionMode, RejectReason};

use analytics::PeriodAccumulator;
use book::OrderBook;
use metrics::{EquityCurve, MetricsAccumulator};
use portfolio::Portfolio;

/// Why a run ended (`simulation_end.reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// All bars processed.
    Completed,
    /// The client stopped it.
    Stopped,
    /// The maximum simulation duration was reached.
    MaxDuration,
    /// The session failed.
    Error,
}

/// Everything a finished run produces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulationResults {
    /// Why the run ended.
    pub reason: EndReason,
    /// End-of-run metrics.
    pub metrics: Metrics,
    /// Closed round trips in closing order.
    pub trades: Vec<TradeData>,
    /// Sampled equity curve (bounded; always includes the first and last bar).
    pub equity_curve: Vec<(Timestamp, Amount)>,
    /// The account at the end.
    pub account: AccountSnapshot,
    /// Exact-decimal analytics: the curve (the points of `equity_curve`) with buy and
    /// hold and drawdown, monthly and yearly returns, per-trade returns ([`analytics`]).
    pub analytics: Analytics,
}

/// Per-step working memory, rebuilt from the config on restore; never serialized.
#[derive(Clone, Debug, Default)]
struct Scratch {
    bar_of: Vec<Option<Candle>>,
    used_volume: Vec<i64>,
}

impl Scratch {
    fn new(symbols: usize) -> Self {
        Scratch {
            bar_of: vec![None; symbols],
            used_volume: vec![0; symbols],
        }
    }
}

/// One simulation's state machine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Engine {
    config: EngineConfig,
    portfolio: Portfolio,
    /// Working orders in acceptance order.
    orders: OrderBook,
    next_seq: u64,
    executions: u64,
    /// Steps processed; equals the sequence id of the last tick.
    steps: u64,
    last_ts: Option<Timestamp>,
    day_start_equity: Amount,
    metrics: MetricsAccumulator,
    /// Running peak and calendar-month ends, for the analytics.
    periods: PeriodAccumulator,
    curve: EquityCurve,
    trades: Vec<ClosedTrade>,
    finished: bool,
    #[serde(skip)]
    scratch: Scratch,
}

impl PartialEq for Engine {
    fn eq(&self, other: &Self) -> bool {
        self.snapshot() == other.snapshot()
    }
}

impl Engine {
    /// A new engine at the start of a run.
    pub fn new(config: EngineConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let n = config.symbols.len();
        Ok(Engine {
            portfolio: Portfolio::new(config.initial_capital, n),
            orders: OrderBook::default(),
            next_seq: 1,
            executions: 0,
            steps: 0,
            last_ts: None,
            day_start_equity: config.initial_capital,
            metrics: MetricsAccumulator::new(config.initial_capital, n),
            periods: PeriodAccumulator::new(config.initial_capital),
            curve: EquityCurve::new(config.equity_curve_points),
            trades: Vec::new(),
            finished: false,
            scratch: Scratch::new(n),
            config,
        })
    }

    /// The run's parameters.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Sequence id of the last processed bar (0 before the first).
    pub fn sequence_id(&self) -> u64 {
        self.steps
    }

    /// Time of the last processed bar.
    pub fn sim_time(&self) -> Option<Timestamp> {
        self.last_ts
    }

    /// True after [`Engine::finish`].
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Current cash.
    pub fn cash(&self) -> Amount {
        self.portfolio.cash
    }

    /// Current equity at the last closes.
    pub fn equity(&self) -> Amount {
        self.portfolio.equity()
    }

    /// Signed position in symbol `index` (0 for an unknown index).
    pub fn position(&self, index: u32) -> i64 {
        self.portfolio
            .positions
            .get(index as usize)
            .map_or(0, |p| p.quantity)
    }

    /// Index of `symbol` in the session's symbol list.
    pub fn symbol_index(&self, symbol: &str) -> Option<u32> {
        self.config
            .symbols
            .iter()
            .position(|s| s == symbol)
            .map(|i| i as u32)
    }

    /// Number of working orders.
    pub fn open_order_count(&self) -> usize {
        self.orders.len()
    }

    /// Number of working orders of symbol index `symbol`: entries and bracket exits.
    pub fn working_orders_on(&self, symbol: u32) -> usize {
        self.orders.iter().filter(|o| o.symbol == symbol).count()
    }

    /// Closed round trips so far.
    pub fn closed_trades(&self) -> &[ClosedTrade] {
        &self.trades
    }

    /// Processes one time step: fills and expiries, then marks, then metrics; appends
    /// events to `out` with the tick last. Bars must belong to the session's symbols
    /// (`SymbolBar::symbol` < number of symbols); steps must be in increasing time.
    pub fn on_step(&mut self, step: &Step, bars: &[SymbolBar], out: &mut Vec<Event>) {
        if self.finished {
            return;
        }
        self.steps += 1;
        self.last_ts = Some(step.ts);
        let n = self.scratch.bar_of.len();
        for b in bars {
            let i = b.symbol as usize;
            if i < n {
                self.scratch.bar_of[i] = Some(b.candle);
                self.scratch.used_volume[i] = 0;
            }
        }
        let mut changed = false;
        if !self.orders.is_empty() {
            changed |= self.match_orders(step.ts, out);
        }
        for b in bars {
            if let Some(pos) = self.portfolio.positions.get_mut(b.symbol as usize) {
                pos.last = b.candle.close;
                self.metrics.observe_close(b.symbol, b.candle.close);
            }
        }
        if step.is_eod && !self.orders.is_empty() {
            changed |= self.expire_day_orders(step.ts, out);
        }
        let equity = self.portfolio.equity();
        self.metrics
            .observe_equity(equity, self.portfolio.has_exposure());
        let drawdown = self.periods.observe(step.ts, equity);
        let (metrics, initial) = (&self.metrics, self.config.initial_capital);
        self.curve.push(step.ts, equity, drawdown, || {
            metrics.buy_and_hold_value(initial)
        });
        let every = self.config.account_snapshot_every as u64;
        if changed || (every > 0 && self.steps.is_multiple_of(every)) {
            out.push(Event::Account(Box::new(self.account_snapshot())));
        }
        out.push(Event::Tick(TickEvent {
            sequence_id: self.steps,
            sim_time: step.ts,
            is_eod: step.is_eod,
        }));
        if step.is_eod {
            self.day_start_equity = equity;
        }
        for b in bars {
            if let Some(slot) = self.scratch.bar_of.get_mut(b.symbol as usize) {
                *slot = None;
            }
        }
    }

    /// The account now (`get_account`, and after bars that changed it).
    pub fn account_snapshot(&self) -> AccountSnapshot {
        let equity = self.portfolio.equity();
        AccountSnapshot {
            sim_time: self.last_ts,
            cash: self.portfolio.cash,
            equity,
            positions: self
                .portfolio
                .positions
                .iter()
                .enumerate()
                .filter(|(_, p)| p.quantity != 0)
                .map(|(i, p)| PositionView {
                    symbol: self.config.symbols[i].clone(),
                    quantity: p.quantity,
                    avg_cost: p.avg_cost(),
                    market_value: p.market_value(),
                    unrealized_pnl: p.unrealized(),
                })
                .collect(),
            buying_power: self.buying_power(),
            day_pnl: equity - self.day_start_equity,
            realized_pnl: self.portfolio.realized,
            open_orders: self.orders.iter().map(|o| o.id.clone()).collect(),
        }
    }

    /// Ends the run: working orders stay as they are, further commands are refused.
    pub fn finish(&mut self, reason: EndReason) -> SimulationResults {
        self.finished = true;
        let equity = self.portfolio.equity();
        let metrics = self.metrics.finish(
            equity,
            self.portfolio.commission,
            self.config.periods_per_year,
        );
        let trades = self
            .trades
            .iter()
            .map(|t| {
                t.trade
                    .to_trade_data(self.config.symbols[t.symbol as usize].clone())
            })
            .collect();
        let initial = self.config.initial_capital;
        let points = self.curve.points(
            self.last_ts.map(|ts| (ts, equity)),
            self.metrics.buy_and_hold_value(initial),
            self.periods.drawdown(),
        );
        let curve = points
            .iter()
            .map(|p| AnalyticsPoint {
                time: p.ts,
                equity: p.equity,
                buy_and_hold: p.buy_and_hold,
                drawdown_pct: p.deepest.pct(),
            })
            .collect();
        let analytics = analytics::build(
            curve,
            &self.periods,
            initial,
            self.trades.iter().map(|t| (t.trade.pnl, t.entry_notional)),
        );
        SimulationResults {
            reason,
            metrics,
            trades,
            equity_curve: points.iter().map(|p| (p.ts, p.equity)).collect(),
            account: self.account_snapshot(),
            analytics,
        }
    }

    /// Cash that new orders may still commit: cash minus the cost of short positions
    /// at the last close, minus what working buy orders have reserved.
    pub fn buying_power(&self) -> Amount {
        self.portfolio.cash - self.portfolio.short_liability() - self.reserved_by_open_buys()
    }
}
