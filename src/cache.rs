//! Serve phase: the edge response cache (`proxy-cache` plugin) in front of the proxy.
//!
//! Decisions are made by `edgegate_core::cache` (pure, tested natively); this file does the I/O:
//! - the Workers Cache API (`caches.default`, per data centre), keyed by a URL built from the SHA-256 of
//!   the canonical key (method, host, path, chosen query and headers, consumer, purge generations);
//! - on a miss the origin body is tee'd: one branch streams to the client, the other goes into
//!   `cache.put` inside `ctx.waitUntil`, so nothing is read into memory by the Worker;
//! - freshness is decided from our own stored metadata (`x-edgegate-cache-meta`: stored-at, TTL, age,
//!   stale window), so `stale_if_error` can serve an expired copy; the stored copy's Cache-Control
//!   only tells the Cache API how long to keep it (TTL + stale window);
//! - purge generations come from KV (`cache/generations` in `CONFIG`), re-read at most every
//!   `CONFIG_RELOAD_SECONDS` per isolate;
//! - concurrent misses for one key are coalesced within the isolate (`cache_lock`, decisions in
//!   `edgegate_core::cache::MissLocks`): the first leads (fetches and stores, its client streaming as
//!   usual) and wakes the others when its `cache.put` has completed or when nothing will be stored;
//!   they then look the key up again, or go to the origin.

use crate::exchange::Exchange;
use crate::{config::KV_BINDING, proxy, runtime};
use edgegate_core::cache::{
    self as rules, AfterWait, Bypass, CacheStatus, Freshness, Generations, LeaderOutcome,
    MissLocks, MissPlan, RequestDecision, RequestInfo, ResponseInfo, Storable, StoredMeta,
    XCacheStatus, GENERATIONS_KEY,
};
use edgegate_core::proxy::{PROXY_LATENCY, REQUEST_ID, UPSTREAM_LATENCY};
use edgegate_core::{ErrorKind, GatewayError};
use futures_util::future::select;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

/// Headers of the origin response that never go into a stored copy (per-request or ours).
const NOT_STORED: &[&str] = &[
    REQUEST_ID,
    UPSTREAM_LATENCY,
    PROXY_LATENCY,
    "set-cookie",
    "age",
    rules::X_CACHE_STATUS,
    rules::X_CACHE_KEY,
    rules::CACHE_STATUS,
];

/// The serve hook of `proxy-cache` (`crate::plugins::HOOKS`): answers from the cache, or from the
/// origin (storing the answer).
pub fn serve_hook<'x, 'a>(
    ex: &'x mut Exchange<'a>,
    _instances: &'x [&'a edgegate_core::plugins::PluginInstance],
) -> crate::plugins::Step<'x> {
    Box::pin(async move { Ok(crate::plugins::Flow::Respond(serve(ex).await?)) })
}

