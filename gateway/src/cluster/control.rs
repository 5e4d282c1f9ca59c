//! Live sessions across the cluster, for operators: which sessions run where, and
//! stopping one wherever it runs.
//!
//! Without Redis the node's own registry is the whole truth. With
//! `session_store.redis_url` set, every node keeps two things in Redis:
//!
//! - an index: `<prefix>:admin:node:<node_id>` holds the node's live sessions as JSON
//!   and expires `session_store.lease_ms` after it was last written; the sorted set
//!   `<prefix>:admin:nodes` lists the nodes by the same expiry (on Redis's clock). Each
//!   node rewrites both every third of the lease time, so a crashed node's sessions
//!   drop out of listings within `lease_ms`, like its plan-limit counts
//!   ([`crate::limits`]).
//! - a control channel: `<prefix>:control`, which every node subscribes to. A stop
//!   names the node that runs the session (from the index); that node stops it and
//!   publishes a reply on the same channel for the asking node, which waits up to
//!   [`STOP_TIMEOUT`] for it.
//!
//! Listings always take this node's sessions from its registry (fresh), and other
//! nodes' from the index (at most a third of the lease time old).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use session_actor::actor::GetState;
use tokio::sync::{oneshot, watch};

use crate::config::Settings;
use crate::registry::{AllLiveSessions, SessionRegistry, StopLiveSession};
use crate::translate::rfc3339;

/// How long a stop waits for the owning node's confirmation.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// One live session as `GET /admin/sessions` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveSession {
    /// Session id.
    pub session_id: String,
    /// Owner.
    pub user_id: String,
    /// The node that runs it (`server.node_id`).
    pub node: String,
    /// Symbols, in request order.
    pub symbols: Vec<String>,
    /// Bar duration (`daily`, `1min`, ...).
    pub timeframe: String,
    /// `ready`, `running` or `paused`.
    pub state: String,
    /// Ticks produced so far (the last `sequence_id`).
    pub ticks: u64,
    /// Bars in the run.
    pub ticks_total: u64,
    /// Share of the bars processed, in percent.
    pub progress_pct: f64,
    /// Time of the last processed bar (RFC 3339).
    pub sim_time: Option<String>,
    /// When the session was created (RFC 3339).
    pub started_at: String,
    /// Stored-state epoch.
    pub epoch: u64,
}

/// Every live session of the cluster as far as it could be seen.
#[derive(Clone, Debug, Default)]
pub struct ClusterSessions {
    /// Newest first.
    pub sessions: Vec<LiveSession>,
    /// Nodes that reported (this one included), sorted.
    pub nodes: Vec<String>,
    /// False when Redis could not be read: only this node's sessions are listed.
    pub complete: bool,
}

/// What became of a stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// Stopped on `node`; `user_id` owned it.
    Stopped {
        /// Where it ran.
        node: String,
        /// Its owner.
        user_id: String,
    },
    /// No node runs a live session with this id (of the user named).
    NotFound,
    /// Several users have a live session with this id (session ids are unique per
    /// user); the stop must name the owner.
    Ambiguous {
        /// The owners, sorted.
        users: Vec<String>,
    },
    /// `node` runs it by the index but did not confirm within [`STOP_TIMEOUT`].
    NoAnswer {
        /// The silent node.
        node: String,
    },
    /// Redis could not be reached, so other nodes could not be asked.
    Unavailable,
}

/// A message on the control channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ControlMessage {
    /// `node`, stop `session_id` of `user_id` and tell `reply_to`. A node of an
    /// earlier version sends no `user_id`: the only live session with that id is meant.
    StopSession {
        request_id: String,
        session_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        node: String,
        reply_to: String,
    },
    /// The answer to a stop: `user_id` is the owner when it was stopped, `None` when
    /// the session was not live on `node` (any more).
    Stopped {
        request_id: String,
        reply_to: String,
        node: String,
        user_id: Option<String>,
    },
}

/// What a node writes to the index.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    /// Unix milliseconds when it was taken (prefers the fresher of two listings of
    /// one session while it moves between nodes).
    at_ms: i64,
    sessions: Vec<LiveSession>,
}

/// KEYS: nodes set, node key. ARGV: ttl ms, snapshot, node id.
const PUBLISH: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
";

/// KEYS: nodes set. The nodes whose entries have not expired.
const NODES: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
";

struct RedisSide {
    conn: ConnectionManager,
    url: String,
    prefix: String,
    ttl: Duration,
    /// Stops waiting for their reply, by request id.
    pending: Mutex<HashMap<String, oneshot::Sender<Option<String>>>>,
}

