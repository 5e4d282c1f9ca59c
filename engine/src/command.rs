//! Commands: what a client does to the engine between bars, as one type with one entry
//! point, [`Engine::apply`]. The session actor applies commands as clients send them,
//! the session store journals them and replays them through [`Engine::apply_due`], and
//! the in-process runner ([`crate::strategy`]) submits a strategy's orders with them.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::order::OrderRequest;
use crate::submit::{BatchResult, CancelResult, ExecutionMode};
use crate::Engine;

/// A client command that changes the engine.
///
/// Session journals store commands (as JSON, `{"kind": "submit", ...}`), so the
/// serialized form is part of the stored format: journals written before a change must
/// still replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// `order_batch`.
    Submit {
        /// Orders in batch order.
        orders: Vec<OrderRequest>,
        /// Atomic or best effort.
        mode: ExecutionMode,
    },
    /// `cancel_orders`.
    Cancel {
        /// Order ids.
        order_ids: Vec<String>,
    },
}

/// What the engine answered to a [`Command`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The answer to [`Command::Submit`].
    Submitted(BatchResult),
    /// The answer to [`Command::Cancel`].
    Cancelled(CancelResult),
}

/// A command waiting for its tick (a journal entry, say): it is applied once the engine
/// has processed the tick it was accepted after.
pub trait Scheduled {
    /// Sequence id of the tick the command was accepted after.
    fn after(&self) -> u64;
    /// The command.
    fn into_command(self) -> Command;
}

impl Engine {
    /// Applies one command between bars.
    pub fn apply(&mut self, command: Command) -> Outcome {
        match command {
            Command::Submit { orders, mode } => Outcome::Submitted(self.submit(orders, mode)),
            Command::Cancel { order_ids } => Outcome::Cancelled(self.cancel(&order_ids)),
        }
    }

    /// Applies, in order, the commands at the front of `pending` that were accepted
    /// after the current tick or earlier, and removes them; the answers are dropped
    /// (the client had them when the commands were first applied).
    pub fn apply_due<S: Scheduled>(&mut self, pending: &mut VecDeque<S>) {
        while pending
            .front()
            .is_some_and(|s| s.after() <= self.sequence_id())
        {
            if let Some(s) = pending.pop_front() {
                self.apply(s.into_command());
            }
        }
    }
}
