//! Messages a connection sends to a session actor, and their replies.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use actix::fut::{ready, wrap_future};
use actix::{
    ActorContext, ActorFutureExt, AtomicResponse, Context, Handler, Message, MessageResult,
};
use model::{Slice, Timestamp};
use protocol::orders::{ExecutionMode, OrderRequest};
use tokio::sync::{mpsc, oneshot};

use super::{BatchAnswer, Pacing, SessionActor, SessionOutput, SessionState};
use crate::engine::{
    AccountSnapshot, BatchResult, CancelOrders, CancelResult, Command, EndReason, SubmitOrders,
};
use crate::store::Write;

/// Why a session refused a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The request does not fit the session's state (e.g. start twice).
    #[error("{0}")]
    InvalidState(String),
    /// The session cannot be resumed from where the client is.
    #[error("{0}")]
    ResumeFailed(String),
}

/// A session's state as reported by `get_simulation_state`.
#[derive(Clone, Debug, PartialEq)]
pub struct StateView {
    /// Session id.
    pub session_id: String,
    /// Lifecycle state.
    pub state: SessionState,
    /// Last tick produced.
    pub sequence_id: u64,
    /// Time of the last processed bar.
    pub sim_time: Option<Timestamp>,
    /// Share of the bars processed, in percent.
    pub progress_pct: f64,
    /// Number of bars in the run.
    pub ticks_total: u64,
    /// Stored-state epoch (PROTOCOL.md section 4).
    pub epoch: u64,
}

/// What a connection learns when it attaches.
#[derive(Clone, Debug)]
pub struct AttachInfo {
    /// The slice ticks refer to.
    pub slice: Arc<Slice>,
    /// State at attach time.
    pub view: StateView,
    /// This attachment, to name in [`Detach`].
    pub attachment: u64,
}

/// Connects a connection's bounded output channel; with `resume_from`, re-sends the
/// outputs after that tick.
#[derive(Message)]
#[rtype(result = "Result<AttachInfo, SessionError>")]
pub struct Attach {
    /// Where outputs go.
    pub sink: mpsc::Sender<SessionOutput>,
    /// `resume_session.last_sequence_id`.
    pub resume_from: Option<u64>,
    /// `resume_session.epoch`: refused unless it is the session's epoch.
    pub epoch: Option<u64>,
}

/// The connection went away: stop producing, keep state for the grace period. Ignored
/// unless `attachment` is the current one ([`AttachInfo::attachment`]): a connection
/// that closes after another one took the session over must not detach that one.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Detach {
    /// The attachment being ended.
    pub attachment: u64,
}

/// Starts the run: history first, then ticks paced as asked.
#[derive(Message)]
#[rtype(result = "Result<StateView, SessionError>")]
pub struct Start {
    /// How ticks are paced.
    pub pacing: Pacing,
}

/// `tick_ack`: releases lock-step credit up to `sequence_id`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ack {
    /// Highest tick the client has processed.
    pub sequence_id: u64,
}

/// `order_batch`. Sent without waiting for an answer (the answer comes through
/// `reply`), so that a connection can pass the `tick_ack` that follows straight on: the
/// session then takes both in one turn and the `batch_ack` leaves in one write with what
/// the next bar causes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Submit {
    /// Orders in batch order.
    pub orders: Vec<OrderRequest>,
    /// Atomic or best effort.
    pub mode: ExecutionMode,
    /// Put the answer on the output stream when this attachment is still the current
    /// one (it then reaches the client ahead of every fill it leads to).
    pub on_stream: Option<StreamAck>,
    /// Where the answer goes; dropped unanswered only if the session stopped.
    pub reply: oneshot::Sender<Submitted>,
}

/// See [`Submit::on_stream`].
#[derive(Clone, Debug)]
pub struct StreamAck {
    /// The attachment that sent the batch ([`AttachInfo::attachment`]).
    pub attachment: u64,
    /// The request's `request_id`, echoed.
    pub request_id: Option<String>,
    /// The batch's id.
    pub batch_id: String,
}

