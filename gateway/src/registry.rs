//! Where sessions are created, found and supervised.
//!
//! The registry is one actor that knows every live session of this node and its owner.
//! A session actor runs on the arbiter of the connection that created it (an actix-web
//! worker thread; connections are spread over one worker per core), so ticks and acks
//! never cross threads; sessions created without a connection use a pool of arbiters.
//! Either way the session is its own actor: the connection dropping does not take it
//! along.
//!
//! Session ids are unique per user, not across users: the registry keys sessions by
//! (user id, session id) and the session store by [`store_key`], so two users may both
//! name a session `my-session`, and an id another user holds answers exactly like one
//! nobody holds (`SESSION_NOT_FOUND`): nobody can block or probe someone else's ids.
//!
//! When a run finishes, the registry stores its results through [`ResultStore`] in a
//! spawned future, so neither the session nor the registry waits for the database. Until
//! the write has committed, the results are served from memory ([`FindSession`]), so a
//! client that asks over REST right after `simulation_end` always finds them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use actix::fut::wrap_future;
use actix::{
    Actor, ActorFutureExt, Addr, Arbiter, ArbiterHandle, AsyncContext, Context, Handler, Message,
    ResponseActFuture,
};
use auth::{AuthError, Database, ResultStore, SimulationRecord};
use chrono::{DateTime, Utc};
use market_data::{
    filter_market_hours, Amount, GetSlice, MarketDataActor, MarketDataError, MarketHours, Price,
    Slice, SliceRequest, Timeframe, Timestamp,
};
use protocol::ErrorCode;
use session_actor::actor::{
    Close, Lifecycle, LifecycleKind, Ownership, SessionActor, SessionConfig, Shutdown,
};
use session_actor::engine::{periods_per_year, session_calendar, SimulationResults};
use session_actor::store::{
    recover, Lease, RecoverError, SessionStore, StoreError, StoreTtl, StoredState,
};
use session_actor::{Engine, EngineConfig};
use uuid::Uuid;

use crate::config::Settings;
use crate::errors::log_chain;
use crate::limits::{ClusterCounts, Kind};
use crate::metrics::Metrics;
use crate::results::{finished_record, SessionFacts};

/// What a client asked for, already parsed (`start_simulation` / `create_session`).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSpec {
    /// Client-chosen id, or None to generate one.
    pub session_id: Option<String>,
    /// Symbols.
    pub symbols: Vec<String>,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// First bar (inclusive).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
    /// Warm-up bars per symbol.
    pub warmup_bars: usize,
    /// Starting cash.
    pub initial_capital: Amount,
    /// Data provider; None for the default.
    pub data_provider: Option<String>,
    /// Commission per share; None for the configured default.
    pub commission_per_share: Option<Price>,
    /// Slippage; None for the configured default.
    pub slippage_bps: Option<u32>,
    /// Shorting allowed.
    pub allow_short: bool,
    /// Periodic account snapshots.
    pub account_snapshot_every: u32,
    /// The request as JSON, stored with the session.
    pub params_json: String,
    /// Which intraday equity bars the session sees.
    pub market_hours: MarketHours,
}

impl SessionSpec {
    /// The spec of a `start_simulation` / `create_session` request.
    pub fn from_params(session_id: Option<String>, params: &protocol::SessionParams) -> Self {
        SessionSpec {
            session_id,
            symbols: params.symbols.clone(),
            timeframe: params.timeframe,
            start: params.start_date,
            end: params.end_date,
            warmup_bars: params.warmup_bars as usize,
            initial_capital: params.initial_capital,
            data_provider: params.data_provider.clone(),
            commission_per_share: params.commission_per_share,
            slippage_bps: params.slippage_bps,
            allow_short: params.allow_short,
            account_snapshot_every: params.account_snapshot_every,
            // Plain data; serializing it cannot fail.
            params_json: serde_json::to_string(params).unwrap_or_default(),
            market_hours: params.market_hours,
        }
    }

    /// The market data the session runs on.
    pub fn slice_request(&self) -> SliceRequest {
        SliceRequest {
            provider: self.data_provider.clone(),
            symbols: self.symbols.clone(),
            timeframe: self.timeframe,
            start: self.start,
            end: self.end,
            warmup_bars: self.warmup_bars,
        }
    }
}

