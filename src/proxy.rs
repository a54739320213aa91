//! Forwarding: one `fetch` to the origin. Request and response bodies stay JS `ReadableStream`s and are
//! handed through untouched, so nothing is buffered in the Worker whatever their size.

use crate::exchange::{Exchange, LogFields};
use crate::js::{self, HeaderEdits};
use crate::runtime;
use edgegate_core::auth::IDENTITY_HEADERS;
use edgegate_core::proxy as rules;
use edgegate_core::upstream::{self as core_upstream, Outcome};
use edgegate_core::{ErrorKind, GatewayError};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The attempts of one request so far (see [`forward_from`]).
#[derive(Default)]
pub struct Attempts {
    /// Attempts made.
    made: u32,
    /// Targets tried, in order.
    tried: Vec<usize>,
    /// The target of the next attempt, when already chosen.
    next: Option<usize>,
    /// The request body, kept in the Worker so that a retry can send it again.
    body: Option<JsValue>,
}

/// Send the request to its service: choose a target, send, and retry as the service allows
/// (docs/upstreams.md). Nothing has reached the client before this returns, so a retry never
/// follows a byte sent to the client.
pub async fn forward(ex: &mut Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    forward_from(ex, Attempts::default()).await
}

/// Whether the request's body can be sent again: it has none, or it was kept.
fn replayable(ex: &Exchange<'_>, attempts: &Attempts) -> bool {
    attempts.body.is_some() || ex.raw.body().is_none()
}

/// Keep a small request body of known length in the Worker when a retry could need it.
async fn keep_body(ex: &Exchange<'_>, attempts: &mut Attempts) {
    let retry = &ex.plan.upstream.policy.retry;
    if attempts.made > 0 || !retry.allows(&ex.info.method) || ex.raw.body().is_none() {
        return;
    }
    let small = ex
        .header("content-length")
        .and_then(|l| l.trim().parse::<u64>().ok())
        .is_some_and(|l| l <= core_upstream::MAX_RETRY_BODY_BYTES);
    if !small {
        return;
    }
    if let Ok(promise) = ex.raw.array_buffer() {
        if let Ok(buffer) = JsFuture::from(promise).await {
            attempts.body = Some(buffer);
        }
    }
}

/// Whether `js::forward` refused to send the attempt (a GET or HEAD with a body): not the target's
/// doing, so it neither counts for its health nor is retried.
fn refused(value: &JsValue, status: u16) -> bool {
    status == 0 && value.as_f64() == Some(js::BODY_REFUSED)
}

/// What an attempt became, for health checks and retries.
fn outcome_of(value: &JsValue, status: u16) -> Outcome {
    match status {
        0 if value.as_f64() == Some(js::TIMED_OUT) => Outcome::Timeout,
        0 => Outcome::ConnectFailure,
        s => Outcome::Status(s),
    }
}

/// The next target for a retry after `outcome`, or `None` when the request is not retried.
fn retry_target(ex: &mut Exchange<'_>, attempts: &Attempts, outcome: Outcome) -> Option<usize> {
    let up = ex.plan.upstream;
    if !up.policy.retry.again(
        &ex.info.method,
        attempts.made,
        outcome,
        replayable(ex, attempts),
    ) {
        return None;
    }
    // With consistent hashing, the next target in the order of the request's value.
    let key = crate::upstream::key(ex);
    crate::upstream::pick(up, key, &attempts.tried).ok()
}

/// Drop a response that will not be sent (its body is cancelled).
fn discard(value: &JsValue) {
    if let Some(body) = value
        .dyn_ref::<web_sys::Response>()
        .and_then(web_sys::Response::body)
    {
        let _ = body.cancel();
    }
}

