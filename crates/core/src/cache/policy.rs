//! What may be cached, for how long, and whether a stored copy may still be served.

use super::{CacheControl, ProxyCacheConfig};
use crate::identity::Identity;
use crate::plugins::PluginInstance;

/// The request, as the cache sees it.
pub struct RequestInfo<'a> {
    /// Upper-case method.
    pub method: &'a str,
    /// Lower-case host without port.
    pub host: &'a str,
    /// The client's path.
    pub path: &'a str,
    /// The client's raw query string, without `?`.
    pub query: &'a str,
    /// A request header by (lower-case) name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The consumer the auth phase established, if any.
    pub identity: Option<&'a Identity>,
}

/// Why a request goes to the origin without the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    /// The method is not in `request_method`.
    Method,
    /// A WebSocket or other upgrade.
    Upgrade,
    /// A range request (the cache stores whole responses).
    Range,
    /// The request carries credentials, no consumer was authenticated and the instance is not `public`.
    Credentials,
    /// The client sent `Cache-Control: no-store` (with `cache_control`).
    RequestNoStore,
}

impl Bypass {
    /// RFC 9211 `fwd` reason.
    pub fn fwd(self) -> &'static str {
        match self {
            Bypass::Method => "method",
            Bypass::RequestNoStore => "request",
            _ => "bypass",
        }
    }

    /// `detail` in `Cache-Status`.
    pub fn detail(self) -> &'static str {
        match self {
            Bypass::Method => "method",
            Bypass::Upgrade => "upgrade",
            Bypass::Range => "range",
            Bypass::Credentials => "credentials",
            Bypass::RequestNoStore => "request-no-store",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestDecision {
    /// The response may come from, and go into, the cache. `lookup: false` when the client asked for a
    /// fresh copy (`no-cache`, `max-age=0` with `cache_control`): skip the lookup, still store.
    Cache {
        lookup: bool,
    },
    Bypass(Bypass),
}

/// Headers that carry credentials (Kong's key names, HTTP authentication, cookies).
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "apikey",
    "x-api-key",
];
/// Query parameters that carry credentials (names compared percent-decoded, in any case).
const CREDENTIAL_QUERY: &[&str] = &["apikey", "api_key", "jwt", "access_token"];

/// Does the request carry credentials (so its response may be personal)?
pub fn has_credentials(header: &dyn Fn(&str) -> Option<String>, query: &str) -> bool {
    CREDENTIAL_HEADERS.iter().any(|h| header(h).is_some())
        || query.split('&').any(|p| {
            let raw = p.split_once('=').map_or(p, |(n, _)| n);
            // Compared percent-decoded, as the origin (and key-auth) read it: `access%5Ftoken` is
            // `access_token`. A name that is not UTF-8 once decoded is compared as sent.
            let decoded = crate::auth::percent_decode(raw);
            let name = decoded.as_deref().unwrap_or(raw);
            CREDENTIAL_QUERY
                .iter()
                .any(|c| c.eq_ignore_ascii_case(name.trim()))
        })
}

/// May this request use the cache?
pub fn request_decision(config: &ProxyCacheConfig, req: &RequestInfo<'_>) -> RequestDecision {
    if !config
        .request_method
        .iter()
        .any(|m| m.eq_ignore_ascii_case(req.method))
    {
        return RequestDecision::Bypass(Bypass::Method);
    }
    if (req.header)("upgrade").is_some() {
        return RequestDecision::Bypass(Bypass::Upgrade);
    }
    if (req.header)("range").is_some() {
        return RequestDecision::Bypass(Bypass::Range);
    }
    let cc = CacheControl::parse((req.header)("cache-control").as_deref());
    // `no-store` with `only-if-cached`: the origin must not be asked, so a stored copy may answer
    // (RFC 9111 5.2.1.5: no-store does not apply to a response already stored), else 504; nothing
    // is stored since the origin is never asked.
    if config.cache_control && cc.no_store && !cc.only_if_cached {
        return RequestDecision::Bypass(Bypass::RequestNoStore);
    }
    if !config.public
        && super::key_consumer(config, req.identity).is_none()
        && has_credentials(req.header, req.query)
    {
        return RequestDecision::Bypass(Bypass::Credentials);
    }
    // Pragma counts only when the request has no Cache-Control (RFC 9111 5.4).
    let pragma_no_cache = (req.header)("cache-control").is_none()
        && (req.header)("pragma").is_some_and(|p| p.to_ascii_lowercase().contains("no-cache"));
    let refresh = config.cache_control && (cc.no_cache || cc.max_age == Some(0) || pragma_no_cache);
    RequestDecision::Cache { lookup: !refresh }
}

/// What the client's `Cache-Control` asks of a stored response, with `cache_control` (RFC 9111
/// 5.2.1); nothing without it. `no-cache`, `max-age=0` and `no-store` are [`request_decision`]'s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientWants {
    /// `only-if-cached`: answer from the cache or with 504, never from the origin.
    pub only_if_cached: bool,
    /// `max-age=N`: a stored response older than N seconds is not acceptable.
    pub max_age: Option<u64>,
    /// `min-fresh=N`: a stored response must stay fresh for at least N more seconds.
    pub min_fresh: Option<u64>,
}

