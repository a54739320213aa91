//! The phase runner: calls the plugins' hooks (`crate::plugins::HOOKS`) per phase, in priority
//! order, with the instances that run for this request. The route's plugins, their order and (but
//! for consumer-scoped instances) the instances that run are worked out once per route
//! (`edgegate_core::plugins::RouteView`). It knows no plugin by name.
//!
//! Request: rewrite, then access (a hook may answer at once, or fail), then serve (the first plugin
//! with a serve hook that answers; else the plain proxy). Response: the errors are reshaped by
//! error hooks, then header_filter and body_filter hooks edit the answer (error answers included),
//! then log hooks see the outcome.
//!
//! Two ways to run the same hooks, in the same order: [`request_now`] runs the request hooks that
//! decide at once without a Rust future (`lib.rs`, `fast`) and stops at the first one that must wait;
//! [`request_from`] runs the rest as a future. Routes without plugins never come here. The response
//! phases never wait but for a body a body_filter hook asks for ([`Pending`]), which the synchronous
//! path reads in the promise chain of the answer, without a Rust future.

use crate::exchange::{Exchange, LogFields};
use crate::plugins::{body_js, hooks_at, BodyRead, Flow, Hooks, ReadBody, Reply, RequestHook};
use crate::proxy;
use edgegate_core::plugins::{Phase, RouteView, Running};
use edgegate_core::GatewayError;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The request phases, in order. A position in the request hooks is `phase * n + k` for plugin `k`
/// of the route's `n`.
const REQUEST_PHASES: [Phase; 3] = [Phase::Rewrite, Phase::Access, Phase::Serve];

fn hooks(rp: &RouteView<'_>, k: usize) -> Hooks {
    hooks_at(rp.registry_index(k))
}

/// The instances of plugin `k` that run now (the consumer as known at this point).
fn running<'g>(ex: &Exchange<'g>, rp: &RouteView<'g>, k: usize) -> Running<'g> {
    let username = if rp.consumer_scoped() {
        ex.identity.as_ref().map(|i| i.username.as_str())
    } else {
        None
    };
    rp.running(k, username)
}

/// The request hook at position `pos` and its instances, if it has any to run.
fn request_hook<'g>(
    ex: &Exchange<'g>,
    rp: &RouteView<'g>,
    pos: usize,
) -> Option<(RequestHook, Running<'g>)> {
    let n = rp.len();
    let (phase, k) = (REQUEST_PHASES[pos / n], pos % n);
    if !rp.def(k).takes_part_in(phase) {
        return None;
    }
    let hook = hooks(rp, k).request(phase)?;
    let instances = running(ex, rp, k);
    (!instances.is_empty()).then_some((hook, instances))
}

/// What [`request_now`] got to.
pub enum Now {
    /// The answer (a hook's, or its error, not yet reshaped by [`errors`]).
    Answer(Result<web_sys::Response, GatewayError>),
    /// Every request hook ran: send the request upstream.
    Forward,
    /// The hook at `pos` must wait: go on with [`request_from`]`(.., pos)`. `fresh`: no hook ran
    /// before it (the exchange is untouched).
    Wait { pos: usize, fresh: bool },
}

/// Run the request hooks that decide at once, in order, until one answers or must wait.
pub fn request_now<'g>(ex: &mut Exchange<'g>, rp: &RouteView<'g>) -> Now {
    let mut fresh = true;
    for pos in 0..REQUEST_PHASES.len() * rp.len() {
        let Some((hook, instances)) = request_hook(ex, rp, pos) else {
            continue;
        };
        let result = match hook {
            RequestHook::Now(f) => f(ex, &instances),
            RequestHook::Either(f, _) => match f(ex, &instances) {
                Some(result) => result,
                None => return Now::Wait { pos, fresh },
            },
            RequestHook::Later(_) => return Now::Wait { pos, fresh },
        };
        fresh = false;
        match result {
            Ok(Flow::Continue) => {}
            Ok(Flow::Respond(response)) => return Now::Answer(Ok(response)),
            Err(e) => return Now::Answer(Err(e)),
        }
    }
    Now::Forward
}

/// rewrite, access and serve from position `from` on (0: all of them): the answer (from a hook,
/// or the origin), or an error already reshaped by the route's error hooks.
pub async fn request_from<'g>(
    ex: &mut Exchange<'g>,
    rp: &RouteView<'g>,
    from: usize,
) -> Result<web_sys::Response, GatewayError> {
    let result = request_phases(ex, rp, from).await;
    result.map_err(|e| errors(ex, rp, e))
}

