//! Authentication and ACL phase. (Placeholder until the identity work lands: admits every request.)

use crate::exchange::Exchange;
use edgegate_core::GatewayError;

pub async fn authenticate(_ex: &mut Exchange<'_>) -> Result<(), GatewayError> {
    Ok(())
}