/// The answer to a [`Submit`].
#[derive(Debug, PartialEq)]
pub enum Submitted {
    /// Emitted as [`SessionOutput::BatchAck`].
    OnStream,
    /// For the caller to pass on (no connection of the batch's attachment to send it to).
    Here(BatchResult),
}

/// `cancel_orders`.
#[derive(Message)]
#[rtype(result = "CancelResult")]
pub struct Cancel {
    /// Order ids.
    pub order_ids: Vec<String>,
}

/// `pause_simulation`.
#[derive(Message)]
#[rtype(result = "Result<StateView, SessionError>")]
pub struct Pause;

/// `resume_simulation`.
#[derive(Message)]
#[rtype(result = "Result<StateView, SessionError>")]
pub struct Resume;

/// `stop_simulation`: ends the run with reason `stopped`.
#[derive(Message)]
#[rtype(result = "StateView")]
pub struct Stop;

/// `get_simulation_state`.
#[derive(Message)]
#[rtype(result = "StateView")]
pub struct GetState;

/// `get_account`.
#[derive(Message)]
#[rtype(result = "AccountSnapshot")]
pub struct GetAccount;

/// The node is shutting down: store the session, give up its lease (so another node
/// can take it over at once), and stop. Answers when the state is stored.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// `close_session`: drops the session now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close;

impl Handler<Attach> for SessionActor {
    type Result = Result<AttachInfo, SessionError>;
    fn handle(&mut self, msg: Attach, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(theirs) = msg.epoch.filter(|e| *e != self.durable.epoch) {
            return Err(SessionError::ResumeFailed(format!(
                "stored state was lost and re-established: the session is at epoch {} \
                 (you have {theirs}), so its history may differ from what you saw",
                self.durable.epoch
            )));
        }
        let info = self.attach(msg.sink, msg.resume_from)?;
        self.pump(ctx);
        Ok(info)
    }
}

impl Handler<Detach> for SessionActor {
    type Result = ();
    fn handle(&mut self, msg: Detach, ctx: &mut Context<Self>) {
        if self.link.attachment == Some(msg.attachment) && !self.link.detached {
            self.detach(ctx);
        }
    }
}

impl Handler<Start> for SessionActor {
    type Result = Result<StateView, SessionError>;
    fn handle(&mut self, msg: Start, ctx: &mut Context<Self>) -> Self::Result {
        if self.state != SessionState::Ready {
            return Err(SessionError::InvalidState(format!(
                "session is {:?}, not ready",
                self.state
            )));
        }
        self.pacing = match msg.pacing {
            Pacing::LockStep { window } => Pacing::LockStep {
                window: window.max(1),
            },
            p => p,
        };
        self.state = SessionState::Running;
        let meta = self.meta();
        self.store_write(Write::Meta(meta), ctx);
        self.emit(SessionOutput::History);
        self.pump(ctx);
        Ok(self.view())
    }
}

impl Handler<Ack> for SessionActor {
    type Result = ();
    fn handle(&mut self, msg: Ack, ctx: &mut Context<Self>) {
        // Acks beyond what was produced cannot release credit for ticks not yet sent.
        let ack = msg.sequence_id.min(self.engine.sequence_id());
        if ack > self.acked {
            self.acked = ack;
            self.acknowledged(ack);
            self.pump(ctx);
        }
    }
}

// Order batches and cancels are journaled before they are answered, and the session
// handles nothing else meanwhile, so an acknowledged input is durable and no tick is
// produced between accepting it and acknowledging it.
impl Handler<Submit> for SessionActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) -> Self::Result {
        let Submit {
            orders,
            mode,
            on_stream,
            reply,
        } = msg;
        let command = SubmitOrders { orders, mode };
        let input = Command::from(command.clone());
        let engine = &mut self.engine;
        let result = match catch_unwind(AssertUnwindSafe(|| engine.apply(command))) {
            Ok(result) => result,
            Err(_) => {
                self.fail("engine failure while accepting orders", ctx);
                let _ = reply.send(Submitted::Here(BatchResult::default()));
                return AtomicResponse::new(Box::pin(ready(())));
            }
        };
        if let Some(m) = &self.reporting.metrics {
            m.orders(result.accepted_orders.len(), result.rejected_orders.len());
        }
        let stored = wrap_future::<_, Self>(self.journal(input));
        AtomicResponse::new(Box::pin(stored.map(move |res, act, ctx| {
            act.store_result(res, ctx);
            let answer = match on_stream {
                Some(tag) if act.attached_as(tag.attachment) => {
                    act.queue(SessionOutput::BatchAck(Box::new(BatchAnswer {
                        request_id: tag.request_id,
                        batch_id: tag.batch_id,
                        result,
                    })));
                    Submitted::OnStream
                }
                _ => Submitted::Here(result),
            };
            let _ = reply.send(answer);
        })))
    }
}

