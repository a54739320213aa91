//! Where configuration lives in KV, and how the Worker decides when to reload it.
//!
//! Layout (one KV namespace, binding `CONFIG`):
//! - `config/versions/<n>`: one immutable configuration document per version `n` (1, 2, 3, ...).
//! - `config/compiled/<n>`: the compiled form of version `n` (optional; see `crate::compiled`).
//! - `config/current`: the [`Pointer`], naming the version in service. Moving it is the only write a push
//!   or rollback makes to live state, so a reader sees either the old or the new version, never half.
//!
//! [`ConfigCache`] is the isolate's copy: it re-reads the pointer at most every `interval_ms`, compiles a
//! new version once, and keeps serving the last good version when a new one fails.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const POINTER_KEY: &str = "config/current";

pub fn version_key(version: u64) -> String {
    format!("config/versions/{version}")
}

/// Where the compiled form of version `version` is stored (see `crate::compiled`), written by
/// `edgegate-config push` after the document and before the pointer.
pub fn compiled_key(version: u64) -> String {
    format!("config/compiled/{version}")
}

/// The pointer document at [`POINTER_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// The version in service.
    pub version: u64,
    /// The highest version ever written; the next push writes `latest + 1`.
    pub latest: u64,
    /// Versions that were in service before, most recent last; `rollback` pops from here.
    #[serde(default)]
    pub history: Vec<u64>,
}

impl Pointer {
    pub fn parse(text: &str) -> Result<Pointer, String> {
        serde_json::from_str(text).map_err(|e| format!("{POINTER_KEY} is not a valid pointer: {e}"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("pointer serializes")
    }

    /// The version a push writes next, given the pointer currently stored (if any).
    pub fn next_version(current: Option<&Pointer>) -> u64 {
        current.map_or(1, |p| p.latest + 1)
    }

    /// The pointer after `version` (written by a push) goes into service.
    pub fn after_push(current: Option<&Pointer>, version: u64) -> Pointer {
        match current {
            None => Pointer {
                version,
                latest: version,
                history: Vec::new(),
            },
            Some(p) => {
                let mut history = p.history.clone();
                history.push(p.version);
                // Bounded: enough to roll back a long way, small enough to read on every check.
                if history.len() > 100 {
                    history.remove(0);
                }
                Pointer {
                    version,
                    latest: p.latest.max(version),
                    history,
                }
            }
        }
    }

    /// The pointer after rolling back to the version that was in service before this one.
    pub fn after_rollback(&self) -> Result<Pointer, String> {
        let mut history = self.history.clone();
        let previous = history.pop().ok_or_else(|| {
            format!(
                "version {} has no earlier version to roll back to",
                self.version
            )
        })?;
        Ok(Pointer {
            version: previous,
            latest: self.latest,
            history,
        })
    }
}

/// Why a version could not be put into service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadFailure {
    /// The document is missing, unparsable or invalid. It will not be retried until the pointer moves.
    Invalid(String),
    /// KV could not be read. Retried at the next check.
    Unavailable(String),
}

/// What the glue should do for this request before routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Serve with the current version (which may be none: then answer 503).
    Serve,
    /// Read the pointer from KV, then call [`ConfigCache::pointer_read`].
    ReadPointer,
    /// No version is in service and another request is loading one: wait for it (at most
    /// [`LOAD_WAIT_MS`]), then serve with whatever it loaded.
    Wait,
}

/// How long a check may take before it is forgotten (its request was cancelled), and so how long a
/// request waits for another request's first load.
pub const LOAD_WAIT_MS: f64 = 10_000.0;

/// How many versions one check tries at most: the one the pointer names, then its history from the
/// most recent back.
pub const MAX_WALK: usize = 10;

/// After reading the pointer or loading a version: what next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterPointer {
    /// The check is over: serve with the current version.
    Serve,
    /// Read and compile this version, then call [`ConfigCache::version_loaded`].
    Load(u64),
}

/// One structured log event for the glue to write. At most one per failed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadEvent {
    pub level: &'static str,
    pub json: String,
}

/// The versions one check still has to try, newest first.
struct Walk {
    pointer_version: u64,
    candidates: Vec<u64>,
    next: usize,
    rejected: Vec<u64>,
}

