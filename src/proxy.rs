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
    let info = ex.info;
    let is_websocket = info
        .upgrade
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));

    let mut edits = HeaderEdits::default();
    for name in rules::hop_by_hop_names(info.connection.as_deref()) {
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
        rules::upstream_traceparent(info.traceparent.as_deref(), runtime::random_bytes());
    if !keep_state {
        edits.remove("tracestate");
    }
    if let Some(ip) = &ex.client_ip {
        edits.set(
            "x-forwarded-for",
            &rules::forwarded_for(info.forwarded_for.as_deref(), ip),
        );
    }
    edits.set("x-forwarded-proto", client_url.scheme);
    edits.set("x-forwarded-host", client_url.authority);
    edits.set(rules::REQUEST_ID, request_id);
    edits.set("traceparent", &traceparent);
    for (name, value) in plan.upstream.headers.iter().chain(&ex.upstream_set) {
        edits.set(name, value);
    }

    // Response edits are decided now; `forward` applies them (and the latency headers) in JS.
    let mut response_edits = HeaderEdits::default();
    for name in rules::hop_by_hop_names(None) {
        response_edits.remove(&name);
    }
    response_edits.set(rules::REQUEST_ID, request_id);

    let outcome = JsFuture::from(js::forward(
        raw,
        &plan.url,
        &edits.remove,
        &edits.set,
        plan.resolve_override.map(str::to_string),
        plan.upstream.timeout_ms as f64,
        &response_edits.remove,
        &response_edits.set,
        ex.started,
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
    let (status, upstream_ms) = js::forwarded_status_and_latency(&response);
    ex.log.status = Some(status);
    ex.log.upstream_ms = Some(upstream_ms);
    Ok(response)
}
