//! One actor per WebSocket: reads frames, turns them into session commands, and queues
//! replies for the writer. Requests of one connection are handled one at a time, in
//! order, so an `order_batch` sent before a `tick_ack` always reaches the session first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::fut::wrap_future;
use actix::{Actor, ActorContext, ActorFutureExt, AsyncContext, Context, StreamHandler};
use actix_web::web;
use actix_ws::{AggregatedMessage, CloseCode, ProtocolError as WsError};
use protocol::{
    parse_client_frame, ClientMessage, CloseReason, ConnectionClosingData, ConnectionReadyData,
    ErrorCode, ErrorData, OrderBatchData, OrdersCancelledData, Plan, PongData, ServerMessage,
    SessionCreatedData, SessionErrorData, SessionParams, SessionRef, SessionResumedData,
    SessionSummary, SessionsData, SimulationStartedData, SimulationState,
};
use session_actor::actor::{
    Ack, Attach, Cancel, Close, Detach, GetAccount, GetState, Pacing, Pause, Resume, SessionActor,
    Start, Stop, StreamAck, Submit, Submitted,
};
use tokio::sync::{mpsc, oneshot, watch};

use super::writer::WriterCmd;
use crate::cluster::revocation::{Credential, Revoked};
use crate::config::PlanLimits;
use crate::limits::connections::ConnectionSlot;
use crate::limits::messages::{MessageRate, Verdict};
use crate::metrics::{ConnectionGauge, RateLimit};
use crate::registry::{
    CreateError, CreateSession, GetSession, ListSessions, LookupError, ResumeError, ResumeSession,
    SessionHandle, SessionSpec,
};
use crate::state::AppState;
use crate::translate::{self, SessionContext};
use tokio::sync::broadcast::error::RecvError;

/// Who is connected, from the verified token.
pub struct Identity {
    /// User id (token `sub`).
    pub user_id: String,
    /// The API key or login session the token came from.
    pub credential: Credential,
    /// Plan at token issue.
    pub plan: Plan,
    /// Token expiry: the connection closes then.
    pub expires_at: i64,
}

/// `order_batch`es a connection hands on without waiting; beyond this it waits for
/// each answer, so a client that floods batches is slowed down rather than buffered.
const MAX_SUBMITS_IN_FLIGHT: usize = 8;

/// The actor behind one `/ws/simulate` socket.
pub struct ConnectionActor {
    app: web::Data<AppState>,
    who: Identity,
    limits: PlanLimits,
    writer: mpsc::Sender<WriterCmd>,
    sessions: HashMap<String, actix::Addr<SessionActor>>,
    /// The attachment of each session this connection attached, ended on close.
    attachments: HashMap<String, u64>,
    /// `order_batch`es handed to sessions and not yet answered.
    submits_in_flight: usize,
    /// Dropped with the actor: sessions it created learn that it is gone even when
    /// it closed before hearing of them (see `SessionActor::with_owner`).
    owner: watch::Sender<()>,
    last_activity: Instant,
    rate: MessageRate,
    /// Set when the outbound queue overflowed; the actor stops at the next turn.
    stalled: bool,
    _slot: ConnectionSlot,
    _open: ConnectionGauge,
}

