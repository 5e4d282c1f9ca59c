//! Commands: what a client does to the engine between bars, as one type with one entry
//! point, [`Engine::apply`]. The session actor applies commands as clients send them,
//! the session store journals them and replays them through [`Engine::apply_due`], and
//! the in-process runner ([`crate::strategy`]) submits a strategy's orders with them.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::order::OrderRequest;
use crate::submit::{BatchResult, CancelResult, ExecutionMode};
use crate::Engine;

/// `order_batch`: orders to check and accept, answered with a [`BatchResult`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitOrders {
    /// Orders in batch order.
    pub orders: Vec<OrderRequest>,
    /// Atomic or best effort.
    pub mode: ExecutionMode,
}

/// `cancel_orders`: working orders to cancel, answered with a [`CancelResult`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelOrders {
    /// Order ids.
    pub order_ids: Vec<String>,
}

/// A client command that changes the engine, as journaled.
///
/// Session journals store commands (as JSON, `{"kind": "submit", "orders": ..., "mode":
/// ...}`: the tag beside the command's own fields), so the serialized form is part of
/// the stored format: journals written before a change must still replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// `order_batch`.
    Submit(SubmitOrders),
    /// `cancel_orders`.
    Cancel(CancelOrders),
}

impl From<SubmitOrders> for Command {
    fn from(c: SubmitOrders) -> Self {
        Command::Submit(c)
    }
}

impl From<CancelOrders> for Command {
    fn from(c: CancelOrders) -> Self {
        Command::Cancel(c)
    }
}

/// What the engine answered to a [`Command`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The answer to [`Command::Submit`].
    Submitted(BatchResult),
    /// The answer to [`Command::Cancel`].
    Cancelled(CancelResult),
}

/// A command the engine applies, and the type of its answer: a known command gets its
/// own answer type, a journaled [`Command`] an [`Outcome`].
pub trait Apply {
    /// What the engine answers.
    type Answer;
    /// Applies the command to `engine`.
    fn apply_to(self, engine: &mut Engine) -> Self::Answer;
}

impl Apply for SubmitOrders {
    type Answer = BatchResult;
    fn apply_to(self, engine: &mut Engine) -> BatchResult {
        engine.submit(self.orders, self.mode)
    }
}

impl Apply for CancelOrders {
    type Answer = CancelResult;
    fn apply_to(self, engine: &mut Engine) -> CancelResult {
        engine.cancel(&self.order_ids)
    }
}

impl Apply for Command {
    type Answer = Outcome;
    fn apply_to(self, engine: &mut Engine) -> Outcome {
        match self {
            Command::Submit(c) => Outcome::Submitted(c.apply_to(engine)),
            Command::Cancel(c) => Outcome::Cancelled(c.apply_to(engine)),
        }
    }
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
    pub fn apply<C: Apply>(&mut self, command: C) -> C::Answer {
        command.apply_to(self)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Journals in Redis hold these texts: they must keep reading back.
    #[test]
    fn the_journaled_form_is_the_stored_one() {
        let cancel = Command::from(CancelOrders {
            order_ids: vec!["a".into(), "zz".into()],
        });
        let text = r#"{"kind":"cancel","order_ids":["a","zz"]}"#;
        assert_eq!(serde_json::to_string(&cancel).unwrap(), text);
        assert_eq!(serde_json::from_str::<Command>(text).unwrap(), cancel);
        let submit = Command::from(SubmitOrders {
            orders: Vec::new(),
            mode: ExecutionMode::BestEffort,
        });
        let text = r#"{"kind":"submit","orders":[],"mode":"best_effort"}"#;
        assert_eq!(serde_json::to_string(&submit).unwrap(), text);
        assert_eq!(serde_json::from_str::<Command>(text).unwrap(), submit);
    }
}
