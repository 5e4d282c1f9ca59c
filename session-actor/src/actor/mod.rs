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

mod messages;
mod metrics;

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

/// Where a session's outputs go: the attached connection's sink, what it has not
/// taken yet, and what a resuming client may ask for again.
struct Delivery {
    sink: Option<mpsc::Sender<SessionOutput>>,
    /// Outputs of the current step not yet accepted by the sink, in order.
    backlog: VecDeque<SessionOutput>,
    /// Recent outputs with the sequence id of the tick they belong to, for resume.
    replay: VecDeque<(u64, SessionOutput)>,
    replay_truncated: bool,
    waiting_for_room: Option<SpawnHandle>,
    pump_scheduled: bool,
}

/// The session's connections.
struct Link {
    detach_generation: u64,
    /// Identifies the current attachment; a `Detach` for another one is stale.
    attachment: Option<u64>,
    /// Detached and counting down the grace period.
    detached: bool,
    /// Closes when the connection that created the session is gone (taken at start).
    owner: Option<watch::Receiver<()>>,
}

/// The session's stake in the session store.
struct Durable {
    store: Arc<dyn SessionStore>,
    epoch: u64,
    lease: Option<Lease>,
    journal_next: u64,
    redo: VecDeque<JournalEntry>,
    /// Tick and time of the last checkpoint taken.
    checkpointed: (u64, Instant),
    /// A checkpoint taken before the client was known to have its tick; written at
    /// the next checkpoint (by then the client has moved past it).
    candidate: Option<Checkpoint>,
}

/// What the session reports to its metrics.
struct Reporting {
    metrics: Option<Arc<dyn SessionMetrics>>,
    /// Ticks and fills produced since they were last reported.
    unreported: (u64, u64),
    /// Emission time of unacknowledged lock-step ticks, oldest first (with metrics).
    tick_sent: VecDeque<(u64, Instant)>,
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

    /// Ties the session to the connection that created it: once every sender of
    /// `owner` is dropped (that connection is gone) and no connection is attached, the
    /// session is detached and its grace period runs. This covers a connection that
    /// closed before it learnt of the session (or of its attachment) and so could not
    /// detach it itself.
    pub fn with_owner(mut self, owner: watch::Receiver<()>) -> Self {
        self.link.owner = Some(owner);
        self
    }

