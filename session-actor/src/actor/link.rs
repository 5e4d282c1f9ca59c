//! The session's connections: attaching one, detaching it (for the grace period), and
//! the owner that created it.

use super::*;

/// The session's connections.
pub(super) struct Link {
    pub(super) detach_generation: u64,
    /// Identifies the current attachment; a `Detach` for another one is stale.
    pub(super) attachment: Option<u64>,
    /// Detached and counting down the grace period.
    pub(super) detached: bool,
    /// Closes when the connection that created the session is gone (taken at start).
    pub(super) owner: Option<watch::Receiver<()>>,
}

impl SessionActor {
    /// Ties the session to the connection that created it: once every sender of
    /// `owner` is dropped (that connection is gone) and no connection is attached, the
    /// session is detached and its grace period runs. This covers a connection that
    /// closed before it learnt of the session (or of its attachment) and so could not
    /// detach it itself.
    pub fn with_owner(mut self, owner: watch::Receiver<()>) -> Self {
        self.link.owner = Some(owner);
        self
    }

    pub(super) fn attach(
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
    pub(super) fn reading(&self) -> bool {
        self.delivery.sink.as_ref().is_some_and(|s| !s.is_closed())
    }

    /// Whether `attachment` is the current attachment and its connection still reads.
    pub(super) fn attached_as(&self, attachment: u64) -> bool {
        self.link.attachment == Some(attachment) && self.reading()
    }

    pub(super) fn detach(&mut self, ctx: &mut Context<Self>) {
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
