//! Which counter a request is charged to.

use super::config::{LimitBy, RateLimitConfig};

/// What the glue knows about a request, for choosing its counter.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyInputs<'a> {
    /// `Identity::consumer_id` when a consumer was authenticated.
    pub consumer_id: Option<&'a str>,
    /// `Identity::credential_id` when a credential was used.
    pub credential_id: Option<&'a str>,
    /// `CF-Connecting-IP` (never `X-Forwarded-For`, which clients can set).
    pub client_ip: Option<&'a str>,
    /// The value of the configured `header_name`, if the request has it.
    pub header: Option<&'a str>,
    /// Request path, without the query.
    pub path: &'a str,
    pub route: &'a str,
    pub service: &'a str,
}

/// Longest identifier kept verbatim; longer ones are shortened with a hash of the whole.
const MAX_IDENTIFIER: usize = 256;

/// The identifier of the counter a request is charged to, e.g. `consumer:42`, `ip:203.0.113.9`,
/// `route:users`. Like Kong, a missing consumer, credential or header falls back to the client IP.
/// `None`: the policy does not apply (`limit_by: path` with a `path` the request does not have).
pub fn identifier(config: &RateLimitConfig, inputs: &KeyInputs<'_>) -> Option<String> {
    let ip = || format!("ip:{}", inputs.client_ip.unwrap_or("unknown"));
    let id = match config.limit_by {
        LimitBy::Consumer => inputs
            .consumer_id
            .map(|c| format!("consumer:{c}"))
            .unwrap_or_else(ip),
        LimitBy::Credential => inputs
            .credential_id
            .map(|c| format!("credential:{c}"))
            .unwrap_or_else(ip),
        LimitBy::Ip => ip(),
        LimitBy::Header => inputs
            .header
            .map(|h| format!("header:{h}"))
            .unwrap_or_else(ip),
        LimitBy::Path => {
            // Spellings an origin reads as one path share one counter (Kong counts the normalized
            // path): the router's normal form; `config.path` is stored in it.
            let path = crate::router::normalize_path(inputs.path);
            match &config.path {
                Some(only) if *only != path => return None,
                _ => format!("path:{path}"),
            }
        }
        LimitBy::Route => format!("route:{}", inputs.route),
        LimitBy::Service => format!("service:{}", inputs.service),
    };
    Some(shorten(id))
}

/// The Durable Object name for a counter: one object per (plugin instance, identifier), the
/// instance named by its stable key (`PluginInstance::key`, e.g. `route=orders/rate-limiting`), not by
/// its position, so reordering or inserting instances keeps every counter.
pub fn object_name(instance_key: &str, identifier: &str) -> String {
    format!("rate-limiting/{instance_key}/{identifier}")
}

fn shorten(id: String) -> String {
    if id.len() <= MAX_IDENTIFIER {
        return id;
    }
    let mut cut = MAX_IDENTIFIER - 40;
    while !id.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}#{:016x}{:016x}",
        &id[..cut],
        fnv1a(id.as_bytes(), 0xcbf2_9ce4_8422_2325),
        fnv1a(id.as_bytes(), 0x8422_2325_cbf2_9ce4)
    )
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
