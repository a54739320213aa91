//! What `request-transformer` and `response-transformer` share: Kong's rule groups (remove, rename,
//! replace, add, append, applied in that order), their "name:value" entries, and the pure edits on
//! headers, parameter lists (query strings, form bodies) and JSON objects.
//!
//! Kong's semantics, exactly (docs/transformations.md#order-of-operations):
//! - `remove`: the name goes (all its values).
//! - `rename` `old:new`: when `old` is present, `new` takes its value(s) (replacing any `new`) and
//!   `old` goes; nothing when `old` is absent.
//! - `replace` `name:value`: only when `name` is present; it then has this one value.
//! - `add` `name:value`: only when `name` is absent.
//! - `append` `name:value`: always; the value is added to those already there (a header gets one
//!   more value, a parameter one more pair, a JSON key becomes an array).

use crate::template::{RequestVars, Template};
use serde::Deserialize;
use serde_json::{Map, Value};

/// `(path relative to the plugin's config, message)` pairs.
pub type Errors = Vec<(String, String)>;

/// The JSON type of a `json` value (response-transformer's `json_types`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "JsonType")
)]
#[serde(rename_all = "lowercase")]
pub enum JsonType {
    #[default]
    String,
    Number,
    Boolean,
}

/// One `name:value` entry, its value a template.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub value: Template,
    pub json_type: JsonType,
}

/// The five rule groups for one target (headers, query string, body, JSON).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub remove: Vec<String>,
    pub rename: Vec<(String, String)>,
    pub replace: Vec<Entry>,
    pub add: Vec<Entry>,
    pub append: Vec<Entry>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.rename.is_empty()
            && self.replace.is_empty()
            && self.add.is_empty()
            && self.append.is_empty()
    }
}

/// What a name names, for its validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A header of the upstream request.
    RequestHeader,
    /// A header of the response to the client.
    ResponseHeader,
    /// A query parameter, form field or JSON key.
    Field,
}

/// Headers the gateway owns on the upstream request: a request-transformer rule on them would be
/// undone or would break the request, so it is refused at validation.
fn request_header_refusal(name: &str) -> Option<&'static str> {
    if crate::proxy::HOP_BY_HOP.contains(&name) || crate::proxy::NOT_FORWARDED.contains(&name) {
        return Some("it is hop-by-hop and never forwarded");
    }
    match name {
        "host" => Some(
            "the upstream Host is the service's (or the client's with the route's preserve_host)",
        ),
        "content-length" => Some("it is computed from the body"),
        "x-request-id" | "via" | "traceparent" => {
            Some("the gateway sets it on every upstream request")
        }
        n if crate::proxy::FORWARDING.contains(&n) => {
            Some("the gateway sets it on every upstream request")
        }
        _ => None,
    }
}

fn response_header_refusal(name: &str) -> Option<&'static str> {
    if crate::proxy::HOP_BY_HOP.contains(&name) {
        return Some("it is hop-by-hop and never passed to the client");
    }
    (name == "content-length").then_some("it is computed from the body")
}

/// Check a name; headers come back lower case.
fn check_name(name: &str, target: Target, path: &str, errors: &mut Errors) -> Option<String> {
    if name.is_empty() {
        errors.push((path.to_string(), "the name is empty".into()));
        return None;
    }
    match target {
        Target::Field => Some(name.to_string()),
        Target::RequestHeader | Target::ResponseHeader => {
            if !crate::proxy::is_token(name) {
                // Not quoted: what is not a name may be a whole `Name: secret` line.
                errors.push((
                    path.to_string(),
                    format!("not a valid header name ({})", bad_name_char(name)),
                ));
                return None;
            }
            let lower = name.to_ascii_lowercase();
            let refusal = match target {
                Target::RequestHeader => request_header_refusal(&lower),
                _ => response_header_refusal(&lower),
            };
            if let Some(why) = refusal {
                errors.push((
                    path.to_string(),
                    format!("header {lower:?} cannot be changed here: {why}"),
                ));
                return None;
            }
            Some(lower)
        }
    }
}

