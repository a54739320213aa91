//! Keeps the committed JSON Schema, the serde model and the shipped example configurations in step.
//!
//! - `docs/config.schema.json` equals what the model generates (regenerate with
//!   `cargo run -p edgegate-cli -- schema > docs/config.schema.json`);
//! - every object of the schema lists exactly the serde field names and forbids other properties;
//! - every `kv-seed/*.json` and every ```` ```json full-config ```` block of docs/configuration.md is a
//!   valid configuration, and every ```` ```json invalid-config ```` block is rejected with exactly the
//!   errors of the ```` ```text errors ```` block after it.
#![cfg(feature = "schema")]

use edgegate_core::config::{
    parse_and_validate, Algorithm, GatewayConfig, HashOn, Healthchecks, PluginConfig, RetryOn,
    RouteConfig, ServiceConfig, TargetConfig, WeightedService,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const REGENERATE: &str = "cargo run -p edgegate-cli -- schema > docs/config.schema.json";

// The documents checked, compiled in: the suite also runs on wasm32 (scripts/test), where there is no
// filesystem.
const COMMITTED_SCHEMA: &str = include_str!("../../../docs/config.schema.json");
const CONFIGURATION_MD: &str = include_str!("../../../docs/configuration.md");
/// Every `kv-seed/*.json`; `kv_seed_list_matches_the_directory` keeps the list complete.
const KV_SEED: &[(&str, &str)] = &[("config.json", include_str!("../../../kv-seed/config.json"))];

#[cfg(not(target_arch = "wasm32"))]
fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generated_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(GatewayConfig)).expect("schema serializes")
}

#[test]
fn committed_schema_matches_the_model() {
    let committed: Value = serde_json::from_str(COMMITTED_SCHEMA).unwrap_or_else(|e| {
        panic!("docs/config.schema.json is not JSON ({e}); run `{REGENERATE}`")
    });
    assert!(
        committed == generated_schema(),
        "docs/config.schema.json is out of date with crates/core/src/config/model.rs; \
         run `{REGENERATE}` from the repository root"
    );
}

/// A configuration with every optional field set and every map non-empty, so that serializing it
/// shows every field name serde uses.
fn full_config() -> GatewayConfig {
    GatewayConfig {
        schema: Some("../docs/config.schema.json".into()),
        format_version: 1,
        services: vec![ServiceConfig {
            name: "echo".into(),
            url: "http://127.0.0.1:9001/base".into(),
            targets: vec![TargetConfig {
                url: "http://127.0.0.1:9002/base".into(),
                weight: 50,
            }],
            algorithm: Algorithm::ConsistentHashing,
            hash_on: HashOn::Header,
            hash_on_header: Some("x-user".into()),
            hash_on_cookie: Some("session".into()),
            hash_fallback: HashOn::Header,
            hash_fallback_header: Some("x-other".into()),
            healthchecks: Some(Healthchecks::default()),
            retries: 2,
            retry_on: vec![RetryOn::Timeout, RetryOn::Status(503)],
            retry_non_idempotent: true,
            timeout_ms: 5000,
            headers: BTreeMap::from([("x-from".into(), "edgegate".into())]),
        }],
        routes: vec![RouteConfig {
            name: "users".into(),
            service: "echo".into(),
            services: vec![WeightedService {
                name: "echo".into(),
                weight: 1,
            }],
            hash_on: HashOn::Cookie,
            hash_on_header: Some("x-user".into()),
            hash_on_cookie: Some("session".into()),
            hosts: vec!["api.example.com".into()],
            paths: vec!["/users/{id}".into()],
            methods: vec!["GET".into()],
            headers: BTreeMap::from([("x-env".into(), vec!["prod".into()])]),
            priority: 1,
            strip_path: false,
            preserve_host: true,
            rewrite: Some("/v2/users/{id}".into()),
        }],
        plugins: vec![PluginConfig {
            name: "example".into(),
            id: Some("example-1".into()),
            route: Some("users".into()),
            service: Some("echo".into()),
            consumer: Some("alice".into()),
            enabled: false,
            config: json!({"any": "settings"}),
        }],
    }
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external $ref {r}"));
            root.pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {r}"))
        }
        None => schema,
    }
}

