//! `http-log` (Kong's plugin of that name): after the response, send one JSON entry describing the
//! request to an HTTP collector. This module holds the settings (Kong's option names and defaults),
//! their validation and the entry (Kong's log serializer shape, with secrets redacted); the glue
//! (`src/plugins/http_log.rs`) gathers the request's data, passes the time in and sends the entry
//! with `ctx.waitUntil`.

use crate::plugins::{settings, PluginError};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Request headers always redacted (lower case).
pub const SECRET_REQUEST_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// The `http-log` settings as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "HttpLogPluginConfig",
        description = "Settings of the `http-log` plugin (docs/plugins.md#http-log)."
    )
)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// The collector's URL (`http` or `https`); a `user:password@` in it is sent as Basic auth.
    http_endpoint: String,
    #[serde(default = "default_method")]
    method: String,
    #[serde(default = "default_content_type")]
    content_type: String,
    /// Milliseconds to wait for the collector's answer.
    #[serde(default = "default_timeout")]
    timeout: u64,
    /// Accepted for Kong compatibility, unused.
    #[serde(default)]
    #[allow(dead_code)]
    keepalive: Option<u64>,
    /// Accepted for Kong compatibility, unused (an entry is sent once).
    #[serde(default)]
    #[allow(dead_code)]
    retry_count: Option<u64>,
    /// Accepted for Kong compatibility, unused.
    #[serde(default)]
    #[allow(dead_code)]
    queue_size: Option<u64>,
    /// Accepted for Kong compatibility, unused.
    #[serde(default)]
    #[allow(dead_code)]
    flush_timeout: Option<f64>,
    /// Kong's queue settings: accepted (an object), unused.
    #[serde(default)]
    #[allow(dead_code)]
    queue: Option<Map<String, Value>>,
    /// Extra headers sent to the collector.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Kong's Lua fields: refused unless empty.
    #[serde(default)]
    custom_fields_by_lua: Option<Map<String, Value>>,
}

fn default_method() -> String {
    "POST".into()
}
fn default_content_type() -> String {
    "application/json".into()
}
fn default_timeout() -> u64 {
    10_000
}

/// A compiled `http-log` config.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpLogConfig {
    /// The endpoint without its user information.
    pub endpoint: String,
    /// `Basic <base64 of the userinfo>` when the endpoint carries one.
    pub authorization: Option<String>,
    pub method: String,
    pub content_type: String,
    pub timeout_ms: u64,
    /// Extra headers, names in lower case, in name order.
    pub headers: Vec<(String, String)>,
}

