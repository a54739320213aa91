//! Hashing for consistent hashing and sticky splits: weighted rendezvous (highest random weight)
//! hashing. Each (key, target) pair gets a pseudo-random score scaled by the target's weight; the
//! highest score wins. Adding a target moves only the keys it now wins (about its share of the
//! weight), removing one moves only its own keys, and no ring has to be built.

use super::HashSource;

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The splitmix64 finaliser: spreads the bits of `x` over the whole word.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Weighted rendezvous hashing: among `items` (index, weight, identity hash), the one with the
/// highest `weight / -ln(u)` where `u` in (0, 1) comes from the key and the identity. Items of
/// weight 0 never win. `None` when no item has a weight.
pub fn rendezvous(key: u64, items: impl Iterator<Item = (usize, u32, u64)>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, weight, id) in items {
        if weight == 0 {
            continue;
        }
        let h = splitmix64(key ^ splitmix64(id));
        // 53 random bits, strictly inside (0, 1).
        let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = f64::from(weight) / -u.ln();
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}

/// What a hash key may be read from.
pub struct KeySource<'a> {
    /// Case-insensitive request header lookup.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The client address (`CF-Connecting-IP`).
    pub ip: Option<&'a str>,
    /// The request path.
    pub path: &'a str,
    /// The authenticated consumer's id, when known.
    pub consumer: Option<&'a str>,
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'h>(cookie_header: &'h str, name: &str) -> Option<&'h str> {
    cookie_header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// The hash key of a request: from `on`, else from `fallback`; `None` when neither has a value
/// (the caller then balances as without hashing).
pub fn request_key(on: &HashSource, fallback: &HashSource, src: &KeySource<'_>) -> Option<u64> {
    key_of(on, src)
        .or_else(|| key_of(fallback, src))
        .map(|k| fnv1a(k.as_bytes()))
}

fn key_of(on: &HashSource, src: &KeySource<'_>) -> Option<String> {
    let v = match on {
        HashSource::None => None,
        HashSource::Consumer => src.consumer.map(str::to_string),
        HashSource::Ip => src.ip.map(str::to_string),
        HashSource::Path => Some(src.path.to_string()),
        HashSource::Header(name) => (src.header)(name),
        HashSource::Cookie(name) => {
            (src.header)("cookie").and_then(|c| cookie_value(&c, name).map(str::to_string))
        }
    };
    v.filter(|v| !v.is_empty())
}
