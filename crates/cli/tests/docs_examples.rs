//! Every JSON example of README.md and docs/*.md, read as an outside tester would: a configuration (or a
//! piece of one: a service, a route, a plugin instance, a `plugins` or `routes` list) must be accepted by
//! the validator (`edgegate_core::config::parse_and_validate`, what `edgegate-config validate` runs) and
//! by the committed JSON Schema (docs/config.schema.json); the schema and the validator must also refuse
//! the same misspelt fields in plugin settings.
//!
//! A piece is completed into a document the way a reader would: `format_version: 1`, plus a stub
//! service or route for every name it refers to that it does not define. JSON blocks that are not
//! configuration (log lines, problem documents, KV records, fragments of one plugin's settings) are
//! recognised explicitly ([`not_configuration`]), so that a new configuration example is never skipped
//! silently.

use edgegate_core::config::parse_and_validate;
use edgegate_core::plugins::{self, PluginError};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md and every docs/*.md, sorted, with their text.
fn documents() -> Vec<(String, String)> {
    let root = repo_root();
    let mut names = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(root.join(&n)).unwrap();
            (n, text)
        })
        .collect()
}

/// Fenced code blocks: (info string, body, line of the opening fence). Indented fences (in lists) count.
fn code_blocks(markdown: &str) -> Vec<(String, String, usize)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String, usize, usize)> = None;
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let indent = line.len() - trimmed.len();
                    open = Some((info.trim().to_string(), String::new(), n + 1, indent));
                }
            }
            Some((info, mut body, start, indent)) => {
                if trimmed.starts_with("```") {
                    blocks.push((info, body, start));
                } else {
                    body.push_str(line.get(indent..).unwrap_or(line.trim_start()));
                    body.push('\n');
                    open = Some((info, body, start, indent));
                }
            }
        }
    }
    blocks
}

/// The JSON values of a block: one value, several in a row (one instance per line), or the members of
/// an object without its braces (`"name": {...}`).
fn json_values(body: &str) -> Option<Vec<Value>> {
    let values: Result<Vec<Value>, _> = serde_json::Deserializer::from_str(body)
        .into_iter::<Value>()
        .collect();
    match values {
        Ok(v) if !v.is_empty() => Some(v),
        _ => serde_json::from_str::<Value>(&format!("{{{body}}}"))
            .ok()
            .map(|v| vec![v]),
    }
}

/// Why a JSON value is not a configuration example, if it is not.
fn not_configuration(value: &Value) -> Option<&'static str> {
    let o = value.as_object()?;
    let has = |k: &str| o.contains_key(k);
    if has("event") {
        return Some("a log line");
    }
    if has("type") && has("status") && has("code") && has("request_id") {
        return Some("a problem document");
    }
    if has("latencies") && has("started_at") {
        return Some("an http-log entry");
    }
    if has("resourceSpans") {
        return Some("an OTLP export body (opentelemetry)");
    }
    if has("all") && has("tags") {
        return Some("the cache/generations KV record");
    }
    if o.len() == 1 && o.values().all(|v| v.get("kind").is_some()) {
        return Some("an entry of ai-proxy's `providers`");
    }
    None
}

/// What a configuration example is.
#[derive(Debug, PartialEq)]
enum Piece {
    Document,
    Service,
    Route,
    Plugin,
    /// Some of `services`, `routes`, `plugins` without `format_version`.
    Fragment,
}

fn classify(value: &Value) -> Option<Piece> {
    let o = value.as_object()?;
    let has = |k: &str| o.contains_key(k);
    if has("format_version") {
        return Some(Piece::Document);
    }
    // A route splitting traffic has a `services` array too, and a name.
    if !has("name")
        && ["services", "routes", "plugins"]
            .iter()
            .any(|k| o.get(*k).is_some_and(Value::is_array))
    {
        return Some(Piece::Fragment);
    }
    let name = o.get("name").and_then(Value::as_str)?;
    if plugins::registry::find(name).is_some() || has("config") {
        return Some(Piece::Plugin);
    }
    if has("url") || has("targets") {
        return Some(Piece::Service);
    }
    if has("paths") || has("service") || has("services") || has("hosts") {
        return Some(Piece::Route);
    }
    None
}

const STUB_SERVICE: &str = "doc-stub-service";

fn stub_service(name: &str, n: usize) -> Value {
    json!({ "name": name, "url": format!("http://127.0.0.1:{}", 9000 + n) })
}

/// The example completed into a whole document.
fn complete(piece: &Piece, value: &Value) -> Value {
    let mut doc = match piece {
        Piece::Document => return value.clone(),
        Piece::Fragment => value.as_object().unwrap().clone(),
        Piece::Service => Map::from_iter([("services".into(), json!([value]))]),
        Piece::Route => Map::from_iter([("routes".into(), json!([value]))]),
        Piece::Plugin => Map::from_iter([("plugins".into(), json!([value]))]),
    };
    doc.insert("format_version".into(), json!(1));
    let list = |doc: &Map<String, Value>, k: &str| -> Vec<Value> {
        doc.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut services = list(&doc, "services");
    let mut routes = list(&doc, "routes");
    let plugins = list(&doc, "plugins");
    let named = |items: &[Value], name: &str| items.iter().any(|i| i["name"] == name);
    let want_service = |services: &mut Vec<Value>, name: &str| {
        if !named(services, name) {
            let n = services.len();
            services.push(stub_service(name, n));
        }
    };
    for p in &plugins {
        if let Some(route) = p.get("route").and_then(Value::as_str) {
            if !named(&routes, route) {
                routes.push(json!({
                    "name": route, "service": STUB_SERVICE, "paths": [format!("/doc-stub/{route}")]
                }));
            }
        }
        if let Some(service) = p.get("service").and_then(Value::as_str) {
            want_service(&mut services, service);
        }
    }
    for r in &routes {
        if let Some(service) = r.get("service").and_then(Value::as_str) {
            want_service(&mut services, service);
        }
        for w in r
            .get("services")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(service) = w.get("name").and_then(Value::as_str) {
                want_service(&mut services, service);
            }
        }
    }
    doc.insert("services".into(), Value::Array(services));
    doc.insert("routes".into(), Value::Array(routes));
    if !plugins.is_empty() {
        doc.insert("plugins".into(), Value::Array(plugins));
    }
    Value::Object(doc)
}

struct Example {
    at: String,
    piece: Piece,
    document: Value,
}

/// Every configuration example of the docs, completed.
fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    for (file, text) in documents() {
        for (info, body, line) in code_blocks(&text) {
            let lang = info.split_whitespace().next().unwrap_or("");
            if lang != "json" || info.contains("invalid-config") {
                continue;
            }
            let at = format!("{file}:{line}");
            let Some(values) = json_values(&body) else {
                // An abbreviated log line (`{"event":"request", …}`) is not JSON; anything else must be.
                assert!(
                    body.contains('…') && body.contains("\"event\""),
                    "{at}: not JSON:\n{body}"
                );
                continue;
            };
            for value in values {
                if not_configuration(&value).is_some() {
                    continue;
                }
                let piece = classify(&value).unwrap_or_else(|| {
                    panic!("{at}: a JSON example that is not recognised:\n{value:#}")
                });
                let document = complete(&piece, &value);
                out.push(Example {
                    at: at.clone(),
                    piece,
                    document,
                });
            }
        }
    }
    out
}

#[test]
fn every_configuration_example_of_the_docs_is_valid() {
    let examples = examples();
    let mut failures = Vec::new();
    for e in &examples {
        if let Err(errors) = parse_and_validate(&e.document.to_string()) {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            failures.push(format!(
                "{} ({:?}) is refused by the validator:\n{}\ncompleted document: {}",
                e.at,
                e.piece,
                lines.join("\n"),
                e.document
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The docs have examples of every kind; a broken extraction would find far fewer.
    for piece in [
        Piece::Document,
        Piece::Service,
        Piece::Route,
        Piece::Plugin,
        Piece::Fragment,
    ] {
        assert!(
            examples.iter().any(|e| e.piece == piece),
            "no {piece:?} example found"
        );
    }
    assert!(examples.len() >= 35, "only {} examples", examples.len());
    assert!(examples.iter().any(|e| e.at.starts_with("README.md:")));
    assert!(examples
        .iter()
        .any(|e| e.at.starts_with("docs/configuration.md:")));
}

// ---------------------------------------------------------------------------------------------------
// The committed JSON Schema, checked with a small validator of the keywords schemars emits (an unknown
// keyword fails the test, so that the checks never silently weaken).

fn schema() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docs/config.schema.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$defs",
    "title",
    "description",
    "default",
    "format",
    "examples",
];

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => panic!("unknown type {other}"),
    }
}

/// Errors of `value` against `schema` (`root` resolves `$ref`), each with its path.
fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => return errors.push(format!("{at}: not allowed")),
        Value::Object(o) => o,
        other => panic!("schema at {at} is {other}"),
    };
    for (keyword, arg) in schema {
        match keyword.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                let pointer = arg.as_str().unwrap().strip_prefix('#').unwrap();
                let target = root
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {arg}"));
                check(root, target, value, at, errors);
            }
            "type" => {
                let ok = match arg {
                    Value::String(t) => type_matches(t, value),
                    Value::Array(ts) => ts.iter().any(|t| type_matches(t.as_str().unwrap(), value)),
                    _ => panic!("type {arg}"),
                };
                if !ok {
                    errors.push(format!("{at}: expected type {arg}, found {value}"));
                }
            }
            "enum" => {
                if !arg.as_array().unwrap().contains(value) {
                    errors.push(format!("{at}: {value} is not one of {arg}"));
                }
            }
            "const" => {
                if arg != value {
                    errors.push(format!("{at}: {value} is not {arg}"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(n), Some(limit)) = (value.as_f64(), arg.as_f64()) {
                    let ok = if keyword == "minimum" {
                        n >= limit
                    } else {
                        n <= limit
                    };
                    if !ok {
                        errors.push(format!("{at}: {n} is out of range ({keyword} {limit})"));
                    }
                }
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" => {
                let len = match value {
                    Value::String(s) => Some(s.chars().count()),
                    Value::Array(a) => Some(a.len()),
                    _ => None,
                };
                let limit = arg.as_u64().unwrap() as usize;
                if let Some(len) = len {
                    let ok = if keyword.starts_with("min") {
                        len >= limit
                    } else {
                        len <= limit
                    };
                    if !ok {
                        errors.push(format!("{at}: length {len} breaks {keyword} {limit}"));
                    }
                }
            }
            "pattern" => {
                if let Some(s) = value.as_str() {
                    let re = regex_lite::Regex::new(arg.as_str().unwrap()).unwrap();
                    if !re.is_match(s) {
                        errors.push(format!("{at}: {s:?} does not match {arg}"));
                    }
                }
            }
            "properties" => {
                if let Some(o) = value.as_object() {
                    for (k, sub) in arg.as_object().unwrap() {
                        if let Some(v) = o.get(k) {
                            check(root, sub, v, &format!("{at}.{k}"), errors);
                        }
                    }
                }
            }
            "required" => {
                if let Some(o) = value.as_object() {
                    for k in arg.as_array().unwrap() {
                        if !o.contains_key(k.as_str().unwrap()) {
                            errors.push(format!("{at}: missing required {k}"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(o) = value.as_object() {
                    let known = schema.get("properties").and_then(Value::as_object);
                    for (k, v) in o {
                        if known.is_some_and(|p| p.contains_key(k)) {
                            continue;
                        }
                        match arg {
                            Value::Bool(false) => {
                                errors.push(format!("{at}: unknown property {k:?}"))
                            }
                            sub => check(root, sub, v, &format!("{at}.{k}"), errors),
                        }
                    }
                }
            }
            "items" => {
                if let Some(a) = value.as_array() {
                    for (i, v) in a.iter().enumerate() {
                        check(root, arg, v, &format!("{at}[{i}]"), errors);
                    }
                }
            }
            "uniqueItems" => {
                if let (Some(a), true) = (value.as_array(), arg == &json!(true)) {
                    for (i, v) in a.iter().enumerate() {
                        if a[..i].contains(v) {
                            errors.push(format!("{at}[{i}]: duplicate item {v}"));
                        }
                    }
                }
            }
            "allOf" => {
                for sub in arg.as_array().unwrap() {
                    check(root, sub, value, at, errors);
                }
            }
            "anyOf" | "oneOf" => {
                let passing = arg
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|sub| {
                        let mut e = Vec::new();
                        check(root, sub, value, at, &mut e);
                        e.is_empty()
                    })
                    .count();
                let ok = if keyword == "anyOf" {
                    passing >= 1
                } else {
                    passing == 1
                };
                if !ok {
                    errors.push(format!(
                        "{at}: {value} matches {passing} of the {keyword} alternatives"
                    ));
                }
            }
            "if" => {
                let mut e = Vec::new();
                check(root, arg, value, at, &mut e);
                let branch = if e.is_empty() { "then" } else { "else" };
                if let Some(sub) = schema.get(branch) {
                    check(root, sub, value, at, errors);
                }
            }
            "then" | "else" => {} // with "if"
            other => panic!("the schema uses {other:?} (at {at}), which this test does not check"),
        }
    }
}

fn schema_errors(root: &Value, document: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(root, root, document, "$", &mut errors);
    errors
}

#[test]
fn every_configuration_example_of_the_docs_matches_the_schema() {
    let root = schema();
    let mut failures = Vec::new();
    for e in examples() {
        let errors = schema_errors(&root, &e.document);
        if !errors.is_empty() {
            failures.push(format!(
                "{} ({:?}) is refused by docs/config.schema.json:\n  {}",
                e.at,
                e.piece,
                errors.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Both the schema and the validator refuse these documents (shape errors: unknown fields and plugin
/// names, wrong types, values outside an enumeration).
#[test]
fn the_schema_and_the_validator_refuse_the_same_shape_errors() {
    let root = schema();
    let base = |plugins: Value| {
        json!({
            "format_version": 1,
            "services": [{ "name": "s", "url": "http://127.0.0.1:9001" }],
            "routes": [{ "name": "r", "service": "s", "paths": ["/r"] }],
            "plugins": plugins
        })
    };
    let cases = [
        json!({"format_version": 1, "servics": []}),
        json!({"format_version": 2}),
        json!({"services": []}),
        json!({"format_version": 1, "services": [{"name": "a b", "url": "http://h"}]}),
        json!({"format_version": 1, "services": [{"name": "s", "url": "http://h", "timeout_ms": 0}]}),
        json!({"format_version": 1, "services": [{"name": "s", "url": "http://h", "retries": 11}]}),
        json!({"format_version": 1, "services": [{"name": "s", "targets": [{"url": "http://h", "weight": 65536}]}]}),
        json!({"format_version": 1, "services": [{"name": "s", "url": "http://h", "algorithm": "random"}]}),
        json!({"format_version": 1, "routes": [{"name": "r", "service": "s", "prefix": true}],
               "services": [{"name": "s", "url": "http://h"}]}),
        json!({"format_version": 1, "services": [{"name": "s", "url": "http://h", "timeout": 5}]}),
        json!({"format_version": 1, "services": [{"name": "s", "url": "http://h", "timeout_ms": "5"}]}),
        base(json!([{ "name": "correlation-id" }])),
        base(json!([{ "name": "cors", "config": { "origin": ["https://a.example"] } }])),
        base(json!([{ "name": "cors", "config": { "max_age": "1h" } }])),
        base(json!([{ "name": "cors", "route": "r", "consumer": "alice" }])),
        base(json!([{ "name": "ip-restriction", "config": { "allow": "10.0.0.0/8" } }])),
        base(json!([{ "name": "geo-restriction", "config": { "unknown_country": "block" } }])),
        base(json!([{ "name": "request-size-limiting", "config": { "size_unit": "gigabytes" } }])),
        base(
            json!([{ "name": "request-transformer", "config": { "add": { "header": ["a:b"] } } }]),
        ),
        base(
            json!([{ "name": "response-transformer", "config": { "add": { "json_types": ["date"] } } }]),
        ),
        base(json!([{ "name": "request-termination", "config": { "status": 503 } }])),
        base(json!([{ "name": "redirect", "config": { "location": "https://x", "code": 301 } }])),
        base(json!([{ "name": "rate-limiting", "config": { "minute": 5, "limit_by": "user" } }])),
        base(json!([{ "name": "rate-limiting", "config": { "minutes": 5 } }])),
        base(
            json!([{ "name": "rate-limiting", "config": { "minute": 5, "policy": "memcached" } }]),
        ),
        base(
            json!([{ "name": "rate-limiting", "config": { "minute": 5, "redis_hostname": "r" } }]),
        ),
        base(json!([{ "name": "key-auth", "config": { "key_names": "apikey" } }])),
        base(json!([{ "name": "jwt", "config": { "secret_is_base64": "yes" } }])),
        base(json!([{ "name": "basic-auth", "config": { "hide_credential": true } }])),
        base(json!([{ "name": "acl", "config": { "whitelist": ["a"] } }])),
        base(json!([{ "name": "proxy-cache", "config": { "strategy": "redis" } }])),
        base(json!([{ "name": "proxy-cache", "config": { "cache_ttl": -1 } }])),
        base(json!([{ "name": "key-auth", "config": "apikey" }])),
    ];
    for doc in cases {
        let schema = schema_errors(&root, &doc);
        assert!(!schema.is_empty(), "the schema accepts {doc}");
        assert!(
            parse_and_validate(&doc.to_string()).is_err(),
            "the validator accepts {doc}"
        );
    }
}

/// Both the schema and the validator accept these documents: Kong spellings that load as they are.
#[test]
fn the_schema_and_the_validator_accept_the_same_kong_shapes() {
    let root = schema();
    let limit = |config: Value| {
        json!({
            "format_version": 1,
            "services": [{ "name": "s", "url": "http://127.0.0.1:9001" }],
            "routes": [{ "name": "r", "service": "s", "paths": ["/r"] }],
            "plugins": [{ "name": "rate-limiting", "config": config }]
        })
    };
    let cases = [
        // Kong's policies: `cluster` and `redis` mean `durable`.
        limit(json!({ "minute": 5, "policy": "local" })),
        limit(json!({ "minute": 5, "policy": "durable" })),
        limit(json!({ "minute": 5, "policy": "cluster" })),
        limit(json!({ "minute": 5, "policy": "redis" })),
        // Kong 3.x's Redis settings, nested and the deprecated flat fields: accepted, unused.
        limit(json!({ "minute": 5, "policy": "redis", "sync_rate": -1,
                      "redis": { "host": "r", "port": 6379, "password": "p", "ssl": false } })),
        limit(
            json!({ "minute": 5, "policy": "redis", "redis_host": "r", "redis_port": 6379,
                      "redis_username": "u", "redis_password": "p", "redis_database": 0,
                      "redis_timeout": 2000, "redis_ssl": true, "redis_ssl_verify": false,
                      "redis_server_name": "r.example" }),
        ),
        // As a Kong export writes unset ones.
        limit(
            json!({ "minute": 5, "redis_host": null, "redis_password": null, "redis_ssl": false }),
        ),
    ];
    for doc in cases {
        let errors = schema_errors(&root, &doc);
        assert!(errors.is_empty(), "the schema refuses {doc}: {errors:?}");
        if let Err(e) = parse_and_validate(&doc.to_string()) {
            panic!("the validator refuses {doc}: {e:?}");
        }
    }
}

/// The field names serde accepts at `path` (relative to `config`) of plugin `name`, from its
/// "unknown field" error.
fn serde_fields(name: &str, path: &[&str]) -> Vec<String> {
    let mut config = json!({ "__not_a_field__": 1 });
    for key in path.iter().rev() {
        config = Value::Object(Map::from_iter([(key.to_string(), config)]));
    }
    let message = match plugins::parse(name, &config) {
        Err(PluginError::Config(errors)) => errors[0].1.clone(),
        other => panic!("{name} {path:?}: {other:?}"),
    };
    let expected = message
        .split_once("expected")
        .map_or("", |(_, rest)| rest)
        .to_string();
    assert!(
        message.starts_with("unknown field `__not_a_field__`"),
        "{name} {path:?}: {message}"
    );
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The object schema `schema` stands for (through `$ref` and an `anyOf` with null).
fn object_schema<'a>(root: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return object_schema(root, root.pointer(r.strip_prefix('#').unwrap()).unwrap());
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        return any.iter().find_map(|s| object_schema(root, s));
    }
    schema.get("properties").map(|_| schema)
}

fn compare_fields(root: &Value, plugin: &str, schema: &Value, path: &mut Vec<String>) -> usize {
    let properties = schema["properties"].as_object().unwrap();
    let mut in_schema: Vec<String> = properties.keys().cloned().collect();
    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
    let mut in_serde = serde_fields(plugin, &refs);
    in_schema.sort();
    in_serde.sort();
    assert_eq!(
        in_schema, in_serde,
        "{plugin} config {path:?}: the schema's properties differ from the fields the plugin accepts"
    );
    let mut compared = 1;
    for (k, sub) in properties {
        if let Some(object) = object_schema(root, sub) {
            path.push(k.clone());
            compared += compare_fields(root, plugin, object, path);
            path.pop();
        }
    }
    compared
}

#[test]
fn each_typed_plugin_schema_lists_exactly_the_fields_the_plugin_accepts() {
    let root = schema();
    let rules = root["$defs"]["PluginConfig"]["allOf"]
        .as_array()
        .expect("PluginConfig has one rule per typed plugin");
    let mut compared = 0;
    let mut typed = Vec::new();
    for rule in rules {
        let plugin = rule["if"]["properties"]["name"]["const"].as_str().unwrap();
        let config = object_schema(&root, &rule["then"]["properties"]["config"])
            .unwrap_or_else(|| panic!("{plugin}: config is not an object schema"));
        assert_eq!(config["additionalProperties"], json!(false), "{plugin}");
        compared += compare_fields(&root, plugin, config, &mut Vec::new());
        typed.push(plugin.to_string());
    }
    let mut kong = [
        "bot-detection",
        "cors",
        "ip-restriction",
        "request-size-limiting",
        "request-transformer",
        "response-transformer",
        "request-termination",
        "redirect",
        "geo-restriction",
        "rate-limiting",
        "key-auth",
        "jwt",
        "basic-auth",
        "hmac-auth",
        "acl",
        "proxy-cache",
        "http-log",
        "opentelemetry",
    ];
    kong.sort();
    typed.sort();
    assert_eq!(typed, kong);
    // The transformers' groups are objects of their own.
    assert!(compared > kong.len() + 8, "{compared}");
    // `name` is limited to the registry's plugins.
    let names: Vec<&str> = root["$defs"]["PluginConfig"]["properties"]["name"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names, plugins::registry::names().collect::<Vec<_>>());
}

#[test]
fn code_block_parser_keeps_indented_blocks() {
    let md = "x\n- item:\n  ```json\n  {\"a\": 1}\n  ```\n";
    assert_eq!(
        code_blocks(md),
        [("json".to_string(), "{\"a\": 1}\n".to_string(), 3)]
    );
    assert_eq!(
        json_values("{\"a\": 1}\n{\"b\": 2}\n").unwrap(),
        [json!({"a": 1}), json!({"b": 2})]
    );
    assert_eq!(
        json_values("\"p\": {\"kind\": \"openai\"}").unwrap(),
        [json!({"p": {"kind": "openai"}})]
    );
}
