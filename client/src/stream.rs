//! One session's events on a connection, in the order the server sent them.

use std::time::Duration;

use protocol::{
    AccountSnapshotData, BatchAckData, ConnectionWarningData, ErrorData, ExecutionReportData,
    HistorySnapshotData, OrderRequest, OrderUpdateData, OrdersCancelledData, ServerMessage,
    SessionCreatedData, SessionResumedData, SimulationEndData, SimulationStateData, TickData,
};

use crate::connection::Connection;
use crate::error::{Error, Result};

/// Something that happened in a session (or on its connection).
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// Warm-up bars, before the first tick.
    History(HistorySnapshotData),
    /// One bar time. Every fill and order change of this bar came before it.
    Tick(TickData),
    /// A fill.
    Fill(ExecutionReportData),
    /// An order changed without a fill (expired, cancelled, rejected when due).
    OrderUpdate(OrderUpdateData),
    /// The account after a bar with fills or order changes (and after a resume).
    Account(AccountSnapshotData),
    /// A notice about the connection (timeouts, rate limits).
    Warning(ConnectionWarningData),
    /// An `error` not tied to a request.
    Notice(ErrorData),
    /// The answer to a batch sent with [`SessionStream::send_orders`] (not waited for).
    BatchAck(BatchAckData),
    /// A batch sent with [`SessionStream::send_orders`] was refused as a whole (rate
    /// limit, invalid message); none of its orders was placed.
    BatchFailed {
        /// The refused batch.
        batch_id: String,
        /// Why.
        error: ErrorData,
    },
    /// Results; the last event of the session.
    End(SimulationEndData),
}

/// The events of one session, borrowed from its [`Connection`]. Requests about the
/// session (orders, acks, control) go through the stream too.
pub struct SessionStream<'c> {
    conn: &'c mut Connection,
    session_id: String,
    created: Option<SessionCreatedData>,
    resumed: Option<SessionResumedData>,
    last_sequence_id: u64,
    ended: bool,
    /// `stop` consumed the end; only events already read are still handed out.
    stopped: bool,
}

