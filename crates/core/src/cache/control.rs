//! `Cache-Control` (RFC 9111 section 5.2), the directives a shared cache acts on.

/// The directives of one `Cache-Control` header (request or response).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    /// `no-cache`, with or without field names (field names are treated as the whole response).
    pub no_cache: bool,
    /// `private`, with or without field names (treated as the whole response).
    pub private: bool,
    pub public: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub stale_if_error: Option<u64>,
    /// Request: only a stored response will do (RFC 9111 5.2.1.7).
    pub only_if_cached: bool,
    /// Request: the response must stay fresh for at least this many more seconds (5.2.1.3).
    pub min_fresh: Option<u64>,
    /// Response: `must-revalidate` or `proxy-revalidate`: never served stale (5.2.2.2, 5.2.2.8).
    pub must_revalidate: bool,
}

impl CacheControl {
    /// Parse a header value. Unknown directives are ignored; a directive with a malformed number is
    /// ignored too, except that a malformed `max-age` / `s-maxage` counts as 0 (stale), as RFC 9111
    /// section 4.2.1 advises.
    pub fn parse(value: Option<&str>) -> CacheControl {
        let mut cc = CacheControl::default();
        let Some(value) = value else { return cc };
        for directive in split_directives(value) {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            let seconds = || arg.and_then(|a| a.parse::<u64>().ok());
            match name.to_ascii_lowercase().as_str() {
                "no-store" => cc.no_store = true,
                "no-cache" => cc.no_cache = true,
                "private" => cc.private = true,
                "public" => cc.public = true,
                "max-age" => cc.max_age = Some(seconds().unwrap_or(0)),
                "s-maxage" => cc.s_maxage = Some(seconds().unwrap_or(0)),
                "only-if-cached" => cc.only_if_cached = true,
                "must-revalidate" | "proxy-revalidate" => cc.must_revalidate = true,
                "min-fresh" => {
                    if let Some(s) = seconds() {
                        cc.min_fresh = Some(s)
                    }
                }
                "stale-if-error" => {
                    if let Some(s) = seconds() {
                        cc.stale_if_error = Some(s)
                    }
                }
                _ => {}
            }
        }
        cc
    }

    /// Seconds of freshness the directives give a shared cache: `s-maxage` over `max-age`.
    pub fn shared_max_age(&self) -> Option<u64> {
        self.s_maxage.or(self.max_age)
    }
}

/// Split on commas outside double quotes (`private="set-cookie, x-a", max-age=5`).
fn split_directives(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, b) in value.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out.into_iter().filter(|d| !d.trim().is_empty()).collect()
}
