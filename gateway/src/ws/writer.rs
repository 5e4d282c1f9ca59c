//! The one task that writes to a socket. It takes frames from the connection actor and
//! outputs from the sessions relayed on this connection, through bounded channels: a
//! slow client fills them, which pauses its sessions rather than growing a buffer.

use std::collections::HashMap;

use actix_ws::{CloseCode, CloseReason, Session};
use session_actor::actor::SessionOutput;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{StreamExt, StreamMap};

use crate::translate::{self, SessionContext};

/// Work for the writer, in order.
pub enum WriterCmd {
    /// A serialized frame.
    Frame(String),
    /// Answer a WebSocket ping.
    Pong(Vec<u8>),
    /// Relay a session's outputs. While `held`, nothing is read from it until
    /// [`WriterCmd::Release`] (so preamble frames can be written first).
    Attach {
        /// How to translate the outputs.
        ctx: SessionContext,
        /// The session's output channel.
        rx: mpsc::Receiver<SessionOutput>,
        /// Wait for `Release`.
        held: bool,
    },
    /// Start reading a held session.
    Release(String),
    /// Stop relaying a session.
    Detach(String),
    /// Send a close frame and stop.
    Close(CloseCode, String),
}

/// Spawns the writer on the current runtime; commands queue up to `capacity`.
pub fn spawn(session: Session, capacity: usize) -> mpsc::Sender<WriterCmd> {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    actix_web::rt::spawn(run(session, rx));
    tx
}

async fn run(mut ws: Session, mut cmds: mpsc::Receiver<WriterCmd>) {
    // Streams are keyed by a number given at attach: `StreamMap` hands out a clone of
    // the key with every item, and a session id would cost an allocation and a string
    // hash per frame.
    let mut slots: HashMap<String, u64> = HashMap::new();
    let mut next_slot = 0u64;
    let mut streams: StreamMap<u64, ReceiverStream<SessionOutput>> = StreamMap::new();
    let mut contexts: HashMap<u64, SessionContext> = HashMap::new();
    let mut held: HashMap<u64, mpsc::Receiver<SessionOutput>> = HashMap::new();
    loop {
        tokio::select! {
            // Commands first: a preamble queued before a release must go out first.
            biased;
            cmd = cmds.recv() => {
                let Some(cmd) = cmd else { break };
                let sent = match cmd {
                    WriterCmd::Frame(f) => ws.text(f).await.is_ok(),
                    WriterCmd::Pong(b) => ws.pong(&b).await.is_ok(),
                    WriterCmd::Attach { ctx, rx, held: wait } => {
                        // A session attached again replaces its earlier stream.
                        if let Some(old) = slots.remove(&ctx.session_id) {
                            streams.remove(&old);
                            held.remove(&old);
                            contexts.remove(&old);
                        }
                        next_slot += 1;
                        slots.insert(ctx.session_id.clone(), next_slot);
                        contexts.insert(next_slot, ctx);
                        if wait {
                            held.insert(next_slot, rx);
                        } else {
                            streams.insert(next_slot, ReceiverStream::new(rx));
                        }
                        true
                    }
                    WriterCmd::Release(id) => {
                        if let Some(slot) = slots.get(&id) {
                            if let Some(rx) = held.remove(slot) {
                                streams.insert(*slot, ReceiverStream::new(rx));
                            }
                        }
                        true
                    }
                    WriterCmd::Detach(id) => {
                        if let Some(slot) = slots.remove(&id) {
                            streams.remove(&slot);
                            held.remove(&slot);
                            contexts.remove(&slot);
                        }
                        true
                    }
                    WriterCmd::Close(code, description) => {
                        let _ = ws.close(Some(CloseReason { code, description: Some(description) })).await;
                        return;
                    }
                };
                if !sent {
                    break;
                }
            }
            Some((slot, out)) = streams.next(), if !streams.is_empty() => {
                let Some(ctx) = contexts.get(&slot) else { continue };
                let frame = translate::output_frame(ctx, &out, chrono::Utc::now().timestamp());
                if ws.text(frame).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = ws.close(None).await;
}
