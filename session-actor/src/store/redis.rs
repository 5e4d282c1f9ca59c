//! The cluster store: sessions in Redis, written through one multiplexed connection
//! (commands from all sessions are pipelined on it, so a write never waits for another
//! session's) that reconnects by itself.
//!
//! Keys of a session share the hash tag `{id}` (one slot in Redis Cluster):
//! `st:{id}:fence` (fencing token), `st:{id}:owner` (`node:token`, expiring after the
//! lease time unless renewed), `st:{id}:meta` (JSON), `st:{id}:base` (binary
//! checkpoint) and `st:{id}:journal` (sorted set of JSON inputs scored by index). All
//! of them expire after the resume grace period unless written or renewed. Every
//! check-and-write is one Lua script, so it is atomic; scripts are sent with `EVAL`
//! (not `EVALSHA`) so a restarted Redis never answers `NOSCRIPT` and a session's
//! writes reach Redis in the order they were issued.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Value};

use super::{
    Checkpoint, JournalEntry, Lease, SessionMeta, SessionRecord, SessionStore, StoreError,
    StoreFuture, StoreTtl, Write,
};

/// Compare-and-set on the fencing token. KEYS: fence, owner. ARGV: expected, node,
/// lease ms, state ms. Returns {1, new token} or {0, current token}.
const ACQUIRE: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur ~= tonumber(ARGV[1]) then return {0, cur} end
local new = cur + 1
redis.call('SET', KEYS[1], new, 'PX', ARGV[4])
redis.call('SET', KEYS[2], ARGV[2] .. ':' .. new, 'PX', ARGV[3])
return {1, new}
";

/// Shared prologue of the owner-only scripts. KEYS: fence, owner, meta, base,
/// journal. ARGV[1]: token. Returns -1 (lost) or 0 (fenced) when not the owner.
const OWNER_CHECK: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cur ~= ARGV[1] then return 0 end
";

/// ARGV: token, node, lease ms, state ms.
const RENEW: &str = r"
redis.call('SET', KEYS[2], ARGV[2] .. ':' .. ARGV[1], 'PX', ARGV[3])
for _, k in ipairs({KEYS[1], KEYS[3], KEYS[4], KEYS[5]}) do redis.call('PEXPIRE', k, ARGV[4]) end
return 1
";

/// ARGV: token, state ms, kind, then per kind: full (meta, base, journal_next),
/// meta (meta), checkpoint (base, journal_next), append (index, entry).
const WRITE: &str = r"
local kind = ARGV[3]
if kind == 'full' or kind == 'meta' then redis.call('SET', KEYS[3], ARGV[4]) end
if kind == 'full' then
  redis.call('SET', KEYS[4], ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[6])
elseif kind == 'checkpoint' then
  redis.call('SET', KEYS[4], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[5])
elseif kind == 'append' then
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[5])
end
for _, k in ipairs({KEYS[1], KEYS[3], KEYS[4], KEYS[5]}) do redis.call('PEXPIRE', k, ARGV[2]) end
return 1
";

/// ARGV: token.
const RELEASE: &str = r"
redis.call('DEL', KEYS[2])
return 1
";

/// ARGV: token, state ms. Leaves a newer token behind so old leases stay fenced.
const DELETE: &str = r"
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('SET', KEYS[1], tonumber(ARGV[1]) + 1, 'PX', ARGV[2])
return 1
";

/// KEYS: fence, owner, meta, base, journal. Returns {fence, meta, base, journal}.
const LOAD: &str = r"
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4]),
        redis.call('ZRANGE', KEYS[5], 0, -1)}
";

/// Session state in Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    // Redis errors name the server's address at most, never credentials.
    StoreError::Unavailable(e.to_string())
}

