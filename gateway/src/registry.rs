//! Where sessions are created, found and supervised.
//!
//! The registry is one actor that knows every live session of this node and its owner.
//! Session actors run on a small pool of arbiters (one per core), not on the registry's
//! thread or on the connection's worker, so sessions use every core and a connection
//! dropping does not take its session with it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::fut::wrap_future;
use actix::{
    Actor, ActorFutureExt, Addr, Arbiter, AsyncContext, Context, Handler, Message,
    ResponseActFuture,
};
use market_data::{
    Amount, GetSlice, MarketDataActor, MarketDataError, Price, SliceRequest, Timeframe, Timestamp,
};
use session_actor::actor::{Lifecycle, LifecycleKind, SessionActor, SessionConfig};
use session_actor::engine::{periods_per_year, session_calendar};
use session_actor::store::SessionStore;
use session_actor::{Engine, EngineConfig};

use crate::config::Settings;

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
}

/// Why a session could not be created; `code` is the PROTOCOL.md `error_code`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CreateError {
    /// `INVALID_PARAMS`, `DATA_FETCH_FAILED`, `SESSION_CREATE_FAILED` or `SERVICE_BUSY`.
    pub code: &'static str,
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
}

/// Supervisor of this node's sessions.
pub struct SessionRegistry {
    settings: Arc<Settings>,
    market: Addr<MarketDataActor>,
    store: Arc<dyn SessionStore>,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    sessions: HashMap<String, Entry>,
    created: u64,
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
            settings,
            market,
            store,
            arbiters: (0..workers.max(1)).map(|_| Arbiter::new()).collect(),
            next_arbiter: 0,
            sessions: HashMap::new(),
            created: 0,
        }
    }

    fn live_sessions_of(&self, user_id: &str) -> usize {
        self.sessions
            .values()
            .filter(|e| e.live && e.user_id == user_id)
            .count()
    }

    fn engine_config(&self, spec: &SessionSpec) -> Result<EngineConfig, CreateError> {
        let sim = &self.settings.simulation;
        let invalid = |m: String| CreateError {
            code: "INVALID_PARAMS",
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
        config.validate().map_err(|e| CreateError {
            code: "VALIDATION_ERROR",
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
    /// What to run.
    pub spec: SessionSpec,
}

impl Handler<CreateSession> for SessionRegistry {
    type Result = ResponseActFuture<Self, Result<SessionHandle, CreateError>>;

    fn handle(&mut self, msg: CreateSession, _ctx: &mut Context<Self>) -> Self::Result {
        let CreateSession {
            user_id,
            max_sessions,
            max_duration,
            spec,
        } = msg;
        let early = (|| {
            if self.live_sessions_of(&user_id) >= max_sessions as usize {
                return Err(CreateError {
                    code: "SERVICE_BUSY",
                    message: format!("concurrent session limit of {max_sessions} reached"),
                });
            }
            if let Some(id) = &spec.session_id {
                if id.is_empty() || id.len() > 128 {
                    return Err(CreateError {
                        code: "INVALID_PARAMS",
                        message: "session_id must be 1 to 128 bytes".into(),
                    });
                }
                if self.sessions.contains_key(id) {
                    return Err(CreateError {
                        code: "INVALID_PARAMS",
                        message: format!("session `{id}` already exists"),
                    });
                }
            }
            if spec.warmup_bars > self.settings.simulation.max_warmup_bars {
                return Err(CreateError {
                    code: "VALIDATION_ERROR",
                    message: format!(
                        "warmup_bars may be at most {}",
                        self.settings.simulation.max_warmup_bars
                    ),
                });
            }
            self.engine_config(&spec)
        })();
        let config = match early {
            Ok(c) => c,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let request = SliceRequest {
            provider: spec.data_provider.clone(),
            symbols: spec.symbols.clone(),
            timeframe: spec.timeframe,
            start: spec.start,
            end: spec.end,
            warmup_bars: spec.warmup_bars,
        };
        let market = self.market.clone();
        let fut = wrap_future::<_, Self>(async move { market.send(GetSlice(request)).await }).map(
            move |reply, act, ctx| {
                let slice = match reply {
                    Ok(Ok(slice)) => slice,
                    Ok(Err(e)) => return Err(slice_error(e)),
                    Err(_) => {
                        return Err(CreateError {
                            code: "SESSION_CREATE_FAILED",
                            message: "market data unavailable".into(),
                        })
                    }
                };
                // A concurrent request may have taken the last slot or the id meanwhile.
                if act.live_sessions_of(&user_id) >= max_sessions as usize {
                    return Err(CreateError {
                        code: "SERVICE_BUSY",
                        message: format!("concurrent session limit of {max_sessions} reached"),
                    });
                }
                if slice.steps.len() > act.settings.simulation.max_bars {
                    return Err(CreateError {
                        code: "VALIDATION_ERROR",
                        message: format!(
                            "the range holds {} bars; at most {} are allowed per session",
                            slice.steps.len(),
                            act.settings.simulation.max_bars
                        ),
                    });
                }
                act.created += 1;
                let session_id = match spec.session_id {
                    Some(id) if !act.sessions.contains_key(&id) => id,
                    Some(id) => {
                        return Err(CreateError {
                            code: "INVALID_PARAMS",
                            message: format!("session `{id}` already exists"),
                        })
                    }
                    None => new_session_id(act.created),
                };
                let engine = Engine::new(config.clone()).map_err(|e| CreateError {
                    code: "VALIDATION_ERROR",
                    message: e.to_string(),
                })?;
                let session_config = SessionConfig {
                    session_id: session_id.clone(),
                    user_id: user_id.clone(),
                    params: spec.params_json,
                    grace: Duration::from_secs(act.settings.simulation.resume_grace_sec),
                    max_duration,
                    batch_steps: 256,
                    replay_outputs: act.settings.server.outbound_queue * 8,
                    observer: Some(ctx.address().recipient()),
                };
                let arbiter = &act.arbiters[act.next_arbiter % act.arbiters.len()];
                act.next_arbiter += 1;
                let store = Arc::clone(&act.store);
                let ticks_total = slice.steps.len() as u64;
                let addr = SessionActor::start_in_arbiter(&arbiter.handle(), move |_| {
                    SessionActor::new(session_config, engine, slice, store)
                });
                let handle = SessionHandle {
                    session_id: session_id.clone(),
                    addr,
                    config,
                    ticks_total,
                    timeframe: spec.timeframe,
                    start: spec.start,
                    end: spec.end,
                    created_at: chrono::Utc::now().timestamp(),
                };
                act.sessions.insert(
                    session_id,
                    Entry {
                        user_id,
                        handle: handle.clone(),
                        live: true,
                    },
                );
                Ok(handle)
            },
        );
        Box::pin(fut)
    }
}

fn slice_error(e: MarketDataError) -> CreateError {
    use MarketDataError::*;
    let code = match e {
        EmptySymbols
        | DuplicateSymbol(_)
        | InvalidRange { .. }
        | TimeframeTooFine { .. }
        | UnknownProvider(_) => "INVALID_PARAMS",
        _ => "DATA_FETCH_FAILED",
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
    /// No such session on this node.
    #[error("session not found")]
    NotFound,
    /// The session belongs to someone else.
    #[error("session belongs to another user")]
    Forbidden,
}

impl Handler<GetSession> for SessionRegistry {
    type Result = Result<SessionHandle, LookupError>;
    fn handle(&mut self, msg: GetSession, _ctx: &mut Context<Self>) -> Self::Result {
        match self.sessions.get(&msg.session_id) {
            None => Err(LookupError::NotFound),
            Some(e) if e.user_id != msg.user_id => Err(LookupError::Forbidden),
            Some(e) => Ok(e.handle.clone()),
        }
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
            .filter(|(_, e)| e.user_id == msg.user_id)
            .map(|(id, e)| (id.clone(), e.live))
            .collect();
        v.sort();
        actix::MessageResult(v)
    }
}

impl Handler<Lifecycle> for SessionRegistry {
    type Result = ();
    fn handle(&mut self, msg: Lifecycle, _ctx: &mut Context<Self>) {
        match msg.kind {
            LifecycleKind::Finished => {
                if let Some(e) = self.sessions.get_mut(&msg.session_id) {
                    e.live = false;
                }
            }
            LifecycleKind::Stopped => {
                self.sessions.remove(&msg.session_id);
            }
        }
    }
}