async fn serve(ex: &mut Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    let username = ex.identity.as_ref().map(|i| i.username.clone());
    let Some(config) = rules::select(ex.plugins(), username.as_deref()) else {
        return proxy::forward(ex).await;
    };
    let method = ex.raw.method().to_ascii_uppercase();
    let is_head = method == "HEAD";
    let headers = ex.raw.headers();
    let header = |n: &str| headers.get(n).ok().flatten();
    let info = RequestInfo {
        method: &method,
        host: &ex.host,
        path: ex.url.path,
        query: ex.url.query,
        header: &header,
        identity: ex.identity.as_ref(),
    };
    let lookup = match rules::request_decision(config, &info) {
        RequestDecision::Bypass(Bypass::Method) if rules::invalidates(&method, 200) => {
            // An unsafe method: a success invalidates the stored GET of the same URL (RFC 9111 4.4).
            let get = RequestInfo {
                method: "GET",
                ..info
            };
            let generation = generations(ex.env)
                .await
                .for_request(ex.plan.route, &config.tags);
            let digest =
                rules::key_digest(&rules::cache_key(config, &get, ex.plan.route, &generation));
            let url = rules::cache_url(&ex.host, &digest);
            push_status(ex, &CacheStatus::bypass(Bypass::Method), None);
            let resp = proxy::forward(ex).await?;
            if rules::invalidates(&method, resp.status()) {
                if let Some(cache) = default_cache() {
                    if let Err(e) = JsFuture::from(cache.delete_with_str(&url)).await {
                        log_event("cache_invalidate_failed", ex.request_id, &js_error(&e));
                    }
                }
            }
            return Ok(resp);
        }
        RequestDecision::Bypass(why) => {
            push_status(ex, &CacheStatus::bypass(why), None);
            return proxy::forward(ex).await;
        }
        RequestDecision::Cache { lookup } => lookup,
    };
    let wants = rules::client_wants(config, &header);
    let generation = generations(ex.env)
        .await
        .for_request(ex.plan.route, &config.tags);
    let digest = rules::key_digest(&rules::cache_key(config, &info, ex.plan.route, &generation));
    let url = rules::cache_url(&ex.host, &digest);
    let shown_key = config.show_cache_key.then_some(digest.as_str());
    let Some(cache) = default_cache() else {
        // No Cache API here (should not happen on Workers): behave as if the plugin were absent.
        return proxy::forward(ex).await;
    };

    // Look up. A fresh entry is a hit; a stale one is kept while within `stale_if_error`.
    let mut had_entry = false;
    let mut client_refresh = !lookup;
    let mut stale: Option<(web_sys::Response, Freshness)> = None;
    if lookup {
        if let Some(stored) = cache_match(&cache, &url).await {
            match freshness(&stored) {
                Some(f) if f.fresh && wants.accepts(&f) => {
                    let status = CacheStatus::hit(f.remaining);
                    return from_store(ex, stored, &f, &status, shown_key, is_head, &header);
                }
                Some(f) if f.fresh => {
                    // Fresh, but older than the client's `max-age` or not `min-fresh` enough.
                    client_refresh = true;
                    discard(&stored);
                }
                Some(f) => {
                    had_entry = true;
                    if f.usable_on_error {
                        stale = Some((stored, f));
                    } else {
                        discard(&stored);
                    }
                }
                None => discard(&stored),
            }
        }
    }

    if wants.only_if_cached {
        // Nothing stored may answer, and the client does not want the origin asked (RFC 9111 5.2.1.7).
        if let Some((old, _)) = stale.take() {
            discard(&old);
        }
        push_status(ex, &CacheStatus::not_cached(), shown_key);
        return Err(GatewayError::new(
            ErrorKind::NotCached,
            "no stored response can answer this request (Cache-Control: only-if-cached)",
        ));
    }

    // Coalesce concurrent misses for this key (GET and the like; a HEAD miss stores nothing, and a
    // client asking for a fresh copy does not wait for another's).
    let mut leader: Option<Leader> = None;
    let mut store_allowed = true;
    let mut collapsed = None;
    if config.cache_lock && !client_refresh && !is_head {
        let timeout_ms = config.lock_timeout_ms();
        let (now, age_ms) = (runtime::now_ms(), config.lock_age_ms());
        let plan = LOCKS.with(|l| l.borrow_mut().plan(&digest, now, timeout_ms, age_ms));
        match plan {
            MissPlan::Lead { token } => leader = Some(Leader::new(&digest, token)),
            MissPlan::Wait { deadline } => {
                let woken = wait_for_leader(&digest, deadline, timeout_ms).await;
                match rules::after_wait(woken) {
                    AfterWait::Lookup => {
                        if let Some(stored) = cache_match(&cache, &url).await {
                            match freshness(&stored) {
                                Some(f) if f.fresh => {
                                    if let Some((old, _)) = stale.take() {
                                        discard(&old);
                                    }
                                    let status = CacheStatus::collapsed_hit(f.remaining, had_entry);
                                    return from_store(
                                        ex, stored, &f, &status, shown_key, false, &header,
                                    );
                                }
                                _ => discard(&stored),
                            }
                        }
                        collapsed = Some(false);
                    }
                    AfterWait::Origin => collapsed = Some(false),
                    AfterWait::OriginUncached => store_allowed = false,
                }
            }
        }
    }

    // The client's conditions are evaluated here, against what the origin sends in full (and what
    // is stored): the origin is not asked for a 304 that could not be stored.
    let conditional = !is_head && rules::is_conditional(&header);
    if conditional {
        for name in rules::CONDITIONAL_HEADERS {
            ex.upstream_remove.push(name.to_string());
        }
    }
    let result = proxy::forward(ex).await;
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => {
            if let Some((stored, f)) = stale.filter(|(_, f)| f.serve_stale(None)) {
                let status = CacheStatus::stale(f.remaining, None);
                return from_store(ex, stored, &f, &status, shown_key, is_head, &header);
            }
            return Err(e);
        }
    };
    let origin_status = resp.status();
    if let Some((stored, f)) = stale.take() {
        if f.serve_stale(Some(origin_status)) {
            discard(&resp);
            let status = CacheStatus::stale(f.remaining, Some(origin_status));
            return from_store(ex, stored, &f, &status, shown_key, is_head, &header);
        }
        discard(&stored);
    }
    if is_head {
        // A HEAD answer has no body to store; later HEADs are answered from a cached GET.
        let mut status =
            CacheStatus::forwarded(had_entry, client_refresh, origin_status, Err("head"));
        status.x = if had_entry || client_refresh {
            XCacheStatus::Refresh
        } else {
            XCacheStatus::Miss
        };
        push_status(ex, &status, shown_key);
        return Ok(resp);
    }
    let resp_headers = resp.headers();
    let resp_header = |n: &str| resp_headers.get(n).ok().flatten();
    let client_304 = conditional && rules::not_modified(origin_status, &header, &resp_header);
    if !store_allowed {
        // Waited past cache_lock_timeout: answered by the origin, not stored.
        push_status(
            ex,
            &CacheStatus::lock_timeout(had_entry, origin_status),
            shown_key,
        );
        return if client_304 {
            discard(&resp);
            not_modified(&resp_headers)
        } else {
            Ok(resp)
        };
    }
    let decision = rules::response_decision(
        config,
        &ResponseInfo {
            status: origin_status,
            header: &resp_header,
            now_secs: (runtime::now_ms() / 1000.0).max(0.0) as u64,
        },
    );
    match decision {
        Storable::No(why) => {
            // Dropping `leader` tells its waiters that nothing was stored.
            let mut status =
                CacheStatus::forwarded(had_entry, client_refresh, origin_status, Err(why));
            status.collapsed = collapsed;
            push_status(ex, &status, shown_key);
            if client_304 {
                discard(&resp);
                return not_modified(&resp_headers);
            }
            Ok(resp)
        }
        Storable::Yes { ttl, stale } => {
            let meta =
                StoredMeta::new(runtime::now_ms(), ttl, stale, resp_header("age").as_deref());
            let client =
                store_and_stream(ex, &cache, &url, resp, &meta, leader.take(), client_304)?;
            let mut status =
                CacheStatus::forwarded(had_entry, client_refresh, origin_status, Ok(ttl));
            status.collapsed = collapsed;
            push_status(ex, &status, shown_key);
            Ok(client)
        }
    }
}

