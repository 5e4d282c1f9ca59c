//! The session actor: owns one [`Engine`] and the slice it runs on, outlives any single
//! connection, and paces the run (lock-step credit window, streaming, or a fixed tick
//! interval).
//!
//! Output goes to the attached connection through a bounded channel: when the channel
//! is full the session stops stepping until there is room, so a slow client pauses its
//! own session and nothing buffers without bound. Without a connection the session
//! waits; after the grace period it stops.
//!
//! With an [`Ownership`] the session keeps its state in the [`SessionStore`] (see the
//! store module for the model): inputs are journaled before they are acknowledged,
//! checkpoints are written every `checkpoint_ticks` ticks or `checkpoint_interval`
//! (whichever comes first) at a tick the client is known to have, the lease is renewed
//! in the background, and a session whose lease was taken over by another node stops.

mod delivery;
mod durable;
mod link;
mod messages;
mod metrics;
mod reporting;

use delivery::Delivery;
use durable::Durable;
use link::Link;
use reporting::Reporting;

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::fut::wrap_future;
use actix::{
    Actor, ActorContext, ActorFuture, ActorFutureExt, AsyncContext, Context, Message, Recipient,
    SpawnHandle,
};
use model::Slice;
use protocol::ErrorCode;
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use crate::engine::{BatchResult, Command, EndReason, Engine, Event, SimulationResults};
use crate::store::{
    Checkpoint, JournalEntry, Lease, SessionMeta, SessionStore, StoreError, StoreTtl, StoredPacing,
    StoredState, Write,
};

pub use messages::*;
pub use metrics::SessionMetrics;

/// How ticks are paced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// At most `window` ticks unacknowledged (`flow_control: true`).
    LockStep {
        /// Credit window (`max_pending_ticks`), at least 1.
        window: u32,
    },
    /// As fast as the connection drains, or one tick per `interval_ms` when non-zero.
    Stream {
        /// Milliseconds between ticks; 0 for as fast as possible.
        interval_ms: u64,
    },
}

/// Lifecycle of a session (`simulation_state.state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Created, not started.
    Ready,
    /// Producing ticks.
    Running,
    /// Paused by the client.
    Paused,
    /// Finished; results were emitted.
    Completed,
    /// Failed; `session_error` was emitted.
    Error,
}

/// What a session sends to its connection. Ticks refer to a step of the slice the
/// connection received when it attached.
#[derive(Clone, Debug)]
pub enum SessionOutput {
    /// Warm-up history, once, before the first tick.
    History,
    /// An engine event (fills, order updates, account snapshots, ticks).
    Engine(Event),
    /// The answer to an `order_batch` (see [`Submit`]); a reply, not part of the
    /// session's history, so never re-sent on resume. Boxed: the replay buffer keeps
    /// thousands of outputs per session, each as large as the largest variant.
    BatchAck(Box<BatchAnswer>),
    /// The run ended.
    End(Box<SimulationResults>),
    /// The session failed and stopped.
    Failed {
        /// Machine-readable code: `SESSION_ERROR`, or `SESSION_MOVED` when another node
        /// took the session over.
        code: ErrorCode,
        /// What happened, safe to show to the client.
        message: String,
    },
}

/// See [`SessionOutput::BatchAck`].
#[derive(Clone, Debug)]
pub struct BatchAnswer {
    /// The request's `request_id`.
    pub request_id: Option<String>,
    /// The batch's id.
    pub batch_id: String,
    /// What was accepted and rejected.
    pub result: BatchResult,
}

/// A change in a session's life, reported to its supervisor.
#[derive(Clone, Debug, PartialEq, Message)]
#[rtype(result = "()")]
pub struct Lifecycle {
    /// Session id.
    pub session_id: String,
    /// Owner: session ids are unique per user, not across users.
    pub user_id: String,
    /// What happened.
    pub kind: LifecycleKind,
}

/// See [`Lifecycle`].
#[derive(Clone, Debug, PartialEq)]
pub enum LifecycleKind {
    /// The run ended (results emitted); the session no longer counts as live. Carries
    /// the same results as the connection's `End`, so the supervisor can store them
    /// whether or not a client is attached.
    Finished(Box<SimulationResults>),
    /// The actor stopped (closed, grace period over, or failed).
    Stopped,
}

