//! `http-log` glue (Kong's plugin, priority 12): `log` builds the entry
//! (`edgegate_core::plugins::http_log::entry`) from the request and its log fields (the status and
//! headers of the response the client gets, noted by the runner on the request's own state) and
//! sends it to the collector in a task kept alive with `ctx.waitUntil`, so the client's response
//! never waits for it. One request to the collector per request, sent at most once; a failure is
//! one console line.

use crate::exchange::{Exchange, LogFields};
use crate::runtime;
use edgegate_core::auth::jwks::url_for_log;
use edgegate_core::auth::{JwtConfig, KeyAuthConfig};
use edgegate_core::plugins::http_log::{entry, HttpLogConfig, Request};
use edgegate_core::plugins::PluginInstance;
use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

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
    let config = config.clone();
    let request_id = ex.request_id.to_string();
    ex.ctx.wait_until(async move {
        if let Err(error) = send(&config, body).await {
            let mut line = serde_json::json!({
                "event": "http_log_failed",
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

async fn send(config: &HttpLogConfig, body: String) -> Result<(), Failure> {
    let headers = web_sys::Headers::new().map_err(|_| Failure::Other("headers"))?;
    for (name, value) in &config.headers {
        let _ = headers.set(name, value);
    }
    let _ = headers.set("content-type", &config.content_type);
    if let Some(a) = &config.authorization {
        let _ = headers.set("authorization", a);
    }
    let abort = web_sys::AbortController::new().map_err(|_| Failure::Other("abort controller"))?;
    let init = web_sys::RequestInit::new();
    init.set_method(&config.method);
    init.set_headers(&headers);
    init.set_body(&body.into());
    init.set_signal(Some(&abort.signal()));
    // A 3xx from the collector is its answer (a failure, as in Kong), not a redirect to follow.
    init.set_redirect(web_sys::RequestRedirect::Manual);
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