/// The isolate's configuration state. `T` is the compiled form of a version.
pub struct ConfigCache<T> {
    interval_ms: f64,
    current: Option<(u64, Arc<T>)>,
    last_check_ms: Option<f64>,
    /// The pointer version whose check finished (a version went into service, or none of its
    /// candidates could): not checked again while the pointer still names it.
    resolved: Option<u64>,
    /// Versions that failed validation (versions are immutable, so they stay invalid); the most
    /// recent few, so that a walk does not read and log them again.
    rejected: Vec<u64>,
    /// The check under way, if it is loading versions.
    walk: Option<Walk>,
    /// When a request started a check; other requests keep serving (or wait, with nothing to serve).
    checking_since: Option<f64>,
}

const REJECTED_KEPT: usize = 32;

impl<T> ConfigCache<T> {
    pub fn new(interval_ms: f64) -> Self {
        ConfigCache {
            interval_ms,
            current: None,
            last_check_ms: None,
            resolved: None,
            rejected: Vec::new(),
            walk: None,
            checking_since: None,
        }
    }

    pub fn current(&self) -> Option<(u64, Arc<T>)> {
        self.current.clone()
    }

    /// Decide whether this request re-reads the pointer. Only one request at a time does: with a
    /// version in service the others serve it; with none, they wait for the check under way (so that
    /// concurrent first requests share one load).
    pub fn step(&mut self, now_ms: f64) -> Step {
        // A check that never finished (its request was cancelled) is forgotten after LOAD_WAIT_MS.
        let busy = self
            .checking_since
            .is_some_and(|t| now_ms - t < LOAD_WAIT_MS && now_ms >= t);
        if self.current.is_none() {
            if busy {
                return Step::Wait;
            }
            self.checking_since = Some(now_ms);
            return Step::ReadPointer;
        }
        let due = match self.last_check_ms {
            Some(t) => now_ms - t >= self.interval_ms || now_ms < t,
            None => true,
        };
        if due && !busy {
            self.checking_since = Some(now_ms);
            Step::ReadPointer
        } else {
            Step::Serve
        }
    }

    /// Whether a check is under way (a request waiting with [`Step::Wait`] polls this).
    pub fn checking(&self, now_ms: f64) -> bool {
        self.checking_since
            .is_some_and(|t| now_ms - t < LOAD_WAIT_MS && now_ms >= t)
    }

    /// Record the result of reading the pointer. `Err` means KV could not be read or the pointer is bad.
    pub fn pointer_read(
        &mut self,
        now_ms: f64,
        pointer: Result<Option<Pointer>, String>,
    ) -> (AfterPointer, Vec<LoadEvent>) {
        self.last_check_ms = Some(now_ms);
        self.walk = None;
        match pointer {
            Err(e) => self.done(vec![self.event("config_pointer_unreadable", None, &e)]),
            Ok(None) => {
                let events = if self.current.is_none() {
                    vec![self.event(
                        "config_missing",
                        None,
                        "no configuration has been pushed yet",
                    )]
                } else {
                    Vec::new()
                };
                self.done(events)
            }
            Ok(Some(p)) => {
                let in_service = self.current.as_ref().map(|(v, _)| *v);
                if in_service == Some(p.version) || self.resolved == Some(p.version) {
                    return self.done(Vec::new());
                }
                // The version named, then the ones in service before it, most recent first.
                let mut candidates = Vec::with_capacity(MAX_WALK);
                for v in std::iter::once(p.version).chain(p.history.iter().rev().copied()) {
                    if candidates.len() == MAX_WALK {
                        break;
                    }
                    if !candidates.contains(&v) {
                        candidates.push(v);
                    }
                }
                self.walk = Some(Walk {
                    pointer_version: p.version,
                    candidates,
                    next: 0,
                    rejected: Vec::new(),
                });
                self.advance(Vec::new())
            }
        }
    }

    /// Record the result of loading a version: it goes into service, or the check goes on with the
    /// next older candidate. On failure of every candidate the version in service stays.
    pub fn version_loaded(
        &mut self,
        version: u64,
        result: Result<T, LoadFailure>,
    ) -> (AfterPointer, Vec<LoadEvent>) {
        self.version_loaded_from(version, result, None)
    }