/// Why a session could not be created; `code` is the PROTOCOL.md `error_code`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CreateError {
    /// `INVALID_PARAMS`, `VALIDATION_ERROR`, `DATA_FETCH_FAILED`, `SESSION_CREATE_FAILED`
    /// or `SERVICE_BUSY`.
    pub code: ErrorCode,
    /// Safe to show to the client.
    pub message: String,
}

/// A created session.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    /// Session id.
    pub session_id: String,
    /// The actor.
    pub addr: Addr<SessionActor>,
    /// The parameters the session runs with.
    pub config: EngineConfig,
    /// Bars in the run.
    pub ticks_total: u64,
    /// Bar duration.
    pub timeframe: Timeframe,
    /// Requested start.
    pub start: Timestamp,
    /// Requested end.
    pub end: Timestamp,
    /// Creation time (Unix seconds).
    pub created_at: Timestamp,
}

struct Entry {
    user_id: String,
    handle: SessionHandle,
    live: bool,
    /// Deleted by its owner: hidden from lookups, results not stored; the entry goes
    /// when the actor has stopped, so the id stays taken until then.
    closing: bool,
    /// The start request as JSON.
    params_json: String,
    /// Creation time, more precise than `handle.created_at`.
    created: DateTime<Utc>,
}

/// Results on their way to the database.
struct PendingSave {
    record: Arc<SimulationRecord>,
    /// Deleted by its owner meanwhile: delete the row once it has been written.
    deleted: bool,
    /// Tells a save from a later one of the same (user, session id).
    generation: u64,
}

/// A results write that fails because the database is unavailable is retried, the
/// pause doubling from half a second to 30 s, for up to 15 minutes; the results stay
/// readable from memory meanwhile.
const SAVE_RETRY_FIRST: Duration = Duration::from_millis(500);
const SAVE_RETRY_MAX: Duration = Duration::from_secs(30);
const SAVE_GIVE_UP: Duration = Duration::from_secs(15 * 60);

/// Supervisor of this node's sessions.
pub struct SessionRegistry {
    settings: Arc<Settings>,
    market: Addr<MarketDataActor>,
    store: Arc<dyn SessionStore>,
    node_id: String,
    /// Shutting down: no new sessions.
    draining: bool,
    /// Per-user counts across the cluster.
    counts: Option<Arc<ClusterCounts>>,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    /// Keyed by (user id, session id).
    sessions: HashMap<(String, String), Entry>,
    created: u64,
    results: Option<Database>,
    /// Keyed by (user id, session id).
    pending: HashMap<(String, String), PendingSave>,
    saves: u64,
    metrics: Option<Arc<Metrics>>,
}

impl SessionRegistry {
    /// A registry running sessions on `workers` arbiters.
    pub fn new(
        settings: Arc<Settings>,
        market: Addr<MarketDataActor>,
        store: Arc<dyn SessionStore>,
        workers: usize,
    ) -> Self {
        SessionRegistry {
            node_id: settings.node_id(),
            draining: false,
            counts: None,
            settings,
            market,
            store,
            arbiters: (0..workers.max(1)).map(|_| Arbiter::new()).collect(),
            next_arbiter: 0,
            sessions: HashMap::new(),
            created: 0,
            results: None,
            pending: HashMap::new(),
            saves: 0,
            metrics: None,
        }
    }

    /// Reports live sessions, and has sessions report ticks, fills and round trips.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Publishes the number of live sessions (after a session started or ended).
    fn report_live(&self) {
        if let Some(m) = &self.metrics {
            m.set_sessions_active(self.sessions.values().filter(|e| e.live).count());
        }
    }

    /// Counts sessions per user across the cluster.
    pub fn with_counts(mut self, counts: Option<Arc<ClusterCounts>>) -> Self {
        self.counts = counts;
        self
    }

    /// Stores the results of finished runs in `db`; without it they are only sent to
    /// the connection.
    pub fn with_results(mut self, db: Database) -> Self {
        self.results = Some(db);
        self
    }

    fn live_sessions_of(&self, user_id: &str) -> usize {
        self.sessions
            .values()
            .filter(|e| e.live && e.user_id == user_id)
            .count()
    }

