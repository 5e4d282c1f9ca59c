//! A least-recently-used cache bounded by bytes rather than entry count, because series
//! range from a few kilobytes (daily) to hundreds of megabytes (years of 1-minute bars).

use std::collections::HashMap;
use std::hash::Hash;

/// Counters describing cache behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounters {
    /// Entries currently held.
    pub entries: usize,
    /// Bytes currently held.
    pub bytes: usize,
    /// Entries evicted to make room.
    pub evictions: u64,
}

/// LRU map whose entries each declare their size in bytes.
///
/// Eviction scans for the oldest entry: the cache holds tens to hundreds of large series,
/// where a linear scan per eviction costs nothing next to loading one series.
#[derive(Debug)]
pub struct ByteLru<K, V> {
    max_bytes: usize,
    bytes: usize,
    tick: u64,
    evictions: u64,
    entries: HashMap<K, Entry<V>>,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    bytes: usize,
    used: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> ByteLru<K, V> {
    /// An empty cache holding at most `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        ByteLru {
            max_bytes,
            bytes: 0,
            tick: 0,
            evictions: 0,
            entries: HashMap::new(),
        }
    }

    /// The value for `key`, marking it most recently used.
    pub fn get(&mut self, key: &K) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|e| {
            e.used = tick;
            e.value.clone()
        })
    }

    /// Inserts `value` of size `bytes`, evicting least recently used entries until it
    /// fits. A value larger than the whole budget is not cached (returns false).
    pub fn insert(&mut self, key: K, value: V, bytes: usize) -> bool {
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.bytes;
        }
        if bytes > self.max_bytes {
            return false;
        }
        while self.bytes + bytes > self.max_bytes {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.bytes;
                self.evictions += 1;
            }
        }
        self.tick += 1;
        self.bytes += bytes;
        self.entries.insert(
            key,
            Entry {
                value,
                bytes,
                used: self.tick,
            },
        );
        true
    }

    /// True when `key` is cached (without touching its recency).
    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Current counters.
    pub fn counters(&self) -> CacheCounters {
        CacheCounters {
            entries: self.entries.len(),
            bytes: self.bytes,
            evictions: self.evictions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_by_bytes() {
        let mut lru = ByteLru::new(100);
        assert!(lru.insert("a", 1, 40));
        assert!(lru.insert("b", 2, 40));
        assert_eq!(lru.get(&"a"), Some(1)); // b is now the oldest
        assert!(lru.insert("c", 3, 40));
        assert!(!lru.contains(&"b"));
        assert!(lru.contains(&"a") && lru.contains(&"c"));
        assert_eq!(
            lru.counters(),
            CacheCounters {
                entries: 2,
                bytes: 80,
                evictions: 1
            }
        );
        assert!(!lru.insert("huge", 4, 101));
        assert_eq!(lru.counters().bytes, 80);
        assert!(lru.insert("a", 5, 10)); // replacing frees the old size
        assert_eq!(lru.counters().bytes, 50);
        assert_eq!(lru.get(&"a"), Some(5));
    }
}
