//! A bounded, TTL'd map for KV lookups (hits and misses alike), with time injected.
//!
//! Bounded by `capacity`: when full, expired entries go first, then the oldest insertions (FIFO), so a
//! flood of random keys costs memory up to the bound and no more.

use std::collections::{HashMap, VecDeque};

pub struct TtlCache<V> {
    map: HashMap<String, Entry<V>>,
    order: VecDeque<(String, u64)>,
    capacity: usize,
    seq: u64,
}

struct Entry<V> {
    value: V,
    expires_at: f64,
    seq: u64,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(capacity: usize) -> Self {
        TtlCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The cached value, if present and not expired at `now` (ms).
    pub fn get(&mut self, key: &str, now: f64) -> Option<V> {
        match self.map.get(key) {
            Some(e) if now < e.expires_at => Some(e.value.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&mut self, key: String, value: V, now: f64, ttl_ms: f64) {
        if ttl_ms <= 0.0 {
            return;
        }
        self.seq += 1;
        if !self.map.contains_key(&key) && self.map.len() >= self.capacity {
            self.evict(now);
        }
        self.order.push_back((key.clone(), self.seq));
        self.map.insert(
            key,
            Entry {
                value,
                expires_at: now + ttl_ms,
                seq: self.seq,
            },
        );
        // Keep the order queue from growing without bound when the same keys are re-inserted.
        if self.order.len() > self.capacity * 2 {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|e| e.seq == *s));
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    fn evict(&mut self, now: f64) {
        self.map.retain(|_, e| now < e.expires_at);
        while self.map.len() >= self.capacity {
            let Some((key, seq)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                self.map.remove(&key);
            }
        }
    }
}