/// Fixed parameters of a session actor.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Session id.
    pub session_id: String,
    /// Owner.
    pub user_id: String,
    /// Start request as JSON, kept with stored state.
    pub params: String,
    /// How long state is kept without a connection.
    pub grace: Duration,
    /// Wall-clock limit of a running simulation (`max_simulation_duration_sec`).
    pub max_duration: Duration,
    /// Steps processed per actor turn when streaming, before other messages are handled.
    pub batch_steps: usize,
    /// Outputs kept for re-sending after a reconnect.
    pub replay_outputs: usize,
    /// Supervisor told about finish and stop.
    pub observer: Option<Recipient<Lifecycle>>,
    /// Lease and state lifetimes in the store.
    pub store_ttl: StoreTtl,
    /// Ticks between checkpoints.
    pub checkpoint_ticks: u64,
    /// Time between checkpoints while ticks are produced.
    pub checkpoint_interval: Duration,
}

/// A session's stake in the store: its lease and where its stored state stands.
#[derive(Clone, Debug)]
pub struct Ownership {
    /// The lease every write carries.
    pub lease: Lease,
    /// Stored-state epoch.
    pub epoch: u64,
    /// Index of the next journal entry.
    pub journal_next: u64,
    /// Journaled inputs still to apply, after the tick each was accepted at (a session
    /// taken over from another node, resumed before some of its inputs).
    pub redo: VecDeque<JournalEntry>,
    /// Where the stored checkpoint is.
    pub checkpointed: u64,
    /// Run state to continue in.
    pub state: StoredState,
    /// Pacing to continue with, if the run had started.
    pub pacing: Option<Pacing>,
    /// Ticks the client has acknowledged.
    pub acked: u64,
}

/// One simulation.
pub struct SessionActor {
    config: SessionConfig,
    engine: Engine,
    slice: Arc<Slice>,
    state: SessionState,
    pacing: Pacing,
    /// Highest tick acknowledged by the client (lock-step).
    acked: u64,
    events: Vec<Event>,
    /// Where outputs go.
    delivery: Delivery,
    /// The connection attached, and the one that created the session.
    link: Link,
    /// What is kept in the session store.
    durable: Durable,
    /// What the metrics have not been told yet.
    reporting: Reporting,
}

/// Unacknowledged lock-step ticks whose emission time is kept for the round trip; a
/// client with a huge window that never acknowledges cannot grow it further.
const TICK_TIMES_KEPT: usize = 1024;

impl SessionActor {
    /// A session over `slice` with a fresh or restored `engine`.
    pub fn new(
        config: SessionConfig,
        engine: Engine,
        slice: Arc<Slice>,
        store: Arc<dyn SessionStore>,
    ) -> Self {
        let state = if engine.sequence_id() > 0 {
            SessionState::Paused
        } else {
            SessionState::Ready
        };
        SessionActor {
            config,
            engine,
            slice,
            state,
            pacing: Pacing::LockStep { window: 1 },
            acked: 0,
            events: Vec::with_capacity(16),
            delivery: Delivery {
                sink: None,
                backlog: VecDeque::new(),
                replay: VecDeque::new(),
                replay_truncated: false,
                waiting_for_room: None,
                pump_scheduled: false,
            },
            link: Link {
                detach_generation: 0,
                attachment: None,
                detached: false,
                owner: None,
            },
            durable: Durable {
                store,
                epoch: 1,
                lease: None,
                journal_next: 0,
                redo: VecDeque::new(),
                checkpointed: (0, Instant::now()),
                candidate: None,
            },
            reporting: Reporting {
                metrics: None,
                unreported: (0, 0),
                tick_sent: VecDeque::new(),
            },
        }
    }

    fn view(&self) -> StateView {
        let total = self.slice.steps.len() as u64;
        let seq = self.engine.sequence_id();
        StateView {
            session_id: self.config.session_id.clone(),
            state: self.state,
            sequence_id: seq,
            sim_time: self.engine.sim_time(),
            progress_pct: if total == 0 {
                100.0
            } else {
                seq as f64 / total as f64 * 100.0
            },
            ticks_total: total,
            epoch: self.durable.epoch,
        }
    }

