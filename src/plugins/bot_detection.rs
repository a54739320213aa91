//! `bot-detection` glue (docs/plugins.md#bot-detection): the client's `User-Agent` header (several
//! arrive joined with `, `, as the Fetch API gives them).

use crate::exchange::Exchange;
use crate::plugins::Flow;
use edgegate_core::plugins::bot_detection::BotDetectionConfig;
use edgegate_core::plugins::PluginInstance;
use edgegate_core::GatewayError;

pub fn access(ex: &mut Exchange<'_>, instances: &[&PluginInstance]) -> Result<Flow, GatewayError> {
    instances
        .first()
        .and_then(|i| i.config::<BotDetectionConfig>())
        .map_or(Ok(()), |c| c.check(ex.header("user-agent").as_deref()))
        .map(|()| Flow::Continue)
}
