//! The session actor: owns one [`Engine`] and the slice it runs on, outlives any single
//! connection, and paces the run (lock-step credit window, streaming, or a fixed tick
//! interval).
//!
//! Output goes to the attached connection through a bounded channel: when the channel
//! is full the session stops stepping until there is room, so a slow client pauses its
//! own session and nothing buffers without bound. Without a connection the session
//! waits; after the grace period it stops.

mod messages;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use actix::fut::wrap_future;
use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Message, Recipient, SpawnHandle,
};
use market_data::Slice;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::engine::{EndReason, Engine, Event, SimulationResults};
use crate::store::{SessionRecord, SessionStore};

pub use messages::*;

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
    /// The run ended.
    End(Box<SimulationResults>),
    /// The session failed and stopped.
    Failed {
        /// Machine-readable code (`SESSION_ERROR` family).
        code: &'static str,
        /// What happened, safe to show to the client.
        message: String,
    },
}

/// A change in a session's life, reported to its supervisor.
#[derive(Clone, Debug, PartialEq, Message)]
#[rtype(result = "()")]
pub struct Lifecycle {
    /// Session id.
    pub session_id: String,
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
}

/// One simulation.
pub struct SessionActor {
    config: SessionConfig,
    engine: Engine,
    slice: Arc<Slice>,
    store: Arc<dyn SessionStore>,
    state: SessionState,
    pacing: Pacing,
    /// Highest tick acknowledged by the client (lock-step).
    acked: u64,
    sink: Option<mpsc::Sender<SessionOutput>>,
    /// Outputs of the current step not yet accepted by the sink, in order.
    backlog: VecDeque<SessionOutput>,
    /// Recent outputs with the sequence id of the tick they belong to, for resume.
    replay: VecDeque<(u64, SessionOutput)>,
    replay_truncated: bool,
    waiting_for_room: Option<SpawnHandle>,
    pump_scheduled: bool,
    detach_generation: u64,
    events: Vec<Event>,
    epoch: u64,
}

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
            store,
            state,
            pacing: Pacing::LockStep { window: 1 },
            acked: 0,
            sink: None,
            backlog: VecDeque::new(),
            replay: VecDeque::new(),
            replay_truncated: false,
            waiting_for_room: None,
            pump_scheduled: false,
            detach_generation: 0,
            events: Vec::with_capacity(16),
            epoch: 1,
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
            epoch: self.epoch,
        }
    }

    /// Queues an output: straight into the sink when it has room, else into the
    /// backlog (which only ever holds the rest of one step).
    fn emit(&mut self, output: SessionOutput) {
        let seq = self.engine.sequence_id();
        self.replay.push_back((seq, output.clone()));
        while self.replay.len() > self.config.replay_outputs {
            self.replay.pop_front();
            self.replay_truncated = true;
        }
        if !self.backlog.is_empty() {
            self.backlog.push_back(output);
            return;
        }
        let Some(sink) = &self.sink else {
            return;
        };
        match sink.try_send(output) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(o)) => self.backlog.push_back(o),
            Err(mpsc::error::TrySendError::Closed(_)) => self.sink = None,
        }
    }

    /// Moves backlog into the sink; false while the sink is full.
    fn flush_backlog(&mut self) -> bool {
        let Some(sink) = &self.sink else {
            return self.backlog.is_empty();
        };
        while let Some(o) = self.backlog.pop_front() {
            match sink.try_send(o) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(o)) => {
                    self.backlog.push_front(o);
                    return false;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.sink = None;
                    return false;
                }
            }
        }
        true
    }

    /// Wakes the pump when the sink has room again.
    fn wait_for_room(&mut self, ctx: &mut Context<Self>) {
        if self.waiting_for_room.is_some() {
            return;
        }
        let Some(sink) = self.sink.clone() else {
            return;
        };
        let fut = wrap_future::<_, Self>(async move { sink.reserve_owned().await.ok() }).map(
            |permit, act, ctx| {
                act.waiting_for_room = None;
                // Spend the reserved slot on the oldest backlog entry.
                if let (Some(permit), Some(o)) = (permit, act.backlog.pop_front()) {
                    permit.send(o);
                }
                act.pump(ctx);
            },
        );
        self.waiting_for_room = Some(ctx.spawn(fut));
    }

    /// Processes steps while pacing, the sink and the state allow.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if !self.flush_backlog() {
            self.wait_for_room(ctx);
            return;
        }
        if self.state != SessionState::Running || self.sink.is_none() {
            return;
        }
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
            if !self.backlog.is_empty() {
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
        if self.pump_scheduled {
            return;
        }
        self.pump_scheduled = true;
        ctx.run_later(after, |act, ctx| {
            act.pump_scheduled = false;
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
        let result = catch_unwind(AssertUnwindSafe(|| {
            engine.on_step(&step, slice.bars_of(&step), &mut events)
        }));
        if result.is_err() {
            self.fail("engine failure while processing a bar", ctx);
            return false;
        }
        for e in events.drain(..) {
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
        self.persist(ctx);
    }

    fn fail(&mut self, message: &str, ctx: &mut Context<Self>) {
        warn!(session_id = %self.config.session_id, "{message}");
        self.state = SessionState::Error;
        self.emit(SessionOutput::Failed {
            code: "SESSION_ERROR",
            message: message.to_string(),
        });
        self.flush_backlog();
        ctx.stop();
    }

    fn notify_observer(&self, kind: LifecycleKind) {
        if let Some(o) = &self.config.observer {
            o.do_send(Lifecycle {
                session_id: self.config.session_id.clone(),
                kind,
            });
        }
    }

    /// Writes the current state to the store without blocking the actor.
    fn persist(&mut self, ctx: &mut Context<Self>) {
        let record = SessionRecord {
            session_id: self.config.session_id.clone(),
            user_id: self.config.user_id.clone(),
            epoch: self.epoch,
            sequence_id: self.engine.sequence_id(),
            params: self.config.params.clone(),
            snapshot: self.engine.snapshot(),
        };
        let store = Arc::clone(&self.store);
        let ttl = self.config.grace;
        let id = self.config.session_id.clone();
        ctx.spawn(wrap_future(async move {
            if let Err(e) = store.save(record, ttl).await {
                warn!(session_id = %id, error = %e, "could not persist session state");
            }
        }));
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        debug!(session_id = %self.config.session_id, "session actor started");
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
                && (self.replay_truncated && self.replay.front().is_none_or(|(seq, _)| *seq > last))
            {
                return Err(SessionError::ResumeFailed(format!(
                    "ticks after {last} are no longer available"
                )));
            }
            missed = self
                .replay
                .iter()
                .filter(|(seq, _)| *seq > last)
                .map(|(_, o)| o.clone())
                .collect();
            // Credit restarts from what the client has seen.
            self.acked = self.acked.max(last);
        }
        self.sink = Some(sink);
        self.backlog = missed.into();
        self.detach_generation += 1;
        Ok(AttachInfo {
            slice: Arc::clone(&self.slice),
            view: self.view(),
        })
    }

    fn detach(&mut self, ctx: &mut Context<Self>) {
        self.sink = None;
        self.backlog.clear();
        if let Some(h) = self.waiting_for_room.take() {
            ctx.cancel_future(h);
        }
        self.persist(ctx);
        self.detach_generation += 1;
        let generation = self.detach_generation;
        ctx.run_later(self.config.grace, move |act, ctx| {
            if act.sink.is_none() && act.detach_generation == generation {
                debug!(session_id = %act.config.session_id, "grace period over without a connection");
                ctx.stop();
            }
        });
    }
}

#[cfg(test)]
mod tests;
