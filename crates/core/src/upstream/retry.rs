//! When a failed attempt is tried again.

use super::breaker::Outcome;
use crate::config::{RetryFailure, RetryOn, ServiceConfig};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Further attempts after the first (0: none).
    pub retries: u32,
    pub on_connect_failure: bool,
    pub on_timeout: bool,
    pub on_statuses: Vec<u16>,
    pub non_idempotent: bool,
}

/// Request bodies up to this size are kept in the Worker so that a retry can send them again; a
/// larger body, or one of unknown length, is streamed and its request never retried.
pub const MAX_RETRY_BODY_BYTES: u64 = 64 * 1024;

/// RFC 9110 9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE.
pub fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

impl RetryPolicy {
    pub fn of(s: &ServiceConfig) -> RetryPolicy {
        let mut p = RetryPolicy {
            retries: u32::try_from(s.retries).unwrap_or(0),
            on_connect_failure: false,
            on_timeout: false,
            on_statuses: Vec::new(),
            non_idempotent: s.retry_non_idempotent,
        };
        for r in &s.retry_on {
            match r {
                RetryOn::Failure(RetryFailure::ConnectFailure) => p.on_connect_failure = true,
                RetryOn::Failure(RetryFailure::Timeout) => p.on_timeout = true,
                RetryOn::Status(s) => p.on_statuses.push(*s),
            }
        }
        p
    }

    /// Whether a request with this method may be retried at all.
    pub fn allows(&self, method: &str) -> bool {
        self.retries > 0
            && (self.on_connect_failure || self.on_timeout || !self.on_statuses.is_empty())
            && (self.non_idempotent || is_idempotent(method))
    }

    /// Whether attempt number `attempt` (1 for the first) that ended with `outcome` is tried again.
    /// `replayable`: the request body can be sent again (none, or kept in the Worker).
    pub fn again(&self, method: &str, attempt: u32, outcome: Outcome, replayable: bool) -> bool {
        if attempt > self.retries || !replayable || !self.allows(method) {
            return false;
        }
        match outcome {
            Outcome::ConnectFailure => self.on_connect_failure,
            Outcome::Timeout => self.on_timeout,
            Outcome::Status(s) => self.on_statuses.contains(&s),
        }
    }
}
