//! Per-isolate upstream state: one `Balancer` (round-robin counters, requests in flight, a circuit
//! breaker per target) per service, kept across configuration versions while the service's targets
//! and balancing settings stay the same (`Upstream::fingerprint`). Nothing is shared between
//! isolates or data centres: each isolate learns the health of targets from its own traffic.

use crate::exchange::Exchange;
use crate::runtime;
use edgegate_core::gateway::Upstream;
use edgegate_core::upstream::{self as core, Balancer, BreakerState, KeySource, Outcome, Pick};
use edgegate_core::{ErrorKind, GatewayError};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static STATE: RefCell<HashMap<String, (u64, Balancer)>> = RefCell::new(HashMap::new());
}

fn with_balancer<R>(up: &Upstream, f: impl FnOnce(&mut Balancer) -> R) -> R {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        let entry = state
            .entry(up.name.clone())
            .or_insert_with(|| (up.fingerprint, Balancer::new(up.targets.len())));
        if entry.0 != up.fingerprint {
            *entry = (up.fingerprint, Balancer::new(up.targets.len()));
        }
        f(&mut entry.1)
    })
}

/// The hash key of the request for consistent hashing (`None` without one). A `cookie` source the
/// request lacks gets a new value, as in Kong: the cookie is added to the response
/// (`ex.response_headers`), and a retry of the request reuses it.
pub fn key(ex: &mut Exchange<'_>) -> Option<u64> {
    let upstream = ex.plan.upstream;
    let policy = &upstream.policy;
    if !policy.hashes() {
        return None;
    }
    let header = |name: &str| ex.header(name);
    let consumer = ex.identity.as_ref().map(|i| i.consumer_id.as_str());
    let given = |name: &str| {
        ex.response_headers.iter().find_map(|(n, v)| {
            let rest = v.strip_prefix(name)?.strip_prefix('=')?;
            (n == SET_COOKIE).then(|| rest.split(';').next().unwrap_or("").to_string())
        })
    };
    let (key, cookie) = core::request_key_or_new_cookie(
        &policy.hash_on,
        &policy.hash_fallback,
        &KeySource {
            header: &header,
            ip: ex.client_ip.as_deref(),
            path: ex.url.path,
            consumer,
        },
        &given,
        &mut || core::uuid_v4(runtime::random_bytes()),
    );
    if let Some(cookie) = cookie {
        let value = cookie.header_value();
        if !ex
            .response_headers
            .iter()
            .any(|(n, v)| n == SET_COOKIE && *v == value)
        {
            ex.response_headers.push((SET_COOKIE.to_string(), value));
        }
    }
    key
}

/// Lower case, as `respond::add_headers` expects to append it rather than replace.
pub const SET_COOKIE: &str = "set-cookie";

/// Choose a target of `up` (index into `up.targets`), avoiding `tried` while others are available.
/// A single-origin service without health checks always gets 0 without touching any state.
pub fn pick(up: &Upstream, key: Option<u64>, tried: &[usize]) -> Result<usize, GatewayError> {
    if !up.balanced() {
        return Ok(0);
    }
    let now = runtime::now_ms() as u64;
    match with_balancer(up, |b| b.pick(&up.targets, &up.policy, key, tried, now)) {
        Pick::Target(i) => Ok(i),
        Pick::NoneHealthy { retry_at } => Err(GatewayError::new(
            ErrorKind::NoHealthyUpstream {
                // Whole seconds, rounded up, at least 1 (RFC 9110 §10.2.3).
                retry_after_secs: retry_at.map(|t| t.saturating_sub(now).div_ceil(1000).max(1)),
            },
            format!(
                "every target of service {:?} is out after failing its health checks",
                up.name
            ),
        )),
    }
}

/// The attempt on target `i` ended with `outcome`: update the target's counters and health (and
/// log a change of health).
pub fn finished(up: &Upstream, i: usize, outcome: Outcome) {
    if !up.balanced() {
        return;
    }
    let now = runtime::now_ms() as u64;
    let changed = with_balancer(up, |b| {
        b.finished(i, outcome, &up.policy, now)
            .then(|| b.breakers[i].state.clone())
    });
    if let Some(state) = changed {
        let state = match state {
            BreakerState::Closed => "healthy",
            BreakerState::Open { .. } => "unhealthy",
            BreakerState::HalfOpen { .. } => "half-open",
        };
        let line = serde_json::json!({
            "event": "upstream_health",
            "service": up.name,
            "target": &*up.targets[i].origin,
            "state": state,
        });
        runtime::log(&line.to_string());
    }
}
