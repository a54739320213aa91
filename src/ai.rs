//! AI phase: routes with an `ai-proxy` plugin answer OpenAI-compatible requests from LLM providers.
//! (Placeholder until the AI glue lands: no route is an AI route.)

use crate::exchange::Exchange;
use edgegate_core::GatewayError;

/// `Ok(None)` when the route has no `ai-proxy` plugin (the request goes on to the cache and proxy).
pub async fn serve(_ex: &mut Exchange<'_>) -> Result<Option<web_sys::Response>, GatewayError> {
    Ok(None)
}
