//! Where a session's outputs go: the attached connection's bounded sink, the backlog it
//! has not taken yet, and the replay buffer a resuming client reads from.

use super::*;

/// Where a session's outputs go: the attached connection's sink, what it has not
/// taken yet, and what a resuming client may ask for again.
pub(super) struct Delivery {
    pub(super) sink: Option<mpsc::Sender<SessionOutput>>,
    /// Outputs of the current step not yet accepted by the sink, in order.
    pub(super) backlog: VecDeque<SessionOutput>,
    /// Recent outputs with the sequence id of the tick they belong to, for resume.
    pub(super) replay: VecDeque<(u64, SessionOutput)>,
    pub(super) replay_truncated: bool,
    pub(super) waiting_for_room: Option<SpawnHandle>,
    pub(super) pump_scheduled: bool,
}

impl SessionActor {
    /// Queues an output: straight into the sink when it has room, else into the
    /// backlog (which only ever holds the rest of one step).
    pub(super) fn emit(&mut self, output: SessionOutput) {
        let seq = self.engine.sequence_id();
        self.delivery.replay.push_back((seq, output.clone()));
        while self.delivery.replay.len() > self.config.replay_outputs {
            self.delivery.replay.pop_front();
            self.delivery.replay_truncated = true;
        }
        self.queue(output);
    }

    /// Queues an output that is not kept for resume.
    pub(super) fn queue(&mut self, output: SessionOutput) {
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
    pub(super) fn flush_backlog(&mut self) -> bool {
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
    pub(super) fn wait_for_room(&mut self, ctx: &mut Context<Self>) {
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
}
