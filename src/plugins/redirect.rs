//! `redirect` glue: answer with the configured 3xx and `Location` (built by
//! `edgegate_core::plugins::redirect`), in the access phase at Kong's priority 779 (after
//! authentication and rate limiting).

use crate::exchange::Exchange;
use crate::plugins::Flow;
use crate::respond;
use edgegate_core::plugins::redirect::{RedirectConfig, BODY};
use edgegate_core::plugins::PluginInstance;
use edgegate_core::GatewayError;

pub fn access(ex: &mut Exchange<'_>, instances: &[&PluginInstance]) -> Result<Flow, GatewayError> {
    let flow = match instances.first().and_then(|i| i.config::<RedirectConfig>()) {
        Some(config) => {
            let location = config.location(ex.url.path, ex.url.query, &ex.plan.params);
            Flow::Respond(respond::fixed(
                config.status_code,
                &[
                    ("location", location.as_str()),
                    ("content-type", "text/plain; charset=utf-8"),
                ],
                Some(BODY),
                ex.request_id,
            ))
        }
        None => Flow::Continue,
    };
    Ok(flow)
}
