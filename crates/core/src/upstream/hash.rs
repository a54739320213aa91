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

/// A cookie the gateway sets on the response because the request had none (Kong's behaviour for
/// `hash_on: cookie` and `hash_fallback: cookie`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCookie {
    pub name: String,
    pub value: String,
}

impl NewCookie {
    /// The `Set-Cookie` value: `name=value; Path=/; HttpOnly` (as Kong, whose default
    /// `hash_on_cookie_path` is `/`).
    pub fn header_value(&self) -> String {
        format!("{}={}; Path=/; HttpOnly", self.name, self.value)
    }
}

/// The hash key of a request for a service (see [`request_key`]), where a `cookie` source that the
/// request lacks takes a new value instead, as Kong does: `given(name)` is the value the gateway
/// already chose for that cookie for this request (a retry), else `fresh()` makes one. Returns the
/// key and, when a value was made or reused, the cookie to set on the response.
pub fn request_key_or_new_cookie(
    on: &HashSource,
    fallback: &HashSource,
    src: &KeySource<'_>,
    given: &dyn Fn(&str) -> Option<String>,
    fresh: &mut dyn FnMut() -> String,
) -> (Option<u64>, Option<NewCookie>) {
    for source in [on, fallback] {
        if let Some(k) = key_of(source, src) {
            return (Some(fnv1a(k.as_bytes())), None);
        }
        if let HashSource::Cookie(name) = source {
            let value = given(name).unwrap_or_else(&mut *fresh);
            let key = fnv1a(value.as_bytes());
            let cookie = NewCookie {
                name: name.clone(),
                value,
            };
            return (Some(key), Some(cookie));
        }
    }
    (None, None)
}

/// A random version 4 UUID (RFC 9562) in its usual text form, from 16 random bytes: the value of a
/// new hash cookie (Kong uses a UUID too).
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
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
