//! `response-transformer` (Kong's plugin of that name): changes the response before the client gets
//! it. Header rules run when the response headers are known (Kong's header_filter); `json` rules on
//! the top-level keys of a JSON body (Kong's body_filter), with `json_types` for numbers and booleans.
//! Values are templates ([`crate::template`]) rendered from the request. Pure: the glue applies.

use super::transform::{self, Errors, HeaderEdit, JsonType, Rules, Target};
use super::PluginError;
use crate::template::RequestVars;
use serde::Deserialize;

pub use super::request_transformer::{DEFAULT_MAX_BODY_SIZE, LARGEST_MAX_BODY_SIZE};

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "ResponseTransformerGroup")
)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    json: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "ResponseTransformerTypedGroup")
)]
#[serde(deny_unknown_fields)]
struct RawTyped {
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    json: Vec<String>,
    #[serde(default)]
    json_types: Vec<JsonType>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "ResponseTransformerAllow")
)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    #[serde(default)]
    json: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "ResponseTransformerPluginConfig",
        description = "Settings of the `response-transformer` plugin (docs/transformations.md)."
    )
)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    remove: RawGroup,
    #[serde(default)]
    rename: RawGroup,
    #[serde(default)]
    replace: RawTyped,
    #[serde(default)]
    add: RawTyped,
    #[serde(default)]
    append: RawTyped,
    #[serde(default)]
    allow: RawAllow,
    #[serde(default = "default_max_body_size")]
    max_body_size: u64,
}

fn default_max_body_size() -> u64 {
    DEFAULT_MAX_BODY_SIZE
}

/// A response-transformer instance, compiled.
#[derive(Debug, Clone)]
pub struct ResponseTransformerConfig {
    pub headers: Rules,
    pub json: Rules,
    /// `allow.json`: when not empty, the only top-level keys kept (applied after `append`, as Kong).
    pub allow: Vec<String>,
    /// Largest body buffered for `json` rules (bytes); a larger one passes untouched.
    pub max_body_size: u64,
}

impl ResponseTransformerConfig {
    pub fn parse(config: &serde_json::Value) -> Result<Self, PluginError> {
        let raw: RawConfig = super::settings(config)?;
        let mut errors: Errors = Vec::new();
        let e = &mut errors;
        let h = Target::ResponseHeader;
        let headers = Rules {
            remove: transform::names(&raw.remove.headers, "remove.headers", h, e),
            rename: transform::renames(&raw.rename.headers, "rename.headers", h, e),
            replace: transform::entries(&raw.replace.headers, &[], "replace.headers", h, e),
            add: transform::entries(&raw.add.headers, &[], "add.headers", h, e),
            append: transform::entries(&raw.append.headers, &[], "append.headers", h, e),
        };
        let f = Target::Field;
        let json = Rules {
            remove: transform::names(&raw.remove.json, "remove.json", f, e),
            rename: transform::renames(&raw.rename.json, "rename.json", f, e),
            replace: transform::entries(
                &raw.replace.json,
                &raw.replace.json_types,
                "replace.json",
                f,
                e,
            ),
            add: transform::entries(&raw.add.json, &raw.add.json_types, "add.json", f, e),
            append: transform::entries(
                &raw.append.json,
                &raw.append.json_types,
                "append.json",
                f,
                e,
            ),
        };
        let allow = transform::names(&raw.allow.json, "allow.json", f, e);
        if !(1..=LARGEST_MAX_BODY_SIZE).contains(&raw.max_body_size) {
            errors.push((
                "max_body_size".into(),
                format!("must be between 1 and {LARGEST_MAX_BODY_SIZE}"),
            ));
        }
        if !errors.is_empty() {
            return Err(PluginError::Config(errors));
        }
        Ok(ResponseTransformerConfig {
            headers,
            json,
            allow,
            max_body_size: raw.max_body_size,
        })
    }

    /// The edits to the response headers (`get` reads the origin's, by lower-case name).
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

    /// Whether the `json` rules apply to a response of this Content-Type (Kong: it contains
    /// `application/json`). When not, the body streams through untouched.
    pub fn json_applies(&self, content_type: Option<&str>) -> bool {
        (!self.json.is_empty() || !self.allow.is_empty())
            && content_type.is_some_and(transform::is_json)
    }

    /// The transformed body (`None`: unchanged; also when it is not a JSON object, an empty body
    /// included).
    pub fn json_body(&self, bytes: &[u8], vars: &RequestVars<'_>) -> Option<Vec<u8>> {
        self.json_edits(vars).transform_response_bytes(bytes)
    }

