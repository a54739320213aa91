//! Pure proxy rules: which headers cross the gateway, request ids, trace context, the access log line.
//!
//! The glue applies these to the JS `Headers`; nothing here touches a body.

use serde::Serialize;

/// Hop-by-hop headers (RFC 9110 section 7.6.1), never forwarded. `upgrade` is kept for WebSocket
/// pass-through by the caller.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Hop-by-hop in practice though in no standard list: `Proxy-Connection`, an old client's
/// `Connection` for proxies, which RFC 9110 section 7.6.1 asks intermediaries to remove before
/// forwarding. Removed from requests and responses like [`HOP_BY_HOP`] (but a service or a plugin may
/// still set it).
pub const LEGACY_HOP_BY_HOP: &[&str] = &["proxy-connection"];

/// Request headers that are not hop-by-hop but are still not forwarded: `expect` (a
/// `100-continue` handshake is between the client and the gateway; the Workers runtime cannot relay
/// an interim `100 Continue` from the origin).
pub const NOT_FORWARDED: &[&str] = &["expect"];

/// The forwarding headers the gateway sets upstream (Kong's set). A client's `X-Forwarded-For` list is
/// extended; the others are replaced, and `X-Forwarded-Prefix` is removed when no prefix was stripped.
pub const FORWARDING: [&str; 6] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-path",
    "x-forwarded-prefix",
];

/// What the gateway adds to `Via` on requests it forwards (RFC 9110 section 7.6.3).
pub const VIA: &str = "1.1 edgegate";

/// Response headers the gateway adds.
pub const REQUEST_ID: &str = "x-request-id";
pub const UPSTREAM_LATENCY: &str = "x-edgegate-upstream-latency";
pub const PROXY_LATENCY: &str = "x-edgegate-proxy-latency";

/// What an intermediary does with a `Max-Forwards` header (RFC 9110 section 7.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaxForwards {
    /// Not a TRACE or OPTIONS request, no header, or not a number: forward the request as it is.
    Pass,
    /// Forward the request with this value (the received one minus one).
    Forward(String),
    /// The value is 0: do not forward; answer as the final recipient.
    Answer,
}

/// Whether `method` is one of the two that `Max-Forwards` applies to (TRACE and OPTIONS); for every
/// other method the header passes unchanged and is not even read.
pub fn uses_max_forwards(method: &str) -> bool {
    method == "OPTIONS" || method == "TRACE"
}

/// What to do with `Max-Forwards: value` on a TRACE or OPTIONS request: 0 is answered by the gateway,
/// a larger number is decremented (a value too large for 64 bits counts as the largest one), anything
/// that is not `1*DIGIT` is left alone.
pub fn max_forwards(value: Option<&str>) -> MaxForwards {
    let Some(v) = value.map(str::trim) else {
        return MaxForwards::Pass;
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return MaxForwards::Pass;
    }
    match v.parse::<u64>() {
        Ok(0) => MaxForwards::Answer,
        Ok(n) => MaxForwards::Forward((n - 1).to_string()),
        // Only digits, so too many of them.
        Err(_) => MaxForwards::Forward((u64::MAX - 1).to_string()),
    }
}

/// The `Allow` header of the gateway's own answer to `OPTIONS` (with `Max-Forwards: 0`) on a route
/// accepting `methods` (sorted, upper case; empty: any method).
pub fn allow_for(methods: &[String]) -> String {
    if methods.is_empty() {
        return ANY_METHOD_ALLOW.to_string();
    }
    methods.join(", ")
}

/// What a route without `methods` accepts, as an `Allow` header.
pub const ANY_METHOD_ALLOW: &str = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE";

/// The body of the gateway's answer to `TRACE` with `Max-Forwards: 0` (RFC 9110 section 9.3.8): the
/// request line and header fields as received (`message/http`), without the fields likely to hold
/// credentials or session data (RFC 9110 asks the final recipient to leave them out): `Authorization`,
/// `Proxy-Authorization`, `Cookie`, and any name containing `auth`, `key`, `token`, `secret`,
/// `session`, `password`, `credential` or `signature`.
pub fn trace_echo(method: &str, target: &str, headers: &[(String, String)]) -> String {
    const SENSITIVE: [&str; 8] = [
        "auth",
        "key",
        "token",
        "secret",
        "session",
        "password",
        "credential",
        "signature",
    ];
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if lower == "cookie" || SENSITIVE.iter().any(|s| lower.contains(s)) {
            continue;
        }
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out
}

