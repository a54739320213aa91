//! `opentelemetry` glue (Kong's plugin, priority 14; docs/observability.md). `rewrite` fixes the
//! request's span context (`edgegate_core::plugins::opentelemetry::span_context`): the
//! `traceparent` sent upstream (set through `ex.upstream_set`, so every attempt of the request
//! carries the same span id), the trace id response header, the `propagation.clear` headers;
//! `log` builds the OTLP JSON body of the sampled span from the status the client got (noted by the
//! runner, the gateway's own answers' included) and sends it with `collector::after_response`: after
//! the response, at most once; a failure is one console line.

use crate::exchange::{Exchange, LogFields};
use crate::plugins::Flow;
use crate::runtime;
use edgegate_core::plugins::opentelemetry::{
    export_body, span_context, OtelConfig, Request, SpanContext,
};
use edgegate_core::plugins::PluginInstance;
use edgegate_core::proxy as rules;
use edgegate_core::GatewayError;

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
    crate::plugins::collector::after_response(
        ex,
        crate::plugins::collector::Post {
            endpoint: config.endpoint.clone(),
            method: "POST".into(),
            headers: config.headers.clone(),
            content_type: "application/json".into(),
            authorization: None,
            timeout_ms: config.timeout_ms,
            body,
            event: "opentelemetry_export_failed",
        },
    );
}
