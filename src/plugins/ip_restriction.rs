//! `ip-restriction` glue (docs/traffic-policies.md): the client address is `CF-Connecting-IP`
//! (`Exchange::client_ip`), which Cloudflare sets and Miniflare takes from the client.

use crate::exchange::Exchange;
use crate::plugins::Flow;
use edgegate_core::plugins::ip_restriction::IpRestrictionConfig;
use edgegate_core::plugins::PluginInstance;
use edgegate_core::GatewayError;

pub fn access(ex: &mut Exchange<'_>, instances: &[&PluginInstance]) -> Result<Flow, GatewayError> {
    instances
        .first()
        .and_then(|i| i.config::<IpRestrictionConfig>())
        .map_or(Ok(()), |c| c.check(ex.client_ip.as_deref()))
        .map(|()| Flow::Continue)
}
