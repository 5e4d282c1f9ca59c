//! Every limit the gateway counts, in one place:
//! - [`requests`]: request rate windows (`auth`, `ws_connect`, `health`, `api`), in
//!   Redis when configured, else in memory;
//! - [`messages`]: client messages per second on one connection;
//! - [`Concurrency`]: the plan caps on concurrent connections and sessions per user,
//!   counted on this node ([`connections`]) and, with Redis, across the cluster
//!   ([`cluster`]).
//!
//! Callers never ask whether Redis is configured: each counter falls back to this
//! node's own count when Redis is absent or cannot answer.

pub mod cluster;
pub mod connections;
pub mod messages;
pub mod requests;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use self::cluster::{ClusterCounts, ClusterSlot, Kind};
use self::connections::{ConnectionSlot, ConnectionSlots};

/// Concurrent connections and sessions per user, against the plan's caps.
pub struct Concurrency {
    node_id: String,
    local: ConnectionSlots,
    cluster: Option<Arc<ClusterCounts>>,
    /// Numbers this node's connections in the cluster-wide counts.
    opened: AtomicU64,
}

impl Concurrency {
    /// Counts on this node only.
    pub fn local() -> Self {
        Self::new(String::new(), None)
    }

    /// Counts on this node, and across the cluster when `cluster` is given.
    pub fn new(node_id: String, cluster: Option<Arc<ClusterCounts>>) -> Self {
        Self {
            node_id,
            local: ConnectionSlots::default(),
            cluster,
            opened: AtomicU64::new(0),
        }
    }

    /// Takes a connection slot for `user_id` unless `limit` are open on this node or,
    /// with Redis, across the cluster; `Err` with the number open. Dropping the slot
    /// gives both back.
    pub async fn connection(&self, user_id: &str, limit: u32) -> Result<ConnectionSlot, u32> {
        let slot = self.local.acquire(user_id, limit)?;
        let Some(counts) = &self.cluster else {
            return Ok(slot);
        };
        let n = self.opened.fetch_add(1, Ordering::Relaxed);
        let member = format!("{}:{n}", self.node_id);
        match ClusterSlot::connection(counts, user_id, member, limit).await {
            Ok(Ok(cluster)) => Ok(slot.with_cluster(Some(cluster))),
            Ok(Err(open)) => Err(open),
            Err(e) => {
                tracing::warn!(error = %e, "cluster-wide connection count unavailable; this node's count applies");
                Ok(slot)
            }
        }
    }

    /// Counts a session against the user's limit across the cluster (this node's own
    /// sessions are capped by the registry that holds them); `Err` with the message
    /// when the limit is reached. Without Redis, or without an answer from it, this
    /// node's count alone applies.
    pub async fn session(
        &self,
        user_id: &str,
        session_id: &str,
        max_sessions: u32,
    ) -> Result<(), String> {
        let Some(counts) = &self.cluster else {
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

    /// Gives a session's slot back.
    pub fn release_session(&self, user_id: &str, session_id: &str) {
        if let Some(counts) = &self.cluster {
            counts.release(Kind::Sessions, user_id, session_id);
        }
    }

    /// Open connections and live sessions of `user`: across the cluster with Redis,
    /// else (or while Redis cannot answer) on this node, where `local_sessions` counts
    /// the sessions.
    pub async fn in_use(
        &self,
        user: &str,
        local_sessions: impl Future<Output = u32>,
    ) -> (u32, u32) {
        if let Some(counts) = &self.cluster {
            if let (Ok(c), Ok(s)) = (
                counts.count(Kind::Connections, user).await,
                counts.count(Kind::Sessions, user).await,
            ) {
                return (c, s);
            }
        }
        (self.local.count(user), local_sessions.await)
    }
}
