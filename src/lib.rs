//! The edgegate Worker: glue between the Workers runtime and `edgegate-core`.
//!
//! Per request: make sure a configuration version is loaded (`config.rs`), ask the core where the request
//! goes, run the plugin phases, then forward it with `fetch`, passing both bodies through as JS streams
//! (`proxy.rs`). Errors become responses in exactly one place (`respond::error`).

mod ai;
mod auth;
mod cache;
mod config;
mod exchange;
mod js;
mod proxy;
mod ratelimit;
mod respond;
mod runtime;

use edgegate_core::proxy::{self as rules, AccessLog};
use edgegate_core::router::RequestView;
use edgegate_core::{ErrorKind, GatewayError};
use exchange::{Exchange, LogFields};
use js::RequestInfo;
use worker::{event, Context, Env};

// Takes and returns the raw web_sys types: `worker::Request` would read `request.cf` (costly, unused).
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> worker::Result<web_sys::Response> {
    let started = runtime::now_ms();
    let raw = &req;
    let info = RequestInfo::read(raw);
    let request_id = rules::request_id(info.request_id.as_deref(), runtime::random_bytes());
    let (url, method) = (&info.url, &info.method);

    let mut log = LogFields::default();
    let mut extra_headers = Vec::new();
    let response = match handle(
        raw,
        &info,
        &env,
        &ctx,
        &request_id,
        started,
        &mut log,
        &mut extra_headers,
    )
    .await
    {
        Ok(resp) => resp,
        Err(e) => {
            log.error = Some(e.kind.code());
            respond::error(&e, &request_id)
        }
    };
    respond::add_headers(&response, &extra_headers);
    let parts = rules::split_url(url);
    let line = AccessLog {
        event: "request",
        request_id: &request_id,
        method,
        host: parts.as_ref().map_or("", |p| p.authority),
        path: parts.as_ref().map_or("", |p| p.path),
        route: log.route.as_deref(),
        service: log.service.as_deref(),
        consumer: log.consumer.as_deref(),
        status: log.status.unwrap_or_else(|| response.status()),
        error: log.error,
        config_version: log.config_version,
        upstream_latency_ms: log.upstream_ms,
        total_latency_ms: (runtime::now_ms() - started).max(0.0) as u64,
        ai: log.ai.as_ref(),
    };
    runtime::log(&line.to_json());
    Ok(response)
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    raw: &web_sys::Request,
    info: &RequestInfo,
    env: &Env,
    ctx: &Context,
    request_id: &str,
    started: f64,
    log: &mut LogFields,
    response_headers: &mut Vec<(String, String)>,
) -> Result<web_sys::Response, GatewayError> {
    let (version, gateway) = config::current(env).await.ok_or_else(|| {
        GatewayError::new(
            ErrorKind::NoConfig,
            "no configuration version is loaded; push one with `scripts/config push`",
        )
    })?;
    log.config_version = Some(version);
    let parts = rules::split_url(&info.url).ok_or_else(|| {
        GatewayError::new(ErrorKind::BadRequest, "the request URL is not absolute")
    })?;
    let host = rules::host_without_port(parts.authority);
    let headers = raw.headers();
    let header = |name: &str| headers.get(name).ok().flatten();
    let view = RequestView {
        method: &info.method,
        host: &host,
        path: parts.path,
        query: parts.query,
        header: &header,
    };
    let plan = gateway.plan(&view)?;
    log.route = Some(plan.route.to_string());
    log.service = Some(plan.upstream.name.clone());

    let mut ex = Exchange {
        raw,
        env,
        ctx,
        request_id,
        started,
        client_ip: info.client_ip.clone(),
        info,
        url: parts,
        host: host.clone(),
        gateway: &gateway,
        plan,
        upstream_set: Vec::new(),
        upstream_remove: Vec::new(),
        response_headers: Vec::new(),
        identity: None,
        log: LogFields::default(),
        ai_tokens: Default::default(),
    };
    let result = run_phases(&mut ex).await;
    // Phases may have learnt things (consumer, upstream latency) and added response headers even
    // when they end in an error.
    response_headers.append(&mut ex.response_headers);
    log.consumer = ex.log.consumer.take();
    log.upstream_ms = ex.log.upstream_ms;
    log.status = ex.log.status;
    log.ai = ex.log.ai.take();
    result
}

/// The plugin phases, in Kong's order: authenticate, then limit, then serve (cache or proxy).
async fn run_phases(ex: &mut Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    // On AI routes every error (auth and limits included) is shown in OpenAI's shape.
    let result = phases(ex).await;
    result.map_err(|e| ai::error_shape(ex, e))
}

async fn phases(ex: &mut Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    auth::authenticate(ex).await?;
    ratelimit::enforce(ex).await?;
    if let Some(response) = ai::serve(ex).await? {
        return Ok(response);
    }
    cache::serve(ex).await
}
