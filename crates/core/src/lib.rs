//! edgegate-core: the gateway's logic, free of any Workers dependency so it builds and tests natively.
//!
//! The Worker crate (`src/` at the repository root) is glue around this: it turns JS requests into
//! [`router::RequestView`]s, asks [`gateway::Gateway`] what to do and performs the I/O.

pub mod ai;
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
pub mod store;
pub mod template;
pub mod upstream;

pub use error::{ErrorKind, GatewayError};