impl std::fmt::Debug for SessionStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStream")
            .field("session_id", &self.session_id)
            .field("last_sequence_id", &self.last_sequence_id)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<'c> SessionStream<'c> {
    pub(crate) fn created(conn: &'c mut Connection, created: SessionCreatedData) -> Self {
        SessionStream {
            conn,
            session_id: created.session_id.clone(),
            created: Some(created),
            resumed: None,
            last_sequence_id: 0,
            ended: false,
            stopped: false,
        }
    }

    pub(crate) fn attached(
        conn: &'c mut Connection,
        session_id: String,
        resumed: Option<SessionResumedData>,
    ) -> Self {
        SessionStream {
            conn,
            session_id,
            created: None,
            resumed,
            last_sequence_id: 0,
            ended: false,
            stopped: false,
        }
    }

    pub(crate) fn set_last_sequence_id(&mut self, seq: u64) {
        self.last_sequence_id = seq;
    }

    /// The session id.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// `session_created`, for a session started by this stream's one-step start.
    pub fn session_created(&self) -> Option<&SessionCreatedData> {
        self.created.as_ref()
    }

    /// `session_resumed`, for a stream opened by [`Connection::resume_session`].
    pub fn session_resumed(&self) -> Option<&SessionResumedData> {
        self.resumed.as_ref()
    }

    /// Sequence id of the last tick received (what a resume continues after).
    pub fn last_sequence_id(&self) -> u64 {
        self.last_sequence_id
    }

    /// True once `simulation_end` was handed out.
    pub fn is_finished(&self) -> bool {
        self.ended
    }

    /// The connection underneath, for requests about other sessions.
    pub fn connection(&mut self) -> &mut Connection {
        self.conn
    }

    /// The next event, waiting at most the connection's event timeout; `None` after
    /// the `End` event. A `session_error` for this session, or a closed connection,
    /// is an error.
    pub async fn next(&mut self) -> Result<Option<SessionEvent>> {
        let timeout = self.conn.event_timeout();
        self.next_within(timeout).await
    }

    /// Like [`SessionStream::next`] with an explicit time limit (`None`: no limit).
    pub async fn next_within(&mut self, timeout: Option<Duration>) -> Result<Option<SessionEvent>> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let frame = if self.stopped {
                match self.conn.buffered_for_session(&self.session_id) {
                    Some(frame) => frame,
                    None => {
                        self.ended = true;
                        return Ok(None);
                    }
                }
            } else {
                self.conn
                    .next_for_session(&self.session_id, timeout)
                    .await?
            };
            // The reply to a batch sent without waiting.
            if let Some(batch_id) = frame
                .request_id
                .as_deref()
                .and_then(|r| self.conn.settle(r))
            {
                match frame.message {
                    ServerMessage::BatchAck(ack) => return Ok(Some(SessionEvent::BatchAck(ack))),
                    ServerMessage::Error(error) => {
                        return Ok(Some(SessionEvent::BatchFailed { batch_id, error }))
                    }
                    ServerMessage::SessionError(e) => return Err(Error::from_session_error(e)),
                    _ => continue,
                }
            }
            let event = match frame.message {
                ServerMessage::HistorySnapshot(h) => SessionEvent::History(h),
                ServerMessage::Tick(t) => {
                    self.last_sequence_id = t.sequence_id;
                    SessionEvent::Tick(t)
                }
                ServerMessage::ExecutionReport(x) => SessionEvent::Fill(x),
                ServerMessage::OrderUpdate(u) => SessionEvent::OrderUpdate(u),
                ServerMessage::AccountSnapshot(a) => SessionEvent::Account(a),
                ServerMessage::ConnectionWarning(w) => SessionEvent::Warning(w),
                ServerMessage::Error(e) => SessionEvent::Notice(e),
                ServerMessage::SimulationEnd(end) => {
                    self.ended = true;
                    SessionEvent::End(end)
                }
                ServerMessage::SessionError(e) => return Err(Error::from_session_error(e)),
                // `connection_closing`: the close that follows ends the stream with an
                // error that carries it. Other session messages are replies already
                // handled (or duplicates of them).
                _ => continue,
            };
            return Ok(Some(event));
        }
    }

    /// Sends orders for this session and waits for the `batch_ack`.
    pub async fn submit_orders(&mut self, orders: Vec<OrderRequest>) -> Result<BatchAckData> {
        self.conn.submit_orders(&self.session_id, orders).await
    }

    /// Sends orders for this session without waiting for the `batch_ack`, which comes
    /// later as [`SessionEvent::BatchAck`]. Returns the batch id.
    pub async fn send_orders(&mut self, orders: Vec<OrderRequest>) -> Result<String> {
        self.conn.send_orders(&self.session_id, orders).await
    }

    /// Cancels working orders of this session.
    pub async fn cancel_orders(&mut self, order_ids: Vec<String>) -> Result<OrdersCancelledData> {
        self.conn.cancel_orders(&self.session_id, order_ids).await
    }

    /// Acknowledges tick `sequence_id`.
    pub async fn ack(&mut self, sequence_id: u64) -> Result<()> {
        self.conn.ack(&self.session_id, sequence_id).await
    }

    /// Pauses the session.
    pub async fn pause(&mut self) -> Result<()> {
        self.conn.pause(&self.session_id).await
    }

    /// Resumes the paused session.
    pub async fn resume(&mut self) -> Result<()> {
        self.conn.resume(&self.session_id).await
    }

    /// The session's state.
    pub async fn state(&mut self) -> Result<SimulationStateData> {
        self.conn.state(&self.session_id).await
    }

    /// The session's account.
    pub async fn account(&mut self) -> Result<AccountSnapshotData> {
        self.conn.account(&self.session_id).await
    }

    /// Ends the session early; returns its results. Events before the end are still
    /// handed out by [`SessionStream::next`], which then returns `None`.
    pub async fn stop(&mut self) -> Result<SimulationEndData> {
        let end = self.conn.stop(&self.session_id).await?;
        self.stopped = true;
        Ok(end)
    }
}