pub async fn forward_from(
    ex: &mut Exchange<'_>,
    mut attempts: Attempts,
) -> Result<web_sys::Response, GatewayError> {
    if let Some(response) = final_recipient(ex) {
        return Ok(response);
    }
    keep_body(ex, &mut attempts).await;
    let upstream = ex.plan.upstream;
    let mut target = match attempts.next.take() {
        Some(i) => i,
        None => crate::upstream::pick(upstream, crate::upstream::key(ex), &[])?,
    };
    loop {
        attempts.made += 1;
        attempts.tried.push(target);
        // `done` keeps what `forward` hands it for after the await.
        let slot: Rc<Cell<Option<Outcome_>>> = Rc::default();
        let kept = slot.clone();
        let done = Closure::once_into_js(move |value: JsValue, status: u16, upstream_ms: f64| {
            kept.set(Some(Outcome_ {
                value,
                status,
                upstream_ms,
            }));
        });
        let _ = JsFuture::from(start(ex, target, attempts.body.as_ref(), &done)).await;
        let outcome = slot.take().unwrap_or_default();
        ex.log.upstream = upstream.targets.get(target).map(|t| t.origin.clone());
        ex.log.attempts = Some(attempts.made);
        if !refused(&outcome.value, outcome.status) {
            let result = outcome_of(&outcome.value, outcome.status);
            crate::upstream::finished(upstream, target, result);
            if let Some(next) = retry_target(ex, &attempts, result) {
                discard(&outcome.value);
                target = next;
                continue;
            }
        }
        return settle(
            outcome.value,
            outcome.status,
            outcome.upstream_ms,
            (&upstream.name, upstream.timeout_ms),
            &mut ex.log,
        );
    }
}

/// The synchronous path's send (`fast` in lib.rs): choose a target and send; the promise resolves
/// to the response `crate::after` makes. A failure that is retried continues as a future, with the
/// request routed again (same service: the split uses the request id). `plugins`: the route has
/// plugins, whose request hooks have run on `ex` (what they left is kept for the response phases).
pub fn start_fast(
    ex: &mut Exchange<'_>,
    owned: crate::Owned,
    mut log: LogFields,
    plugins: Option<crate::HooksLeft>,
) -> js_sys::Promise {
    let upstream = ex.plan.upstream;
    if let Some(response) = final_recipient(ex) {
        let saved = plugins.map(|_| ex.save());
        let left = plugins.unwrap_or(crate::HooksLeft::OnError);
        log.status = Some(response.status());
        let response = crate::after(&owned, Ok(response), log, saved, left);
        return js_sys::Promise::resolve(&response);
    }
    let key = crate::upstream::key(ex);
    // A route without plugins keeps nothing for the response, but a hash cookie to set.
    let keep = plugins.is_some() || !ex.response_headers.is_empty();
    let target = match crate::upstream::pick(upstream, key, &[]) {
        Ok(i) => i,
        Err(e) => {
            let saved = keep.then(|| ex.save());
            let left = plugins.unwrap_or(crate::HooksLeft::OnError);
            let response = crate::after(&owned, Err(e), log, saved, left);
            return js_sys::Promise::resolve(&response);
        }
    };
    // What the callback needs to judge the outcome and, rarely, retry.
    let (service, timeout_ms) = (upstream.name.clone(), upstream.timeout_ms);
    let target_origin = upstream.targets.get(target).map(|t| t.origin.clone());
    let balanced = upstream.balanced();
    let retry = upstream.policy.retry.allows(&owned.incoming.info.method);
    let service_index = ex.plan.service_index;
    let next_target = move |owned: &crate::Owned, outcome: Outcome| -> Option<usize> {
        if !retry {
            return None;
        }
        let incoming = &owned.incoming;
        // The same configuration places the request on the same service (see `Gateway::plan_with`).
        let up = owned.gateway.upstream(service_index)?;
        let body_free = incoming.raw.body().is_none();
        if !up
            .policy
            .retry
            .again(&incoming.info.method, 1, outcome, body_free)
        {
            return None;
        }
        // With consistent hashing, the next target in the order of the request's value.
        crate::upstream::pick(up, key, &[target]).ok()
    };
    // What the request hooks left, filled in once the request is on its way.
    let slot: Rc<Cell<Option<crate::exchange::Saved>>> = Rc::default();
    let kept_slot = slot.clone();
    let done = Closure::once_into_js(move |value: JsValue, status: u16, upstream_ms: f64| {
        let outcome = outcome_of(&value, status);
        let refused = refused(&value, status);
        if balanced && !refused {
            if let Some(up) = owned.gateway.upstream(service_index) {
                crate::upstream::finished(up, target, outcome);
            }
        }
        let saved = kept_slot.take();
        let left = plugins.unwrap_or(crate::HooksLeft::OnError);
        if let Some(next) = (!refused).then(|| next_target(&owned, outcome)).flatten() {
            discard(&value);
            let promise = wasm_bindgen_futures::future_to_promise(async move {
                let ctx = owned.context();
                let (result, saved) = match owned.exchange(&ctx, saved) {
                    Err(e) => (Err(e), None),
                    Ok((mut ex, _)) => {
                        let attempts = Attempts {
                            made: 1,
                            tried: vec![target],
                            next: Some(next),
                            body: None,
                        };
                        let result = forward_from(&mut ex, attempts).await;
                        log.status = ex.log.status;
                        log.upstream_ms = ex.log.upstream_ms;
                        log.upstream = ex.log.upstream.take();
                        log.attempts = ex.log.attempts;
                        let keep = plugins.is_some() || !ex.response_headers.is_empty();
                        (result, keep.then(|| ex.save()))
                    }
                };
                Ok(crate::after(&owned, result, log, saved, left))
            });
            return JsValue::from(promise);
        }
        log.upstream = target_origin;
        log.attempts = Some(1);
        let result = settle(value, status, upstream_ms, (&service, timeout_ms), &mut log);
        crate::after(&owned, result, log, saved, left)
    });
    let promise = start(ex, target, None, &done);
    if keep {
        slot.set(Some(ex.save()));
    }
    promise
}

