//! Where configuration lives in KV, and how the Worker decides when to reload it.
//!
//! Layout (one KV namespace, binding `CONFIG`):
//! - `config/versions/<n>`: one immutable configuration document per version `n` (1, 2, 3, ...).
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
}

/// After reading the pointer: what next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterPointer {
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

/// The isolate's configuration state. `T` is the compiled form of a version.
pub struct ConfigCache<T> {
    interval_ms: f64,
    current: Option<(u64, Arc<T>)>,
    last_check_ms: Option<f64>,
    /// A version that failed validation: not retried while the pointer still names it.
    rejected: Option<u64>,
    /// When a request started re-reading the pointer; other requests keep serving meanwhile.
    checking_since: Option<f64>,
}

impl<T> ConfigCache<T> {
    pub fn new(interval_ms: f64) -> Self {
        ConfigCache {
            interval_ms,
            current: None,
            last_check_ms: None,
            rejected: None,
            checking_since: None,
        }
    }

    pub fn current(&self) -> Option<(u64, Arc<T>)> {
        self.current.clone()
    }

    /// Decide whether this request re-reads the pointer. With a version in service only one request at
    /// a time does (the others serve the current version); with none, every request tries, since it
    /// has nothing else to serve.
    pub fn step(&mut self, now_ms: f64) -> Step {
        if self.current.is_none() {
            return Step::ReadPointer;
        }
        let due = match self.last_check_ms {
            Some(t) => now_ms - t >= self.interval_ms || now_ms < t,
            None => true,
        };
        // A check that never finished (its request was cancelled) is forgotten after 10 s.
        let busy = self
            .checking_since
            .is_some_and(|t| now_ms - t < 10_000.0 && now_ms >= t);
        if due && !busy {
            self.checking_since = Some(now_ms);
            Step::ReadPointer
        } else {
            Step::Serve
        }
    }

    /// Record the result of reading the pointer. `Err` means KV could not be read or the pointer is bad.
    pub fn pointer_read(
        &mut self,
        now_ms: f64,
        pointer: Result<Option<Pointer>, String>,
    ) -> (AfterPointer, Option<LoadEvent>) {
        self.last_check_ms = Some(now_ms);
        self.checking_since = None;
        match pointer {
            Err(e) => (
                AfterPointer::Serve,
                Some(self.event("config_pointer_unreadable", None, &e)),
            ),
            Ok(None) => {
                let event = self.current.is_none().then(|| {
                    self.event(
                        "config_missing",
                        None,
                        "no configuration has been pushed yet",
                    )
                });
                (AfterPointer::Serve, event)
            }
            Ok(Some(p)) => {
                let in_service = self.current.as_ref().map(|(v, _)| *v);
                if in_service == Some(p.version) || self.rejected == Some(p.version) {
                    (AfterPointer::Serve, None)
                } else {
                    (AfterPointer::Load(p.version), None)
                }
            }
        }
    }

    /// Record the result of loading a version. On failure the version in service stays.
    pub fn version_loaded(
        &mut self,
        version: u64,
        result: Result<T, LoadFailure>,
    ) -> Option<LoadEvent> {
        match result {
            Ok(compiled) => {
                self.current = Some((version, Arc::new(compiled)));
                self.rejected = None;
                Some(LoadEvent {
                    level: "info",
                    json: serde_json::json!({"event": "config_loaded", "version": version})
                        .to_string(),
                })
            }
            Err(LoadFailure::Invalid(e)) => {
                self.rejected = Some(version);
                Some(self.event("config_rejected", Some(version), &e))
            }
            Err(LoadFailure::Unavailable(e)) => {
                // Check again soon rather than waiting a full interval.
                self.last_check_ms = None;
                Some(self.event("config_unavailable", Some(version), &e))
            }
        }
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
        let ev = c.version_loaded(
            2,
            Err(LoadFailure::Invalid("routes[0].service: unknown".into())),
        );
        let ev = ev.unwrap();
        assert_eq!(ev.level, "error");
        assert!(ev.json.contains("config_rejected") && ev.json.contains("\"serving_version\":1"));
        assert_eq!(*c.current().unwrap().1, "v1");
        // The same bad version is not loaded (or logged) again.
        assert_eq!(
            c.pointer_read(40.0, Ok(Some(ptr(2)))),
            (AfterPointer::Serve, None)
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
    fn unreadable_kv_keeps_serving_and_retries_soon() {
        let mut c: ConfigCache<&str> = ConfigCache::new(1000.0);
        c.pointer_read(0.0, Ok(Some(ptr(1))));
        c.version_loaded(1, Ok("v1"));
        let (next, ev) = c.pointer_read(2000.0, Err("kv down".into()));
        assert_eq!(next, AfterPointer::Serve);
        assert!(ev.unwrap().json.contains("config_pointer_unreadable"));
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
    fn without_a_version_every_request_tries_to_load() {
        let mut c: ConfigCache<&str> = ConfigCache::new(1000.0);
        assert_eq!(c.step(0.0), Step::ReadPointer);
        assert_eq!(c.step(0.0), Step::ReadPointer);
    }

    #[test]
    fn no_config_at_all_serves_nothing() {
        let mut c: ConfigCache<&str> = ConfigCache::new(1000.0);
        let (next, ev) = c.pointer_read(0.0, Ok(None));
        assert_eq!(next, AfterPointer::Serve);
        assert!(ev.unwrap().json.contains("config_missing"));
        assert!(c.current().is_none());
    }
}
