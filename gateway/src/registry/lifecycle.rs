//! What happens as sessions run and end: the results of a finished run written to the
//! database with retries, served from memory until they have committed.

use super::*;

/// A results write that fails because the database is unavailable is retried, the
/// pause doubling from half a second to 30 s, for up to 15 minutes; the results stay
/// readable from memory meanwhile.
const SAVE_RETRY_FIRST: Duration = Duration::from_millis(500);
const SAVE_RETRY_MAX: Duration = Duration::from_secs(30);
const SAVE_GIVE_UP: Duration = Duration::from_secs(15 * 60);

impl Handler<Lifecycle> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, msg: Lifecycle, ctx: &mut Context<Self>) {
        let key = (msg.user_id, msg.session_id);
        match msg.kind {
            LifecycleKind::Finished(results) => {
                let Some(e) = self.sessions.get_mut(&key) else {
                    return;
                };
                e.live = false;
                let closing = e.closing;
                self.release_count(&key.0, &key.1);
                self.report_live();
                if !closing {
                    if let Some(facts) = self.finished_facts(&key) {
                        self.store_results(facts, &results, ctx);
                    }
                }
            }
            LifecycleKind::Stopped => {
                if let Some(e) = self.sessions.remove(&key) {
                    if e.live {
                        self.release_count(&e.user_id, &key.1);
                        self.report_live();
                    }
                }
            }
        }
    }
}

impl SessionRegistry {
    /// The record facts of the finished session `key`, or `None` when its results are
    /// not to be stored.
    fn finished_facts(&self, key: &(String, String)) -> Option<SessionFacts> {
        let e = self.sessions.get(key)?;
        let session_id = key.1.as_str();
        let Ok(user_id) = e.user_id.parse::<Uuid>() else {
            tracing::warn!(session_id, user_id = %e.user_id, "results not stored: user id is not a UUID");
            return None;
        };
        let h = &e.handle;
        Some(SessionFacts {
            session_id: session_id.to_string(),
            user_id,
            params_json: e.params_json.clone(),
            symbols: h.config.symbols.clone(),
            timeframe: h.timeframe,
            start: h.start,
            end: h.end,
            initial_capital: h.config.initial_capital,
            created_at: e.created,
        })
    }

    /// Starts writing the results of a finished run (a session or a backtest); they
    /// stay readable from memory until the write has committed.
    pub(super) fn store_results(
        &mut self,
        facts: SessionFacts,
        results: &SimulationResults,
        ctx: &mut Context<Self>,
    ) {
        let Some(db) = self.results.clone() else {
            return;
        };
        let (session_id, user_id) = (facts.session_id.as_str(), facts.user_id);
        let record = match finished_record(&facts, results, Utc::now()) {
            Ok(r) => Arc::new(r),
            Err(err) => {
                tracing::error!(session_id, user_id = %user_id, error = %err, "results not stored: cannot encode them");
                return;
            }
        };
        let key = (user_id.to_string(), session_id.to_string());
        self.saves += 1;
        let generation = self.saves;
        self.pending.insert(
            key.clone(),
            PendingSave {
                record: Arc::clone(&record),
                deleted: false,
                generation,
            },
        );
        let write = {
            let db = db.clone();
            async move { save_with_retries(&db, &record).await }
        };
        let fut = wrap_future::<_, Self>(write).map(move |outcome, act, ctx| {
            let (user, sid) = &key;
            if act.pending.get(&key).map(|p| p.generation) != Some(generation) {
                return;
            }
            let Some(pending) = act.pending.remove(&key) else {
                return;
            };
            match outcome {
                Ok(()) => {
                    tracing::debug!(session_id = %sid, user_id = %user, "results stored");
                    if pending.deleted {
                        // Deleted while the write was in flight: delete the row too.
                        let (sid, user) = (sid.clone(), user_id);
                        ctx.spawn(wrap_future(async move {
                            match db.delete_result(user, &sid).await {
                                Ok(()) | Err(AuthError::NotFound) => {}
                                Err(e) => {
                                    tracing::error!(session_id = %sid, user_id = %user, "could not delete results deleted during their write");
                                    log_chain(&e);
                                }
                            }
                        }));
                    }
                }
                Err(e) => {
                    tracing::error!(session_id = %sid, user_id = %user, "could not store session results");
                    log_chain(&e);
                }
            }
        });
        ctx.spawn(fut);
    }
}

/// Writes `record`, retrying when the database itself failed (not when it refused the
/// record).
async fn save_with_retries(db: &Database, record: &SimulationRecord) -> Result<(), AuthError> {
    let started = std::time::Instant::now();
    let mut pause = SAVE_RETRY_FIRST;
    let mut attempt = 1;
    loop {
        match db.save_result(record.clone()).await {
            Err(AuthError::Database(e)) if started.elapsed() + pause < SAVE_GIVE_UP => {
                tracing::warn!(session_id = %record.summary.session_id, attempt, error = %e, "storing session results failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(SAVE_RETRY_MAX);
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}
