//! Running a Rust strategy in-process: the fastest way to use the engine, and what the
//! tests and benchmarks use.

use market_data::{Candle, Slice, Step, SymbolBar};

use super::events::Event;
use super::order::{OrderRequest, Side};
use super::{EndReason, Engine, ExecutionMode, SimulationResults};

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
    mut sink: impl FnMut(&Event),
) -> SimulationResults {
    let start = engine.sequence_id() as usize;
    if start == 0 {
        strategy.on_start(&slice.warmup, engine);
    }
    let mut events = Vec::with_capacity(16);
    let mut orders = Vec::new();
    for step in slice.steps.iter().skip(start) {
        let bars = slice.bars_of(step);
        events.clear();
        engine.on_step(step, bars, &mut events);
        for e in &events {
            strategy.on_event(e);
            sink(e);
        }
        strategy.on_bar(&BarContext { step, bars, engine }, &mut orders);
        if !orders.is_empty() {
            engine.submit(std::mem::take(&mut orders), ExecutionMode::BestEffort);
        }
    }
    engine.finish(EndReason::Completed)
}

/// Runs `strategy` over `slice` and returns the results.
pub fn run<S: Strategy>(engine: &mut Engine, slice: &Slice, strategy: &mut S) -> SimulationResults {
    run_with_events(engine, slice, strategy, |_| {})
}

/// Rolling sum of the last `len` closes, exact in fixed-point integers.
#[derive(Clone, Debug)]
struct RollingSum {
    window: Vec<i64>,
    next: usize,
    filled: usize,
    sum: i128,
}

impl RollingSum {
    fn new(len: usize) -> Self {
        RollingSum {
            window: vec![0; len.max(1)],
            next: 0,
            filled: 0,
            sum: 0,
        }
    }

    #[inline]
    fn push(&mut self, v: i64) {
        self.sum += v as i128 - self.window[self.next] as i128;
        self.window[self.next] = v;
        self.next += 1;
        if self.next == self.window.len() {
            self.next = 0;
        }
        self.filled = (self.filled + 1).min(self.window.len());
    }

    fn ready(&self) -> bool {
        self.filled == self.window.len()
    }
}

/// Per-symbol moving-average state.
#[derive(Clone, Debug)]
struct SmaState {
    fast: RollingSum,
    slow: RollingSum,
    /// Sign of fast - slow at the previous bar (None until both averages exist).
    prev: Option<std::cmp::Ordering>,
}

/// SMA crossover: buy `quantity` at market when the fast SMA crosses above the slow
/// one while flat; sell the whole position at market when it crosses below while long.
/// A cross needs `fast < slow` on the previous bar and `fast > slow` now (and mirrored).
/// Averages are compared exactly (`sum_fast x slow_len` vs `sum_slow x fast_len`).
#[derive(Clone, Debug)]
pub struct SmaCrossover {
    fast_len: usize,
    slow_len: usize,
    quantity: i64,
    state: Vec<SmaState>,
    orders: u64,
}

impl SmaCrossover {
    /// A crossover of `fast` and `slow` bar averages trading `quantity` units.
    pub fn new(fast: usize, slow: usize, quantity: i64) -> Self {
        SmaCrossover {
            fast_len: fast.max(1),
            slow_len: slow.max(1),
            quantity,
            state: Vec::new(),
            orders: 0,
        }
    }

    fn state_for(&mut self, symbol: usize) -> &mut SmaState {
        while self.state.len() <= symbol {
            self.state.push(SmaState {
                fast: RollingSum::new(self.fast_len),
                slow: RollingSum::new(self.slow_len),
                prev: None,
            });
        }
        &mut self.state[symbol]
    }

    /// Feeds one close; returns the crossing direction, if any.
    fn update(&mut self, symbol: usize, close: i64) -> Option<Side> {
        let (fast_len, slow_len) = (self.fast_len as i128, self.slow_len as i128);
        let s = self.state_for(symbol);
        s.fast.push(close);
        s.slow.push(close);
        if !(s.fast.ready() && s.slow.ready()) {
            return None;
        }
        let now = (s.fast.sum * slow_len).cmp(&(s.slow.sum * fast_len));
        let prev = s.prev.replace(now);
        use std::cmp::Ordering::*;
        match (prev?, now) {
            (Less, Greater) => Some(Side::Buy),
            (Greater, Less) => Some(Side::Sell),
            _ => None,
        }
    }
}

impl Strategy for SmaCrossover {
    fn on_start(&mut self, warmup: &[Vec<Candle>], _engine: &Engine) {
        for (i, bars) in warmup.iter().enumerate() {
            for c in bars {
                self.update(i, c.close.raw());
            }
        }
    }

    fn on_bar(&mut self, ctx: &BarContext<'_>, orders: &mut Vec<OrderRequest>) {
        for b in ctx.bars {
            let i = b.symbol as usize;
            let signal = self.update(i, b.candle.close.raw());
            let position = ctx.engine.position(b.symbol);
            let (side, qty) = match signal {
                Some(Side::Buy) if position == 0 => (Side::Buy, self.quantity),
                Some(Side::Sell) if position > 0 => (Side::Sell, position),
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
