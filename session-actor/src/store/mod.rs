//! Where session state lives between connections: behind [`SessionStore`], with an
//! in-memory implementation (the embedded default) and, for clusters, Redis.

mod memory;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;

/// Everything needed to bring a session back: who owns it, how it was configured, and
/// the engine snapshot at `sequence_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Session id.
    pub session_id: String,
    /// Owner; only the owner may resume.
    pub user_id: String,
    /// Changes whenever stored state was lost and recreated (PROTOCOL.md section 4).
    pub epoch: u64,
    /// Sequence id of the last tick contained in `snapshot`.
    pub sequence_id: u64,
    /// Session parameters as JSON (the gateway's start request), to rebuild the slice.
    pub params: String,
    /// `Engine::snapshot()` bytes.
    pub snapshot: Vec<u8>,
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
}

/// Session state storage with a time-to-live: the resume grace period.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores (or replaces) a record, expiring after `ttl`.
    async fn save(&self, record: SessionRecord, ttl: Duration) -> Result<(), StoreError>;
    /// The record of `session_id`, if present and not expired.
    async fn load(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Removes a record; removing a missing one is not an error.
    async fn delete(&self, session_id: &str) -> Result<(), StoreError>;
    /// True when the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
