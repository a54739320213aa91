//! The plugin registry: every plugin the gateway knows, in one table.
//!
//! Each entry ([`PluginDef`]) says what the runner needs to know about a plugin: its name, its Kong
//! priority (higher runs first within a phase), the phases it takes part in, how several instances
//! that apply to one request combine ([`Runs`]), whether an instance may be scoped to a consumer,
//! and how its `config` is parsed and validated. Plugins never look for each other: one that must
//! act before another does so by its phase and priority (`cors` answers preflights in `Rewrite` at
//! 2000, before `request-termination`'s `Rewrite` hook at 2).
//!
//! **Adding a plugin** touches exactly four places (docs/plugins.md, "Writing a plugin"):
//! 1. its core module (`crates/core/src/plugins/<name>.rs`, or a feature module such as `auth`):
//!    the typed settings, their validation (errors with paths relative to `config`), pure decisions
//!    and native tests;
//! 2. one entry in [`REGISTRY`] below;
//! 3. its glue module `src/plugins/<name>.rs` with one hook per phase listed in its entry;
//! 4. one line in the glue hook table (`src/plugins/mod.rs`, `HOOKS`).
//!
//! Nothing else changes: validation, compilation, the per-route instance lists and the phase runner
//! (`src/pipeline.rs`) work from these two tables.

use super::{Plugin, PluginError, PluginInstance};
use serde_json::Value;

/// The phases of a request, in the order they run (Kong's, plus `Serve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// Before anything else, consumer unknown: may edit the upstream request or answer at once.
    Rewrite,
    /// Authentication, access rules, limits; may edit the upstream request or answer at once.
    Access,
    /// Produces the response in place of the plain proxy (cache, AI provider): the highest-priority
    /// plugin of the route with this phase does, calling the origin itself when it needs to.
    Serve,
    /// Sees the response's status and headers before they go to the client (also error answers).
    HeaderFilter,
    /// May wrap or replace the response body.
    BodyFilter,
    /// Sees the final status and log fields, after the response is settled.
    Log,
}

/// How the instances of one plugin that apply to a request combine (docs/plugins.md, "Which
/// instances run").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// Only the most specific instance runs (consumer beats route beats service beats global;
    /// between equals the one earlier in the document).
    MostSpecific,
    /// Every applicable instance runs, in document order.
    All,
}

/// One plugin the gateway knows.
#[derive(Debug)]
pub struct PluginDef {
    pub name: &'static str,
    /// Kong's priority: within a phase, higher runs first.
    pub priority: u16,
    /// The phases the plugin's glue module has a hook for.
    pub phases: &'static [Phase],
    pub runs: Runs,
    /// Kong's `no_consumer`: an instance cannot be scoped to a consumer (validation refuses
    /// `consumer`). Set for a plugin whose request decision comes before authentication.
    pub no_consumer: bool,
    /// Parse and validate an instance's `config` (`null` when absent).
    pub parse: fn(&Value) -> Result<Plugin, PluginError>,
}

impl PluginDef {
    pub fn takes_part_in(&self, phase: Phase) -> bool {
        self.phases.contains(&phase)
    }
}

use Phase::*;
use Runs::*;

