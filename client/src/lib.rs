//! Rust SDK for the SimuTrador gateway (PROTOCOL.md), async on actix-rt.
//!
//! ```no_run
//! # async fn demo() -> simutrador_client::Result<()> {
//! use simutrador_client::{Client, SessionParams, SmaCross, Timeframe};
//!
//! let client = Client::new("http://127.0.0.1:8003");
//! let token = client.authenticate("stk_...").await?;
//! let mut conn = client.connect(&token).await?;
//! let params = SessionParams::new(
//!     vec!["GOOG".into()],
//!     simutrador_client::parse_time("2004-01-01").unwrap(),
//!     simutrador_client::parse_time("2014-01-01").unwrap(),
//!     "100000".parse().unwrap(),
//!     Timeframe::Daily,
//! );
//! let results = conn.run(params, &mut SmaCross::new(10, 20, 100)).await?;
//! println!("{} after {} trades", results.end.final_equity, results.trades.len());
//! # Ok(()) }
//! ```
//!
//! - [`Client`]: the token exchange and the WebSocket handshake.
//! - [`Connection`]: requests (sessions, orders, acks, control) with replies matched by
//!   `request_id`; [`SessionStream`]: one session's events in order.
//! - [`Connection::run`]: a lock-step run of a [`Strategy`] into [`Results`], with the
//!   round trips rebuilt by [`TradeBook`].
//!
//! Wire types are the `protocol` crate's, re-exported here.

mod client;
mod connection;
mod error;
mod runner;
pub mod strategy;
mod stream;
mod tcp;
pub mod trades;

pub use client::{now_unix, Client, Token};
pub use connection::{Connection, MAX_BUFFERED_FRAMES, MAX_UNANSWERED_BATCHES};
pub use error::{Error, Result};
pub use runner::{Progress, Results};
pub use strategy::{BuyAndHold, SmaCross, Strategy, TickContext};
pub use stream::{SessionEvent, SessionStream};
pub use trades::{Trade, TradeBook, TradeSide};

pub use model::{Amount, Price, Timeframe, Timestamp};
pub use protocol;
pub use protocol::{
    format_wire_time, parse_wire_time as parse_time, ErrorCode, OrderRequest, SessionParams, Side,
};