/// What makes `name` (not a token) an invalid header name, without quoting it.
pub(crate) fn bad_name_char(name: &str) -> String {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    match name.chars().find(|&c| !token(c)) {
        Some(' ') => "it contains a space".into(),
        Some(c) if c.is_control() => "it contains a control character".into(),
        Some(c) if !c.is_ascii() => "it contains a non-ASCII character".into(),
        Some(c) => format!("it contains {c:?}"),
        None => "it is not a token".into(),
    }
}

/// A template error without the template's text: a value may hold a secret (`Bearer sk-...`).
pub fn template_error(text: &str, error: &str) -> String {
    let quoted = format!("template {text:?}: ");
    format!("template: {}", error.strip_prefix(&quoted).unwrap_or(error))
}

/// Split `name:value` at its first colon. The entry is never quoted in an error: without a colon
/// it may be a whole `Authorization Bearer sk-...` line.
fn split_entry<'a>(entry: &'a str, path: &str, errors: &mut Errors) -> Option<(&'a str, &'a str)> {
    match entry.split_once(':') {
        Some(pair) => Some(pair),
        None => {
            errors.push((path.to_string(), "not \"name:value\" (no colon)".into()));
            None
        }
    }
}

/// `remove` lists: names.
pub fn names(list: &[String], path: &str, target: Target, errors: &mut Errors) -> Vec<String> {
    list.iter()
        .enumerate()
        .filter_map(|(i, n)| check_name(n, target, &format!("{path}[{i}]"), errors))
        .collect()
}

/// `rename` lists: `old:new`.
pub fn renames(
    list: &[String],
    path: &str,
    target: Target,
    errors: &mut Errors,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Some((old, new)) = split_entry(entry, &at, errors) else {
            continue;
        };
        let old = check_name(old, target, &at, errors);
        let new = check_name(new, target, &at, errors);
        if let (Some(old), Some(new)) = (old, new) {
            out.push((old, new));
        }
    }
    out
}

/// `replace`, `add` and `append` lists: `name:value`, the value a template; `types` gives the JSON
/// type of each (missing: string).
pub fn entries(
    list: &[String],
    types: &[JsonType],
    path: &str,
    target: Target,
    errors: &mut Errors,
) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Some((name, value)) = split_entry(entry, &at, errors) else {
            continue;
        };
        let Some(name) = check_name(name, target, &at, errors) else {
            continue;
        };
        let value = match Template::parse(value) {
            Ok(t) => t,
            Err(e) => {
                errors.push((at, template_error(value, &e)));
                continue;
            }
        };
        let json_type = types.get(i).copied().unwrap_or_default();
        if let Some(text) = value.literal() {
            if target != Target::Field && text.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                errors.push((at, "a header value cannot contain CR, LF or NUL".into()));
                continue;
            }
            match json_type {
                JsonType::Number if number(text).is_none() => {
                    errors.push((
                        at,
                        "the value is not a number (json_types says number)".into(),
                    ));
                    continue;
                }
                JsonType::Boolean if !matches!(text, "true" | "false") => {
                    errors.push((
                        at,
                        "the value is not true or false (json_types says boolean)".into(),
                    ));
                    continue;
                }
                _ => {}
            }
        }
        out.push(Entry {
            name,
            value,
            json_type,
        });
    }
    if types.len() > list.len() {
        let types_path = path
            .rsplit_once('.')
            .map_or("json_types".to_string(), |(p, _)| format!("{p}.json_types"));
        errors.push((
            types_path,
            format!(
                "{} types for {} json entries; json_types[i] is the type of json[i]",
                types.len(),
                list.len()
            ),
        ));
    }
    out
}

fn number(text: &str) -> Option<serde_json::Number> {
    let text = text.trim();
    if let Ok(i) = text.parse::<i64>() {
        return Some(i.into());
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
}

/// What happens to one header name: it goes, or it ends with these values (in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    Remove(String),
    Set(String, Vec<String>),
}

