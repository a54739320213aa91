//! Forwarding: one `fetch` to the origin. Request and response bodies stay JS `ReadableStream`s and are
//! handed through untouched, so nothing is buffered in the Worker whatever their size.

use crate::exchange::Exchange;
use crate::runtime;
use edgegate_core::proxy as rules;
use edgegate_core::{ErrorKind, GatewayError};
use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

pub async fn forward(ex: &mut Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    let (raw, plan, client_url, request_id) = (ex.raw, &ex.plan, &ex.url, ex.request_id);
    let internal = |what: &str| GatewayError::new(ErrorKind::Internal, what.to_string());
    let incoming = raw.headers();
    let headers = web_sys::Headers::new_with_headers(&incoming)
        .map_err(|_| internal("could not copy request headers"))?;

    let is_websocket = incoming
        .get("upgrade")
        .ok()
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    for name in rules::hop_by_hop_names(incoming.get("connection").ok().flatten().as_deref()) {
        if !(is_websocket && (name == "upgrade" || name == "connection")) {
            let _ = headers.delete(&name);
        }
    }
    if let Some(ip) = &ex.client_ip {
        let xff = rules::forwarded_for(
            incoming.get("x-forwarded-for").ok().flatten().as_deref(),
            ip,
        );
        let _ = headers.set("x-forwarded-for", &xff);
    }
    let _ = headers.set("x-forwarded-proto", client_url.scheme);
    let _ = headers.set("x-forwarded-host", client_url.authority);
    let _ = headers.set(rules::REQUEST_ID, request_id);
    let (traceparent, keep_state) = rules::upstream_traceparent(
        incoming.get("traceparent").ok().flatten().as_deref(),
        runtime::random_bytes(),
    );
    let _ = headers.set("traceparent", &traceparent);
    if !keep_state {
        let _ = headers.delete("tracestate");
    }
    for (name, value) in &plan.upstream.headers {
        let _ = headers.set(name, value);
    }
    for name in &ex.upstream_remove {
        let _ = headers.delete(name);
    }
    for (name, value) in &ex.upstream_set {
        let _ = headers.set(name, value);
    }

    let abort = web_sys::AbortController::new().map_err(|_| internal("AbortController"))?;
    let init = web_sys::RequestInit::new();
    init.set_method(&raw.method());
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_signal(Some(&abort.signal()));
    if let Some(body) = raw.body() {
        init.set_body(&body);
    }
    if let Some(host) = plan.resolve_override {
        let cf = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&cf, &"resolveOverride".into(), &host.into());
        let _ = js_sys::Reflect::set(&init, &"cf".into(), &cf);
    }

    let upstream_started = runtime::now_ms();
    let promise = global_fetch(&plan.url, &init).map_err(|_| {
        GatewayError::new(
            ErrorKind::UpstreamUnreachable,
            "the upstream URL was refused",
        )
    })?;
    let timeout = worker::Delay::from(Duration::from_millis(plan.upstream.timeout_ms));
    let response = match select(JsFuture::from(promise), timeout).await {
        Either::Left((Ok(resp), _)) => resp
            .dyn_into::<web_sys::Response>()
            .map_err(|_| internal("fetch returned something other than a Response"))?,
        Either::Left((Err(_), _)) => {
            return Err(GatewayError::new(
                ErrorKind::UpstreamUnreachable,
                format!("service {:?} could not be reached", plan.upstream.name),
            ))
        }
        Either::Right(((), _)) => {
            abort.abort();
            return Err(GatewayError::new(
                ErrorKind::UpstreamTimeout,
                format!(
                    "service {:?} did not answer within {} ms",
                    plan.upstream.name, plan.upstream.timeout_ms
                ),
            ));
        }
    };
    let now = runtime::now_ms();
    let upstream_ms = (now - upstream_started).max(0.0) as u64;
    ex.log.upstream_ms = Some(upstream_ms);

    // A WebSocket answer carries the socket itself: hand it back unchanged.
    if response.status() == 101 {
        return Ok(response);
    }

    // Fetched headers are immutable: copy them, then adjust.
    let out = web_sys::Headers::new_with_headers(&response.headers())
        .map_err(|_| internal("could not copy response headers"))?;
    for name in rules::hop_by_hop_names(out.get("connection").ok().flatten().as_deref()) {
        let _ = out.delete(&name);
    }
    let _ = out.set(rules::REQUEST_ID, request_id);
    let _ = out.set(rules::UPSTREAM_LATENCY, &upstream_ms.to_string());
    let proxy_ms = ((now - ex.started).max(0.0) as u64).saturating_sub(upstream_ms);
    let _ = out.set(rules::PROXY_LATENCY, &proxy_ms.to_string());

    let init = web_sys::ResponseInit::new();
    init.set_status(response.status());
    init.set_status_text(&response.status_text());
    init.set_headers(&out);
    web_sys::Response::new_with_opt_readable_stream_and_init(response.body().as_ref(), &init)
        .map_err(|_| {
            GatewayError::new(
                ErrorKind::UpstreamUnreachable,
                "the upstream response was unusable",
            )
        })
}

fn global_fetch(
    url: &str,
    init: &web_sys::RequestInit,
) -> Result<js_sys::Promise, wasm_bindgen::JsValue> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(global.fetch_with_str_and_init(url, init))
}