impl Handler<Cancel> for SessionActor {
    type Result = AtomicResponse<Self, CancelResult>;
    fn handle(&mut self, msg: Cancel, _ctx: &mut Context<Self>) -> Self::Result {
        let command = CancelOrders {
            order_ids: msg.order_ids,
        };
        let input = Command::from(command.clone());
        let result = self.engine.apply(command);
        let stored = wrap_future::<_, Self>(self.journal(input));
        AtomicResponse::new(Box::pin(stored.map(move |res, act, ctx| {
            act.store_result(res, ctx);
            result
        })))
    }
}

impl Handler<Pause> for SessionActor {
    type Result = Result<StateView, SessionError>;
    fn handle(&mut self, _: Pause, ctx: &mut Context<Self>) -> Self::Result {
        match self.state {
            SessionState::Running | SessionState::Paused => {
                self.state = SessionState::Paused;
                self.persist(ctx);
                Ok(self.view())
            }
            s => Err(SessionError::InvalidState(format!(
                "cannot pause a session that is {s:?}"
            ))),
        }
    }
}

impl Handler<Resume> for SessionActor {
    type Result = Result<StateView, SessionError>;
    fn handle(&mut self, _: Resume, ctx: &mut Context<Self>) -> Self::Result {
        match self.state {
            SessionState::Paused | SessionState::Running => {
                self.state = SessionState::Running;
                let meta = self.meta();
                self.store_write(Write::Meta(meta), ctx);
                self.pump(ctx);
                Ok(self.view())
            }
            s => Err(SessionError::InvalidState(format!(
                "cannot resume a session that is {s:?}"
            ))),
        }
    }
}

impl Handler<Stop> for SessionActor {
    type Result = MessageResult<Stop>;
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) -> Self::Result {
        self.finish(EndReason::Stopped, ctx);
        MessageResult(self.view())
    }
}

impl Handler<GetState> for SessionActor {
    type Result = MessageResult<GetState>;
    fn handle(&mut self, _: GetState, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.view())
    }
}

impl Handler<GetAccount> for SessionActor {
    type Result = MessageResult<GetAccount>;
    fn handle(&mut self, _: GetAccount, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.engine.account_snapshot())
    }
}

impl Handler<Close> for SessionActor {
    type Result = ();
    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) {
        if let Some(lease) = self.durable.lease.take() {
            let store = Arc::clone(&self.durable.store);
            actix::spawn(async move {
                let _ = store.delete(&lease).await;
            });
        }
        ctx.stop();
    }
}

impl Handler<Shutdown> for SessionActor {
    type Result = AtomicResponse<Self, ()>;
    fn handle(&mut self, _: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        self.delivery.sink = None;
        self.delivery.backlog.clear();
        let writes = self.final_writes();
        let lease = self.durable.lease.take();
        let store = Arc::clone(&self.durable.store);
        let ttl = self.config.store_ttl;
        let id = self.config.session_id.clone();
        let stored = async move {
            let Some(lease) = lease else {
                return;
            };
            for write in writes {
                if let Err(e) = store.write(&lease, write, ttl).await {
                    tracing::warn!(session_id = %id, error = %e, "session state not stored at shutdown");
                    return;
                }
            }
            let _ = store.release(&lease).await;
        };
        AtomicResponse::new(Box::pin(
            wrap_future::<_, Self>(stored).map(|(), _act, ctx: &mut Context<Self>| ctx.stop()),
        ))
    }
}