    /// Processes steps while pacing, the sink and the state allow, then reports what
    /// the batch produced.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        self.pump_steps(ctx);
        self.report();
    }

    fn pump_steps(&mut self, ctx: &mut Context<Self>) {
        if !self.flush_backlog() {
            self.wait_for_room(ctx);
            return;
        }
        if self.state != SessionState::Running || self.delivery.sink.is_none() {
            return;
        }
        self.maybe_checkpoint(ctx);
        for _ in 0..self.config.batch_steps.max(1) {
            if let Pacing::LockStep { window } = self.pacing {
                if self.engine.sequence_id() >= self.acked + window as u64 {
                    return;
                }
            }
            let index = self.engine.sequence_id() as usize;
            if index >= self.slice.steps.len() {
                self.finish(EndReason::Completed, ctx);
                return;
            }
            if !self.step(index, ctx) {
                return;
            }
            if !self.delivery.backlog.is_empty() {
                self.wait_for_room(ctx);
                return;
            }
            if let Pacing::Stream { interval_ms } = self.pacing {
                if interval_ms > 0 {
                    self.schedule_pump(ctx, Duration::from_millis(interval_ms));
                    return;
                }
            }
        }
        // Let queued messages (orders, pause, acks) in before the next batch.
        self.schedule_pump(ctx, Duration::ZERO);
    }

    fn schedule_pump(&mut self, ctx: &mut Context<Self>, after: Duration) {
        if self.delivery.pump_scheduled {
            return;
        }
        self.delivery.pump_scheduled = true;
        ctx.run_later(after, |act, ctx| {
            act.delivery.pump_scheduled = false;
            act.pump(ctx);
        });
    }

    /// Runs one step of the engine; false if the session failed.
    fn step(&mut self, index: usize, ctx: &mut Context<Self>) -> bool {
        let step = self.slice.steps[index];
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        let slice = Arc::clone(&self.slice);
        let engine = &mut self.engine;
        let redo = &mut self.durable.redo;
        let result = catch_unwind(AssertUnwindSafe(|| {
            engine.apply_due(redo);
            engine.on_step(&step, slice.bars_of(&step), &mut events)
        }));
        if result.is_err() {
            self.fail("engine failure while processing a bar", ctx);
            return false;
        }
        for e in events.drain(..) {
            if self.reporting.metrics.is_some() {
                self.count(&e);
            }
            self.emit(SessionOutput::Engine(e));
        }
        self.events = events;
        true
    }

    fn finish(&mut self, reason: EndReason, ctx: &mut Context<Self>) {
        if matches!(self.state, SessionState::Completed | SessionState::Error) {
            return;
        }
        let results = Box::new(self.engine.finish(reason));
        self.state = SessionState::Completed;
        if self.config.observer.is_some() {
            self.notify_observer(LifecycleKind::Finished(results.clone()));
        }
        self.emit(SessionOutput::End(results));
        if !self.flush_backlog() {
            self.wait_for_room(ctx);
        }
        let meta = self.meta();
        self.store_write(Write::Meta(meta), ctx);
    }

    fn fail(&mut self, message: &str, ctx: &mut Context<Self>) {
        warn!(session_id = %self.config.session_id, "{message}");
        self.state = SessionState::Error;
        self.emit(SessionOutput::Failed {
            code: ErrorCode::SessionError,
            message: message.to_string(),
        });
        self.flush_backlog();
        ctx.stop();
    }

    fn notify_observer(&self, kind: LifecycleKind) {
        if let Some(o) = &self.config.observer {
            o.do_send(Lifecycle {
                session_id: self.config.session_id.clone(),
                user_id: self.config.user_id.clone(),
                kind,
            });
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        debug!(session_id = %self.config.session_id, "session actor started");
        if self.durable.lease.is_some() {
            if self.engine.sequence_id() == 0 && self.state == SessionState::Ready {
                let cp = self.checkpoint_now();
                self.store_write(Write::Full(self.meta(), cp), ctx);
            }
            self.keep_lease(ctx);
        }
        if let Some(mut owner) = self.link.owner.take() {
            let gone = async move { while owner.changed().await.is_ok() {} };
            ctx.spawn(wrap_future::<_, Self>(gone).map(|(), act, ctx| {
                if !act.reading() && !act.link.detached {
                    act.detach(ctx);
                }
            }));
        }
        let limit = self.config.max_duration;
        ctx.run_later(limit, |act, ctx| {
            if matches!(
                act.state,
                SessionState::Running | SessionState::Paused | SessionState::Ready
            ) {
                act.finish(EndReason::MaxDuration, ctx);
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        debug!(session_id = %self.config.session_id, "session actor stopped");
        // The state stays stored for the rest of the grace period; any node may take it.
        if let Some(lease) = self.durable.lease.take() {
            let store = Arc::clone(&self.durable.store);
            actix::spawn(async move {
                let _ = store.release(&lease).await;
            });
        }
        self.notify_observer(LifecycleKind::Stopped);
    }
}

impl SessionActor {}

#[cfg(test)]
mod tests;