async fn request_phases<'g>(
    ex: &mut Exchange<'g>,
    rp: &RouteView<'g>,
    from: usize,
) -> Result<web_sys::Response, GatewayError> {
    for pos in from..REQUEST_PHASES.len() * rp.len() {
        let Some((hook, instances)) = request_hook(ex, rp, pos) else {
            continue;
        };
        let flow = match hook {
            RequestHook::Now(f) => f(ex, &instances)?,
            // At `from` the quick way already said it must wait.
            RequestHook::Either(f, later) => match (pos != from).then(|| f(ex, &instances)) {
                Some(Some(result)) => result?,
                _ => later(ex, &instances).await?,
            },
            RequestHook::Later(later) => later(ex, &instances).await?,
        };
        if let Flow::Respond(response) = flow {
            return Ok(response);
        }
    }
    proxy::forward(ex).await
}

/// The error hooks of the route's plugins, in order.
pub fn errors(ex: &Exchange<'_>, rp: &RouteView<'_>, mut e: GatewayError) -> GatewayError {
    for k in 0..rp.len() {
        if let Some(hook) = hooks(rp, k).error {
            e = hook(ex, e);
        }
    }
    e
}

/// Whether a plugin of the route has a response hook (header_filter, body_filter).
pub fn has_response_hooks(rp: &RouteView<'_>) -> bool {
    (0..rp.len()).any(|k| {
        let def = rp.def(k);
        def.takes_part_in(Phase::HeaderFilter) || def.takes_part_in(Phase::BodyFilter)
    })
}

/// A body_filter hook asked for the body ([`ReadBody`]): the reply, what the hook does with the body,
/// and where the body_filter hooks go on ([`body_filters_from`]). Read it with [`Pending::reader`] in
/// the promise chain of the answer (`lib.rs`) or awaited ([`response`]), then [`Pending::done`].
pub struct Pending {
    reply: Reply,
    read: ReadBody,
    /// The position of the next plugin whose body_filter hook may run.
    pub next: usize,
}

impl Pending {
    /// How to read the body (kept apart, so that the callback that reads it can own `self`).
    pub fn reader(&self) -> Reader {
        Reader {
            source: self.reply.body_source().unwrap_or(JsValue::NULL),
            limit: self.read.limit,
            whole: self.read.whole,
        }
    }

    /// The body was read (`kind` and `value`: what [`Reader::read`] passed to its `then`): the
    /// hook's `then` edits the reply, which is given back.
    pub fn done(self, kind: u32, value: JsValue) -> Reply {
        let Pending {
            mut reply, read, ..
        } = self;
        let outcome = match kind {
            1 => BodyRead::Whole(value.unchecked_into()),
            2 => {
                reply.set_body(Some(value));
                BodyRead::Over
            }
            3 => BodyRead::Absent,
            _ => BodyRead::Failed,
        };
        (read.then)(&mut reply, outcome);
        reply
    }
}

/// A body to read for a body_filter hook ([`Pending::reader`]).
pub struct Reader {
    source: JsValue,
    limit: u64,
    whole: bool,
}

impl Reader {
    /// Start reading: a promise of what `then(kind, value)` (a JS function, see `readBody` in
    /// `body_js`) returns; with `then` undefined, of `[kind, value]`.
    pub fn read(&self, then: &JsValue) -> js_sys::Promise {
        body_js::read_body(&self.source, self.limit as f64, self.whole, then)
    }
}

/// header_filter hooks, then the body_filter hooks that apply: the response to send, or
/// `Err(pending)` when a body_filter hook asked for the body. A WebSocket upgrade (101) passes
/// untouched.
pub fn response_now<'g>(
    ex: &mut Exchange<'g>,
    rp: &RouteView<'g>,
    response: web_sys::Response,
) -> Result<web_sys::Response, Pending> {
    if !has_response_hooks(rp) {
        if !has_log_hooks(rp) {
            return Ok(response);
        }
        let reply = Reply::new(response);
        settled(ex, rp, &reply);
        return Ok(reply.finish());
    }
    let mut reply = Reply::new(response);
    if reply.status() == 101 {
        if has_log_hooks(rp) {
            settled(ex, rp, &reply);
        }
        return Ok(reply.finish());
    }
    for k in 0..rp.len() {
        if !rp.def(k).takes_part_in(Phase::HeaderFilter) {
            continue;
        }
        if let Some(hook) = hooks(rp, k).header_filter {
            let instances = running(ex, rp, k);
            if !instances.is_empty() {
                hook(ex, &instances, &mut reply);
            }
        }
    }
    body_filters_from(ex, rp, reply, 0)
}

