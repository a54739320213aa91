//! Services with several targets: choosing one (weighted round-robin, consistent hashing, least
//! in-flight), passive health checks (a circuit breaker per target) and retry decisions. All pure:
//! time comes in as milliseconds from the caller, and the mutable state ([`Balancer`]) is owned by
//! the glue, one per service per isolate. See docs/upstreams.md.

mod balancer;
mod breaker;
mod hash;
mod retry;

pub use balancer::{Balancer, Pick};
pub use breaker::{Breaker, BreakerConfig, BreakerState, Outcome};
pub use hash::{
    cookie_value, fnv1a, rendezvous, request_key, request_key_or_new_cookie, splitmix64, uuid_v4,
    KeySource, NewCookie,
};
pub use retry::{is_idempotent, RetryPolicy, MAX_RETRY_BODY_BYTES};

use crate::config::{Algorithm, HashOn, ServiceConfig, ServiceUrl};

#[cfg(test)]
mod tests;

/// One origin of a service, resolved.
#[derive(Debug, Clone)]
pub struct Target {
    /// `scheme://host[:port]` (never credentials); also the target's identity for hashing and
    /// health state. Shared, so that the access log can name it without copying it.
    pub origin: std::sync::Arc<str>,
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    /// 0 to 65535; 0: never chosen.
    pub weight: u32,
    /// Hash of `origin`, for rendezvous hashing.
    pub id_hash: u64,
}

impl Target {
    pub fn from_url(url: &ServiceUrl, weight: u32) -> Target {
        let origin = url.origin();
        Target {
            id_hash: fnv1a(origin.as_bytes()),
            origin: origin.into(),
            scheme: url.scheme.clone(),
            host: url.host.clone(),
            port: url.port,
            weight,
        }
    }
}

/// Where a hash key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashSource {
    None,
    Consumer,
    Ip,
    /// Lower-case header name.
    Header(String),
    Cookie(String),
    Path,
}

impl HashSource {
    pub fn new(on: HashOn, header: Option<&String>, cookie: Option<&String>) -> HashSource {
        match on {
            HashOn::None => HashSource::None,
            HashOn::Consumer => HashSource::Consumer,
            HashOn::Ip => HashSource::Ip,
            HashOn::Path => HashSource::Path,
            HashOn::Header => {
                HashSource::Header(header.map(|h| h.to_ascii_lowercase()).unwrap_or_default())
            }
            HashOn::Cookie => HashSource::Cookie(cookie.cloned().unwrap_or_default()),
        }
    }
}

/// How a service's targets are chosen, watched and retried.
#[derive(Debug, Clone)]
pub struct Policy {
    pub algorithm: Algorithm,
    pub hash_on: HashSource,
    pub hash_fallback: HashSource,
    /// `None`: passive health checks are off.
    pub breaker: Option<BreakerConfig>,
    pub retry: RetryPolicy,
}

impl Policy {
    /// The policy of a (validated) service.
    pub fn of(s: &ServiceConfig) -> Policy {
        let breaker = s
            .healthchecks
            .as_ref()
            .and_then(|h| BreakerConfig::of(&h.passive));
        Policy {
            algorithm: s.algorithm,
            hash_on: HashSource::new(
                s.hash_on,
                s.hash_on_header.as_ref(),
                s.hash_on_cookie.as_ref(),
            ),
            hash_fallback: HashSource::new(
                s.hash_fallback,
                s.hash_fallback_header.as_ref(),
                s.hash_on_cookie.as_ref(),
            ),
            breaker,
            retry: RetryPolicy::of(s),
        }
    }

    /// Whether the request needs a hash key (consistent hashing).
    pub fn hashes(&self) -> bool {
        self.algorithm == Algorithm::ConsistentHashing
    }

    /// Whether a hash key needs the consumer (known only after authentication).
    pub fn needs_consumer(&self) -> bool {
        self.hashes()
            && (self.hash_on == HashSource::Consumer || self.hash_fallback == HashSource::Consumer)
    }
}

/// A fingerprint of what the per-isolate state of a service depends on (targets, weights,
/// algorithm, health settings): state kept under an older fingerprint is dropped.
pub fn fingerprint(targets: &[Target], policy: &Policy) -> u64 {
    let mut h = fnv1a(format!("{:?}{:?}", policy.algorithm, policy.breaker).as_bytes());
    for t in targets {
        h = splitmix64(h ^ t.id_hash ^ u64::from(t.weight) << 1);
    }
    h
}