/// Apply the header rules to headers read through `get` (lower-case name; several values joined);
/// the edits to make, one per name touched, in the order names were first touched.
pub fn apply_headers(
    rules: &Rules,
    get: &dyn Fn(&str) -> Option<String>,
    vars: &RequestVars<'_>,
) -> Vec<HeaderEdit> {
    let mut touched: Vec<(String, Option<Vec<String>>)> = Vec::new();
    fn current(
        touched: &[(String, Option<Vec<String>>)],
        get: &dyn Fn(&str) -> Option<String>,
        name: &str,
    ) -> Option<Vec<String>> {
        match touched.iter().find(|(n, _)| n == name) {
            Some((_, v)) => v.clone(),
            None => get(name).map(|v| vec![v]),
        }
    }
    fn put(touched: &mut Vec<(String, Option<Vec<String>>)>, name: &str, v: Option<Vec<String>>) {
        match touched.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => touched.push((name.to_string(), v)),
        }
    }
    for name in &rules.remove {
        put(&mut touched, name, None);
    }
    for (old, new) in &rules.rename {
        if old == new {
            continue;
        }
        if let Some(v) = current(&touched, get, old) {
            put(&mut touched, new, Some(v));
            put(&mut touched, old, None);
        }
    }
    for e in &rules.replace {
        if current(&touched, get, &e.name).is_some() {
            put(
                &mut touched,
                &e.name,
                Some(vec![header_value(&e.value, vars)]),
            );
        }
    }
    for e in &rules.add {
        if current(&touched, get, &e.name).is_none() {
            put(
                &mut touched,
                &e.name,
                Some(vec![header_value(&e.value, vars)]),
            );
        }
    }
    for e in &rules.append {
        let mut v = current(&touched, get, &e.name).unwrap_or_default();
        v.push(header_value(&e.value, vars));
        put(&mut touched, &e.name, Some(v));
    }
    touched
        .into_iter()
        .map(|(n, v)| match v {
            None => HeaderEdit::Remove(n),
            Some(v) => HeaderEdit::Set(n, v),
        })
        .collect()
}

/// A rendered header value: CR, LF and NUL (possible from a template) become spaces.
fn header_value(t: &Template, vars: &RequestVars<'_>) -> String {
    let mut v = t.render(vars);
    if v.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        v = v.replace(['\r', '\n', '\0'], " ");
    }
    v
}

