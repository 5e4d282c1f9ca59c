//! One `/ws/simulate` socket: sending requests and matching their replies by
//! `request_id`, while keeping every other frame (ticks, fills, ...) in order for the
//! session streams that read them.
//!
//! The connection is driven by whoever holds `&mut Connection`: there is no background
//! reader, so nothing is read unless a call waits for something. Frames that arrive
//! while a reply is awaited are queued and handed out later, in arrival order.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use actix_codec::Framed;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use protocol::{
    parse_server_frame, AccountSnapshotData, BatchAckData, CancelOrdersData, ClientMessage,
    ConnectionClosingData, ConnectionReadyData, CreateSessionData, Empty, ErrorCode,
    OrderBatchData, OrderRequest, OrdersCancelledData, ProcessingStatus, ResumeSessionData,
    ServerFrame, ServerMessage, SessionCreatedData, SessionParams, SessionRef, SessionSummary,
    SimulationEndData, SimulationStartData, SimulationStateData, TickAckData,
};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::stream::SessionStream;

/// Most frames kept for later readers before the client gives up on the connection.
pub const MAX_BUFFERED_FRAMES: usize = 1 << 20;

/// Most order batches sent with [`Connection::send_orders`] and not yet answered.
pub const MAX_UNANSWERED_BATCHES: usize = 1 << 16;

type Socket = Framed<BoxedSocket, Codec>;

/// An open, authenticated WebSocket connection to the gateway.
pub struct Connection {
    socket: Socket,
    ready: ConnectionReadyData,
    /// Frames read while waiting for something else, oldest first.
    inbox: VecDeque<ServerFrame>,
    next_request: u64,
    next_batch: u64,
    /// Batches sent without waiting (`send_orders`): request id -> (session, batch id).
    /// Their replies go to the session's stream instead of being dropped.
    unanswered: HashMap<String, (String, String)>,
    timeout: Duration,
    event_timeout: Option<Duration>,
    /// Text of a fragmented message being reassembled.
    partial: Option<Vec<u8>>,
    /// `connection_closing` notice, kept to explain the close that follows.
    closing: Option<ConnectionClosingData>,
    closed: bool,
    /// Frames queued with `feed` and not yet written (see [`Connection::send_orders`]).
    unflushed: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("user_id", &self.ready.user_id)
            .field("plan", &self.ready.plan)
            .field("buffered", &self.inbox.len())
            .finish()
    }
}

/// The session a server message is about, if it names one.
pub(crate) fn session_of(m: &ServerMessage) -> Option<&str> {
    use ServerMessage as M;
    Some(match m {
        M::SessionCreated(d) => &d.session_id,
        M::HistorySnapshot(d) => &d.session_id,
        M::Tick(d) => &d.session_id,
        M::SimulationStarted(d) => &d.session_id,
        M::ExecutionReport(d) => &d.session_id,
        M::OrderUpdate(d) => &d.session_id,
        M::AccountSnapshot(d) => &d.session_id,
        M::SimulationPaused(d) | M::SimulationResumed(d) | M::SessionClosed(d) => &d.session_id,
        M::SimulationState(d) => &d.session_id,
        M::SimulationEnd(d) => &d.session_id,
        M::SessionResumed(d) => &d.session_id,
        M::SessionError(d) => return d.session_id.as_deref(),
        _ => return None,
    })
}

/// Notices about the whole connection, which every session stream should see.
fn is_connection_wide(f: &ServerFrame) -> bool {
    match &f.message {
        ServerMessage::ConnectionWarning(_) | ServerMessage::ConnectionClosing(_) => true,
        ServerMessage::Error(_) => f.request_id.is_none(),
        _ => false,
    }
}