fn ms(d: std::time::Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl RedisStore {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`). Keys start with
    /// `prefix` (`st` in production; tests use their own).
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let client = Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid Redis URL: {}", e.category())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(2)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(RedisStore {
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn keys(&self, session_id: &str) -> [String; 5] {
        let p = &self.prefix;
        ["fence", "owner", "meta", "base", "journal"].map(|k| format!("{p}:{{{session_id}}}:{k}"))
    }

    async fn eval(
        &self,
        script: &str,
        session_id: &str,
        args: Vec<Vec<u8>>,
    ) -> Result<Value, StoreError> {
        let keys = self.keys(session_id);
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(keys.len());
        for k in &keys {
            cmd.arg(k);
        }
        for a in args {
            cmd.arg(a);
        }
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(unavailable)
    }

    /// Runs an owner-only script for `lease`.
    async fn owned(
        &self,
        lease: &Lease,
        body: &str,
        mut args: Vec<Vec<u8>>,
    ) -> Result<(), StoreError> {
        args.insert(0, lease.token.to_string().into_bytes());
        let script = format!("{OWNER_CHECK}{body}");
        match self.eval(&script, &lease.session_id, args).await? {
            Value::Int(1) => Ok(()),
            Value::Int(0) => Err(StoreError::Fenced),
            Value::Int(-1) => Err(StoreError::Lost),
            other => Err(StoreError::Corrupt(format!(
                "unexpected script reply {other:?}"
            ))),
        }
    }
}

fn text(s: impl ToString) -> Vec<u8> {
    s.to_string().into_bytes()
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Plain data types; serializing them to JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

impl SessionStore for RedisStore {
    fn acquire<'a>(
        &'a self,
        session_id: &'a str,
        node_id: &'a str,
        expected: u64,
        ttl: StoreTtl,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let args = vec![
                text(expected),
                text(node_id),
                text(ms(ttl.lease)),
                text(ms(ttl.state)),
            ];
            let reply = self.eval(ACQUIRE, session_id, args).await?;
            let pair: Option<(i64, i64)> = match reply {
                Value::Array(v) if v.len() == 2 => match (&v[0], &v[1]) {
                    (Value::Int(a), Value::Int(b)) => Some((*a, *b)),
                    _ => None,
                },
                _ => None,
            };
            match pair {
                Some((1, token)) => Ok(Lease {
                    session_id: session_id.to_string(),
                    node_id: node_id.to_string(),
                    token: token as u64,
                }),
                Some((0, current)) => Err(StoreError::Conflict {
                    current: current as u64,
                }),
                _ => Err(StoreError::Corrupt("unexpected acquire reply".into())),
            }
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, ttl: StoreTtl) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let args = vec![
                text(&lease.node_id),
                text(ms(ttl.lease)),
                text(ms(ttl.state)),
            ];
            self.owned(lease, RENEW, args).await
        })
    }

    fn write<'a>(&'a self, lease: &'a Lease, write: Write, ttl: StoreTtl) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut args = vec![text(ms(ttl.state))];
            match write {
                Write::Full(meta, cp) => {
                    args.extend([
                        text("full"),
                        json(&meta),
                        cp.encode(),
                        text(cp.journal_next),
                    ]);
                }
                Write::Meta(meta) => args.extend([text("meta"), json(&meta)]),
                Write::Checkpoint(cp) => {
                    args.extend([text("checkpoint"), cp.encode(), text(cp.journal_next)]);
                }
                Write::Append(entry) => {
                    args.extend([text("append"), text(entry.index), json(&entry)])
                }
            }
            self.owned(lease, WRITE, args).await
        })
    }

    fn load<'a>(&'a self, session_id: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        Box::pin(async move {
            let Value::Array(mut parts) = self.eval(LOAD, session_id, Vec::new()).await? else {
                return Err(StoreError::Corrupt("unexpected load reply".into()));
            };
            if parts.len() != 4 {
                return Err(StoreError::Corrupt("unexpected load reply".into()));
            }
            let journal = parts.pop().unwrap_or(Value::Nil);
            let base = parts.pop().and_then(bytes);
            let meta = parts.pop().and_then(bytes);
            let token = parts.pop().and_then(bytes);
            let (Some(token), Some(meta), Some(base)) = (token, meta, base) else {
                return Ok(None);
            };
            let token: u64 = std::str::from_utf8(&token)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| StoreError::Corrupt("fencing token is not a number".into()))?;
            let meta: SessionMeta = serde_json::from_slice(&meta)
                .map_err(|e| StoreError::Corrupt(format!("session metadata: {e}")))?;
            let checkpoint = Checkpoint::decode(&base)?;
            let entries = match journal {
                Value::Array(items) => items,
                _ => Vec::new(),
            };
            let journal = entries
                .into_iter()
                .map(|v| {
                    let raw =
                        bytes(v).ok_or_else(|| StoreError::Corrupt("journal entry".into()))?;
                    serde_json::from_slice::<JournalEntry>(&raw)
                        .map_err(|e| StoreError::Corrupt(format!("journal entry: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(SessionRecord {
                session_id: session_id.to_string(),
                token,
                meta,
                checkpoint,
                journal,
            }))
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.owned(lease, RELEASE, Vec::new()).await })
    }

    fn delete<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // The tombstone outlives any grace period a session could still be in.
            let args = vec![text(ms(std::time::Duration::from_secs(24 * 3600)))];
            self.owned(lease, DELETE, args).await
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let pong: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(StoreError::Unavailable(format!(
                    "unexpected PING reply {pong}"
                )))
            }
        })
    }
}