/// The gateway's own answer to a TRACE or OPTIONS request whose `Max-Forwards` is 0 (RFC 9110
/// section 7.6.2: such a request is not forwarded, the gateway answers it as its final recipient):
/// `200` with the route's methods in `Allow` for OPTIONS, the request echoed back as `message/http`
/// (without fields that may hold credentials) for TRACE. `None` for every other request: only TRACE and
/// OPTIONS requests read the header.
fn final_recipient(ex: &Exchange<'_>) -> Option<web_sys::Response> {
    let method = ex.info.method.as_str();
    if !rules::uses_max_forwards(method)
        || rules::max_forwards(ex.header("max-forwards").as_deref()) != rules::MaxForwards::Answer
    {
        return None;
    }
    let methods = ex
        .gateway
        .router()
        .compiled(ex.plan.route_index)
        .map_or(&[][..], |r| r.methods());
    let allow = rules::allow_for(methods);
    if method == "OPTIONS" {
        return Some(crate::respond::fixed(
            200,
            &[("allow", &allow), ("content-length", "0")],
            None,
            ex.request_id,
        ));
    }
    let pairs = crate::respond::header_pairs(&ex.raw.headers());
    let target = ex
        .info
        .url
        .get(ex.url.scheme.len() + 3 + ex.url.authority.len()..);
    let body = rules::trace_echo(method, target.unwrap_or("/"), &pairs);
    Some(crate::respond::fixed(
        200,
        &[("content-type", "message/http"), ("allow", &allow)],
        Some(&body),
        ex.request_id,
    ))
}

/// What `js::forward` hands its `done` callback.
#[derive(Default)]
struct Outcome_ {
    value: JsValue,
    status: u16,
    upstream_ms: f64,
}

