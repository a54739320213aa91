//! `geo-restriction` glue (docs/traffic-policies.md): the country is `request.cf.country`.

use crate::exchange::Exchange;
use crate::plugins::{Flow, Step};
use edgegate_core::plugins::geo_restriction::GeoRestrictionConfig;
use edgegate_core::plugins::PluginInstance;

pub fn access<'x, 'a>(ex: &'x mut Exchange<'a>, instances: &'x [&'a PluginInstance]) -> Step<'x> {
    let verdict = instances
        .first()
        .and_then(|i| i.config::<GeoRestrictionConfig>())
        .map_or(Ok(()), |c| c.check(ex.cf("country").as_deref()));
    Box::pin(async move { verdict.map(|()| Flow::Continue) })
}