/// The headers a `Connection` header names (hop-by-hop too, RFC 9110 7.6.1) beyond the fixed
/// [`HOP_BY_HOP`] set: lower case, de-duplicated, invalid tokens skipped.
pub fn connection_listed(connection: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for token in connection.unwrap_or("").split(',') {
        let token = token.trim();
        if is_token(token) {
            let token = token.to_ascii_lowercase();
            if !HOP_BY_HOP.contains(&token.as_str()) && !names.contains(&token) {
                names.push(token);
            }
        }
    }
    names
}

/// The client's `value` of header `name`, unless the client's `Connection` header lists `name`
/// (`listed`, from [`connection_listed`]): such a header was for the client's hop only (RFC 9110
/// section 7.6.1), so the gateway's own `Via`, `X-Forwarded-For`, `traceparent` or `Max-Forwards`
/// does not continue it.
pub fn unless_listed<'v>(listed: &[String], name: &str, value: Option<&'v str>) -> Option<&'v str> {
    value.filter(|_| !listed.iter().any(|n| n == name))
}

/// An HTTP token (RFC 9110 `tchar`s).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A client-supplied request id is kept when it is 1 to 200 characters of `[A-Za-z0-9._:-]`.
pub fn valid_request_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The request id to use: the client's when well formed, else one made from 16 random bytes
/// (formatted as a UUID v4).
pub fn request_id(client: Option<&str>, random: [u8; 16]) -> String {
    match client {
        Some(id) if valid_request_id(id) => id.to_string(),
        _ => uuid_v4(random),
    }
}

/// The client's `X-Request-Id` to consider for [`request_id`]: none when the client's `Connection`
/// header names it (hop-by-hop then, RFC 9110 section 7.6.1: it is not continued, the gateway makes
/// its own). Allocates nothing.
pub fn client_request_id<'v>(id: Option<&'v str>, connection: Option<&str>) -> Option<&'v str> {
    let listed = connection.is_some_and(|c| {
        c.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(REQUEST_ID))
    });
    id.filter(|_| !listed)
}

fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, chunk) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            s.push('-');
        }
        push_hex(&mut s, chunk);
    }
    s
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// W3C trace context for the upstream hop: the client's trace id and flags with a new parent id, or a
/// new trace when the client sent none or a malformed one. `random` supplies 16 bytes of trace id (used
/// only for a new trace) and 8 bytes of span id. Returns `(traceparent, keep_tracestate)`.
pub fn upstream_traceparent(client: Option<&str>, random: [u8; 24]) -> (String, bool) {
    let mut span = [0u8; 8];
    span.copy_from_slice(&random[16..]);
    if span == [0; 8] {
        span[7] = 1; // an all-zero parent id is invalid
    }
    if let Some(tp) = client.map(str::trim) {
        let parts: Vec<&str> = tp.split('-').collect();
        if parts.len() >= 4
            && is_lower_hex(parts[0], 2)
            && parts[0] != "ff"
            && (parts[0] != "00" || parts.len() == 4)
            && is_lower_hex(parts[1], 32)
            && parts[1] != "00000000000000000000000000000000"
            && is_lower_hex(parts[2], 16)
            && parts[2] != "0000000000000000"
            && is_lower_hex(parts[3], 2)
        {
            let mut s = String::with_capacity(55);
            s.push_str("00-");
            s.push_str(parts[1]);
            s.push('-');
            push_hex(&mut s, &span);
            s.push('-');
            s.push_str(parts[3]);
            return (s, true);
        }
    }
    let mut trace = [0u8; 16];
    trace.copy_from_slice(&random[..16]);
    if trace == [0; 16] {
        trace[15] = 1;
    }
    let mut s = String::with_capacity(55);
    s.push_str("00-");
    push_hex(&mut s, &trace);
    s.push('-');
    push_hex(&mut s, &span);
    s.push_str("-01");
    (s, false)
}

