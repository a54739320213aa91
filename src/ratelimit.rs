//! Rate-limit phase. (Placeholder until the rate-limit work lands: limits nothing.)

use crate::exchange::Exchange;
use edgegate_core::GatewayError;

pub async fn enforce(_ex: &mut Exchange<'_>) -> Result<(), GatewayError> {
    Ok(())
}
