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
mod gcp_auth;
mod js;
mod pipeline;
mod plugins;
mod proxy;
mod ratelimit;
mod respond;
mod runtime;
mod upstream;
mod webcrypto;

use edgegate_core::gateway::{Gateway, ProxyPlan};
use edgegate_core::plugins::{Phase, RouteView};
use edgegate_core::proxy::{self as rules, AccessLog};
use edgegate_core::router::RequestView;
use edgegate_core::store::Step;
use edgegate_core::{ErrorKind, GatewayError};
use exchange::{Exchange, LogFields, Saved};
use js::RequestInfo;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use worker::{Context, Env};

/// The Worker's `fetch` handler (what `#[event(fetch)]` would generate, written out so that it can be
/// synchronous). A request that needs nothing asynchronous but the origin fetch — configuration in
/// service and not due for a check, no plugin on its route — is routed, sent and logged without a
/// Rust future: one `fetch` promise and one callback. Everything else (plugins, configuration
/// reloads) runs as a future. Both end in [`Incoming::finish`].
#[wasm_bindgen]
pub fn fetch(req: web_sys::Request, env: Env, ctx: worker::worker_sys::Context) -> js_sys::Promise {
    let mut incoming = Rc::new(Incoming::read(req));
    let step = config::step(&env, incoming.started);
    if step == Step::Serve {
        match fast(incoming, &env, &ctx) {
            Ok(promise) => return promise,
            Err(back) => incoming = back,
        }
    }
    wasm_bindgen_futures::future_to_promise(async move {
        let ctx = Context::new(ctx);
        match step {
            Step::ReadPointer => config::refresh(&env, &ctx).await,
            Step::Wait => config::wait().await,
            Step::Serve => {}
        }
        let mut log = LogFields::default();
        let result = handle(&incoming, &env, &ctx, &mut log).await;
        Ok(incoming.finish(result, log, &[]).into())
    })
}

/// A request as it arrived, with what every request needs read once.
struct Incoming {
    raw: web_sys::Request,
    info: RequestInfo,
    request_id: String,
    /// When it arrived (ms since the epoch).
    started: f64,
}

impl Incoming {
    fn read(raw: web_sys::Request) -> Incoming {
        let started = runtime::now_ms();
        let info = RequestInfo::read(&raw);
        let client_id =
            rules::client_request_id(info.request_id.as_deref(), info.connection.as_deref());
        let request_id = rules::request_id(client_id, runtime::random_bytes());
        Incoming {
            raw,
            info,
            request_id,
            started,
        }
    }

    /// The response to send: an error becomes its problem+json here, the extra headers are added,
    /// and the access log line is written.
    fn finish(
        &self,
        result: Result<web_sys::Response, GatewayError>,
        mut log: LogFields,
        extra_headers: &[(String, String)],
    ) -> web_sys::Response {
        // An origin's response got its `Date` when it arrived (`clientResponse` in js.rs); every
        // other answer gets it here (an AI route's answers are the gateway's own).
        let proxied = result.is_ok() && log.upstream_ms.is_some() && log.ai.is_none();
        let response = match result {
            Ok(resp) => resp,
            Err(e) => {
                log.error = Some(e.kind.code());
                respond::error(&e, &self.request_id)
            }
        };
        respond::add_headers(&response, extra_headers);
        if !proxied {
            respond::add_date(&response);
        }
        let parts = rules::split_url(&self.info.url);
        let line = AccessLog {
            event: "request",
            request_id: &self.request_id,
            method: &self.info.method,
            host: parts.as_ref().map_or("", |p| p.authority),
            path: parts.as_ref().map_or("", |p| p.path),
            route: log.route.as_deref(),
            service: log.service.as_deref(),
            upstream: log.upstream.as_deref(),
            attempts: log.attempts,
            consumer: log.consumer.as_deref(),
            status: log.status.unwrap_or_else(|| response.status()),
            error: log.error,
            config_version: log.config_version,
            upstream_latency_ms: log.upstream_ms,
            total_latency_ms: (runtime::now_ms() - self.started).max(0.0) as u64,
            ai: log.ai.as_ref(),
        };
        runtime::log(&line.to_json());
        response
    }
}

