//! Plugin glue modules.

pub mod request_transformer;
pub mod response_transformer;
mod transform_js;

use crate::exchange::Exchange;
use edgegate_core::plugins::{request_transformer as rt, response_transformer as rst};
use edgegate_core::GatewayError;

/// Access phase of the transformer plugins: the most specific `request-transformer` instance.
pub async fn transform_request(ex: &mut Exchange<'_>) -> Result<(), GatewayError> {
    let username = ex.identity.as_ref().map(|i| i.username.clone());
    match rt::select(ex.plugins(), username.as_deref()) {
        Some(config) => request_transformer::access(ex, config).await,
        None => Ok(()),
    }
}

/// Header and body filters of the transformer plugins: the most specific `response-transformer`.
pub async fn transform_response(
    ex: &Exchange<'_>,
    response: web_sys::Response,
) -> web_sys::Response {
    let username = ex.identity.as_ref().map(|i| i.username.as_str());
    match rst::select(ex.plugins(), username) {
        Some(config) => response_transformer::on_response(ex, config, response).await,
        None => response,
    }
}
