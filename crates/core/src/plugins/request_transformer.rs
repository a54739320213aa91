//! `request-transformer` (Kong's plugin of that name): changes the request before it goes upstream.
//! Headers, query string and body fields (JSON and form bodies) through Kong's rule groups (see
//! [`super::transform`]), `replace.uri` for the upstream path and `http_method` for the method.
//! Values are templates ([`crate::template`]) rendered from the request as the client sent it.
//! Pure: the glue reads the request, asks these functions what to change and applies it.

use super::multipart::{self, Multipart};
use super::transform::{self, Errors, HeaderEdit, Params, Rules, Target};
use super::PluginError;
use crate::error::{ErrorKind, GatewayError};
use crate::template::{RequestVars, Template};
use serde::Deserialize;

/// Default and largest `max_body_size` (bytes).
pub const DEFAULT_MAX_BODY_SIZE: u64 = 1024 * 1024;
pub const LARGEST_MAX_BODY_SIZE: u64 = 8 * 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "RequestTransformerGroup")
)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    querystring: Vec<String>,
    #[serde(default)]
    body: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "RequestTransformerReplace")
)]
#[serde(deny_unknown_fields)]
struct RawReplace {
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    querystring: Vec<String>,
    #[serde(default)]
    body: Vec<String>,
    #[serde(default)]
    uri: Option<String>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "RequestTransformerPluginConfig",
        description = "Settings of the `request-transformer` plugin (docs/transformations.md)."
    )
)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    http_method: Option<String>,
    #[serde(default)]
    remove: RawGroup,
    #[serde(default)]
    rename: RawGroup,
    #[serde(default)]
    replace: RawReplace,
    #[serde(default)]
    add: RawGroup,
    #[serde(default)]
    append: RawGroup,
    #[serde(default = "default_max_body_size")]
    max_body_size: u64,
}

fn default_max_body_size() -> u64 {
    DEFAULT_MAX_BODY_SIZE
}

/// A request-transformer instance, compiled.
#[derive(Debug, Clone)]
pub struct RequestTransformerConfig {
    /// The upstream request's method, when set.
    pub http_method: Option<String>,
    pub headers: Rules,
    pub query: Rules,
    pub body: Rules,
    /// The upstream path (query excluded), when set.
    pub uri: Option<Template>,
    /// Largest body buffered for body rules (bytes).
    pub max_body_size: u64,
}

/// The rules of one target from the lists of the five groups (remove, rename, replace, add, append).
fn rules(lists: [&[String]; 5], field: &str, target: Target, errors: &mut Errors) -> Rules {
    let [remove, rename, replace, add, append] = lists;
    Rules {
        remove: transform::names(remove, &format!("remove.{field}"), target, errors),
        rename: transform::renames(rename, &format!("rename.{field}"), target, errors),
        replace: transform::entries(replace, &[], &format!("replace.{field}"), target, errors),
        add: transform::entries(add, &[], &format!("add.{field}"), target, errors),
        append: transform::entries(append, &[], &format!("append.{field}"), target, errors),
    }
}

/// A body the body rules understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    /// `multipart/form-data`, with its boundary.
    Multipart(String),
}