/// The synchronous path (see [`fetch`]); gives the request back when it needs the asynchronous one.
fn fast(
    incoming: Rc<Incoming>,
    env: &Env,
    ctx: &worker::worker_sys::Context,
) -> Result<js_sys::Promise, Rc<Incoming>> {
    let Some((version, gateway)) = config::in_service() else {
        return Err(incoming);
    };
    let mut log = LogFields {
        config_version: Some(version),
        ..LogFields::default()
    };
    let (parts, host, plan) = match route(&incoming, &gateway) {
        Ok(routed) => routed,
        // No route, wrong method, bad URL: answered without leaving Rust.
        Err(e) => {
            let response = incoming.finish(Err(e), log, &[]);
            return Ok(js_sys::Promise::resolve(&JsValue::from(response)));
        }
    };
    // A request with a body that a retry could need goes the asynchronous way, which keeps it.
    let method = incoming.info.method.as_str();
    if !matches!(method, "GET" | "HEAD")
        && plan.upstream.policy.retry.allows(method)
        && incoming.raw.body().is_some()
    {
        return Err(incoming);
    }
    log.route = Some(plan.route.to_string());
    log.service = Some(plan.upstream.name.clone());
    let rp = gateway.route_plugins(plan.route_index);
    let ctx_sys: JsValue = ctx.unchecked_ref::<JsValue>().clone();
    let context = Context::new(ctx_sys.clone().unchecked_into());
    let mut ex = exchange(&incoming, env, &context, &gateway, parts, host, plan);
    let owned = |incoming: &Rc<Incoming>| Owned {
        incoming: Rc::clone(incoming),
        env: env.clone(),
        ctx: ctx_sys.clone(),
        gateway: Arc::clone(&gateway),
    };
    if rp.is_empty() {
        return Ok(proxy::start_fast(&mut ex, owned(&incoming), log, None));
    }
    // The request hooks that decide at once run here; the first that must wait continues as a
    // future (or, when it is the first hook, the whole request goes the asynchronous way).
    match pipeline::request_now(&mut ex, &rp) {
        pipeline::Now::Forward => {
            let left = HooksLeft::of(&rp);
            Ok(proxy::start_fast(
                &mut ex,
                owned(&incoming),
                log,
                Some(left),
            ))
        }
        pipeline::Now::Answer(result) => {
            let response = respond(&incoming, &mut ex, &rp, result, log, &|| owned(&incoming));
            Ok(js_sys::Promise::resolve(&response))
        }
        pipeline::Now::Wait { fresh: true, .. } => {
            drop(ex);
            Err(incoming)
        }
        pipeline::Now::Wait { pos, .. } => {
            let saved = ex.save();
            Ok(resume(owned(&incoming), saved, log, pos))
        }
    }
}

/// What the synchronous path keeps of a request while it waits (the exchange is made again from it).
#[derive(Clone)]
pub(crate) struct Owned {
    pub incoming: Rc<Incoming>,
    pub env: Env,
    /// The `worker_sys::Context`.
    pub ctx: JsValue,
    pub gateway: Arc<Gateway>,
}

impl Owned {
    /// The request's `Context` (for `waitUntil`).
    pub fn context(&self) -> Context {
        Context::new(self.ctx.clone().unchecked_into())
    }

    /// The request's exchange again, on the same configuration, with what the phases left on it:
    /// from the route they kept (routed again only when they kept none).
    pub fn exchange<'s>(
        &'s self,
        ctx: &'s Context,
        mut saved: Option<Saved>,
    ) -> Result<(Exchange<'s>, RouteView<'s>), GatewayError> {
        let kept = saved.as_mut().and_then(|s| s.route.take());
        let again = kept.and_then(|r| {
            let parts = rules::split_url(&self.incoming.info.url)?;
            let (plan, host) = r.plan(&self.gateway, String::new())?;
            Some((parts, host, plan))
        });
        let (parts, host, plan) = match again {
            Some(x) => x,
            None => route(&self.incoming, &self.gateway)?,
        };
        let rp = self.gateway.route_plugins(plan.route_index);
        let mut ex = exchange(
            &self.incoming,
            &self.env,
            ctx,
            &self.gateway,
            parts,
            host,
            plan,
        );
        if let Some(saved) = saved {
            ex.restore(saved);
        }
        Ok((ex, rp))
    }
}

/// The request hooks from position `pos` on, the proxy and the response phases, as a future.
fn resume(owned: Owned, saved: Saved, mut log: LogFields, pos: usize) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let ctx = owned.context();
        let response = match owned.exchange(&ctx, Some(saved)) {
            Ok((mut ex, rp)) => Ok(run(&owned.incoming, &mut ex, &rp, pos, &mut log).await),
            Err(e) => Err(e),
        };
        Ok(owned.incoming.finish(response, log, &[]).into())
    })
}

