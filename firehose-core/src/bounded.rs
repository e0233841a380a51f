//! A map that keeps a bounded number of entries and forgets the oldest first: the shape of
//! the small caches shared by concurrent requests (signatures shared between back-fills, where
//! the history API's offset pages start).
//!
//! ```
//! use firehose_core::bounded::BoundedMap;
//!
//! let mut m = BoundedMap::new(2);
//! m.insert("a", 1);
//! m.insert("b", 2);
//! m.insert("c", 3); // "a" is forgotten
//! assert_eq!((m.get(&"a"), m.get(&"c"), m.len()), (None, Some(&3), 2));
//! ```

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// At most `capacity` entries; inserting past it forgets the oldest inserted first.
#[derive(Debug, Clone)]
pub struct BoundedMap<K, V> {
    map: HashMap<K, V>,
    /// Keys in insertion order (may hold keys removed since: skipped when forgetting).
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// An empty map that keeps at most `capacity` entries (0: keeps nothing).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// The value kept for `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// The value kept for `key`, to change in place (its age is unchanged).
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    /// Keeps `value` for `key` (replacing a value already kept), then forgets the oldest
    /// entries beyond the capacity.
    pub fn insert(&mut self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&old);
        }
        // Keys removed by hand linger in `order`: drop them before it outgrows the map.
        if self.order.len() > 2 * self.capacity {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    /// Forgets `key`; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key)
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_under_any_mix_of_inserts_and_removes() {
        let mut m = BoundedMap::new(3);
        for i in 0..1000u32 {
            m.insert(i % 7, i);
            if i % 3 == 0 {
                m.remove(&(i % 5));
            }
            assert!(m.len() <= 3);
            assert!(
                m.order.len() <= 6,
                "order grows with removed keys: {}",
                m.order.len()
            );
        }
        // The newest insert is always kept.
        m.insert(100, 1);
        assert_eq!(m.get(&100), Some(&1));
        let mut none = BoundedMap::new(0);
        none.insert(1, 1);
        assert!(none.is_empty());
    }
}