impl Connection {
    /// Reads `connection_ready` from a freshly upgraded socket.
    pub(crate) async fn handshake(socket: Socket, timeout: Duration) -> Result<Connection> {
        let mut conn = Connection {
            socket,
            ready: placeholder_ready(),
            inbox: VecDeque::new(),
            next_request: 0,
            next_batch: 0,
            unanswered: HashMap::new(),
            timeout,
            event_timeout: None,
            partial: None,
            closing: None,
            closed: false,
            unflushed: false,
        };
        let deadline = (Instant::now() + timeout, timeout);
        // PROTOCOL.md: the first server frame after the upgrade is `connection_ready`.
        let frame = conn.read_frame(Some(deadline), "connection_ready").await?;
        match frame.message {
            ServerMessage::ConnectionReady(ready) => {
                conn.ready = ready;
                Ok(conn)
            }
            ServerMessage::Error(e) => Err(Error::from_error(e)),
            other => Err(unexpected("connection_ready", &other)),
        }
    }

    /// What the server said in `connection_ready`: user, plan, limits, features.
    pub fn ready(&self) -> &ConnectionReadyData {
        &self.ready
    }

    /// How long a request waits for its reply (default 30 s).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets how long a request waits for its reply.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// How long [`SessionStream::next`] waits for the next event; `None` (the default)
    /// waits until the server sends something or closes.
    pub fn set_event_timeout(&mut self, timeout: Option<Duration>) {
        self.event_timeout = timeout;
    }

    pub(crate) fn event_timeout(&self) -> Option<Duration> {
        self.event_timeout
    }

    /// Number of frames read but not yet handed out.
    pub fn buffered(&self) -> usize {
        self.inbox.len()
    }

