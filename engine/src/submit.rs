//! Where orders are accepted or rejected: validation, buying power, short rules, and
//! cancellation.

use std::collections::BTreeSet;

use model::{Amount, Price};
use serde::{Deserialize, Serialize};

pub use protocol::orders::ExecutionMode;

use super::order::{OpenOrder, OrderRequest, OrderType, Role, Side};
use super::Engine;

/// Longest accepted order id, in bytes.
pub const MAX_ORDER_ID_LEN: usize = 128;

/// Why an order was rejected (`batch_ack.rejected_orders` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    /// Empty or longer than 128 bytes.
    #[error("order_id must be 1 to 128 bytes")]
    InvalidOrderId,
    /// An open order (or an earlier order in the batch) has this id.
    #[error("order_id is already used by a working order")]
    DuplicateOrderId,
    /// Not one of the session's symbols.
    #[error("symbol is not part of this session")]
    UnknownSymbol,
    /// Quantity is not a positive integer.
    #[error("quantity must be a positive integer")]
    InvalidQuantity,
    /// A price the order type needs is missing.
    #[error("price or stop_price required by the order type is missing")]
    MissingPrice,
    /// A price is zero or negative.
    #[error("prices must be positive")]
    InvalidPrice,
    /// Buy brackets need stop_loss < take_profit, sell brackets the reverse.
    #[error("stop_loss and take_profit are on the wrong sides of each other")]
    InvalidBracket,
    /// Not enough cash for the order at its estimated price.
    #[error("not enough buying power")]
    InsufficientBuyingPower,
    /// Selling more than held while shorting is disabled.
    #[error("selling more than held requires allow_short")]
    ShortNotAllowed,
    /// The run is over.
    #[error("the simulation has ended")]
    SimulationEnded,
    /// Another order of an atomic batch was rejected.
    #[error("another order in this atomic batch was rejected")]
    BatchRejected,
    /// The session's working orders (and the bracket exits they reserve) are at the
    /// plan's cap.
    #[error("at most {limit} working orders per session on this plan")]
    MaxWorkingOrders {
        /// The cap (`max_working_orders`).
        limit: u32,
    },
}

impl RejectReason {
    /// The machine-readable code sent on the wire.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::InvalidOrderId => "INVALID_ORDER_ID",
            RejectReason::DuplicateOrderId => "DUPLICATE_ORDER_ID",
            RejectReason::UnknownSymbol => "UNKNOWN_SYMBOL",
            RejectReason::InvalidQuantity => "INVALID_QUANTITY",
            RejectReason::MissingPrice => "MISSING_PRICE",
            RejectReason::InvalidPrice => "INVALID_PRICE",
            RejectReason::InvalidBracket => "INVALID_BRACKET",
            RejectReason::InsufficientBuyingPower => "INSUFFICIENT_BUYING_POWER",
            RejectReason::ShortNotAllowed => "SHORT_NOT_ALLOWED",
            RejectReason::SimulationEnded => "SIMULATION_ENDED",
            RejectReason::BatchRejected => "BATCH_REJECTED",
            RejectReason::MaxWorkingOrders { .. } => "MAX_WORKING_ORDERS",
        }
    }

    /// The reason as `batch_ack.rejected_orders` carries it: the code, and for a cap the
    /// code followed by what the cap is (`MAX_WORKING_ORDERS: at most 100 ...`), so a
    /// client can match on the part before the colon.
    pub fn wire_reason(self) -> String {
        match self {
            RejectReason::MaxWorkingOrders { .. } => format!("{}: {self}", self.code()),
            _ => self.code().to_string(),
        }
    }
}

/// Outcome of [`Engine::submit`] (`batch_ack`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResult {
    /// Accepted order ids, in batch order.
    pub accepted_orders: Vec<String>,
    /// Rejected order ids with reasons, in batch order.
    pub rejected_orders: Vec<(String, RejectReason)>,
    /// Estimated fill price per accepted order, when one can be estimated.
    pub estimated_fills: Vec<(String, Price)>,
}

/// Outcome of [`Engine::cancel`] (`orders_cancelled`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelResult {
    /// Ids that were working and are now cancelled.
    pub cancelled: Vec<String>,
    /// Ids that were not working.
    pub not_found: Vec<String>,
}

/// Slots a new order takes: itself and each bracket exit it declares.
fn slots_of(req: &OrderRequest) -> usize {
    1 + usize::from(req.stop_loss.is_some()) + usize::from(req.take_profit.is_some())
}