impl ConnectionActor {
    /// A connection for `who`, writing through `writer`.
    pub fn new(
        app: web::Data<AppState>,
        who: Identity,
        limits: PlanLimits,
        writer: mpsc::Sender<WriterCmd>,
        slot: ConnectionSlot,
    ) -> Self {
        let rate = MessageRate::new(limits.messages_per_second, Instant::now());
        let open = app.metrics.connection_opened();
        ConnectionActor {
            app,
            who,
            rate,
            stalled: false,
            limits,
            writer,
            sessions: HashMap::new(),
            attachments: HashMap::new(),
            submits_in_flight: 0,
            owner: watch::Sender::new(()),
            last_activity: Instant::now(),
            _slot: slot,
            _open: open,
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// Queues a message. A full queue means the client stopped reading: rather than drop
    /// a reply and carry on, the connection is closed (its sessions wait for a resume).
    fn send(&mut self, msg: ServerMessage, request_id: Option<&str>) {
        let frame = msg.to_frame(request_id, Self::now());
        if self.writer.try_send(WriterCmd::Frame(frame)).is_err() && !self.stalled {
            tracing::warn!(user_id = %self.who.user_id, "client is not reading its replies; closing");
            self.stalled = true;
        }
    }

    fn error(&mut self, code: ErrorCode, message: impl Into<String>, request_id: Option<&str>) {
        self.send(
            ServerMessage::Error(ErrorData::new(code, message)),
            request_id,
        );
    }

    fn session_error(
        &mut self,
        session_id: Option<String>,
        code: ErrorCode,
        message: String,
        request_id: Option<&str>,
    ) {
        self.send(
            ServerMessage::SessionError(SessionErrorData {
                session_id,
                error_code: code,
                message,
            }),
            request_id,
        );
    }

    fn closing(
        &mut self,
        reason: CloseReason,
        message: &str,
        code: CloseCode,
        reconnect_allowed: bool,
    ) {
        let close_code = u16::from(code);
        self.send(
            ServerMessage::ConnectionClosing(ConnectionClosingData {
                reason,
                message: message.to_string(),
                close_code,
                reconnect_allowed,
                session_state: None,
            }),
            None,
        );
        let _ = self
            .writer
            .try_send(WriterCmd::Close(code, message.to_string()));
    }

    fn dispatch(&mut self, msg: ClientMessage, rid: Option<String>, ctx: &mut Context<Self>) {
        match msg {
            ClientMessage::Ping(_) => self.send(
                ServerMessage::Pong(PongData {
                    server_time: Self::now(),
                }),
                rid.as_deref(),
            ),
            ClientMessage::StartSimulation(params) => self.create(None, params, true, rid, ctx),
            ClientMessage::CreateSession(data) => {
                self.create(data.session_id, data.params, false, rid, ctx)
            }
            ClientMessage::SimulationStart(data) => {
                let pacing = pacing(data.flow_control, data.max_pending_ticks, 0);
                self.with_session(
                    data.session_id.clone(),
                    rid,
                    ctx,
                    move |act, handle, rid, ctx| act.start(handle, pacing, true, rid, ctx),
                )
            }
            ClientMessage::TickAck(ack) => match self.sessions.get(&ack.session_id) {
                Some(addr) => addr.do_send(Ack {
                    sequence_id: ack.sequence_id,
                }),
                None => self.session_error(
                    Some(ack.session_id),
                    ErrorCode::SessionNotFound,
                    "session is not running on this connection".into(),
                    rid.as_deref(),
                ),
            },
            ClientMessage::OrderBatch(batch) => {
                let session_id = batch.session_id.clone();
                self.with_session_addr(session_id, rid, ctx, move |act, addr, rid, ctx| {
                    act.submit(addr, batch, rid, ctx)
                })
            }
            ClientMessage::CancelOrders(c) => {
                let session_id = c.session_id.clone();
                self.with_session_addr(session_id, rid, ctx, move |_, addr, rid, ctx| {
                    let fut = wrap_future::<_, Self>(addr.send(Cancel {
                        order_ids: c.order_ids,
                    }))
                    .map(move |res, act, _| match res {
                        Ok(r) => act.send(
                            ServerMessage::OrdersCancelled(OrdersCancelledData {
                                cancelled: r.cancelled,
                                not_found: r.not_found,
                            }),
                            rid.as_deref(),
                        ),
                        Err(_) => {
                            act.error(ErrorCode::SessionNotFound, "session ended", rid.as_deref())
                        }
                    });
                    ctx.wait(fut);
                })
            }
            ClientMessage::PauseSimulation(r) => self.control(r, rid, ctx, Control::Pause),
            ClientMessage::ResumeSimulation(r) => self.control(r, rid, ctx, Control::Resume),
            ClientMessage::StopSimulation(r) => self.control(r, rid, ctx, Control::Stop),
            ClientMessage::GetSimulationState(r) => self.control(r, rid, ctx, Control::State),
            ClientMessage::GetAccount(r) => self.control(r, rid, ctx, Control::Account),
            ClientMessage::CloseSession(r) => self.control(r, rid, ctx, Control::Close),
            ClientMessage::ListSessions(_) => {
                let registry = self.app.registry.clone();
                let user_id = self.who.user_id.clone();
                let fut = wrap_future::<_, Self>(async move {
                    let ids = registry
                        .send(ListSessions {
                            user_id: user_id.clone(),
                        })
                        .await
                        .unwrap_or_default();
                    let mut out = Vec::new();
                    for (id, _) in ids {
                        let Ok(Ok(h)) = registry
                            .send(GetSession {
                                session_id: id,
                                user_id: user_id.clone(),
                            })
                            .await
                        else {
                            continue;
                        };
                        if let Ok(view) = h.addr.send(GetState).await {
                            out.push(summary(&h, &view));
                        }
                    }
                    out
                })
                .map(move |sessions, act, _| {
                    act.send(
                        ServerMessage::Sessions(SessionsData { sessions }),
                        rid.as_deref(),
                    )
                });
                ctx.wait(fut);
            }
            ClientMessage::ResumeSession(r) => {
                self.resume(r.session_id, r.last_sequence_id, r.epoch, rid, ctx)
            }
        }
    }

    /// Looks up a session of this user (attached here or not) and runs `then` with it.
    fn with_session(
        &mut self,
        session_id: String,
        rid: Option<String>,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, SessionHandle, Option<String>, &mut Context<Self>) + 'static,
    ) {
        let lookup = self.app.registry.send(GetSession {
            session_id: session_id.clone(),
            user_id: self.who.user_id.clone(),
        });
        let fut = wrap_future::<_, Self>(lookup).map(move |res, act, ctx| match res {
            Ok(Ok(handle)) => then(act, handle, rid, ctx),
            // Another user's session is not found either: ids are per user.
            Ok(Err(LookupError::NotFound)) | Err(_) => act.session_error(
                Some(session_id),
                ErrorCode::SessionNotFound,
                "session not found".into(),
                rid.as_deref(),
            ),
        });
        ctx.wait(fut);
    }

    /// Hands an `order_batch` to its session. The session is not waited for (unless
    /// [`MAX_SUBMITS_IN_FLIGHT`] are): a `tick_ack` right behind the batch reaches it
    /// in the same turn, and for an attached session the `batch_ack` comes on the
    /// session's stream, so it leaves in one write with the next bar's frames.
    fn submit(
        &mut self,
        addr: actix::Addr<SessionActor>,
        batch: OrderBatchData,
        rid: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let on_stream = self
            .attachments
            .get(&batch.session_id)
            .map(|&attachment| StreamAck {
                attachment,
                request_id: rid.clone(),
                batch_id: batch.batch_id.clone(),
            });
        let (reply, answer) = oneshot::channel();
        let submit = Submit {
            orders: batch.orders,
            mode: batch.execution_mode,
            on_stream,
            reply,
        };
        // `try_send` queues at once or not at all, so nothing sent after it (the
        // `tick_ack`) can overtake it; a full mailbox is waited for, in order.
        let mut wait = match addr.try_send(submit) {
            Ok(()) => false,
            Err(actix::prelude::SendError::Full(submit)) => {
                ctx.wait(wrap_future::<_, Self>(addr.send(submit)).map(|_, _, _| ()));
                true
            }
            Err(actix::prelude::SendError::Closed(_)) => {
                return self.error(ErrorCode::SessionNotFound, "session ended", rid.as_deref());
            }
        };
        self.submits_in_flight += 1;
        wait |= self.submits_in_flight > MAX_SUBMITS_IN_FLIGHT;
        let batch_id = batch.batch_id;
        let fut = wrap_future::<_, Self>(answer).map(move |res, act, _| {
            act.submits_in_flight -= 1;
            match res {
                Ok(Submitted::OnStream) => {}
                Ok(Submitted::Here(r)) => {
                    act.send(translate::batch_ack(&batch_id, &r), rid.as_deref())
                }
                Err(_) => act.error(ErrorCode::SessionNotFound, "session ended", rid.as_deref()),
            }
        });
        if wait {
            ctx.wait(fut);
        } else {
            ctx.spawn(fut);
        }
    }

    /// Like [`Self::with_session`] for callers that need only the session's address:
    /// a session this connection holds is used directly, without asking the registry
    /// (which runs on another thread: two thread hops on every order otherwise).
    fn with_session_addr(
        &mut self,
        session_id: String,
        rid: Option<String>,
        ctx: &mut Context<Self>,
        then: impl FnOnce(&mut Self, actix::Addr<SessionActor>, Option<String>, &mut Context<Self>)
            + 'static,
    ) {
        match self.sessions.get(&session_id) {
            Some(addr) => {
                let addr = addr.clone();
                then(self, addr, rid, ctx);
            }
            None => self.with_session(session_id, rid, ctx, move |act, h, rid, ctx| {
                then(act, h.addr, rid, ctx)
            }),
        }
    }

    fn create(
        &mut self,
        session_id: Option<String>,
        params: SessionParams,
        start_now: bool,
        rid: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let spec = SessionSpec::from_params(session_id, &params);
        let request = CreateSession {
            user_id: self.who.user_id.clone(),
            max_sessions: self.limits.concurrent_sessions,
            max_duration: Duration::from_secs(self.limits.max_simulation_duration_sec),
            max_working_orders: self.limits.max_working_orders,
            spec,
            arbiter: Some(actix::Arbiter::current()),
            owner: Some(self.owner.subscribe()),
        };
        let provider = params
            .data_provider
            .clone()
            .unwrap_or_else(|| self.app.settings.market_data.default_provider.clone());
        let fut =
            wrap_future::<_, Self>(self.app.registry.send(request)).map(move |res, act, ctx| {
                let handle = match res {
                    Ok(Ok(h)) => h,
                    Ok(Err(CreateError { code, message })) => {
                        return act.session_error(None, code, message, rid.as_deref());
                    }
                    Err(_) => {
                        return act.session_error(
                            None,
                            ErrorCode::SessionCreateFailed,
                            "session service unavailable".into(),
                            rid.as_deref(),
                        )
                    }
                };
                act.send(
                    ServerMessage::SessionCreated(SessionCreatedData {
                        session_id: handle.session_id.clone(),
                        status: "created".into(),
                        symbols: params.symbols.clone(),
                        start_date: params.start_date,
                        end_date: params.end_date,
                        initial_capital: params.initial_capital,
                        state: SimulationState::Ready,
                        created_at: Self::now(),
                        data_provider: provider,
                        commission_per_share: handle.config.commission_per_share,
                        slippage_bps: handle.config.slippage_bps,
                        estimated_ticks: handle.ticks_total,
                        queue_position: None,
                    }),
                    rid.as_deref(),
                );
                // Held by this connection until started: if the connection goes first,
                // the session is detached like a started one and its grace period runs.
                act.sessions
                    .insert(handle.session_id.clone(), handle.addr.clone());
                if start_now {
                    let pacing = pacing(
                        params.flow_control,
                        params.max_pending_ticks,
                        params.tick_interval_ms,
                    );
                    act.start(handle, pacing, false, None, ctx);
                }
            });
        ctx.wait(fut);
    }

    /// Attaches this connection to a new session and starts it.
    fn start(
        &mut self,
        handle: SessionHandle,
        pacing: Pacing,
        announce: bool,
        rid: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let (tx, rx) = mpsc::channel(self.app.settings.server.outbound_queue);
        let addr = handle.addr.clone();
        let sid = handle.session_id.clone();
        let attach = addr.send(Attach {
            sink: tx,
            resume_from: None,
            epoch: None,
        });
        let fut = wrap_future::<_, Self>(async move {
            match attach.await {
                Ok(Ok(info)) => Ok(info),
                _ => Err(()),
            }
        })
        .map(move |res, act, ctx| {
            let Ok(info) = res else {
                return act.session_error(
                    Some(sid),
                    ErrorCode::SessionNotFound,
                    "session ended".into(),
                    rid.as_deref(),
                );
            };
            let sctx = SessionContext::new(sid.clone(), info.slice);
            if act
                .writer
                .try_send(WriterCmd::Attach {
                    ctx: sctx,
                    rx,
                    held: false,
                })
                .is_err()
            {
                return;
            }
            if announce {
                let (flow, interval) = match pacing {
                    Pacing::LockStep { .. } => (true, 0),
                    Pacing::Stream { interval_ms } => (false, interval_ms),
                };
                act.send(
                    ServerMessage::SimulationStarted(SimulationStartedData {
                        session_id: sid.clone(),
                        started_at: Self::now(),
                        flow_control_enabled: flow,
                        estimated_duration_sec: None,
                        tick_interval_ms: interval,
                    }),
                    rid.as_deref(),
                );
            }
            act.sessions.insert(sid.clone(), addr.clone());
            act.attachments.insert(sid.clone(), info.attachment);
            let start = addr.send(Start { pacing });
            let fut = wrap_future::<_, Self>(start).map(move |res, act, _| {
                if !matches!(res, Ok(Ok(_))) {
                    act.session_error(
                        Some(sid),
                        ErrorCode::InvalidParams,
                        "session was already started".into(),
                        rid.as_deref(),
                    );
                }
            });
            ctx.wait(fut);
        });
        ctx.wait(fut);
    }

    fn resume(
        &mut self,
        session_id: String,
        last: u64,
        epoch: Option<u64>,
        rid: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let request = ResumeSession {
            session_id: session_id.clone(),
            user_id: self.who.user_id.clone(),
            last_sequence_id: last,
            max_sessions: self.limits.concurrent_sessions,
            max_duration: Duration::from_secs(self.limits.max_simulation_duration_sec),
            arbiter: Some(actix::Arbiter::current()),
            owner: Some(self.owner.subscribe()),
        };
        let lookup = wrap_future::<_, Self>(self.app.registry.send(request));
        let fut = lookup.map(move |res, act, ctx| {
            let handle = match res {
                Ok(Ok(handle)) => handle,
                Ok(Err(e)) => {
                    let code = match e {
                        ResumeError::NotFound => ErrorCode::SessionNotFound,
                        ResumeError::Failed(_) => ErrorCode::ResumeFailed,
                        ResumeError::Busy(_) => ErrorCode::ServiceBusy,
                    };
                    let message = e.to_string();
                    return act.session_error(Some(session_id), code, message, rid.as_deref());
                }
                Err(_) => {
                    return act.session_error(
                        Some(session_id),
                        ErrorCode::SessionNotFound,
                        "session not found".into(),
                        rid.as_deref(),
                    )
                }
            };
            act.attach_resumed(handle, last, epoch, rid, ctx);
        });
        ctx.wait(fut);
    }

    /// Attaches a session being resumed: `session_resumed`, the account, then the
    /// ticks after `last`.
    fn attach_resumed(
        &mut self,
        handle: SessionHandle,
        last: u64,
        epoch: Option<u64>,
        rid: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let (tx, rx) = mpsc::channel(self.app.settings.server.outbound_queue);
        let addr = handle.addr.clone();
        let sid = handle.session_id.clone();
        let fut = wrap_future::<_, Self>(async move {
            let info = addr
                .send(Attach {
                    sink: tx,
                    resume_from: Some(last),
                    epoch,
                })
                .await;
            let account = addr.send(GetAccount).await;
            (info, account, addr)
        })
        .map(move |(info, account, addr), act, _| {
            let info = match info {
                Ok(Ok(info)) => info,
                Ok(Err(e)) => {
                    return act.session_error(
                        Some(sid),
                        ErrorCode::ResumeFailed,
                        e.to_string(),
                        rid.as_deref(),
                    )
                }
                Err(_) => {
                    return act.session_error(
                        Some(sid),
                        ErrorCode::SessionNotFound,
                        "session ended".into(),
                        rid.as_deref(),
                    )
                }
            };
            let sctx = SessionContext::new(sid.clone(), info.slice);
            // Hold the session's stream until the preamble is queued.
            let _ = act.writer.try_send(WriterCmd::Attach {
                ctx: sctx,
                rx,
                held: true,
            });
            act.send(
                ServerMessage::SessionResumed(SessionResumedData {
                    session_id: sid.clone(),
                    epoch: info.view.epoch,
                    resumed_from_sequence: last,
                    state: translate::state(info.view.state),
                }),
                rid.as_deref(),
            );
            if let Ok(a) = account {
                act.send(translate::account(&sid, &a), None);
            }
            let _ = act.writer.try_send(WriterCmd::Release(sid.clone()));
            act.attachments.insert(sid.clone(), info.attachment);
            act.sessions.insert(sid, addr);
        });
        ctx.wait(fut);
    }

    fn control(
        &mut self,
        r: SessionRef,
        rid: Option<String>,
        ctx: &mut Context<Self>,
        what: Control,
    ) {
        self.with_session(r.session_id.clone(), rid, ctx, move |_, h, rid, ctx| {
            let addr = h.addr.clone();
            let sid = h.session_id.clone();
            let fut = wrap_future::<_, Self>(async move {
                match what {
                    Control::Pause => {
                        addr.send(Pause).await.ok().map(|r| {
                            r.map(|_| ServerMessage::SimulationPaused(SessionRef::new(&sid)))
                        })
                    }
                    Control::Resume => addr.send(Resume).await.ok().map(|r| {
                        r.map(|_| ServerMessage::SimulationResumed(SessionRef::new(&sid)))
                    }),
                    Control::Stop => addr
                        .send(Stop)
                        .await
                        .ok()
                        .map(|v| Ok(translate::state_view(&v))),
                    Control::State => addr
                        .send(GetState)
                        .await
                        .ok()
                        .map(|v| Ok(translate::state_view(&v))),
                    Control::Account => addr
                        .send(GetAccount)
                        .await
                        .ok()
                        .map(|a| Ok(translate::account(&sid, &a))),
                    Control::Close => {
                        let _ = addr.send(Close).await;
                        Some(Ok(ServerMessage::SessionClosed(SessionRef::new(&sid))))
                    }
                }
            })
            .map(move |res, act, _| match res {
                // `stop_simulation` answers with `simulation_end` from the session itself.
                Some(Ok(_)) if what == Control::Stop => {}
                Some(Ok(msg)) => {
                    if what == Control::Close {
                        act.sessions.remove(&r.session_id);
                        act.attachments.remove(&r.session_id);
                        let _ = act.writer.try_send(WriterCmd::Detach(r.session_id.clone()));
                    }
                    act.send(msg, rid.as_deref())
                }
                Some(Err(e)) => act.error(ErrorCode::InvalidParams, e.to_string(), rid.as_deref()),
                None => act.session_error(
                    Some(r.session_id),
                    ErrorCode::SessionNotFound,
                    "session ended".into(),
                    rid.as_deref(),
                ),
            });
            ctx.wait(fut);
        });
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Control {
    Pause,
    Resume,
    Stop,
    State,
    Account,
    Close,
}

fn pacing(flow_control: bool, window: u32, interval_ms: u64) -> Pacing {
    if flow_control {
        Pacing::LockStep {
            window: window.max(1),
        }
    } else {
        Pacing::Stream { interval_ms }
    }
}

fn summary(h: &SessionHandle, v: &session_actor::actor::StateView) -> SessionSummary {
    SessionSummary {
        session_id: h.session_id.clone(),
        state: translate::state(v.state),
        symbols: h.config.symbols.clone(),
        timeframe: h.timeframe,
        start_date: h.start,
        end_date: h.end,
        created_at: h.created_at,
        sequence_id: v.sequence_id,
        ticks_total: v.ticks_total,
    }
}

impl Actor for ConnectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let app = self.app.clone();
        let s = &app.settings;
        self.send(
            ServerMessage::ConnectionReady(ConnectionReadyData {
                user_id: self.who.user_id.clone(),
                plan: self.who.plan,
                connection_expires_at: self.who.expires_at,
                idle_timeout_sec: s.server.idle_timeout_sec,
                max_simulation_duration_sec: self.limits.max_simulation_duration_sec,
                concurrent_connections_limit: self.limits.concurrent_connections,
                max_working_orders: Some(self.limits.max_working_orders),
                server_time: Self::now(),
                supported_features: [
                    "flow_control",
                    "order_batch",
                    "cancel_orders",
                    "resume_session",
                    "brackets",
                ]
                .map(String::from)
                .to_vec(),
            }),
            None,
        );
        // Revocation of the key or the account, on any node: close for good.
        let mut revoked = app.revocations.subscribe();
        let who = self.who.credential;
        let revocations = Arc::clone(&app.revocations);
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                loop {
                    match revoked.recv().await {
                        Ok(r) if r.applies_to(&who) => return Some(r),
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) if revocations.refuses(&who) => {
                            return Some(Revoked::User(who.user));
                        }
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return None,
                    }
                }
            })
            .map(|revoked, act, ctx| {
                let Some(revoked) = revoked else { return };
                let message = match revoked {
                    Revoked::Key(_) => "the API key behind this connection was revoked",
                    Revoked::User(_) => "this account was disabled",
                    Revoked::Session(_) => "the login session behind this connection ended",
                };
                act.closing(
                    CloseReason::ApiKeyRevoked,
                    message,
                    CloseCode::Policy,
                    false,
                );
                ctx.stop();
            }),
        );
        // Shutdown: tell the client to reconnect (to another node) and close.
        let mut shutdown = app.shutdown.clone();
        ctx.spawn(
            wrap_future::<_, Self>(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .map(|(), act, ctx| {
                act.closing(
                    CloseReason::ServerMaintenance,
                    "this server is shutting down; reconnect and resume your sessions",
                    CloseCode::Restart,
                    true,
                );
                ctx.stop();
            }),
        );
        let idle = Duration::from_secs(s.server.idle_timeout_sec);
        let check = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        ctx.run_interval(check, move |act, ctx| {
            if act.last_activity.elapsed() >= idle {
                act.closing(
                    CloseReason::IdleTimeout,
                    "no message within the idle timeout",
                    CloseCode::Normal,
                    true,
                );
                ctx.stop();
            } else if Self::now() >= act.who.expires_at {
                act.closing(
                    CloseReason::MaxDuration,
                    "the access token expired; reconnect with a new one",
                    CloseCode::Policy,
                    true,
                );
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // Sessions outlive the connection: they pause and wait for a resume. Those
        // it created but never attached learn it from `owner`, dropped with it.
        for (id, &attachment) in &self.attachments {
            if let Some(addr) = self.sessions.get(id) {
                addr.do_send(Detach { attachment });
            }
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, WsError>> for ConnectionActor {
    fn handle(&mut self, item: Result<AggregatedMessage, WsError>, ctx: &mut Context<Self>) {
        self.last_activity = Instant::now();
        self.handle_frame(item, ctx);
        if self.stalled {
            ctx.stop();
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl ConnectionActor {
    fn handle_frame(&mut self, item: Result<AggregatedMessage, WsError>, ctx: &mut Context<Self>) {
        match item {
            Ok(AggregatedMessage::Text(text)) => self.text_frame(&text, ctx),
            // PROTOCOL.md: every frame is a JSON text frame. A binary frame is bad input
            // like malformed JSON: answered, counted, and the connection stays.
            Ok(AggregatedMessage::Binary(_)) => {
                if self.admit(None, ctx) {
                    self.error(
                        ErrorCode::InvalidJson,
                        "binary frames are not supported; send JSON text frames",
                        None,
                    );
                }
            }
            // Control frames cost a read (and a ping a write) like any request, so
            // they count toward the plan's message rate too.
            Ok(AggregatedMessage::Ping(b)) => {
                if self.admit(None, ctx) {
                    let _ = self.writer.try_send(WriterCmd::Pong(b.to_vec()));
                }
            }
            Ok(AggregatedMessage::Pong(_)) => {
                self.admit(None, ctx);
            }
            Ok(AggregatedMessage::Close(_)) => ctx.stop(),
            Err(e) => {
                match violation(&e) {
                    Some((code, message)) => {
                        tracing::info!(user_id = %self.who.user_id, error = %e, close_code = u16::from(code), "closing on a WebSocket protocol violation");
                        if code == CloseCode::Size {
                            self.closing(CloseReason::RateLimit, message, code, false);
                        } else {
                            // No `connection_closing` notice: none of its reasons fits,
                            // and the close frame's code and text say what went wrong.
                            let _ = self
                                .writer
                                .try_send(WriterCmd::Close(code, message.to_string()));
                        }
                    }
                    None => {
                        tracing::debug!(user_id = %self.who.user_id, error = %e, "WebSocket read failed")
                    }
                }
                ctx.stop();
            }
        }
    }

    fn text_frame(&mut self, text: &str, ctx: &mut Context<Self>) {
        let limit = self.app.settings.server.max_frame_bytes;
        if text.len() > limit {
            if self.admit(None, ctx) {
                self.error(
                    ErrorCode::FrameTooLarge,
                    format!("frames are limited to {limit} bytes"),
                    None,
                );
            }
            return;
        }
        match parse_client_frame(text) {
            // `tick_ack` is flow control, not a request: never counted.
            Ok((msg @ ClientMessage::TickAck(_), rid)) => self.dispatch(msg, rid, ctx),
            Ok((msg, rid)) => {
                if self.admit(rid.as_deref(), ctx) {
                    self.dispatch(msg, rid, ctx)
                }
            }
            Err(e) => {
                let rid = e.request_id.clone();
                if self.admit(rid.as_deref(), ctx) {
                    self.send(e.to_server_message(), rid.as_deref());
                }
            }
        }
    }

    /// Counts one client frame against the plan's `messages_per_second`. False when
    /// it is refused: over the rate it was answered `RATE_LIMITED`; in a sustained
    /// flood the connection is closing (`rate_limit`, 1008).
    fn admit(&mut self, rid: Option<&str>, ctx: &mut Context<Self>) -> bool {
        let verdict = self.rate.check(Instant::now());
        if verdict != Verdict::Allowed {
            self.app.metrics.rate_limited(RateLimit::Messages);
        }
        match verdict {
            Verdict::Allowed => true,
            Verdict::Limited => {
                let limit = self.rate.per_second();
                self.error(
                    ErrorCode::RateLimited,
                    format!("more than {limit} messages per second on this plan"),
                    rid,
                );
                false
            }
            Verdict::Flood => {
                self.closing(
                    CloseReason::RateLimit,
                    "sustained message flood",
                    CloseCode::Policy,
                    true,
                );
                ctx.stop();
                false
            }
        }
    }
}

/// The RFC 6455 close code and text for a read error, or `None` when the transport
/// itself failed (nobody is left to tell).
///
/// actix-ws reports invalid UTF-8 (in a text frame or an aggregated fragmented one)
/// and non-zero reserved bits alike as `Io(InvalidData)`, and the continuation limit
/// as `Io(Other)` with its own text; the inner error tells them apart.
fn violation(e: &WsError) -> Option<(CloseCode, &'static str)> {
    const PROTOCOL: (CloseCode, &str) = (CloseCode::Protocol, "WebSocket protocol error");
    Some(match e {
        WsError::Overflow => (CloseCode::Size, "frame exceeds the hard size limit"),
        WsError::Io(io) => {
            let inner = io.get_ref();
            if inner.is_some_and(|i| i.is::<actix_web::error::PayloadError>()) {
                return None;
            }
            let text = inner.map(ToString::to_string).unwrap_or_default();
            if io.kind() == std::io::ErrorKind::InvalidData {
                let utf8 = inner.is_some_and(|i| i.is::<std::str::Utf8Error>())
                    || text.to_ascii_lowercase().contains("utf-8");
                if utf8 {
                    (CloseCode::Invalid, "text frames must be valid UTF-8")
                } else {
                    PROTOCOL
                }
            } else if text.contains("continuation size") {
                (CloseCode::Size, "message exceeds the hard size limit")
            } else {
                PROTOCOL
            }
        }
        WsError::UnmaskedFrame
        | WsError::MaskedFrame
        | WsError::InvalidOpcode(_)
        | WsError::InvalidLength(_)
        | WsError::BadOpCode
        | WsError::ContinuationNotStarted
        | WsError::ContinuationStarted
        | WsError::ContinuationFragment(_) => PROTOCOL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn violations_map_to_rfc_6455_close_codes() {
        let code = |e: WsError| violation(&e).map(|(c, _)| u16::from(c));
        assert_eq!(code(WsError::Overflow), Some(1009));
        assert_eq!(code(WsError::InvalidOpcode(3)), Some(1002));
        assert_eq!(code(WsError::UnmaskedFrame), Some(1002));
        assert_eq!(code(WsError::ContinuationNotStarted), Some(1002));
        let bytes = vec![0xc3u8, 0x28];
        let bad_utf8 = std::str::from_utf8(&bytes).unwrap_err();
        assert_eq!(
            code(WsError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                bad_utf8
            ))),
            Some(1007)
        );
        assert_eq!(
            code(WsError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "Received a frame with non-zero reserved bits"
            ))),
            Some(1002)
        );
        // A dropped connection is nobody's protocol error: nothing to send.
        assert_eq!(
            code(WsError::Io(io::Error::other(
                actix_web::error::PayloadError::Incomplete(None)
            ))),
            None
        );
    }
}
