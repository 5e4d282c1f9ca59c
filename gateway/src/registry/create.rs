//! Creating a session: the plan's cap, the market data, the claim in the session store
//! and the count across the cluster, then the actor on its arbiter.

use super::*;

/// Creates a session for `user_id`, bounded by `max_sessions` live sessions.
#[derive(Message)]
#[rtype(result = "Result<SessionHandle, CreateError>")]
pub struct CreateSession {
    /// Owner.
    pub user_id: String,
    /// The user's plan limit on live sessions.
    pub max_sessions: u32,
    /// Wall-clock limit of the run.
    pub max_duration: Duration,
    /// The plan's cap on working orders; it stays with the session (in its engine
    /// config, so in every checkpoint) for the rest of its life.
    pub max_working_orders: u32,
    /// What to run.
    pub spec: SessionSpec,
    /// Run the session on this arbiter (the caller's thread, so a connection and its
    /// session exchange ticks without crossing threads); None picks from the pool.
    pub arbiter: Option<ArbiterHandle>,
    /// Closes when the creating connection is gone; see `SessionActor::with_owner`.
    pub owner: Option<watch::Receiver<()>>,
}

impl Handler<CreateSession> for SessionRegistry {
    type Result = ResponseActFuture<Self, Result<SessionHandle, CreateError>>;

