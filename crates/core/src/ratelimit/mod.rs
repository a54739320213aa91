//! Rate limiting: the `rate-limiting` plugin (Kong's options), its counting algorithms and the
//! messages the gateway exchanges with the counting Durable Object.
//!
//! Everything here is pure: the Worker glue (`src/ratelimit.rs`) picks the counter ([`key`]), sends
//! a [`CheckRequest`] to the Durable Object for that counter (or uses [`local::LocalCounters`]), and
//! turns the [`Decision`] into headers ([`headers`]) or an error. The Durable Object loads its
//! [`State`], calls [`lease::serve`] (which decides with [`decide_op`] and grants permit leases)
//! and stores the result; the isolate spends leases with [`lease::LeaseTable`].

pub mod algorithm;
pub mod config;
pub mod headers;
#[cfg(test)]
mod identity_tests;
pub mod key;
pub mod lease;
#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod limits_tests;
pub mod local;
pub mod sim;
#[cfg(test)]
mod tests;
pub mod tokens;

pub use algorithm::{
    charge, decide, decide_op, peek, Algorithm, Decision, Limit, Op, Spec, State, Window,
    WindowStatus,
};
pub use config::{parse, Count, CounterPolicy, LimitBy, RateLimitConfig, RateLimitSettings};

use serde::{Deserialize, Serialize};

/// What the gateway sends the Durable Object: the policy's windows, the request's cost and the
/// operation (check-and-charge when absent). The object uses its own clock, so every location is
/// judged by one clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRequest {
    pub spec: Spec,
    pub cost: u64,
    #[serde(default, skip_serializing_if = "is_check")]
    pub op: Op,
    /// Permits wanted for a lease besides `cost` (`check` only; 0: none). See [`lease`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub want: u64,
    /// A lease given back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<lease::LeaseReturn>,
    /// The cost of one request: a lease is granted in multiples of it (0 or 1: any size).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unit: u64,
    /// The lease the isolate holds and how many of its permits were left when it asked: a new
    /// batch is folded into it (one record per isolate, reserving only what is left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<lease::LeaseReturn>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_check(op: &Op) -> bool {
    *op == Op::Check
}

/// Storage key of the state inside each Durable Object.
pub const STATE_KEY: &str = "state";
