//! The SimuTrador wire contract (PROTOCOL.md), shared by the gateway and the client.

pub mod orders;

pub use orders::{ExecutionMode, OrderRequest, OrderType, Side, TimeInForce};
