//! JWKS at the edge: the isolate's cache of key sets by URL, and the policy deciding when to fetch
//! and when to wait for a fetch already under way.
//!
//! - A URL's keys are used for `cache_ms` after a successful fetch, then fetched again.
//! - A token whose `kid` is not in the set triggers a refetch, but one URL is fetched at most once
//!   per `refetch_ms` whatever tokens arrive (the attempt is recorded before the fetch starts), so a
//!   flood of made-up `kid`s cannot storm the provider.
//! - While a fetch is under way, a request whose key is not cached (a cold isolate, or a new `kid`
//!   during key rotation) does not start another one and is not refused: it waits for that fetch,
//!   at most until the fetch's own timeout (plus [`GRACE_MS`]), then is decided with its result. A
//!   request whose key is cached (even past `cache_ms`) uses it meanwhile.
//! - A fetch that reports nothing by its timeout is over (its request went away): it counted as an
//!   attempt, so the refetch limit still holds.
//! - A failed fetch keeps the keys already cached: they go on working.
//!
//! Pure: the glue calls [`JwksCache::plan`]; on [`Plan::Fetch`] it fetches (bounded by
//! [`Policy::fetch_timeout_ms`]) and calls [`JwksCache::fetched`], which also ends the waits; on
//! [`Plan::Wait`] it waits for that, or for the deadline, then calls [`JwksCache::lookup`].

use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use std::collections::HashMap;

/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most URLs remembered per isolate.
const MAX_URLS: usize = 256;
/// How long past a fetch's timeout a waiter still waits for its result (the fetcher records the
/// timeout itself; this covers the timer's own lateness).
pub const GRACE_MS: f64 = 250.0;

#[derive(Debug, Default)]
struct Entry {
    keys: Vec<Jwk>,
    /// When the keys were last fetched successfully (ms), if ever.
    fetched_at: Option<f64>,
    /// When a fetch was last started (ms).
    attempted_at: f64,
    /// When the fetch under way started (ms), if one is.
    in_flight_since: Option<f64>,
}

/// The timing rules for one JWKS URL: the `jwt` plugin's settings and the glue's fetch timeout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// How long a fetched set is used before it is fetched again.
    pub cache_ms: f64,
    /// Least time between two fetch attempts of one URL.
    pub refetch_ms: f64,
    /// How long one fetch may take.
    pub fetch_timeout_ms: f64,
}

#[derive(Debug, Default)]
pub struct JwksCache {
    entries: HashMap<String, Entry>,
}

/// What to do for one token.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // built once per token, never stored
pub enum Plan {
    /// Verify with this key.
    Use(Jwk),
    /// Fetch the URL (the attempt is already recorded), call `fetched`, then `lookup`.
    Fetch,
    /// A fetch of the URL is under way and the key is not cached: wait until `fetched` is called
    /// for the URL or until `deadline` (ms), whichever comes first, then `lookup` (no new plan: one
    /// fetch decides every request that waited for it).
    Wait { deadline: f64 },
    /// The `kid` is not known and no fetch is allowed now.
    Unknown,
}

