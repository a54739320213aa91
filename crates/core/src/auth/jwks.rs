//! JWKS at the edge: the isolate's cache of key sets by URL, and the policy deciding when to fetch.
//!
//! - A URL's keys are used for `cache_ms` after a successful fetch, then fetched again.
//! - A token whose `kid` is not in the set triggers a refetch, but one URL is fetched at most once
//!   per `refetch_ms` whatever tokens arrive (the attempt is recorded before the fetch starts, so
//!   concurrent requests do not pile on), so a flood of made-up `kid`s cannot storm the provider.
//! - A failed fetch keeps the keys already cached: they go on working.
//!
//! Pure: the glue calls [`JwksCache::plan`], fetches when told to, then [`JwksCache::fetched`].

use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use std::collections::HashMap;

/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most URLs remembered per isolate.
const MAX_URLS: usize = 256;

#[derive(Debug, Default)]
struct Entry {
    keys: Vec<Jwk>,
    /// When the keys were last fetched successfully (ms), if ever.
    fetched_at: Option<f64>,
    /// When a fetch was last started (ms).
    attempted_at: f64,
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

    pub fn plan(
        &mut self,
        url: &str,
        kid: Option<&str>,
        now: f64,
        cache_ms: f64,
        refetch_ms: f64,
    ) -> Plan {
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
        let entry = self.entries.entry(url.to_string()).or_insert(Entry {
            attempted_at: f64::NEG_INFINITY,
            ..Entry::default()
        });
        let fresh = entry.fetched_at.is_some_and(|t| now - t < cache_ms);
        let may_fetch = now - entry.attempted_at >= refetch_ms;
        match (found, fresh, may_fetch) {
            (Some(k), true, _) => Plan::Use(k),
            (_, _, true) => {
                entry.attempted_at = now;
                Plan::Fetch
            }
            // Stale and not allowed to fetch again yet (the last attempt failed): keep using it.
            (Some(k), false, false) => Plan::Use(k),
            (None, _, false) => Plan::Unknown,
        }
    }

    /// Record a fetch result. On success the set replaces the cached one; on failure the cached keys
    /// stay. Keys that cannot be used (symmetric, unknown types) are skipped. Returns an error message
    /// for the log when the fetch or the document was bad.
    pub fn fetched(
        &mut self,
        url: &str,
        body: Result<&str, String>,
        now: f64,
    ) -> Result<usize, String> {
        let keys = body.and_then(parse_jwks)?;
        let entry = self.entries.entry(url.to_string()).or_default();
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
