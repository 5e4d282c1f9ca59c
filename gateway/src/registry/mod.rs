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

mod backtest;
mod create;
mod drain;
mod lifecycle;
mod queries;
pub mod results;
mod resume;
mod spec;

pub use backtest::{BacktestPool, BacktestRefusal, BacktestView, CancelBacktest, StartBacktest};
pub use create::CreateSession;
pub use drain::{Drain, PendingSaves};
pub use queries::*;
pub use resume::*;
pub use spec::{CreateError, SessionSpec};

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
use engine::{periods_per_year, session_calendar, Engine, EngineConfig, SimulationResults};
use market_data::{filter_market_hours, GetSlice, MarketDataActor, MarketDataError, SliceRequest};
use model::{Amount, MarketHours, Price, Slice, Timeframe, Timestamp};
use protocol::ErrorCode;
use session_actor::actor::{
    Close, Lifecycle, LifecycleKind, Ownership, SessionActor, SessionConfig, Shutdown,
};
use session_actor::store::{
    recover, Lease, RecoverError, SessionStore, StoreError, StoreTtl, StoredState,
};
use uuid::Uuid;

use crate::config::Settings;
use crate::errors::log_chain;
use crate::limits::Concurrency;
use crate::metrics::Metrics;
use crate::registry::results::{finished_record, SessionFacts};

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

/// Supervisor of this node's sessions.
pub struct SessionRegistry {
    settings: Arc<Settings>,
    market: Addr<MarketDataActor>,
    store: Arc<dyn SessionStore>,
    node_id: String,
    /// Shutting down: no new sessions.
    draining: bool,
    /// Concurrent sessions per user across the cluster (this node's are `sessions`).
    concurrency: Arc<Concurrency>,
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
    /// Queued and running backtests, keyed by (user id, session id).
    backtests: HashMap<(String, String), backtest::BacktestEntry>,
    backtest_pool: BacktestPool,
}

impl SessionRegistry {
    /// A registry running sessions on `workers` arbiters.
    pub fn new(
        settings: Arc<Settings>,
        market: Addr<MarketDataActor>,
        store: Arc<dyn SessionStore>,
        workers: usize,
    ) -> Self {
        let backtest_pool = BacktestPool::new(
            settings.simulation.backtest_workers,
            settings.simulation.backtest_queue,
        );
        SessionRegistry {
            node_id: settings.node_id(),
            draining: false,
            concurrency: Arc::new(Concurrency::local()),
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
            backtests: HashMap::new(),
            backtest_pool,
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
            let sessions = self.sessions.values().filter(|e| e.live).count();
            m.set_sessions_active(sessions + self.backtests.len());
        }
    }

    /// Counts sessions per user across the cluster.
    pub fn with_concurrency(mut self, concurrency: Arc<Concurrency>) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Stores the results of finished runs in `db`; without it they are only sent to
    /// the connection.
    pub fn with_results(mut self, db: Database) -> Self {
        self.results = Some(db);
        self
    }

    /// Live sessions and backtests of `user_id` on this node.
    fn live_sessions_of(&self, user_id: &str) -> usize {
        let sessions = self
            .sessions
            .values()
            .filter(|e| e.live && e.user_id == user_id)
            .count();
        sessions + self.backtests.keys().filter(|(u, _)| u == user_id).count()
    }

    /// The engine parameters of `spec`, with the plan's cap on working orders.
    fn engine_config(
        &self,
        spec: &SessionSpec,
        max_working_orders: Option<u32>,
    ) -> Result<EngineConfig, CreateError> {
        let sim = &self.settings.simulation;
        let mut config = EngineConfig::new(spec.symbols.clone(), spec.initial_capital);
        config.commission_per_share = spec
            .commission_per_share
            .unwrap_or(sim.default_commission_per_share);
        config.min_commission = sim.min_commission;
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

impl SessionRegistry {
    fn store_ttl(&self) -> StoreTtl {
        StoreTtl {
            lease: Duration::from_millis(self.settings.session_store.lease_ms),
            state: Duration::from_secs(self.settings.simulation.resume_grace_sec),
        }
    }

    /// Gives a session's cluster-wide slot back.
    fn release_count(&self, user_id: &str, session_id: &str) {
        self.concurrency.release_session(user_id, session_id);
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