/// Every plugin, highest priority first. One entry per plugin; keep each to a few lines.
pub static REGISTRY: &[PluginDef] = &[
    PluginDef {
        name: "bot-detection",
        priority: 2500,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: true,
        parse: |c| super::bot_detection::BotDetectionConfig::parse(c).map(Plugin::new),
    },
    PluginDef {
        name: "cors",
        priority: 2000,
        phases: &[Rewrite, HeaderFilter],
        runs: MostSpecific,
        no_consumer: true,
        parse: |c| super::cors::CorsConfig::parse(c).map(Plugin::new),
    },
    PluginDef {
        name: "jwt",
        priority: 1450,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| {
            crate::auth::settings(c)
                .and_then(crate::auth::JwtConfig::validate)
                .map(Plugin::new)
        },
    },
    PluginDef {
        name: "key-auth",
        priority: 1250,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| {
            crate::auth::settings(c)
                .and_then(crate::auth::KeyAuthConfig::validate)
                .map(Plugin::new)
        },
    },
    PluginDef {
        name: "basic-auth",
        priority: 1100,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| {
            crate::auth::settings(c)
                .and_then(crate::auth::BasicAuthConfig::validate)
                .map(Plugin::new)
        },
    },
    PluginDef {
        name: "hmac-auth",
        priority: 1030,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| {
            crate::auth::settings(c)
                .and_then(crate::auth::HmacAuthConfig::validate)
                .map(Plugin::new)
        },
    },
    PluginDef {
        name: "ip-restriction",
        priority: 990,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| super::ip_restriction::IpRestrictionConfig::parse(c).map(Plugin::new),
    },
    PluginDef {
        name: "geo-restriction",
        priority: 985,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| super::geo_restriction::GeoRestrictionConfig::parse(c).map(Plugin::new),
    },
    PluginDef {
        name: "request-size-limiting",
        priority: 951,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| {
            super::request_size_limiting::RequestSizeLimitingConfig::parse(c).map(Plugin::new)
        },
    },
    PluginDef {
        name: "acl",
        priority: 950,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| {
            crate::auth::settings(c)
                .and_then(crate::auth::AclConfig::validate)
                .map(Plugin::new)
        },
    },
    PluginDef {
        name: "rate-limiting",
        priority: 910,
        phases: &[Access],
        runs: All,
        no_consumer: false,
        parse: |c| crate::ratelimit::parse(c).map(Plugin::new),
    },
    PluginDef {
        name: "request-transformer",
        priority: 801,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| super::request_transformer::RequestTransformerConfig::parse(c).map(Plugin::new),
    },
    PluginDef {
        name: "response-transformer",
        priority: 800,
        phases: &[HeaderFilter, BodyFilter],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| {
            super::response_transformer::ResponseTransformerConfig::parse(c).map(Plugin::new)
        },
    },
    PluginDef {
        name: "redirect",
        priority: 779,
        phases: &[Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| super::redirect::parse(c).map(Plugin::new),
    },
    PluginDef {
        name: "ai-proxy",
        priority: 770,
        phases: &[Serve],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| {
            crate::ai::AiProxyConfig::compile(c)
                .map(Plugin::new)
                .map_err(PluginError::Config)
        },
    },
    PluginDef {
        name: "proxy-cache",
        priority: 100,
        phases: &[Serve],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| crate::cache::parse(c).map(Plugin::new),
    },
    PluginDef {
        name: "opentelemetry",
        priority: 14,
        phases: &[Rewrite, Log],
        runs: MostSpecific,
        no_consumer: true,
        parse: |c| super::opentelemetry::parse(c).map(Plugin::new),
    },
    PluginDef {
        name: "http-log",
        priority: 12,
        phases: &[Log],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| super::http_log::parse(c).map(Plugin::new),
    },
    PluginDef {
        name: "request-termination",
        priority: 2,
        phases: &[Rewrite, Access],
        runs: MostSpecific,
        no_consumer: false,
        parse: |c| super::request_termination::parse(c).map(Plugin::new),
    },
];

/// The registry entry of `name`.
pub fn find(name: &str) -> Option<&'static PluginDef> {
    REGISTRY.iter().find(|d| d.name == name)
}

/// Every plugin name, in registry order.
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|d| d.name)
}

/// The plugins with an instance among `instances`, in the order they run within a phase: highest
/// priority first, then by name (so that the order never depends on the document).
pub fn present<'a>(
    instances: impl IntoIterator<Item = &'a PluginInstance>,
) -> Vec<&'static PluginDef> {
    let mut defs: Vec<&'static PluginDef> = Vec::new();
    for i in instances {
        if !defs.iter().any(|d| std::ptr::eq(*d, i.def)) {
            defs.push(i.def);
        }
    }
    crate::sort::sort_by(&mut defs, |a, b| {
        b.priority.cmp(&a.priority).then(a.name.cmp(b.name))
    });
    defs
}

