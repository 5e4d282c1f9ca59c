//! Backtests run on the server: a built-in strategy driven by the same engine, on a
//! bounded pool of worker threads, counted against the plan's live sessions like any
//! session, and stored like any session's results when they end.
//!
//! At most `simulation.backtest_workers` run at once on a node (each holds one core
//! while it runs); up to `simulation.backtest_queue` more wait for a worker, and beyond
//! that new ones are refused as busy. A running backtest publishes how many bars it has
//! processed every [`CONTROL_EVERY_BARS`](engine::strategy::CONTROL_EVERY_BARS) bars and checks then whether it was cancelled
//! or has run into the plan's wall-clock limit, so progress is fresh and a cancel takes
//! effect within a millisecond or so of engine time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use engine::strategy::{run_controlled, Strategy};
use engine::EndReason;
use protocol::{BacktestState, BacktestStatus, SessionDetail, SessionEntry, SimulationState};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use super::*;

/// A worker slot for each running backtest, shared by the node's registry.
#[derive(Debug)]
pub struct BacktestPool {
    workers: Arc<Semaphore>,
    /// Running plus waiting backtests this node accepts.
    capacity: usize,
}

impl BacktestPool {
    /// `workers` at once (0: one per core), `queue` more waiting.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = match workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        BacktestPool {
            workers: Arc::new(Semaphore::new(workers)),
            capacity: workers + queue,
        }
    }
}

/// What a running backtest shares with whoever asks about it.
#[derive(Debug, Default)]
struct Progress {
    done: AtomicU64,
    running: AtomicBool,
    cancel: AtomicBool,
}

/// A backtest accepted by this node and not finished yet.
pub(super) struct BacktestEntry {
    facts: SessionFacts,
    strategy: String,
    params: Map<String, Value>,
    ticks_total: u64,
    progress: Arc<Progress>,
    /// Deleted by its owner: cancelled, and its results are not stored.
    closing: bool,
}

/// A backtest as the routes see it, while it is queued or running.
#[derive(Clone, Debug)]
pub struct BacktestView {
    /// Its fixed facts (owner, symbols, range, capital, the request as JSON).
    pub facts: SessionFacts,
    /// Queued or running.
    pub state: BacktestState,
    /// Strategy id.
    pub strategy: String,
    /// Resolved strategy parameters.
    pub params: Map<String, Value>,
    /// Bars processed so far.
    pub ticks_processed: u64,
    /// Bars in the run.
    pub ticks_total: u64,
    /// A cancel was asked for.
    pub cancel_requested: bool,
}

impl BacktestView {
    /// Its `/api/sessions` list entry: `ready` while queued, `running` while run.
    pub fn entry(&self) -> SessionEntry {
        let f = &self.facts;
        SessionEntry {
            session_id: f.session_id.clone(),
            state: match self.state {
                BacktestState::Queued => SimulationState::Ready,
                _ => SimulationState::Running,
            },
            symbols: f.symbols.clone(),
            timeframe: f.timeframe,
            start_date: f.start,
            end_date: f.end,
            created_at: f.created_at.timestamp(),
            initial_capital: f.initial_capital,
            finished_at: None,
            reason: None,
            final_equity: None,
            total_return_pct: None,
            total_trades: None,
            sequence_id: Some(self.ticks_processed),
            ticks_total: Some(self.ticks_total),
        }
    }

    /// Its `GET /api/sessions/{id}` body: the entry, the request and the progress.
    pub fn detail(&self) -> SessionDetail {
        SessionDetail {
            session: self.entry(),
            params: serde_json::from_str(&self.facts.params_json).unwrap_or(Value::Null),
            sim_time: None,
            progress_pct: Some(progress_pct(self.ticks_processed, self.ticks_total)),
            metrics: None,
            trades: None,
            equity_curve: None,
            analytics: None,
        }
    }