/// `X-Forwarded-For` for the upstream: the existing list with the client address appended.
pub fn forwarded_for(existing: Option<&str>, client_ip: &str) -> String {
    match existing.map(str::trim).filter(|s| !s.is_empty()) {
        Some(list) => format!("{list}, {client_ip}"),
        None => client_ip.to_string(),
    }
}

/// `Via` for the upstream: the client's, with the gateway's entry appended (`1.0 fred, 1.1 edgegate`).
pub fn via(existing: Option<&str>) -> String {
    match existing.map(str::trim).filter(|s| !s.is_empty()) {
        Some(list) => format!("{list}, {VIA}"),
        None => VIA.to_string(),
    }
}

/// `X-Forwarded-Port`: the port the client connected to, from the request URL's authority when it
/// names one, else the scheme's default (443 for https and wss, 80 otherwise).
pub fn forwarded_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let after_host = match authority.rfind(']') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    if let Some((_, port)) = after_host.rsplit_once(':') {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return port;
        }
    }
    if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        "443"
    } else {
        "80"
    }
}

/// `X-Forwarded-Path`: the path the client asked the gateway for (without the query), in the
/// router's normal form (`router::normalize_path`), as Kong sends its normalized path; it replaces a
/// client's own. The same string `strip_path` counted bytes of (see [`forwarded_prefix`]).
pub fn forwarded_path(path: &str) -> std::borrow::Cow<'_, str> {
    crate::router::normalize_path(path)
}

/// `X-Forwarded-Prefix`: the part of the client's path that `strip_path` removed (its first
/// `stripped` bytes, see `RouteMatch::stripped`), without a trailing `/`; `None` when that is empty.
pub fn forwarded_prefix(path: &str, stripped: usize) -> Option<&str> {
    let prefix = path.get(..stripped)?;
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    (!prefix.is_empty()).then_some(prefix)
}

/// The request headers a client may not send even spelt with `_` for `-`: those the gateway sets
/// upstream or alone may set (identity headers, forwarding headers, the request id). `Via` and
/// `traceparent` are set too, but have no `-` to spell otherwise.
pub fn guarded_headers() -> impl Iterator<Item = &'static str> {
    crate::auth::IDENTITY_HEADERS
        .into_iter()
        .chain(FORWARDING)
        .chain([REQUEST_ID])
}

/// Whether a client header `name` is another spelling of a header the gateway sets upstream: its
/// name has a `_`, and lower-cased with every `_` read as `-` it is one of [`guarded_headers`] or of
/// `also_set` (the other names set on this request: the service's `headers`, plugins' headers; lower
/// case). CGI-style origins (PHP, WSGI, Rack) read `X_Consumer_Username` exactly as
/// `X-Consumer-Username`, so such a header would pass for the gateway's own; nginx and Apache drop
/// them for the same reason. `src/js.rs` (`upstreamHeaders`) applies this rule to every request.
pub fn forges_gateway_header(name: &str, also_set: &[&str]) -> bool {
    if !name.contains('_') {
        return false;
    }
    let dashed = name.to_ascii_lowercase().replace('_', "-");
    guarded_headers().any(|g| g == dashed) || also_set.contains(&dashed.as_str())
}

