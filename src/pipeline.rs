//! The phase runner: calls the plugins' hooks (`crate::plugins::HOOKS`) per phase, in priority
//! order (`edgegate_core::plugins::registry::present`), with the instances that run for this
//! request (`registry::select`). It knows no plugin by name.
//!
//! Request: rewrite, then access (a hook may answer at once, or fail), then serve (the first plugin
//! with a serve hook that answers; else the plain proxy). Response: the errors are reshaped by
//! error hooks, then header_filter and body_filter hooks edit the answer (error answers included),
//! then log hooks see the outcome. Routes without plugins never come here (`lib.rs`, `fast`).

use crate::exchange::{Exchange, LogFields};
use crate::plugins::{hooks, Flow, Reply};
use crate::proxy;
use edgegate_core::plugins::registry::{present, select};
use edgegate_core::plugins::{Phase, PluginDef, PluginInstance};
use edgegate_core::GatewayError;

/// The plugins of the request's route, highest priority first.
pub fn plugins_of(ex: &Exchange<'_>) -> Vec<&'static PluginDef> {
    present(ex.plugins())
}

/// The instances of `def` that run now (the consumer as known at this point).
fn running<'a>(ex: &Exchange<'a>, def: &PluginDef) -> Vec<&'a PluginInstance> {
    let username = ex.identity.as_ref().map(|i| i.username.as_str());
    select(ex.plugins(), def, username)
}

/// rewrite, access and serve: the answer (from a hook, or the origin), or an error already reshaped
/// by the route's error hooks.
pub async fn request(
    ex: &mut Exchange<'_>,
    defs: &[&'static PluginDef],
) -> Result<web_sys::Response, GatewayError> {
    let result = request_phases(ex, defs).await;
    result.map_err(|mut e| {
        for def in defs {
            if let Some(hook) = hooks(def.name).error {
                e = hook(&*ex, e);
            }
        }
        e
    })
}

async fn request_phases(
    ex: &mut Exchange<'_>,
    defs: &[&'static PluginDef],
) -> Result<web_sys::Response, GatewayError> {
    for phase in [Phase::Rewrite, Phase::Access, Phase::Serve] {
        for def in defs.iter().filter(|d| d.takes_part_in(phase)) {
            let Some(hook) = hooks(def.name).request(phase) else {
                continue;
            };
            let instances = running(ex, def);
            if instances.is_empty() {
                continue;
            }
            if let Flow::Respond(response) = hook(ex, &instances).await? {
                return Ok(response);
            }
        }
    }
    proxy::forward(ex).await
}

/// header_filter and body_filter, when a plugin of the route has one: the response to send. A
/// WebSocket upgrade (101) passes untouched.
pub async fn response(
    ex: &mut Exchange<'_>,
    defs: &[&'static PluginDef],
    response: web_sys::Response,
) -> web_sys::Response {
    if !defs
        .iter()
        .any(|d| d.takes_part_in(Phase::HeaderFilter) || d.takes_part_in(Phase::BodyFilter))
    {
        return response;
    }
    let mut reply = Reply::new(response);
    if reply.status() == 101 {
        return reply.finish();
    }
    for def in defs.iter().filter(|d| d.takes_part_in(Phase::HeaderFilter)) {
        if let Some(hook) = hooks(def.name).header_filter {
            let instances = running(ex, def);
            if !instances.is_empty() {
                hook(ex, &instances, &mut reply);
            }
        }
    }
    for def in defs.iter().filter(|d| d.takes_part_in(Phase::BodyFilter)) {
        if let Some(hook) = hooks(def.name).body_filter {
            let instances = running(ex, def);
            if !instances.is_empty() {
                hook(ex, &instances, &mut reply).await;
            }
        }
    }
    ex.log.status = Some(reply.status());
    reply.finish()
}

/// log hooks: the request is settled; `log` has its final fields.
pub fn log(ex: &Exchange<'_>, defs: &[&'static PluginDef], log: &LogFields) {
    for def in defs.iter().filter(|d| d.takes_part_in(Phase::Log)) {
        if let Some(hook) = hooks(def.name).log {
            let instances = running(ex, def);
            if !instances.is_empty() {
                hook(ex, &instances, log);
            }
        }
    }
}