/// The instances of plugin `def` among `instances` that run for a request whose consumer is
/// `username` (`None`: not known, or not authenticated): consumer-scoped instances only for their
/// consumer, then per [`PluginDef::runs`].
pub fn select<'a>(
    instances: impl IntoIterator<Item = &'a PluginInstance>,
    def: &PluginDef,
    username: Option<&str>,
) -> Vec<&'a PluginInstance> {
    let applicable = instances.into_iter().filter(|i| {
        i.name == def.name && i.consumer.as_deref().is_none_or(|c| Some(c) == username)
    });
    match def.runs {
        All => applicable.collect(),
        MostSpecific => applicable
            .max_by_key(|i| (i.specificity(), std::cmp::Reverse(i.index)))
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn names_are_unique_and_sorted_by_priority() {
        for (i, d) in REGISTRY.iter().enumerate() {
            assert!(
                REGISTRY[..i].iter().all(|e| e.name != d.name),
                "{} twice",
                d.name
            );
            assert!(!d.phases.is_empty(), "{} takes part in no phase", d.name);
        }
        assert!(REGISTRY.windows(2).all(|w| w[0].priority >= w[1].priority));
    }

    /// A plugin whose request decision is made only in the rewrite phase (the consumer unknown)
    /// cannot be scoped to a consumer: such an instance would never decide there.
    #[test]
    fn rewrite_only_plugins_cannot_be_consumer_scoped() {
        for d in REGISTRY {
            let rewrite_only =
                d.takes_part_in(Rewrite) && !d.takes_part_in(Access) && !d.takes_part_in(Serve);
            assert!(!rewrite_only || d.no_consumer, "{}", d.name);
        }
        let cors = find("cors").unwrap();
        assert_eq!(cors.phases, [Rewrite, HeaderFilter]);
        assert!(cors.no_consumer);
        // cors answers preflights before request-termination's rewrite hook.
        assert!(cors.priority > find("request-termination").unwrap().priority);
    }

    #[test]
    fn every_plugin_parses_an_empty_config_or_reports_a_config_error() {
        for d in REGISTRY {
            match (d.parse)(&Value::Null) {
                Ok(p) => assert!(!format!("{p:?}").is_empty()),
                Err(PluginError::Config(errors)) => assert!(!errors.is_empty(), "{}", d.name),
                Err(e) => panic!("{}: {e:?}", d.name),
            }
        }
    }

    fn instance(name: &str, index: usize, route: bool, consumer: Option<&str>) -> PluginInstance {
        let def = find(name).unwrap();
        PluginInstance {
            index,
            key: format!("k{index}"),
            name: name.into(),
            def,
            plugin: Plugin::new(()),
            route: route.then_some(0),
            service: None,
            consumer: consumer.map(str::to_string),
        }
    }

    #[test]
    fn present_orders_by_priority_and_select_follows_runs() {
        let list = [
            instance("rate-limiting", 0, false, None),
            instance("key-auth", 1, false, None),
            instance("key-auth", 2, true, None),
            instance("rate-limiting", 3, true, Some("alice")),
            instance("key-auth", 4, true, None),
            instance("jwt", 5, false, None),
        ];
        let order: Vec<_> = present(&list).iter().map(|d| d.name).collect();
        assert_eq!(order, ["jwt", "key-auth", "rate-limiting"]);
        let idx = |v: Vec<&PluginInstance>| v.iter().map(|i| i.index).collect::<Vec<_>>();
        // Most specific: route beats global; between equals the earlier one.
        assert_eq!(idx(select(&list, find("key-auth").unwrap(), None)), [2]);
        // All: every applicable one; consumer-scoped ones only for their consumer.
        assert_eq!(
            idx(select(&list, find("rate-limiting").unwrap(), None)),
            [0]
        );
        assert_eq!(
            idx(select(&list, find("rate-limiting").unwrap(), Some("alice"))),
            [0, 3]
        );
        assert!(select(&list, find("acl").unwrap(), None).is_empty());
    }
}
