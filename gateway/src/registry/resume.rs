//! Finding a session, and resuming one on this node (after a reconnect, or taking it
//! over from a node that died or drained).

use super::*;

/// Looks a session up for `user_id`.
#[derive(Message)]
#[rtype(result = "Result<SessionHandle, LookupError>")]
pub struct GetSession {
    /// Session id.
    pub session_id: String,
    /// Who asks.
    pub user_id: String,
}

/// Why a lookup failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The caller has no such session on this node (another user's session with the
    /// same id is not the caller's, so it is not found either).
    #[error("session not found")]
    NotFound,
}

impl Handler<GetSession> for SessionRegistry {
    type Result = Result<SessionHandle, LookupError>;
    fn handle(&mut self, msg: GetSession, _ctx: &mut Context<Self>) -> Self::Result {
        match self.sessions.get(&(msg.user_id, msg.session_id)) {
            Some(e) if !e.closing => Ok(e.handle.clone()),
            _ => Err(LookupError::NotFound),
        }
    }
}

/// Finds a session to resume for `user_id`: live on this node, or stored by another
/// node (or an earlier run of this one), in which case it is taken over and brought
/// to `last_sequence_id` by replay before the connection attaches.
#[derive(Message)]
#[rtype(result = "Result<SessionHandle, ResumeError>")]
pub struct ResumeSession {
    /// Session id.
    pub session_id: String,
    /// Who asks.
    pub user_id: String,
    /// The client's last tick.
    pub last_sequence_id: u64,
    /// The user's plan limit on live sessions (for a session taken over).
    pub max_sessions: u32,
    /// Wall-clock limit of the run (for a session taken over).
    pub max_duration: Duration,
    /// Run a taken-over session on this arbiter.
    pub arbiter: Option<ArbiterHandle>,
    /// For a session taken over: closes when the resuming connection is gone.
    pub owner: Option<watch::Receiver<()>>,
}

/// Why a session could not be resumed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// The caller has no such session, neither live here nor stored.
    #[error("session not found")]
    NotFound,
    /// Stored, but it cannot continue from where the client is (`RESUME_FAILED`).
    #[error("{0}")]
    Failed(String),
    /// The store or a limit refuses for now (`SERVICE_BUSY`).
    #[error("{0}")]
    Busy(String),
}

impl Handler<ResumeSession> for SessionRegistry {
    type Result = ResponseActFuture<Self, Result<SessionHandle, ResumeError>>;

    fn handle(&mut self, msg: ResumeSession, _ctx: &mut Context<Self>) -> Self::Result {
        if self.draining {
            return Box::pin(actix::fut::ready(Err(ResumeError::Busy(
                "this node is shutting down; reconnect to continue".into(),
            ))));
        }
        let key = (msg.user_id.clone(), msg.session_id.clone());
        match self.sessions.get(&key) {
            Some(e) if e.closing => {}
            Some(e) => return Box::pin(actix::fut::ready(Ok(e.handle.clone()))),
            None => {}
        }
        if self.live_sessions_of(&msg.user_id) >= msg.max_sessions as usize {
            let limit = msg.max_sessions;
            return Box::pin(actix::fut::ready(Err(ResumeError::Busy(format!(
                "concurrent session limit of {limit} reached"
            )))));
        }
        let store = Arc::clone(&self.store);
        let load = {
            let store = Arc::clone(&store);
            let key = store_key(&msg.user_id, &msg.session_id);
            async move { store.load(&key).await }
        };
        let user_id = msg.user_id.clone();
        let session_id = msg.session_id.clone();
        let fut = wrap_future::<_, Self>(load)
            .map(move |loaded, act, _| {
                let record = match loaded {
                    Ok(Some(r)) => r,
                    Ok(None) => return Err(ResumeError::NotFound),
                    Err(e) => {
                        tracing::warn!(error = %e, "session store unavailable; cannot resume");
                        return Err(ResumeError::Busy(
                            "session storage is unavailable; try again shortly".into(),
                        ));
                    }
                };
                // The key holds the user's id, so this only fails on a corrupt store;
                // even then another user's session is not the caller's.
                if record.meta.user_id != user_id {
                    return Err(ResumeError::NotFound);
                }
                if record.meta.state == StoredState::Completed {
                    return Err(ResumeError::Failed(format!(
                        "session `{session_id}` has finished; its results are at /api/sessions/{session_id}"
                    )));
                }
                let params: protocol::SessionParams = serde_json::from_str(&record.meta.params)
                    .map_err(|e| ResumeError::Failed(format!("stored parameters are unreadable: {e}")))?;
                let spec = SessionSpec::from_params(Some(session_id.clone()), &params);
                // Checks the stored parameters; the session runs with the config in its
                // checkpoint (which carries the cap on working orders it was created
                // with).
                act.engine_config(&spec, None)
                    .map_err(|e| ResumeError::Failed(e.message))?;
                let request = spec.slice_request();
                let slice = act.slice_for(request, spec.market_hours);
                Ok((record, spec, slice))
            })
            .then({
                let (user, max) = (msg.user_id.clone(), msg.max_sessions);
                move |prepared, act, _| {
                let (node, ttl) = (act.node_id.clone(), act.store_ttl());
                let concurrency = Arc::clone(&act.concurrency);
                wrap_future::<_, Self>(async move {
                    let (record, spec, slice) = prepared?;
                    let session_id = spec.session_id.clone().unwrap_or_default();
                    let slice = slice.await.map_err(|e| ResumeError::Failed(e.message))?;
                    let recovered = recover(
                        store.as_ref(),
                        record,
                        &slice,
                        &node,
                        msg.last_sequence_id,
                        ttl,
                    )
                    .await
                    .map_err(|e| match e {
                        RecoverError::Store(StoreError::Conflict { .. }) => ResumeError::Failed(
                            "the session is being resumed on another connection".into(),
                        ),
                        RecoverError::Store(StoreError::Unavailable(_)) => ResumeError::Busy(
                            "session storage is unavailable; try again shortly".into(),
                        ),
                        e => ResumeError::Failed(e.to_string()),
                    })?;
                    if let Err(e) = concurrency.session(&user, &session_id, max).await
                    {
                        let _ = store.release(&recovered.ownership.lease).await;
                        return Err(ResumeError::Busy(e));
                    }
                    Ok((recovered, spec, slice))
                })
            }})
            .map(move |ready, act, ctx| {
                let (recovered, spec, slice) = ready?;
                let id = spec.session_id.clone().unwrap_or_default();
                if act.sessions.contains_key(&(msg.user_id.clone(), id.clone())) {
                    // Resumed twice at once on this node: the other request won.
                    act.release(recovered.ownership.lease);
                    return Err(ResumeError::Failed(
                        "the session is being resumed on another connection".into(),
                    ));
                }
                tracing::info!(session_id = %id, sequence_id = msg.last_sequence_id, "session taken over from the store");
                let facts = Started {
                    session_id: id,
                    user_id: msg.user_id,
                    params_json: spec.params_json,
                    timeframe: spec.timeframe,
                    start: spec.start,
                    end: spec.end,
                    config: recovered.engine.config().clone(),
                    max_duration: msg.max_duration,
                    owner: msg.owner,
                };
                Ok(act.start_session(
                    facts,
                    recovered.engine,
                    slice,
                    recovered.ownership,
                    msg.arbiter,
                    ctx,
                ))
            });
        Box::pin(fut)
    }
}
