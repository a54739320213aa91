//! Miss coalescing within an isolate (nginx's `proxy_cache_lock`): the first miss for a key fetches
//! from the origin, later concurrent misses for the same key wait for it, at most
//! `cache_lock_timeout`, and are then answered from what it stored.
//!
//! - [`MissLocks::plan`]: on a miss, lead (fetch and store) or wait. A lock older than
//!   `cache_lock_age` is treated as abandoned (nginx's `proxy_cache_lock_age`): the next miss leads
//!   again (a leader whose request was cancelled may never report).
//! - [`MissLocks::wait`] / [`MissLocks::cancel`]: a waiter's registration (its waker is the glue's
//!   business: a promise resolver there, anything in tests).
//! - [`MissLocks::finish`]: the leader is done (stored, or not); returns the wakers to call with
//!   that outcome. Every leader finishes exactly once, however it ends.
//! - [`after_wait`]: what a waiter does once woken or timed out.
//!
//! Pure: time comes in as `now` (ms); no timers here.

use std::collections::HashMap;

/// Most keys with a lock or waiters kept per isolate; past it, abandoned locks are swept.
const MAX_KEYS: usize = 4096;

/// What a miss does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MissPlan {
    /// Fetch from the origin (and store); call [`MissLocks::finish`] with `token` when the stored
    /// copy is complete, or when it will not be stored.
    Lead { token: u64 },
    /// Another request is fetching this key: register with [`MissLocks::wait`], wait for its
    /// outcome or until `deadline` (ms), then ask [`after_wait`].
    Wait { deadline: f64 },
}

/// How a leader ended, as its waiters learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderOutcome {
    /// The response was stored completely: look it up.
    Stored,
    /// Nothing was stored (not cacheable, origin error, store failed, leader went away).
    NotStored,
}

/// What a waiter does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterWait {
    /// Look the key up again and serve the stored copy; go to the origin (as a plain miss) if it
    /// is not there after all.
    Lookup,
    /// Go to the origin as a plain miss, storing if the answer may be stored: the leader's answer
    /// could not be shared.
    Origin,
    /// The wait timed out: go to the origin and do not store the answer (nginx does the same
    /// after `proxy_cache_lock_timeout`), so a slow origin is not asked to store many times over.
    OriginUncached,
}

/// The decision after a wait: `woken` is the leader's outcome, `None` when the deadline passed first.
pub fn after_wait(woken: Option<LeaderOutcome>) -> AfterWait {
    match woken {
        Some(LeaderOutcome::Stored) => AfterWait::Lookup,
        Some(LeaderOutcome::NotStored) => AfterWait::Origin,
        None => AfterWait::OriginUncached,
    }
}

#[derive(Debug)]
struct Key<W> {
    /// The leader under way: its token and when it started (ms).
    leader: Option<(u64, f64)>,
    /// Registered waiters: (id, waker).
    waiters: Vec<(u64, W)>,
}

/// The isolate's locks, by cache key. `W` is whatever wakes a waiter.
#[derive(Debug)]
pub struct MissLocks<W> {
    keys: HashMap<String, Key<W>>,
    next_token: u64,
}

impl<W> Default for MissLocks<W> {
    fn default() -> Self {
        MissLocks {
            keys: HashMap::new(),
            next_token: 1,
        }
    }
}

