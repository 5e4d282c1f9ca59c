//! Where session state lives between connections and across nodes: behind
//! [`SessionStore`], with an in-memory implementation (the embedded default) and Redis
//! (for clusters).
//!
//! # What is stored
//! A session is stored as its [`SessionMeta`] (owner, parameters, epoch, run state), a
//! [`Checkpoint`] (an engine snapshot at some tick) and a journal of the client inputs
//! accepted after that checkpoint ([`JournalEntry`]: order batches and cancels, each
//! tagged with the tick it was applied after). The engine is deterministic, so the
//! checkpoint plus the journal rebuild the session at any tick from the checkpoint on:
//! a node that takes a session over restores the checkpoint and replays bars and
//! inputs silently up to the client's `last_sequence_id` ([`replay`]), then continues
//! live, producing exactly what the first node would have produced.
//!
//! Inputs are journaled before they are acknowledged (`batch_ack` is sent only after
//! the append returns), so nothing acknowledged is lost. Checkpoints only bound the
//! replay and the journal's length.
//!
//! # Ownership
//! At most one node owns a session. Taking ownership ([`SessionStore::acquire`]) is a
//! compare-and-set on the session's fencing token: it succeeds only if the token is
//! still the one the caller read, so of two nodes racing to resume the same session
//! exactly one wins. Every write carries the owner's token and is refused once another
//! node has taken over ([`StoreError::Fenced`]), so a paused or partitioned old owner
//! cannot overwrite newer state; owners renew their lease periodically and stop the
//! session when the renewal is fenced.

mod memory;
mod redis;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use engine::{Command, Engine, Scheduled};
use model::Slice;
use serde::{Deserialize, Serialize};

pub use self::redis::RedisStore;
pub use memory::MemoryStore;

/// Who owns a session, and the fencing token every write of theirs carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Session id.
    pub session_id: String,
    /// The owning node.
    pub node_id: String,
    /// Fencing token: increases with every change of owner.
    pub token: u64,
}

/// A session's run state as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredState {
    /// Created, not started.
    Ready,
    /// Producing ticks.
    Running,
    /// Paused by the client.
    Paused,
    /// Finished; results were emitted and stored.
    Completed,
}

/// How the session paces ticks, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPacing {
    /// Lock-step (`flow_control: true`).
    pub flow_control: bool,
    /// Credit window in lock-step.
    pub window: u32,
    /// Milliseconds between ticks when streaming; 0 for as fast as possible.
    pub interval_ms: u64,
}

/// Everything about a session but its engine state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMeta {
    /// Owner; only the owner may resume.
    pub user_id: String,
    /// Changes whenever stored state was lost and recreated (PROTOCOL.md section 4).
    pub epoch: u64,
    /// Session parameters as JSON (the start request), to rebuild the slice.
    pub params: String,
    /// Run state.
    pub state: StoredState,
    /// Pacing.
    pub pacing: StoredPacing,
}

/// An engine snapshot and where the journal continues after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence id of the last tick contained in `snapshot`.
    pub sequence_id: u64,
    /// Index of the first journal entry not contained in `snapshot`.
    pub journal_next: u64,
    /// `Engine::snapshot()` bytes.
    pub snapshot: Vec<u8>,
}

impl Checkpoint {
    /// Binary form: sequence id and journal index (little-endian u64 each), then the
    /// snapshot (which carries its own magic and format version).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.snapshot.len());
        out.extend_from_slice(&self.sequence_id.to_le_bytes());
        out.extend_from_slice(&self.journal_next.to_le_bytes());
        out.extend_from_slice(&self.snapshot);
        out
    }

    /// Inverse of [`Checkpoint::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, StoreError> {
        if bytes.len() < 16 {
            return Err(StoreError::Corrupt(
                "checkpoint shorter than its header".into(),
            ));
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(b)
        };
        Ok(Checkpoint {
            sequence_id: word(0),
            journal_next: word(8),
            snapshot: bytes[16..].to_vec(),
        })
    }
}