/// Walk an instance and its schema together; for every object schema with `properties`, compare the
/// property names with the instance's keys. Returns how many objects were compared.
fn compare_keys(root: &Value, schema: &Value, value: &Value, at: &str) -> usize {
    let schema = resolve(root, schema);
    match value {
        Value::Object(object) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return 0; // a map (headers): its keys are data
            };
            let in_schema: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
            let in_serde: BTreeSet<&str> = object.keys().map(String::as_str).collect();
            assert_eq!(
                in_schema, in_serde,
                "{at}: schema properties differ from the serde field names; run `{REGENERATE}` \
                 (and fill every field in full_config)"
            );
            1 + object
                .iter()
                .map(|(k, v)| compare_keys(root, &properties[k], v, &format!("{at}.{k}")))
                .sum::<usize>()
        }
        Value::Array(items) => match schema.get("items") {
            Some(item_schema) => items
                .iter()
                .enumerate()
                .map(|(i, v)| compare_keys(root, item_schema, v, &format!("{at}[{i}]")))
                .sum(),
            None => 0,
        },
        _ => 0,
    }
}

#[test]
fn schema_properties_are_the_serde_field_names() {
    let config = full_config();
    let text = serde_json::to_string(&config).unwrap();
    // The filled config round-trips through serde, and is valid but for its placeholder plugin
    // (each plugin's own settings are checked by that plugin's tests).
    assert_eq!(
        serde_json::from_str::<GatewayConfig>(&text).unwrap(),
        config
    );
    let mut without_plugins = config.clone();
    without_plugins.plugins.clear();
    // full_config sets fields that exclude each other (docs/upstreams.md); keep one of each.
    let service = &mut without_plugins.services[0];
    service.targets.clear();
    service.hash_on_cookie = None;
    let route = &mut without_plugins.routes[0];
    route.services.clear();
    route.hash_on = HashOn::None;
    route.hash_on_header = None;
    route.hash_on_cookie = None;
    assert_eq!(
        parse_and_validate(&serde_json::to_string(&without_plugins).unwrap()),
        Ok(without_plugins)
    );
    let instance: Value = serde_json::from_str(&text).unwrap();
    let schema = generated_schema();
    // Root, one service and its target, one route and its weighted service, one plugin (the
    // optional `healthchecks` is an `anyOf` with null, which the walk does not enter).
    assert_eq!(compare_keys(&schema, &schema, &instance, "$"), 6);
}

