//! Strategies for remote runs: they see what a client sees (warm-up bars, fills, ticks)
//! and answer each tick with orders. [`SmaCross`] and [`BuyAndHold`] make the same
//! decisions as the engine's built-in `SmaCrossover` and `BuyAndHold`, so a lock-step
//! remote run reproduces an in-process run exactly.

use model::{Cross, SmaCrossSignal};

use protocol::{
    AccountSnapshotData, ExecutionReportData, HistorySnapshotData, OrderRequest, OrderUpdateData,
    Side, TickData,
};

use crate::trades::TradeBook;

/// What a strategy sees on each tick.
pub struct TickContext<'a> {
    /// The tick: bars of the symbols that have one at this time.
    pub tick: &'a TickData,
    /// The session's symbols, in request order (the order to decide in).
    pub symbols: &'a [String],
    /// Positions after every fill up to and including this bar.
    pub book: &'a TradeBook,
    /// The latest account snapshot, if one was sent.
    pub account: Option<&'a AccountSnapshotData>,
}

impl TickContext<'_> {
    /// Signed position in `symbol`.
    pub fn position(&self, symbol: &str) -> i64 {
        self.book.position(symbol)
    }
}

/// A strategy driven by a session's events. Orders pushed in `on_tick` are sent before
/// the tick is acknowledged, so under lock-step they are evaluated from the next bar.
pub trait Strategy {
    /// Called once before the first tick with the session's symbols and warm-up bars.
    fn on_start(&mut self, _symbols: &[String], _history: &HistorySnapshotData) {}
    /// Called for every fill (before the tick of its bar).
    fn on_fill(&mut self, _fill: &ExecutionReportData) {}
    /// Called when an order changes without a fill.
    fn on_order_update(&mut self, _update: &OrderUpdateData) {}
    /// Called for every account snapshot.
    fn on_account(&mut self, _account: &AccountSnapshotData) {}
    /// Called for every tick; push the orders to send.
    fn on_tick(&mut self, ctx: &TickContext<'_>, orders: &mut Vec<OrderRequest>);
}

impl<S: Strategy + ?Sized> Strategy for Box<S> {
    fn on_start(&mut self, symbols: &[String], history: &HistorySnapshotData) {
        (**self).on_start(symbols, history)
    }
    fn on_fill(&mut self, fill: &ExecutionReportData) {
        (**self).on_fill(fill)
    }
    fn on_order_update(&mut self, update: &OrderUpdateData) {
        (**self).on_order_update(update)
    }
    fn on_account(&mut self, account: &AccountSnapshotData) {
        (**self).on_account(account)
    }
    fn on_tick(&mut self, ctx: &TickContext<'_>, orders: &mut Vec<OrderRequest>) {
        (**self).on_tick(ctx, orders)
    }
}

/// SMA crossover: buys `quantity` at market when the fast average crosses above the
/// slow one while flat, sells the whole position when it crosses below while long.
/// Averages are compared exactly (`sum_fast * slow_len` against `sum_slow * fast_len`).
#[derive(Clone, Debug)]
pub struct SmaCross {
    signal: SmaCrossSignal,
    quantity: i64,
    orders: u64,
}

impl SmaCross {
    /// A crossover of `fast` and `slow` bar averages trading `quantity` units.
    pub fn new(fast: usize, slow: usize, quantity: i64) -> Self {
        SmaCross {
            signal: SmaCrossSignal::new(fast, slow),
            quantity,
            orders: 0,
        }
    }
}

impl Strategy for SmaCross {
    fn on_start(&mut self, symbols: &[String], history: &HistorySnapshotData) {
        for (i, symbol) in symbols.iter().enumerate() {
            for c in history.candles.get(symbol).into_iter().flatten() {
                self.signal.update(i, c.close.raw());
            }
        }
    }