/// The body_filter hooks of the plugins from position `from` on: the response to send, or
/// `Err(pending)` when one asked for the body.
pub fn body_filters_from<'g>(
    ex: &mut Exchange<'g>,
    rp: &RouteView<'g>,
    mut reply: Reply,
    from: usize,
) -> Result<web_sys::Response, Pending> {
    for k in from..rp.len() {
        if !rp.def(k).takes_part_in(Phase::BodyFilter) {
            continue;
        }
        if let Some(hook) = hooks(rp, k).body_filter {
            let instances = running(ex, rp, k);
            if !instances.is_empty() && (hook.applies)(ex, &instances, &reply) {
                if let Some(read) = (hook.run)(ex, &instances, &mut reply) {
                    return Err(Pending {
                        reply,
                        read,
                        next: k + 1,
                    });
                }
            }
        }
    }
    ex.log.status = Some(reply.status());
    if has_log_hooks(rp) {
        settled(ex, rp, &reply);
    }
    Ok(reply.finish())
}

/// Whether a plugin of the route has a log hook.
fn has_log_hooks(rp: &RouteView<'_>) -> bool {
    (0..rp.len()).any(|k| rp.def(k).takes_part_in(Phase::Log))
}

/// Whether a log hook that runs for this request reads the response headers
/// (`Hooks::log_response_headers`, e.g. `http-log`; `opentelemetry` does not).
fn log_reads_response_headers(ex: &Exchange<'_>, rp: &RouteView<'_>) -> bool {
    (0..rp.len()).any(|k| {
        rp.def(k).takes_part_in(Phase::Log)
            && hooks(rp, k).log_response_headers
            && !running(ex, rp, k).is_empty()
    })
}

/// The response is settled: note its status, and its headers when a log hook reads them, for the
/// log hooks, in the request's own log fields.
fn settled(ex: &mut Exchange<'_>, rp: &RouteView<'_>, reply: &Reply) {
    ex.log.status = Some(reply.status());
    if log_reads_response_headers(ex, rp) {
        ex.log.response_headers = Some(reply.header_pairs());
    }
}

/// Whether a hook still needs the exchange once a body was read for the hook before position
/// `next`: a later body_filter hook, or a log hook. When none does, the reply is finished without
/// making the exchange again.
pub fn needs_exchange_after(rp: &RouteView<'_>, next: usize) -> bool {
    (next..rp.len()).any(|k| rp.def(k).takes_part_in(Phase::BodyFilter)) || has_log_hooks(rp)
}

/// header_filter and body_filter, when a plugin of the route has one, with the bodies hooks ask
/// for awaited: the response to send.
pub async fn response<'g>(
    ex: &mut Exchange<'g>,
    rp: &RouteView<'g>,
    response: web_sys::Response,
) -> web_sys::Response {
    let mut step = response_now(ex, rp, response);
    loop {
        match step {
            Ok(response) => return response,
            Err(pending) => {
                let read = JsFuture::from(pending.reader().read(&JsValue::UNDEFINED)).await;
                let pair: js_sys::Array =
                    read.map_or_else(|_| js_sys::Array::new(), JsCast::unchecked_into);
                let kind = pair.get(0).as_f64().unwrap_or(0.0) as u32;
                let next = pending.next;
                let reply = pending.done(kind, pair.get(1));
                step = body_filters_from(ex, rp, reply, next);
            }
        }
    }
}

/// log hooks: the request is settled; `log` has its final fields.
pub fn log<'g>(ex: &Exchange<'g>, rp: &RouteView<'g>, log: &LogFields) {
    for k in 0..rp.len() {
        if !rp.def(k).takes_part_in(Phase::Log) {
            continue;
        }
        if let Some(hook) = hooks(rp, k).log {
            let instances = running(ex, rp, k);
            if !instances.is_empty() {
                hook(ex, &instances, log);
            }
        }
    }
}
