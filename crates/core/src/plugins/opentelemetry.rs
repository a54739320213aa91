//! `opentelemetry` (Kong's plugin of that name): one span per request, exported after the response
//! to an OTLP/HTTP collector, encoded as OTLP JSON (docs/observability.md). This module holds the
//! settings (Kong's option names), their validation, the span context of a request (which trace,
//! which span, sampled or not) and the OTLP JSON body; the glue (`src/plugins/opentelemetry.rs`)
//! passes in randomness and time and sends the body with `ctx.waitUntil`.

use crate::plugins::{settings, PluginError};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Kong's `header_type` values edgegate accepts (all read and write W3C `traceparent`).
const HEADER_TYPES: [&str; 3] = ["preserve", "ignore", "w3c"];

/// Kong's `propagation` record.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "OpentelemetryPropagation")
)]
#[serde(deny_unknown_fields)]
pub(crate) struct Propagation {
    /// Formats read from the client: `["w3c"]` (the default) or `[]` (always a new trace).
    #[serde(default)]
    extract: Option<Vec<String>>,
    /// Formats written upstream: only `w3c` and `preserve` (`traceparent` is always sent).
    #[serde(default)]
    inject: Option<Vec<String>>,
    /// Request headers removed before the request goes upstream.
    #[serde(default)]
    clear: Option<Vec<String>>,
    /// Only `w3c`.
    #[serde(default)]
    default_format: Option<String>,
}

/// The `opentelemetry` settings as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "OpentelemetryPluginConfig",
        description = "Settings of the `opentelemetry` plugin (docs/observability.md)."
    )
)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// The collector's OTLP/HTTP traces URL (`http` or `https`), e.g. `http://collector:4318/v1/traces`.
    #[serde(default)]
    traces_endpoint: Option<String>,
    /// Kong's deprecated name of `traces_endpoint`.
    #[serde(default)]
    endpoint: Option<String>,
    /// Kong's logs export: not supported (refused).
    #[serde(default)]
    logs_endpoint: Option<String>,
    /// Extra headers sent to the collector.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Resource attributes (`service.name` defaults to `edgegate`).
    #[serde(default)]
    resource_attributes: BTreeMap<String, String>,
    /// Accepted for Kong compatibility, unused (one export per request).
    #[serde(default)]
    #[allow(dead_code)]
    queue: Option<Map<String, Value>>,
    /// Accepted for Kong compatibility, unused.
    #[serde(default)]
    #[allow(dead_code)]
    batch_span_count: Option<u64>,
    /// Accepted for Kong compatibility, unused.
    #[serde(default)]
    #[allow(dead_code)]
    batch_flush_delay: Option<u64>,
    /// Milliseconds; the three timeouts add up to the time one export may take.
    #[serde(default = "default_connect_timeout")]
    connect_timeout: u64,
    #[serde(default = "default_send_timeout")]
    send_timeout: u64,
    #[serde(default = "default_send_timeout")]
    read_timeout: u64,
    /// A response header that gets the trace id.
    #[serde(default)]
    http_response_header_for_traceid: Option<String>,
    /// Kong's deprecated `header_type`: `preserve`, `w3c` or `ignore`.
    #[serde(default)]
    header_type: Option<String>,
    /// Probability (0 to 1) that a new trace is sampled; default 1.
    #[serde(default)]
    sampling_rate: Option<f64>,
    #[serde(default)]
    propagation: Option<Propagation>,
}

fn default_connect_timeout() -> u64 {
    1000
}
fn default_send_timeout() -> u64 {
    5000
}