    /// Reports ticks, fills and lock-step round trips to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn SessionMetrics>) -> Self {
        self.reporting.metrics = Some(metrics);
        self
    }

    /// Hands the counts accumulated since the last call to the metrics.
    fn report(&mut self) {
        let (ticks, fills) = std::mem::take(&mut self.reporting.unreported);
        if let Some(m) = &self.reporting.metrics {
            if ticks > 0 {
                m.ticks(ticks);
            }
            if fills > 0 {
                m.fills(fills);
            }
        }
    }

    /// Records the round trip of the newest tick covered by an acknowledgement up to
    /// `ack`; older ones are dropped (one acknowledgement, one observation).
    fn acknowledged(&mut self, ack: u64) {
        let mut newest = None;
        while let Some(&(seq, at)) = self.reporting.tick_sent.front() {
            if seq > ack {
                break;
            }
            self.reporting.tick_sent.pop_front();
            newest = Some((seq, at));
        }
        if let (Some(m), Some((seq, at))) = (&self.reporting.metrics, newest) {
            if seq == ack {
                m.tick_round_trip(at.elapsed());
            }
        }
    }

    /// Keeps the session's state in the store under `own`.
    pub fn with_ownership(mut self, own: Ownership) -> Self {
        self.durable.epoch = own.epoch;
        self.durable.journal_next = own.journal_next;
        self.durable.redo = own.redo;
        self.durable.checkpointed = (own.checkpointed, Instant::now());
        self.acked = own.acked;
        if let Some(p) = own.pacing {
            self.pacing = p;
        }
        self.state = match own.state {
            StoredState::Ready => SessionState::Ready,
            StoredState::Running => SessionState::Running,
            StoredState::Paused => SessionState::Paused,
            StoredState::Completed => SessionState::Completed,
        };
        self.durable.lease = Some(own.lease);
        self
    }

    fn meta(&self) -> SessionMeta {
        let (flow_control, window, interval_ms) = match self.pacing {
            Pacing::LockStep { window } => (true, window, 0),
            Pacing::Stream { interval_ms } => (false, 1, interval_ms),
        };
        SessionMeta {
            user_id: self.config.user_id.clone(),
            epoch: self.durable.epoch,
            params: self.config.params.clone(),
            state: match self.state {
                SessionState::Ready => StoredState::Ready,
                SessionState::Running => StoredState::Running,
                SessionState::Paused => StoredState::Paused,
                SessionState::Completed | SessionState::Error => StoredState::Completed,
            },
            pacing: StoredPacing {
                flow_control,
                window,
                interval_ms,
            },
        }
    }

    /// A checkpoint of the engine now; journal entries not yet applied stay outside it.
    fn checkpoint_now(&self) -> Checkpoint {
        Checkpoint {
            sequence_id: self.engine.sequence_id(),
            journal_next: self
                .durable
                .redo
                .front()
                .map_or(self.durable.journal_next, |e| e.index),
            snapshot: self.engine.snapshot(),
        }
    }

    /// Writes to the store in the background; writes are issued in order.
    fn store_write(&mut self, write: Write, ctx: &mut Context<Self>) {
        if let Some(fut) = self.store_future(write) {
            ctx.spawn(fut.map(|res, act, ctx| act.store_result(res, ctx)));
        }
    }

    fn store_future(
        &self,
        write: Write,
    ) -> Option<impl ActorFuture<Self, Output = Result<(), StoreError>> + 'static> {
        let lease = self.durable.lease.clone()?;
        let store = Arc::clone(&self.durable.store);
        let ttl = self.config.store_ttl;
        Some(wrap_future::<_, Self>(async move {
            store.write(&lease, write, ttl).await
        }))
    }

    /// Journals an input before it is acknowledged; resolves when it is stored.
    fn journal(
        &mut self,
        input: Command,
    ) -> impl Future<Output = Result<(), StoreError>> + 'static {
        let entry = JournalEntry {
            index: self.durable.journal_next,
            sequence_id: self.engine.sequence_id(),
            input,
        };
        self.durable.journal_next += 1;
        let lease = self.durable.lease.clone();
        let store = Arc::clone(&self.durable.store);
        let ttl = self.config.store_ttl;
        async move {
            match lease {
                Some(lease) => store.write(&lease, Write::Append(entry), ttl).await,
                None => Ok(()),
            }
        }
    }

    fn store_result(&mut self, res: Result<(), StoreError>, ctx: &mut Context<Self>) {
        match res {
            Ok(()) => {}
            Err(StoreError::Fenced) => self.lost_ownership(ctx),
            Err(StoreError::Lost) => self.reestablish(ctx),
            Err(e) => {
                // Degraded: the run goes on; resume on another node is not guaranteed
                // until the store answers again (later writes carry the state).
                warn!(session_id = %self.config.session_id, error = %e, "session state not stored");
            }
        }
    }

    /// Another node took the session over: stop here, leaving the state to it.
    fn lost_ownership(&mut self, ctx: &mut Context<Self>) {
        if self.durable.lease.take().is_none() {
            return;
        }
        warn!(session_id = %self.config.session_id, "session taken over by another node; stopping here");
        if matches!(self.state, SessionState::Completed | SessionState::Error) {
            ctx.stop();
            return;
        }
        self.state = SessionState::Error;
        self.delivery.backlog.clear();
        self.emit(SessionOutput::Failed {
            code: ErrorCode::SessionMoved,
            message: "the session continues on another node; resume it there".into(),
        });
        self.flush_backlog();
        ctx.stop();
    }

    /// The store lost this session's state (expired or wiped): take it again under a
    /// new epoch and write the current state, so clients learn that stored history
    /// was lost.
    fn reestablish(&mut self, ctx: &mut Context<Self>) {
        let Some(old) = self.durable.lease.take() else {
            return;
        };
        warn!(session_id = %self.config.session_id, "stored session state was lost; storing it again under a new epoch");
        self.durable.epoch += 1;
        self.durable.candidate = None;
        let store = Arc::clone(&self.durable.store);
        let ttl = self.config.store_ttl;
        let (id, node) = (old.session_id.clone(), old.node_id.clone());
        let fut = wrap_future::<_, Self>(async move { store.acquire(&id, &node, 0, ttl).await })
        .map(|res, act, ctx| match res {
            Ok(lease) => {
                act.durable.lease = Some(lease);
                let cp = act.checkpoint_now();
                act.durable.checkpointed = (cp.sequence_id, Instant::now());
                act.store_write(Write::Full(act.meta(), cp), ctx);
            }
            Err(StoreError::Conflict { .. }) => {
                act.durable.lease = Some(old);
                act.lost_ownership(ctx);
            }
            Err(e) => {
                // Still unreachable: try again at the next renewal.
                warn!(session_id = %act.config.session_id, error = %e, "could not store the session again");
                act.durable.lease = Some(old);
            }
        });
        ctx.spawn(fut);
    }

    /// Writes a checkpoint when one is due, at a tick the client has.
    fn maybe_checkpoint(&mut self, ctx: &mut Context<Self>) {
        if self.durable.lease.is_none() {
            return;
        }
        let seq = self.engine.sequence_id();
        let (last, at) = self.durable.checkpointed;
        if seq == last
            || (seq - last < self.config.checkpoint_ticks
                && at.elapsed() < self.config.checkpoint_interval)
        {
            return;
        }
        let cp = self.checkpoint_now();
        self.durable.checkpointed = (seq, Instant::now());
        let client_has_it = matches!(self.pacing, Pacing::LockStep { .. }) && self.acked >= seq;
        let publish = if client_has_it {
            self.durable.candidate = None;
            Some(cp)
        } else {
            self.durable.candidate.replace(cp)
        };
        if let Some(cp) = publish {
            self.store_write(Write::Checkpoint(cp), ctx);
        }
    }

    /// Renews the lease now and then; a fenced renewal stops the session.
    fn keep_lease(&mut self, ctx: &mut Context<Self>) {
        let every = self.config.store_ttl.lease / 3;
        ctx.run_interval(every, |act, ctx| {
            let Some(lease) = act.durable.lease.clone() else {
                return;
            };
            let store = Arc::clone(&act.durable.store);
            let ttl = act.config.store_ttl;
            ctx.spawn(
                wrap_future::<_, Self>(async move { store.renew(&lease, ttl).await })
                    .map(|res, act, ctx| act.store_result(res, ctx)),
            );
        });
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

    /// Queues an output: straight into the sink when it has room, else into the
    /// backlog (which only ever holds the rest of one step).
    fn emit(&mut self, output: SessionOutput) {
        let seq = self.engine.sequence_id();
        self.delivery.replay.push_back((seq, output.clone()));
        while self.delivery.replay.len() > self.config.replay_outputs {
            self.delivery.replay.pop_front();
            self.delivery.replay_truncated = true;
        }
        self.queue(output);
    }

    /// Queues an output that is not kept for resume.
    fn queue(&mut self, output: SessionOutput) {
        if !self.delivery.backlog.is_empty() {
            self.delivery.backlog.push_back(output);
            return;
        }
        let Some(sink) = &self.delivery.sink else {
            return;
        };
        match sink.try_send(output) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(o)) => self.delivery.backlog.push_back(o),
            Err(mpsc::error::TrySendError::Closed(_)) => self.delivery.sink = None,
        }
    }

    /// Moves backlog into the sink; false while the sink is full.
    fn flush_backlog(&mut self) -> bool {
        let Some(sink) = &self.delivery.sink else {
            return self.delivery.backlog.is_empty();
        };
        while let Some(o) = self.delivery.backlog.pop_front() {
            match sink.try_send(o) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(o)) => {
                    self.delivery.backlog.push_front(o);
                    return false;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.delivery.sink = None;
                    return false;
                }
            }
        }
        true
    }

    /// Wakes the pump when the sink has room again.
    fn wait_for_room(&mut self, ctx: &mut Context<Self>) {
        if self.delivery.waiting_for_room.is_some() {
            return;
        }
        let Some(sink) = self.delivery.sink.clone() else {
            return;
        };
        let fut = wrap_future::<_, Self>(async move { sink.reserve_owned().await.ok() }).map(
            |permit, act, ctx| {
                act.delivery.waiting_for_room = None;
                // Spend the reserved slot on the oldest backlog entry.
                if let (Some(permit), Some(o)) = (permit, act.delivery.backlog.pop_front()) {
                    permit.send(o);
                }
                act.pump(ctx);
            },
        );
        self.delivery.waiting_for_room = Some(ctx.spawn(fut));
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

    /// Counts an event for [`SessionActor::report`], and notes when a lock-step tick
    /// left.
    fn count(&mut self, e: &Event) {
        match e {
            Event::Tick(t) => {
                self.reporting.unreported.0 += 1;
                if matches!(self.pacing, Pacing::LockStep { .. }) {
                    if self.reporting.tick_sent.len() >= TICK_TIMES_KEPT {
                        self.reporting.tick_sent.pop_front();
                    }
                    self.reporting
                        .tick_sent
                        .push_back((t.sequence_id, Instant::now()));
                }
            }
            Event::Execution(_) => self.reporting.unreported.1 += 1,
            _ => {}
        }
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

    /// Stores the run state and the newest checkpoint the client is known to have.
    fn persist(&mut self, ctx: &mut Context<Self>) {
        for write in self.final_writes() {
            self.store_write(write, ctx);
        }
    }

    /// What to write so the store holds this session as it is now: the run state, and
    /// a checkpoint at the newest tick the client is known to have (the current one
    /// when it acknowledged it, else the pending candidate).
    fn final_writes(&mut self) -> Vec<Write> {
        if self.durable.lease.is_none() {
            return Vec::new();
        }
        let mut writes = vec![Write::Meta(self.meta())];
        let seq = self.engine.sequence_id();
        if self.acked >= seq && seq > self.durable.checkpointed.0 {
            let cp = self.checkpoint_now();
            self.durable.checkpointed = (seq, Instant::now());
            self.durable.candidate = None;
            writes.push(Write::Checkpoint(cp));
        } else if let Some(cp) = self.durable.candidate.take() {
            writes.push(Write::Checkpoint(cp));
        }
        writes
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

impl SessionActor {
    fn attach(
        &mut self,
        sink: mpsc::Sender<SessionOutput>,
        resume_from: Option<u64>,
    ) -> Result<AttachInfo, SessionError> {
        let mut missed = Vec::new();
        if let Some(last) = resume_from {
            let current = self.engine.sequence_id();
            if last > current {
                return Err(SessionError::ResumeFailed(format!(
                    "last_sequence_id {last} is ahead of the session ({current})"
                )));
            }
            // Everything a bar causes is tagged with its sequence id, so the client
            // needs exactly the outputs tagged after its last tick.
            if last < current
                && (self.delivery.replay_truncated
                    && self
                        .delivery
                        .replay
                        .front()
                        .is_none_or(|(seq, _)| *seq > last))
            {
                return Err(SessionError::ResumeFailed(format!(
                    "ticks after {last} are no longer available"
                )));
            }
            missed = self
                .delivery
                .replay
                .iter()
                .filter(|(seq, _)| *seq > last)
                .map(|(_, o)| o.clone())
                .collect();
            // Credit restarts from what the client has seen.
            self.acked = self.acked.max(last);
        }
        self.delivery.sink = Some(sink);
        self.delivery.backlog = missed.into();
        self.link.detach_generation += 1;
        self.link.attachment = Some(self.link.detach_generation);
        self.link.detached = false;
        Ok(AttachInfo {
            slice: Arc::clone(&self.slice),
            view: self.view(),
            attachment: self.link.detach_generation,
        })
    }

    /// Whether a connection is attached and still reads.
    fn reading(&self) -> bool {
        self.delivery.sink.as_ref().is_some_and(|s| !s.is_closed())
    }

    /// Whether `attachment` is the current attachment and its connection still reads.
    fn attached_as(&self, attachment: u64) -> bool {
        self.link.attachment == Some(attachment) && self.reading()
    }

    fn detach(&mut self, ctx: &mut Context<Self>) {
        self.link.detached = true;
        self.delivery.sink = None;
        self.delivery.backlog.clear();
        // Acks after a reconnect would measure the outage, not a round trip.
        self.reporting.tick_sent.clear();
        if let Some(h) = self.delivery.waiting_for_room.take() {
            ctx.cancel_future(h);
        }
        self.persist(ctx);
        self.link.detach_generation += 1;
        let generation = self.link.detach_generation;
        ctx.run_later(self.config.grace, move |act, ctx| {
            if act.delivery.sink.is_none() && act.link.detach_generation == generation {
                debug!(session_id = %act.config.session_id, "grace period over without a connection");
                ctx.stop();
            }
        });
    }
}

#[cfg(test)]
mod tests;
