//! The edgegate Worker: glue between the Workers runtime and `edgegate-core`.
//!
//! Per request: make sure a configuration version is loaded (`config.rs`), ask the core where the request
//! goes, then forward it with `fetch`, passing both bodies through as JS streams (`proxy.rs`). Errors become
//! responses in exactly one place (`respond::error`).

mod config;
mod proxy;
mod respond;
mod runtime;

use edgegate_core::proxy::{self as rules, AccessLog};
use edgegate_core::router::RequestView;
use edgegate_core::{ErrorKind, GatewayError};
use worker::{event, Context, Env, Request, Response};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let started = runtime::now_ms();
    let raw = req.inner();
    let headers = raw.headers();
    let request_id = rules::request_id(
        headers.get(rules::REQUEST_ID).ok().flatten().as_deref(),
        runtime::random_bytes(),
    );
    let url = raw.url();
    let method = raw.method();

    let mut log = LogFields::default();
    let result = handle(raw, &url, &method, &env, &request_id, started, &mut log).await;
    let response = match result {
        Ok(resp) => resp,
        Err(e) => {
            log.error = Some(e.kind.code());
            respond::error(&e, &request_id)
        }
    };
    let status = response.status();
    let parts = rules::split_url(&url);
    let line = AccessLog {
        event: "request",
        request_id: &request_id,
        method: &method,
        host: parts.as_ref().map_or("", |p| p.authority),
        path: parts.as_ref().map_or("", |p| p.path),
        route: log.route.as_deref(),
        service: log.service.as_deref(),
        status,
        error: log.error,
        config_version: log.config_version,
        upstream_latency_ms: log.upstream_ms,
        total_latency_ms: (runtime::now_ms() - started).max(0.0) as u64,
    };
    runtime::log(&line.to_json());
    Ok(Response::from(response))
}

#[derive(Default)]
struct LogFields {
    route: Option<String>,
    service: Option<String>,
    error: Option<&'static str>,
    config_version: Option<u64>,
    upstream_ms: Option<u64>,
}

async fn handle(
    raw: &web_sys::Request,
    url: &str,
    method: &str,
    env: &Env,
    request_id: &str,
    started: f64,
    log: &mut LogFields,
) -> Result<web_sys::Response, GatewayError> {
    let (version, gateway) = config::current(env).await.ok_or_else(|| {
        GatewayError::new(
            ErrorKind::NoConfig,
            "no configuration version is loaded; push one with `scripts/config push`",
        )
    })?;
    log.config_version = Some(version);
    let parts = rules::split_url(url)
        .ok_or_else(|| GatewayError::new(ErrorKind::BadRequest, "the request URL is not absolute"))?;
    let host = rules::host_without_port(parts.authority);
    let headers = raw.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let view = RequestView {
        method,
        host: &host,
        path: parts.path,
        query: parts.query,
        header: &header,
    };
    let plan = gateway.plan(&view)?;
    log.route = Some(plan.route.to_string());
    log.service = Some(plan.upstream.name.clone());
    proxy::forward(raw, &plan, &parts, request_id, started, log).await
}