    /// The `GET /api/backtests/{id}` body.
    pub fn status(&self) -> BacktestStatus {
        BacktestStatus {
            session_id: self.facts.session_id.clone(),
            state: self.state,
            strategy: self.strategy.clone(),
            params: self.params.clone(),
            ticks_processed: self.ticks_processed,
            ticks_total: self.ticks_total,
            progress_pct: progress_pct(self.ticks_processed, self.ticks_total),
            cancel_requested: self.cancel_requested,
            created_at: self.facts.created_at.timestamp(),
            finished_at: None,
            results_url: format!("/api/sessions/{}", self.facts.session_id),
        }
    }
}

/// `done` of `total` bars in percent, 0 for an empty run.
fn progress_pct(done: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64 * 100.0).min(100.0)
    }
}

impl BacktestEntry {
    fn view(&self) -> BacktestView {
        let p = &self.progress;
        BacktestView {
            facts: self.facts.clone(),
            state: if p.running.load(Ordering::Relaxed) {
                BacktestState::Running
            } else {
                BacktestState::Queued
            },
            strategy: self.strategy.clone(),
            params: self.params.clone(),
            ticks_processed: p.done.load(Ordering::Relaxed),
            ticks_total: self.ticks_total,
            cancel_requested: p.cancel.load(Ordering::Relaxed),
        }
    }
}

/// The metrics label of an end reason (its wire spelling).
fn reason_label(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Completed => "completed",
        EndReason::Stopped => "stopped",
        EndReason::MaxDuration => "max_duration",
        EndReason::Error => "error",
    }
}

/// Why a backtest was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BacktestRefusal {
    /// The user already has the plan's number of live sessions.
    #[error("{message}")]
    PlanLimit {
        /// The plan's `concurrent_sessions`.
        limit: u32,
        /// Safe to show.
        message: String,
    },
    /// This node cannot take it now (shutting down, or its queue is full).
    #[error("{0}")]
    Busy(String),
    /// The request cannot run (bad parameters, no data, too many bars).
    #[error("{0}")]
    Create(CreateError),
}

/// Runs `strategy` on `spec` on the server for `user_id`.
#[derive(Message)]
#[rtype(result = "Result<BacktestView, BacktestRefusal>")]
pub struct StartBacktest {
    /// Owner.
    pub user_id: String,
    /// The plan's limit on live sessions.
    pub max_sessions: u32,
    /// The plan's wall-clock limit of a run.
    pub max_duration: Duration,
    /// The plan's cap on working orders.
    pub max_working_orders: u32,
    /// The session to run on.
    pub spec: SessionSpec,
    /// The strategy, built and checked.
    pub strategy: Box<dyn Strategy + Send>,
    /// Its id.
    pub strategy_id: String,
    /// Its resolved parameters.
    pub params: Map<String, Value>,
}

impl Handler<StartBacktest> for SessionRegistry {
    type Result = ResponseActFuture<Self, Result<BacktestView, BacktestRefusal>>;