/// A validated order with what it commits.
struct Checked {
    order: OpenOrder,
    estimate: Option<Price>,
    reserve: Amount,
    sell_qty: i64,
}

impl Engine {
    /// Accepts or rejects a batch. Accepted orders are evaluated from the next bar on,
    /// never against a bar already processed.
    pub fn submit(&mut self, orders: Vec<OrderRequest>, mode: ExecutionMode) -> BatchResult {
        let mut result = BatchResult::default();
        let mut checked = Vec::with_capacity(orders.len());
        let mut batch_ids = BTreeSet::new();
        let mut reserved = self.reserved_by_open_buys();
        let mut pending_sells = vec![0i64; self.config.symbols.len()];
        for o in self.orders.iter() {
            if o.side == Side::Sell && matches!(o.role, Role::Client { .. }) {
                pending_sells[o.symbol as usize] += o.remaining();
            }
        }
        let cap = self.config.max_working_orders;
        let mut slots = if cap.is_some() {
            self.working_slots()
        } else {
            0
        };
        for req in orders {
            let checked_one = self
                .check(&req, &batch_ids, reserved, &pending_sells)
                .and_then(|c| match cap {
                    Some(limit) => {
                        let needed = slots_of(&req);
                        if slots + needed > limit as usize {
                            Err(RejectReason::MaxWorkingOrders { limit })
                        } else {
                            slots += needed;
                            Ok(c)
                        }
                    }
                    None => Ok(c),
                });
            match checked_one {
                Ok(c) => {
                    batch_ids.insert(req.order_id.clone());
                    reserved += c.reserve;
                    pending_sells[c.order.symbol as usize] += c.sell_qty;
                    checked.push(Ok(c));
                }
                Err(reason) => checked.push(Err((req.order_id, reason))),
            }
        }
        let all_ok = checked.iter().all(|c| c.is_ok());
        for c in checked {
            match c {
                Ok(c) if all_ok || mode == ExecutionMode::BestEffort => {
                    let mut order = c.order;
                    order.seq = self.next_seq;
                    self.next_seq += 1;
                    result.accepted_orders.push(order.id.clone());
                    if let Some(p) = c.estimate {
                        result.estimated_fills.push((order.id.clone(), p));
                    }
                    self.orders.insert(order);
                }
                Ok(c) => result
                    .rejected_orders
                    .push((c.order.id, RejectReason::BatchRejected)),
                Err(e) => result.rejected_orders.push(e),
            }
        }
        result
    }

    /// Working-order slots in use: one per order in the book, plus one per bracket exit
    /// a working entry declares that is not in the book (yet, or any more while the
    /// entry can still fill). Exits attached on a fill take the slot their entry
    /// reserved, so the book never outgrows `max_working_orders`.
    pub fn working_slots(&self) -> usize {
        let mut slots = self.orders.len();
        for o in self.orders.iter() {
            if let Role::Client {
                stop_loss,
                take_profit,
                exits,
            } = &o.role
            {
                let in_book = |leg: Option<u64>| leg.is_some_and(|s| self.orders.contains(s));
                slots += usize::from(stop_loss.is_some() && !in_book(exits.0));
                slots += usize::from(take_profit.is_some() && !in_book(exits.1));
            }
        }
        slots
    }

    /// Cancels working orders by id. Cancelling a bracket entry leaves the exits of
    /// any quantity it already filled in place.
    pub fn cancel(&mut self, order_ids: &[String]) -> CancelResult {
        let mut result = CancelResult::default();
        for id in order_ids {
            match self.orders.seq_of(id) {
                Some(seq) if !self.finished => {
                    self.remove_order(seq);
                    result.cancelled.push(id.clone());
                }
                _ => result.not_found.push(id.clone()),
            }
        }
        result
    }

