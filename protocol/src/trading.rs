//! Orders, fills and the account on the wire (PROTOCOL.md section 3, "Orders").

use std::collections::BTreeMap;

use model::{Amount, Price, Timestamp};
use serde::{Deserialize, Serialize};

use crate::orders::Side;

/// `execution_report.order_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillStatus {
    /// Nothing left to fill.
    Filled,
    /// Part of the order is still working.
    PartiallyFilled,
}

/// `execution_report.reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// `execution_report` data: one fill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionReportData {
    /// The session.
    pub session_id: String,
    /// Unique within the session.
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
    /// Slippage applied, in basis points.
    pub slippage_bps: u32,
    /// Simulated time of the bar.
    #[serde(with = "crate::time::rfc3339")]
    pub timestamp: Timestamp,
    /// Filled or partially filled.
    pub order_status: FillStatus,
    /// Quantity still working.
    pub leaves_quantity: i64,
    /// Entry, exit, stop-loss or take-profit.
    pub reason: FillReason,
}

/// `order_update.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Working.
    Open,
    /// Cancelled by the client or as the other leg of a bracket.
    Cancelled,
    /// Refused when it came to fill.
    Rejected,
    /// Time in force ran out.
    Expired,
}

/// `order_update` data (extension): an order changed without a fill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdateData {
    /// The session.
    pub session_id: String,
    /// The order.
    pub order_id: String,
    /// New status.
    pub status: OrderStatus,
    /// Machine-readable reason, e.g. `DAY_EXPIRED`, `OCO`, `INSUFFICIENT_BUYING_POWER`.
    pub reason: String,
}

/// One position of an `account_snapshot`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionData {
    /// Symbol.
    pub symbol: String,
    /// Signed quantity (negative when short).
    pub quantity: i64,
    /// Average cost per unit.
    pub avg_cost: Price,
    /// Quantity times the last close.
    pub market_value: Amount,
    /// Market value minus cost basis.
    pub unrealized_pnl: Amount,
}

/// `account_snapshot` data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshotData {
    /// The session.
    pub session_id: String,
    /// Time of the bar, `null` before the first bar.
    #[serde(with = "crate::time::rfc3339_opt")]
    pub sim_time: Option<Timestamp>,
    /// Cash.
    pub cash: Amount,
    /// Cash plus market value of positions.
    pub equity: Amount,
    /// Open positions.
    pub positions: Vec<PositionData>,
    /// What new orders may still commit.
    pub buying_power: Amount,
    /// Equity change since the end of the previous trading day.
    pub day_pnl: Amount,
    /// Realized PnL net of commissions.
    pub realized_pnl: Amount,
    /// Working order ids.
    pub open_orders: Vec<String>,
}

/// `batch_ack` data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAckData {
    /// The batch.
    pub batch_id: String,
    /// Accepted order ids.
    pub accepted_orders: Vec<String>,
    /// Rejected order id -> reason code (e.g. `INSUFFICIENT_BUYING_POWER`).
    pub rejected_orders: BTreeMap<String, String>,
    /// Accepted order id -> estimated fill price, where one can be estimated.
    pub estimated_fills: BTreeMap<String, Price>,
}

/// `orders_cancelled` data (extension).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrdersCancelledData {
    /// Ids that were working and are now cancelled.
    pub cancelled: Vec<String>,
    /// Ids that were not working.
    pub not_found: Vec<String>,
}