/// Hop-by-hop request headers the runtime's `fetch` never sends on (workerd drops them itself; checked
/// by tests/headers.test.mjs), so they cost no `delete`.
const FETCH_DROPS: [&str; 5] = ["connection", "keep-alive", "te", "trailer", "upgrade"];

/// Connection-level response headers the runtime's HTTP server (and any HTTP/2 or HTTP/3 one) never
/// sends on from a Worker's response (checked by tests/headers.test.mjs).
const SERVER_DROPS: [&str; 4] = ["connection", "keep-alive", "te", "upgrade"];

thread_local! {
    /// Request headers never forwarded, as JS arrays made once per isolate: hop-by-hop ones (but
    /// [`FETCH_DROPS`]) and `proxy-connection`, `expect`, the identity headers only the gateway sets (a client's copies
    /// are dropped on every route) and `x-forwarded-prefix` (set again when a prefix was stripped);
    /// `tracestate` too when the trace context is new (index 1).
    static REQUEST_REMOVED: [JsValue; 2] = [request_removed(false), request_removed(true)];
    /// The names whose underscore spellings a client may not send (`rules::forges_gateway_header`),
    /// as a JS `Set` made once per isolate.
    static GUARDED: JsValue = {
        let set = js_sys::Set::new(&JsValue::UNDEFINED);
        for name in rules::guarded_headers() {
            set.add(&JsValue::from_str(name));
        }
        set.into()
    };
    /// Response headers never passed back: hop-by-hop ones, but those no HTTP server sends on as they
    /// are ([`SERVER_DROPS`]), `proxy-connection`, and the cache's private headers (an origin's
    /// copies would reach the client or a stored copy).
    static RESPONSE_REMOVED: JsValue = names_array(
        rules::HOP_BY_HOP
            .iter()
            .filter(|n| !SERVER_DROPS.contains(n))
            .chain(rules::LEGACY_HOP_BY_HOP)
            .chain(&edgegate_core::cache::PRIVATE_HEADERS),
    );
}

fn request_removed(new_trace: bool) -> JsValue {
    let names = rules::HOP_BY_HOP
        .iter()
        .filter(|n| !FETCH_DROPS.contains(n))
        .chain(rules::LEGACY_HOP_BY_HOP)
        .chain(rules::NOT_FORWARDED)
        .chain(IDENTITY_HEADERS.iter())
        .chain(std::iter::once(&"x-forwarded-prefix"))
        .chain(new_trace.then_some(&"tracestate"));
    names_array(names)
}

fn names_array<'a>(names: impl Iterator<Item = &'a &'static str>) -> JsValue {
    names
        .map(|n| JsValue::from_str(n))
        .collect::<js_sys::Array>()
        .into()
}

