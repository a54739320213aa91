//! `request-termination` (Kong's plugin of that name): answer every request of its scope with a
//! fixed status and body, without calling the origin: maintenance pages, retired endpoints,
//! blocking a consumer. With `trigger`, only requests that carry that header or query parameter.
//!
//! When it runs (docs/plugins.md): an instance without `consumer` answers in the rewrite phase,
//! before authentication and rate limiting; a consumer-scoped one in the access phase at Kong's
//! priority 2, once the consumer is known (after auth and rate limiting).

use crate::plugins::{settings, PluginError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "RequestTerminationPluginConfig",
        description = "Settings of the `request-termination` plugin (docs/plugins.md#request-termination)."
    )
)]
#[serde(deny_unknown_fields)]
pub struct RequestTerminationConfig {
    /// Status of the answer, 200 to 599.
    #[serde(default = "default_status")]
    pub status_code: u16,
    /// Sent as `{"message": "..."}` (JSON); the status's default message when neither this nor
    /// `body` is set.
    #[serde(default)]
    pub message: Option<String>,
    /// Raw body, sent as it is with `content_type`.
    #[serde(default)]
    pub body: Option<String>,
    /// Content type of `body`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Answer with a JSON description of the request instead (debugging).
    #[serde(default)]
    pub echo: bool,
    /// Terminate only requests with a header or query parameter of this name.
    #[serde(default)]
    pub trigger: Option<String>,
}

fn default_status() -> u16 {
    503
}

/// `content_type` of a `body` given without one.
pub const DEFAULT_BODY_TYPE: &str = "text/plain; charset=utf-8";
pub const JSON_TYPE: &str = "application/json; charset=utf-8";

/// Header values never echoed (`echo`): they carry credentials.
const REDACTED: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "apikey",
];

/// Parse and validate a `request-termination` config (the registry's parser).
pub fn parse(config: &Value) -> Result<RequestTerminationConfig, PluginError> {
    settings::<RequestTerminationConfig>(config)?.validate()
}

fn err(path: &str, message: impl Into<String>) -> PluginError {
    PluginError::Config(vec![(path.into(), message.into())])
}

impl RequestTerminationConfig {
    pub fn validate(self) -> Result<Self, PluginError> {
        if !(200..=599).contains(&self.status_code) {
            return Err(err(
                "status_code",
                format!(
                    "{} is not a status the gateway can answer with: use 200 to 599",
                    self.status_code
                ),
            ));
        }
        if self.message.is_some() && self.body.is_some() {
            return Err(err("body", "give `message` or `body`, not both"));
        }
        if self.echo && self.body.is_some() {
            // Kong: "echo cannot be used with content_type and body".
            return Err(err("echo", "`echo` cannot be used with `body`"));
        }
        if self.content_type.is_some() && self.body.is_none() {
            return Err(err("content_type", "`content_type` needs `body`"));
        }
        if let Some(t) = &self.content_type {
            // A header value workerd can send: visible ASCII and spaces.
            if t.trim().is_empty() || !t.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(err("content_type", "not a valid header value"));
            }
        }
        if let Some(t) = &self.trigger {
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if t.is_empty() || !t.chars().all(token) {
                return Err(err(
                    "trigger",
                    // Not quoted: it may be a whole `Name: secret` line.
                    format!(
                        "not a valid header name ({}; letters, digits, `-`, `_`, ...)",
                        super::transform::bad_name_char(t)
                    ),
                ));
            }
        }
        if matches!(self.status_code, 204 | 205 | 304) && (self.body.is_some() || self.echo) {
            return Err(err(
                "status_code",
                format!("a {} answer cannot have a body", self.status_code),
            ));
        }
        Ok(self)
    }

    /// Whether a request terminates: always without `trigger`, else when `has_header(trigger)` or
    /// the raw `query` (no `?`) has a parameter of that name ([`query_has`]).
    pub fn applies(&self, has_header: impl Fn(&str) -> bool, query: &str) -> bool {
        self.trigger
            .as_deref()
            .is_none_or(|t| has_header(t) || query_has(query, t))
    }

    /// Content type and body of the answer (not for `echo`); `None` body for 204, 205 and 304.
    pub fn answer(&self) -> (Option<&str>, Option<String>) {
        if matches!(self.status_code, 204 | 205 | 304) {
            return (None, None);
        }
        if let Some(body) = &self.body {
            let t = self.content_type.as_deref().unwrap_or(DEFAULT_BODY_TYPE);
            return (Some(t), Some(body.clone()));
        }
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| default_message(self.status_code).to_string());
        (
            Some(JSON_TYPE),
            Some(json!({ "message": message }).to_string()),
        )
    }

    /// The `echo` answer: the request as the gateway saw it.
    pub fn echo(&self, request: &EchoRequest<'_>) -> String {
        let mut headers = Map::new();
        for (name, value) in request.headers {
            let name = name.to_ascii_lowercase();
            let value = if REDACTED.contains(&name.as_str()) {
                "[redacted]".to_string()
            } else {
                value.clone()
            };
            headers.insert(name, Value::String(value));
        }
        let mut query = Map::new();
        for pair in request.query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            query
                .entry(k.to_string())
                .or_insert(Value::String(v.to_string()));
        }
        // `extend`, not `collect` (which sorts: a copy of the standard sort in the wasm).
        let mut captures = Map::new();
        captures.extend(
            request
                .captures
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone()))),
        );
        json!({
            "message": self.message.clone().unwrap_or_else(|| default_message(self.status_code).to_string()),
            "request": {
                "scheme": request.scheme,
                "host": request.host,
                "method": request.method,
                "path": request.path,
                "query": query,
                "headers": headers,
                "uri_captures": captures,
                "client_ip": request.client_ip,
                "request_id": request.request_id,
            },
            "matched_route": { "name": request.route },
            "matched_service": { "name": request.service },
            "consumer": request.consumer.map(|c| json!({ "username": c })),
        })
        .to_string()
    }
}

