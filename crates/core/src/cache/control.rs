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
    /// Parse a header value. Unknown directives are ignored. Values may be quoted (`max-age="60"`).
    /// A malformed `max-age` / `s-maxage` counts as 0 (stale, RFC 9111 section 4.2.1); a malformed
    /// `min-fresh` / `stale-if-error` is ignored. A number too large to represent counts as 2^31
    /// seconds (RFC 9111 section 1.2.2). A directive given twice with different values takes the
    /// stricter one: `max-age` / `s-maxage` count as 0 (the response is stale, RFC 9111 section
    /// 4.2.1), `min-fresh` the larger, `stale-if-error` the smaller.
    pub fn parse(value: Option<&str>) -> CacheControl {
        let mut cc = CacheControl::default();
        let Some(value) = value else { return cc };
        for directive in split_outside_quotes(value, true) {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(unquote(a.trim()))),
                None => (directive.trim(), None),
            };
            let seconds = || arg.as_deref().and_then(delta_seconds);
            match name.to_ascii_lowercase().as_str() {
                "no-store" => cc.no_store = true,
                "no-cache" => cc.no_cache = true,
                "private" => cc.private = true,
                "public" => cc.public = true,
                "max-age" => cc.max_age = once(cc.max_age, seconds().unwrap_or(0), |_, _| 0),
                "s-maxage" => cc.s_maxage = once(cc.s_maxage, seconds().unwrap_or(0), |_, _| 0),
                "only-if-cached" => cc.only_if_cached = true,
                "must-revalidate" | "proxy-revalidate" => cc.must_revalidate = true,
                "min-fresh" => {
                    if let Some(s) = seconds() {
                        cc.min_fresh = once(cc.min_fresh, s, u64::max)
                    }
                }
                "stale-if-error" => {
                    if let Some(s) = seconds() {
                        cc.stale_if_error = once(cc.stale_if_error, s, u64::min)
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

/// The value of a directive seen once more: `new` the first time, the same when it repeats itself,
/// else `conflict(old, new)`.
fn once(old: Option<u64>, new: u64, conflict: impl Fn(u64, u64) -> u64) -> Option<u64> {
    Some(match old {
        None => new,
        Some(o) if o == new => o,
        Some(o) => conflict(o, new),
    })
}

/// A quoted-string's content (`"60"` is `60`, `"a\"b"` is `a"b`); anything else as it is.
fn unquote(v: &str) -> std::borrow::Cow<'_, str> {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) if inner.contains('\\') => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                });
            }
            out.into()
        }
        Some(inner) => inner.into(),
        None => v.into(),
    }
}

/// RFC 9111 section 1.2.2 `delta-seconds`: one or more digits (no sign, no fraction); a value too
/// large to represent counts as 2^31.
pub fn delta_seconds(v: impl AsRef<str>) -> Option<u64> {
    let v = v.as_ref();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse::<u64>().unwrap_or(1 << 31))
}

/// The `Age` header (RFC 9111 section 5.1): the first member of a list, as delta-seconds; an invalid
/// value is ignored (0).
pub fn age_seconds(value: Option<&str>) -> u64 {
    value
        .and_then(|v| v.split(',').next())
        .and_then(|v| delta_seconds(v.trim()))
        .unwrap_or(0)
}

/// Split on commas outside double quotes (`private="set-cookie, x-a", max-age=5`).
pub(crate) fn split_outside_quotes(value: &str, escapes: bool) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in value.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if quoted && escapes => escaped = true,
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