impl RedisSide {
    fn nodes_key(&self) -> String {
        format!("{}:admin:nodes", self.prefix)
    }

    fn node_key(&self, node: &str) -> String {
        format!("{}:admin:node:{node}", self.prefix)
    }

    fn channel(&self) -> String {
        channel(&self.prefix)
    }

    fn pending(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Option<String>>>> {
        // Single-statement updates; a poisoned map is still consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn write(&self, node: &str, snapshot: &Snapshot) -> Result<(), String> {
        let json = serde_json::to_string(snapshot).map_err(|e| e.to_string())?;
        let mut conn = self.conn.clone();
        redis::cmd("EVAL")
            .arg(PUBLISH)
            .arg(2)
            .arg(self.nodes_key())
            .arg(self.node_key(node))
            .arg(self.ttl.as_millis().max(1) as u64)
            .arg(json)
            .arg(node)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Every other live node's snapshot.
    async fn read(&self, except: &str) -> Result<Vec<(String, Snapshot)>, String> {
        let mut conn = self.conn.clone();
        let nodes: Vec<String> = redis::cmd("EVAL")
            .arg(NODES)
            .arg(1)
            .arg(self.nodes_key())
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let others: Vec<String> = nodes.into_iter().filter(|n| n != except).collect();
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = others.iter().map(|n| self.node_key(n)).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let mut snapshots = Vec::new();
        for (node, value) in others.into_iter().zip(values) {
            // Listed but expired meanwhile: the node is gone.
            let Some(json) = value else { continue };
            match serde_json::from_str::<Snapshot>(&json) {
                Ok(s) => snapshots.push((node, s)),
                Err(e) => {
                    tracing::warn!(node = %node, error = %e, "ignoring an unreadable session index entry")
                }
            }
        }
        Ok(snapshots)
    }

    /// Removes `node` from the index.
    async fn leave(&self, node: &str) -> Result<(), String> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(self.node_key(node))
            .ignore()
            .cmd("ZREM")
            .arg(self.nodes_key())
            .arg(node)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    async fn publish(&self, message: &ControlMessage) -> Result<i64, String> {
        let payload = serde_json::to_string(message).map_err(|e| e.to_string())?;
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(self.channel())
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The Redis channel operators' commands travel on.
pub fn channel(key_prefix: &str) -> String {
    format!("{key_prefix}:control")
}

/// This node's part in the cluster-wide view of live sessions.
pub struct Control {
    node_id: String,
    registry: Addr<SessionRegistry>,
    redis: Option<RedisSide>,
}

impl Control {
    /// The control of this node; with Redis configured, connects and starts keeping
    /// the index and listening on the control channel (for the life of the node).
    /// When `shutdown` turns true the node leaves the index at once (its sessions are
    /// being handed over) and stops following the channel.
    pub async fn start(
        settings: &Settings,
        registry: Addr<SessionRegistry>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Control>, String> {
        let store = &settings.session_store;
        let redis = if store.redis_url.is_empty() {
            None
        } else {
            let conn = crate::redis_link::connect(store.redis_url.expose(), Duration::from_secs(2))
                .await?;
            Some(RedisSide {
                conn,
                url: store.redis_url.expose().to_string(),
                prefix: store.key_prefix.clone(),
                ttl: Duration::from_millis(store.lease_ms.max(3)),
                pending: Mutex::new(HashMap::new()),
            })
        };
        let control = Arc::new(Control {
            node_id: settings.node_id(),
            registry,
            redis,
        });
        if control.redis.is_some() {
            actix_web::rt::spawn(Arc::clone(&control).keep_index(shutdown.clone()));
            let listening = Arc::clone(&control);
            let mut stop = shutdown;
            actix_web::rt::spawn(async move {
                tokio::select! {
                    _ = listening.listen() => {}
                    _ = stopping(&mut stop) => {}
                }
            });
        }
        Ok(control)
    }

    /// This node's name.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// This node's live sessions, read from the registry and the sessions now.
    pub async fn local(&self) -> Vec<LiveSession> {
        let Ok(entries) = self.registry.send(AllLiveSessions).await else {
            return Vec::new();
        };
        // `send` queues every request at once; the sessions answer concurrently.
        let asked: Vec<_> = entries
            .into_iter()
            .map(|e| {
                let view = e.handle.addr.send(GetState);
                (e, view)
            })
            .collect();
        let mut sessions = Vec::with_capacity(asked.len());
        for (entry, view) in asked {
            // A session that stopped meanwhile is simply not listed.
            let Ok(view) = view.await else { continue };
            let state = match serde_json::to_value(view.state) {
                Ok(serde_json::Value::String(s)) => s,
                _ => continue,
            };
            if state == "completed" || state == "error" {
                continue;
            }
            let h = &entry.handle;
            sessions.push(LiveSession {
                session_id: h.session_id.clone(),
                user_id: entry.user_id,
                node: self.node_id.clone(),
                symbols: h.config.symbols.clone(),
                timeframe: h.timeframe.to_string(),
                state,
                ticks: view.sequence_id,
                ticks_total: view.ticks_total,
                progress_pct: view.progress_pct,
                sim_time: view
                    .sim_time
                    .and_then(|t| DateTime::from_timestamp(t, 0))
                    .map(rfc3339),
                started_at: rfc3339(entry.created),
                epoch: view.epoch,
            });
        }
        sessions
    }

    /// Every live session of the cluster, newest first.
    pub async fn cluster(&self) -> ClusterSessions {
        // Session ids are unique per user, so a session is (owner, id).
        let mut by_id: HashMap<(String, String), (i64, LiveSession)> = HashMap::new();
        let mut nodes = vec![self.node_id.clone()];
        let mut complete = true;
        for s in self.local().await {
            // This node's own view is the freshest there is.
            by_id.insert((s.user_id.clone(), s.session_id.clone()), (i64::MAX, s));
        }
        if let Some(redis) = &self.redis {
            match redis.read(&self.node_id).await {
                Ok(snapshots) => {
                    for (node, snapshot) in snapshots {
                        for s in snapshot.sessions {
                            // A session moving between nodes may be in two snapshots
                            // for a moment; the newer one is right.
                            let key = (s.user_id.clone(), s.session_id.clone());
                            match by_id.get(&key) {
                                Some((at, _)) if *at >= snapshot.at_ms => {}
                                _ => {
                                    by_id.insert(key, (snapshot.at_ms, s));
                                }
                            }
                        }
                        nodes.push(node);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the cluster's sessions; listing this node's only");
                    complete = false;
                }
            }
        }
        let mut sessions: Vec<LiveSession> = by_id.into_values().map(|(_, s)| s).collect();
        sessions
            .sort_by(|a, b| (&b.started_at, &b.session_id).cmp(&(&a.started_at, &a.session_id)));
        nodes.sort();
        nodes.dedup();
        ClusterSessions {
            sessions,
            nodes,
            complete,
        }
    }

    /// Stops the live session `session_id` of `user_id` wherever it runs; without a
    /// user, the session with that id when only one user has one live.
    pub async fn stop(&self, session_id: &str, user_id: Option<&str>) -> StopOutcome {
        let user_id = match user_id {
            Some(u) => u.to_string(),
            None => {
                let listing = self.cluster().await;
                let mut users: Vec<String> = listing
                    .sessions
                    .into_iter()
                    .filter(|s| s.session_id == session_id)
                    .map(|s| s.user_id)
                    .collect();
                users.sort();
                users.dedup();
                match users.len() {
                    0 if !listing.complete => return StopOutcome::Unavailable,
                    0 => return StopOutcome::NotFound,
                    1 => users.remove(0),
                    _ => return StopOutcome::Ambiguous { users },
                }
            }
        };
        let here = self
            .registry
            .send(StopLiveSession {
                session_id: session_id.to_string(),
                user_id: Some(user_id.clone()),
            })
            .await;
        if let Ok(Some(user_id)) = here {
            return StopOutcome::Stopped {
                node: self.node_id.clone(),
                user_id,
            };
        }
        let Some(redis) = &self.redis else {
            return StopOutcome::NotFound;
        };
        let snapshots = match redis.read(&self.node_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the cluster's sessions to stop one");
                return StopOutcome::Unavailable;
            }
        };
        let owner = snapshots
            .into_iter()
            .filter(|(_, s)| {
                s.sessions
                    .iter()
                    .any(|x| x.session_id == session_id && x.user_id == user_id)
            })
            .max_by_key(|(_, s)| s.at_ms)
            .map(|(node, _)| node);
        let Some(node) = owner else {
            return StopOutcome::NotFound;
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        redis.pending().insert(request_id.clone(), tx);
        let message = ControlMessage::StopSession {
            request_id: request_id.clone(),
            session_id: session_id.to_string(),
            user_id: Some(user_id),
            node: node.clone(),
            reply_to: self.node_id.clone(),
        };
        let outcome = match redis.publish(&message).await {
            // Nobody subscribed: not even this node hears the channel yet.
            Ok(0) => StopOutcome::NoAnswer { node },
            Ok(_) => match tokio::time::timeout(STOP_TIMEOUT, rx).await {
                Ok(Ok(Some(user_id))) => StopOutcome::Stopped { node, user_id },
                Ok(Ok(None)) => StopOutcome::NotFound,
                Ok(Err(_)) | Err(_) => StopOutcome::NoAnswer { node },
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish a stop on the control channel");
                StopOutcome::Unavailable
            }
        };
        redis.pending().remove(&request_id);
        outcome
    }

    /// Rewrites this node's index entry every third of the lease time; removes it when
    /// the node starts shutting down.
    async fn keep_index(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(redis) = &self.redis else { return };
        let mut tick = tokio::time::interval((redis.ttl / 3).max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping(&mut shutdown) => {
                    if let Err(e) = redis.leave(&self.node_id).await {
                        tracing::warn!(error = %e, "cannot remove this node from the cluster index; it expires there");
                    }
                    return;
                }
            }
            let snapshot = Snapshot {
                at_ms: Utc::now().timestamp_millis(),
                sessions: self.local().await,
            };
            match redis.write(&self.node_id, &snapshot).await {
                Ok(()) => warned = false,
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(error = %e, "cannot write this node's sessions to the cluster index");
                }
                Err(_) => {}
            }
        }
    }

    /// Follows the control channel, reconnecting whenever Redis drops.
    async fn listen(self: Arc<Self>) {
        let Some(redis) = &self.redis else { return };
        let (url, channel) = (redis.url.clone(), redis.channel());
        crate::redis_link::follow(url, channel, "control", |m: ControlMessage| {
            let control = Arc::clone(&self);
            async move { control.handle(m).await }
        })
        .await;
    }

    async fn handle(&self, message: ControlMessage) {
        let Some(redis) = &self.redis else { return };
        match message {
            ControlMessage::StopSession {
                request_id,
                session_id,
                user_id,
                node,
                reply_to,
            } if node == self.node_id => {
                let user_id = self
                    .registry
                    .send(StopLiveSession {
                        session_id,
                        user_id,
                    })
                    .await
                    .ok()
                    .flatten();
                let reply = ControlMessage::Stopped {
                    request_id,
                    reply_to,
                    node,
                    user_id,
                };
                if let Err(e) = redis.publish(&reply).await {
                    tracing::warn!(error = %e, "cannot confirm a stop on the control channel");
                }
            }
            ControlMessage::Stopped {
                request_id,
                reply_to,
                user_id,
                ..
            } if reply_to == self.node_id => {
                if let Some(waiting) = redis.pending().remove(&request_id) {
                    let _ = waiting.send(user_id);
                }
            }
            _ => {}
        }
    }
}

/// Resolves once the node starts shutting down (or its trigger is gone). The watch
/// value's read guard is released here, before anything else runs: held across an
/// await, it would block the sender on this single-threaded runtime.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_round_trip_in_their_wire_form() {
        let stop = ControlMessage::StopSession {
            request_id: "r1".into(),
            session_id: "sess_1".into(),
            user_id: Some("u1".into()),
            node: "node-b".into(),
            reply_to: "node-a".into(),
        };
        let json = serde_json::to_value(&stop).unwrap();
        assert_eq!(json["op"], "stop_session");
        assert_eq!(json["node"], "node-b");
        assert_eq!(json["user_id"], "u1");
        assert_eq!(
            serde_json::from_value::<ControlMessage>(json).unwrap(),
            stop
        );
        // A stop from a node that predates per-user session ids names no user.
        let old = serde_json::json!({"op": "stop_session", "request_id": "r1",
            "session_id": "sess_1", "node": "node-b", "reply_to": "node-a"});
        assert!(matches!(
            serde_json::from_value::<ControlMessage>(old).unwrap(),
            ControlMessage::StopSession { user_id: None, .. }
        ));
        let stopped = ControlMessage::Stopped {
            request_id: "r1".into(),
            reply_to: "node-a".into(),
            node: "node-b".into(),
            user_id: None,
        };
        let json = serde_json::to_string(&stopped).unwrap();
        assert!(json.contains(r#""op":"stopped""#));
        assert_eq!(
            serde_json::from_str::<ControlMessage>(&json).unwrap(),
            stopped
        );
        assert!(serde_json::from_str::<ControlMessage>(r#"{"op":"reboot"}"#).is_err());
        assert_eq!(channel("st"), "st:control");
    }
}
