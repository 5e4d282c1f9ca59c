//! Running a Rust strategy in-process: the fastest way to use the engine, and what the
//! tests and benchmarks use.

use model::{Candle, Cross, Slice, SmaCrossSignal, Step, SymbolBar};

use super::events::Event;
use super::order::{OrderRequest, Side};
use super::{EndReason, Engine, ExecutionMode, SimulationResults, SubmitOrders};

/// What a strategy sees after each bar.
pub struct BarContext<'a> {
    /// The time step (time, end-of-day flag, market session).
    pub step: &'a Step,
    /// Bars of this step; `SymbolBar::symbol` indexes the session's symbols.
    pub bars: &'a [SymbolBar],
    /// The engine after the bar: cash, positions, open orders.
    pub engine: &'a Engine,
}

/// A trading strategy driven bar by bar. Orders pushed in `on_bar` are submitted
/// after the bar and evaluated from the next bar on, exactly like a client's.
pub trait Strategy {
    /// Called once before the first bar with each symbol's warm-up bars.
    fn on_start(&mut self, _warmup: &[Vec<Candle>], _engine: &Engine) {}
    /// Called for every engine event (fills, order updates, snapshots, ticks).
    fn on_event(&mut self, _event: &Event) {}
    /// Called after each bar; push orders to submit.
    fn on_bar(&mut self, ctx: &BarContext<'_>, orders: &mut Vec<OrderRequest>);
}

/// A boxed strategy is a strategy, so one can be chosen at run time.
impl<S: Strategy + ?Sized> Strategy for Box<S> {
    fn on_start(&mut self, warmup: &[Vec<Candle>], engine: &Engine) {
        (**self).on_start(warmup, engine)
    }
    fn on_event(&mut self, event: &Event) {
        (**self).on_event(event)
    }
    fn on_bar(&mut self, ctx: &BarContext<'_>, orders: &mut Vec<OrderRequest>) {
        (**self).on_bar(ctx, orders)
    }
}

/// Runs `strategy` over every step of `slice` from the engine's current position and
/// finishes the run. `sink` sees every event in order.
pub fn run_with_events<S: Strategy>(
    engine: &mut Engine,
    slice: &Slice,
    strategy: &mut S,
    sink: impl FnMut(&Event),
) -> SimulationResults {
    drive(engine, slice, strategy, sink, |_| None)
}

/// Runs `strategy` over `slice` and returns the results.
pub fn run<S: Strategy>(engine: &mut Engine, slice: &Slice, strategy: &mut S) -> SimulationResults {
    run_with_events(engine, slice, strategy, |_| {})
}

/// How many bars [`run_controlled`] processes between two questions to its control.
pub const CONTROL_EVERY_BARS: u64 = 1024;

/// Runs like [`run`] for a caller on another thread: before the first bar and every
/// [`CONTROL_EVERY_BARS`] bars after it, `control` is told how many bars have been
/// processed;
/// `Some(reason)` ends the run there with that reason (a cancelled or over-long run
/// keeps what it did so far), `None` goes on. The results equal [`run`]'s whenever
/// `control` never stops it.
pub fn run_controlled<S: Strategy>(
    engine: &mut Engine,
    slice: &Slice,
    strategy: &mut S,
    control: impl FnMut(u64) -> Option<EndReason>,
) -> SimulationResults {
    drive(engine, slice, strategy, |_| {}, control)
}

fn drive<S: Strategy>(
    engine: &mut Engine,
    slice: &Slice,
    strategy: &mut S,
    mut sink: impl FnMut(&Event),
    mut control: impl FnMut(u64) -> Option<EndReason>,
) -> SimulationResults {
    let start = engine.sequence_id() as usize;
    if start == 0 {
        strategy.on_start(&slice.warmup, engine);
    }
    let mut events = Vec::with_capacity(16);
    let mut orders = Vec::new();
    for (done, step) in slice.steps.iter().enumerate().skip(start) {
        if (done as u64).is_multiple_of(CONTROL_EVERY_BARS) {
            if let Some(reason) = control(done as u64) {
                return engine.finish(reason);
            }
        }
        let bars = slice.bars_of(step);
        events.clear();
        engine.on_step(step, bars, &mut events);
        for e in &events {
            strategy.on_event(e);
            sink(e);
        }
        strategy.on_bar(&BarContext { step, bars, engine }, &mut orders);
        if !orders.is_empty() {
            engine.apply(SubmitOrders {
                orders: std::mem::take(&mut orders),
                mode: ExecutionMode::BestEffort,
            });
        }
    }
    engine.finish(EndReason::Completed)
}

/// SMA crossover: buy `quantity` at market when the fast SMA crosses above the slow
/// one while flat; sell the whole position at market when it crosses below while long.
/// A cross needs `fast < slow` on the previous bar and `fast > slow` now (and mirrored).
/// Averages are compared exactly (`sum_fast x slow_len` vs `sum_slow x fast_len`).
#[derive(Clone, Debug)]
pub struct SmaCrossover {
    signal: SmaCrossSignal,
    quantity: i64,
    orders: u64,
}

impl SmaCrossover {
    /// A crossover of `fast` and `slow` bar averages trading `quantity` units.
    pub fn new(fast: usize, slow: usize, quantity: i64) -> Self {
        SmaCrossover {
            signal: SmaCrossSignal::new(fast, slow),
            quantity,
            orders: 0,
        }
    }
}

impl Strategy for SmaCrossover {
    fn on_start(&mut self, warmup: &[Vec<Candle>], _engine: &Engine) {
        for (i, bars) in warmup.iter().enumerate() {
            for c in bars {
                self.signal.update(i, c.close.raw());
            }
        }
    }

    fn on_bar(&mut self, ctx: &BarContext<'_>, orders: &mut Vec<OrderRequest>) {
        for b in ctx.bars {
            let i = b.symbol as usize;
            let signal = self.signal.update(i, b.candle.close.raw());
            let position = ctx.engine.position(b.symbol);
            let (side, qty) = match signal {
                Some(Cross::Up) if position == 0 => (Side::Buy, self.quantity),
                Some(Cross::Down) if position > 0 => (Side::Sell, position),
                _ => continue,
            };
            self.orders += 1;
            let symbol = ctx.engine.config().symbols[i].clone();
            orders.push(OrderRequest::market(
                format!("sma-{}", self.orders),
                symbol,
                side,
                qty,
            ));
        }
    }
}

/// Buys `quantity` of every symbol at the first bar and holds to the end.
#[derive(Clone, Debug, Default)]
pub struct BuyAndHold {
    quantity: i64,
    bought: Vec<bool>,
}

impl BuyAndHold {
    /// Buys `quantity` units of each symbol once.
    pub fn new(quantity: i64) -> Self {
        BuyAndHold {
            quantity,
            bought: Vec::new(),
        }
    }
}

impl Strategy for BuyAndHold {
    fn on_bar(&mut self, ctx: &BarContext<'_>, orders: &mut Vec<OrderRequest>) {
        for b in ctx.bars {
            let i = b.symbol as usize;
            if self.bought.len() <= i {
                self.bought.resize(i + 1, false);
            }
            if !self.bought[i] {
                self.bought[i] = true;
                let symbol = ctx.engine.config().symbols[i].clone();
                orders.push(OrderRequest::market(
                    format!("bh-{i}"),
                    symbol,
                    Side::Buy,
                    self.quantity,
                ));
            }
        }
    }
}