    fn handle(&mut self, msg: StartBacktest, _ctx: &mut Context<Self>) -> Self::Result {
        let StartBacktest {
            user_id,
            max_sessions,
            max_duration,
            max_working_orders,
            spec,
            strategy,
            strategy_id,
            params,
        } = msg;
        let early = (|| {
            if self.draining {
                return Err(BacktestRefusal::Busy(
                    "this node is shutting down; try again shortly".into(),
                ));
            }
            self.check_room_for_backtest(&user_id, max_sessions)?;
            if spec.warmup_bars > self.settings.simulation.max_warmup_bars {
                return Err(BacktestRefusal::Create(CreateError {
                    code: ErrorCode::ValidationError,
                    message: format!(
                        "warmup_bars may be at most {}",
                        self.settings.simulation.max_warmup_bars
                    ),
                }));
            }
            self.engine_config(&spec, Some(max_working_orders))
                .map_err(BacktestRefusal::Create)
        })();
        let config = match early {
            Ok(c) => c,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let max_bars = self.settings.simulation.max_bars;
        let slice = self.slice_for(spec.slice_request(), spec.market_hours);
        let fut = wrap_future::<_, Self>(slice)
            .map(move |slice, act, _| {
                let slice = slice.map_err(BacktestRefusal::Create)?;
                if slice.steps.len() > max_bars {
                    return Err(BacktestRefusal::Create(CreateError {
                        code: ErrorCode::ValidationError,
                        message: format!(
                            "the range holds {} bars; at most {max_bars} are allowed per session",
                            slice.steps.len(),
                        ),
                    }));
                }
                let engine = Engine::new(config.clone()).map_err(|e| {
                    BacktestRefusal::Create(CreateError {
                        code: ErrorCode::ValidationError,
                        message: e.to_string(),
                    })
                })?;
                act.created += 1;
                Ok((new_session_id(act.created), engine, slice, config))
            })
            .then({
                let user_id = user_id.clone();
                move |prepared, act, _| {
                    let concurrency = Arc::clone(&act.concurrency);
                    wrap_future::<_, Self>(async move {
                        let prepared = prepared?;
                        concurrency
                            .session(&user_id, &prepared.0, max_sessions)
                            .await
                            .map_err(|message| BacktestRefusal::PlanLimit {
                                limit: max_sessions,
                                message,
                            })?;
                        Ok(prepared)
                    })
                }
            })
            .map(move |prepared, act, ctx| {
                let (session_id, engine, slice, config) = prepared?;
                // Concurrent requests may have taken the last slot meanwhile.
                if let Err(e) = act.check_room_for_backtest(&user_id, max_sessions) {
                    act.release_count(&user_id, &session_id);
                    return Err(e);
                }
                let Ok(owner) = user_id.parse::<Uuid>() else {
                    act.release_count(&user_id, &session_id);
                    return Err(BacktestRefusal::Create(CreateError {
                        code: ErrorCode::SessionCreateFailed,
                        message: "backtests need a registered user".into(),
                    }));
                };
                let facts = SessionFacts {
                    session_id: session_id.clone(),
                    user_id: owner,
                    params_json: spec.params_json.clone(),
                    symbols: config.symbols.clone(),
                    timeframe: spec.timeframe,
                    start: spec.start,
                    end: spec.end,
                    initial_capital: config.initial_capital,
                    created_at: Utc::now(),
                };
                let entry = BacktestEntry {
                    facts,
                    strategy: strategy_id,
                    params,
                    ticks_total: slice.steps.len() as u64,
                    progress: Arc::default(),
                    closing: false,
                };
                let view = entry.view();
                let key = (user_id, session_id);
                act.run_backtest(
                    key.clone(),
                    &entry,
                    engine,
                    slice,
                    strategy,
                    max_duration,
                    ctx,
                );
                act.backtests.insert(key, entry);
                act.report_live();
                Ok(view)
            });
        Box::pin(fut)
    }
}

impl SessionRegistry {
    /// Room for one more backtest of `user_id` here: the plan's live sessions (this
    /// node's; the cluster's are counted by `Concurrency`) and the node's queue.
    fn check_room_for_backtest(
        &self,
        user_id: &str,
        max_sessions: u32,
    ) -> Result<(), BacktestRefusal> {
        if self.live_sessions_of(user_id) >= max_sessions as usize {
            return Err(BacktestRefusal::PlanLimit {
                limit: max_sessions,
                message: format!("concurrent session limit of {max_sessions} reached"),
            });
        }
        if self.backtests.len() >= self.backtest_pool.capacity {
            return Err(BacktestRefusal::Busy(
                "every backtest worker of this node is taken and its queue is full; try again shortly"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Waits for a worker, runs the backtest on it, and ends it.
    #[allow(clippy::too_many_arguments)]
    fn run_backtest(
        &mut self,
        key: (String, String),
        entry: &BacktestEntry,
        mut engine: Engine,
        slice: Arc<Slice>,
        mut strategy: Box<dyn Strategy + Send>,
        max_duration: Duration,
        ctx: &mut Context<Self>,
    ) {
        let workers = Arc::clone(&self.backtest_pool.workers);
        let progress = Arc::clone(&entry.progress);
        let job = async move {
            // The semaphore is never closed, so a permit always comes.
            // A backtest cancelled while queued stops before its first bar, so it
            // too ends as `stopped` with its (empty) results stored.
            let _permit = workers.acquire_owned().await.ok();
            progress.running.store(true, Ordering::Relaxed);
            tokio::task::spawn_blocking(move || {
                let deadline = Instant::now() + max_duration;
                let results = run_controlled(&mut engine, &slice, &mut strategy, |done| {
                    progress.done.store(done, Ordering::Relaxed);
                    if progress.cancel.load(Ordering::Relaxed) {
                        Some(EndReason::Stopped)
                    } else if Instant::now() >= deadline {
                        Some(EndReason::MaxDuration)
                    } else {
                        None
                    }
                });
                progress
                    .done
                    .store(results.metrics.ticks_processed, Ordering::Relaxed);
                results
            })
            .await
        };
        ctx.spawn(
            wrap_future::<_, Self>(job).map(move |outcome, act, ctx| {
                let Some(entry) = act.backtests.remove(&key) else {
                    return;
                };
                act.release_count(&key.0, &key.1);
                act.report_live();
                if let Some(m) = &act.metrics {
                    match &outcome {
                        Ok(r) => m.backtest_ended(reason_label(r.reason), r.metrics.ticks_processed),
                        Err(_) => m.backtest_ended("error", 0),
                    }
                }
                match outcome {
                    Ok(results) if !entry.closing => {
                        tracing::info!(session_id = %key.1, user_id = %key.0, strategy = %entry.strategy, reason = ?results.reason, ticks = results.metrics.ticks_processed, "backtest finished");
                        act.store_results(entry.facts, &results, ctx);
                    }
                    Ok(_) => {
                        tracing::info!(session_id = %key.1, user_id = %key.0, "backtest cancelled");
                    }
                    Err(e) => {
                        tracing::error!(session_id = %key.1, user_id = %key.0, error = %e, "backtest failed");
                    }
                }
            }),
        );
    }

    /// The queued or running backtest `key`, unless deleted.
    pub(super) fn backtest_view(&self, key: &(String, String)) -> Option<BacktestView> {
        self.backtests
            .get(key)
            .filter(|e| !e.closing)
            .map(BacktestEntry::view)
    }

    /// The queued or running backtests of `user_id`, unless deleted.
    pub(super) fn backtests_of<'a>(
        &'a self,
        user_id: &'a str,
    ) -> impl Iterator<Item = BacktestView> + 'a {
        self.backtests
            .iter()
            .filter(move |((user, _), e)| user == user_id && !e.closing)
            .map(|(_, e)| e.view())
    }

    /// Asks the backtest `key` to stop; `closing` also keeps its results from being
    /// stored. Whether there was one.
    pub(super) fn cancel_backtest(&mut self, key: &(String, String), closing: bool) -> bool {
        match self.backtests.get_mut(key) {
            Some(e) if !e.closing => {
                e.progress.cancel.store(true, Ordering::Relaxed);
                e.closing = closing;
                true
            }
            _ => false,
        }
    }

    /// Cancels every backtest (the node is shutting down); their results so far are
    /// stored.
    pub(super) fn cancel_all_backtests(&mut self) {
        for e in self.backtests.values() {
            e.progress.cancel.store(true, Ordering::Relaxed);
        }
    }
}

/// Cancels a queued or running backtest of `user_id`: the run stops within
/// [`CONTROL_EVERY_BARS`](engine::strategy::CONTROL_EVERY_BARS) bars and its results so far are stored (`stopped`). Answers
/// the backtest as it was when asked, or `None` when it is not queued or running here.
#[derive(Message)]
#[rtype(result = "Option<BacktestView>")]
pub struct CancelBacktest {
    /// Session id.
    pub session_id: String,
    /// Who asks.
    pub user_id: String,
}

impl Handler<CancelBacktest> for SessionRegistry {
    type Result = Option<BacktestView>;
    fn handle(&mut self, msg: CancelBacktest, _ctx: &mut Context<Self>) -> Self::Result {
        let key = (msg.user_id, msg.session_id);
        if !self.cancel_backtest(&key, false) {
            return None;
        }
        self.backtest_view(&key)
    }
}
