//! `ip-restriction` glue (docs/traffic-policies.md): the client address is `CF-Connecting-IP`
//! (`Exchange::client_ip`), which Cloudflare sets and Miniflare takes from the client.

use crate::exchange::Exchange;
use crate::plugins::{Flow, Step};
use edgegate_core::plugins::ip_restriction::IpRestrictionConfig;
use edgegate_core::plugins::PluginInstance;

pub fn access<'x, 'a>(ex: &'x mut Exchange<'a>, instances: &'x [&'a PluginInstance]) -> Step<'x> {
    let verdict = instances
        .first()
        .and_then(|i| i.config::<IpRestrictionConfig>())
        .map_or(Ok(()), |c| c.check(ex.client_ip.as_deref()));
    Box::pin(async move { verdict.map(|()| Flow::Continue) })
}