/// One journaled input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position in the session's journal, from 0.
    pub index: u64,
    /// The engine's sequence id when the input was applied (after that tick).
    pub sequence_id: u64,
    /// What was applied.
    pub input: Command,
}

/// Replay applies an entry after the tick it was accepted at, as the session did.
impl Scheduled for JournalEntry {
    fn after(&self) -> u64 {
        self.sequence_id
    }

    fn into_command(self) -> Command {
        self.input
    }
}

/// A stored session, with the fencing token current when it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Session id.
    pub session_id: String,
    /// Current fencing token; pass it to [`SessionStore::acquire`] to take over.
    pub token: u64,
    /// Owner, parameters, state.
    pub meta: SessionMeta,
    /// The latest checkpoint.
    pub checkpoint: Checkpoint,
    /// Inputs after the checkpoint, by index.
    pub journal: Vec<JournalEntry>,
}

/// A change to a stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Metadata and a checkpoint together (a new or re-established session).
    Full(SessionMeta, Checkpoint),
    /// Metadata only (state or pacing changed).
    Meta(SessionMeta),
    /// A newer checkpoint; journal entries it contains are dropped.
    Checkpoint(Checkpoint),
    /// An accepted input.
    Append(JournalEntry),
}

/// How long things live in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreTtl {
    /// An owner that stops renewing is presumed gone after this.
    pub lease: Duration,
    /// Stored state without any write or renewal: the resume grace period.
    pub state: Duration,
}

/// A store failure. Messages never contain secrets or connection strings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or answered with an error.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// Stored bytes could not be decoded.
    #[error("stored session is corrupt: {0}")]
    Corrupt(String),
    /// Another node took the session over; this lease can no longer write.
    #[error("the session is owned by another node now")]
    Fenced,
    /// The store no longer has the session (expired, deleted, or the store lost its
    /// data); this lease can no longer write.
    #[error("the stored session is gone")]
    Lost,
    /// `acquire` lost the race: the session's token is not the one expected.
    #[error("the session was taken over meanwhile (token {current})")]
    Conflict {
        /// The token now.
        current: u64,
    },
}

/// What a [`SessionStore`] method returns: a boxed future, so stores can be used as
/// `dyn SessionStore` (the session actor, the registry and the gateway's metered
/// wrapper hold one without knowing which).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Session state storage with ownership, fencing and expiry.
pub trait SessionStore: Send + Sync + 'static {
    /// Takes ownership of `session_id` for `node_id` if its fencing token is still
    /// `expected` (0: a session the store does not know). Returns the new lease.
    fn acquire<'a>(
        &'a self,
        session_id: &'a str,
        node_id: &'a str,
        expected: u64,
        ttl: StoreTtl,
    ) -> StoreFuture<'a, Lease>;
    /// Extends the lease and the stored state's lifetime.
    fn renew<'a>(&'a self, lease: &'a Lease, ttl: StoreTtl) -> StoreFuture<'a, ()>;
    /// Applies `write` if `lease` still owns the session.
    fn write<'a>(&'a self, lease: &'a Lease, write: Write, ttl: StoreTtl) -> StoreFuture<'a, ()>;
    /// The stored session, if present, complete and not expired.
    fn load<'a>(&'a self, session_id: &'a str) -> StoreFuture<'a, Option<SessionRecord>>;
    /// Gives up ownership, keeping the state (until it expires) for another node.
    fn release<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()>;
    /// Removes the state for good; later writes of any older lease are fenced.
    fn delete<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, ()>;
    /// True when the backend answers.
    fn ping(&self) -> StoreFuture<'_, ()>;
}

/// Why a stored session could not be brought to a tick.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The target is before the checkpoint.
    #[error("stored state starts after tick {target} (at {checkpoint})")]
    BeforeCheckpoint {
        /// Requested tick.
        target: u64,
        /// Checkpoint tick.
        checkpoint: u64,
    },
    /// The target is past the end of the run.
    #[error("tick {target} is past the end of the run ({steps} ticks)")]
    PastEnd {
        /// Requested tick.
        target: u64,
        /// Ticks in the run.
        steps: usize,
    },
}