    fn on_tick(&mut self, ctx: &TickContext<'_>, orders: &mut Vec<OrderRequest>) {
        for (i, symbol) in ctx.symbols.iter().enumerate() {
            let Some(candle) = ctx.tick.candles.get(symbol) else {
                continue;
            };
            let signal = self.signal.update(i, candle.close.raw());
            let position = ctx.position(symbol);
            let (side, qty) = match signal {
                Some(Cross::Up) if position == 0 => (Side::Buy, self.quantity),
                Some(Cross::Down) if position > 0 => (Side::Sell, position),
                _ => continue,
            };
            self.orders += 1;
            orders.push(OrderRequest::market(
                format!("sma-{}", self.orders),
                symbol.clone(),
                side,
                qty,
            ));
        }
    }
}

/// Buys `quantity` of every symbol at its first bar and holds to the end.
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
    fn on_tick(&mut self, ctx: &TickContext<'_>, orders: &mut Vec<OrderRequest>) {
        if self.bought.len() < ctx.symbols.len() {
            self.bought.resize(ctx.symbols.len(), false);
        }
        for (i, symbol) in ctx.symbols.iter().enumerate() {
            if !self.bought[i] && ctx.tick.candles.contains_key(symbol) {
                self.bought[i] = true;
                orders.push(OrderRequest::market(
                    format!("bh-{i}"),
                    symbol.clone(),
                    Side::Buy,
                    self.quantity,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use model::{Amount, MarketSession, Price, Timeframe};
    use protocol::WireCandle;

    use super::*;

    fn tick(seq: u64, closes: &[(&str, i64)]) -> TickData {
        let candles: BTreeMap<String, WireCandle> = closes
            .iter()
            .map(|(s, c)| {
                let p = Price::from_int(*c);
                let candle = WireCandle {
                    date: "2020-01-01T00:00:00Z".into(),
                    open: p,
                    high: p,
                    low: p,
                    close: p,
                    volume: Amount::from_int(1),
                };
                (s.to_string(), candle)
            })
            .collect();
        TickData {
            session_id: "s".into(),
            sim_time: seq as i64 * 86_400,
            sequence_id: seq,
            timeframe: Timeframe::Daily,
            symbols_trading: candles.keys().cloned().collect(),
            candles,
            market_session: MarketSession::Regular,
            is_eod: true,
        }
    }

    fn decide(
        s: &mut impl Strategy,
        t: &TickData,
        symbols: &[String],
        book: &TradeBook,
    ) -> Vec<OrderRequest> {
        let mut orders = Vec::new();
        let ctx = TickContext {
            tick: t,
            symbols,
            book,
            account: None,
        };
        s.on_tick(&ctx, &mut orders);
        orders
    }

    #[test]
    fn sma_buys_on_an_upward_cross_only_when_flat() {
        let symbols = vec!["A".to_string()];
        let book = TradeBook::new();
        let mut sma = SmaCross::new(2, 3, 7);
        let mut all = Vec::new();
        // Falling, then rising: fast (2) crosses above slow (3) at the 5th close.
        for (i, c) in [10, 9, 8, 9, 12].into_iter().enumerate() {
            all.extend(decide(
                &mut sma,
                &tick(i as u64 + 1, &[("A", c)]),
                &symbols,
                &book,
            ));
        }
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].side, all[0].quantity), (Side::Buy, 7));
    }

    #[test]
    fn buy_and_hold_buys_each_symbol_once_at_its_first_bar() {
        let symbols = vec!["A".to_string(), "B".to_string()];
        let book = TradeBook::new();
        let mut bh = BuyAndHold::new(3);
        let first = decide(&mut bh, &tick(1, &[("A", 1)]), &symbols, &book);
        let second = decide(&mut bh, &tick(2, &[("A", 1), ("B", 2)]), &symbols, &book);
        let third = decide(&mut bh, &tick(3, &[("A", 1), ("B", 2)]), &symbols, &book);
        assert_eq!(first.len(), 1);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].symbol, "B");
        assert!(third.is_empty());
    }
}
