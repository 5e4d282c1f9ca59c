//! What the engine emits. Shapes follow PROTOCOL.md; the gateway adds `session_id`.

use model::{Amount, Price, Timestamp};
use serde::{Deserialize, Serialize};

use super::order::Side;

/// Everything a bar causes, in the order it must reach the client: execution reports
/// and order updates as they happen, then the account snapshot, then the tick. The
/// large, rare variants are boxed so the per-bar tick stays a small move.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A fill.
    Execution(Box<ExecutionReport>),
    /// An order left the book without (completely) filling, or was rejected on fill.
    OrderUpdate(Box<OrderUpdate>),
    /// The account after the bar.
    Account(Box<AccountSnapshot>),
    /// The bar itself, always last.
    Tick(TickEvent),
}

/// Status of an order after a fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillStatus {
    /// Nothing left to fill.
    Filled,
    /// Part of the order is still working.
    PartiallyFilled,
}

/// Why a fill happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillReason {
    /// Opened or increased a position.
    Entry,
    /// Reduced or closed a position.
    Exit,
    /// Bracket stop-loss leg.
    StopLoss,
    /// Bracket take-profit leg.
    TakeProfit,
}

/// `execution_report` on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionReport {
    /// Unique within the session: `E1`, `E2`, ...
    pub execution_id: String,
    /// The order that filled.
    pub order_id: String,
    /// Symbol.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Quantity of this fill.
    pub executed_quantity: i64,
    /// Price paid or received, slippage included.
    pub executed_price: Price,
    /// Commission of this fill.
    pub commission: Amount,
    /// Slippage applied in basis points (0 for limit-priced fills).
    pub slippage_bps: u32,
    /// Simulated time of the bar.
    pub timestamp: Timestamp,
    /// Filled or partially filled.
    pub order_status: FillStatus,
    /// Quantity still working.
    pub leaves_quantity: i64,
    /// Entry, exit, stop-loss or take-profit.
    pub reason: FillReason,
}

/// Order statuses carried by `order_update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Working.
    Open,
    /// Cancelled (by the client, or as the other leg of a bracket).
    Cancelled,
    /// Refused when it came to fill (e.g. not enough cash at that price).
    Rejected,
    /// Time in force ran out (`day` at day end, `ioc` after its bar).
    Expired,
}

/// `order_update` on the wire (extension).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate {
    /// The order.
    pub order_id: String,
    /// New status.
    pub status: OrderStatus,
    /// Machine-readable reason, e.g. `DAY_EXPIRED`, `OCO`, `INSUFFICIENT_BUYING_POWER`.
    pub reason: String,
    /// Simulated time of the bar.
    pub timestamp: Timestamp,
}

/// One position in an account snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionView {
    /// Symbol.
    pub symbol: String,
    /// Signed quantity.
    pub quantity: i64,
    /// Average cost per unit.
    pub avg_cost: Price,
    /// Quantity x last close.
    pub market_value: Amount,
    /// Market value minus cost basis.
    pub unrealized_pnl: Amount,
}

/// `account_snapshot` on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    /// Simulated time of the bar (or of the last bar, on request).
    pub sim_time: Option<Timestamp>,
    /// Cash.
    pub cash: Amount,
    /// Cash plus market value of positions.
    pub equity: Amount,
    /// Open positions, in symbol order.
    pub positions: Vec<PositionView>,
    /// What new orders may still commit (see README "Buying power").
    pub buying_power: Amount,
    /// Equity change since the end of the previous trading day.
    pub day_pnl: Amount,
    /// Realized PnL net of commissions.
    pub realized_pnl: Amount,
    /// Working order ids in acceptance order.
    pub open_orders: Vec<String>,
}

/// One processed bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickEvent {
    /// 1 for the first bar, +1 per bar.
    pub sequence_id: u64,
    /// Bar time.
    pub sim_time: Timestamp,
    /// Last bar of a trading day.
    pub is_eod: bool,
}
