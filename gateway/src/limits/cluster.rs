//! Per-user concurrent connections and sessions counted across the cluster, in Redis.
//!
//! Each count is a sorted set `<prefix>:count:<kind>:<user>` whose members are the
//! things counted (`<node>:<n>` for a connection, the session id for a session) and
//! whose scores are expiry times on Redis's clock. Taking a slot is one Lua script
//! (drop expired members, compare with the limit, add), so two nodes cannot both take
//! the last slot. Every node refreshes the members it holds every third of the lease
//! time; the members of a node that died stop being refreshed and expire within
//! `session_store.lease_ms`, so its users get their slots back within seconds.
//!
//! When Redis cannot be reached, limits fall back to this node's own counts (which the
//! gateway always keeps) and a warning is logged; see the README's degraded modes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Value;

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Open WebSocket connections.
    Connections,
    /// Live simulation sessions.
    Sessions,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Connections => "connections",
            Kind::Sessions => "sessions",
        }
    }
}

/// KEYS: the set. ARGV: member, limit, ttl ms. Returns {1, count} when taken (or
/// already held), {0, count} when full.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
if not held and n >= tonumber(ARGV[2]) then return {0, n} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if held then return {1, n} end
return {1, n + 1}
";

/// KEYS: the set. ARGV: ttl ms, members... Extends (or restores) this node's members.
const REFRESH: &str = r"
local t = redis.call('TIME')
local at = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], at, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// KEYS: the set. Returns the members not yet expired.
const COUNT: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
";

/// Cluster-wide counts in Redis, and the members this node holds.
pub struct ClusterCounts {
    conn: ConnectionManager,
    prefix: String,
    ttl: Duration,
    held: Mutex<HashMap<String, HashSet<String>>>,
}

impl ClusterCounts {
    /// Connects to Redis; counts expire `ttl` after their node stops refreshing them.
    pub async fn connect(url: &str, prefix: &str, ttl: Duration) -> Result<Arc<Self>, String> {
        let conn = crate::redis_link::connect(url, Duration::from_secs(2)).await?;
        Ok(Arc::new(ClusterCounts {
            conn,
            prefix: prefix.to_string(),
            ttl,
            held: Mutex::new(HashMap::new()),
        }))
    }

    fn key(&self, kind: Kind, user: &str) -> String {
        format!("{}:count:{}:{user}", self.prefix, kind.name())
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        // Single-statement updates; a poisoned lock still holds consistent sets.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ttl_ms(&self) -> u64 {
        (self.ttl.as_millis() as u64).max(1)
    }

    /// Takes a slot for `member` unless `limit` are taken across the cluster:
    /// `Ok(Ok(()))` taken, `Ok(Err(count))` full, `Err` when Redis cannot answer.
    pub async fn acquire(
        &self,
        kind: Kind,
        user: &str,
        member: &str,
        limit: u32,
    ) -> Result<Result<(), u32>, String> {
        let key = self.key(kind, user);
        let mut conn = self.conn.clone();
        let reply: Value = redis::cmd("EVAL")
            .arg(ACQUIRE)
            .arg(1)
            .arg(&key)
            .arg(member)
            .arg(limit)
            .arg(self.ttl_ms())
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let (taken, count) = match reply {
            Value::Array(v) => match (v.first(), v.get(1)) {
                (Some(Value::Int(t)), Some(Value::Int(n))) => (*t == 1, *n),
                _ => return Err("unexpected reply".into()),
            },
            _ => return Err("unexpected reply".into()),
        };
        if !taken {
            return Ok(Err(count.max(0) as u32));
        }
        self.held()
            .entry(key)
            .or_default()
            .insert(member.to_string());
        Ok(Ok(()))
    }

    /// How many slots of `kind` `user` holds across the cluster.
    pub async fn count(&self, kind: Kind, user: &str) -> Result<u32, String> {
        let mut conn = self.conn.clone();
        let n: i64 = redis::cmd("EVAL")
            .arg(COUNT)
            .arg(1)
            .arg(self.key(kind, user))
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(n.clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// Gives a slot back (in the background).
    pub fn release(self: &Arc<Self>, kind: Kind, user: &str, member: &str) {
        let key = self.key(kind, user);
        {
            let mut held = self.held();
            if let Some(members) = held.get_mut(&key) {
                members.remove(member);
                if members.is_empty() {
                    held.remove(&key);
                }
            }
        }
        let mut conn = self.conn.clone();
        let member = member.to_string();
        actix_web::rt::spawn(async move {
            let _: Result<i64, _> = redis::cmd("ZREM")
                .arg(&key)
                .arg(&member)
                .query_async(&mut conn)
                .await;
        });
    }

    /// Keeps this node's slots alive; run for the life of the node.
    pub async fn refresh(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let held: Vec<(String, Vec<String>)> = self
                .held()
                .iter()
                .map(|(k, m)| (k.clone(), m.iter().cloned().collect()))
                .collect();
            if held.is_empty() {
                continue;
            }
            let mut pipe = redis::pipe();
            for (key, members) in &held {
                pipe.cmd("EVAL")
                    .arg(REFRESH)
                    .arg(1)
                    .arg(key)
                    .arg(self.ttl_ms())
                    .arg(members)
                    .ignore();
            }
            let mut conn = self.conn.clone();
            if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                tracing::warn!(error = %e, "cannot refresh cluster-wide counts");
            }
        }
    }
}

/// A connection's cluster-wide slot; dropping it gives the slot back.
pub struct ClusterSlot {
    counts: Arc<ClusterCounts>,
    user: String,
    member: String,
}

impl ClusterSlot {
    /// Takes a connection slot for `user` across the cluster.
    pub async fn connection(
        counts: &Arc<ClusterCounts>,
        user: &str,
        member: String,
        limit: u32,
    ) -> Result<Result<ClusterSlot, u32>, String> {
        Ok(counts
            .acquire(Kind::Connections, user, &member, limit)
            .await?
            .map(|()| ClusterSlot {
                counts: Arc::clone(counts),
                user: user.to_string(),
                member,
            }))
    }
}

impl Drop for ClusterSlot {
    fn drop(&mut self) {
        self.counts
            .release(Kind::Connections, &self.user, &self.member);
    }
}
