//! The `proxy-cache` plugin: an edge response cache with Kong proxy-cache's option names and defaults.
//!
//! Everything here is pure: the glue (`src/cache.rs`) reads the request, the stored entry and the origin
//! response, asks these functions what to do, and performs the Cache API and KV I/O. Time is passed in
//! (`now_ms`), never read.
//!
//! - [`ProxyCacheConfig`]: the plugin settings (validated and normalized by [`parse`]).
//! - [`request_decision`]: may this request be answered from / stored in the cache?
//! - [`response_decision`]: may this origin response be stored, and for how long?
//! - [`cache_key`] / [`key_digest`] / [`cache_url`]: the key, the purge generations in it.
//! - [`StoredMeta`] / [`Freshness`]: what we store next to a response, and how old it is.
//! - [`CacheStatus`]: `X-Cache-Status` and RFC 9211 `Cache-Status` values.
//! - [`Generations`]: the purge counters kept in KV at [`GENERATIONS_KEY`].
//! - [`MissLocks`]: miss coalescing within an isolate (`cache_lock`, nginx's `proxy_cache_lock`).

mod conditional;
mod control;
mod generations;
mod key;
mod lock;
mod policy;
mod status;
#[cfg(test)]
mod tests;

pub use conditional::{
    http_date, is_conditional, not_modified, CONDITIONAL_HEADERS, NOT_MODIFIED_DROP,
};
pub use control::CacheControl;
pub use generations::{Generations, GENERATIONS_KEY};
pub use key::{cache_key, cache_url, key_consumer, key_digest, sorted_query};
pub use lock::{after_wait, AfterWait, LeaderOutcome, MissLocks, MissPlan};
pub use policy::{
    client_wants, has_credentials, invalidates, request_decision, response_decision, select,
    Bypass, ClientWants, Freshness, RequestDecision, RequestInfo, ResponseInfo, Storable,
    StoredMeta,
};
pub use status::{CacheStatus, XCacheStatus, CACHE_NAME};

use crate::plugins::{settings, PluginError};
use serde::{Deserialize, Serialize};

/// The response header holding [`StoredMeta`] on stored copies (never sent to clients).
pub const META_HEADER: &str = "x-edgegate-cache-meta";
/// The response header keeping the origin's own `Cache-Control` on stored copies (the stored copy
/// carries a Cache-Control of our own for the Cache API); restored when the copy is served.
pub const ORIGIN_CC_HEADER: &str = "x-edgegate-cache-origin-cc";
/// The origin's `Date`, kept beside the stored copy (the Cache API sets its own) and restored on hits.
pub const ORIGIN_DATE_HEADER: &str = "x-edgegate-cache-origin-date";
/// The gateway's own headers on stored copies ([`META_HEADER`], [`ORIGIN_CC_HEADER`],
/// [`ORIGIN_DATE_HEADER`]). An origin that sends them itself must not reach the client with them nor
/// change what is stored: they are removed from every origin response as it arrives, before any plugin
/// or the cache sees it.
pub const PRIVATE_HEADERS: [&str; 3] = [META_HEADER, ORIGIN_CC_HEADER, ORIGIN_DATE_HEADER];
pub const X_CACHE_STATUS: &str = "x-cache-status";
pub const X_CACHE_KEY: &str = "x-cache-key";
pub const CACHE_STATUS: &str = "cache-status";