    fn handle(&mut self, msg: CreateSession, _ctx: &mut Context<Self>) -> Self::Result {
        let CreateSession {
            user_id,
            max_sessions,
            max_duration,
            max_working_orders,
            spec,
            arbiter,
            owner,
        } = msg;
        let early = (|| {
            if self.draining {
                return Err(CreateError {
                    code: ErrorCode::ServiceBusy,
                    message: "this node is shutting down; reconnect to continue".into(),
                });
            }
            if self.live_sessions_of(&user_id) >= max_sessions as usize {
                return Err(CreateError {
                    code: ErrorCode::ServiceBusy,
                    message: format!("concurrent session limit of {max_sessions} reached"),
                });
            }
            if let Some(id) = &spec.session_id {
                if id.is_empty() || id.len() > auth::MAX_SESSION_ID_BYTES {
                    return Err(CreateError {
                        code: ErrorCode::InvalidParams,
                        message: "session_id must be 1 to 128 bytes".into(),
                    });
                }
                // Ids are echoed in logs and URLs, and Postgres cannot store NUL.
                if id.chars().any(char::is_control) {
                    return Err(CreateError {
                        code: ErrorCode::InvalidParams,
                        message: "session_id must not contain control characters".into(),
                    });
                }
                if self.sessions.contains_key(&(user_id.clone(), id.clone())) {
                    return Err(CreateError {
                        code: ErrorCode::InvalidParams,
                        message: format!("session `{id}` already exists"),
                    });
                }
            }
            if spec.warmup_bars > self.settings.simulation.max_warmup_bars {
                return Err(CreateError {
                    code: ErrorCode::ValidationError,
                    message: format!(
                        "warmup_bars may be at most {}",
                        self.settings.simulation.max_warmup_bars
                    ),
                });
            }
            self.engine_config(&spec, Some(max_working_orders))
        })();
        let config = match early {
            Ok(c) => c,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let request = spec.slice_request();
        let max_bars = self.settings.simulation.max_bars;
        let fut = wrap_future::<_, Self>(self.slice_for(request, spec.market_hours))
            .map(move |slice, act, _| {
                let slice = slice?;
                if slice.steps.len() > max_bars {
                    return Err(CreateError {
                        code: ErrorCode::ValidationError,
                        message: format!(
                            "the range holds {} bars; at most {max_bars} are allowed per session",
                            slice.steps.len(),
                        ),
                    });
                }
                act.created += 1;
                let session_id = match spec.session_id.clone() {
                    Some(id) => id,
                    None => new_session_id(act.created),
                };
                let engine = Engine::new(config.clone()).map_err(|e| CreateError {
                    code: ErrorCode::ValidationError,
                    message: e.to_string(),
                })?;
                Ok((session_id, engine, slice, config, spec))
            })
            .then({
                let user_id = user_id.clone();
                move |prepared, act, _| {
                    // Ownership in the store also makes client-chosen ids unique across
                    // the cluster; the count there holds the plan's limit across nodes.
                    let store = Arc::clone(&act.store);
                    let concurrency = Arc::clone(&act.concurrency);
                    let (node, ttl) = (act.node_id.clone(), act.store_ttl());
                    wrap_future::<_, Self>(async move {
                        let prepared = prepared?;
                        let key = store_key(&user_id, &prepared.0);
                        let lease =
                            claim_new(store.as_ref(), &key, &prepared.0, &node, ttl).await?;
                        if let Err(e) = concurrency
                            .session(&user_id, &prepared.0, max_sessions)
                            .await
                        {
                            let _ = store.release(&lease).await;
                            return Err(CreateError {
                                code: ErrorCode::ServiceBusy,
                                message: e,
                            });
                        }
                        Ok((prepared, lease))
                    })
                }
            })
            .map(move |claimed, act, ctx| {
                let ((session_id, engine, slice, config, spec), lease) = claimed?;
                // A concurrent request may have taken the last slot meanwhile.
                if act.live_sessions_of(&user_id) >= max_sessions as usize {
                    act.release_count(&user_id, &session_id);
                    act.release(lease);
                    return Err(CreateError {
                        code: ErrorCode::ServiceBusy,
                        message: format!("concurrent session limit of {max_sessions} reached"),
                    });
                }
                if act
                    .sessions
                    .contains_key(&(user_id.clone(), session_id.clone()))
                {
                    act.release_count(&user_id, &session_id);
                    act.release(lease);
                    return Err(CreateError {
                        code: ErrorCode::InvalidParams,
                        message: format!("session `{session_id}` already exists"),
                    });
                }
                let ownership = Ownership {
                    lease,
                    epoch: 1,
                    journal_next: 0,
                    redo: Default::default(),
                    checkpointed: 0,
                    state: StoredState::Ready,
                    pacing: None,
                    acked: 0,
                };
                let facts = Started {
                    session_id,
                    user_id,
                    params_json: spec.params_json,
                    timeframe: spec.timeframe,
                    start: spec.start,
                    end: spec.end,
                    config,
                    max_duration,
                    owner,
                };
                Ok(act.start_session(facts, engine, slice, ownership, arbiter, ctx))
            });
        Box::pin(fut)
    }
}

/// Takes a new session id (store key `key`) in the store. A tombstone of a deleted
/// session with the same id is taken over; a stored live session is not.
async fn claim_new(
    store: &dyn SessionStore,
    key: &str,
    session_id: &str,
    node: &str,
    ttl: StoreTtl,
) -> Result<Lease, CreateError> {
    let taken = || CreateError {
        code: ErrorCode::InvalidParams,
        message: format!("session `{session_id}` already exists"),
    };
    match store.acquire(key, node, 0, ttl).await {
        Ok(lease) => Ok(lease),
        Err(StoreError::Conflict { current }) => match store.load(key).await {
            Ok(None) => store
                .acquire(key, node, current, ttl)
                .await
                .map_err(|e| store_busy(&e, taken)),
            Ok(Some(_)) => Err(taken()),
            Err(e) => Err(store_busy(&e, taken)),
        },
        Err(e) => Err(store_busy(&e, taken)),
    }
}

/// A store failure while creating: a lost race is the id's; otherwise the store is
/// unreachable and new sessions are refused until it answers.
fn store_busy(e: &StoreError, taken: impl Fn() -> CreateError) -> CreateError {
    match e {
        StoreError::Conflict { .. } => taken(),
        e => {
            tracing::warn!(error = %e, "session store unavailable; refusing new sessions");
            CreateError {
                code: ErrorCode::ServiceBusy,
                message: "session storage is unavailable; try again shortly".into(),
            }
        }
    }
}