/// A query string or form body as pairs, untouched pairs keeping their original encoding.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// `(decoded name, raw "name=value" text)`.
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(raw: &str) -> Params {
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let name = p.split_once('=').map_or(p, |(n, _)| n);
                let decoded = crate::auth::percent_decode(name).unwrap_or_else(|| name.to_string());
                (decoded, p.to_string())
            })
            .collect();
        Params { pairs }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (_, raw)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(raw);
        }
        out
    }

    fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    /// A new pair; `value` is bytes (a template's [`Template::render_bytes`]), so a query parameter
    /// that decodes to bytes that are not UTF-8 is encoded back to the same `%XX`.
    fn pair(name: &str, value: &[u8]) -> (String, String) {
        (
            name.to_string(),
            format!("{}={}", encode_component(name), encode_bytes(value)),
        )
    }

    /// Apply the rules; whether anything changed.
    pub fn apply(&mut self, rules: &Rules, vars: &RequestVars<'_>) -> bool {
        let before = self.pairs.clone();
        for name in &rules.remove {
            self.pairs.retain(|(n, _)| n != name);
        }
        for (old, new) in &rules.rename {
            if old == new || !self.has(old) {
                continue;
            }
            self.pairs.retain(|(n, _)| n != new);
            for p in self.pairs.iter_mut().filter(|(n, _)| n == old) {
                let value = p.1.split_once('=').map_or("", |(_, v)| v);
                let raw = if p.1.contains('=') {
                    format!("{}={value}", encode_component(new))
                } else {
                    encode_component(new)
                };
                *p = (new.clone(), raw);
            }
        }
        for e in &rules.replace {
            if let Some(first) = self.pairs.iter().position(|(n, _)| *n == e.name) {
                self.pairs[first] = Params::pair(&e.name, &e.value.render_bytes(vars));
                let mut i = 0;
                self.pairs.retain(|(n, _)| {
                    i += 1;
                    i - 1 == first || *n != e.name
                });
            }
        }
        for e in &rules.add {
            if !self.has(&e.name) {
                self.pairs
                    .push(Params::pair(&e.name, &e.value.render_bytes(vars)));
            }
        }
        for e in &rules.append {
            self.pairs
                .push(Params::pair(&e.name, &e.value.render_bytes(vars)));
        }
        self.pairs != before
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters (a space is `%20`).
pub fn encode_component(s: &str) -> String {
    encode_bytes(s.as_bytes())
}

/// [`encode_component`] for bytes (not necessarily UTF-8).
fn encode_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A JSON value of the entry's type: a number or boolean when `json_types` says so (a rendered value
/// that is not a number stays a string; a boolean is `true` only for "true", as in Kong).
fn typed(e: &Entry, vars: &RequestVars<'_>) -> Value {
    let text = e.value.render(vars);
    match e.json_type {
        JsonType::String => Value::String(text),
        JsonType::Number => number(&text).map_or(Value::String(text), Value::Number),
        JsonType::Boolean => Value::Bool(text.trim() == "true"),
    }
}

/// JSON rules with their values rendered for one request. Templates read the request, never the
/// body, so they can be rendered before the body is read (the glue renders them when the response
/// headers are known and applies them once the body has arrived, without keeping the request).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonEdits {
    remove: Vec<String>,
    rename: Vec<(String, String)>,
    replace: Vec<(String, Value)>,
    add: Vec<(String, Value)>,
    append: Vec<(String, Value)>,
    /// `allow.json` (response-transformer): when not empty, the only keys kept, after `append`.
    allow: Vec<String>,
}

impl JsonEdits {
    /// `rules` with every value rendered from `vars` (typed per `json_types`).
    pub fn render(rules: &Rules, vars: &RequestVars<'_>) -> JsonEdits {
        let typed_all = |entries: &[Entry]| -> Vec<(String, Value)> {
            entries
                .iter()
                .map(|e| (e.name.clone(), typed(e, vars)))
                .collect()
        };
        JsonEdits {
            remove: rules.remove.clone(),
            rename: rules.rename.clone(),
            replace: typed_all(&rules.replace),
            add: typed_all(&rules.add),
            append: typed_all(&rules.append),
            allow: Vec::new(),
        }
    }

    /// The same edits, then only the `allow` keys kept (none: every key).
    pub fn allowing(mut self, allow: &[String]) -> JsonEdits {
        self.allow = allow.to_vec();
        self
    }

    /// Apply the edits to a JSON object's top-level keys; whether anything changed. `append` on an
    /// absent key makes a one-element array, on an array pushes, on any other value makes `[old, new]`.
    pub fn apply(self, obj: &mut Map<String, Value>) -> bool {
        let mut changed = false;
        for name in &self.remove {
            changed |= obj.remove(name).is_some();
        }
        for (old, new) in self.rename {
            if old == new {
                continue;
            }
            if let Some(v) = obj.remove(&old) {
                obj.insert(new, v);
                changed = true;
            }
        }
        for (name, v) in self.replace {
            if let Some(slot) = obj.get_mut(&name) {
                *slot = v;
                changed = true;
            }
        }
        for (name, v) in self.add {
            if !obj.contains_key(&name) {
                obj.insert(name, v);
                changed = true;
            }
        }
        for (name, v) in self.append {
            let next = match obj.remove(&name) {
                None => Value::Array(vec![v]),
                Some(Value::Array(mut a)) => {
                    a.push(v);
                    Value::Array(a)
                }
                Some(old) => Value::Array(vec![old, v]),
            };
            obj.insert(name, next);
            changed = true;
        }
        if !self.allow.is_empty() {
            let before = obj.len();
            obj.retain(|k, _| self.allow.contains(k));
            changed |= obj.len() != before;
        }
        changed
    }