/// `X-Cache-Status`, `Cache-Status` and (when shown) `X-Cache-Key` on the client's response.
fn push_status(ex: &mut Exchange<'_>, status: &CacheStatus, key: Option<&str>) {
    ex.response_headers
        .push((rules::X_CACHE_STATUS.into(), status.x.as_str().into()));
    ex.response_headers
        .push((rules::CACHE_STATUS.into(), status.header_value(key)));
    if let Some(k) = key {
        ex.response_headers
            .push((rules::X_CACHE_KEY.into(), k.to_string()));
    }
}

fn internal(what: &str) -> GatewayError {
    GatewayError::new(ErrorKind::Internal, what.to_string())
}

/// Tee the origin body: the client gets one branch now, the other is stored in `waitUntil`. The
/// `leader` of coalesced misses wakes its waiters once the store has completed (or failed).
fn store_and_stream(
    ex: &Exchange<'_>,
    cache: &web_sys::Cache,
    url: &str,
    resp: web_sys::Response,
    meta: &StoredMeta,
    leader: Option<Leader>,
    client_304: bool,
) -> Result<web_sys::Response, GatewayError> {
    let origin_headers = resp.headers();
    let stored_headers = web_sys::Headers::new_with_headers(&origin_headers)
        .map_err(|_| internal("could not copy response headers"))?;
    for name in NOT_STORED {
        let _ = stored_headers.delete(name);
    }
    match origin_headers.get("cache-control").ok().flatten() {
        Some(cc) => {
            let _ = stored_headers.set(rules::ORIGIN_CC_HEADER, &cc);
        }
        None => {
            let _ = stored_headers.delete(rules::ORIGIN_CC_HEADER);
        }
    }
    // The Cache API gives a stored copy its own `Date`: keep the origin's to send it back on hits.
    match origin_headers.get("date").ok().flatten() {
        Some(date) => {
            let _ = stored_headers.set(rules::ORIGIN_DATE_HEADER, &date);
        }
        None => {
            let _ = stored_headers.delete(rules::ORIGIN_DATE_HEADER);
        }
    }
    // For the Cache API only: keep the entry for its TTL plus the stale window.
    let _ = stored_headers.set(
        "cache-control",
        &format!("public, max-age={}", meta.storage_seconds().max(1)),
    );
    let _ = stored_headers.set(rules::META_HEADER, &meta.to_header());

    let (client_body, store_body) = match resp.body() {
        // The client gets a 304: the whole body goes into the cache.
        Some(body) if client_304 => (None, Some(body)),
        Some(body) => {
            let branches = body.tee();
            let a: web_sys::ReadableStream = branches.get(0).unchecked_into();
            let b: web_sys::ReadableStream = branches.get(1).unchecked_into();
            (Some(a), Some(b))
        }
        None => (None, None),
    };
    let init = web_sys::ResponseInit::new();
    init.set_status(resp.status());
    init.set_status_text(&resp.status_text());
    init.set_headers(&origin_headers);
    let client = if client_304 {
        not_modified(&origin_headers)?
    } else {
        web_sys::Response::new_with_opt_readable_stream_and_init(client_body.as_ref(), &init)
            .map_err(|_| internal("could not build the response"))?
    };
    let stored_init = web_sys::ResponseInit::new();
    stored_init.set_status(resp.status());
    stored_init.set_headers(&stored_headers);
    match web_sys::Response::new_with_opt_readable_stream_and_init(
        store_body.as_ref(),
        &stored_init,
    ) {
        Ok(stored) => {
            let put = cache.put_with_str(url, &stored);
            let request_id = ex.request_id.to_string();
            ex.ctx.wait_until(async move {
                let outcome = match JsFuture::from(put).await {
                    Ok(_) => LeaderOutcome::Stored,
                    Err(e) => {
                        log_event("cache_store_failed", &request_id, &js_error(&e));
                        LeaderOutcome::NotStored
                    }
                };
                if let Some(leader) = leader {
                    leader.finish(outcome);
                }
            });
        }
        Err(e) => {
            if let Some(b) = &store_body {
                let _ = b.cancel();
            }
            log_event("cache_store_failed", ex.request_id, &js_error(&e));
        }
    }
    Ok(client)
}

