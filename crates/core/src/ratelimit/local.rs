//! The `local` policy's counters: one map per Worker isolate, no round trip.
//!
//! Approximate by design (as Kong's `local` policy): every isolate, in every location, counts on its
//! own, so the effective limit is multiplied by the number of isolates serving the key, and counts are
//! lost when an isolate is evicted. The arithmetic is the same [`decide`] as the Durable Object's.

use super::algorithm::{decide_op, Decision, Op, Spec, State};
use std::collections::HashMap;

/// Counters kept in memory, bounded in size.
#[derive(Debug)]
pub struct LocalCounters {
    states: HashMap<String, State>,
    max_entries: usize,
}

impl Default for LocalCounters {
    fn default() -> Self {
        LocalCounters::new(DEFAULT_MAX_ENTRIES)
    }
}

/// Keys kept per isolate before expired ones are swept.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

impl LocalCounters {
    pub fn new(max_entries: usize) -> Self {
        LocalCounters {
            states: HashMap::new(),
            max_entries: max_entries.max(1),
        }
    }

    /// Check and charge `cost` for `key` at `now`.
    pub fn check(&mut self, key: &str, spec: &Spec, cost: u64, now: u64) -> Decision {
        self.apply(key, spec, Op::Check, cost, now)
    }

    /// Any [`Op`] (check, peek or forced charge) for `key` at `now`.
    pub fn apply(&mut self, key: &str, spec: &Spec, op: Op, cost: u64, now: u64) -> Decision {
        let (state, decision) = match self.states.get(key) {
            Some(old) => decide_op(spec, old, op, cost, now),
            None => decide_op(spec, &State::default(), op, cost, now),
        };
        if op == Op::Peek {
            // Nothing charged: the stored state stays as it was.
            return decision;
        }
        if state.is_expired(now) {
            self.states.remove(key);
            return decision;
        }
        if !self.states.contains_key(key) && self.states.len() >= self.max_entries {
            self.states.retain(|_, s| !s.is_expired(now));
            if self.states.len() >= self.max_entries {
                // Still full of live keys: forget them all rather than grow without bound (counting
                // restarts for them, which a `local` policy documents as possible).
                self.states.clear();
            }
        }
        self.states.insert(key.to_string(), state);
        decision
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}
