//! The embedded default store: a map in this process, with the same ownership,
//! fencing and expiry rules as Redis (so one conformance suite covers both).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{
    Checkpoint, JournalEntry, Lease, SessionMeta, SessionRecord, SessionStore, StoreError,
    StoreFuture, StoreTtl, Write,
};

/// One session's entry.
#[derive(Debug)]
struct Entry {
    token: u64,
    owner: Option<(String, Instant)>,
    meta: Option<SessionMeta>,
    checkpoint: Option<Checkpoint>,
    journal: BTreeMap<u64, JournalEntry>,
    expires: Instant,
}

/// In-process session store; state does not survive a restart of this node.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// When expired entries were last swept out.
    swept: Instant,
}

/// How often expired entries of sessions nobody asks about are dropped. Each call
/// checks the entry it touches, so this only bounds memory: sweeping on every call
/// made each journal append cost a scan of every session on the node.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the entries with `session_id`'s dropped if it expired (and every
    /// expired one at most once per [`SWEEP_EVERY`]).
    fn with<R>(&self, session_id: &str, f: impl FnOnce(&mut HashMap<String, Entry>) -> R) -> R {
        // Every mutation below is complete before the guard drops, so a poisoned lock
        // (a panic elsewhere while holding it) still guards consistent data.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now.duration_since(inner.swept) >= SWEEP_EVERY {
            inner.entries.retain(|_, e| e.expires > now);
            inner.swept = now;
        } else if inner
            .entries
            .get(session_id)
            .is_some_and(|e| e.expires <= now)
        {
            inner.entries.remove(session_id);
        }
        f(&mut inner.entries)
    }

    /// Checks `lease` against the entry and runs `f` on it.
    fn owned<R>(&self, lease: &Lease, f: impl FnOnce(&mut Entry) -> R) -> Result<R, StoreError> {
        self.with(&lease.session_id, |map| {
            match map.get_mut(&lease.session_id) {
                None => Err(StoreError::Lost),
                Some(e) if e.token != lease.token => Err(StoreError::Fenced),
                Some(e) => Ok(f(e)),
            }
        })
    }
}

impl SessionStore for MemoryStore {
    fn acquire<'a>(
        &'a self,
        session_id: &'a str,
        node_id: &'a str,
        expected: u64,
        ttl: StoreTtl,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let now = Instant::now();
            self.with(session_id, |map| {
                let current = map.get(session_id).map_or(0, |e| e.token);
                if current != expected {
                    return Err(StoreError::Conflict { current });
                }
                let entry = map.entry(session_id.to_string()).or_insert_with(|| Entry {
                    token: 0,
                    owner: None,
                    meta: None,
                    checkpoint: None,
                    journal: BTreeMap::new(),
                    expires: now,
                });
                entry.token += 1;
                entry.owner = Some((node_id.to_string(), now + ttl.lease));
                entry.expires = now + ttl.state;
                Ok(Lease {
                    session_id: session_id.to_string(),
                    node_id: node_id.to_string(),
                    token: entry.token,
                })
            })
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, ttl: StoreTtl) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let now = Instant::now();
            self.owned(lease, |e| {
                e.owner = Some((lease.node_id.clone(), now + ttl.lease));
                e.expires = now + ttl.state;
            })
        })
    }

    fn write<'a>(&'a self, lease: &'a Lease, write: Write, ttl: StoreTtl) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let now = Instant::now();
            self.owned(lease, |e| {
                match write {
                    Write::Full(meta, checkpoint) => {
                        e.meta = Some(meta);
                        e.journal = e.journal.split_off(&checkpoint.journal_next);
                        e.checkpoint = Some(checkpoint);
                    }
                    Write::Meta(meta) => e.meta = Some(meta),
                    Write::Checkpoint(checkpoint) => {
                        e.journal = e.journal.split_off(&checkpoint.journal_next);
                        e.checkpoint = Some(checkpoint);
                    }
                    Write::Append(entry) => {
                        e.journal.insert(entry.index, entry);
                    }
                }
                e.expires = now + ttl.state;
            })
        })
    }

    fn load<'a>(&'a self, session_id: &'a str) -> StoreFuture<'a, Option<SessionRecord>> {
        Box::pin(async move {
            Ok(self.with(session_id, |map| {
                let e = map.get(session_id)?;
                Some(SessionRecord {
                    session_id: session_id.to_string(),
                    token: e.token,
                    meta: e.meta.clone()?,
                    checkpoint: e.checkpoint.clone()?,
                    journal: e.journal.values().cloned().collect(),
                })
            }))
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.owned(lease, |e| e.owner = None) })
    }

    fn delete<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.owned(lease, |e| {
                // Keep a tombstone with a newer token until expiry, so the deleted
                // session's old leases stay fenced.
                e.token += 1;
                e.owner = None;
                e.meta = None;
                e.checkpoint = None;
                e.journal.clear();
            })
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move { Ok(()) })
    }
}
