//! edgegate-core: the gateway's logic, free of any Workers dependency so it builds and tests natively.
//!
//! The Worker crate (`src/` at the repository root) is glue around this: it turns JS requests into
//! [`router::RequestView`]s, asks [`gateway::Gateway`] what to do and performs the I/O.

/// The AI gateway: the `edgegate-ai` crate (translation between OpenAI's API and the providers'), and
/// [`AiErrorExt`](crate::error::AiErrorExt), its errors' mapping to and from [`GatewayError`].
pub mod ai {
    pub use crate::error::AiErrorExt;
    pub use edgegate_ai::*;
}
pub mod auth;
pub mod cache;
pub mod compiled;
pub mod config;
pub mod error;
pub mod gateway;
pub mod identity;
pub mod plugins;
pub mod proxy;
pub mod ratelimit;
pub mod router;
pub mod sort;
pub mod store;
pub mod template;
pub mod upstream;

pub use error::{AiErrorExt, ErrorKind, GatewayError};