/// Settings of a `proxy-cache` plugin instance. Names and defaults follow Kong's proxy-cache.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "ProxyCachePluginConfig",
        description = "Settings of the `proxy-cache` plugin (docs/caching.md)."
    )
)]
#[serde(deny_unknown_fields)]
pub struct ProxyCacheConfig {
    /// Request methods that may be cached (default `["GET", "HEAD"]`). HEAD is answered from the
    /// cached GET.
    #[serde(default = "default_methods")]
    pub request_method: Vec<String>,
    /// Origin status codes that may be stored (default `[200, 301, 404]`).
    #[serde(default = "default_codes")]
    pub response_code: Vec<u16>,
    /// Media types that may be stored (default `["text/plain", "application/json"]`). `type/*` and
    /// `*/*` are wildcards; parameters (`; charset=...`) are ignored. An empty list allows any type.
    #[serde(default = "default_content_types")]
    pub content_type: Vec<String>,
    /// Seconds a response stays fresh (default 300). With `cache_control` the origin's max-age /
    /// s-maxage wins when present.
    #[serde(default = "default_ttl")]
    pub cache_ttl: u64,
    /// Obey Cache-Control: the origin's `max-age`, `s-maxage`, `no-cache`, `stale-if-error`, and the
    /// client's `no-store` / `no-cache` / `max-age=0` (default false). The origin's `no-store` and
    /// `private` are obeyed either way.
    #[serde(default)]
    pub cache_control: bool,
    /// Query parameters that are part of the key (sorted). Empty (default): every parameter.
    #[serde(default)]
    pub vary_query_params: Vec<String>,
    /// Request headers whose values are part of the key.
    #[serde(default)]
    pub vary_headers: Vec<String>,
    /// Compare paths without case (default false).
    #[serde(default)]
    pub ignore_uri_case: bool,
    /// The responses are the same for every caller: requests carrying credentials are cached too, and
    /// the consumer is not part of the key (default false).
    #[serde(default)]
    pub public: bool,
    /// Store responses that set cookies; the stored copy never carries `Set-Cookie` (default false:
    /// such responses are not stored).
    #[serde(default)]
    pub cache_set_cookie: bool,
    /// Seconds past expiry during which a stale copy is served when the origin answers 5xx or cannot
    /// be reached (default 0: never).
    #[serde(default)]
    pub stale_if_error: u64,
    /// Send `X-Cache-Key` (and `key` in `Cache-Status`) with responses (default false).
    #[serde(default)]
    pub show_cache_key: bool,
    /// Purge tags: `scripts/config purge --tag T` invalidates every instance carrying tag T.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Coalesce concurrent misses for one key within an isolate (default true, nginx's
    /// `proxy_cache_lock`): the first fetches from the origin, the others wait for what it stores.
    #[serde(default = "default_true")]
    pub cache_lock: bool,
    /// Seconds a coalesced miss waits for the first one before going to the origin itself, without
    /// storing (default 5, nginx's `proxy_cache_lock_timeout`; more than 0, at most 300).
    #[serde(default = "default_lock_seconds")]
    pub cache_lock_timeout: f64,
    /// Seconds after which a first miss that has not finished no longer holds the others: the next
    /// miss fetches again (default 5, nginx's `proxy_cache_lock_age`; more than 0, at most 300).
    #[serde(default = "default_lock_seconds")]
    pub cache_lock_age: f64,
    /// Kong's required `strategy`, accepted so that Kong configurations load: only `"memory"` (the
    /// store is always the Workers Cache API); `"redis"` is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["memory"])))]
    pub strategy: Option<String>,
}

impl Default for ProxyCacheConfig {
    fn default() -> Self {
        ProxyCacheConfig {
            request_method: default_methods(),
            response_code: default_codes(),
            content_type: default_content_types(),
            cache_ttl: default_ttl(),
            cache_control: false,
            vary_query_params: Vec::new(),
            vary_headers: Vec::new(),
            ignore_uri_case: false,
            public: false,
            cache_set_cookie: false,
            stale_if_error: 0,
            show_cache_key: false,
            tags: Vec::new(),
            cache_lock: true,
            cache_lock_timeout: default_lock_seconds(),
            cache_lock_age: default_lock_seconds(),
            strategy: None,
        }
    }
}

impl ProxyCacheConfig {
    /// `cache_lock_timeout` in milliseconds.
    pub fn lock_timeout_ms(&self) -> f64 {
        self.cache_lock_timeout * 1000.0
    }

    /// `cache_lock_age` in milliseconds.
    pub fn lock_age_ms(&self) -> f64 {
        self.cache_lock_age * 1000.0
    }
}

fn default_methods() -> Vec<String> {
    vec!["GET".into(), "HEAD".into()]
}
fn default_codes() -> Vec<u16> {
    vec![200, 301, 404]
}
fn default_content_types() -> Vec<String> {
    vec!["text/plain".into(), "application/json".into()]
}
fn default_ttl() -> u64 {
    300
}
fn default_true() -> bool {
    true
}
fn default_lock_seconds() -> f64 {
    5.0
}
/// The longest `cache_lock_timeout` / `cache_lock_age` accepted (seconds).
const MAX_LOCK_SECONDS: f64 = 300.0;