/// Which hooks of a route may run once the origin answered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HooksLeft {
    /// Error hooks only (no response or log hook).
    OnError,
    /// Response or log hooks (a body a body_filter hook asks for is read in the promise chain).
    Always,
}

impl HooksLeft {
    fn of(rp: &RouteView<'_>) -> HooksLeft {
        let has = |phase| (0..rp.len()).any(|k| rp.def(k).takes_part_in(phase));
        if has(Phase::Log) || pipeline::has_response_hooks(rp) {
            HooksLeft::Always
        } else {
            HooksLeft::OnError
        }
    }
}

/// The synchronous path's end, once the origin answered (or could not be reached): `saved` is
/// what the request hooks left (`None` on a route without plugins). The response to send, or a
/// promise of it when a body_filter hook asked for the body.
pub(crate) fn after(
    owned: &Owned,
    result: Result<web_sys::Response, GatewayError>,
    mut log: LogFields,
    saved: Option<Saved>,
    hooks_left: HooksLeft,
) -> JsValue {
    let Some(mut saved) = saved else {
        return owned.incoming.finish(result, log, &[]).into();
    };
    // No hook left to run: the headers the request hooks asked for, and the log line.
    if hooks_left == HooksLeft::OnError && result.is_ok() {
        log.consumer = saved.log.consumer.take();
        log.ai = saved.log.ai.take();
        return owned
            .incoming
            .finish(result, log, &saved.response_headers)
            .into();
    }
    let ctx = owned.context();
    let (mut ex, rp) = match owned.exchange(&ctx, Some(saved)) {
        Ok(x) => x,
        Err(e) => return owned.incoming.finish(Err(e), log, &[]).into(),
    };
    ex.log.status = log.status.take();
    ex.log.upstream_ms = log.upstream_ms.take();
    respond(&owned.incoming, &mut ex, &rp, result, log, &|| {
        owned.clone()
    })
}

/// The response phases on the synchronous path, for `result` (the request hooks' answer or the
/// origin's): the response to send, or a promise of it when a body_filter hook asked for the body
/// (then `owned` makes what the promise's callback keeps).
fn respond<'a>(
    incoming: &Incoming,
    ex: &mut Exchange<'a>,
    rp: &RouteView<'a>,
    result: Result<web_sys::Response, GatewayError>,
    mut log: LogFields,
    owned: &dyn Fn() -> Owned,
) -> JsValue {
    let response = match result.map_err(|e| pipeline::errors(ex, rp, e)) {
        Ok(response) => response,
        Err(e) => {
            log.error = Some(e.kind.code());
            respond::error(&e, &incoming.request_id)
        }
    };
    respond::add_headers(&response, &ex.response_headers);
    let step = pipeline::response_now(ex, rp, response);
    settle(incoming, ex, rp, step, log, owned)
}

/// Where the response phases got to: the response is sent (with the log line), or the body a
/// body_filter hook asked for is read, in the promise chain, and the phases go on in its callback
/// (making the exchange again only when a later hook needs it).
fn settle<'a>(
    incoming: &Incoming,
    ex: &mut Exchange<'a>,
    rp: &RouteView<'a>,
    step: Result<web_sys::Response, pipeline::Pending>,
    mut log: LogFields,
    owned: &dyn Fn() -> Owned,
) -> JsValue {
    let pending = match step {
        Ok(response) => {
            take_log(ex, &mut log);
            pipeline::log(ex, rp, &log);
            return incoming.finish(Ok(response), log, &[]).into();
        }
        Err(pending) => pending,
    };
    let saved = if pipeline::needs_exchange_after(rp, pending.next) {
        Some(ex.save())
    } else {
        take_log(ex, &mut log);
        None
    };
    let owned = owned();
    let reader = pending.reader();
    let then = Closure::once_into_js(move |kind: u32, value: JsValue| -> JsValue {
        let next = pending.next;
        let reply = pending.done(kind, value);
        let Some(saved) = saved else {
            log.status = Some(reply.status());
            return owned.incoming.finish(Ok(reply.finish()), log, &[]).into();
        };
        let ctx = owned.context();
        match owned.exchange(&ctx, Some(saved)) {
            Ok((mut ex, rp)) => {
                let step = pipeline::body_filters_from(&mut ex, &rp, reply, next);
                settle(&owned.incoming, &mut ex, &rp, step, log, &|| owned.clone())
            }
            Err(e) => owned.incoming.finish(Err(e), log, &[]).into(),
        }
    });
    reader.read(&then).into()
}

