//! What the session keeps in the session store: its lease, the journal of commands,
//! checkpoints, and the run state written when it stops.

use super::*;

/// The session's stake in the session store.
pub(super) struct Durable {
    pub(super) store: Arc<dyn SessionStore>,
    pub(super) epoch: u64,
    pub(super) lease: Option<Lease>,
    pub(super) journal_next: u64,
    pub(super) redo: VecDeque<JournalEntry>,
    /// Tick and time of the last checkpoint taken.
    pub(super) checkpointed: (u64, Instant),
    /// A checkpoint taken before the client was known to have its tick; written at
    /// the next checkpoint (by then the client has moved past it).
    pub(super) candidate: Option<Checkpoint>,
}

impl SessionActor {
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

    pub(super) fn meta(&self) -> SessionMeta {
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
    pub(super) fn checkpoint_now(&self) -> Checkpoint {
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
    pub(super) fn store_write(&mut self, write: Write, ctx: &mut Context<Self>) {
        if let Some(fut) = self.store_future(write) {
            ctx.spawn(fut.map(|res, act, ctx| act.store_result(res, ctx)));
        }
    }

    pub(super) fn store_future(
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
    pub(super) fn journal(
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

    pub(super) fn store_result(&mut self, res: Result<(), StoreError>, ctx: &mut Context<Self>) {
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
    pub(super) fn lost_ownership(&mut self, ctx: &mut Context<Self>) {
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
    pub(super) fn reestablish(&mut self, ctx: &mut Context<Self>) {
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
    pub(super) fn maybe_checkpoint(&mut self, ctx: &mut Context<Self>) {
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
    pub(super) fn keep_lease(&mut self, ctx: &mut Context<Self>) {
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

    /// Stores the run state and the newest checkpoint the client is known to have.
    pub(super) fn persist(&mut self, ctx: &mut Context<Self>) {
        for write in self.final_writes() {
            self.store_write(write, ctx);
        }
    }

    /// What to write so the store holds this session as it is now: the run state, and
    /// a checkpoint at the newest tick the client is known to have (the current one
    /// when it acknowledged it, else the pending candidate).
    pub(super) fn final_writes(&mut self) -> Vec<Write> {
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