impl RequestTransformerConfig {
    pub fn parse(config: &serde_json::Value) -> Result<Self, PluginError> {
        let raw: RawConfig = super::settings(config)?;
        let mut errors: Errors = Vec::new();
        let http_method = raw.http_method.and_then(|m| {
            if matches!(m.as_str(), "CONNECT" | "TRACK") {
                // fetch() refuses them: every request would end in a 502.
                errors.push((
                    "http_method".into(),
                    format!("{m:?} cannot be sent upstream (the Workers runtime refuses it)"),
                ));
                None
            } else if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) {
                Some(m)
            } else {
                errors.push((
                    "http_method".into(),
                    format!("{m:?} is not an upper-case method name such as \"POST\""),
                ));
                None
            }
        });
        let headers = rules(
            [
                &raw.remove.headers,
                &raw.rename.headers,
                &raw.replace.headers,
                &raw.add.headers,
                &raw.append.headers,
            ],
            "headers",
            Target::RequestHeader,
            &mut errors,
        );
        let query = rules(
            [
                &raw.remove.querystring,
                &raw.rename.querystring,
                &raw.replace.querystring,
                &raw.add.querystring,
                &raw.append.querystring,
            ],
            "querystring",
            Target::Field,
            &mut errors,
        );
        let body = rules(
            [
                &raw.remove.body,
                &raw.rename.body,
                &raw.replace.body,
                &raw.add.body,
                &raw.append.body,
            ],
            "body",
            Target::Field,
            &mut errors,
        );
        let uri = match raw.replace.uri {
            None => None,
            Some(u) => match Template::parse(&u) {
                Ok(t) if t.literal().is_some_and(|l| !l.starts_with('/')) => {
                    errors.push((
                        "replace.uri".into(),
                        "the path does not start with \"/\"".into(),
                    ));
                    None
                }
                Ok(t) => Some(t),
                Err(e) => {
                    errors.push(("replace.uri".into(), transform::template_error(&u, &e)));
                    None
                }
            },
        };
        if !(1..=LARGEST_MAX_BODY_SIZE).contains(&raw.max_body_size) {
            errors.push((
                "max_body_size".into(),
                format!("must be between 1 and {LARGEST_MAX_BODY_SIZE}"),
            ));
        }
        if !errors.is_empty() {
            return Err(PluginError::Config(errors));
        }
        Ok(RequestTransformerConfig {
            http_method,
            headers,
            query,
            body,
            uri,
            max_body_size: raw.max_body_size,
        })
    }

    /// The edits to the upstream request's headers (`get` reads the client's, by lower-case name).
    pub fn header_edits(
        &self,
        get: &dyn Fn(&str) -> Option<String>,
        vars: &RequestVars<'_>,
    ) -> Vec<HeaderEdit> {
        if self.headers.is_empty() {
            return Vec::new();
        }
        transform::apply_headers(&self.headers, get, vars)
    }

    /// The one upstream value of a request header set with `values` (lower-case `name`): cookies
    /// are joined with `; ` (RFC 6265 §5.4, RFC 9113 §8.2.3), other headers with `, ` (RFC 9110 §5.3).
    pub fn joined_value(name: &str, values: &[String]) -> String {
        values.join(if name == "cookie" { "; " } else { ", " })
    }

    /// The upstream query string after the query rules (`None`: unchanged).
    pub fn query_string(&self, query: &str, vars: &RequestVars<'_>) -> Option<String> {
        if self.query.is_empty() {
            return None;
        }
        let mut params = Params::parse(query);
        params.apply(&self.query, vars).then(|| params.encode())
    }

    /// The upstream path from `replace.uri` (`None`: not set). Characters a path cannot hold are
    /// percent-encoded; a path with a dot segment in any spelling is refused (`InvalidPath`), like
    /// a routed one.
    pub fn path(&self, vars: &RequestVars<'_>) -> Option<Result<String, GatewayError>> {
        let t = self.uri.as_ref()?;
        let rendered = t.render(vars);
        let mut path = String::with_capacity(rendered.len() + 1);
        if !rendered.starts_with('/') {
            path.push('/');
        }
        for b in rendered.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b) {
                path.push(b as char);
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
        if let Some(segment) = crate::router::dot_segment(&path) {
            return Some(Err(GatewayError::new(
                ErrorKind::InvalidPath,
                format!(
                    "request-transformer's replace.uri gave a path with the segment {segment:?}, which would be read as '.' or '..'"
                ),
            )));
        }
        Some(Ok(path))
    }

    /// Whether the body rules apply to a body of this Content-Type, and how to read it. `None`:
    /// the body passes as it is, streamed.
    pub fn body_kind(&self, content_type: Option<&str>) -> Option<BodyKind> {
        if self.body.is_empty() {
            return None;
        }
        let ct = content_type?.to_ascii_lowercase();
        if ct.contains("application/json") {
            Some(BodyKind::Json)
        } else if ct.contains("application/x-www-form-urlencoded") {
            Some(BodyKind::Form)
        } else {
            content_type
                .and_then(multipart::boundary)
                .map(BodyKind::Multipart)
        }
    }

    /// The transformed body (`Ok(None)`: unchanged, including a JSON body that is not an object or not
    /// valid JSON, a form body that is not UTF-8 and a multipart body that is not well formed). An error
    /// when a multipart value written would contain the body's boundary.
    pub fn body(
        &self,
        kind: &BodyKind,
        bytes: &[u8],
        vars: &RequestVars<'_>,
    ) -> Result<Option<Vec<u8>>, GatewayError> {
        Ok(match kind {
            BodyKind::Json => transform::transform_json_bytes(&self.body, bytes, vars),
            BodyKind::Form => std::str::from_utf8(bytes).ok().and_then(|text| {
                let mut params = Params::parse(text);
                params
                    .apply(&self.body, vars)
                    .then(|| params.encode().into_bytes())
            }),
            BodyKind::Multipart(boundary) => match Multipart::parse(bytes, boundary) {
                Some(mut parts) => parts.apply(&self.body, vars)?.then(|| parts.encode()),
                None => None,
            },
        })
    }

    /// Whether the upstream request goes without a body (`http_method` GET, HEAD or TRACE, as Kong;
    /// RFC 9110 §9.3.8: a TRACE request has no content).
    pub fn drops_body(&self) -> bool {
        matches!(self.http_method.as_deref(), Some("GET" | "HEAD" | "TRACE"))
    }
}