/// A compiled `opentelemetry` config.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    pub endpoint: String,
    /// Extra headers to the collector, names in lower case, in name order.
    pub headers: Vec<(String, String)>,
    /// Resource attributes, `service.name` included, in name order.
    pub resource_attributes: Vec<(String, String)>,
    /// connect + send + read timeouts (ms): how long one export may take.
    pub timeout_ms: u64,
    /// Lower-case name of the response header that gets the trace id.
    pub traceid_header: Option<String>,
    /// Whether the client's `traceparent` is continued (false: `header_type: ignore`, `extract: []`).
    pub extract: bool,
    /// Probability that a new trace is sampled.
    pub sampling_rate: f64,
    /// Request headers removed before the request goes upstream (lower case).
    pub clear: Vec<String>,
}

fn err(path: &str, message: impl Into<String>) -> PluginError {
    PluginError::Config(vec![(path.into(), message.into())])
}

/// Parse and validate an `opentelemetry` config (the registry's parser).
pub fn parse(config: &Value) -> Result<OtelConfig, PluginError> {
    let s = settings::<Settings>(config)?;
    if s.logs_endpoint.is_some() {
        return Err(err(
            "logs_endpoint",
            "not supported: edgegate exports traces only; leave it out",
        ));
    }
    let endpoint = match (&s.traces_endpoint, &s.endpoint) {
        (Some(_), Some(_)) => {
            return Err(err(
                "endpoint",
                "give `traces_endpoint` or its deprecated name `endpoint`, not both",
            ))
        }
        (Some(e), None) => endpoint("traces_endpoint", e)?,
        (None, Some(e)) => endpoint("endpoint", e)?,
        (None, None) => return Err(err(
            "traces_endpoint",
            "required: the collector's OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces",
        )),
    };
    let mut headers = Vec::new();
    for (name, value) in &s.headers {
        if !crate::proxy::is_token(name) {
            return Err(err("headers", "a header name is not a valid HTTP token"));
        }
        let lower = name.to_ascii_lowercase();
        if ["host", "content-length", "content-type"].contains(&lower.as_str()) {
            return Err(err(
                &format!("headers.{name}"),
                "cannot be set here (Host, Content-Length and Content-Type come from the \
                 endpoint and the body)",
            ));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(err(
                "headers",
                "a header value cannot contain CR, LF or NUL",
            ));
        }
        headers.push((lower, value.clone()));
    }
    let mut resource_attributes = vec![("service.name".to_string(), "edgegate".to_string())];
    for (key, value) in &s.resource_attributes {
        if key.is_empty() || value.is_empty() {
            return Err(err(
                "resource_attributes",
                "a resource attribute needs a non-empty name and value",
            ));
        }
        resource_attributes.retain(|(k, _)| k != key);
        resource_attributes.push((key.clone(), value.clone()));
    }
    resource_attributes.sort();
    let mut timeouts = 0u64;
    for (name, ms) in [
        ("connect_timeout", s.connect_timeout),
        ("send_timeout", s.send_timeout),
        ("read_timeout", s.read_timeout),
    ] {
        if ms == 0 || ms > 2_147_483_646 {
            return Err(err(name, "must be 1 to 2147483646 (milliseconds)"));
        }
        timeouts = timeouts.saturating_add(ms);
    }
    let traceid_header = match &s.http_response_header_for_traceid {
        None => None,
        Some(h) if crate::proxy::is_token(h) => Some(h.to_ascii_lowercase()),
        Some(_) => {
            return Err(err(
                "http_response_header_for_traceid",
                "not a valid header name (letters, digits, `-`, `_`, ...)",
            ))
        }
    };
    let mut extract = true;
    if let Some(t) = &s.header_type {
        if !HEADER_TYPES.contains(&t.as_str()) {
            return Err(err(
                "header_type",
                "not supported: use `preserve`, `w3c` or `ignore` (edgegate reads and writes \
                 W3C traceparent only)",
            ));
        }
        extract = t != "ignore";
    }
    let p = s.propagation.clone().unwrap_or_default();
    if let Some(formats) = &p.extract {
        if formats.iter().any(|f| f != "w3c") {
            return Err(err(
                "propagation.extract",
                "only `w3c` is supported (edgegate reads W3C traceparent only); `[]` starts a \
                 new trace for every request",
            ));
        }
        extract = extract && !formats.is_empty();
    }
    if let Some(formats) = &p.inject {
        if formats.iter().any(|f| f != "w3c" && f != "preserve") {
            return Err(err(
                "propagation.inject",
                "only `w3c` and `preserve` are supported (edgegate always sends W3C traceparent)",
            ));
        }
    }
    if p.default_format.as_deref().is_some_and(|f| f != "w3c") {
        return Err(err("propagation.default_format", "only `w3c` is supported"));
    }
    let mut clear = Vec::new();
    for name in p.clear.iter().flatten() {
        if !crate::proxy::is_token(name) {
            return Err(err(
                "propagation.clear",
                "a header name is not a valid HTTP token",
            ));
        }
        let lower = name.to_ascii_lowercase();
        if lower == "traceparent" {
            return Err(err(
                "propagation.clear",
                "`traceparent` cannot be cleared: the gateway always sends its own",
            ));
        }
        clear.push(lower);
    }
    let sampling_rate = s.sampling_rate.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sampling_rate) {
        return Err(err("sampling_rate", "must be between 0 and 1"));
    }
    Ok(OtelConfig {
        endpoint,
        headers,
        resource_attributes,
        timeout_ms: timeouts,
        traceid_header,
        extract,
        sampling_rate,
        clear,
    })
}

