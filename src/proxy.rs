//! Forwarding: one `fetch` to the origin. Request and response bodies stay JS `ReadableStream`s and are
//! handed through untouched, so nothing is buffered in the Worker whatever their size.

use crate::exchange::{Exchange, LogFields};
use crate::js::{self, HeaderEdits};
use crate::runtime;
use edgegate_core::auth::IDENTITY_HEADERS;
use edgegate_core::proxy as rules;
use edgegate_core::{ErrorKind, GatewayError};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

pub async fn forward(ex: &mut Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    // `done` keeps what `forward` hands it for after the await.
    let slot: Rc<Cell<Option<Outcome>>> = Rc::default();
    let kept = slot.clone();
    let done = Closure::once_into_js(move |value: JsValue, status: u16, upstream_ms: f64| {
        kept.set(Some(Outcome {
            value,
            status,
            upstream_ms,
        }));
    });
    let _ = JsFuture::from(start(ex, &done)).await;
    let outcome = slot.take().unwrap_or_default();
    let upstream = ex.plan.upstream;
    settle(
        outcome.value,
        outcome.status,
        outcome.upstream_ms,
        (&upstream.name, upstream.timeout_ms),
        &mut ex.log,
    )
}

/// What `js::forward` hands its `done` callback.
#[derive(Default)]
struct Outcome {
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
    /// [`FETCH_DROPS`]), `expect`, the identity headers only the gateway sets (a client's copies
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
    /// are ([`SERVER_DROPS`]).
    static RESPONSE_REMOVED: JsValue =
        names_array(rules::HOP_BY_HOP.iter().filter(|n| !SERVER_DROPS.contains(n)));
}

fn request_removed(new_trace: bool) -> JsValue {
    let names = rules::HOP_BY_HOP
        .iter()
        .filter(|n| !FETCH_DROPS.contains(n))
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

/// Send the request to the origin: the headers are edited as `edgegate_core::proxy` says and the
/// body is passed through. `done(value, status, upstream_ms)` is called with the outcome ([`settle`]
/// makes sense of it) and the promise resolves to what it returns (rejects only if `done` throws).
pub fn start(ex: &Exchange<'_>, done: &JsValue) -> js_sys::Promise {
    let raw = ex.upstream_request.as_ref().unwrap_or(ex.raw);
    let (plan, client_url, request_id) = (&ex.plan, &ex.url, ex.request_id);
    let info = ex.info;
    // Beyond the fixed set: the names the client's Connection header lists, plugins' removals. (A
    // WebSocket upgrade keeps Upgrade and Connection: they are not in the fixed set, see FETCH_DROPS.)
    let mut edits = HeaderEdits::new(&plan.url, request_id);
    for name in rules::connection_listed(info.connection.as_deref()) {
        edits.remove(&name);
    }
    for name in &ex.upstream_remove {
        edits.remove(name);
    }
    let (traceparent, keep_state) =
        rules::upstream_traceparent(info.traceparent.as_deref(), runtime::random_bytes());
    if let Some(ip) = &ex.client_ip {
        edits.set(
            "x-forwarded-for",
            &rules::forwarded_for(info.forwarded_for.as_deref(), ip),
        );
    }
    edits.set("x-forwarded-proto", client_url.scheme);
    edits.set("x-forwarded-host", &ex.host);
    edits.set(
        "x-forwarded-port",
        rules::forwarded_port(client_url.scheme, client_url.authority),
    );
    if let Some(prefix) = rules::forwarded_prefix(client_url.path, plan.stripped) {
        edits.set("x-forwarded-prefix", prefix);
    }
    edits.set("via", &rules::via(info.via.as_deref()));
    edits.set("traceparent", &traceparent);
    for (name, value) in plan.upstream.headers.iter().chain(&ex.upstream_set) {
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
                    plan.resolve_override.map(str::to_string),
                    plan.upstream.timeout_ms as f64,
                    response_removed,
                    ex.started,
                    done,
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