    /// [`ConfigCache::version_loaded`], naming in the `config_loaded` line what the version was
    /// loaded from (`"compiled"` or `"json"`).
    pub fn version_loaded_from(
        &mut self,
        version: u64,
        result: Result<T, LoadFailure>,
        source: Option<&'static str>,
    ) -> (AfterPointer, Vec<LoadEvent>) {
        let Some(pointer_version) = self.walk.as_ref().map(|w| w.pointer_version) else {
            return self.done(Vec::new());
        };
        match result {
            Ok(compiled) => {
                let skipped = self.walk.take().map(|w| w.rejected).unwrap_or_default();
                self.current = Some((version, Arc::new(compiled)));
                self.resolved = Some(pointer_version);
                let mut line = serde_json::json!({"event": "config_loaded", "version": version});
                if pointer_version != version {
                    line["pointer_version"] = pointer_version.into();
                    line["skipped"] = skipped.into();
                }
                if let Some(source) = source {
                    line["source"] = source.into();
                }
                self.done(vec![LoadEvent {
                    level: "info",
                    json: line.to_string(),
                }])
            }
            Err(LoadFailure::Invalid(e)) => {
                if self.rejected.len() == REJECTED_KEPT {
                    self.rejected.remove(0);
                }
                self.rejected.push(version);
                if let Some(w) = self.walk.as_mut() {
                    w.rejected.push(version);
                }
                let event = self.event("config_rejected", Some(version), &e);
                self.advance(vec![event])
            }
            Err(LoadFailure::Unavailable(e)) => {
                // Check again soon rather than waiting a full interval.
                self.last_check_ms = None;
                self.walk = None;
                let event = self.event("config_unavailable", Some(version), &e);
                self.done(vec![event])
            }
        }
    }

