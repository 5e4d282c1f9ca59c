//! The embedded default store: a map in this process, with expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{SessionRecord, SessionStore, StoreError};

/// In-process session store; state does not survive a restart of this node.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, (Instant, SessionRecord)>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, SessionRecord)>> {
        // A panic while holding the lock cannot leave a half-written entry (inserts and
        // removes are single operations), so a poisoned lock is still consistent.
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn save(&self, record: SessionRecord, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut map = self.lock();
        // Expired entries are dropped on write so the map cannot grow without bound.
        map.retain(|_, (expires, _)| *expires > now);
        map.insert(record.session_id.clone(), (now + ttl, record));
        Ok(())
    }

    async fn load(&self, session_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let map = self.lock();
        Ok(map
            .get(session_id)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, r)| r.clone()))
    }

    async fn delete(&self, session_id: &str) -> Result<(), StoreError> {
        self.lock().remove(session_id);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> SessionRecord {
        SessionRecord {
            session_id: id.into(),
            user_id: "u1".into(),
            epoch: 1,
            sequence_id: 7,
            params: "{}".into(),
            snapshot: vec![1, 2, 3],
        }
    }

    #[tokio::test]
    async fn save_load_delete_and_expiry() {
        let store = MemoryStore::new();
        store
            .save(record("a"), Duration::from_secs(60))
            .await
            .unwrap();
        store
            .save(record("b"), Duration::from_millis(1))
            .await
            .unwrap();
        assert_eq!(store.load("a").await.unwrap(), Some(record("a")));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(store.load("b").await.unwrap(), None);
        store.delete("a").await.unwrap();
        store.delete("missing").await.unwrap();
        assert_eq!(store.load("a").await.unwrap(), None);
    }
}