/// What `echo` shows of a request.
pub struct EchoRequest<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// Raw query string, without `?`.
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub captures: &'a [(String, String)],
    pub client_ip: Option<&'a str>,
    pub request_id: &'a str,
    pub route: &'a str,
    pub service: &'a str,
    pub consumer: Option<&'a str>,
}

/// The message of a status when `message` is not set (Kong's wording where Kong has one).
pub fn default_message(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        408 => "Request timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Request size limit exceeded",
        429 => "API rate limit exceeded",
        500 => "An unexpected error occurred",
        501 => "Not implemented",
        502 => "Bad Gateway",
        503 => "Service unavailable",
        504 => "Gateway timeout",
        _ => "Request terminated",
    }
}

/// Whether the raw query string `query` has a parameter called `name`, as Kong's
/// `kong.request.get_query_arg` finds it: the name percent- and `+`-decoded (`?x%2Dmaintenance` is
/// `x-maintenance`), matched exactly (case-sensitive), with any value or none (`?name`, `?name=`,
/// `?name=0`; a value that is not UTF-8 once decoded counts too).
pub fn query_has(query: &str, name: &str) -> bool {
    !query.is_empty()
        && query.split('&').any(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            key == name
                || (key.contains(['%', '+'])
                    && crate::auth::percent_decode_bytes(key) == name.as_bytes())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn errors(v: Value) -> Vec<(String, String)> {
        match parse(&v) {
            Err(PluginError::Config(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_kongs() {
        let c = parse(&Value::Null).unwrap();
        assert_eq!(c.status_code, 503);
        assert!(!c.echo);
        let (t, b) = c.answer();
        assert_eq!(t, Some(JSON_TYPE));
        assert_eq!(b.unwrap(), r#"{"message":"Service unavailable"}"#);
        assert!(c.applies(|_| false, ""));
    }

    #[test]
    fn message_body_and_content_type() {
        let c = parse(&json!({"status_code": 403, "message": "Go away"})).unwrap();
        assert_eq!(c.answer().1.unwrap(), r#"{"message":"Go away"}"#);
        let c = parse(&json!({"body": "<h1>Down</h1>", "content_type": "text/html"})).unwrap();
        assert_eq!(
            c.answer(),
            (Some("text/html"), Some("<h1>Down</h1>".into()))
        );
        let c = parse(&json!({"body": "x"})).unwrap();
        assert_eq!(c.answer().0, Some(DEFAULT_BODY_TYPE));
        let c = parse(&json!({"status_code": 204})).unwrap();
        assert_eq!(c.answer(), (None, None));
    }

    #[test]
    fn trigger_limits_the_termination() {
        let c = parse(&json!({"trigger": "x-maintenance"})).unwrap();
        assert!(!c.applies(|_| false, ""));
        assert!(c.applies(|n| n == "x-maintenance", ""));
        assert!(c.applies(|_| false, "a=1&x-maintenance"));
        let none = parse(&json!({})).unwrap();
        assert!(none.applies(|_| false, ""));
    }

    /// The query parameter's name is decoded as Kong decodes it; its value does not matter.
    #[test]
    fn trigger_matches_the_decoded_query_parameter_name() {
        let t = "x-maintenance";
        for yes in [
            "x-maintenance",
            "x-maintenance=",
            "x-maintenance=0",
            "a=1&x-maintenance=yes&b",
            "x%2Dmaintenance=1",
            "%78-%6d%61intenance",
            "x-maintenance=%FF%FE",
            "x-maintenance=a=b",
        ] {
            assert!(query_has(yes, t), "{yes}");
        }
        for no in [
            "",
            "X-Maintenance=1",
            "x-maintenancex=1",
            "xx-maintenance",
            "a=x-maintenance",
            "x-maintenance%3D1",
            "x%2maintenance",
            "x-main+tenance",
        ] {
            assert!(!query_has(no, t), "{no}");
        }
        assert!(query_has("a+b=1", "a b") && query_has("a%20b", "a b"));
    }

    #[test]
    fn bad_settings_name_their_field() {
        assert_eq!(errors(json!({"status_code": 99}))[0].0, "status_code");
        assert_eq!(errors(json!({"status_code": 600}))[0].0, "status_code");
        assert_eq!(errors(json!({"status_code": "x"}))[0].0, "status_code");
        assert_eq!(errors(json!({"message": "a", "body": "b"}))[0].0, "body");
        assert_eq!(
            errors(json!({"content_type": "text/html"}))[0].0,
            "content_type"
        );
        assert_eq!(errors(json!({"trigger": "a b"}))[0].0, "trigger");
        assert_eq!(errors(json!({"trigger": ""}))[0].0, "trigger");
        // The bad value is never quoted: it may be a whole `Name: secret` line.
        let e = errors(json!({"trigger": "X-Token: sk-SECRET"}));
        assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
        assert_eq!(
            e[0].1,
            "not a valid header name (it contains ':'; letters, digits, `-`, `_`, ...)"
        );
        assert_eq!(
            errors(json!({"status_code": 204, "body": "x"}))[0].0,
            "status_code"
        );
        // As Kong: `echo` answers the request's description, never a `body`.
        assert_eq!(
            errors(json!({"echo": true, "body": "x"}))[0],
            (
                "echo".to_string(),
                "`echo` cannot be used with `body`".to_string()
            )
        );
        assert!(parse(&json!({"echo": true, "message": "m"})).is_ok());
        assert_eq!(
            errors(json!({"body": "x", "content_type": "text/html; charset=\u{20ac}"}))[0],
            (
                "content_type".to_string(),
                "not a valid header value".to_string()
            )
        );
        assert!(errors(json!({"bogus": 1}))[0].1.contains("unknown field"));
    }

    #[test]
    fn echo_describes_the_request_without_credentials() {
        let c = parse(&json!({"echo": true, "status_code": 200})).unwrap();
        let headers = vec![
            ("Authorization".to_string(), "Bearer secret".to_string()),
            ("x-a".to_string(), "1".to_string()),
        ];
        let captures = vec![("id".to_string(), "7".to_string())];
        let out = c.echo(&EchoRequest {
            scheme: "https",
            host: "api.test",
            method: "GET",
            path: "/u/7",
            query: "a=1&b=&a=2",
            headers: &headers,
            captures: &captures,
            client_ip: Some("10.0.0.1"),
            request_id: "rid",
            route: "users",
            service: "svc",
            consumer: None,
        });
        assert!(!out.contains("secret"));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["request"]["headers"]["authorization"], "[redacted]");
        assert_eq!(v["request"]["query"]["a"], "1");
        assert_eq!(v["request"]["uri_captures"]["id"], "7");
        assert_eq!(v["matched_route"]["name"], "users");
        assert_eq!(v["message"], "OK");
    }
}