/// An absolute `http://` or `https://` URL with a host, without user information or fragment.
fn endpoint(path: &str, url: &str) -> Result<String, PluginError> {
    let bad = || {
        err(
            path,
            "expected an absolute http:// or https:// URL with a host",
        )
    };
    if url.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(bad());
    }
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &url[7..]
    } else if lower.starts_with("https://") {
        &url[8..]
    } else {
        return Err(bad());
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains('@') {
        return Err(err(
            path,
            "user information in the URL is not supported: send credentials with `headers`",
        ));
    }
    if url.contains('#') {
        return Err(err(path, "a URL fragment is not sent; leave it out"));
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// The span of a request: its trace, its own id, its parent, whether it is sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanContext {
    /// 32 lower-case hex digits.
    pub trace_id: String,
    /// 16 lower-case hex digits: the parent id the origin sees in `traceparent`.
    pub span_id: String,
    /// The client's span id, when its `traceparent` was continued.
    pub parent_span_id: Option<String>,
    /// The trace flags (2 hex digits) sent upstream.
    pub flags: String,
}

impl SpanContext {
    /// Whether the span is sampled (flag bit 0).
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.flags, 16).is_ok_and(|f| f & 1 == 1)
    }

    /// The `traceparent` sent upstream.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }

    /// The context whose `traceparent` ([`SpanContext::traceparent`]) is `tp`, with `parent`;
    /// `None` when `tp` is not one.
    pub fn resume(tp: &str, parent: Option<String>) -> Option<SpanContext> {
        let mut parts = tp.split('-');
        let (_, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(trace, 32) && hex(span, 16) && hex(flags, 2)).then(|| SpanContext {
            trace_id: trace.to_string(),
            span_id: span.to_string(),
            parent_span_id: parent,
            flags: flags.to_string(),
        })
    }
}

/// The span context of a request: the client's trace continued (when `extract` and its
/// `traceparent` is valid, by the same rules as the proxy's, `crate::proxy::upstream_traceparent`),
/// with its sampled flag; otherwise a new trace, sampled when `draw` (uniform in [0, 1)) is below
/// `sampling_rate`. `random` gives the ids, as for the proxy.
pub fn span_context(
    client: Option<&str>,
    extract: bool,
    sampling_rate: f64,
    random: [u8; 24],
    draw: f64,
) -> SpanContext {
    let client = client.filter(|_| extract);
    let (tp, continued) = crate::proxy::upstream_traceparent(client, random);
    let parts: Vec<&str> = tp.split('-').collect();
    let (trace_id, span_id) = (parts[1].to_string(), parts[2].to_string());
    if continued {
        let parent = client
            .and_then(|c| c.trim().split('-').nth(2))
            .map(str::to_string);
        SpanContext {
            trace_id,
            span_id,
            parent_span_id: parent,
            flags: parts[3].to_string(),
        }
    } else {
        let sampled = draw < sampling_rate;
        SpanContext {
            trace_id,
            span_id,
            parent_span_id: None,
            flags: if sampled { "01" } else { "00" }.to_string(),
        }
    }
}