impl<W> MissLocks<W> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A miss for `key` at `now`: lead when no live leader holds the key, else wait until
    /// `now + timeout_ms`. A leader that started `age_ms` ago or earlier is abandoned and replaced.
    pub fn plan(&mut self, key: &str, now: f64, timeout_ms: f64, age_ms: f64) -> MissPlan {
        if self.keys.len() >= MAX_KEYS && !self.keys.contains_key(key) {
            self.sweep(now, age_ms);
        }
        let token = self.next_token;
        let entry = self.keys.entry(key.to_string()).or_insert(Key {
            leader: None,
            waiters: Vec::new(),
        });
        match entry.leader {
            Some((_, since)) if now - since < age_ms => MissPlan::Wait {
                deadline: now + timeout_ms,
            },
            _ => {
                entry.leader = Some((token, now));
                self.next_token = token.wrapping_add(1);
                MissPlan::Lead { token }
            }
        }
    }

    /// Register a waiter for `key`.
    pub fn wait(&mut self, key: &str, id: u64, waker: W) {
        self.keys
            .entry(key.to_string())
            .or_insert(Key {
                leader: None,
                waiters: Vec::new(),
            })
            .waiters
            .push((id, waker));
    }

    /// A waiter stops waiting (timed out or went away); returns its waker if it was still there.
    pub fn cancel(&mut self, key: &str, id: u64) -> Option<W> {
        let entry = self.keys.get_mut(key)?;
        let at = entry.waiters.iter().position(|(i, _)| *i == id)?;
        let (_, waker) = entry.waiters.remove(at);
        if entry.leader.is_none() && entry.waiters.is_empty() {
            self.keys.remove(key);
        }
        Some(waker)
    }

    /// The leader holding `token` is done. Returns the waiters to wake with its outcome (all of the
    /// key's waiters, even when a newer leader took over an abandoned lock: the answer they wait for
    /// is in the cache now, or it is not and they go to the origin). A newer leader's lock stays.
    pub fn finish(&mut self, key: &str, token: u64) -> Vec<W> {
        let Some(entry) = self.keys.get_mut(key) else {
            return Vec::new();
        };
        if entry.leader.is_some_and(|(t, _)| t == token) {
            entry.leader = None;
        }
        let woken = std::mem::take(&mut entry.waiters)
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        if entry.leader.is_none() {
            self.keys.remove(key);
        }
        woken
    }

    /// Whether a live leader holds `key` at `now`.
    pub fn leading(&self, key: &str, now: f64, age_ms: f64) -> bool {
        self.keys
            .get(key)
            .and_then(|e| e.leader)
            .is_some_and(|(_, since)| now - since < age_ms)
    }

    /// Number of keys with a lock or waiters.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Forget abandoned locks of keys nobody waits for.
    fn sweep(&mut self, now: f64, age_ms: f64) {
        self.keys.retain(|_, e| {
            !e.waiters.is_empty() || e.leader.is_some_and(|(_, since)| now - since < age_ms)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const T: f64 = 5_000.0;
    const A: f64 = 8_000.0;

    #[test]
    fn first_miss_leads_and_later_ones_wait_until_their_own_deadline() {
        let mut l: MissLocks<&str> = MissLocks::new();
        let MissPlan::Lead { token } = l.plan("k", 1_000.0, T, A) else {
            panic!("first miss must lead")
        };
        assert_eq!(
            l.plan("k", 1_200.0, T, A),
            MissPlan::Wait { deadline: 6_200.0 }
        );
        // The waiter's own deadline, not the leader's age.
        assert_eq!(
            l.plan("k", 8_999.0, T, A),
            MissPlan::Wait { deadline: 13_999.0 }
        );
        // Another key is independent.
        assert!(matches!(
            l.plan("other", 1_200.0, T, A),
            MissPlan::Lead { .. }
        ));
        assert!(l.leading("k", 1_300.0, A));
        l.wait("k", 1, "a");
        l.wait("k", 2, "b");
        assert_eq!(l.finish("k", token), vec!["a", "b"]);
        assert!(!l.leading("k", 1_300.0, A));
        // After the leader finished, the next miss leads again (the store may have failed).
        assert!(matches!(l.plan("k", 1_400.0, T, A), MissPlan::Lead { .. }));
    }

    #[test]
    fn an_abandoned_lock_is_taken_over_and_the_old_leader_cannot_release_the_new_one() {
        let mut l: MissLocks<u8> = MissLocks::new();
        let MissPlan::Lead { token: old } = l.plan("k", 0.0, T, A) else {
            panic!()
        };
        l.wait("k", 1, 1);
        assert!(matches!(l.plan("k", A - 1.0, T, A), MissPlan::Wait { .. }));
        let MissPlan::Lead { token: new } = l.plan("k", A, T, A) else {
            panic!("a lock as old as cache_lock_age is abandoned")
        };
        assert_ne!(old, new);
        // The old leader finishing wakes the waiters but leaves the new leader's lock.
        assert_eq!(l.finish("k", old), vec![1]);
        assert!(l.leading("k", A + 1.0, A));
        assert!(matches!(l.plan("k", A + 1.0, T, A), MissPlan::Wait { .. }));
        assert_eq!(l.finish("k", new), Vec::<u8>::new());
        assert!(l.is_empty());
    }

    #[test]
    fn a_waiter_that_gives_up_is_not_woken() {
        let mut l: MissLocks<&str> = MissLocks::new();
        let MissPlan::Lead { token } = l.plan("k", 0.0, T, A) else {
            panic!()
        };
        l.wait("k", 7, "seven");
        l.wait("k", 8, "eight");
        assert_eq!(l.cancel("k", 7), Some("seven"));
        assert_eq!(l.cancel("k", 7), None);
        assert_eq!(l.cancel("missing", 1), None);
        assert_eq!(l.finish("k", token), vec!["eight"]);
        assert_eq!(l.finish("k", token), Vec::<&str>::new());
        assert!(l.is_empty());
    }

    #[test]
    fn what_a_waiter_does_next() {
        assert_eq!(after_wait(Some(LeaderOutcome::Stored)), AfterWait::Lookup);
        assert_eq!(
            after_wait(Some(LeaderOutcome::NotStored)),
            AfterWait::Origin
        );
        assert_eq!(after_wait(None), AfterWait::OriginUncached);
    }

    #[test]
    fn abandoned_keys_are_swept_when_the_table_is_full() {
        let mut l: MissLocks<()> = MissLocks::new();
        for i in 0..MAX_KEYS {
            l.plan(&format!("k{i}"), 0.0, T, A);
        }
        l.wait("k0", 1, ());
        assert_eq!(l.len(), MAX_KEYS);
        // Past cache_lock_age every lock is abandoned; only the key with a waiter stays.
        assert!(matches!(l.plan("new", A, T, A), MissPlan::Lead { .. }));
        assert_eq!(l.len(), 2);
        // While the locks are live nothing is swept.
        let mut l: MissLocks<()> = MissLocks::new();
        for i in 0..MAX_KEYS {
            l.plan(&format!("k{i}"), 0.0, T, A);
        }
        l.plan("new", 1.0, T, A);
        assert_eq!(l.len(), MAX_KEYS + 1);
    }
}