/// The client's response from a stored copy: the origin's headers back, `Age`, this request's id.
fn from_store(
    ex: &mut Exchange<'_>,
    stored: web_sys::Response,
    f: &Freshness,
    status: &CacheStatus,
    key: Option<&str>,
    head: bool,
    req: &dyn Fn(&str) -> Option<String>,
) -> Result<web_sys::Response, GatewayError> {
    let headers = web_sys::Headers::new_with_headers(&stored.headers())
        .map_err(|_| internal("could not copy cached headers"))?;
    let origin_cc = headers.get(rules::ORIGIN_CC_HEADER).ok().flatten();
    let origin_date = headers.get(rules::ORIGIN_DATE_HEADER).ok().flatten();
    for name in [
        rules::META_HEADER,
        rules::ORIGIN_CC_HEADER,
        rules::ORIGIN_DATE_HEADER,
        "cf-cache-status",
        "cache-control",
        "warning",
    ] {
        let _ = headers.delete(name);
    }
    if let Some(cc) = origin_cc {
        let _ = headers.set("cache-control", &cc);
    }
    if let Some(date) = origin_date {
        let _ = headers.set("date", &date);
    }
    let _ = headers.set("age", &f.age.to_string());
    let _ = headers.set(REQUEST_ID, ex.request_id);
    let elapsed = (runtime::now_ms() - ex.started).max(0.0) as u64;
    let _ = headers.set(PROXY_LATENCY, &elapsed.to_string());
    let stored_header = |n: &str| headers.get(n).ok().flatten();
    if rules::not_modified(stored.status(), req, &stored_header) {
        discard(&stored);
        push_status(ex, status, key);
        return not_modified(&headers);
    }
    let body = if head {
        discard(&stored);
        None
    } else {
        stored.body()
    };
    let init = web_sys::ResponseInit::new();
    init.set_status(stored.status());
    init.set_headers(&headers);
    let resp = web_sys::Response::new_with_opt_readable_stream_and_init(body.as_ref(), &init)
        .map_err(|_| internal("could not build the cached response"))?;
    push_status(ex, status, key);
    Ok(resp)
}