impl JwksCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The key for `kid` in the cached set. Without a `kid`, the set's only key.
    pub fn lookup(&self, url: &str, kid: Option<&str>) -> Option<Jwk> {
        let keys = &self.entries.get(url)?.keys;
        match kid {
            Some(kid) => keys
                .iter()
                .find(|k| k.common.key_id.as_deref() == Some(kid))
                .cloned(),
            None if keys.len() == 1 => keys.first().cloned(),
            None => None,
        }
    }

    /// Whether a fetch of `url` is under way at `now` (started, not yet recorded, within its timeout).
    pub fn in_flight(&self, url: &str, now: f64, policy: &Policy) -> bool {
        self.entries
            .get(url)
            .and_then(|e| e.in_flight_since)
            .is_some_and(|t| now - t < policy.fetch_timeout_ms + GRACE_MS)
    }

    pub fn plan(&mut self, url: &str, kid: Option<&str>, now: f64, policy: &Policy) -> Plan {
        if !self.entries.contains_key(url) && self.entries.len() >= MAX_URLS {
            // Drop the URL fetched longest ago.
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by(|a, b| a.1.attempted_at.total_cmp(&b.1.attempted_at))
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        let found = self.lookup(url, kid);
        let in_flight = self.in_flight(url, now, policy);
        let entry = self.entries.entry(url.to_string()).or_insert(Entry {
            attempted_at: f64::NEG_INFINITY,
            ..Entry::default()
        });
        if !in_flight {
            // Never started, recorded, or past its timeout: its request went away.
            entry.in_flight_since = None;
        }
        let fresh = entry.fetched_at.is_some_and(|t| now - t < policy.cache_ms);
        let may_fetch = now - entry.attempted_at >= policy.refetch_ms;
        match (found, fresh) {
            (Some(k), true) => Plan::Use(k),
            // Stale, and a fetch is under way or not allowed again yet: keep using it.
            (Some(k), false) if in_flight || !may_fetch => Plan::Use(k),
            (None, _) if in_flight => Plan::Wait {
                deadline: entry.in_flight_since.unwrap_or(now) + policy.fetch_timeout_ms + GRACE_MS,
            },
            (_, _) if may_fetch => {
                entry.attempted_at = now;
                entry.in_flight_since = Some(now);
                Plan::Fetch
            }
            (_, _) => Plan::Unknown,
        }
    }

    /// Record a fetch result; the fetch is no longer under way. On success the set replaces the
    /// cached one; on failure the cached keys stay. Keys that cannot be used (symmetric, unknown
    /// types) are skipped. Returns an error message for the log when the fetch or the document was
    /// bad.
    pub fn fetched(
        &mut self,
        url: &str,
        body: Result<&str, String>,
        now: f64,
    ) -> Result<usize, String> {
        let entry = self.entries.entry(url.to_string()).or_default();
        entry.in_flight_since = None;
        let keys = body.and_then(parse_jwks)?;
        entry.keys = keys;
        entry.fetched_at = Some(now);
        Ok(entry.keys.len())
    }
}

/// Parse a JWKS document, keeping the usable public keys.
pub fn parse_jwks(text: &str) -> Result<Vec<Jwk>, String> {
    if text.len() > MAX_JWKS_BYTES {
        return Err(format!("JWKS larger than {MAX_JWKS_BYTES} bytes"));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("JWKS is not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("JWKS has no `keys` array")?;
    Ok(keys
        .iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|k| super::jwt::jwk_key(k).is_ok())
        .collect())
}

/// A JWKS URL as logged: without a user, password, query or fragment, which may carry credentials
/// (`https://user:pass@idp.example/jwks?token=x` is `https://idp.example/jwks`).
pub fn url_for_log(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}{host}{path}")
}

/// `text` (an error from fetching `url`) with `url` written as [`url_for_log`] writes it.
pub fn error_for_log(text: &str, url: &str) -> String {
    if url.is_empty() {
        return text.to_string();
    }
    text.replace(url, &url_for_log(url))
}

#[cfg(test)]
mod log_tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn urls_are_logged_without_credentials() {
        assert_eq!(
            url_for_log("https://user:p%40ss@idp.example:8443/jwks?token=abc#x"),
            "https://idp.example:8443/jwks"
        );
        assert_eq!(
            url_for_log("https://idp.example/a/b"),
            "https://idp.example/a/b"
        );
        assert_eq!(url_for_log("https://k@idp.example"), "https://idp.example");
        assert_eq!(
            url_for_log("https://idp.example/p@th"),
            "https://idp.example/p@th"
        );
        assert_eq!(url_for_log("not a url?k=v"), "not a url");
        let url = "https://u:secret@idp.example/jwks?key=secret2";
        let logged = error_for_log(&format!("bad URL: TypeError: {url} has credentials"), url);
        assert_eq!(
            logged,
            "bad URL: TypeError: https://idp.example/jwks has credentials"
        );
        assert!(!logged.contains("secret"));
    }
}
