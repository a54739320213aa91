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
            let path = canonical_path(inputs.path);
            match &config.path {
                Some(only) if canonical_path(only) != path => return None,
                _ => format!("path:{path}"),
            }
        }
        LimitBy::Route => format!("route:{}", inputs.route),
        LimitBy::Service => format!("service:{}", inputs.service),
    };
    Some(shorten(id))
}

/// The path as `limit_by: path` counts it, so that spellings an origin reads as the same path share one
/// counter (Kong counts `kong.request.get_path()`, the normalized path): percent-encoded unreserved
/// characters (RFC 3986 2.3: letters, digits, `-`, `.`, `_`, `~`) are decoded, other percent-encodings get
/// upper-case hex digits, and runs of `/` are merged into one (nginx's `merge_slashes`). Dot segments never
/// get here (the gateway refuses them with 400 `invalid_path`). Case is kept: paths are case-sensitive.
pub fn canonical_path(path: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let c = h * 16 + l;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    push_char(&mut out, c as char);
                } else {
                    out.push('%');
                    out.push_str(&format!("{c:02X}"));
                }
                i += 3;
                continue;
            }
        }
        // Multi-byte UTF-8 is copied whole (a path from the URL parser is ASCII, but be safe).
        let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
        for ch in path[i..i + ch_len].chars() {
            push_char(&mut out, ch);
        }
        i += ch_len;
    }
    out
}

fn push_char(out: &mut String, c: char) {
    if c == '/' && out.ends_with('/') {
        return;
    }
    out.push(c);
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
