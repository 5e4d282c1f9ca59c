//! Orders as clients send them, and as the engine keeps them while they are open.

use market_data::Price;
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

/// What an open order is for: its own entry/exit, or one leg of a bracket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A client order (it may carry a bracket to attach when it fills).
    Client {
        /// Bracket stop-loss to attach on fill.
        stop_loss: Option<Price>,
        /// Bracket take-profit to attach on fill.
        take_profit: Option<Price>,
        /// Sequence numbers of the exits already attached (stop-loss, take-profit).
        exits: (Option<u64>, Option<u64>),
    },
    /// The stop-loss leg of a bracket; `sibling` is the take-profit's sequence number.
    StopLoss {
        /// The other leg, if any.
        sibling: Option<u64>,
    },
    /// The take-profit leg of a bracket; `sibling` is the stop-loss's sequence number.
    TakeProfit {
        /// The other leg, if any.
        sibling: Option<u64>,
    },
}

/// A working order inside the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenOrder {
    /// Acceptance sequence number: orders are evaluated in this order.
    pub seq: u64,
    /// Client order id (bracket legs: `<entry id>-sl` / `<entry id>-tp`).
    pub id: String,
    /// Index of the symbol.
    pub symbol: u32,
    /// Buy or sell.
    pub side: Side,
    /// Order type.
    pub kind: OrderType,
    /// Total quantity; bracket legs grow as their entry fills.
    pub quantity: i64,
    /// Quantity filled so far.
    pub filled: i64,
    /// Limit price (limit, stop_limit, take-profit).
    pub limit: Option<Price>,
    /// Stop trigger (stop, stop_limit, stop-loss).
    pub stop: Option<Price>,
    /// A stop_limit whose stop has traded and now rests as a limit.
    pub triggered: bool,
    /// Time in force.
    pub tif: TimeInForce,
    /// First step index on which the order may fill.
    pub active_from: u64,
    /// Client order or bracket leg.
    pub role: Role,
}

impl OpenOrder {
    /// Quantity still to fill.
    pub fn remaining(&self) -> i64 {
        self.quantity - self.filled
    }
}