/// Lower-cased host without port and without a trailing dot (as nginx's `$host`, which Kong sends as
/// `X-Forwarded-Host`), from a Host header or URL authority.
pub fn host_without_port(authority: &str) -> String {
    let a = authority.trim();
    let host = if a.starts_with('[') {
        match a.find(']') {
            Some(i) => &a[..=i],
            None => a,
        }
    } else {
        a.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(a, |(h, _)| h)
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

/// The parts of an absolute request URL the router needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub scheme: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub query: &'a str,
}

/// Split `scheme://authority/path?query#fragment` without a URL crate. The Workers runtime hands the
/// Worker absolute, normalized URLs; anything else is a bad request.
pub fn split_url(url: &str) -> Option<UrlParts<'_>> {
    // A scheme has no ':', so the first one ends it (a char search is cheaper than a "://" one).
    let colon = url.find(':')?;
    let (scheme, rest) = (&url[..colon], url[colon + 1..].strip_prefix("//")?);
    let rest = rest.split('#').next().unwrap_or(rest);
    let (authority, path_query) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    Some(UrlParts {
        scheme,
        authority,
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

/// The one structured log line written per request.
#[derive(Debug, Serialize)]
pub struct AccessLog<'a> {
    pub event: &'static str,
    pub request_id: &'a str,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub route: Option<&'a str>,
    pub service: Option<&'a str>,
    /// The origin (`scheme://host[:port]`) of the service's target the request went to last.
    pub upstream: Option<&'a str>,
    /// How many times the request was sent upstream (retries included).
    pub attempts: Option<u32>,
    pub consumer: Option<&'a str>,
    pub status: u16,
    pub error: Option<&'a str>,
    pub config_version: Option<u64>,
    pub upstream_latency_ms: Option<u64>,
    pub total_latency_ms: u64,
    /// AI routes: provider, model, attempts and (non-streaming) tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai: Option<&'a crate::ai::AiLog>,
}

impl AccessLog<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn split_url_parts() {
        let p = split_url("https://Api.example.com:8443/v1/users?id=7#frag").unwrap();
        assert_eq!(
            (p.scheme, p.authority, p.path, p.query),
            ("https", "Api.example.com:8443", "/v1/users", "id=7")
        );
        let p = split_url("http://h").unwrap();
        assert_eq!((p.authority, p.path, p.query), ("h", "/", ""));
        let p = split_url("http://h/?x=a:b").unwrap();
        assert_eq!((p.path, p.query), ("/", "x=a:b"));
        assert!(split_url("no-scheme/path").is_none());
        assert!(split_url("mailto:someone").is_none());
    }

    #[test]
    fn max_forwards_is_answered_at_zero_and_decremented_above() {
        assert!(uses_max_forwards("OPTIONS") && uses_max_forwards("TRACE"));
        assert!(!uses_max_forwards("GET") && !uses_max_forwards("options"));
        assert_eq!(max_forwards(None), MaxForwards::Pass);
        assert_eq!(max_forwards(Some("0")), MaxForwards::Answer);
        assert_eq!(max_forwards(Some(" 00 ")), MaxForwards::Answer);
        assert_eq!(max_forwards(Some("1")), MaxForwards::Forward("0".into()));
        assert_eq!(max_forwards(Some("10")), MaxForwards::Forward("9".into()));
        assert_eq!(
            max_forwards(Some("99999999999999999999999")),
            MaxForwards::Forward((u64::MAX - 1).to_string())
        );
        for bad in ["", "-1", "1.5", "x", "1, 2"] {
            assert_eq!(max_forwards(Some(bad)), MaxForwards::Pass, "{bad:?}");
        }
        assert_eq!(allow_for(&[]), ANY_METHOD_ALLOW);
        assert_eq!(allow_for(&["GET".into(), "HEAD".into()]), "GET, HEAD");
    }

    #[test]
    fn trace_echo_leaves_out_credentials() {
        let h = |n: &str, v: &str| (n.to_string(), v.to_string());
        let body = trace_echo(
            "TRACE",
            "/a?b=1",
            &[
                h("host", "example.com"),
                h("authorization", "Bearer x"),
                h("cookie", "sid=1"),
                h("x-api-key", "k"),
                h("apikey", "k"),
                h("x-csrf-token", "t"),
                h("x-trace", "yes"),
            ],
        );
        assert_eq!(
            body,
            "TRACE /a?b=1 HTTP/1.1\r\nhost: example.com\r\nx-trace: yes\r\n\r\n"
        );
    }

    #[test]
    fn a_header_connection_lists_is_not_continued() {
        let listed = connection_listed(Some("Via, X-Forwarded-For"));
        assert_eq!(unless_listed(&listed, "via", Some("1.0 fred")), None);
        assert_eq!(
            unless_listed(&listed, "x-forwarded-for", Some("6.6.6.6")),
            None
        );
        assert_eq!(unless_listed(&listed, "traceparent", Some("t")), Some("t"));
        assert_eq!(
            unless_listed(&[], "via", Some("1.0 fred")),
            Some("1.0 fred")
        );
        assert_eq!(
            via(unless_listed(&listed, "via", Some("1.0 fred"))),
            "1.1 edgegate"
        );
    }

    #[test]
    fn connection_listed_headers_are_hop_by_hop() {
        let names = connection_listed(Some("keep-alive, X-Secret-Hop , bad header, x-secret-hop"));
        // The fixed set is not repeated; a listed name once, in lower case; bad tokens skipped.
        assert_eq!(names, vec!["x-secret-hop".to_string()]);
        assert!(connection_listed(None).is_empty());
        assert!(connection_listed(Some(" , ")).is_empty());
    }

    #[test]
    fn request_id_named_by_connection_is_not_reused() {
        let id = Some("abc-123");
        assert_eq!(client_request_id(id, None), id);
        assert_eq!(client_request_id(id, Some("keep-alive")), id);
        assert_eq!(
            client_request_id(id, Some("keep-alive, X-Request-Id")),
            None
        );
        assert_eq!(client_request_id(id, Some(" x-request-id ")), None);
        assert_eq!(client_request_id(id, Some("x-request-idx")), id);
        assert_eq!(client_request_id(None, Some("x-request-id")), None);
    }

    #[test]
    fn request_id_kept_when_well_formed_else_generated() {
        assert_eq!(request_id(Some("abc-123:x.y_z"), [0; 16]), "abc-123:x.y_z");
        let generated = request_id(Some("bad id with spaces"), [0xab; 16]);
        assert_eq!(generated, "abababab-abab-4bab-abab-abababababab");
        assert!(valid_request_id(&generated));
        assert_ne!(request_id(None, [1; 16]), request_id(None, [2; 16]));
        assert!(!valid_request_id(&"a".repeat(201)));
        assert!(!valid_request_id(""));
    }

    #[test]
    fn traceparent_keeps_trace_id_with_new_span() {
        let client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (tp, keep_state) = upstream_traceparent(Some(client), [7; 24]);
        assert_eq!(
            tp,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0707070707070707-01"
        );
        assert!(keep_state);
    }

    #[test]
    fn malformed_traceparent_starts_a_new_trace() {
        for bad in [
            "garbage",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let (tp, keep) = upstream_traceparent(Some(bad), [9; 24]);
            assert_eq!(
                tp, "00-09090909090909090909090909090909-0909090909090909-01",
                "{bad}"
            );
            assert!(!keep);
        }
        let (tp, _) = upstream_traceparent(None, [0; 24]);
        assert_eq!(
            tp,
            "00-00000000000000000000000000000001-0000000000000001-01"
        );
    }

    #[test]
    fn forwarded_for_appends_client() {
        assert_eq!(forwarded_for(None, "1.2.3.4"), "1.2.3.4");
        assert_eq!(
            forwarded_for(Some("9.9.9.9"), "1.2.3.4"),
            "9.9.9.9, 1.2.3.4"
        );
        assert_eq!(forwarded_for(Some("  "), "1.2.3.4"), "1.2.3.4");
    }

    #[test]
    fn url_is_split_into_parts() {
        let u = split_url("https://api.example.com:8443/a/b?x=1&y=2#frag").unwrap();
        assert_eq!(
            u,
            UrlParts {
                scheme: "https",
                authority: "api.example.com:8443",
                path: "/a/b",
                query: "x=1&y=2"
            }
        );
        let u = split_url("http://h").unwrap();
        assert_eq!((u.path, u.query), ("/", ""));
        assert!(split_url("not a url").is_none());
    }

    #[test]
    fn via_is_appended_to_the_clients() {
        assert_eq!(via(None), "1.1 edgegate");
        assert_eq!(via(Some("")), "1.1 edgegate");
        assert_eq!(via(Some("1.0 fred")), "1.0 fred, 1.1 edgegate");
        assert_eq!(
            via(Some(" 1.0 fred, 1.1 p.example (Proxy) ")),
            "1.0 fred, 1.1 p.example (Proxy), 1.1 edgegate"
        );
    }

    #[test]
    fn forwarded_port_is_explicit_or_the_schemes_default() {
        assert_eq!(forwarded_port("http", "127.0.0.1:8787"), "8787");
        assert_eq!(forwarded_port("https", "api.example.com:8443"), "8443");
        assert_eq!(forwarded_port("https", "api.example.com"), "443");
        assert_eq!(forwarded_port("http", "api.example.com"), "80");
        assert_eq!(forwarded_port("HTTPS", "api.example.com"), "443");
        assert_eq!(forwarded_port("http", "[::1]:9000"), "9000");
        assert_eq!(forwarded_port("https", "[::1]"), "443");
        assert_eq!(forwarded_port("http", "host:"), "80");
    }

    #[test]
    fn forwarded_path_is_the_clients_path_in_normal_form() {
        assert_eq!(forwarded_path("/api/x"), "/api/x");
        assert_eq!(forwarded_path("/"), "/");
        assert_eq!(forwarded_path("/api/x/"), "/api/x/");
        assert_eq!(forwarded_path("//api//%6Cogin"), "/api/login");
        assert_eq!(forwarded_path("/a%2fb/%c3%A9"), "/a%2Fb/%C3%A9");
        assert_eq!(forwarded_path("/Login/"), "/Login/");
        // A client's own copy (any spelling) never passes for the gateway's.
        assert!(forges_gateway_header("x_forwarded_path", &[]));
        // Nor can request-transformer set it (transformations.md lists it).
        let config = serde_json::json!({"add": {"headers": ["X-Forwarded-Path:/admin"]}});
        match crate::plugins::parse("request-transformer", &config) {
            Err(crate::plugins::PluginError::Config(e)) => {
                assert_eq!(e[0].0, "add.headers[0]");
                assert!(e[0]
                    .1
                    .starts_with("header \"x-forwarded-path\" cannot be changed here"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn forwarded_prefix_is_the_stripped_part() {
        assert_eq!(forwarded_prefix("/api/x", 4), Some("/api"));
        assert_eq!(forwarded_prefix("/v2/items", 4), Some("/v2"));
        assert_eq!(forwarded_prefix("/health", 7), Some("/health"));
        assert_eq!(forwarded_prefix("/x", 0), None);
        assert_eq!(forwarded_prefix("/", 1), None);
        assert_eq!(forwarded_prefix("/x", 9), None);
    }

    #[test]
    fn underscore_spellings_of_gateway_headers_are_forgeries() {
        for name in [
            "x_consumer_username",
            "X_Consumer_Username",
            "x_consumer_groups",
            "x_consumer_id",
            "x_consumer-id",
            "x-consumer_custom_id",
            "x_credential_identifier",
            "x_anonymous_consumer",
            "x_forwarded_for",
            "X_Forwarded_Host",
            "x_forwarded_proto",
            "x_forwarded_port",
            "x_forwarded_prefix",
            "x_request_id",
        ] {
            assert!(forges_gateway_header(name, &[]), "{name}");
        }
        // The dashed names themselves are handled otherwise (removed or replaced), not here.
        assert!(!forges_gateway_header("x-consumer-username", &[]));
        // Legitimate underscore headers pass.
        for name in [
            "x_custom_thing",
            "my_header",
            "x_consumer",
            "x__consumer_id",
        ] {
            assert!(!forges_gateway_header(name, &[]), "{name}");
        }
        // Headers this request sets (service headers) are guarded too.
        assert!(forges_gateway_header("x_api_version", &["x-api-version"]));
        assert!(!forges_gateway_header("x_api_version", &["x-other"]));
    }

    #[test]
    fn host_port_is_dropped() {
        assert_eq!(host_without_port("API.example.com:8787"), "api.example.com");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("localhost"), "localhost");
        assert_eq!(
            host_without_port("API.example.com.:8443"),
            "api.example.com"
        );
        assert_eq!(host_without_port("api.example.com."), "api.example.com");
    }

    #[test]
    fn access_log_is_one_json_line() {
        let line = AccessLog {
            event: "request",
            request_id: "r1",
            method: "GET",
            host: "h",
            path: "/a\nb",
            route: Some("users"),
            service: Some("echo"),
            upstream: Some("http://127.0.0.1:9001"),
            attempts: Some(2),
            consumer: None,
            status: 200,
            error: None,
            config_version: Some(3),
            upstream_latency_ms: Some(4),
            total_latency_ms: 5,
            ai: None,
        }
        .to_json();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["route"], "users");
        assert_eq!(v["config_version"], 3);
        assert_eq!(v["upstream"], "http://127.0.0.1:9001");
        assert_eq!(v["attempts"], 2);
    }
}
