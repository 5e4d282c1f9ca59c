//! Where working orders meet a bar: evaluation order, volume cap, fill-time cash and
//! short checks, bracket (OCO) management and expiry.

use model::fixed::SCALE;
use model::{Amount, Candle, Timestamp};

use super::events::{Event, ExecutionReport, FillReason, FillStatus, OrderStatus, OrderUpdate};
use super::fill::{evaluate, limit_at_open, FillPrice};
use super::order::{OpenOrder, OrderType, Role, Side, TimeInForce};
use super::Engine;

/// What happened to one order in one bar.
enum Outcome {
    /// No fill.
    None,
    /// Filled (fully or partly), or a stop_limit triggered.
    Changed,
    /// Left the book.
    Closed,
}

impl Engine {
    /// Evaluates every working order whose symbol has a bar in this step, in acceptance
    /// order. Exits attached by a fill at the open are evaluated in the same pass.
    /// Returns true when anything changed.
    pub(super) fn match_orders(&mut self, ts: Timestamp, out: &mut Vec<Event>) -> bool {
        let mut changed = false;
        let mut cursor = 0u64;
        let mut handled_pair: Option<u64> = None;
        while let Some(order) = self.orders.first_from(cursor) {
            let seq = order.seq;
            cursor = seq + 1;
            if handled_pair == Some(seq) || order.active_from > self.steps {
                continue;
            }
            let Some(bar) = self
                .scratch
                .bar_of
                .get(order.symbol as usize)
                .copied()
                .flatten()
            else {
                continue;
            };
            let sibling = match order.role {
                Role::StopLoss { sibling: Some(s) } | Role::TakeProfit { sibling: Some(s) } => self
                    .orders
                    .get(s)
                    .filter(|o| o.active_from <= self.steps)
                    .map(|_| s),
                _ => None,
            };
            if let Some(other) = sibling {
                handled_pair = Some(other.max(seq));
                let (sl, tp) = match order.role {
                    Role::StopLoss { .. } => (seq, other),
                    _ => (other, seq),
                };
                changed |= self.match_bracket(sl, tp, &bar, ts, out);
                continue;
            }
            let is_ioc = order.tif == TimeInForce::Ioc;
            let outcome = self.match_one(seq, &bar, ts, out);
            changed |= !matches!(outcome, Outcome::None);
            if is_ioc && !matches!(outcome, Outcome::Closed) && self.orders.contains(seq) {
                self.close_order(seq, OrderStatus::Expired, "IOC_EXPIRED", ts, out);
                changed = true;
            }
        }
        changed
    }