    /// A JSON body, transformed: `None` when nothing changed or the body is not a JSON object (it is
    /// then passed as it came). An empty body counts as `{}` (so `add` and `append` can fill it).
    pub fn transform_bytes(self, body: &[u8]) -> Option<Vec<u8>> {
        let mut obj = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(o)) => o,
                _ => return None,
            }
        };
        if !self.apply(&mut obj) {
            return None;
        }
        serde_json::to_vec(&Value::Object(obj)).ok()
    }
}

impl JsonEdits {
    /// A JSON response body, transformed: as [`JsonEdits::transform_bytes`], except that an empty
    /// body is not a JSON object and passes as it came (Kong's response-transformer leaves a body it
    /// cannot decode untouched; only a request body counts as `{}` when empty).
    pub fn transform_response_bytes(self, body: &[u8]) -> Option<Vec<u8>> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        self.transform_bytes(body)
    }
}

/// A JSON body, transformed (see [`JsonEdits::transform_bytes`]).
pub fn transform_json_bytes(rules: &Rules, body: &[u8], vars: &RequestVars<'_>) -> Option<Vec<u8>> {
    JsonEdits::render(rules, vars).transform_bytes(body)
}

/// Whether a Content-Type is JSON the way Kong decides it: it contains `application/json`.
pub fn is_json(content_type: &str) -> bool {
    content_type
        .to_ascii_lowercase()
        .contains("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn vars_none() -> RequestVars<'static> {
        RequestVars {
            header: &|_| None,
            query: "",
            captures: &[],
            consumer: None,
        }
    }

    fn rules(target: Target, groups: [&[&str]; 5]) -> Rules {
        let s = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut errors = Vec::new();
        let r = Rules {
            remove: names(&s(groups[0]), "remove", target, &mut errors),
            rename: renames(&s(groups[1]), "rename", target, &mut errors),
            replace: entries(&s(groups[2]), &[], "replace", target, &mut errors),
            add: entries(&s(groups[3]), &[], "add", target, &mut errors),
            append: entries(&s(groups[4]), &[], "append", target, &mut errors),
        };
        assert!(errors.is_empty(), "{errors:?}");
        r
    }

    #[test]
    fn header_rules_follow_kong_semantics_and_order() {
        let get = |n: &str| match n {
            "x-old" => Some("o".to_string()),
            "x-present" => Some("p".to_string()),
            "x-gone" => Some("g".to_string()),
            _ => None,
        };
        let r = rules(
            Target::RequestHeader,
            [
                &["x-gone"],
                &["x-old:x-new"],
                &["x-present:replaced", "x-absent:never"],
                &["x-present:not-added", "x-added:a", "x-gone:back"],
                &["x-added:b", "x-more:m"],
            ],
        );
        let edits = apply_headers(&r, &get, &vars_none());
        assert_eq!(
            edits,
            vec![
                HeaderEdit::Set("x-gone".into(), vec!["back".into()]),
                HeaderEdit::Set("x-new".into(), vec!["o".into()]),
                HeaderEdit::Remove("x-old".into()),
                HeaderEdit::Set("x-present".into(), vec!["replaced".into()]),
                HeaderEdit::Set("x-added".into(), vec!["a".into(), "b".into()]),
                HeaderEdit::Set("x-more".into(), vec!["m".into()]),
            ]
        );
    }

    #[test]
    fn params_keep_untouched_encoding_and_follow_the_rules() {
        let r = rules(
            Target::Field,
            [
                &["drop"],
                &["old:new"],
                &["page:1", "absent:x"],
                &["page:9", "lang:en us"],
                &["tag:b"],
            ],
        );
        let mut p = Params::parse("a=%41+b&drop=1&old=v&page=3&page=4&tag=a&new=lost");
        assert!(p.apply(&r, &vars_none()));
        assert_eq!(p.encode(), "a=%41+b&new=v&page=1&tag=a&lang=en%20us&tag=b");
        let mut q = Params::parse("x=1");
        assert!(!q.apply(
            &rules(Target::Field, [&["y"], &[], &[], &[], &[]]),
            &vars_none()
        ));
        assert_eq!(q.encode(), "x=1");
    }

    /// A query parameter copied into a query string or form body keeps its exact bytes, UTF-8 or
    /// not; into a header it is text with the bytes that are not UTF-8 as `%XX`.
    #[test]
    fn template_values_that_are_not_utf8() {
        let vars = RequestVars {
            header: &|_| None,
            query: "x=%FF%C3%A9",
            captures: &[],
            consumer: None,
        };
        let r = rules(
            Target::Field,
            [&[], &[], &[], &["y:$(query_params.x)"], &[]],
        );
        let mut p = Params::parse("a=1");
        assert!(p.apply(&r, &vars));
        assert_eq!(p.encode(), "a=1&y=%FF%C3%A9");
        let h = rules(
            Target::RequestHeader,
            [&[], &[], &[], &["x-y:$(query_params.x)"], &[]],
        );
        let edits = apply_headers(&h, &|_| None, &vars);
        assert_eq!(edits, [HeaderEdit::Set("x-y".into(), vec!["%FFé".into()])]);
    }

    #[test]
    fn json_rules_follow_kong_semantics() {
        let r = rules(
            Target::Field,
            [
                &["secret"],
                &["old:new"],
                &["flag:replaced", "absent:x"],
                &["flag:not-added", "added:a"],
                &["list:3", "one:1", "fresh:f"],
            ],
        );
        let body = br#"{"secret":1,"old":"v","flag":false,"list":[1,2],"one":"x"}"#;
        let out = transform_json_bytes(&r, body, &vars_none()).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"new":"v","flag":"replaced","list":[1,2,"3"],"one":["x","1"],
                "added":"a","fresh":["f"]})
        );
        // Not an object, not JSON: untouched.
        assert_eq!(transform_json_bytes(&r, b"[1]", &vars_none()), None);
        assert_eq!(transform_json_bytes(&r, b"{oops", &vars_none()), None);
        // Empty body: {} then add/append.
        let out = transform_json_bytes(&r, b"", &vars_none()).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            serde_json::json!({"flag":"not-added","added":"a","list":["3"],"one":["1"],"fresh":["f"]})
        );
    }

    #[test]
    fn json_types_make_numbers_and_booleans() {
        let mut errors = Vec::new();
        let list = vec![
            "n:12".to_string(),
            "f:1.5".into(),
            "b:true".into(),
            "s:7".into(),
        ];
        let types = [JsonType::Number, JsonType::Number, JsonType::Boolean];
        let add = entries(&list, &types, "add.json", Target::Field, &mut errors);
        assert!(errors.is_empty());
        let r = Rules {
            add,
            ..Rules::default()
        };
        let out = transform_json_bytes(&r, b"{}", &vars_none()).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            serde_json::json!({"n":12,"f":1.5,"b":true,"s":"7"})
        );
    }

    #[test]
    fn bad_entries_are_errors_with_paths() {
        let mut errors = Vec::new();
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        entries(
            &list(&[
                "novalue",
                ":v",
                "x y:1",
                "x-ok:$(nope.a)",
                "host:h",
                "x-a:a\nb",
            ]),
            &[],
            "add.headers",
            Target::RequestHeader,
            &mut errors,
        );
        entries(
            &list(&["n:abc", "b:yes"]),
            &[JsonType::Number, JsonType::Boolean, JsonType::String],
            "add.json",
            Target::Field,
            &mut errors,
        );
        renames(
            &list(&["a"]),
            "rename.headers",
            Target::ResponseHeader,
            &mut errors,
        );
        names(
            &list(&["connection"]),
            "remove.headers",
            Target::ResponseHeader,
            &mut errors,
        );
        let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "add.headers[0]",
                "add.headers[1]",
                "add.headers[2]",
                "add.headers[3]",
                "add.headers[4]",
                "add.headers[5]",
                "add.json[0]",
                "add.json[1]",
                "add.json_types",
                "rename.headers[0]",
                "remove.headers[0]",
            ],
            "{errors:?}"
        );
        assert!(errors[3].1.contains("unknown template variable \"nope\""));
        assert!(errors[4].1.contains("header \"host\" cannot be changed"));
    }

    #[test]
    fn errors_never_quote_a_value() {
        const SECRET: &str = "sk-secret-123";
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut errors = Vec::new();
        let bad = list(&[
            "Authorization Bearer sk-secret-123",
            "Authorization Bearer sk-secret-123:x",
            "x-a:Bearer sk-secret-123 $(headers.x",
            "x-b:Bearer sk-secret-123 $(nope.a)",
            "x-c:sk-secret-123\n",
            "Authorization\tsk-secret-123:v",
            "Authorization:sk-secret-123\u{e9}",
        ]);
        for target in [Target::RequestHeader, Target::ResponseHeader, Target::Field] {
            for path in ["add.headers", "replace.headers", "append.headers"] {
                entries(&bad, &[], path, target, &mut errors);
            }
            renames(&bad, "rename.headers", target, &mut errors);
            names(&bad, "remove.headers", target, &mut errors);
        }
        entries(
            &list(&["n:sk-secret-123", "b:sk-secret-123"]),
            &[JsonType::Number, JsonType::Boolean],
            "add.json",
            Target::Field,
            &mut errors,
        );
        assert!(errors.len() > 40, "{errors:?}");
        for (path, message) in &errors {
            assert!(!message.contains(SECRET), "{path}: {message}");
        }
        let at = |p: &str| {
            errors
                .iter()
                .find(|(path, _)| path == p)
                .map(|(_, m)| m.as_str())
                .unwrap_or_else(|| panic!("no error at {p}: {errors:?}"))
        };
        assert_eq!(at("add.headers[0]"), "not \"name:value\" (no colon)");
        assert_eq!(
            at("add.headers[1]"),
            "not a valid header name (it contains a space)"
        );
        assert_eq!(
            at("add.headers[2]"),
            "template: unclosed \"$(\": a \")\" is missing"
        );
        assert!(at("add.headers[3]").starts_with("template: unknown template variable \"nope\""));
        assert_eq!(
            at("add.headers[5]"),
            "not a valid header name (it contains a control character)"
        );
        assert_eq!(
            at("add.json[0]"),
            "the value is not a number (json_types says number)"
        );
        assert_eq!(
            at("add.json[1]"),
            "the value is not true or false (json_types says boolean)"
        );
        // A whole line in a names-only list is not quoted either.
        assert_eq!(
            at("remove.headers[0]"),
            "not a valid header name (it contains a space)"
        );
        let mut errors = Vec::new();
        names(
            &list(&["x\"y", "caf\u{e9}"]),
            "remove.headers",
            Target::RequestHeader,
            &mut errors,
        );
        assert_eq!(errors[0].1, "not a valid header name (it contains '\"')");
        assert_eq!(
            errors[1].1,
            "not a valid header name (it contains a non-ASCII character)"
        );
        // Through the validator, with a string where a list belongs (serde would quote it).
        for plugin in ["request-transformer", "response-transformer"] {
            let doc = serde_json::json!({"format_version": 1, "plugins": [{"name": plugin, "config":
                {"add": {"headers": ["Authorization Bearer sk-secret-123", "x y:sk-secret-123"]},
                 "append": {"headers": "Authorization: Bearer sk-secret-123"}}}]});
            let errors = crate::config::parse_and_validate(&doc.to_string()).unwrap_err();
            let text = format!("{errors:?}");
            assert!(!text.contains(SECRET), "{plugin}: {text}");
            assert!(text.contains("plugins[0].config"), "{plugin}: {text}");
        }
    }
}
