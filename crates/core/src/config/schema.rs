//! The JSON Schema of plugin instances (feature `schema`, used by `edgegate-config schema`; never built
//! into the Worker).
//!
//! A plugin instance's `config` is typed by its plugin's own settings struct (the one its parser
//! deserializes, with `deny_unknown_fields`), so the schema of `config` depends on `name`. The derived
//! schema of [`PluginConfig`](super::PluginConfig) gets, through [`plugin_config`] (its `config` field)
//! and [`plugin_variants`] (the whole instance):
//! - `name`: one of the registry's plugin names;
//! - one `if name is X then config is X's settings` rule per plugin with a typed schema, the settings
//!   registered under `$defs` (e.g. `#/$defs/CorsPluginConfig`); for a plugin that cannot be scoped
//!   to a consumer (`cors`), the rule also says `consumer` is absent or null.
//!
//! The schema checks the shape of the settings (field names, types, enumerations); what a plugin's
//! parser checks beyond that (CIDRs, regular expressions, templates, ranges) is left to
//! `edgegate-config validate`. `ai-proxy` has no typed schema yet: its `config` is any object.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

/// Registers every typed plugin's settings and lists `(plugin name, $defs name)`.
macro_rules! typed_plugins {
    ($($plugin:literal => $settings:ty),* $(,)?) => {
        fn register(generator: &mut SchemaGenerator) {
            $( let _ = generator.subschema_for::<$settings>(); )*
        }

        /// `(plugin name, name of its settings under $defs)` for every plugin with a typed `config`.
        pub fn typed() -> Vec<(&'static str, String)> {
            vec![$( ($plugin, <$settings as JsonSchema>::schema_name().into_owned()) ),*]
        }
    };
}

typed_plugins! {
    "bot-detection" => crate::plugins::bot_detection::Raw,
    "cors" => crate::plugins::cors::Raw,
    "jwt" => crate::auth::JwtConfig,
    "key-auth" => crate::auth::KeyAuthConfig,
    "basic-auth" => crate::auth::BasicAuthConfig,
    "hmac-auth" => crate::auth::HmacAuthConfig,
    "ip-restriction" => crate::plugins::ip_restriction::Raw,
    "geo-restriction" => crate::plugins::geo_restriction::Raw,
    "request-size-limiting" => crate::plugins::request_size_limiting::Raw,
    "acl" => crate::auth::AclConfig,
    "rate-limiting" => crate::ratelimit::RateLimitSettings,
    "request-transformer" => crate::plugins::request_transformer::RawConfig,
    "response-transformer" => crate::plugins::response_transformer::RawConfig,
    "redirect" => crate::plugins::redirect::Settings,
    "http-log" => crate::plugins::http_log::Settings,
    "opentelemetry" => crate::plugins::opentelemetry::Settings,
    "proxy-cache" => crate::cache::ProxyCacheConfig,
    "request-termination" => crate::plugins::request_termination::RequestTerminationConfig,
}

/// Schema of a plugin instance's `config` field: an object (or `null`, the same as absent), whose
/// shape [`plugin_variants`] ties to `name`. Registers every typed plugin's settings under `$defs`.
pub fn plugin_config(generator: &mut SchemaGenerator) -> Schema {
    register(generator);
    json_schema!({ "type": ["object", "null"] })
}

/// Transform of the derived schema of a plugin instance: `name` limited to the known plugins, and
/// `config` typed by `name`.
pub fn plugin_variants(schema: &mut Schema) {
    let names: Vec<&str> = crate::plugins::registry::names().collect();
    if let Some(name) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("name"))
        .and_then(Value::as_object_mut)
    {
        name.insert("enum".into(), json!(names));
    }
    let rules: Vec<Value> = typed()
        .into_iter()
        .map(|(plugin, def)| {
            let mut then = json!({
                "properties": {
                    "config": {
                        "anyOf": [{ "$ref": format!("#/$defs/{def}") }, { "type": "null" }]
                    }
                }
            });
            // A plugin that cannot be scoped to a consumer (the registry's `no_consumer`).
            if crate::plugins::registry::find(plugin).is_some_and(|d| d.no_consumer) {
                then["properties"]["consumer"] = json!({ "type": "null" });
            }
            json!({
                "if": {
                    "properties": { "name": { "const": plugin } },
                    "required": ["name"]
                },
                "then": then
            })
        })
        .collect();
    schema.insert("allOf".into(), Value::Array(rules));
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn every_typed_plugin_is_a_registered_plugin_once() {
        let typed = typed();
        for (i, (plugin, def)) in typed.iter().enumerate() {
            assert!(
                crate::plugins::registry::find(plugin).is_some(),
                "{plugin} is not in the registry"
            );
            assert!(
                typed[..i].iter().all(|(p, d)| p != plugin && d != def),
                "{plugin} ({def}) twice"
            );
        }
        // Every plugin but the AI gateway's has a typed config.
        let untyped: Vec<&str> = crate::plugins::registry::names()
            .filter(|n| typed.iter().all(|(p, _)| p != n))
            .collect();
        assert_eq!(untyped, ["ai-proxy"]);
    }
}