    /// The engine parameters of `spec`, with the plan's cap on working orders.
    fn engine_config(
        &self,
        spec: &SessionSpec,
        max_working_orders: Option<u32>,
    ) -> Result<EngineConfig, CreateError> {
        let sim = &self.settings.simulation;
        let invalid = |m: String| CreateError {
            code: ErrorCode::InvalidParams,
            message: m,
        };
        let mut config = EngineConfig::new(spec.symbols.clone(), spec.initial_capital);
        config.commission_per_share = match spec.commission_per_share {
            Some(c) => c,
            None => sim
                .default_commission_per_share
                .parse()
                .map_err(|_| invalid("bad default commission".into()))?,
        };
        config.min_commission = sim
            .min_commission
            .parse()
            .map_err(|_| invalid("bad minimum commission".into()))?;
        config.slippage_bps = spec.slippage_bps.unwrap_or(sim.default_slippage_bps);
        config.allow_short = spec.allow_short;
        config.max_volume_participation_bps =
            (sim.max_volume_participation_bps > 0).then_some(sim.max_volume_participation_bps);
        config.periods_per_year = periods_per_year(spec.timeframe, session_calendar(&spec.symbols));
        config.account_snapshot_every = spec.account_snapshot_every;
        config.max_working_orders = max_working_orders;
        config.validate().map_err(|e| CreateError {
            code: ErrorCode::ValidationError,
            message: e.to_string(),
        })?;
        Ok(config)
    }
}