    /// Both legs of a bracket live in this bar: the stop-loss is assumed hit first,
    /// unless the bar opens at or beyond the take-profit, which then fills at the open.
    fn match_bracket(
        &mut self,
        sl: u64,
        tp: u64,
        bar: &Candle,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> bool {
        let tp_at_open = self
            .orders
            .get(tp)
            .is_some_and(|o| o.limit.is_some_and(|l| limit_at_open(o.side, l, bar)));
        if tp_at_open {
            return !matches!(self.match_one(tp, bar, ts, out), Outcome::None);
        }
        match self.match_one(sl, bar, ts, out) {
            Outcome::None => !matches!(self.match_one(tp, bar, ts, out), Outcome::None),
            _ => true,
        }
    }

    /// Evaluates one order against the bar and applies its fill.
    fn match_one(
        &mut self,
        seq: u64,
        bar: &Candle,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let slippage = self.config.slippage_bps;
        let Some(order) = self.orders.get_mut(seq) else {
            return Outcome::None;
        };
        let was_triggered = order.triggered;
        let Some(fp) = evaluate(order, bar, slippage) else {
            // A stop_limit that triggered without filling changed state, not the account.
            return if order.triggered != was_triggered {
                Outcome::Changed
            } else {
                Outcome::None
            };
        };
        let order = order.clone();
        self.execute(order, fp, bar, ts, out)
    }

    /// Applies a fill of `order` at `fp`, within the volume cap, cash and short rules.
    fn execute(
        &mut self,
        order: OpenOrder,
        fp: FillPrice,
        bar: &Candle,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) -> Outcome {
        let sym = order.symbol as usize;
        let mut qty = order.remaining();
        if let Some(bps) = self.config.max_volume_participation_bps {
            let cap = bar.volume.raw() * bps as i128 / 10_000 / SCALE as i128;
            let left =
                (cap - self.scratch.used_volume[sym] as i128).clamp(0, i64::MAX as i128) as i64;
            qty = qty.min(left);
            if qty == 0 {
                return Outcome::None;
            }
        }
        let position = self.portfolio.positions[sym].quantity;
        let is_leg = !matches!(order.role, Role::Client { .. });
        if is_leg {
            // An exit only ever closes what is still held.
            let closable = match order.side {
                Side::Sell => position.max(0),
                Side::Buy => (-position).max(0),
            };
            qty = qty.min(closable);
            if qty == 0 {
                self.close_order(
                    order.seq,
                    OrderStatus::Cancelled,
                    "POSITION_CLOSED",
                    ts,
                    out,
                );
                return Outcome::Closed;
            }
        } else if order.side == Side::Sell && !self.config.allow_short {
            qty = qty.min(position.max(0));
            if qty == 0 {
                self.close_order(
                    order.seq,
                    OrderStatus::Rejected,
                    "SHORT_NOT_ALLOWED",
                    ts,
                    out,
                );
                return Outcome::Closed;
            }
        }
        let commission = self.commission(qty);
        if !is_leg && order.side == Side::Buy {
            let opening = qty - qty.min((-position).max(0));
            if opening > 0 && self.portfolio.cash - fp.price.times(qty) - commission < Amount::ZERO
            {
                self.close_order(
                    order.seq,
                    OrderStatus::Rejected,
                    "INSUFFICIENT_BUYING_POWER",
                    ts,
                    out,
                );
                return Outcome::Closed;
            }
        }
        let signed = qty * order.side.sign();
        let effect = self
            .portfolio
            .apply_fill(order.symbol, signed, fp.price, commission, ts);
        self.scratch.used_volume[sym] += qty;
        if let Some(t) = effect.closed {
            self.metrics.observe_trade(&t);
            self.trades.push(t);
        }
        let filled = order.filled + qty;
        let leaves = order.quantity - filled;
        self.executions += 1;
        out.push(Event::Execution(Box::new(ExecutionReport {
            execution_id: format!("E{}", self.executions),
            order_id: order.id.clone(),
            symbol: self.config.symbols[sym].clone(),
            side: order.side,
            executed_quantity: qty,
            executed_price: fp.price,
            commission,
            slippage_bps: fp.slippage_bps,
            timestamp: ts,
            order_status: if leaves == 0 {
                FillStatus::Filled
            } else {
                FillStatus::PartiallyFilled
            },
            leaves_quantity: leaves,
            reason: match order.role {
                Role::StopLoss { .. } => FillReason::StopLoss,
                Role::TakeProfit { .. } => FillReason::TakeProfit,
                Role::Client { .. } if effect.opening => FillReason::Entry,
                Role::Client { .. } => FillReason::Exit,
            },
        })));
        if let Some(o) = self.orders.get_mut(order.seq) {
            o.filled = filled;
        }
        match order.role {
            Role::Client {
                stop_loss,
                take_profit,
                ..
            } if stop_loss.is_some() || take_profit.is_some() => {
                // Exits of a fill at the open see the rest of this bar; exits of a fill
                // inside the bar start with the next bar (the path inside is unknown).
                let from = if fp.at_open && order.kind == OrderType::Market {
                    self.steps
                } else {
                    self.steps + 1
                };
                self.attach_exits(order.seq, qty, from);
            }
            Role::StopLoss { sibling: Some(s) } | Role::TakeProfit { sibling: Some(s) } => {
                // One-cancels-other: the sibling shrinks by what this leg filled.
                if let Some(sib) = self.orders.get_mut(s) {
                    sib.quantity -= qty;
                    if sib.remaining() <= 0 {
                        self.close_order(s, OrderStatus::Cancelled, "OCO", ts, out);
                    }
                }
            }
            _ => {}
        }
        if leaves == 0 {
            self.remove_order(order.seq);
            Outcome::Closed
        } else {
            Outcome::Changed
        }
    }

    /// Creates the bracket legs of entry `seq`, or grows them by `qty`.
    fn attach_exits(&mut self, seq: u64, qty: i64, active_from: u64) {
        let Some(entry) = self.orders.get(seq) else {
            return;
        };
        let Role::Client {
            stop_loss,
            take_profit,
            exits,
        } = entry.role.clone()
        else {
            return;
        };
        let (symbol, side, id) = (entry.symbol, entry.side.opposite(), entry.id.clone());
        let mut legs = [
            exits.0.filter(|s| self.orders.contains(*s)),
            exits.1.filter(|s| self.orders.contains(*s)),
        ];
        for (i, price) in [stop_loss, take_profit].into_iter().enumerate() {
            let Some(price) = price else { continue };
            match legs[i] {
                Some(s) => {
                    if let Some(leg) = self.orders.get_mut(s) {
                        leg.quantity += qty;
                    }
                }
                None => {
                    let leg_seq = self.next_seq;
                    self.next_seq += 1;
                    let (suffix, kind, limit, stop, role) = if i == 0 {
                        (
                            "sl",
                            OrderType::Stop,
                            None,
                            Some(price),
                            Role::StopLoss { sibling: None },
                        )
                    } else {
                        (
                            "tp",
                            OrderType::Limit,
                            Some(price),
                            None,
                            Role::TakeProfit { sibling: None },
                        )
                    };
                    // Leg ids are `<entry>-sl` / `<entry>-tp`, made unique if a working
                    // order already uses that id: `-<seq>` appended, counting up while
                    // that is taken too (a client may have picked it).
                    let base = format!("{id}-{suffix}");
                    let mut leg_id = base.clone();
                    let mut n = leg_seq;
                    while self.orders.seq_of(&leg_id).is_some() {
                        leg_id = format!("{base}-{n}");
                        n += 1;
                    }
                    let leg = OpenOrder {
                        seq: leg_seq,
                        id: leg_id,
                        symbol,
                        side,
                        kind,
                        quantity: qty,
                        filled: 0,
                        limit,
                        stop,
                        triggered: false,
                        tif: TimeInForce::Gtc,
                        active_from,
                        role,
                    };
                    self.orders.insert(leg);
                    legs[i] = Some(leg_seq);
                }
            }
        }
        if let (Some(sl), Some(tp)) = (legs[0], legs[1]) {
            if let Some(o) = self.orders.get_mut(sl) {
                o.role = Role::StopLoss { sibling: Some(tp) };
            }
            if let Some(o) = self.orders.get_mut(tp) {
                o.role = Role::TakeProfit { sibling: Some(sl) };
            }
        }
        if let Some(entry) = self.orders.get_mut(seq) {
            if let Role::Client { exits, .. } = &mut entry.role {
                *exits = (legs[0], legs[1]);
            }
        }
    }

    /// Expires every `day` order at the end of a trading day.
    pub(super) fn expire_day_orders(&mut self, ts: Timestamp, out: &mut Vec<Event>) -> bool {
        let expiring: Vec<u64> = self
            .orders
            .iter()
            .filter(|o| o.tif == TimeInForce::Day)
            .map(|o| o.seq)
            .collect();
        for seq in &expiring {
            self.close_order(*seq, OrderStatus::Expired, "DAY_EXPIRED", ts, out);
        }
        !expiring.is_empty()
    }

    /// Removes an order and reports why.
    fn close_order(
        &mut self,
        seq: u64,
        status: OrderStatus,
        reason: &str,
        ts: Timestamp,
        out: &mut Vec<Event>,
    ) {
        if let Some(o) = self.remove_order(seq) {
            out.push(Event::OrderUpdate(Box::new(OrderUpdate {
                order_id: o.id,
                status,
                reason: reason.to_string(),
                timestamp: ts,
            })));
        }
    }

    /// Removes an order from the book and unlinks bracket references to it.
    pub(super) fn remove_order(&mut self, seq: u64) -> Option<OpenOrder> {
        let o = self.orders.remove(seq)?;
        if let Role::StopLoss { sibling: Some(s) } | Role::TakeProfit { sibling: Some(s) } = o.role
        {
            if let Some(sib) = self.orders.get_mut(s) {
                match &mut sib.role {
                    Role::StopLoss { sibling } | Role::TakeProfit { sibling } => *sibling = None,
                    Role::Client { .. } => {}
                }
            }
        }
        Some(o)
    }
}