    /// The `json` rules rendered for one request, to apply to its response body once it is read
    /// ([`transform::JsonEdits::transform_response_bytes`]: the same result as [`Self::json_body`]).
    pub fn json_edits(&self, vars: &RequestVars<'_>) -> transform::JsonEdits {
        transform::JsonEdits::render(&self.json, vars).allowing(&self.allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn headers_and_json_with_types() {
        let c = ResponseTransformerConfig::parse(&json!({
            "remove": {"headers": ["server"], "json": ["internal"]},
            "rename": {"headers": ["x-old:x-new"], "json": ["old:new"]},
            "replace": {"headers": ["x-powered-by:edgegate"], "json": ["count:0"], "json_types": ["number"]},
            "add": {"headers": ["x-user:$(consumer.username or 'anonymous')"],
                    "json": ["ok:true", "version:2", "via:$(headers.x-via)"],
                    "json_types": ["boolean", "number"]},
            "append": {"headers": ["set-cookie:b=2"], "json": ["tags:new"]}
        }))
        .unwrap();
        let origin = |n: &str| match n {
            "server" => Some("nginx".to_string()),
            "x-old" => Some("1".to_string()),
            "x-powered-by" => Some("php".to_string()),
            "set-cookie" => Some("a=1".to_string()),
            _ => None,
        };
        let request = |n: &str| (n == "x-via").then(|| "test".to_string());
        let vars = RequestVars {
            header: &request,
            query: "",
            captures: &[],
            consumer: None,
        };
        assert_eq!(
            c.header_edits(&origin, &vars),
            vec![
                HeaderEdit::Remove("server".into()),
                HeaderEdit::Set("x-new".into(), vec!["1".into()]),
                HeaderEdit::Remove("x-old".into()),
                HeaderEdit::Set("x-powered-by".into(), vec!["edgegate".into()]),
                HeaderEdit::Set("x-user".into(), vec!["anonymous".into()]),
                HeaderEdit::Set("set-cookie".into(), vec!["a=1".into(), "b=2".into()]),
            ]
        );
        assert!(c.json_applies(Some("application/json; charset=utf-8")));
        assert!(!c.json_applies(Some("text/html")));
        assert!(!c.json_applies(None));
        let out = c
            .json_body(br#"{"internal":1,"old":"o","count":"9","tags":"a"}"#, &vars)
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
            json!({"new":"o","count":0,"ok":true,"version":2,"via":"test","tags":["a","new"]})
        );
        assert_eq!(c.json_body(b"not json", &vars), None);
        // Rendered first and applied later: the same body.
        let rendered = c
            .json_edits(&vars)
            .transform_response_bytes(br#"{"internal":1,"old":"o","count":"9","tags":"a"}"#)
            .unwrap();
        assert_eq!(rendered, out);
        assert_eq!(c.json_edits(&vars).transform_response_bytes(b"[1]"), None);
        // An empty response body is not a JSON object: untouched (a request body counts as `{}`).
        assert_eq!(c.json_body(b"", &vars), None);
        assert_eq!(c.json_edits(&vars).transform_response_bytes(b" \n"), None);
        assert!(c.json_edits(&vars).transform_bytes(b"").is_some());
    }

    #[test]
    fn allow_json_keeps_only_the_listed_keys_after_the_other_rules() {
        let c = ResponseTransformerConfig::parse(&json!({
            "add": {"json": ["added:1"]},
            "allow": {"json": ["id", "added", "absent"]}
        }))
        .unwrap();
        let none = |_: &str| None;
        let vars = RequestVars {
            header: &none,
            query: "",
            captures: &[],
            consumer: None,
        };
        assert!(c.json_applies(Some("application/json")));
        let out = c.json_body(br#"{"id":1,"secret":"s"}"#, &vars).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
            json!({"id":1,"added":"1"})
        );
        let only = ResponseTransformerConfig::parse(&json!({"allow": {"json": ["id"]}})).unwrap();
        assert!(only.json_applies(Some("application/json")));
        assert_eq!(only.json_body(br#"{"id":1}"#, &vars), None);
        assert_eq!(only.json_body(br#"[{"x":1}]"#, &vars), None);
        let Err(PluginError::Config(e)) =
            ResponseTransformerConfig::parse(&json!({"allow": {"json": [""], "headers": []}}))
        else {
            panic!("accepted")
        };
        assert!(e[0].1.contains("unknown field `headers`"), "{e:?}");
    }

    #[test]
    fn bad_configurations_name_their_paths() {
        let Err(PluginError::Config(e)) = ResponseTransformerConfig::parse(&json!({
            "add": {"json": ["n:x", "b"], "json_types": ["number", "string", "boolean"]},
            "append": {"headers": ["content-length:1"]}
        })) else {
            panic!("accepted")
        };
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "append.headers[0]",
                "add.json[0]",
                "add.json[1]",
                "add.json_types"
            ],
            "{e:?}"
        );
        let Err(PluginError::Config(e)) =
            ResponseTransformerConfig::parse(&json!({"add": {"json_types": ["int"]}}))
        else {
            panic!("accepted")
        };
        assert!(e[0].0.starts_with("add.json_types"), "{e:?}");
        assert!(e[0].1.contains("unknown variant `int`"), "{e:?}");
        let Err(PluginError::Config(e)) =
            ResponseTransformerConfig::parse(&json!({"add": {"querystring": ["a:b"]}}))
        else {
            panic!("accepted")
        };
        assert!(e[0].1.contains("unknown field `querystring`"), "{e:?}");
    }
}