fn err(path: &str, message: impl Into<String>) -> PluginError {
    PluginError::Config(vec![(path.into(), message.into())])
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parse and validate an `http-log` config (the registry's parser).
pub fn parse(config: &Value) -> Result<HttpLogConfig, PluginError> {
    let s = settings::<Settings>(config)?;
    if s.custom_fields_by_lua
        .as_ref()
        .is_some_and(|m| !m.is_empty())
    {
        return Err(err(
            "custom_fields_by_lua",
            "not supported: edgegate runs no Lua; leave it out",
        ));
    }
    let (endpoint, authorization) = endpoint(&s.http_endpoint)?;
    if !["POST", "PUT", "PATCH"].contains(&s.method.as_str()) {
        return Err(err("method", "expected one of `POST`, `PUT`, `PATCH`"));
    }
    if !["application/json", "application/json; charset=utf-8"].contains(&s.content_type.as_str()) {
        return Err(err(
            "content_type",
            "expected one of `application/json`, `application/json; charset=utf-8`",
        ));
    }
    if s.timeout == 0 {
        return Err(err("timeout", "must be at least 1 (milliseconds)"));
    }
    let mut headers = Vec::new();
    for (name, value) in &s.headers {
        let path = format!("headers.{name}");
        if !is_token(name) {
            return Err(err("headers", "a header name is not a valid HTTP token"));
        }
        let lower = name.to_ascii_lowercase();
        if ["host", "content-length", "content-type"].contains(&lower.as_str()) {
            return Err(err(
                &path,
                "cannot be set here (Host and Content-Length come from the endpoint and the \
                 body, Content-Type from `content_type`)",
            ));
        }
        if lower == "authorization" && authorization.is_some() {
            // Kong refuses both too: which one would be sent?
            return Err(err(
                &path,
                "cannot be set together with a user:password@ in `http_endpoint`",
            ));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            // The path does not name the header: a name is never quoted (docs/plugins.md).
            return Err(err(
                "headers",
                "a header value cannot contain CR, LF or NUL",
            ));
        }
        headers.push((lower, value.clone()));
    }
    Ok(HttpLogConfig {
        endpoint,
        authorization,
        method: s.method,
        content_type: s.content_type,
        timeout_ms: s.timeout,
        headers,
    })
}

/// The endpoint without user information, and the Basic authorization made of that (Kong's: the
/// userinfo as written, base64-encoded).
fn endpoint(url: &str) -> Result<(String, Option<String>), PluginError> {
    let bad = || {
        err(
            "http_endpoint",
            "expected an absolute http:// or https:// URL with a host",
        )
    };
    if url.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(bad());
    }
    let lower = url.to_ascii_lowercase();
    let scheme_len = if lower.starts_with("http://") {
        7
    } else if lower.starts_with("https://") {
        8
    } else {
        return Err(bad());
    };
    let rest = &url[scheme_len..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if tail.contains('#') {
        return Err(err(
            "http_endpoint",
            "a URL fragment is not sent; leave it out",
        ));
    }
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if host.is_empty() || host.starts_with(':') {
        return Err(bad());
    }
    let authorization = userinfo.filter(|u| !u.is_empty()).map(|u| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(u.as_bytes())
        )
    });
    Ok((format!("{}{host}{tail}", &url[..scheme_len]), authorization))
}

/// What the glue knows about a request once it is settled.
pub struct Request<'a> {
    pub method: &'a str,
    /// The request URL as received (absolute).
    pub url: &'a str,
    /// Request headers, names in lower case.
    pub headers: &'a [(String, String)],
    pub status: u16,
    /// Response headers, names in lower case (`None`: not known).
    pub response_headers: Option<&'a [(String, String)]>,
    /// When the request arrived (ms since the epoch) and how long it took (ms).
    pub started_at: u64,
    pub total_ms: u64,
    /// Time spent waiting for the origin (ms), when it was called.
    pub upstream_ms: Option<u64>,
    pub client_ip: Option<&'a str>,
    pub route: &'a str,
    pub service: &'a str,
    pub consumer: Option<&'a str>,
    /// The upstream URL's path and query, when the request was proxied.
    pub upstream_uri: Option<&'a str>,
    pub request_id: &'a str,
    /// Key-auth key names (lower case): redacted as request headers and query parameters.
    pub key_names: &'a [String],
}

/// The path and query of an absolute URL (`/` when it has no path).
fn path_and_query(url: &str) -> &str {
    let rest = url.find("://").map_or(url, |i| &url[i + 3..]);
    match rest.find(['/', '?']) {
        Some(i) => &rest[i..],
        None => "",
    }
}

/// `query` with the values of the parameters named in `secrets` replaced by [`REDACTED`].
fn redact_query(query: &str, secrets: &[String]) -> String {
    query
        .split('&')
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(k, _)| k);
            let decoded = crate::auth::percent_decode(name).unwrap_or_default();
            if secrets.iter().any(|s| s.eq_ignore_ascii_case(&decoded)) {
                format!("{name}={REDACTED}")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `url` (or a path and query) with the secret query parameters redacted.
fn redact_url(url: &str, secrets: &[String]) -> String {
    let (before, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    match before.split_once('?') {
        Some((base, query)) if !secrets.is_empty() => {
            format!("{base}?{}{fragment}", redact_query(query, secrets))
        }
        _ => url.to_string(),
    }
}

/// Kong's `querystring`: each parameter decoded, a repeated one as an array, one without `=` as
/// `true`.
fn querystring(query: Option<&str>, secrets: &[String]) -> Value {
    let mut out = Map::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (pair, None),
        };
        let key = String::from_utf8_lossy(&crate::auth::percent_decode_bytes(k)).into_owned();
        let value = if secrets.iter().any(|s| s.eq_ignore_ascii_case(&key)) {
            Value::from(REDACTED)
        } else {
            match v {
                Some(v) => Value::from(
                    String::from_utf8_lossy(&crate::auth::percent_decode_bytes(v)).into_owned(),
                ),
                None => Value::Bool(true),
            }
        };
        match out.get_mut(&key) {
            Some(Value::Array(a)) => a.push(value),
            Some(old) => *old = Value::Array(vec![old.take(), value]),
            None => {
                out.insert(key, value);
            }
        }
    }
    Value::Object(out)
}

