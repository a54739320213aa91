//! Rate limiting: the `rate-limiting` plugin (Kong's options), its counting algorithms and the
//! messages the gateway exchanges with the counting Durable Object.
//!
//! Everything here is pure: the Worker glue (`src/ratelimit.rs`) picks the counter ([`key`]), sends
//! a [`CheckRequest`] to the Durable Object for that counter (or uses [`local::LocalCounters`]), and
//! turns the [`Decision`] into headers ([`headers`]) or an error. The Durable Object loads its
//! [`State`], calls [`decide`] and stores the result.

pub mod algorithm;
pub mod config;
pub mod headers;
pub mod key;
pub mod local;
#[cfg(test)]
mod tests;

pub use algorithm::{decide, Algorithm, Decision, Limit, Spec, State, Window, WindowStatus};
pub use config::{parse, CounterPolicy, LimitBy, RateLimitConfig, RateLimitSettings};

use serde::{Deserialize, Serialize};

/// What the gateway sends the Durable Object: the policy's windows and the request's cost. The
/// object uses its own clock, so every location is judged by one clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRequest {
    pub spec: Spec,
    pub cost: u64,
}

/// Storage key of the state inside each Durable Object.
pub const STATE_KEY: &str = "state";
