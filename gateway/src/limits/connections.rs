//! Open connections per user on this node, so the plan's cap can be enforced at the
//! handshake. A slot is released when its connection actor is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Connection counts per user.
#[derive(Clone, Default)]
pub struct ConnectionSlots {
    counts: Arc<Mutex<HashMap<String, u32>>>,
}

/// A held connection slot; dropping it frees the slot (and the cluster-wide one).
pub struct ConnectionSlot {
    slots: ConnectionSlots,
    user_id: String,
    cluster: Option<crate::limits::cluster::ClusterSlot>,
}

impl ConnectionSlot {
    /// Holds the cluster-wide slot along with this node's.
    pub fn with_cluster(mut self, cluster: Option<crate::limits::cluster::ClusterSlot>) -> Self {
        self.cluster = cluster;
        self
    }
}

impl ConnectionSlots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // Counts are updated in single statements; a poisoned lock is still consistent.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot for `user_id` unless `limit` are already taken; Err(current count).
    pub fn acquire(&self, user_id: &str, limit: u32) -> Result<ConnectionSlot, u32> {
        let mut counts = self.lock();
        let n = counts.entry(user_id.to_string()).or_insert(0);
        if *n >= limit {
            return Err(*n);
        }
        *n += 1;
        Ok(ConnectionSlot {
            slots: self.clone(),
            user_id: user_id.to_string(),
            cluster: None,
        })
    }

    /// Open connections of `user_id`.
    pub fn count(&self, user_id: &str) -> u32 {
        self.lock().get(user_id).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.lock();
        if let Some(n) = counts.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_and_release() {
        let slots = ConnectionSlots::default();
        let a = slots.acquire("u", 2).unwrap();
        let _b = slots.acquire("u", 2).unwrap();
        assert_eq!(slots.acquire("u", 2).err(), Some(2));
        assert!(slots.acquire("v", 2).is_ok());
        drop(a);
        assert_eq!(slots.count("u"), 1);
        assert!(slots.acquire("u", 2).is_ok());
    }
}
