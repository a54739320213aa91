//! `opentelemetry` glue (Kong's plugin, priority 14; docs/observability.md). `rewrite` fixes the
//! request's span context (`edgegate_core::plugins::opentelemetry::span_context`): the
//! `traceparent` sent upstream (set through `ex.upstream_set`, so every attempt of the request
//! carries the same span id), the trace id response header, the `propagation.clear` headers;
//! `header_filter` notes the status the client gets (also of the gateway's own answers). `log`
//! builds the OTLP JSON body of the sampled span and sends it to the collector in a task kept alive
//! with `ctx.waitUntil`, so the client's response never waits for it. One export per request, sent
//! at most once; a failure is one console line.

use crate::exchange::{Exchange, LogFields};
use crate::plugins::{Flow, Reply};
use crate::runtime;
use edgegate_core::auth::jwks::url_for_log;
use edgegate_core::plugins::opentelemetry::{
    export_body, span_context, OtelConfig, Request, SpanContext,
};
use edgegate_core::plugins::PluginInstance;
use edgegate_core::proxy as rules;
use edgegate_core::GatewayError;
use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// A uniform draw in [0, 1) for the sampler.
fn draw() -> f64 {
    (u64::from_le_bytes(runtime::random_bytes()) >> 11) as f64 / (1u64 << 53) as f64
}

/// The client's `traceparent` as the proxy reads it (not when its `Connection` header names it).
fn client_traceparent<'e>(ex: &'e Exchange<'_>) -> Option<&'e str> {
    let listed = rules::connection_listed(ex.info.connection.as_deref());
    rules::unless_listed(&listed, "traceparent", ex.info.traceparent.as_deref())
}

fn fresh(ex: &Exchange<'_>, config: &OtelConfig) -> SpanContext {
    span_context(
        client_traceparent(ex),
        config.extract,
        config.sampling_rate,
        runtime::random_bytes(),
        draw(),
    )
}

pub fn rewrite(ex: &mut Exchange<'_>, instances: &[&PluginInstance]) -> Result<Flow, GatewayError> {
    let Some(config) = instances.first().and_then(|i| i.config::<OtelConfig>()) else {
        return Ok(Flow::Continue);
    };
    let span = fresh(ex, config);
    if !config.extract && client_traceparent(ex).is_some() {
        // The client's trace is not continued: neither is its tracestate.
        ex.upstream_remove.push("tracestate".into());
    }
    for name in &config.clear {
        ex.upstream_remove.push(name.clone());
    }
    if let Some(header) = &config.traceid_header {
        ex.response_headers
            .push((header.clone(), span.trace_id.clone()));
    }
    ex.upstream_set
        .push(("traceparent".into(), span.traceparent()));
    Ok(Flow::Continue)
}

/// Notes the status the client gets (the gateway's own answers included) for the span.
pub fn header_filter(ex: &mut Exchange<'_>, _: &[&PluginInstance], reply: &mut Reply) {
    ex.log.status = Some(reply.status());
}

pub fn log(ex: &Exchange<'_>, instances: &[&PluginInstance], log: &LogFields) {
    let Some(config) = instances.first().and_then(|i| i.config::<OtelConfig>()) else {
        return;
    };
    // The context `rewrite` chose (the parent id is the client's again); a new one when the
    // request was answered before `rewrite` ran (a CORS preflight).
    let again = fresh(ex, config);
    let span = ex
        .upstream_set
        .iter()
        .find(|(n, _)| n == "traceparent")
        .and_then(|(_, tp)| SpanContext::resume(tp, again.parent_span_id.clone()))
        .unwrap_or(again);
    if !span.sampled() {
        return;
    }
    let user_agent = ex.header("user-agent");
    let body = export_body(
        config,
        &span,
        &Request {
            method: &ex.info.method,
            scheme: ex.url.scheme,
            host: &ex.host,
            path: ex.url.path,
            user_agent: user_agent.as_deref(),
            client_ip: ex.client_ip.as_deref(),
            status: log.status.unwrap_or(0),
            error: log.error,
            route: ex.plan.route,
            service: &ex.plan.upstream.name,
            consumer: log.consumer.as_deref(),
            request_id: ex.request_id,
            start_ms: ex.started,
            end_ms: runtime::now_ms(),
        },
    )
    .to_string();
    let config = config.clone();
    let request_id = ex.request_id.to_string();
    ex.ctx.wait_until(async move {
        if let Err(error) = send(&config, body).await {
            let mut line = serde_json::json!({
                "event": "opentelemetry_export_failed",
                "request_id": request_id,
                "endpoint": url_for_log(&config.endpoint),
            });
            match error {
                Failure::Status(s) => line["status"] = s.into(),
                Failure::Other(e) => line["error"] = e.into(),
            }
            runtime::log(&line.to_string());
        }
    });
}

enum Failure {
    /// The collector answered with this non-2xx status.
    Status(u16),
    Other(&'static str),
}

async fn send(config: &OtelConfig, body: String) -> Result<(), Failure> {
    let headers = web_sys::Headers::new().map_err(|_| Failure::Other("headers"))?;
    for (name, value) in &config.headers {
        let _ = headers.set(name, value);
    }
    let _ = headers.set("content-type", "application/json");
    let abort = web_sys::AbortController::new().map_err(|_| Failure::Other("abort controller"))?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&body.into());
    init.set_signal(Some(&abort.signal()));
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let fetch = JsFuture::from(global.fetch_with_str_and_init(&config.endpoint, &init));
    let deadline = worker::Delay::from(Duration::from_millis(config.timeout_ms));
    let response = match select(fetch, deadline).await {
        Either::Left((Ok(r), _)) => r
            .dyn_into::<web_sys::Response>()
            .map_err(|_| Failure::Other("connection failed"))?,
        Either::Left((Err(_), _)) => return Err(Failure::Other("connection failed")),
        Either::Right(_) => {
            abort.abort();
            return Err(Failure::Other("timeout"));
        }
    };
    // The collector's answer is not read: free it.
    if let Some(b) = response.body() {
        let _ = b.cancel();
    }
    match response.status() {
        200..=299 => Ok(()),
        s => Err(Failure::Status(s)),
    }
}