/// The log fields the phases found out.
fn take_log(ex: &mut Exchange<'_>, log: &mut LogFields) {
    log.consumer = ex.log.consumer.take();
    log.upstream_ms = ex.log.upstream_ms;
    log.status = ex.log.status;
    log.ai = ex.log.ai.take();
    log.response_headers = ex.log.response_headers.take();
    // Set here when the request went upstream on a future; on the synchronous path `log` has them.
    if ex.log.upstream.is_some() {
        log.upstream = ex.log.upstream.take();
        log.attempts = ex.log.attempts;
    }
}

/// Where the request goes: its URL parts, its lower-case host without port, and the plan.
fn route<'a, 'g>(
    incoming: &'a Incoming,
    gateway: &'g Gateway,
) -> Result<(rules::UrlParts<'a>, String, ProxyPlan<'g>), GatewayError> {
    let parts = rules::split_url(&incoming.info.url).ok_or_else(|| {
        GatewayError::new(ErrorKind::BadRequest, "the request URL is not absolute")
    })?;
    let host = rules::host_without_port(parts.authority);
    // Only routes that match on headers ask; most requests never make the Headers object.
    let headers = std::cell::OnceCell::new();
    let header = |name: &str| {
        let headers = headers.get_or_init(|| incoming.raw.headers());
        headers.get(name).ok().flatten()
    };
    let view = RequestView {
        method: &incoming.info.method,
        host: &host,
        path: parts.path,
        query: parts.query,
        header: &header,
    };
    let seed = edgegate_core::upstream::fnv1a(incoming.request_id.as_bytes());
    let plan = gateway.plan_with(&view, Some(seed))?;
    Ok((parts, host, plan))
}

fn exchange<'a>(
    incoming: &'a Incoming,
    env: &'a Env,
    ctx: &'a Context,
    gateway: &'a Arc<Gateway>,
    url: rules::UrlParts<'a>,
    host: String,
    plan: ProxyPlan<'a>,
) -> Exchange<'a> {
    Exchange {
        raw: &incoming.raw,
        env,
        ctx,
        request_id: &incoming.request_id,
        started: incoming.started,
        client_ip: incoming.info.client_ip.clone(),
        info: &incoming.info,
        url,
        host,
        gateway,
        plan,
        upstream_set: Vec::new(),
        upstream_remove: Vec::new(),
        upstream_unset: Vec::new(),
        upstream_method: None,
        upstream_body: None,
        auth_ran: false,
        response_headers: Vec::new(),
        identity: None,
        log: LogFields::default(),
        ai_tokens: Default::default(),
    }
}

async fn handle(
    incoming: &Incoming,
    env: &Env,
    ctx: &Context,
    log: &mut LogFields,
) -> Result<web_sys::Response, GatewayError> {
    let (version, gateway) = config::in_service().ok_or_else(|| {
        GatewayError::new(
            ErrorKind::NoConfig,
            "no configuration version is loaded; push one with `scripts/config push`",
        )
    })?;
    log.config_version = Some(version);
    let (parts, host, plan) = route(incoming, &gateway)?;
    log.route = Some(plan.route.to_string());
    log.service = Some(plan.upstream.name.clone());

    let rp = gateway.route_plugins(plan.route_index);
    let mut ex = exchange(incoming, env, ctx, &gateway, parts, host, plan);
    Ok(run(incoming, &mut ex, &rp, 0, log).await)
}

/// The request phases from hook position `from` on (0: all), the proxy, then the response and log
/// phases: the response to send.
async fn run<'a>(
    incoming: &Incoming,
    ex: &mut Exchange<'a>,
    rp: &RouteView<'a>,
    from: usize,
    log: &mut LogFields,
) -> web_sys::Response {
    let result = pipeline::request_from(ex, rp, from).await;
    // The answer, error or not, goes through the response phases with the headers the request
    // phases added (even those that ended in an error).
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            log.error = Some(e.kind.code());
            respond::error(&e, &incoming.request_id)
        }
    };
    respond::add_headers(&response, &ex.response_headers);
    let response = pipeline::response(ex, rp, response).await;
    take_log(ex, log);
    pipeline::log(ex, rp, log);
    response
}