/// What the glue knows about a request once it is settled.
pub struct Request<'a> {
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The host the client asked for (lower case, no port).
    pub host: &'a str,
    /// The request path, without the query string.
    pub path: &'a str,
    pub user_agent: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub status: u16,
    /// The gateway's error code, when the gateway answered with an error.
    pub error: Option<&'a str>,
    pub route: &'a str,
    pub service: &'a str,
    pub consumer: Option<&'a str>,
    pub request_id: &'a str,
    /// Start and end (ms since the epoch).
    pub start_ms: f64,
    pub end_ms: f64,
}

fn string_attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn nanos(ms: f64) -> String {
    ((ms.max(0.0) * 1e6) as u64).to_string()
}

/// The OTLP/HTTP JSON body (`ExportTraceServiceRequest`) with the request's span.
pub fn export_body(config: &OtelConfig, span: &SpanContext, r: &Request<'_>) -> Value {
    let mut attributes = vec![
        string_attr("http.request.method", r.method),
        string_attr("url.scheme", r.scheme),
        string_attr("url.path", r.path),
        string_attr("server.address", r.host),
        string_attr("http.route", r.route),
        json!({"key": "http.response.status_code", "value": {"intValue": r.status.to_string()}}),
    ];
    if let Some(ip) = r.client_ip {
        attributes.push(string_attr("client.address", ip));
    }
    if let Some(ua) = r.user_agent {
        attributes.push(string_attr("user_agent.original", ua));
    }
    attributes.push(string_attr("edgegate.route", r.route));
    attributes.push(string_attr("edgegate.service", r.service));
    if let Some(c) = r.consumer {
        attributes.push(string_attr("edgegate.consumer", c));
    }
    attributes.push(string_attr("edgegate.request_id", r.request_id));
    let status = if r.status >= 500 {
        match r.error {
            Some(e) => json!({"code": 2, "message": e}),
            None => json!({"code": 2}),
        }
    } else {
        json!({})
    };
    let mut s = json!({
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "name": format!("{} {}", r.method, r.route),
        "kind": 2,
        "startTimeUnixNano": nanos(r.start_ms),
        "endTimeUnixNano": nanos(r.end_ms.max(r.start_ms)),
        "attributes": attributes,
        "status": status,
    });
    if let Some(p) = &span.parent_span_id {
        s["parentSpanId"] = p.clone().into();
    }
    let resource: Vec<Value> = config
        .resource_attributes
        .iter()
        .map(|(k, v)| string_attr(k, v))
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": resource},
            "scopeSpans": [{
                "scope": {"name": "edgegate", "version": env!("CARGO_PKG_VERSION")},
                "spans": [s],
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::test_support::path_of;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn defaults_and_kong_options() {
        let c = parse(&json!({"traces_endpoint": "http://c:4318/v1/traces"})).unwrap();
        assert_eq!(c.endpoint, "http://c:4318/v1/traces");
        assert_eq!(c.timeout_ms, 11_000);
        assert_eq!(c.sampling_rate, 1.0);
        assert!(c.extract);
        assert_eq!(
            c.resource_attributes,
            vec![("service.name".to_string(), "edgegate".to_string())]
        );
        let c = parse(
            &json!({"endpoint": "https://c/v1/traces", "headers": {"X-Token": "t"},
            "resource_attributes": {"service.name": "gw", "deployment.environment": "prod"},
            "queue": {"max_batch_size": 10}, "batch_span_count": 200, "batch_flush_delay": 3,
            "connect_timeout": 1, "send_timeout": 2, "read_timeout": 3, "sampling_rate": 0.5,
            "http_response_header_for_traceid": "X-Trace-Id", "header_type": "preserve",
            "propagation": {"extract": ["w3c"], "inject": ["preserve"], "default_format": "w3c",
                "clear": ["X-B3-TraceId"]}}),
        )
        .unwrap();
        assert_eq!(c.timeout_ms, 6);
        assert_eq!(c.headers, vec![("x-token".to_string(), "t".to_string())]);
        assert_eq!(
            c.resource_attributes[1],
            ("service.name".into(), "gw".into())
        );
        assert_eq!(c.traceid_header.as_deref(), Some("x-trace-id"));
        assert_eq!(c.clear, vec!["x-b3-traceid".to_string()]);
        assert!(
            !parse(&json!({"endpoint": "http://c", "header_type": "ignore"}))
                .unwrap()
                .extract
        );
        let c = parse(&json!({"endpoint": "http://c", "propagation": {"extract": []}})).unwrap();
        assert!(!c.extract);
    }

    #[test]
    fn invalid_settings_name_their_path() {
        let ok = "http://c/v1/traces";
        assert_eq!(path_of(parse, json!({})), "traces_endpoint");
        assert_eq!(
            path_of(parse, json!({"traces_endpoint": "ftp://c"})),
            "traces_endpoint"
        );
        assert_eq!(
            path_of(parse, json!({"endpoint": "http://u:p@c/"})),
            "endpoint"
        );
        assert_eq!(
            path_of(parse, json!({"endpoint": ok, "traces_endpoint": ok})),
            "endpoint"
        );
        assert_eq!(
            path_of(parse, json!({"traces_endpoint": ok, "logs_endpoint": ok})),
            "logs_endpoint"
        );
        assert_eq!(
            path_of(parse, json!({"traces_endpoint": ok, "sampling_rate": 2})),
            "sampling_rate"
        );
        assert_eq!(
            path_of(parse, json!({"traces_endpoint": ok, "header_type": "b3"})),
            "header_type"
        );
        assert_eq!(
            path_of(
                parse,
                json!({"traces_endpoint": ok, "propagation": {"extract": ["b3"]}})
            ),
            "propagation.extract"
        );
        assert_eq!(
            path_of(
                parse,
                json!({"traces_endpoint": ok, "propagation": {"inject": ["datadog"]}})
            ),
            "propagation.inject"
        );
        assert_eq!(
            path_of(
                parse,
                json!({"traces_endpoint": ok, "propagation": {"default_format": "b3"}})
            ),
            "propagation.default_format"
        );
        assert_eq!(
            path_of(
                parse,
                json!({"traces_endpoint": ok, "propagation": {"clear": ["traceparent"]}})
            ),
            "propagation.clear"
        );
        assert_eq!(
            path_of(
                parse,
                json!({"traces_endpoint": ok, "headers": {"Host": "x"}})
            ),
            "headers.Host"
        );
        assert_eq!(
            path_of(
                parse,
                json!({"traces_endpoint": ok, "headers": {"a b": "x"}})
            ),
            "headers"
        );
        assert_eq!(
            path_of(parse, json!({"traces_endpoint": ok, "read_timeout": 0})),
            "read_timeout"
        );
        assert_eq!(
            path_of(
                parse,
                json!({"traces_endpoint": ok, "http_response_header_for_traceid": "a: b"})
            ),
            "http_response_header_for_traceid"
        );
        assert_eq!(
            path_of(parse, json!({"traces_endpoint": ok, "bogus": 1})),
            "bogus"
        );
    }

    #[test]
    fn span_context_continues_or_starts_a_trace() {
        let client = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let c = span_context(Some(client), true, 0.0, [7; 24], 0.9);
        assert_eq!(c.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(c.span_id, "0707070707070707");
        assert_eq!(c.parent_span_id.as_deref(), Some("b7ad6b7169203331"));
        assert!(c.sampled());
        assert_eq!(
            c.traceparent(),
            "00-0af7651916cd43dd8448eb211c80319c-0707070707070707-01"
        );
        let unsampled = client.replace("-01", "-00");
        assert!(!span_context(Some(&unsampled), true, 1.0, [7; 24], 0.0).sampled());
        // Not extracted, or malformed: a new trace, sampled by the rate.
        let c = span_context(Some(client), false, 1.0, [9; 24], 0.5);
        assert_eq!(c.trace_id, "09".repeat(16));
        assert_eq!(c.parent_span_id, None);
        assert!(c.sampled());
        assert!(!span_context(Some("garbage"), true, 0.0, [9; 24], 0.0).sampled());
        assert!(!span_context(None, true, 0.5, [9; 24], 0.5).sampled());
        assert!(span_context(None, true, 0.5, [9; 24], 0.49).sampled());
    }

    /// W3C Trace Context validity (docs/observability.md): a higher version is read for its first
    /// four fields; `ff`, upper-case hex, zero ids and a version-00 value with more fields are not.
    #[test]
    fn traceparent_validity_is_w3c() {
        let (trace, span) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
        let continued = |tp: &str| span_context(Some(tp), true, 0.0, [7; 24], 0.9).parent_span_id;
        for tp in [
            format!("00-{trace}-{span}-01"),
            format!("01-{trace}-{span}-01"),
            format!("cc-{trace}-{span}-01-more-fields"),
        ] {
            assert_eq!(continued(&tp).as_deref(), Some(span), "{tp}");
        }
        for tp in [
            format!("ff-{trace}-{span}-01"),
            format!("00-{}-{span}-01", "0".repeat(32)),
            format!("00-{trace}-{}-01", "0".repeat(16)),
            format!("00-{}-{span}-01", trace.to_uppercase()),
            format!("00-{trace}-{span}-01-extra"),
            format!("00-{trace}-{span}-1"),
            format!("cc-{trace}-{span}-01x"),
        ] {
            assert_eq!(continued(&tp), None, "{tp}");
        }
        let c = span_context(
            Some(&format!("00-{trace}-{span}-02")),
            true,
            1.0,
            [7; 24],
            0.0,
        );
        assert!(!c.sampled(), "bit 0 unset: not sampled, whatever the rate");
        assert_eq!(c.flags, "02");
    }

    #[test]
    fn export_body_has_the_otlp_json_shape() {
        let config = parse(&json!({"traces_endpoint": "http://c/v1/traces"})).unwrap();
        let span = span_context(
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            true,
            1.0,
            [7; 24],
            0.0,
        );
        let r = Request {
            method: "GET",
            scheme: "https",
            host: "api.example",
            path: "/orders/1",
            user_agent: Some("curl/8"),
            client_ip: Some("203.0.113.7"),
            status: 502,
            error: Some("upstream_unreachable"),
            route: "orders",
            service: "orders-api",
            consumer: None,
            request_id: "rid",
            start_ms: 1_700_000_000_000.0,
            end_ms: 1_700_000_000_012.0,
        };
        let body = export_body(&config, &span, &r);
        let s = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(s["parentSpanId"], "b7ad6b7169203331");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["name"], "GET orders");
        assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(s["endTimeUnixNano"], "1700000000012000000");
        assert_eq!(
            s["status"],
            json!({"code": 2, "message": "upstream_unreachable"})
        );
        assert_eq!(
            body["resourceSpans"][0]["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "edgegate"}})
        );
        assert!(s["attributes"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": "http.response.status_code", "value": {"intValue": "502"}})));
    }
}
