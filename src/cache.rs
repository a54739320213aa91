//! Serve phase: the edge cache in front of the proxy. (Placeholder until the cache work lands:
//! always proxies.)

use crate::exchange::Exchange;
use crate::proxy;
use edgegate_core::GatewayError;

pub async fn serve(ex: &mut Exchange<'_>) -> Result<web_sys::Response, GatewayError> {
    proxy::forward(ex).await
}
