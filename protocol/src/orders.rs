//! The order vocabulary shared by clients, the gateway and the engine
//! (`order_batch.orders[]` and `execution_mode` in PROTOCOL.md).

use model::Price;
use serde::{Deserialize, Serialize};

/// Buy or sell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    /// +1 for buys, -1 for sells.
    pub fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }

    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// Order type (PROTOCOL.md "Fill model").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// Fills at the next bar's open, plus slippage.
    Market,
    /// Fills at the limit price or better.
    Limit,
    /// Becomes a market order once the stop price trades, plus slippage.
    Stop,
    /// Becomes a limit order once the stop price trades.
    StopLimit,
}

/// How long an order stays working.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Until the end of the trading day of submission.
    #[default]
    Day,
    /// Until filled or cancelled.
    Gtc,
    /// Evaluated on exactly one bar of its symbol, the rest is cancelled.
    Ioc,
}

/// An order as a client submits it (`order_batch.orders[]` on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Client-chosen id, unique among the session's open orders.
    pub order_id: String,
    /// Symbol, one of the session's symbols.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Order type.
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Quantity in whole units, > 0.
    pub quantity: i64,
    /// Limit price (limit, stop_limit) or, for stop orders, the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// Stop trigger for stop and stop_limit orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<Price>,
    /// Bracket stop-loss, managed once the entry fills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<Price>,
    /// Bracket take-profit, managed once the entry fills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<Price>,
    /// Time in force (default `day`).
    #[serde(default)]
    pub time_in_force: TimeInForce,
}

impl OrderRequest {
    /// A market order with `day` time in force.
    pub fn market(
        order_id: impl Into<String>,
        symbol: impl Into<String>,
        side: Side,
        quantity: i64,
    ) -> Self {
        OrderRequest {
            order_id: order_id.into(),
            symbol: symbol.into(),
            side,
            order_type: OrderType::Market,
            quantity,
            price: None,
            stop_price: None,
            stop_loss: None,
            take_profit: None,
            time_in_force: TimeInForce::Day,
        }
    }

    /// A limit order with `day` time in force.
    pub fn limit(
        order_id: impl Into<String>,
        symbol: impl Into<String>,
        side: Side,
        quantity: i64,
        price: Price,
    ) -> Self {
        OrderRequest {
            order_type: OrderType::Limit,
            price: Some(price),
            ..Self::market(order_id, symbol, side, quantity)
        }
    }

    /// A stop order with `day` time in force.
    pub fn stop(
        order_id: impl Into<String>,
        symbol: impl Into<String>,
        side: Side,
        quantity: i64,
        stop: Price,
    ) -> Self {
        OrderRequest {
            order_type: OrderType::Stop,
            stop_price: Some(stop),
            ..Self::market(order_id, symbol, side, quantity)
        }
    }

    /// A stop-limit order with `day` time in force.
    pub fn stop_limit(
        order_id: impl Into<String>,
        symbol: impl Into<String>,
        side: Side,
        quantity: i64,
        stop: Price,
        limit: Price,
    ) -> Self {
        OrderRequest {
            order_type: OrderType::StopLimit,
            stop_price: Some(stop),
            price: Some(limit),
            ..Self::market(order_id, symbol, side, quantity)
        }
    }

    /// The same order with another time in force.
    pub fn with_tif(mut self, tif: TimeInForce) -> Self {
        self.time_in_force = tif;
        self
    }

    /// The same order with a bracket attached.
    pub fn with_bracket(mut self, stop_loss: Option<Price>, take_profit: Option<Price>) -> Self {
        self.stop_loss = stop_loss;
        self.take_profit = take_profit;
        self
    }
}

/// `order_batch.execution_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionMode {
    /// One rejection rejects the whole batch.
    Atomic,
    /// Valid orders are accepted, invalid ones rejected individually.
    #[default]
    BestEffort,
}