/// `304 Not Modified` for a client whose copy is current: the 200's headers without the metadata of
/// the body it does not carry (ETag, Last-Modified, Cache-Control, Expires, Vary, Date stay).
fn not_modified(from: &web_sys::Headers) -> Result<web_sys::Response, GatewayError> {
    let headers = web_sys::Headers::new_with_headers(from)
        .map_err(|_| internal("could not copy response headers"))?;
    for name in rules::NOT_MODIFIED_DROP {
        let _ = headers.delete(name);
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(304);
    init.set_headers(&headers);
    web_sys::Response::new_with_opt_readable_stream_and_init(None, &init)
        .map_err(|_| internal("could not build the 304 response"))
}

/// Release a response body we will not read.
/// How fresh a stored response is now, from the metadata the gateway stored with it; `None` when that
/// metadata is missing or unreadable (the entry is then discarded).
fn freshness(stored: &web_sys::Response) -> Option<Freshness> {
    let meta = stored.headers().get(rules::META_HEADER).ok().flatten()?;
    StoredMeta::parse(&meta).map(|m| m.freshness(runtime::now_ms()))
}

fn discard(resp: &web_sys::Response) {
    if let Some(body) = resp.body() {
        let _ = body.cancel();
    }
}

fn default_cache() -> Option<web_sys::Cache> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let caches = global.caches().ok()?;
    let cache = js_sys::Reflect::get(&caches, &JsValue::from_str("default")).ok()?;
    (!cache.is_undefined() && !cache.is_null()).then(|| cache.unchecked_into())
}

async fn cache_match(cache: &web_sys::Cache, url: &str) -> Option<web_sys::Response> {
    match JsFuture::from(cache.match_with_str(url)).await {
        Ok(v) if v.is_undefined() || v.is_null() => None,
        Ok(v) => v.dyn_into::<web_sys::Response>().ok(),
        Err(e) => {
            log_event("cache_lookup_failed", "", &js_error(&e));
            None
        }
    }
}