/// Brings `engine` (restored from `checkpoint`) forward to tick `target`: bars are
/// processed and journaled inputs applied after the tick they were accepted at, and
/// every output is discarded (the client already has it). Returns the journal entries
/// still ahead (applied after a later tick), in order.
pub fn replay(
    engine: &mut Engine,
    slice: &Slice,
    checkpoint: &Checkpoint,
    journal: Vec<JournalEntry>,
    target: u64,
) -> Result<VecDeque<JournalEntry>, ReplayError> {
    if target < checkpoint.sequence_id {
        return Err(ReplayError::BeforeCheckpoint {
            target,
            checkpoint: checkpoint.sequence_id,
        });
    }
    if target as usize > slice.steps.len() {
        return Err(ReplayError::PastEnd {
            target,
            steps: slice.steps.len(),
        });
    }
    let mut pending: VecDeque<JournalEntry> = journal
        .into_iter()
        .filter(|e| e.index >= checkpoint.journal_next)
        .collect();
    pending.make_contiguous().sort_by_key(|e| e.index);
    let mut discard = Vec::new();
    loop {
        engine.apply_due(&mut pending);
        let seq = engine.sequence_id();
        if seq >= target {
            break;
        }
        let step = slice.steps[seq as usize];
        discard.clear();
        engine.on_step(&step, slice.bars_of(&step), &mut discard);
    }
    Ok(pending)
}

/// Why a stored session could not be taken over.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoverError {
    /// The snapshot was written by another engine version, or is damaged.
    #[error("stored state cannot be restored: {0}")]
    Snapshot(#[from] engine::SnapshotError),
    /// The client's tick is outside what the stored state covers.
    #[error("{0}")]
    Replay(#[from] ReplayError),
    /// The store refused or failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// A stored session brought to the client's tick and owned by this node.
pub struct Recovered {
    /// The engine at `target`.
    pub engine: Engine,
    /// What the session actor continues with.
    pub ownership: crate::actor::Ownership,
}

/// Takes a stored session over: restores its checkpoint, replays to `target` (the
/// client's `last_sequence_id`), then acquires it with the token read, so of several
/// nodes doing this at once exactly one succeeds ([`StoreError::Conflict`] for the
/// others).
pub async fn recover(
    store: &dyn SessionStore,
    record: SessionRecord,
    slice: &Slice,
    node_id: &str,
    target: u64,
    ttl: StoreTtl,
) -> Result<Recovered, RecoverError> {
    let mut engine = Engine::restore(&record.checkpoint.snapshot)?;
    if engine.sequence_id() != record.checkpoint.sequence_id {
        return Err(
            StoreError::Corrupt("checkpoint tick does not match its snapshot".into()).into(),
        );
    }
    let journal_next = record
        .journal
        .iter()
        .map(|e| e.index + 1)
        .max()
        .unwrap_or(0)
        .max(record.checkpoint.journal_next);
    let redo = replay(
        &mut engine,
        slice,
        &record.checkpoint,
        record.journal,
        target,
    )?;
    let lease = store
        .acquire(&record.session_id, node_id, record.token, ttl)
        .await?;
    let meta = record.meta;
    let pacing = (meta.state != StoredState::Ready).then_some(if meta.pacing.flow_control {
        crate::actor::Pacing::LockStep {
            window: meta.pacing.window.max(1),
        }
    } else {
        crate::actor::Pacing::Stream {
            interval_ms: meta.pacing.interval_ms,
        }
    });
    Ok(Recovered {
        engine,
        ownership: crate::actor::Ownership {
            lease,
            epoch: meta.epoch,
            journal_next,
            redo,
            checkpointed: record.checkpoint.sequence_id,
            state: meta.state,
            pacing,
            acked: target,
        },
    })
}

#[cfg(test)]
pub(crate) mod conformance;
