//! Orders as the engine keeps them while they are open; the client-facing order types
//! come from the protocol crate.

use model::Price;
pub use protocol::orders::{OrderRequest, OrderType, Side, TimeInForce};
use serde::{Deserialize, Serialize};

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
