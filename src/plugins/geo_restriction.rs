//! `geo-restriction` glue (docs/traffic-policies.md): the country is `request.cf.country`.

use crate::exchange::Exchange;
use crate::plugins::Flow;
use edgegate_core::plugins::geo_restriction::GeoRestrictionConfig;
use edgegate_core::plugins::PluginInstance;
use edgegate_core::GatewayError;

pub fn access(ex: &mut Exchange<'_>, instances: &[&PluginInstance]) -> Result<Flow, GatewayError> {
    instances
        .first()
        .and_then(|i| i.config::<GeoRestrictionConfig>())
        .map_or(Ok(()), |c| c.check(ex.cf("country").as_deref()))
        .map(|()| Flow::Continue)
}