impl ClientWants {
    /// May the stored response in state `f` be served to this client?
    pub fn accepts(&self, f: &Freshness) -> bool {
        f.fresh
            && self.max_age.is_none_or(|m| f.age <= m)
            && self
                .min_fresh
                .is_none_or(|m| f.remaining >= i64::try_from(m).unwrap_or(i64::MAX))
    }
}

/// The client's demands on a stored response (all empty unless `cache_control`).
pub fn client_wants(
    config: &ProxyCacheConfig,
    header: &dyn Fn(&str) -> Option<String>,
) -> ClientWants {
    if !config.cache_control {
        return ClientWants::default();
    }
    let Some(value) = header("cache-control") else {
        return ClientWants::default();
    };
    let cc = CacheControl::parse(Some(&value));
    ClientWants {
        only_if_cached: cc.only_if_cached,
        max_age: cc.max_age,
        min_fresh: cc.min_fresh,
    }
}

/// The origin response, as the cache sees it.
pub struct ResponseInfo<'a> {
    pub status: u16,
    /// A response header by (lower-case) name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// Now (seconds since the epoch): `Expires` counts from the response's `Date`, or from now
    /// when it has none.
    pub now_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storable {
    /// Store it: fresh for `ttl` seconds, then usable on origin errors for `stale` more seconds.
    Yes { ttl: u64, stale: u64 },
    /// Do not store it; the reason goes into `Cache-Status` `detail`.
    No(&'static str),
}

/// Does `content_type` match one of the configured media types (`type/*`, `*/*` wildcards)?
fn content_type_allowed(allowed: &[String], content_type: Option<&str>) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(ct) = content_type else { return false };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (t, _) = media.split_once('/').unwrap_or((&media, ""));
    allowed.iter().any(|a| {
        a == &media || a == "*/*" || a.strip_suffix("/*").is_some_and(|prefix| prefix == t)
    })
}

/// May this origin response be stored, and for how long?
pub fn response_decision(config: &ProxyCacheConfig, resp: &ResponseInfo<'_>) -> Storable {
    if !config.response_code.contains(&resp.status) {
        return Storable::No("status");
    }
    if !content_type_allowed(
        &config.content_type,
        (resp.header)("content-type").as_deref(),
    ) {
        return Storable::No("content-type");
    }
    if !config.cache_set_cookie && (resp.header)("set-cookie").is_some() {
        return Storable::No("set-cookie");
    }
    if let Some(vary) = (resp.header)("vary") {
        for name in vary.split(',').map(|n| n.trim().to_ascii_lowercase()) {
            if name.is_empty() || name == "accept-encoding" {
                continue;
            }
            // The key must vary on whatever the origin varies on, else one variant would be served
            // to every client.
            if name == "*" || !config.vary_headers.contains(&name) {
                return Storable::No("vary");
            }
        }
    }
    let cc = CacheControl::parse((resp.header)("cache-control").as_deref());
    // A shared cache never stores these, whatever `cache_control` says (RFC 9111 3 and 5.2.2.7).
    if cc.no_store {
        return Storable::No("no-store");
    }
    if cc.private {
        return Storable::No("private");
    }
    if !config.cache_control {
        return Storable::Yes {
            ttl: config.cache_ttl,
            stale: config.stale_if_error,
        };
    }
    if cc.no_cache {
        return Storable::No("no-cache");
    }
    let age = super::control::age_seconds((resp.header)("age").as_deref());
    // Freshness lifetime (RFC 9111 4.2.1): s-maxage, max-age, then Expires - Date (an Expires that
    // is not a date, `0` for instance, is in the past); else `cache_ttl`.
    let expires = (resp.header)("expires");
    let ttl = match (cc.shared_max_age(), expires) {
        (Some(max_age), _) => max_age.saturating_sub(age),
        (None, Some(expires)) => {
            let date = (resp.header)("date")
                .and_then(|d| super::conditional::http_date(&d))
                .unwrap_or(resp.now_secs);
            let lifetime =
                super::conditional::http_date(&expires).map_or(0, |e| e.saturating_sub(date));
            // How old the response already is (RFC 9111 4.2.3): its `Age`, or the time since its
            // `Date` when that is more, so a copy from the past is not kept beyond its `Expires`.
            let apparent_age = resp.now_secs.saturating_sub(date);
            let ttl = lifetime.saturating_sub(age.max(apparent_age));
            if ttl == 0 {
                return Storable::No("expires");
            }
            ttl
        }
        (None, None) => config.cache_ttl,
    };
    if ttl == 0 {
        return Storable::No("max-age");
    }
    // must-revalidate / proxy-revalidate (which s-maxage implies for a shared cache, RFC 9111
    // 5.2.2.10): no stale copy unless the origin itself allows it.
    let stale = if cc.must_revalidate || cc.s_maxage.is_some() {
        cc.stale_if_error.unwrap_or(0)
    } else {
        config.stale_if_error.max(cc.stale_if_error.unwrap_or(0))
    };
    Storable::Yes { ttl, stale }
}

