//! `cors` glue (docs/traffic-policies.md): the rewrite hook answers preflights at the edge, before
//! every other plugin (priority 2000 in the first phase: before authentication, and before the
//! rewrite hooks of lower priority, such as `request-termination`'s); the header_filter hook adds
//! the CORS headers to every other answer of the route: the origin's, the gateway's own errors
//! (401, 403, 429, ...) and other plugins' answers alike. An instance cannot be scoped to a
//! consumer (the registry's `no_consumer`), so both hooks see the same instance.

use crate::exchange::Exchange;
use crate::plugins::{Flow, Reply};
use edgegate_core::plugins::cors::{self, CorsConfig, PREFLIGHT_STATUS};
use edgegate_core::plugins::PluginInstance;
use edgegate_core::proxy::REQUEST_ID;
use edgegate_core::GatewayError;

fn config<'a>(instances: &[&'a PluginInstance]) -> Option<&'a CorsConfig> {
    instances.first()?.config::<CorsConfig>()
}

/// The request's `Origin`; an empty one counts as none (a browser never sends it empty).
fn origin(ex: &Exchange<'_>) -> Option<String> {
    ex.header("origin").filter(|o| !o.trim().is_empty())
}

/// The request's `Origin` when the request is a preflight.
fn preflight_origin(ex: &Exchange<'_>) -> Option<String> {
    if !ex.info.method.eq_ignore_ascii_case("OPTIONS") {
        return None;
    }
    let origin = origin(ex)?;
    let method = ex.header("access-control-request-method");
    cors::is_preflight(&ex.info.method, Some(&origin), method.as_deref()).then_some(origin)
}

pub fn rewrite(ex: &mut Exchange<'_>, instances: &[&PluginInstance]) -> Result<Flow, GatewayError> {
    Ok(preflight(ex, instances))
}

/// Answer a preflight (unless `preflight_continue`): 200, empty body, the headers of
/// `CorsConfig::preflight`.
fn preflight(ex: &Exchange<'_>, instances: &[&PluginInstance]) -> Flow {
    let Some(c) = config(instances) else {
        return Flow::Continue;
    };
    if c.preflight_continue {
        return Flow::Continue;
    }
    let Some(origin) = preflight_origin(ex) else {
        return Flow::Continue;
    };
    let answer = c.preflight(
        &origin,
        ex.header("access-control-request-headers").as_deref(),
        ex.header("access-control-request-private-network")
            .as_deref(),
    );
    let Ok(headers) = web_sys::Headers::new() else {
        return Flow::Continue;
    };
    for (name, value) in &answer.set {
        let _ = headers.set(name, value);
    }
    if let Some(vary) = answer.preflight_vary() {
        let _ = headers.set("vary", &vary);
    }
    let _ = headers.set(REQUEST_ID, ex.request_id);
    let init = web_sys::ResponseInit::new();
    init.set_status(PREFLIGHT_STATUS);
    init.set_headers(&headers);
    match web_sys::Response::new_with_opt_str_and_init(None, &init) {
        Ok(response) => Flow::Respond(response),
        Err(_) => Flow::Continue,
    }
}

pub fn header_filter(ex: &mut Exchange<'_>, instances: &[&PluginInstance], reply: &mut Reply) {
    let Some(c) = config(instances) else {
        return;
    };
    // A preflight was answered by `rewrite` with its own headers, or passed on with
    // `preflight_continue`, whose answer (the origin's, or another plugin's) is sent unchanged (as
    // Kong).
    if preflight_origin(ex).is_some() {
        return;
    }
    let origin = origin(ex);
    let Some(change) = c.actual(origin.as_deref()) else {
        return;
    };
    if change.remove_allow_origin {
        reply.remove_header("access-control-allow-origin");
    }
    for (name, value) in &change.set {
        reply.set_header(name, value);
    }
    if change.vary_origin {
        let vary = cors::vary_with_origin(reply.header("vary").as_deref());
        reply.set_header("vary", &vary);
    }
}
