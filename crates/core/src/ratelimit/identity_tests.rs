//! Counters belong to a plugin instance's stable identity (`<scope>/<id>`), not its position.

use crate::config::parse_and_validate;
use crate::plugins::Plugins;
use serde_json::{json, Value};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn doc(plugins: Value) -> Value {
    json!({
        "format_version": 1,
        "services": [{"name": "api", "url": "http://127.0.0.1:9/"}],
        "routes": [
            {"name": "orders", "service": "api", "paths": ["/orders"]},
            {"name": "users", "service": "api", "paths": ["/users"]}
        ],
        "plugins": plugins
    })
}

/// The instance key of every enabled instance, in document order.
fn keys(plugins: Value) -> Vec<String> {
    let config = parse_and_validate(&doc(plugins).to_string()).expect("valid");
    let compiled = Plugins::compile(&config).expect("compiles");
    let mut out: Vec<(usize, String)> = (0..config.routes.len())
        .flat_map(|r| {
            compiled
                .for_route(r)
                .map(|i| (i.index, i.key.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out.into_iter().map(|(_, k)| k).collect()
}

fn errors(plugins: Value) -> Vec<String> {
    parse_and_validate(&doc(plugins).to_string())
        .err()
        .unwrap_or_default()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

fn rl(scope: Value) -> Value {
    let mut p = json!({"name": "rate-limiting", "config": {"minute": 5}});
    for (k, v) in scope.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[test]
fn default_ids_come_from_the_name_and_scope() {
    let k = keys(json!([
        rl(json!({})),
        rl(json!({"route": "orders"})),
        rl(json!({"service": "api"})),
        rl(json!({"consumer": "alice"})),
        rl(json!({"route": "orders", "consumer": "alice"})),
        rl(json!({"route": "orders"})),
    ]));
    assert_eq!(
        k,
        [
            "global/rate-limiting",
            "route=orders/rate-limiting",
            "service=api/rate-limiting",
            "consumer=alice/rate-limiting",
            "route=orders,consumer=alice/rate-limiting",
            "route=orders/rate-limiting.2",
        ]
    );
}

#[test]
fn inserting_or_reordering_instances_keeps_every_key() {
    let a = rl(json!({"route": "orders"}));
    let b = rl(json!({"service": "api"}));
    let c =
        json!({"name": "rate-limiting", "id": "hourly", "route": "orders", "config": {"hour": 9}});
    let before = keys(json!([a.clone(), b.clone(), c.clone()]));
    // Reordered, and with other instances inserted before them (another plugin, another scope).
    let after = keys(json!([
        {"name": "key-auth", "route": "users"},
        rl(json!({"route": "users"})),
        c.clone(),
        b.clone(),
        a.clone()
    ]));
    for k in &before {
        assert!(after.contains(k), "{k} kept: {after:?}");
    }
    // An explicit id does not count in the numbering of unnamed siblings.
    assert!(before.contains(&"route=orders/hourly".to_string()));
    assert!(before.contains(&"route=orders/rate-limiting".to_string()));
    // A disabled instance keeps its number, so disabling it does not renumber its siblings.
    let mut disabled = a.clone();
    disabled["enabled"] = json!(false);
    let k = keys(json!([disabled, a.clone()]));
    assert_eq!(k, ["route=orders/rate-limiting.2"]);
}

#[test]
fn explicit_ids_are_validated() {
    assert_eq!(
        errors(json!([
            {"name": "rate-limiting", "id": "a", "route": "orders", "config": {"minute": 1}},
            {"name": "rate-limiting", "id": "a", "route": "orders", "config": {"minute": 2}},
        ])),
        ["plugins[1].id: id \"a\" is already used by plugins[0] in the same scope (route=orders); ids must be unique within a scope"]
    );
    // The same id in another scope is fine.
    assert!(errors(json!([
        {"name": "rate-limiting", "id": "a", "route": "orders", "config": {"minute": 1}},
        {"name": "rate-limiting", "id": "a", "route": "users", "config": {"minute": 2}},
    ]))
    .is_empty());
    // An explicit id cannot take a default id of the same scope.
    assert_eq!(
        errors(json!([
            {"name": "rate-limiting", "config": {"minute": 1}},
            {"name": "acl", "id": "rate-limiting", "config": {"allow": ["x"]}},
        ])),
        ["plugins[1].id: id \"rate-limiting\" is already used by plugins[0] in the same scope (global); ids must be unique within a scope"]
    );
    let bad = errors(json!([{"name": "rate-limiting", "id": "a/b", "config": {"minute": 1}}]));
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].starts_with("plugins[0].id: <hidden name, 3 characters> contains '/'"),
        "{bad:?}"
    );
    let long = "x".repeat(65);
    assert_eq!(
        errors(json!([{"name": "rate-limiting", "id": long, "config": {"minute": 1}}])),
        ["plugins[0].id: an id can be at most 64 characters long (this one has 65)"]
    );
    assert_eq!(
        errors(json!([{"name": "rate-limiting", "id": "", "config": {"minute": 1}}])),
        ["plugins[0].id: a name cannot be empty"]
    );
}
