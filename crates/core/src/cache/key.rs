//! The cache key: what makes two requests share a cached response.

use super::{ProxyCacheConfig, RequestInfo};
use crate::identity::Identity;
use sha2::{Digest, Sha256};

/// The query string with its parameters sorted (`b=2&a=1` and `a=1&b=2` give the same key), keeping
/// only the parameters named in `only` when it is not empty (names compared percent-decoded; a kept
/// parameter is kept as sent). Empty pieces (`a=1&&b=2`) are dropped.
pub fn sorted_query(query: &str, only: &[String]) -> String {
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            // The name is compared percent-decoded, as the origin reads it: otherwise `?p%61ge=2` would
            // be keyed as a request without `page` while the origin serves page 2 (cache poisoning).
            let raw = p.split_once('=').map_or(*p, |(n, _)| n);
            let decoded = crate::auth::percent_decode(raw);
            let name = decoded.as_deref().unwrap_or(raw);
            only.is_empty() || only.iter().any(|o| o == name || o == raw)
        })
        .collect();
    // Sort by name first, then by the whole pair, so `a=2&a=1` and `a=1&a=2` agree too.
    crate::sort::sort_by(&mut pairs, |x, y| {
        let name = |p: &str| p.split_once('=').map_or(p, |(n, _)| n).to_string();
        name(x).cmp(&name(y)).then(x.cmp(y))
    });
    pairs.join("&")
}

/// The consumer the key is scoped to: the authenticated (non-anonymous) consumer, unless the
/// instance is `public`.
pub fn key_consumer<'a>(
    config: &ProxyCacheConfig,
    identity: Option<&'a Identity>,
) -> Option<&'a str> {
    if config.public {
        return None;
    }
    identity.filter(|i| !i.anonymous).map(|i| {
        if i.consumer_id.is_empty() {
            i.username.as_str()
        } else {
            i.consumer_id.as_str()
        }
    })
}

/// The canonical key: one `name value` line per component. HEAD shares GET's entries. Header values
/// cannot hold line breaks, so the lines cannot be confused with each other.
pub fn cache_key(
    config: &ProxyCacheConfig,
    req: &RequestInfo<'_>,
    route: &str,
    generation: &str,
) -> String {
    let method = if req.method.eq_ignore_ascii_case("HEAD") {
        "GET"
    } else {
        req.method
    };
    let path = if config.ignore_uri_case {
        req.path.to_ascii_lowercase()
    } else {
        req.path.to_string()
    };
    let mut key = format!(
        "edgegate-cache 1\ngeneration {generation}\nroute {route}\nmethod {method}\nhost {}\npath {path}\nquery {}\n",
        req.host.to_ascii_lowercase(),
        sorted_query(req.query, &config.vary_query_params),
    );
    for name in &config.vary_headers {
        match (req.header)(name) {
            Some(v) => key.push_str(&format!("header {name}: {}\n", v.trim())),
            None => key.push_str(&format!("header {name}\n")),
        }
    }
    match key_consumer(config, req.identity) {
        Some(c) => key.push_str(&format!("consumer {c}\n")),
        None => key.push_str("consumer -\n"),
    }
    key
}

/// SHA-256 of the canonical key, hex: what `X-Cache-Key` shows and the cache URL ends with.
pub fn key_digest(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The URL the Cache API stores the entry under: on the request's own host (the zone's cache),
/// under a path no client request reaches the cache with.
pub fn cache_url(host: &str, digest: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
    {
        format!("https://edgegate-cache.invalid/.edgegate-cache/{digest}")
    } else if host.contains(':') {
        format!("https://[{host}]/.edgegate-cache/{digest}")
    } else {
        format!("https://{host}/.edgegate-cache/{digest}")
    }
}