fn header_map(headers: &[(String, String)], secret: impl Fn(&str) -> bool) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let value = if secret(&name) { REDACTED } else { value };
        out.insert(name, Value::from(value));
    }
    Value::Object(out)
}

fn size(headers: &[(String, String)]) -> Option<u64> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// The entry sent for a request (Kong's serializer shape, as far as edgegate has the data).
pub fn entry(r: &Request<'_>) -> Value {
    let uri = path_and_query(r.url);
    let query = uri
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(q));
    let secret_header = |n: &str| {
        SECRET_REQUEST_HEADERS.contains(&n) || r.key_names.iter().any(|k| k.eq_ignore_ascii_case(n))
    };
    let mut request = json!({
        "id": r.request_id,
        "method": r.method,
        "uri": redact_url(if uri.is_empty() { "/" } else { uri }, r.key_names),
        "url": redact_url(r.url, r.key_names),
        "querystring": querystring(query, r.key_names),
        "headers": header_map(r.headers, secret_header),
    });
    if let Some(n) = size(r.headers) {
        request["size"] = n.into();
    }
    let response_headers = r.response_headers.unwrap_or(&[]);
    let mut response = json!({
        "status": r.status,
        "headers": header_map(response_headers, |n| n == "set-cookie"),
    });
    if let Some(n) = size(response_headers) {
        response["size"] = n.into();
    }
    let proxy = r.upstream_ms.map_or(-1, |ms| ms as i64);
    let kong = r.total_ms.saturating_sub(r.upstream_ms.unwrap_or(0));
    let mut e = json!({
        "request": request,
        "response": response,
        "latencies": {"request": r.total_ms, "proxy": proxy, "kong": kong},
        "client_ip": r.client_ip,
        "started_at": r.started_at,
        "route": {"name": r.route},
        "service": {"name": r.service},
        "request_id": r.request_id,
    });
    if let Some(c) = r.consumer {
        e["consumer"] = json!({ "username": c });
    }
    if let Some(u) = r.upstream_uri {
        e["upstream_uri"] = redact_url(u, r.key_names).into();
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::test_support::path_of;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn defaults_and_userinfo() {
        let c = parse(&json!({"http_endpoint": "https://u:p@logs.example:8443/in?x=1"})).unwrap();
        assert_eq!(c.endpoint, "https://logs.example:8443/in?x=1");
        assert_eq!(c.authorization.as_deref(), Some("Basic dTpw"));
        assert_eq!(c.method, "POST");
        assert_eq!(c.content_type, "application/json");
        assert_eq!(c.timeout_ms, 10_000);
        let c = parse(&json!({"http_endpoint": "http://logs", "method": "PUT",
            "headers": {"X-Token": "t"}, "queue": {"max_batch_size": 5}, "keepalive": 1000,
            "retry_count": 3, "queue_size": 1, "flush_timeout": 2, "custom_fields_by_lua": {}}))
        .unwrap();
        assert_eq!(c.authorization, None);
        assert_eq!(c.headers, vec![("x-token".to_string(), "t".to_string())]);
    }

    #[test]
    fn invalid_settings_name_their_path() {
        assert!(matches!(parse(&json!({})), Err(PluginError::Config(_))));
        assert_eq!(
            path_of(parse, json!({"http_endpoint": "ftp://x"})),
            "http_endpoint"
        );
        assert_eq!(
            path_of(parse, json!({"http_endpoint": "http://"})),
            "http_endpoint"
        );
        assert_eq!(
            path_of(parse, json!({"http_endpoint": "http://a b"})),
            "http_endpoint"
        );
        let ok = "http://logs";
        assert_eq!(
            path_of(parse, json!({"http_endpoint": ok, "method": "GET"})),
            "method"
        );
        assert_eq!(
            path_of(
                parse,
                json!({"http_endpoint": ok, "content_type": "text/plain"})
            ),
            "content_type"
        );
        assert_eq!(
            path_of(parse, json!({"http_endpoint": ok, "timeout": 0})),
            "timeout"
        );
        assert_eq!(
            path_of(
                parse,
                json!({"http_endpoint": ok, "headers": {"Host": "x"}})
            ),
            "headers.Host"
        );
        assert_eq!(
            path_of(parse, json!({"http_endpoint": ok, "headers": {"a b": "x"}})),
            "headers"
        );
        assert_eq!(
            path_of(
                parse,
                json!({"http_endpoint": ok, "custom_fields_by_lua": {"a": "return 1"}})
            ),
            "custom_fields_by_lua"
        );
        assert_eq!(
            path_of(parse, json!({"http_endpoint": ok, "bogus": 1})),
            "bogus"
        );
    }

    #[test]
    fn an_authorization_header_with_userinfo_is_refused() {
        assert_eq!(
            path_of(
                parse,
                json!({"http_endpoint": "http://u:p@logs/in",
                "headers": {"Authorization": "Bearer t"}})
            ),
            "headers.Authorization"
        );
        let c = parse(&json!({"http_endpoint": "http://logs/in",
            "headers": {"Authorization": "Bearer t"}}))
        .unwrap();
        assert_eq!(c.authorization, None);
        assert_eq!(
            c.headers,
            vec![("authorization".to_string(), "Bearer t".to_string())]
        );
    }

    #[test]
    fn entry_shape_and_redaction() {
        let headers = vec![
            ("authorization".to_string(), "Bearer s".to_string()),
            ("cookie".to_string(), "a=b".to_string()),
            ("apikey".to_string(), "k".to_string()),
            ("x-other".to_string(), "v".to_string()),
            ("content-length".to_string(), "3".to_string()),
        ];
        let response_headers = vec![("set-cookie".to_string(), "s=1".to_string())];
        let keys = vec!["apikey".to_string()];
        let e = entry(&Request {
            method: "POST",
            url: "http://gw.test/a/b?apikey=secret&x=1&x=2&flag&y=%20z",
            headers: &headers,
            status: 201,
            response_headers: Some(&response_headers),
            started_at: 1_700_000_000_000,
            total_ms: 30,
            upstream_ms: Some(20),
            client_ip: Some("203.0.113.9"),
            route: "r",
            service: "s",
            consumer: Some("alice"),
            upstream_uri: Some("/b?apikey=secret"),
            request_id: "id1",
            key_names: &keys,
        });
        assert_eq!(
            e["request"]["uri"],
            "/a/b?apikey=REDACTED&x=1&x=2&flag&y=%20z"
        );
        assert_eq!(
            e["request"]["url"],
            "http://gw.test/a/b?apikey=REDACTED&x=1&x=2&flag&y=%20z"
        );
        assert_eq!(
            e["request"]["querystring"],
            json!({"apikey": "REDACTED", "x": ["1", "2"], "flag": true, "y": " z"})
        );
        assert_eq!(e["request"]["headers"]["authorization"], "REDACTED");
        assert_eq!(e["request"]["headers"]["cookie"], "REDACTED");
        assert_eq!(e["request"]["headers"]["apikey"], "REDACTED");
        assert_eq!(e["request"]["headers"]["x-other"], "v");
        assert_eq!(e["request"]["size"], 3);
        assert_eq!(e["response"]["headers"]["set-cookie"], "REDACTED");
        assert_eq!(
            e["latencies"],
            json!({"request": 30, "proxy": 20, "kong": 10})
        );
        assert_eq!(e["consumer"]["username"], "alice");
        assert_eq!(e["upstream_uri"], "/b?apikey=REDACTED");
        assert_eq!(e["started_at"], 1_700_000_000_000u64);
        assert_eq!(e["request"]["id"], "id1");
        assert_eq!(e["request_id"], "id1");
        assert!(!e.to_string().contains("secret"));
    }
}