/// The error for a body over `max_body_size`.
pub fn too_large(limit: u64) -> GatewayError {
    GatewayError::new(
        ErrorKind::PayloadTooLarge {
            expect_continue: false,
        },
        format!(
            "the request body is larger than {limit} bytes, the most request-transformer reads to apply its body rules"
        ),
    )
}

/// `url` (absolute, `scheme://authority/path?query`) with its path and/or query replaced.
pub fn upstream_url(url: &str, path: Option<&str>, query: Option<&str>) -> String {
    if path.is_none() && query.is_none() {
        return url.to_string();
    }
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    let (before_query, old_query) = match url[path_start..].find('?') {
        Some(i) => (&url[..path_start + i], Some(&url[path_start + i + 1..])),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len() + 32);
    match path {
        Some(p) => {
            out.push_str(&url[..path_start]);
            out.push_str(p);
        }
        None => out.push_str(before_query),
    }
    let q = match query {
        Some(q) => Some(q),
        None => old_query,
    };
    if let Some(q) = q.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn errors(config: serde_json::Value) -> Vec<(String, String)> {
        match RequestTransformerConfig::parse(&config) {
            Err(PluginError::Config(e)) => e,
            other => panic!("expected errors, got {other:?}"),
        }
    }

    #[test]
    fn a_full_configuration_transforms_headers_query_path_and_body() {
        let c = RequestTransformerConfig::parse(&json!({
            "http_method": "POST",
            "remove": {"headers": ["x-secret"], "querystring": ["debug"], "body": ["password"]},
            "rename": {"headers": ["x-old:x-new"], "querystring": ["p:page"], "body": ["user:username"]},
            "replace": {"headers": ["x-env:prod"], "querystring": ["limit:10"], "body": ["role:user"],
                        "uri": "/users/$(uri_captures.id)/profile"},
            "add": {"headers": ["x-consumer:$(consumer.username)"], "querystring": ["v:2"],
                    "body": ["source:$(headers.x-source or 'api')"]},
            "append": {"headers": ["x-tag:t2"], "querystring": ["tag:b"], "body": ["tags:new"]}
        }))
        .unwrap();
        let headers = |n: &str| match n {
            "x-secret" => Some("s".to_string()),
            "x-old" => Some("o".to_string()),
            "x-env" => Some("dev".to_string()),
            "x-tag" => Some("t1".to_string()),
            _ => None,
        };
        let captures = vec![("id".to_string(), "42".to_string())];
        let alice = Identity {
            consumer_id: "c1".into(),
            username: "alice".into(),
            ..Identity::default()
        };
        let vars = RequestVars {
            header: &headers,
            query: "debug=1&p=2&limit=100",
            captures: &captures,
            consumer: Some(&alice),
        };
        assert_eq!(
            c.header_edits(&headers, &vars),
            vec![
                HeaderEdit::Remove("x-secret".into()),
                HeaderEdit::Set("x-new".into(), vec!["o".into()]),
                HeaderEdit::Remove("x-old".into()),
                HeaderEdit::Set("x-env".into(), vec!["prod".into()]),
                HeaderEdit::Set("x-consumer".into(), vec!["alice".into()]),
                HeaderEdit::Set("x-tag".into(), vec!["t1".into(), "t2".into()]),
            ]
        );
        let q = c.query_string("debug=1&p=2&limit=100", &vars).unwrap();
        assert_eq!(q, "page=2&limit=10&v=2&tag=b");
        let path = c.path(&vars).unwrap().unwrap();
        assert_eq!(path, "/users/42/profile");
        assert_eq!(
            upstream_url("http://o:8080/base/x?debug=1", Some(&path), Some(&q)),
            "http://o:8080/users/42/profile?page=2&limit=10&v=2&tag=b"
        );
        let kind = c
            .body_kind(Some("application/json; charset=utf-8"))
            .unwrap();
        let body = c
            .body(
                &kind,
                br#"{"password":"p","user":"al","role":"admin","tags":"a"}"#,
                &vars,
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            json!({"username":"al","role":"user","source":"api","tags":["a","new"]})
        );
        let form = c
            .body(&BodyKind::Form, b"password=p&user=al&x=%20", &vars)
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(form).unwrap(),
            "username=al&x=%20&source=api&tags=new"
        );
        let kind = c
            .body_kind(Some("multipart/form-data; boundary=XyZ"))
            .unwrap();
        assert_eq!(kind, BodyKind::Multipart("XyZ".into()));
        let multipart =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nal\r\n--XyZ--\r\n";
        let form = c.body(&kind, multipart, &vars).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(form).unwrap(),
            "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nal\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"source\"\r\n\r\napi\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\nnew\r\n--XyZ--\r\n"
        );
        assert_eq!(c.body_kind(Some("multipart/form-data")), None);
        assert_eq!(c.body_kind(Some("text/plain")), None);
        assert_eq!(c.body_kind(None), None);
        assert!(!c.drops_body());
    }

    #[test]
    fn without_body_rules_no_body_is_read() {
        let c = RequestTransformerConfig::parse(&json!({"add": {"headers": ["x-a:1"]}})).unwrap();
        assert_eq!(c.body_kind(Some("application/json")), None);
        assert_eq!(c.max_body_size, DEFAULT_MAX_BODY_SIZE);
        let vars = RequestVars {
            header: &|_| None,
            query: "a=1",
            captures: &[],
            consumer: None,
        };
        assert_eq!(c.query_string("a=1", &vars), None);
        assert!(c.path(&vars).is_none());
        assert_eq!(upstream_url("http://o/x?a=1", None, None), "http://o/x?a=1");
        assert_eq!(upstream_url("http://o", Some("/y"), Some("")), "http://o/y");
    }

    #[test]
    fn replace_uri_is_confined_and_encoded() {
        let c = RequestTransformerConfig::parse(
            &json!({"replace": {"uri": "/files/$(headers.x-name)"}}),
        )
        .unwrap();
        let get = |value: &'static str| move |n: &str| (n == "x-name").then(|| value.to_string());
        let render = |value: &'static str| {
            let h = get(value);
            let vars = RequestVars {
                header: &h,
                query: "",
                captures: &[],
                consumer: None,
            };
            c.path(&vars).unwrap()
        };
        assert_eq!(render("a b?c").unwrap(), "/files/a%20b%3Fc");
        assert_eq!(render("../admin").unwrap_err().kind, ErrorKind::InvalidPath);
        assert_eq!(render("%2e%2e").unwrap_err().kind, ErrorKind::InvalidPath);
    }

    #[test]
    fn bad_configurations_name_their_paths() {
        let e = errors(json!({
            "http_method": "post",
            "add": {"headers": ["x-no-colon"], "body": ["a:$(headers.x"]},
            "replace": {"uri": "no-slash", "querystring": [":v"]},
            "remove": {"headers": ["x-forwarded-for"]},
            "max_body_size": 0
        }));
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "http_method",
                "remove.headers[0]",
                "add.headers[0]",
                "replace.querystring[0]",
                "add.body[0]",
                "replace.uri",
                "max_body_size"
            ],
            "{e:?}"
        );
        let e = errors(json!({"add": {"cookies": ["a:b"]}}));
        assert!(e[0].0.starts_with("add"), "{e:?}");
        assert!(e[0].1.contains("unknown field `cookies`"), "{e:?}");
        let e = errors(json!({"replace": {"uri": "/$(route.name)"}}));
        assert!(
            e[0].1.contains("unknown template variable \"route\""),
            "{e:?}"
        );
    }

    #[test]
    fn http_method_trace_drops_the_body_connect_and_track_are_refused() {
        let c = RequestTransformerConfig::parse(&json!({"http_method": "TRACE"})).unwrap();
        assert!(c.drops_body());
        let c = RequestTransformerConfig::parse(&json!({"http_method": "PATCH"})).unwrap();
        assert!(!c.drops_body());
        for m in ["CONNECT", "TRACK"] {
            let Err(PluginError::Config(e)) =
                RequestTransformerConfig::parse(&json!({ "http_method": m }))
            else {
                panic!("{m} accepted")
            };
            assert_eq!(e[0].0, "http_method", "{e:?}");
        }
    }

    #[test]
    fn appended_cookies_are_joined_with_a_semicolon() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            RequestTransformerConfig::joined_value("cookie", &v(&["a=1", "b=2"])),
            "a=1; b=2"
        );
        assert_eq!(
            RequestTransformerConfig::joined_value("x-tag", &v(&["t1", "t2"])),
            "t1, t2"
        );
        assert_eq!(
            RequestTransformerConfig::joined_value("cookie", &v(&["only=1"])),
            "only=1"
        );
    }
}
