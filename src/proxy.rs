//! Forwarding: one `fetch` to the origin. Request and response bodies stay JS `ReadableStream`s and are
//! handed through untouched, so nothing is buffered in the Worker whatever their size.

use crate::exchange::Exchange;
use crate::js::{self, HeaderEdits};
use crate::runtime;
use edgegate_core::proxy as rules;
use edgegate_core::{ErrorKind, GatewayError};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

pub async fn forward(ex: &mut Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    let (raw, plan, client_url, request_id) = (ex.raw, &ex.plan, &ex.url, ex.request_id);
    let [upgrade, connection, forwarded_for, traceparent] = js::headers_get(
        &raw.headers(),
        ["upgrade", "connection", "x-forwarded-for", "traceparent"],
    );
    let is_websocket = upgrade.is_some_and(|v| v.eq_ignore_ascii_case("websocket"));

    let mut edits = HeaderEdits::default();
    for name in rules::hop_by_hop_names(connection.as_deref()) {
        if !(is_websocket && (name == "upgrade" || name == "connection")) {
            edits.remove(&name);
        }
    }
    for name in rules::NOT_FORWARDED {
        edits.remove(name);
    }
    for name in &ex.upstream_remove {
        edits.remove(name);
    }
    let (traceparent, keep_state) =
        rules::upstream_traceparent(traceparent.as_deref(), runtime::random_bytes());
    if !keep_state {
        edits.remove("tracestate");
    }
    if let Some(ip) = &ex.client_ip {
        edits.set(
            "x-forwarded-for",
            &rules::forwarded_for(forwarded_for.as_deref(), ip),
        );
    }
    edits.set("x-forwarded-proto", client_url.scheme);
    edits.set("x-forwarded-host", client_url.authority);
    edits.set(rules::REQUEST_ID, request_id);
    edits.set("traceparent", &traceparent);
    for (name, value) in plan.upstream.headers.iter().chain(&ex.upstream_set) {
        edits.set(name, value);
    }

    let upstream_started = runtime::now_ms();
    let outcome = JsFuture::from(js::forward(
        raw,
        &plan.url,
        &edits.remove,
        &edits.set,
        plan.resolve_override.map(str::to_string),
        plan.upstream.timeout_ms as f64,
    ))
    .await;
    let response = match outcome {
        Ok(value) if value.is_instance_of::<web_sys::Response>() => {
            value.unchecked_into::<web_sys::Response>()
        }
        Ok(value) if value.as_f64() == Some(1.0) => {
            return Err(GatewayError::new(
                ErrorKind::UpstreamTimeout,
                format!(
                    "service {:?} did not answer within {} ms",
                    plan.upstream.name, plan.upstream.timeout_ms
                ),
            ))
        }
        _ => {
            return Err(GatewayError::new(
                ErrorKind::UpstreamUnreachable,
                format!("service {:?} could not be reached", plan.upstream.name),
            ))
        }
    };
    let now = runtime::now_ms();
    let upstream_ms = (now - upstream_started).max(0.0) as u64;
    ex.log.upstream_ms = Some(upstream_ms);

    // A WebSocket answer carries the socket itself: hand it back unchanged.
    if response.status() == 101 {
        return Ok(response);
    }

    // Fetched headers are immutable: the response is re-wrapped (same body stream) with edited copies.
    let [connection] = js::headers_get(&response.headers(), ["connection"]);
    let mut edits = HeaderEdits::default();
    for name in rules::hop_by_hop_names(connection.as_deref()) {
        edits.remove(&name);
    }
    let proxy_ms = ((now - ex.started).max(0.0) as u64).saturating_sub(upstream_ms);
    edits.set(rules::REQUEST_ID, request_id);
    edits.set(rules::UPSTREAM_LATENCY, &upstream_ms.to_string());
    edits.set(rules::PROXY_LATENCY, &proxy_ms.to_string());
    Ok(js::rewrap(&response, &edits.remove, &edits.set))
}
