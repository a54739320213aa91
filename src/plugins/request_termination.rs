//! `request-termination` glue: answer with the configured status and body (decisions in
//! `edgegate_core::plugins::request_termination`). An instance without `consumer` answers in the
//! rewrite phase, before authentication; a consumer-scoped one in the access phase, once the
//! consumer is known. Both run at priority 2, after the other plugins' hooks of their phase: a
//! request that one of those answers (e.g. a preflight, by `cors`) never gets here.

use crate::exchange::Exchange;
use crate::plugins::Flow;
use crate::respond;
use edgegate_core::plugins::request_termination::{
    EchoRequest, RequestTerminationConfig, JSON_TYPE,
};
use edgegate_core::plugins::PluginInstance;
use edgegate_core::GatewayError;

pub fn rewrite(ex: &mut Exchange<'_>, instances: &[&PluginInstance]) -> Result<Flow, GatewayError> {
    Ok(terminate(ex, instances, false))
}

pub fn access(ex: &mut Exchange<'_>, instances: &[&PluginInstance]) -> Result<Flow, GatewayError> {
    Ok(terminate(ex, instances, true))
}

/// The answer of the instance that runs, if it is of the kind this phase handles (consumer-scoped
/// or not) and its `trigger`, if any, is present.
fn terminate(ex: &Exchange<'_>, instances: &[&PluginInstance], consumer_scoped: bool) -> Flow {
    let Some(instance) = instances.first() else {
        return Flow::Continue;
    };
    let Some(config) = instance.config::<RequestTerminationConfig>() else {
        return Flow::Continue;
    };
    if instance.consumer.is_some() != consumer_scoped
        || !config.applies(|name| ex.header(name).is_some(), ex.url.query)
    {
        return Flow::Continue;
    }
    if config.echo {
        let headers = respond::header_pairs(&ex.raw.headers());
        let body = config.echo(&EchoRequest {
            scheme: ex.url.scheme,
            host: &ex.host,
            method: &ex.info.method,
            path: ex.url.path,
            query: ex.url.query,
            headers: &headers,
            captures: &ex.plan.params,
            client_ip: ex.client_ip.as_deref(),
            request_id: ex.request_id,
            route: ex.plan.route,
            service: &ex.plan.upstream.name,
            consumer: ex.identity.as_ref().map(|i| i.username.as_str()),
        });
        return Flow::Respond(respond::fixed(
            config.status_code,
            &[("content-type", JSON_TYPE)],
            Some(&body),
            ex.request_id,
        ));
    }
    let (content_type, body) = config.answer();
    let headers: Vec<(&str, &str)> = content_type
        .map(|t| ("content-type", t))
        .into_iter()
        .collect();
    Flow::Respond(respond::fixed(
        config.status_code,
        &headers,
        body.as_deref(),
        ex.request_id,
    ))
}