impl Actor for SessionRegistry {
    type Context = Context<Self>;
}

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
                    let counts = act.counts.clone();
                    let (node, ttl) = (act.node_id.clone(), act.store_ttl());
                    wrap_future::<_, Self>(async move {
                        let prepared = prepared?;
                        let key = store_key(&user_id, &prepared.0);
                        let lease =
                            claim_new(store.as_ref(), &key, &prepared.0, &node, ttl).await?;
                        if let Err(e) =
                            count_session(counts.as_deref(), &user_id, &prepared.0, max_sessions)
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

/// What a new or taken-over session actor is started with.
struct Started {
    session_id: String,
    user_id: String,
    params_json: String,
    timeframe: Timeframe,
    start: Timestamp,
    end: Timestamp,
    config: EngineConfig,
    max_duration: Duration,
    /// Closes when the connection that created or resumed it is gone.
    owner: Option<watch::Receiver<()>>,
}

/// Where the session store keeps `session_id` of `user_id`: the user's id, a slash,
/// then the session id. User ids are UUIDs (no slash), so the first slash splits the
/// key unambiguously and users' ids never collide.
pub fn store_key(user_id: &str, session_id: &str) -> String {
    format!("{user_id}/{session_id}")
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

/// Counts a session against the user's limit across the cluster (when Redis is
/// configured); `Err` with the message when the limit is reached. Without an answer
/// from Redis this node's own count applies.
async fn count_session(
    counts: Option<&ClusterCounts>,
    user_id: &str,
    session_id: &str,
    max_sessions: u32,
) -> Result<(), String> {
    let Some(counts) = counts else {
        return Ok(());
    };
    match counts
        .acquire(Kind::Sessions, user_id, session_id, max_sessions)
        .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(running)) => Err(format!(
            "concurrent session limit of {max_sessions} reached ({running} running across the cluster)"
        )),
        Err(e) => {
            tracing::warn!(error = %e, "cluster-wide session count unavailable; this node's count applies");
            Ok(())
        }
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

impl SessionRegistry {
    fn store_ttl(&self) -> StoreTtl {
        StoreTtl {
            lease: Duration::from_millis(self.settings.session_store.lease_ms),
            state: Duration::from_secs(self.settings.simulation.resume_grace_sec),
        }
    }

    /// Gives a session's cluster-wide slot back.
    fn release_count(&self, user_id: &str, session_id: &str) {
        if let Some(counts) = &self.counts {
            counts.release(Kind::Sessions, user_id, session_id);
        }
    }

    /// Gives a lease back in the background (a session that was not started after all).
    fn release(&self, lease: Lease) {
        let store = Arc::clone(&self.store);
        actix::spawn(async move {
            let _ = store.release(&lease).await;
        });
    }

    /// The slice of a session, filtered to its market hours.
    fn slice_for(
        &self,
        request: SliceRequest,
        hours: MarketHours,
    ) -> impl std::future::Future<Output = Result<Arc<Slice>, CreateError>> + 'static {
        let market = self.market.clone();
        async move {
            match market.send(GetSlice(request)).await {
                Ok(Ok(slice)) if hours == MarketHours::All => Ok(slice),
                Ok(Ok(slice)) => {
                    let filtered = filter_market_hours(&slice, hours);
                    if filtered.steps.is_empty() {
                        return Err(CreateError {
                            code: ErrorCode::DataFetchFailed,
                            message:
                                "no bars in the requested range within the requested market hours"
                                    .into(),
                        });
                    }
                    Ok(Arc::new(filtered))
                }
                Ok(Err(e)) => Err(slice_error(e)),
                Err(_) => Err(CreateError {
                    code: ErrorCode::SessionCreateFailed,
                    message: "market data unavailable".into(),
                }),
            }
        }
    }

    /// Starts a session actor and registers it.
    fn start_session(
        &mut self,
        mut facts: Started,
        engine: Engine,
        slice: Arc<Slice>,
        ownership: Ownership,
        arbiter: Option<ArbiterHandle>,
        ctx: &mut Context<Self>,
    ) -> SessionHandle {
        let store_settings = &self.settings.session_store;
        let session_config = SessionConfig {
            session_id: facts.session_id.clone(),
            user_id: facts.user_id.clone(),
            params: facts.params_json.clone(),
            grace: Duration::from_secs(self.settings.simulation.resume_grace_sec),
            max_duration: facts.max_duration,
            batch_steps: 256,
            replay_outputs: self.settings.server.outbound_queue * 8,
            observer: Some(ctx.address().recipient()),
            store_ttl: self.store_ttl(),
            checkpoint_ticks: store_settings.checkpoint_every_ticks,
            checkpoint_interval: Duration::from_millis(store_settings.checkpoint_every_ms),
        };
        let arbiter = match arbiter {
            Some(a) => a,
            None => {
                self.next_arbiter += 1;
                self.arbiters[self.next_arbiter % self.arbiters.len()].handle()
            }
        };
        let store = Arc::clone(&self.store);
        let ticks_total = slice.steps.len() as u64;
        let metrics = self.metrics.clone();
        let owner = facts.owner.take();
        let addr = SessionActor::start_in_arbiter(&arbiter, move |_| {
            let mut actor =
                SessionActor::new(session_config, engine, slice, store).with_ownership(ownership);
            if let Some(owner) = owner {
                actor = actor.with_owner(owner);
            }
            match metrics {
                Some(m) => actor.with_metrics(m),
                None => actor,
            }
        });
        let created = Utc::now();
        let handle = SessionHandle {
            session_id: facts.session_id.clone(),
            addr,
            config: facts.config,
            ticks_total,
            timeframe: facts.timeframe,
            start: facts.start,
            end: facts.end,
            created_at: created.timestamp(),
        };
        self.sessions.insert(
            (facts.user_id.clone(), facts.session_id),
            Entry {
                user_id: facts.user_id,
                handle: handle.clone(),
                live: true,
                closing: false,
                params_json: facts.params_json,
                created,
            },
        );
        self.report_live();
        handle
    }
}

fn slice_error(e: MarketDataError) -> CreateError {
    use MarketDataError::*;
    let code = match e {
        EmptySymbols
        | DuplicateSymbol(_)
        | InvalidRange { .. }
        | TimeframeTooFine { .. }
        | UnknownProvider(_) => ErrorCode::InvalidParams,
        _ => ErrorCode::DataFetchFailed,
    };
    CreateError {
        code,
        message: e.to_string(),
    }
}

/// Unique, unguessable-enough session id: time, node counter and randomness from the
/// hasher's per-process keys.
fn new_session_id(counter: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(counter);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    format!("sess_{:016x}{:08x}", h.finish(), counter as u32)
}

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
                let counts = act.counts.clone();
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
                    if let Err(e) = count_session(counts.as_deref(), &user, &session_id, max).await
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

/// The node is shutting down: refuse new sessions and resumes, and have every session
/// store itself and give up its lease. Answers with the number of sessions stored.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Drain;

impl Handler<Drain> for SessionRegistry {
    type Result = actix::ResponseFuture<usize>;
    fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) -> Self::Result {
        self.draining = true;
        // `send` queues each message at once, so the sessions store concurrently.
        let pending: Vec<_> = self
            .sessions
            .values()
            .filter(|e| e.live)
            .map(|e| e.handle.addr.send(Shutdown))
            .collect();
        Box::pin(async move {
            let mut stored = 0;
            for p in pending {
                if p.await.is_ok() {
                    stored += 1;
                }
            }
            stored
        })
    }
}

/// Results of finished sessions still being written to the database.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct PendingSaves;

impl Handler<PendingSaves> for SessionRegistry {
    type Result = usize;
    fn handle(&mut self, _: PendingSaves, _ctx: &mut Context<Self>) -> usize {
        self.pending.len()
    }
}

/// The sessions of one user: (id, live).
#[derive(Message)]
#[rtype(result = "Vec<(String, bool)>")]
pub struct ListSessions {
    /// Owner.
    pub user_id: String,
}

impl Handler<ListSessions> for SessionRegistry {
    type Result = actix::MessageResult<ListSessions>;
    fn handle(&mut self, msg: ListSessions, _ctx: &mut Context<Self>) -> Self::Result {
        let mut v: Vec<(String, bool)> = self
            .sessions
            .iter()
            .filter(|((user, _), e)| *user == msg.user_id && !e.closing)
            .map(|((_, id), e)| (id.clone(), e.live))
            .collect();
        v.sort();
        actix::MessageResult(v)
    }
}

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
                    self.store_results(&key, &results, ctx);
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
    /// Starts writing the results of a finished run; they stay readable from memory
    /// until the write has committed.
    fn store_results(
        &mut self,
        key: &(String, String),
        results: &SimulationResults,
        ctx: &mut Context<Self>,
    ) {
        let (Some(db), Some(e)) = (self.results.clone(), self.sessions.get(key)) else {
            return;
        };
        let session_id = key.1.as_str();
        let Ok(user_id) = e.user_id.parse::<Uuid>() else {
            tracing::warn!(session_id, user_id = %e.user_id, "results not stored: user id is not a UUID");
            return;
        };
        let h = &e.handle;
        let facts = SessionFacts {
            session_id: session_id.to_string(),
            user_id,
            params_json: e.params_json.clone(),
            symbols: h.config.symbols.clone(),
            timeframe: h.timeframe,
            start: h.start,
            end: h.end,
            initial_capital: h.config.initial_capital,
            created_at: e.created,
        };
        let record = match finished_record(&facts, results, Utc::now()) {
            Ok(r) => Arc::new(r),
            Err(err) => {
                tracing::error!(session_id, user_id = %user_id, error = %err, "results not stored: cannot encode them");
                return;
            }
        };
        let key = (e.user_id.clone(), session_id.to_string());
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

/// What this node holds of one user's session.
#[derive(Clone, Debug)]
pub enum LocalSession {
    /// Created and not finished (ready, running or paused).
    Live {
        /// The session.
        handle: Box<SessionHandle>,
        /// The start request as JSON.
        params_json: String,
    },
    /// Finished; its results are still being written to the database.
    Finished(Arc<SimulationRecord>),
}

/// Finds a session of `user_id` that only this node can answer for: live here, or
/// finished with results not yet in the database. `None` means: ask the database.
/// Another user's session is `None` too.
#[derive(Message)]
#[rtype(result = "Option<LocalSession>")]
pub struct FindSession {
    /// Session id.
    pub session_id: String,
    /// Who asks.
    pub user_id: String,
}

impl Handler<FindSession> for SessionRegistry {
    type Result = Option<LocalSession>;
    fn handle(&mut self, msg: FindSession, _ctx: &mut Context<Self>) -> Self::Result {
        let key = (msg.user_id, msg.session_id);
        match self.sessions.get(&key) {
            Some(e) if e.live && !e.closing => {
                return Some(LocalSession::Live {
                    handle: Box::new(e.handle.clone()),
                    params_json: e.params_json.clone(),
                })
            }
            _ => {}
        }
        self.pending
            .get(&key)
            .filter(|p| !p.deleted)
            .map(|p| LocalSession::Finished(Arc::clone(&p.record)))
    }
}

/// Every session of `user_id` that only this node can answer for (see [`FindSession`]).
#[derive(Message)]
#[rtype(result = "Vec<LocalSession>")]
pub struct LocalSessions {
    /// Owner.
    pub user_id: String,
}

impl Handler<LocalSessions> for SessionRegistry {
    type Result = actix::MessageResult<LocalSessions>;
    fn handle(&mut self, msg: LocalSessions, _ctx: &mut Context<Self>) -> Self::Result {
        let live = self
            .sessions
            .values()
            .filter(|e| e.user_id == msg.user_id && e.live && !e.closing)
            .map(|e| LocalSession::Live {
                handle: Box::new(e.handle.clone()),
                params_json: e.params_json.clone(),
            });
        let finished = self
            .pending
            .iter()
            .filter(|((user, _), p)| *user == msg.user_id && !p.deleted)
            .map(|(_, p)| LocalSession::Finished(Arc::clone(&p.record)));
        actix::MessageResult(live.chain(finished).collect())
    }
}

/// Closes a session of `user_id` on this node (live, or finished and kept for resume)
/// and forgets results not yet written. Answers whether there was anything to delete;
/// the caller deletes stored results itself.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct DeleteSession {
    /// Session id.
    pub session_id: String,
    /// Who asks.
    pub user_id: String,
}

impl Handler<DeleteSession> for SessionRegistry {
    type Result = bool;
    fn handle(&mut self, msg: DeleteSession, _ctx: &mut Context<Self>) -> bool {
        let mut found = false;
        let key = (msg.user_id, msg.session_id);
        if let Some(e) = self.sessions.get_mut(&key) {
            if !e.closing {
                e.closing = true;
                e.handle.addr.do_send(Close);
                found = true;
            }
        }
        if let Some(p) = self.pending.get_mut(&key) {
            found |= !p.deleted;
            p.deleted = true;
        }
        found
    }
}

/// A live session of this node, as operators see it (any owner).
#[derive(Clone, Debug)]
pub struct LiveEntry {
    /// Owner.
    pub user_id: String,
    /// The session.
    pub handle: SessionHandle,
    /// Creation time.
    pub created: DateTime<Utc>,
}

/// Every live (created, not finished, not being closed) session of this node, of every
/// user, oldest first: what `GET /admin/sessions` lists for this node.
#[derive(Message)]
#[rtype(result = "Vec<LiveEntry>")]
pub struct AllLiveSessions;

impl Handler<AllLiveSessions> for SessionRegistry {
    type Result = actix::MessageResult<AllLiveSessions>;
    fn handle(&mut self, _: AllLiveSessions, _ctx: &mut Context<Self>) -> Self::Result {
        let mut live: Vec<LiveEntry> = self
            .sessions
            .values()
            .filter(|e| e.live && !e.closing)
            .map(|e| LiveEntry {
                user_id: e.user_id.clone(),
                handle: e.handle.clone(),
                created: e.created,
            })
            .collect();
        live.sort_by(|a, b| {
            (a.created, &a.handle.session_id).cmp(&(b.created, &b.handle.session_id))
        });
        actix::MessageResult(live)
    }
}

/// An operator stops a live session of this node, whoever owns it: the run ends as if
/// its client had sent `stop_simulation` (`simulation_end` with reason `stopped` to an
/// attached client; results stored). Answers the owner's id, or `None` when the
/// session is not live here.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct StopLiveSession {
    /// Session id.
    pub session_id: String,
    /// Its owner. `None` stops the only live session with this id here; when several
    /// users have one, none is stopped (the caller resolves the owner first, see
    /// [`crate::control::Control::stop`]).
    pub user_id: Option<String>,
}

impl Handler<StopLiveSession> for SessionRegistry {
    type Result = Option<String>;
    fn handle(&mut self, msg: StopLiveSession, _ctx: &mut Context<Self>) -> Option<String> {
        let mut matching = self.sessions.iter().filter(|((user, id), e)| {
            *id == msg.session_id
                && msg.user_id.as_ref().is_none_or(|u| u == user)
                && e.live
                && !e.closing
        });
        let (_, e) = matching.next()?;
        if matching.next().is_some() {
            return None;
        }
        tracing::info!(session_id = %msg.session_id, user_id = %e.user_id, "session stopped by an operator");
        e.handle.addr.do_send(session_actor::actor::Stop);
        Some(e.user_id.clone())
    }
}