fn js_error(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn log_event(event: &str, request_id: &str, error: &str) {
    runtime::log_error(
        &serde_json::json!({"event": event, "request_id": request_id, "error": error}).to_string(),
    );
}

// -------------------------------------------------------------------------------------------------
// Purge generations: one KV read per isolate at most every CONFIG_RELOAD_SECONDS.

thread_local! {
    static GENERATIONS: RefCell<Option<(f64, Rc<Generations>)>> = const { RefCell::new(None) };
}

fn reload_ms(env: &Env) -> f64 {
    env.var("CONFIG_RELOAD_SECONDS")
        .ok()
        .and_then(|v| v.to_string().trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(30.0)
        * 1000.0
}

async fn generations(env: &Env) -> Rc<Generations> {
    let now = runtime::now_ms();
    let cached = GENERATIONS.with(|g| g.borrow().clone());
    if let Some((at, g)) = &cached {
        if now - at < reload_ms(env) {
            return g.clone();
        }
    }
    let read = match env.kv(KV_BINDING) {
        Ok(kv) => kv
            .get(GENERATIONS_KEY)
            .text()
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let loaded = match read {
        Ok(None) => Ok(Generations::default()),
        Ok(Some(text)) => Generations::parse(&text),
        Err(e) => Err(format!("reading {GENERATIONS_KEY}: {e}")),
    };
    let g = match loaded {
        Ok(g) => Rc::new(g),
        Err(e) => {
            // Keep the last known generations (or none) and try again after the interval.
            log_event("cache_generations_failed", "", &e);
            cached.map(|(_, g)| g).unwrap_or_default()
        }
    };
    GENERATIONS.with(|c| *c.borrow_mut() = Some((now, g.clone())));
    g
}

// -------------------------------------------------------------------------------------------------
// Miss coalescing (cache_lock): the isolate's locks by cache key; a waiter's waker is the resolve
// function of a promise its own request awaits, called with `true` when the leader stored its answer.

thread_local! {
    static LOCKS: RefCell<MissLocks<js_sys::Function>> = RefCell::new(MissLocks::new());
    static NEXT_WAITER: Cell<u64> = const { Cell::new(0) };
}

/// The first miss of a key. However it ends, its waiters are woken exactly once: by [`Leader::finish`]
/// after the store, or by the drop (nothing stored: not storable, origin failed, request went away).
struct Leader {
    key: String,
    token: u64,
    done: bool,
}

impl Leader {
    fn new(key: &str, token: u64) -> Leader {
        Leader {
            key: key.to_string(),
            token,
            done: false,
        }
    }

    fn finish(mut self, outcome: LeaderOutcome) {
        self.done = true;
        wake(&self.key, self.token, outcome);
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if !self.done {
            wake(&self.key, self.token, LeaderOutcome::NotStored);
        }
    }
}

fn wake(key: &str, token: u64, outcome: LeaderOutcome) {
    let waiters = LOCKS.with(|l| match l.try_borrow_mut() {
        Ok(mut l) => l.finish(key, token),
        Err(_) => Vec::new(),
    });
    let stored = JsValue::from_bool(outcome == LeaderOutcome::Stored);
    for resolve in waiters {
        // Each promise belongs to its waiter's request; the runtime settles it there.
        let _ = resolve.call1(&JsValue::UNDEFINED, &stored);
    }
}

/// Wait for the leader of `key` until `deadline` (ms since the epoch); `None` when the deadline came
/// first.
async fn wait_for_leader(key: &str, deadline: f64, timeout_ms: f64) -> Option<LeaderOutcome> {
    let id = NEXT_WAITER.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    let woken = js_sys::Promise::new(&mut |resolve, _reject| {
        LOCKS.with(|l| l.borrow_mut().wait(key, id, resolve));
    });
    // Take the waker out again however the wait ends (a timeout, or this future dropped).
    struct Registered<'k>(&'k str, u64);
    impl Drop for Registered<'_> {
        fn drop(&mut self) {
            LOCKS.with(|l| {
                if let Ok(mut l) = l.try_borrow_mut() {
                    l.cancel(self.0, self.1);
                }
            });
        }
    }
    let _registered = Registered(key, id);
    let wait_ms = (deadline - runtime::now_ms()).clamp(0.0, timeout_ms);
    let timeout = worker::Delay::from(Duration::from_millis(wait_ms as u64));
    let woken = JsFuture::from(woken);
    futures_util::pin_mut!(woken);
    match select(woken, timeout).await {
        futures_util::future::Either::Left((Ok(v), _)) => Some(if v.as_bool() == Some(true) {
            LeaderOutcome::Stored
        } else {
            LeaderOutcome::NotStored
        }),
        futures_util::future::Either::Left((Err(_), _)) => Some(LeaderOutcome::NotStored),
        futures_util::future::Either::Right(_) => None,
    }
}