    fn request_id(&mut self) -> String {
        self.next_request += 1;
        format!("rq-{}", self.next_request)
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &ClientMessage, request_id: Option<&str>) -> Result<()> {
        if self.closed {
            return Err(Error::Closed(self.closing.clone()));
        }
        let text = msg.to_frame(request_id);
        self.unflushed = false;
        self.socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| Error::Transport(e.to_string()))
    }

    /// Queues one message without writing it: it goes out with the next message sent,
    /// or before this connection next waits for a frame, whichever comes first.
    async fn queue(&mut self, msg: &ClientMessage, request_id: Option<&str>) -> Result<()> {
        if self.closed {
            return Err(Error::Closed(self.closing.clone()));
        }
        let text = msg.to_frame(request_id);
        self.unflushed = true;
        self.socket
            .feed(Message::Text(text.into()))
            .await
            .map_err(|e| Error::Transport(e.to_string()))
    }

    /// Reads the next frame from the socket (not the inbox). Answers pings, reassembles
    /// fragments, skips message types this client does not know.
    async fn read_frame(
        &mut self,
        deadline: Option<(Instant, Duration)>,
        waiting_for: &'static str,
    ) -> Result<ServerFrame> {
        if self.unflushed {
            self.unflushed = false;
            self.socket
                .flush()
                .await
                .map_err(|e| Error::Transport(e.to_string()))?;
        }
        loop {
            if self.closed {
                return Err(Error::Closed(self.closing.clone()));
            }
            let next = self.socket.next();
            let item = match deadline {
                Some((at, limit)) => match tokio::time::timeout_at(at, next).await {
                    Ok(item) => item,
                    Err(_) => return Err(Error::Timeout(limit, waiting_for)),
                },
                None => next.await,
            };
            let frame = match item {
                None => {
                    self.closed = true;
                    continue;
                }
                Some(Err(e)) => {
                    self.closed = true;
                    return Err(Error::Transport(e.to_string()));
                }
                Some(Ok(frame)) => frame,
            };
            let text = match frame {
                Frame::Text(bytes) => bytes.to_vec(),
                Frame::Continuation(item) => match self.reassemble(item) {
                    Some(text) => text,
                    None => continue,
                },
                Frame::Ping(payload) => {
                    let _ = self.socket.send(Message::Pong(payload)).await;
                    continue;
                }
                Frame::Close(_) => {
                    self.closed = true;
                    continue;
                }
                Frame::Pong(_) | Frame::Binary(_) => continue,
            };
            let text = String::from_utf8(text).map_err(|_| {
                Error::Protocol(protocol::ProtocolError::new(
                    ErrorCode::InvalidJson,
                    "text frame is not UTF-8",
                ))
            })?;
            match parse_server_frame(&text) {
                Ok(frame) => {
                    if let ServerMessage::ConnectionClosing(c) = &frame.message {
                        self.closing = Some(c.clone());
                    }
                    return Ok(frame);
                }
                // "Clients ignore message types they do not know."
                Err(e) if e.code == ErrorCode::UnknownType => continue,
                Err(e) => return Err(Error::Protocol(e)),
            }
        }
    }

    /// Collects a fragmented text message; the whole text once the last part arrived.
    fn reassemble(&mut self, item: actix_http::ws::Item) -> Option<Vec<u8>> {
        use actix_http::ws::Item;
        match item {
            Item::FirstText(b) => {
                self.partial = Some(b.to_vec());
                None
            }
            Item::FirstBinary(_) => {
                self.partial = None;
                None
            }
            Item::Continue(b) => {
                if let Some(p) = self.partial.as_mut() {
                    p.extend_from_slice(&b);
                }
                None
            }
            Item::Last(b) => {
                let mut p = self.partial.take()?;
                p.extend_from_slice(&b);
                Some(p)
            }
        }
    }

    /// True when `frame` goes to `session_id`'s stream: it is about that session, about
    /// the whole connection, or the reply to one of its batches sent without waiting.
    fn is_for_session(&self, frame: &ServerFrame, session_id: &str) -> bool {
        if session_of(&frame.message).is_some_and(|s| s == session_id) || is_connection_wide(frame)
        {
            return true;
        }
        frame
            .request_id
            .as_ref()
            .and_then(|r| self.unanswered.get(r))
            .is_some_and(|(s, _)| s == session_id)
    }

    /// True when `frame` answers a batch sent without waiting (kept for its stream).
    fn answers_unanswered(&self, frame: &ServerFrame) -> bool {
        frame
            .request_id
            .as_ref()
            .is_some_and(|r| self.unanswered.contains_key(r))
    }

    /// The batch id of the batch sent without waiting that `request_id` answers,
    /// forgetting it (one reply per batch).
    pub(crate) fn settle(&mut self, request_id: &str) -> Option<String> {
        self.unanswered.remove(request_id).map(|(_, batch)| batch)
    }

    fn keep(&mut self, frame: ServerFrame) -> Result<()> {
        if self.inbox.len() >= MAX_BUFFERED_FRAMES {
            return Err(Error::Backlog(MAX_BUFFERED_FRAMES));
        }
        self.inbox.push_back(frame);
        Ok(())
    }

    /// Sends `msg` and waits for the frame that echoes its request id, or for a frame
    /// without one that `also` accepts (for replies the server sends from the session,
    /// like `simulation_end` after `stop_simulation`). Everything else is kept.
    async fn request_with(
        &mut self,
        msg: ClientMessage,
        expected: &'static str,
        also: impl Fn(&ServerMessage) -> bool,
    ) -> Result<ServerMessage> {
        let rid = self.request_id();
        self.send(&msg, Some(&rid)).await?;
        let deadline = (Instant::now() + self.timeout, self.timeout);
        loop {
            let frame = self.read_frame(Some(deadline), expected).await?;
            match frame.request_id.as_deref() {
                Some(r) if r == rid => {
                    return match frame.message {
                        ServerMessage::Error(e) => Err(Error::from_error(e)),
                        ServerMessage::SessionError(e) => Err(Error::from_session_error(e)),
                        m => Ok(m),
                    }
                }
                // The reply to a batch sent without waiting: its stream reads it.
                Some(_) if self.answers_unanswered(&frame) => self.keep(frame)?,
                // A late reply to a request that timed out: nobody waits for it.
                Some(_) => continue,
                None if also(&frame.message) => return Ok(frame.message),
                None => self.keep(frame)?,
            }
        }
    }

    async fn request(
        &mut self,
        msg: ClientMessage,
        expected: &'static str,
    ) -> Result<ServerMessage> {
        self.request_with(msg, expected, |_| false).await
    }

    /// The next message for `session_id` (or about the whole connection), from the inbox
    /// first, then from the socket. Frames of other sessions are kept for their readers.
    pub(crate) async fn next_for_session(
        &mut self,
        session_id: &str,
        timeout: Option<Duration>,
    ) -> Result<ServerFrame> {
        if let Some(frame) = self.buffered_for_session(session_id) {
            return Ok(frame);
        }
        let deadline = timeout.map(|t| (Instant::now() + t, t));
        loop {
            let frame = self.read_frame(deadline, "the next session event").await?;
            if self.is_for_session(&frame, session_id) {
                return Ok(frame);
            }
            if frame.request_id.is_none() || self.answers_unanswered(&frame) {
                self.keep(frame)?;
            }
        }
    }

    /// The oldest kept frame for `session_id` (or about the whole connection), without
    /// reading the socket.
    pub(crate) fn buffered_for_session(&mut self, session_id: &str) -> Option<ServerFrame> {
        let i = self
            .inbox
            .iter()
            .position(|f| self.is_for_session(f, session_id))?;
        self.inbox.remove(i)
    }

    /// The next server message of any session, in arrival order (inbox first).
    pub async fn next_message(&mut self) -> Result<ServerMessage> {
        let frame = match self.inbox.pop_front() {
            Some(frame) => frame,
            None => {
                let deadline = self.event_timeout.map(|t| (Instant::now() + t, t));
                self.read_frame(deadline, "the next message").await?
            }
        };
        // Handed out here, a batch's answer is not waited for on a stream any more.
        if let Some(r) = &frame.request_id {
            self.settle(r);
        }
        Ok(frame.message)
    }

    /// Round trip of a `ping`.
    pub async fn ping(&mut self) -> Result<Duration> {
        let t0 = Instant::now();
        match self.request(ClientMessage::Ping(Empty {}), "pong").await? {
            ServerMessage::Pong(_) => Ok(t0.elapsed()),
            other => Err(unexpected("pong", &other)),
        }
    }

    /// One-step start (`start_simulation`): creates the session and starts it. The
    /// stream yields the `history_snapshot`, then fills, snapshots and ticks.
    pub async fn start_simulation(&mut self, params: SessionParams) -> Result<SessionStream<'_>> {
        match self
            .request(ClientMessage::StartSimulation(params), "session_created")
            .await?
        {
            ServerMessage::SessionCreated(created) => Ok(SessionStream::created(self, created)),
            other => Err(unexpected("session_created", &other)),
        }
    }

    /// Two-step start, step one (`create_session`): the session is created and waits for
    /// [`Connection::simulation_start`]. `session_id` picks the id; the server chooses
    /// one when `None`.
    pub async fn create_session(
        &mut self,
        params: SessionParams,
        session_id: Option<String>,
    ) -> Result<SessionCreatedData> {
        let msg = ClientMessage::CreateSession(CreateSessionData { session_id, params });
        match self.request(msg, "session_created").await? {
            ServerMessage::SessionCreated(created) => Ok(created),
            other => Err(unexpected("session_created", &other)),
        }
    }

    /// Two-step start, step two (`simulation_start`): attaches this connection to the
    /// session and starts it.
    pub async fn simulation_start(
        &mut self,
        session_id: &str,
        flow_control: bool,
        max_pending_ticks: u32,
    ) -> Result<SessionStream<'_>> {
        let msg = ClientMessage::SimulationStart(SimulationStartData {
            session_id: session_id.to_string(),
            flow_control,
            max_pending_ticks,
        });
        match self.request(msg, "simulation_started").await? {
            ServerMessage::SimulationStarted(_) => {
                Ok(SessionStream::attached(self, session_id.to_string(), None))
            }
            other => Err(unexpected("simulation_started", &other)),
        }
    }

    /// Sends orders (`order_batch`, best effort, with a generated batch id) and waits
    /// for the `batch_ack`.
    pub async fn submit_orders(
        &mut self,
        session_id: &str,
        orders: Vec<OrderRequest>,
    ) -> Result<BatchAckData> {
        self.next_batch += 1;
        let batch = OrderBatchData {
            session_id: session_id.to_string(),
            batch_id: format!("batch-{}", self.next_batch),
            orders,
            execution_mode: Default::default(),
        };
        self.submit_batch(batch).await
    }

    /// Sends orders (`order_batch`, with a generated batch id) without waiting for the
    /// answer, which the session's stream hands out later as
    /// [`SessionEvent::BatchAck`](crate::SessionEvent::BatchAck) (or
    /// [`SessionEvent::BatchFailed`](crate::SessionEvent::BatchFailed)). Lets a
    /// strategy acknowledge the tick in the same round trip. The batch is written
    /// together with the next message sent (typically that `tick_ack`, so both leave
    /// in one TCP segment), or before the connection next waits for a frame. Returns
    /// the batch id.
    pub async fn send_orders(
        &mut self,
        session_id: &str,
        orders: Vec<OrderRequest>,
    ) -> Result<String> {
        if self.unanswered.len() >= MAX_UNANSWERED_BATCHES {
            return Err(Error::Unanswered(MAX_UNANSWERED_BATCHES));
        }
        self.next_batch += 1;
        let batch_id = format!("batch-{}", self.next_batch);
        let msg = ClientMessage::OrderBatch(OrderBatchData {
            session_id: session_id.to_string(),
            batch_id: batch_id.clone(),
            orders,
            execution_mode: Default::default(),
        });
        let rid = self.request_id();
        self.queue(&msg, Some(&rid)).await?;
        self.unanswered
            .insert(rid, (session_id.to_string(), batch_id.clone()));
        Ok(batch_id)
    }

    /// Sends a fully specified `order_batch` and waits for its `batch_ack`.
    pub async fn submit_batch(&mut self, batch: OrderBatchData) -> Result<BatchAckData> {
        match self
            .request(ClientMessage::OrderBatch(batch), "batch_ack")
            .await?
        {
            ServerMessage::BatchAck(ack) => Ok(ack),
            other => Err(unexpected("batch_ack", &other)),
        }
    }

    /// Cancels working orders (`cancel_orders`).
    pub async fn cancel_orders(
        &mut self,
        session_id: &str,
        order_ids: Vec<String>,
    ) -> Result<OrdersCancelledData> {
        let msg = ClientMessage::CancelOrders(CancelOrdersData {
            session_id: session_id.to_string(),
            order_ids,
        });
        match self.request(msg, "orders_cancelled").await? {
            ServerMessage::OrdersCancelled(c) => Ok(c),
            other => Err(unexpected("orders_cancelled", &other)),
        }
    }

    /// Acknowledges tick `sequence_id` (`tick_ack`), releasing flow-control credit. The
    /// server does not answer; a problem comes back later as a `session_error`.
    pub async fn ack(&mut self, session_id: &str, sequence_id: u64) -> Result<()> {
        let msg = ClientMessage::TickAck(TickAckData {
            session_id: session_id.to_string(),
            sequence_id,
            processing_status: ProcessingStatus::Ready,
            orders_pending: 0,
            max_wait_ms: 1000,
        });
        self.send(&msg, None).await
    }

    /// Pauses a running session.
    pub async fn pause(&mut self, session_id: &str) -> Result<()> {
        let msg = ClientMessage::PauseSimulation(SessionRef::new(session_id));
        match self.request(msg, "simulation_paused").await? {
            ServerMessage::SimulationPaused(_) => Ok(()),
            other => Err(unexpected("simulation_paused", &other)),
        }
    }

    /// Resumes a paused session.
    pub async fn resume(&mut self, session_id: &str) -> Result<()> {
        let msg = ClientMessage::ResumeSimulation(SessionRef::new(session_id));
        match self.request(msg, "simulation_resumed").await? {
            ServerMessage::SimulationResumed(_) => Ok(()),
            other => Err(unexpected("simulation_resumed", &other)),
        }
    }

    /// Ends a session early and returns its results (`simulation_end`, reason
    /// `stopped`). The results come through the connection relaying the session, so
    /// call this on that connection.
    pub async fn stop(&mut self, session_id: &str) -> Result<SimulationEndData> {
        let is_end = |m: &ServerMessage| matches!(m, ServerMessage::SimulationEnd(e) if e.session_id == session_id);
        // The run may have ended on its own already.
        if let Some(i) = self.inbox.iter().position(|f| is_end(&f.message)) {
            if let Some(ServerFrame {
                message: ServerMessage::SimulationEnd(end),
                ..
            }) = self.inbox.remove(i)
            {
                return Ok(end);
            }
        }
        let msg = ClientMessage::StopSimulation(SessionRef::new(session_id));
        match self.request_with(msg, "simulation_end", is_end).await? {
            ServerMessage::SimulationEnd(end) => Ok(end),
            other => Err(unexpected("simulation_end", &other)),
        }
    }

    /// The session's lifecycle state and progress (`get_simulation_state`).
    pub async fn state(&mut self, session_id: &str) -> Result<SimulationStateData> {
        let msg = ClientMessage::GetSimulationState(SessionRef::new(session_id));
        match self.request(msg, "simulation_state").await? {
            ServerMessage::SimulationState(s) => Ok(s),
            other => Err(unexpected("simulation_state", &other)),
        }
    }

    /// The session's account (`get_account`).
    pub async fn account(&mut self, session_id: &str) -> Result<AccountSnapshotData> {
        let msg = ClientMessage::GetAccount(SessionRef::new(session_id));
        match self.request(msg, "account_snapshot").await? {
            ServerMessage::AccountSnapshot(a) => Ok(a),
            other => Err(unexpected("account_snapshot", &other)),
        }
    }

    /// The user's sessions (`list_sessions`).
    pub async fn list_sessions(&mut self) -> Result<Vec<SessionSummary>> {
        match self
            .request(ClientMessage::ListSessions(Empty {}), "sessions")
            .await?
        {
            ServerMessage::Sessions(s) => Ok(s.sessions),
            other => Err(unexpected("sessions", &other)),
        }
    }

    /// Drops a session (`close_session`).
    pub async fn close_session(&mut self, session_id: &str) -> Result<()> {
        let msg = ClientMessage::CloseSession(SessionRef::new(session_id));
        match self.request(msg, "session_closed").await? {
            ServerMessage::SessionClosed(_) => {
                // Kept replies (frames with a request id) are all for unanswered
                // batches; those of this session go with it.
                self.unanswered.retain(|_, (s, _)| s != session_id);
                let unanswered = &self.unanswered;
                self.inbox.retain(|f| {
                    session_of(&f.message) != Some(session_id)
                        && f.request_id
                            .as_ref()
                            .is_none_or(|r| unanswered.contains_key(r))
                });
                Ok(())
            }
            other => Err(unexpected("session_closed", &other)),
        }
    }

    /// Re-attaches to a session after a reconnect (`resume_session`); ticks continue
    /// after `last_sequence_id`. The stream starts with an `account_snapshot`.
    pub async fn resume_session(
        &mut self,
        session_id: &str,
        last_sequence_id: u64,
    ) -> Result<SessionStream<'_>> {
        let msg = ClientMessage::ResumeSession(ResumeSessionData {
            session_id: session_id.to_string(),
            last_sequence_id,
            epoch: None,
        });
        match self.request(msg, "session_resumed").await? {
            ServerMessage::SessionResumed(r) => {
                let mut stream = SessionStream::attached(self, session_id.to_string(), Some(r));
                stream.set_last_sequence_id(last_sequence_id);
                Ok(stream)
            }
            other => Err(unexpected("session_resumed", &other)),
        }
    }

    /// Closes the socket politely. Sessions survive it (they pause until resumed or
    /// their grace period ends).
    pub async fn close(mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let close = Message::Close(Some(awc::ws::CloseCode::Normal.into()));
        self.socket
            .send(close)
            .await
            .map_err(|e| Error::Transport(e.to_string()))
    }
}

pub(crate) fn unexpected(expected: &'static str, got: &ServerMessage) -> Error {
    Error::Unexpected {
        expected,
        got: got.type_name().to_string(),
    }
}

/// Stands in until the real `connection_ready` is read.
fn placeholder_ready() -> ConnectionReadyData {
    ConnectionReadyData {
        user_id: String::new(),
        plan: protocol::Plan::Free,
        connection_expires_at: 0,
        idle_timeout_sec: 0,
        max_simulation_duration_sec: 0,
        concurrent_connections_limit: 0,
        max_working_orders: None,
        server_time: 0,
        supported_features: Vec::new(),
    }
}