/// Methods Kong's proxy-cache accepts.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH"];
/// The longest TTL / stale window accepted (one year).
const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// Parse, check and normalize the settings of a `proxy-cache` instance.
pub fn parse(config: &serde_json::Value) -> Result<ProxyCacheConfig, PluginError> {
    let mut c: ProxyCacheConfig = settings(config)?;
    let mut errors = Vec::new();
    let mut err = |path: String, msg: String| errors.push((path, msg));
    if c.request_method.is_empty() {
        err(
            "request_method".into(),
            "must name at least one method".into(),
        );
    }
    for (i, m) in c.request_method.iter().enumerate() {
        if !METHODS.contains(&m.as_str()) {
            err(
                format!("request_method[{i}]"),
                format!("{m:?} is not one of {}", METHODS.join(", ")),
            );
        }
    }
    if c.response_code.is_empty() {
        err(
            "response_code".into(),
            "must name at least one status".into(),
        );
    }
    for (i, s) in c.response_code.iter().enumerate() {
        if !(100..=599).contains(s) || matches!(*s, 101 | 206 | 304) {
            err(
                format!("response_code[{i}]"),
                format!("{s} cannot be cached (use 100..599, not 101, 206 or 304)"),
            );
        }
    }
    for (i, t) in c.content_type.iter().enumerate() {
        let valid = t
            .split_once('/')
            .is_some_and(|(a, b)| crate::proxy::is_token(a) && crate::proxy::is_token(b));
        if !valid {
            err(
                format!("content_type[{i}]"),
                format!("{t:?} is not a media type like \"application/json\" or \"text/*\""),
            );
        }
    }
    if c.cache_ttl == 0 || c.cache_ttl > MAX_SECONDS {
        err(
            "cache_ttl".into(),
            format!("must be between 1 and {MAX_SECONDS} seconds"),
        );
    }
    if c.stale_if_error > MAX_SECONDS {
        err(
            "stale_if_error".into(),
            format!("must be at most {MAX_SECONDS} seconds"),
        );
    }
    for (name, v) in [
        ("cache_lock_timeout", c.cache_lock_timeout),
        ("cache_lock_age", c.cache_lock_age),
    ] {
        if !(v > 0.0 && v <= MAX_LOCK_SECONDS) {
            err(
                name.into(),
                format!("must be more than 0 and at most {MAX_LOCK_SECONDS} seconds"),
            );
        }
    }
    if let Some(s) = c.strategy.as_deref().filter(|s| *s != "memory") {
        err(
            "strategy".into(),
            format!("{s:?} is not available: the cache is the Workers Cache API (use \"memory\" or leave it out)"),
        );
    }
    for (i, h) in c.vary_headers.iter().enumerate() {
        if !crate::proxy::is_token(h) {
            err(
                format!("vary_headers[{i}]"),
                // Not quoted: it may be a whole `Name: secret` line.
                format!(
                    "not a valid header name ({})",
                    crate::plugins::transform::bad_name_char(h)
                ),
            );
        }
    }
    for (i, q) in c.vary_query_params.iter().enumerate() {
        if q.is_empty() || q.contains(['&', '=', '#']) {
            err(
                format!("vary_query_params[{i}]"),
                // Not quoted: it may be a whole `name=secret` pair.
                "not a query parameter name (empty, or `&`, `=` or `#` in it)".to_string(),
            );
        }
    }
    for (i, t) in c.tags.iter().enumerate() {
        if t.is_empty() || t.len() > 128 || t.contains(|ch: char| ch.is_control() || ch == ',') {
            err(
                format!("tags[{i}]"),
                "a tag is 1 to 128 characters, without commas or control characters".into(),
            );
        }
    }
    if !errors.is_empty() {
        return Err(PluginError::Config(errors));
    }
    for m in &mut c.request_method {
        m.make_ascii_uppercase();
    }
    for t in &mut c.content_type {
        t.make_ascii_lowercase();
    }
    for h in &mut c.vary_headers {
        h.make_ascii_lowercase();
    }
    crate::sort::sort(&mut c.vary_headers);
    c.vary_headers.dedup();
    crate::sort::sort(&mut c.vary_query_params);
    c.vary_query_params.dedup();
    crate::sort::sort(&mut c.tags);
    c.tags.dedup();
    Ok(c)
}