/// What is stored next to a response (header [`super::META_HEADER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredMeta {
    /// When it was stored (ms since the epoch).
    pub stored_at_ms: u64,
    /// Seconds of freshness from `stored_at_ms`.
    pub ttl: u64,
    /// The response's age when stored (the origin's `Age`), seconds.
    pub age: u64,
    /// Seconds after expiry during which it may be served when the origin fails.
    pub stale: u64,
}

impl StoredMeta {
    pub fn new(now_ms: f64, ttl: u64, stale: u64, origin_age: Option<&str>) -> StoredMeta {
        StoredMeta {
            stored_at_ms: now_ms.max(0.0) as u64,
            ttl,
            age: super::control::age_seconds(origin_age),
            stale,
        }
    }

    pub fn to_header(&self) -> String {
        format!(
            "stored={};ttl={};age={};stale={}",
            self.stored_at_ms, self.ttl, self.age, self.stale
        )
    }

    pub fn parse(value: &str) -> Option<StoredMeta> {
        let mut meta = StoredMeta {
            stored_at_ms: 0,
            ttl: 0,
            age: 0,
            stale: 0,
        };
        let mut seen = 0;
        for part in value.split(';') {
            let (name, v) = part.trim().split_once('=')?;
            let v: u64 = v.parse().ok()?;
            match name {
                "stored" => meta.stored_at_ms = v,
                "ttl" => meta.ttl = v,
                "age" => meta.age = v,
                "stale" => meta.stale = v,
                _ => continue,
            }
            seen += 1;
        }
        (seen == 4).then_some(meta)
    }

    /// How long the Cache API must keep the entry: its freshness plus the stale window.
    pub fn storage_seconds(&self) -> u64 {
        self.ttl.saturating_add(self.stale)
    }

    /// How fresh the entry is at `now_ms`.
    pub fn freshness(&self, now_ms: f64) -> Freshness {
        let elapsed_ms = (now_ms.max(0.0) as u64).saturating_sub(self.stored_at_ms);
        let ttl_ms = self.ttl.saturating_mul(1000);
        let fresh = elapsed_ms < ttl_ms;
        let within_stale = elapsed_ms < self.ttl.saturating_add(self.stale).saturating_mul(1000);
        let elapsed = elapsed_ms / 1000;
        // Whole seconds, rounded away from the expiry instant: a fresh entry never shows 0 and a
        // stale one is always negative.
        let remaining = if fresh {
            (ttl_ms - elapsed_ms).div_ceil(1000) as i64
        } else {
            -((elapsed_ms - ttl_ms).div_ceil(1000).max(1) as i64)
        };
        Freshness {
            fresh,
            age: self.age.saturating_add(elapsed),
            remaining,
            usable_on_error: !fresh && self.stale > 0 && within_stale,
        }
    }
}

/// The state of a stored entry at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// It may be served without asking the origin.
    pub fresh: bool,
    /// The `Age` header value, seconds.
    pub age: u64,
    /// Seconds of freshness left (negative once stale): RFC 9211 `ttl`.
    pub remaining: i64,
    /// Stale, but within `stale_if_error`: serve it if the origin fails.
    pub usable_on_error: bool,
}

impl Freshness {
    /// Serve the stale copy instead of what the origin did? `origin_status` is `None` when the origin
    /// could not be reached or timed out.
    pub fn serve_stale(&self, origin_status: Option<u16>) -> bool {
        self.usable_on_error && origin_status.is_none_or(|s| s >= 500)
    }
}

/// The `proxy-cache` settings that apply to a request: the most specific enabled instance among those
/// of the route, consumer-scoped ones only for that consumer (Kong runs one instance per plugin name).
pub fn select<'a>(
    instances: impl Iterator<Item = &'a PluginInstance>,
    username: Option<&str>,
) -> Option<&'a ProxyCacheConfig> {
    let mut best: Option<(&PluginInstance, &ProxyCacheConfig)> = None;
    for inst in instances {
        let Some(config) = inst.config::<ProxyCacheConfig>() else {
            continue;
        };
        if inst
            .consumer
            .as_deref()
            .is_some_and(|u| Some(u) != username)
        {
            continue;
        }
        if best.is_none_or(|(b, _)| inst.specificity() > b.specificity()) {
            best = Some((inst, config));
        }
    }
    best.map(|(_, c)| c)
}

/// Does a `method` request (one outside `request_method`) answered with `status` invalidate the
/// stored GET response of its URL (RFC 9111 4.4)? Unsafe methods (not GET, HEAD, OPTIONS, TRACE)
/// answered with a non-error status (2xx, 3xx) do.
pub fn invalidates(method: &str, status: u16) -> bool {
    let safe = ["GET", "HEAD", "OPTIONS", "TRACE"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method));
    !safe && (200..400).contains(&status)
}