fn objects_with_properties<'a>(schema: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") {
                out.push((at.clone(), schema));
            }
            for (k, v) in map {
                objects_with_properties(v, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                objects_with_properties(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_object_forbids_unknown_properties() {
    let schema = generated_schema();
    let mut objects = Vec::new();
    objects_with_properties(&schema, String::new(), &mut objects);
    // The `if`/`then` rules that type a plugin's `config` by its `name` only constrain those two.
    objects.retain(|(at, _)| !at.starts_with("/$defs/PluginConfig/allOf/"));
    let mut names: Vec<&str> = objects.iter().map(|(at, _)| at.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "",
            "/$defs/AclPluginConfig",
            "/$defs/BasicAuthPluginConfig",
            "/$defs/BotDetectionPluginConfig",
            "/$defs/CorsPluginConfig",
            "/$defs/GeoRestrictionPluginConfig",
            "/$defs/Healthchecks",
            "/$defs/HmacAuthPluginConfig",
            "/$defs/HttpLogPluginConfig",
            "/$defs/IpRestrictionPluginConfig",
            "/$defs/JwtPluginConfig",
            "/$defs/KeyAuthPluginConfig",
            "/$defs/OpentelemetryPluginConfig",
            "/$defs/OpentelemetryPropagation",
            "/$defs/PassiveHealthcheck",
            "/$defs/PassiveHealthy",
            "/$defs/PassiveUnhealthy",
            "/$defs/PluginConfig",
            "/$defs/ProxyCachePluginConfig",
            "/$defs/RateLimitingPluginConfig",
            "/$defs/RedirectPluginConfig",
            "/$defs/RequestSizeLimitingPluginConfig",
            "/$defs/RequestTerminationPluginConfig",
            "/$defs/RequestTransformerGroup",
            "/$defs/RequestTransformerPluginConfig",
            "/$defs/RequestTransformerReplace",
            "/$defs/ResponseTransformerAllow",
            "/$defs/ResponseTransformerGroup",
            "/$defs/ResponseTransformerPluginConfig",
            "/$defs/ResponseTransformerTypedGroup",
            "/$defs/RouteConfig",
            "/$defs/ServiceConfig",
            "/$defs/TargetConfig",
            "/$defs/WeightedService"
        ]
    );
    for (at, object) in objects {
        assert_eq!(
            object.get("additionalProperties"),
            Some(&json!(false)),
            "schema object at #{at} must have additionalProperties: false (serde deny_unknown_fields)"
        );
    }
}

#[test]
fn kv_seed_documents_are_valid() {
    for (name, text) in KV_SEED {
        if let Err(errors) = parse_and_validate(text) {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("kv-seed/{name} is not valid:\n{}", lines.join("\n"));
        }
    }
}

/// Not on wasm32: it reads the kv-seed directory, which exists only natively.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn kv_seed_list_matches_the_directory() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_root().join("kv-seed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
        .filter(|name| name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = KV_SEED.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        listed, on_disk,
        "KV_SEED in tests/schema_sync.rs must list every kv-seed/*.json"
    );
}

/// Fenced code blocks of a Markdown text: (info string, body, line of the opening fence).
fn code_blocks(markdown: &str) -> Vec<(String, String, usize)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String, usize)> = None;
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((info.trim().to_string(), String::new(), n + 1));
                }
            }
            Some((info, mut body, start)) => {
                if trimmed.starts_with("```") {
                    blocks.push((info, body, start));
                } else {
                    body.push_str(line);
                    body.push('\n');
                    open = Some((info, body, start));
                }
            }
        }
    }
    blocks
}

#[test]
fn configuration_doc_examples_are_accurate() {
    let blocks = code_blocks(CONFIGURATION_MD);
    let mut full = 0;
    let mut invalid = 0;
    for (i, (info, body, line)) in blocks.iter().enumerate() {
        match info.as_str() {
            "json full-config" => {
                full += 1;
                if let Err(errors) = parse_and_validate(body) {
                    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    panic!(
                        "docs/configuration.md line {line}: example is not valid:\n{}",
                        lines.join("\n")
                    );
                }
            }
            "json invalid-config" => {
                invalid += 1;
                let errors = parse_and_validate(body).expect_err(&format!(
                    "docs/configuration.md line {line}: invalid-config example is accepted"
                ));
                let actual: Vec<String> = errors.iter().map(ToString::to_string).collect();
                let (next_info, expected, _) = blocks.get(i + 1).unwrap_or_else(|| {
                    panic!("docs/configuration.md line {line}: no ```text errors block follows")
                });
                assert_eq!(
                    next_info, "text errors",
                    "docs/configuration.md line {line}: a ```text errors block must follow"
                );
                let expected: Vec<&str> = expected.lines().collect();
                assert_eq!(
                    actual, expected,
                    "docs/configuration.md line {line}: the documented errors differ from the real ones"
                );
            }
            _ => {}
        }
    }
    assert!(
        full >= 1,
        "docs/configuration.md has no ```json full-config block"
    );
    assert!(
        invalid >= 1,
        "docs/configuration.md has no ```json invalid-config block"
    );
}

#[test]
fn code_block_parser() {
    let md = "text\n```json full-config\n{\"a\": 1}\n```\n\n```text errors\nx: y\n```\n";
    assert_eq!(
        code_blocks(md),
        [
            (
                "json full-config".to_string(),
                "{\"a\": 1}\n".to_string(),
                2
            ),
            ("text errors".to_string(), "x: y\n".to_string(), 6)
        ]
    );
}