    fn check(
        &self,
        req: &OrderRequest,
        batch_ids: &BTreeSet<String>,
        reserved: Amount,
        pending_sells: &[i64],
    ) -> Result<Checked, RejectReason> {
        use RejectReason::*;
        if self.finished {
            return Err(SimulationEnded);
        }
        if req.order_id.is_empty() || req.order_id.len() > MAX_ORDER_ID_LEN {
            return Err(InvalidOrderId);
        }
        if self.orders.seq_of(&req.order_id).is_some() || batch_ids.contains(&req.order_id) {
            return Err(DuplicateOrderId);
        }
        let symbol = self.symbol_index(&req.symbol).ok_or(UnknownSymbol)?;
        if req.quantity <= 0 {
            return Err(InvalidQuantity);
        }
        let (limit, stop) = match req.order_type {
            OrderType::Market => (None, None),
            OrderType::Limit => (Some(req.price.ok_or(MissingPrice)?), None),
            OrderType::Stop => (
                None,
                Some(req.stop_price.or(req.price).ok_or(MissingPrice)?),
            ),
            OrderType::StopLimit => (
                Some(req.price.ok_or(MissingPrice)?),
                Some(req.stop_price.ok_or(MissingPrice)?),
            ),
        };
        let prices = [limit, stop, req.stop_loss, req.take_profit];
        if prices.iter().flatten().any(|p| p.raw() <= 0) {
            return Err(InvalidPrice);
        }
        if let (Some(sl), Some(tp)) = (req.stop_loss, req.take_profit) {
            let ordered = match req.side {
                Side::Buy => sl < tp,
                Side::Sell => sl > tp,
            };
            if !ordered {
                return Err(InvalidBracket);
            }
        }
        let order = OpenOrder {
            seq: 0,
            id: req.order_id.clone(),
            symbol,
            side: req.side,
            kind: req.order_type,
            quantity: req.quantity,
            filled: 0,
            limit,
            stop,
            triggered: false,
            tif: req.time_in_force,
            active_from: self.steps + 1,
            role: Role::Client {
                stop_loss: req.stop_loss,
                take_profit: req.take_profit,
                exits: (None, None),
            },
        };
        let estimate = self.estimate_price(&order);
        let position = self.portfolio.positions[symbol as usize].quantity;
        let mut reserve = Amount::ZERO;
        let mut sell_qty = 0;
        match req.side {
            Side::Buy => {
                let opening = req.quantity - req.quantity.min((-position).max(0));
                if opening > 0 {
                    if let Some(p) = estimate {
                        reserve = p.times(opening) + self.commission(opening);
                        let available =
                            self.portfolio.cash - self.portfolio.short_liability() - reserved;
                        if reserve > available {
                            return Err(InsufficientBuyingPower);
                        }
                    }
                }
            }
            Side::Sell => {
                sell_qty = req.quantity;
                let held = (position - pending_sells[symbol as usize]).max(0);
                let short = req.quantity - req.quantity.min(held);
                if short > 0 {
                    if !self.config.allow_short {
                        return Err(ShortNotAllowed);
                    }
                    // A short must be fully collateralised by uncommitted cash.
                    if let Some(p) = estimate {
                        let available =
                            self.portfolio.cash - self.portfolio.short_liability() - reserved;
                        if p.times(short) + self.commission(short) > available {
                            return Err(InsufficientBuyingPower);
                        }
                    }
                }
            }
        }
        Ok(Checked {
            order,
            estimate,
            reserve,
            sell_qty,
        })
    }

    /// Expected fill price: the limit for limit-priced orders, the stop (with slippage)
    /// for stops, the last close with slippage for market orders.
    fn estimate_price(&self, o: &OpenOrder) -> Option<Price> {
        let up = o.side == Side::Buy;
        let bps = self.config.slippage_bps;
        match o.kind {
            OrderType::Limit | OrderType::StopLimit => o.limit,
            OrderType::Stop => o.stop.map(|s| s.slipped(bps, up)),
            OrderType::Market => {
                let last = self.portfolio.positions[o.symbol as usize].last;
                (last.raw() > 0).then(|| last.slipped(bps, up))
            }
        }
    }

    /// Commission of one fill of `quantity`.
    pub(super) fn commission(&self, quantity: i64) -> Amount {
        self.config
            .commission_per_share
            .times(quantity)
            .max(self.config.min_commission)
    }

    /// Cash committed by working client buy orders that open or increase a long.
    pub(super) fn reserved_by_open_buys(&self) -> Amount {
        let mut total = Amount::ZERO;
        for o in self.orders.iter() {
            if o.side != Side::Buy || !matches!(o.role, Role::Client { .. }) {
                continue;
            }
            let short = (-self.portfolio.positions[o.symbol as usize].quantity).max(0);
            let opening = o.remaining() - o.remaining().min(short);
            if opening > 0 {
                if let Some(p) = self.estimate_price(o) {
                    total += p.times(opening) + self.commission(opening);
                }
            }
        }
        total
    }
}
