//! `http-log` glue (Kong's plugin, priority 12): `log` builds the entry
//! (`edgegate_core::plugins::http_log::entry`) from the request and its log fields (the status and
//! headers of the response the client gets, noted by the runner on the request's own state) and
//! sends it to the collector in a task kept alive with `ctx.waitUntil`, so the client's response
//! never waits for it. One request to the collector per request, sent at most once; a failure is
//! one console line.

use crate::exchange::{Exchange, LogFields};
use crate::runtime;
use edgegate_core::auth::{JwtConfig, KeyAuthConfig};
use edgegate_core::plugins::http_log::{entry, HttpLogConfig, Request};
use edgegate_core::plugins::PluginInstance;

pub fn log(ex: &Exchange<'_>, instances: &[&PluginInstance], log: &LogFields) {
    let Some(config) = instances.first().and_then(|i| i.config::<HttpLogConfig>()) else {
        return;
    };
    // The names under which the route's key-auth and jwt instances read credentials: their
    // values are secrets.
    let mut key_names: Vec<String> = Vec::new();
    for i in ex.gateway.plugins_for(ex.plan.route_index) {
        if let Some(k) = i.config::<KeyAuthConfig>() {
            key_names.extend(k.key_names.iter().map(|n| n.to_ascii_lowercase()));
        }
        if let Some(j) = i.config::<JwtConfig>() {
            let names = j.header_names.iter().chain(&j.uri_param_names);
            key_names.extend(names.map(|n| n.to_ascii_lowercase()));
        }
    }
    let headers = crate::respond::header_pairs(&ex.raw.headers());
    let proxied = log.upstream.is_some() || log.upstream_ms.is_some();
    let upstream_uri = proxied
        .then(|| ex.plan.url.get(ex.plan.path_start..))
        .flatten()
        .map(|u| if u.is_empty() { "/" } else { u });
    let status = log.status.unwrap_or(0);
    let body = entry(&Request {
        method: &ex.info.method,
        url: &ex.info.url,
        headers: &headers,
        status,
        response_headers: log.response_headers.as_deref(),
        started_at: ex.started.max(0.0) as u64,
        total_ms: (runtime::now_ms() - ex.started).max(0.0) as u64,
        upstream_ms: log.upstream_ms,
        client_ip: ex.client_ip.as_deref(),
        route: ex.plan.route,
        service: &ex.plan.upstream.name,
        consumer: log.consumer.as_deref(),
        upstream_uri,
        request_id: ex.request_id,
        key_names: &key_names,
    })
    .to_string();
    crate::plugins::collector::after_response(
        ex,
        crate::plugins::collector::Post {
            endpoint: config.endpoint.clone(),
            method: config.method.clone(),
            headers: config.headers.clone(),
            content_type: config.content_type.clone(),
            authorization: config.authorization.clone(),
            timeout_ms: config.timeout_ms,
            body,
            event: "http_log_failed",
        },
    );
}