/// Send the request to target `target` of the service: the headers are edited as
/// `edgegate_core::proxy` says and the body is passed through (or `body`, when the Worker kept it).
/// `done(value, status, upstream_ms)` is called with the outcome ([`settle`] makes sense of it) and
/// the promise resolves to what it returns (rejects only if `done` throws).
pub fn start(
    ex: &Exchange<'_>,
    target: usize,
    body: Option<&JsValue>,
    done: &JsValue,
) -> js_sys::Promise {
    let (raw, plan, client_url, request_id) = (ex.raw, &ex.plan, &ex.url, ex.request_id);
    let info = ex.info;
    let (url, resolve_override) = plan.url_for(target, &ex.host);
    // Beyond the fixed set: the names the client's Connection header lists, plugins' removals. (A
    // WebSocket upgrade keeps Upgrade and Connection: they are not in the fixed set, see FETCH_DROPS.)
    let mut edits = HeaderEdits::new(&url, request_id);
    let listed = rules::connection_listed(info.connection.as_deref());
    for name in &listed {
        edits.remove(name);
    }
    // A header the client's Connection names was for the client's hop only (RFC 9110 7.6.1): the
    // gateway's own Via, X-Forwarded-For, traceparent and Max-Forwards start without the client's.
    let client = |name, value| rules::unless_listed(&listed, name, value);
    // TRACE and OPTIONS only (0 never gets here, see `final_recipient`).
    if rules::uses_max_forwards(&info.method) && client("max-forwards", Some("")).is_some() {
        if let rules::MaxForwards::Forward(n) =
            rules::max_forwards(ex.header("max-forwards").as_deref())
        {
            edits.set("max-forwards", &n);
        }
    }
    for name in &ex.upstream_remove {
        edits.remove(name);
    }
    if ex.upstream_body.is_some() {
        edits.remove("content-length");
    }
    let (traceparent, keep_state) = rules::upstream_traceparent(
        client("traceparent", info.traceparent.as_deref()),
        runtime::random_bytes(),
    );
    if let Some(ip) = &ex.client_ip {
        edits.set(
            "x-forwarded-for",
            &rules::forwarded_for(client("x-forwarded-for", info.forwarded_for.as_deref()), ip),
        );
    }
    edits.set("x-forwarded-proto", client_url.scheme);
    edits.set("x-forwarded-host", &ex.host);
    edits.set(
        "x-forwarded-port",
        rules::forwarded_port(client_url.scheme, client_url.authority),
    );
    // The path in the normal form it was routed in (`stripped` counts bytes of it).
    let routed_path = rules::forwarded_path(client_url.path);
    edits.set("x-forwarded-path", &routed_path);
    if let Some(prefix) = rules::forwarded_prefix(&routed_path, plan.stripped) {
        edits.set("x-forwarded-prefix", prefix);
    }
    edits.set("via", &rules::via(client("via", info.via.as_deref())));
    edits.set("traceparent", &traceparent);
    // The service's headers, except those a request-transformer rule removed (the rule wins).
    let service_headers = plan.upstream.headers.iter().filter(|(name, _)| {
        !ex.upstream_unset
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    });
    for (name, value) in service_headers.chain(&ex.upstream_set) {
        edits.set(name, value);
    }

    REQUEST_REMOVED.with(|removed| {
        RESPONSE_REMOVED.with(|response_removed| {
            GUARDED.with(|guarded| {
                js::forward(
                    raw,
                    &edits.plan,
                    &removed[usize::from(!keep_state)],
                    guarded,
                    Some(edits.remove.as_str()).filter(|r| !r.is_empty()),
                    resolve_override,
                    plan.upstream.timeout_ms as f64,
                    response_removed,
                    ex.started,
                    ex.upstream_body
                        .as_ref()
                        .or(body)
                        .unwrap_or(&JsValue::UNDEFINED),
                    done,
                    ex.upstream_method.clone(),
                )
            })
        })
    })
}

/// What the origin answered, from what `js::forward` passed to `done`: the response to send, with its
/// status and upstream latency recorded in `log`, or (`status` 0: there is no response) the error for
/// a timeout or an unreachable origin. `service` is the service's name and timeout (ms), for messages.
pub fn settle(
    value: JsValue,
    status: u16,
    upstream_ms: f64,
    service: (&str, u64),
    log: &mut LogFields,
) -> Result<web_sys::Response, GatewayError> {
    let (name, timeout_ms) = service;
    if status != 0 {
        log.status = Some(status);
        log.upstream_ms = Some(upstream_ms as u64);
        return Ok(value.unchecked_into());
    }
    if value.as_f64() == Some(js::BODY_REFUSED) {
        return Err(GatewayError::new(
            ErrorKind::BadRequest,
            "a GET or HEAD request cannot carry a body through the gateway; send it with POST",
        ));
    }
    if value.as_f64() == Some(js::TIMED_OUT) {
        return Err(GatewayError::new(
            ErrorKind::UpstreamTimeout,
            format!("service {name:?} did not answer within {timeout_ms} ms"),
        ));
    }
    Err(GatewayError::new(
        ErrorKind::UpstreamUnreachable,
        format!("service {name:?} could not be reached"),
    ))
}