    /// The next candidate of the walk to load, or the end of the check.
    fn advance(&mut self, mut events: Vec<LoadEvent>) -> (AfterPointer, Vec<LoadEvent>) {
        let in_service = self.current.as_ref().map(|(v, _)| *v);
        let Some(walk) = self.walk.as_mut() else {
            return self.done(events);
        };
        while let Some(&v) = walk.candidates.get(walk.next) {
            walk.next += 1;
            if Some(v) == in_service {
                // The newest usable version is the one already in service.
                let line = serde_json::json!({
                    "event": "config_kept",
                    "version": v,
                    "pointer_version": walk.pointer_version,
                    "skipped": walk.rejected,
                });
                events.push(LoadEvent {
                    level: "info",
                    json: line.to_string(),
                });
                self.resolved = Some(walk.pointer_version);
                self.walk = None;
                return self.done(events);
            }
            if self.rejected.contains(&v) {
                walk.rejected.push(v);
                continue;
            }
            return (AfterPointer::Load(v), events);
        }
        // No candidate could be used.
        let (pointer_version, tried) = (walk.pointer_version, walk.rejected.clone());
        self.walk = None;
        self.resolved = Some(pointer_version);
        let detail = format!(
            "none of the versions tried ({}; at most {MAX_WALK} per check) is valid",
            tried
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        events.push(self.event("config_no_valid_version", Some(pointer_version), &detail));
        self.done(events)
    }

    fn done(&mut self, events: Vec<LoadEvent>) -> (AfterPointer, Vec<LoadEvent>) {
        self.checking_since = None;
        (AfterPointer::Serve, events)
    }

    fn event(&self, event: &str, version: Option<u64>, error: &str) -> LoadEvent {
        LoadEvent {
            level: "error",
            json: serde_json::json!({
                "event": event,
                "version": version,
                "error": error,
                "serving_version": self.current.as_ref().map(|(v, _)| *v),
            })
            .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ptr(version: u64) -> Pointer {
        Pointer {
            version,
            latest: version,
            history: vec![],
        }
    }

    #[test]
    fn push_then_rollback_returns_to_previous_version() {
        let p1 = Pointer::after_push(None, Pointer::next_version(None));
        assert_eq!(p1.version, 1);
        let p2 = Pointer::after_push(Some(&p1), Pointer::next_version(Some(&p1)));
        assert_eq!((p2.version, p2.latest, p2.history.clone()), (2, 2, vec![1]));
        let back = p2.after_rollback().unwrap();
        assert_eq!((back.version, back.latest), (1, 2));
        // A push after a rollback never reuses a version number.
        assert_eq!(Pointer::next_version(Some(&back)), 3);
        assert!(back.after_rollback().is_err());
    }

    #[test]
    fn pointer_round_trips_and_rejects_garbage() {
        let p = Pointer::after_push(Some(&ptr(4)), 5);
        assert_eq!(Pointer::parse(&p.to_json()).unwrap(), p);
        assert!(Pointer::parse("{not json").is_err());
    }

    fn after(p: &Pointer, v: u64) -> Pointer {
        Pointer::after_push(Some(p), v)
    }

    fn has(events: &[LoadEvent], needle: &str) -> bool {
        events.iter().any(|e| e.json.contains(needle))
    }

    #[test]
    fn checks_pointer_at_most_once_per_interval() {
        let mut c: ConfigCache<&str> = ConfigCache::new(1000.0);
        assert_eq!(c.step(0.0), Step::ReadPointer);
        assert_eq!(
            c.pointer_read(0.0, Ok(Some(ptr(1)))).0,
            AfterPointer::Load(1)
        );
        c.version_loaded(1, Ok("v1"));
        assert_eq!(c.step(999.0), Step::Serve);
        assert_eq!(c.step(1000.0), Step::ReadPointer);
        assert_eq!(
            c.pointer_read(1000.0, Ok(Some(ptr(1)))).0,
            AfterPointer::Serve
        );
    }

    #[test]
    fn bad_version_keeps_last_good_and_logs_once() {
        let mut c: ConfigCache<&str> = ConfigCache::new(10.0);
        c.pointer_read(0.0, Ok(Some(ptr(1))));
        c.version_loaded(1, Ok("v1"));
        assert_eq!(
            c.pointer_read(20.0, Ok(Some(ptr(2)))).0,
            AfterPointer::Load(2)
        );
        let (next, events) = c.version_loaded(
            2,
            Err(LoadFailure::Invalid("routes[0].service: unknown".into())),
        );
        assert_eq!(next, AfterPointer::Serve);
        assert_eq!(events[0].level, "error");
        assert!(
            events[0].json.contains("config_rejected")
                && events[0].json.contains("\"serving_version\":1")
        );
        assert_eq!(*c.current().unwrap().1, "v1");
        // The same bad version is not loaded (or logged) again.
        assert_eq!(
            c.pointer_read(40.0, Ok(Some(ptr(2)))),
            (AfterPointer::Serve, vec![])
        );
        // A fixed version 3 goes into service.
        assert_eq!(
            c.pointer_read(60.0, Ok(Some(ptr(3)))).0,
            AfterPointer::Load(3)
        );
        c.version_loaded(3, Ok("v3"));
        assert_eq!(c.current().unwrap().0, 3);
    }

    #[test]
    fn a_broken_version_falls_back_to_the_newest_valid_one_not_the_isolates_last() {
        // A served; B pushed (never seen by this isolate), then a broken C.
        let mut c: ConfigCache<&str> = ConfigCache::new(0.0);
        let a = ptr(1);
        c.pointer_read(0.0, Ok(Some(a.clone())));
        c.version_loaded(1, Ok("A"));
        let b = after(&a, 2);
        let broken = after(&b, 3);
        assert_eq!(broken.history, vec![1, 2]);
        assert_eq!(c.step(1.0), Step::ReadPointer);
        assert_eq!(
            c.pointer_read(1.0, Ok(Some(broken.clone()))).0,
            AfterPointer::Load(3)
        );
        let (next, events) = c.version_loaded(3, Err(LoadFailure::Invalid("bad".into())));
        assert_eq!(next, AfterPointer::Load(2), "walks back to B");
        assert!(has(&events, "config_rejected"));
        let (next, events) = c.version_loaded(2, Ok("B"));
        assert_eq!(next, AfterPointer::Serve);
        assert_eq!(*c.current().unwrap().1, "B");
        let loaded: serde_json::Value = serde_json::from_str(&events[0].json).unwrap();
        assert_eq!(
            loaded,
            serde_json::json!({"event": "config_loaded", "version": 2, "pointer_version": 3, "skipped": [3]})
        );
        // The same pointer is not walked again.
        assert_eq!(
            c.pointer_read(2.0, Ok(Some(broken))),
            (AfterPointer::Serve, vec![])
        );
    }

    #[test]
    fn a_walk_stops_at_the_version_in_service() {
        let mut c: ConfigCache<&str> = ConfigCache::new(0.0);
        c.pointer_read(0.0, Ok(Some(ptr(1))));
        c.version_loaded(1, Ok("A"));
        let bad2 = after(&ptr(1), 2);
        let bad3 = after(&bad2, 3);
        assert_eq!(c.pointer_read(1.0, Ok(Some(bad3))).0, AfterPointer::Load(3));
        let (next, _) = c.version_loaded(3, Err(LoadFailure::Invalid("x".into())));
        assert_eq!(next, AfterPointer::Load(2));
        let (next, events) = c.version_loaded(2, Err(LoadFailure::Invalid("y".into())));
        assert_eq!(next, AfterPointer::Serve, "version 1 is in service already");
        assert!(has(&events, "config_rejected") && has(&events, "config_kept"));
        assert_eq!(*c.current().unwrap().1, "A");
        // A rejected version is skipped without being read again.
        let bad4 = after(&after(&ptr(3), 2), 4);
        assert_eq!(bad4.history, vec![3, 2]);
        let mut cold: ConfigCache<&str> = ConfigCache::new(0.0);
        cold.rejected = vec![3];
        assert_eq!(
            cold.pointer_read(0.0, Ok(Some(bad4))).0,
            AfterPointer::Load(4)
        );
        let (next, _) = cold.version_loaded(4, Err(LoadFailure::Invalid("z".into())));
        assert_eq!(next, AfterPointer::Load(2));
    }

    #[test]
    fn the_walk_is_bounded() {
        let mut p = ptr(1);
        for v in 2..=30 {
            p = after(&p, v);
        }
        let mut c: ConfigCache<&str> = ConfigCache::new(0.0);
        let mut next = c.pointer_read(0.0, Ok(Some(p))).0;
        let mut tried = Vec::new();
        let mut last = Vec::new();
        while let AfterPointer::Load(v) = next {
            tried.push(v);
            (next, last) = c.version_loaded(v, Err(LoadFailure::Invalid("bad".into())));
        }
        assert_eq!(tried, (21..=30).rev().collect::<Vec<_>>());
        assert!(has(&last, "config_no_valid_version"));
        assert!(c.current().is_none());
    }

    #[test]
    fn unreadable_kv_keeps_serving_and_retries_soon() {
        let mut c: ConfigCache<&str> = ConfigCache::new(1000.0);
        c.pointer_read(0.0, Ok(Some(ptr(1))));
        c.version_loaded(1, Ok("v1"));
        let (next, ev) = c.pointer_read(2000.0, Err("kv down".into()));
        assert_eq!(next, AfterPointer::Serve);
        assert!(has(&ev, "config_pointer_unreadable"));
        c.pointer_read(4000.0, Ok(Some(ptr(2))));
        c.version_loaded(2, Err(LoadFailure::Unavailable("timeout".into())));
        assert_eq!(c.step(4001.0), Step::ReadPointer);
        assert_eq!(c.current().unwrap().0, 1);
    }

    #[test]
    fn only_one_request_checks_at_a_time() {
        let mut c: ConfigCache<&str> = ConfigCache::new(1000.0);
        c.pointer_read(0.0, Ok(Some(ptr(1))));
        c.version_loaded(1, Ok("v1"));
        assert_eq!(c.step(1500.0), Step::ReadPointer);
        assert_eq!(c.step(1501.0), Step::Serve, "a check is already under way");
        // A check whose request vanished does not block checks for ever.
        assert_eq!(c.step(11_501.0), Step::ReadPointer);
    }

    #[test]
    fn without_a_version_one_request_loads_and_the_others_wait() {
        let mut c: ConfigCache<&str> = ConfigCache::new(1000.0);
        assert_eq!(c.step(0.0), Step::ReadPointer);
        assert_eq!(c.step(0.0), Step::Wait);
        assert!(c.checking(1.0));
        assert_eq!(
            c.pointer_read(1.0, Ok(Some(ptr(1)))).0,
            AfterPointer::Load(1)
        );
        assert_eq!(c.step(2.0), Step::Wait, "still loading");
        c.version_loaded(1, Ok("v1"));
        assert!(!c.checking(3.0));
        assert_eq!(c.step(3.0), Step::Serve);
        // A load that never finished is forgotten.
        let mut c: ConfigCache<&str> = ConfigCache::new(1000.0);
        assert_eq!(c.step(0.0), Step::ReadPointer);
        assert_eq!(c.step(LOAD_WAIT_MS), Step::ReadPointer);
    }

    #[test]
    fn no_config_at_all_serves_nothing() {
        let mut c: ConfigCache<&str> = ConfigCache::new(1000.0);
        let (next, ev) = c.pointer_read(0.0, Ok(None));
        assert_eq!(next, AfterPointer::Serve);
        assert!(has(&ev, "config_missing"));
        assert!(c.current().is_none());
    }
}
