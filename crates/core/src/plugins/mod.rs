//! Plugins: the registry of plugin kinds, their typed settings, and which instances apply to a request.
//!
//! Every plugin is one entry in [`registry::REGISTRY`] (name, Kong priority, phases, how instances
//! combine, parser) plus its core module; see [`registry`] for how to add one. Validation and
//! compilation handle every plugin's instances alike. Which instances may run for a request is
//! decided once per route at compile time ([`Plugins::for_route`]); the glue's phase runner then
//! picks, per phase and plugin, the instances that run ([`registry::select`]), filtering
//! consumer-scoped ones once the consumer is known.

pub mod redirect;
pub mod registry;
pub mod request_termination;

pub mod bot_detection;
pub mod cors;
pub mod geo_restriction;
pub mod http_log;
pub mod ip_restriction;
pub mod multipart;
pub mod opentelemetry;
pub mod request_size_limiting;
pub mod request_transformer;
pub mod response_transformer;
#[cfg(test)]
pub(crate) mod test_support;
pub mod transform;

use crate::config::{GatewayConfig, PluginConfig};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub use registry::{Phase, PluginDef, Runs, REGISTRY};

/// A plugin instance's compiled settings, of the type its core module defines (read them back with
/// [`Plugin::get`]).
#[derive(Clone)]
pub struct Plugin(Arc<dyn Any + Send + Sync>);

impl Plugin {
    pub fn new<T: Any + Send + Sync>(settings: T) -> Plugin {
        Plugin(Arc::new(settings))
    }

    /// The settings, if they are a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Plugin(..)")
    }
}

/// Why a plugin instance is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// No plugin has this name.
    UnknownName(String),
    /// The settings are wrong: `(path relative to config, message)` pairs.
    Config(Vec<(String, String)>),
}

/// Parse the settings of the plugin called `name`.
pub fn parse(name: &str, config: &Value) -> Result<Plugin, PluginError> {
    match registry::find(name) {
        Some(def) => (def.parse)(config),
        None => Err(PluginError::UnknownName(format!(
            "unknown plugin {}; known plugins: {}",
            crate::config::quote_name(name),
            registry::names().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Deserialize a plugin's settings into its typed struct (`null` or absent counts as `{}`), reporting
/// a type error or unknown field with its path relative to `config`.
pub fn settings<T: DeserializeOwned>(config: &Value) -> Result<T, PluginError> {
    let empty = Value::Object(Default::default());
    let value = if config.is_null() { &empty } else { config };
    crate::config::path_error::deserialize::<T>(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        PluginError::Config(vec![(path, without_values(&e.into_inner().to_string()))])
    })
}

/// A serde message without the string value it quotes (`invalid type: string "sk-…", expected u16`
/// becomes `invalid type: string, expected u16`; `unknown variant `sk-…`, expected one of …`
/// becomes `unknown variant, expected one of …`) unless the value is a short plain word (1 to 16
/// ASCII letters, digits or `_`, e.g. a misspelt variant `gigabytes`): a value of the wrong type or
/// an unknown variant may be anything pasted in the wrong place, a secret included. What was
/// expected stays.
fn without_values(message: &str) -> String {
    let plain = |v: &str| {
        (1..=16).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let mut out = message.to_string();
    for lead in ["invalid type: string \"", "invalid value: string \""] {
        if let Some(at) = out.find(lead) {
            let start = at + lead.len();
            let bytes = out.as_bytes();
            let mut i = start;
            // The value is written with `{:?}`: find its closing, unescaped quote.
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            let end = (i + 1).min(out.len());
            if !plain(&out[start..end.saturating_sub(1).max(start)]) {
                out.replace_range(start - 2..end, "");
            }
        }
    }
    if let Some(at) = out.find("unknown variant `") {
        let start = at + "unknown variant".len();
        let rest = &out[start..];
        let end = [", expected", ", there are no variants"]
            .iter()
            .filter_map(|s| rest.rfind(&format!("`{s}")).map(|i| i + 1))
            .min()
            .unwrap_or(rest.len());
        let value = rest[..end].trim_start().trim_matches('`');
        if !plain(value) {
            out.replace_range(start..start + end, "");
        }
    }
    out
}

/// One enabled plugin instance, compiled.
#[derive(Debug, Clone)]
pub struct PluginInstance {
    /// Position in the document's `plugins` array (for logs and "earlier wins" ties).
    pub index: usize,
    /// Stable identity, `<scope>/<id>` ([`instance_keys`]): what rate-limit counters belong to.
    pub key: String,
    pub name: String,
    /// The plugin's registry entry.
    pub def: &'static PluginDef,
    pub plugin: Plugin,
    pub route: Option<usize>,
    pub service: Option<usize>,
    /// Username of the consumer this instance is limited to, if any.
    pub consumer: Option<String>,
}

impl PluginInstance {
    /// The instance's settings, if its plugin's settings type is `T`.
    pub fn config<T: std::any::Any>(&self) -> Option<&T> {
        self.plugin.get()
    }

    /// How specific the instance is, Kong's precedence (higher wins): consumer + route + service,
    /// consumer + route, consumer + service, route + service, consumer, route, service, global.
    /// (Route + service beats a consumer alone, as in Kong.)
    pub fn specificity(&self) -> u8 {
        match (
            self.consumer.is_some(),
            self.route.is_some(),
            self.service.is_some(),
        ) {
            (true, true, true) => 7,
            (true, true, false) => 6,
            (true, false, true) => 5,
            (false, true, true) => 4,
            (true, false, false) => 3,
            (false, true, false) => 2,
            (false, false, true) => 1,
            (false, false, false) => 0,
        }
    }
}

/// An enabled instance as stored: its document entry, parsed and compiled on first use.
#[derive(Debug)]
struct LazyInstance {
    index: usize,
    key: String,
    route: Option<usize>,
    service: Option<usize>,
    json: Box<[u8]>,
    compiled: OnceLock<Result<PluginInstance, String>>,
}

impl LazyInstance {
    fn get(&self) -> &Result<PluginInstance, String> {
        self.compiled.get_or_init(|| {
            let p: PluginConfig = crate::config::path_error::from_slice(&self.json)
                .map_err(|e| format!("plugins[{}]: {e}", self.index))?;
            let def = registry::find(&p.name).ok_or_else(|| {
                let name = crate::config::quote_name(&p.name);
                format!("plugins[{}]: unknown plugin {name}", self.index)
            })?;
            let plugin =
                (def.parse)(&p.config).map_err(|e| format!("plugins[{}]: {e:?}", self.index))?;
            Ok(PluginInstance {
                index: self.index,
                key: self.key.clone(),
                name: p.name,
                def,
                plugin,
                route: self.route,
                service: self.service,
                consumer: p.consumer,
            })
        })
    }
}

/// All enabled instances of a version, and which apply to each route. An instance's settings are
/// compiled the first time a request on one of its routes needs them.
#[derive(Debug, Default)]
pub struct Plugins {
    instances: Vec<LazyInstance>,
    /// For route `r`, `list[starts[r]..starts[r + 1]]` are the indices into `instances` that may
    /// apply to it, in document order.
    starts: Vec<u32>,
    list: Vec<u32>,
    /// Per route, its plugins in the runner's order ([`RoutePlugins`]), made on first use.
    routes: Vec<OnceLock<RoutePlugins>>,
}

/// The plugins of one route in the order the phase runner calls them, with the instances that run
/// worked out once (they depend on the consumer only when an instance is consumer-scoped): what
/// `registry::present` and `registry::select` give, without doing it again per request.
#[derive(Debug, Default)]
pub struct RoutePlugins {
    entries: Vec<RouteEntry>,
    /// Whether some instance is consumer-scoped (then [`RouteView::running`] filters per request).
    consumer_scoped: bool,
}

#[derive(Debug)]
struct RouteEntry {
    def: &'static PluginDef,
    /// Position of `def` in [`REGISTRY`] (for the glue's hook table).
    registry_index: usize,
    /// The instances of this plugin that may apply, in document order (indices into `instances`).
    instances: Vec<u32>,
    /// Whether one of them is consumer-scoped.
    consumer_scoped: bool,
    /// When none is: the instances that run, per the plugin's `runs`.
    fixed: Vec<u32>,
}

/// The instances of one plugin that run for a request: what the runner hands a hook.
pub enum Running<'p> {
    One([&'p PluginInstance; 1]),
    Many(Vec<&'p PluginInstance>),
}

impl<'p> std::ops::Deref for Running<'p> {
    type Target = [&'p PluginInstance];
    fn deref(&self) -> &Self::Target {
        match self {
            Running::One(one) => one,
            Running::Many(v) => v,
        }
    }
}

/// A route's plugins ([`Plugins::route`]).
#[derive(Clone, Copy)]
pub struct RouteView<'p> {
    plugins: &'p Plugins,
    route: &'p RoutePlugins,
}

impl<'p> RouteView<'p> {
    /// Number of plugins (not instances) on the route.
    pub fn len(&self) -> usize {
        self.route.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.route.entries.is_empty()
    }

    /// Plugin `k`, in the runner's order (highest priority first, then by name).
    pub fn def(&self, k: usize) -> &'static PluginDef {
        self.route.entries[k].def
    }

    /// The position of plugin `k` in [`REGISTRY`].
    pub fn registry_index(&self, k: usize) -> usize {
        self.route.entries[k].registry_index
    }

    /// Whether which instances run depends on the consumer.
    pub fn consumer_scoped(&self) -> bool {
        self.route.consumer_scoped
    }

    /// The instances of plugin `k` that run for a request whose consumer is `username` (as
    /// [`registry::select`]); empty when none does.
    pub fn running(&self, k: usize, username: Option<&str>) -> Running<'p> {
        let entry = &self.route.entries[k];
        let get = |n: &u32| self.plugins.instance(*n as usize);
        if !entry.consumer_scoped {
            return match entry.fixed.as_slice() {
                [one] => match get(one) {
                    Some(i) => Running::One([i]),
                    None => Running::Many(Vec::new()),
                },
                many => Running::Many(many.iter().filter_map(get).collect()),
            };
        }
        let list: Vec<&PluginInstance> = entry.instances.iter().filter_map(get).collect();
        Running::Many(registry::select(list, entry.def, username))
    }
}

const NO_INDEX: u32 = u32::MAX;

impl Plugins {
    /// Compile the plugins of a valid configuration: which instances apply to which route, and every
    /// instance's settings (checked here; at run time they are compiled again lazily).
    pub fn compile(config: &GatewayConfig) -> Result<Plugins, String> {
        // First position of each name (as `position` would find it), built once.
        let route_names: HashMap<&str, usize> = if config.plugins.iter().any(|p| p.route.is_some())
        {
            config
                .routes
                .iter()
                .enumerate()
                .rev()
                .map(|(i, r)| (r.name.as_str(), i))
                .collect()
        } else {
            HashMap::new()
        };
        let services: HashMap<&str, usize> = config
            .services
            .iter()
            .enumerate()
            .rev()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut instances = Vec::new();
        let mut keys = instance_keys(&config.plugins).into_iter();
        for (index, p) in config.plugins.iter().enumerate() {
            let key = keys.next().unwrap_or_default();
            if !p.enabled {
                continue;
            }
            parse(&p.name, &p.config).map_err(|e| format!("plugins[{index}]: {e:?}"))?;
            let find = |name: &Option<String>, names: &HashMap<&str, usize>| match name {
                None => Ok(None),
                Some(n) => names
                    .get(n.as_str())
                    .copied()
                    .map(Some)
                    .ok_or_else(|| format!("plugins[{index}]: unknown reference {n:?}")),
            };
            let route = find(&p.route, &route_names)?;
            let service = find(&p.service, &services)?;
            let json = serde_json::to_vec(p).map_err(|e| format!("plugins[{index}]: {e}"))?;
            instances.push(LazyInstance {
                index,
                key,
                route,
                service,
                json: json.into(),
                compiled: OnceLock::new(),
            });
        }
        // Instances by scope, so that each route looks only at those that can apply to it.
        let mut global = Vec::new();
        let mut by_service: HashMap<usize, Vec<u32>> = HashMap::new();
        let mut by_route: HashMap<usize, Vec<u32>> = HashMap::new();
        for (n, i) in instances.iter().enumerate() {
            match (i.route, i.service) {
                (Some(r), _) => by_route.entry(r).or_default().push(n as u32),
                (None, Some(s)) => by_service.entry(s).or_default().push(n as u32),
                (None, None) => global.push(n as u32),
            }
        }
        let mut starts = Vec::with_capacity(config.routes.len() + 1);
        let mut list = Vec::new();
        for (r, route) in config.routes.iter().enumerate() {
            starts.push(list.len() as u32);
            if instances.is_empty() {
                continue;
            }
            let service = services.get(route.primary_service()).copied();
            let from = list.len();
            list.extend_from_slice(&global);
            if let Some(v) = service.and_then(|s| by_service.get(&s)) {
                list.extend_from_slice(v);
            }
            if let Some(v) = by_route.get(&r) {
                list.extend(v.iter().copied().filter(|&n| {
                    let i = &instances[n as usize];
                    i.service.is_none() || i.service == service
                }));
            }
            // In configuration order, as before.
            list[from..].sort_unstable();
        }
        starts.push(list.len() as u32);
        let routes = (0..config.routes.len()).map(|_| OnceLock::new()).collect();
        Ok(Plugins {
            instances,
            starts,
            list,
            routes,
        })
    }

    /// A compiled instance by its index in `instances`.
    fn instance(&self, n: usize) -> Option<&PluginInstance> {
        self.instances.get(n)?.get().as_ref().ok()
    }

    /// The plugins of `route` in the runner's order (call [`Plugins::ready`] first; an instance
    /// that does not compile is left out).
    pub fn route(&self, route: usize) -> RouteView<'_> {
        static EMPTY: RoutePlugins = RoutePlugins {
            entries: Vec::new(),
            consumer_scoped: false,
        };
        let table = match self.routes.get(route) {
            Some(cell) => cell.get_or_init(|| self.make_route(route)),
            None => &EMPTY,
        };
        RouteView {
            plugins: self,
            route: table,
        }
    }

    fn make_route(&self, route: usize) -> RoutePlugins {
        let mut entries: Vec<RouteEntry> = Vec::new();
        for n in self.indices(route) {
            let Some(i) = self.instance(n) else {
                continue;
            };
            let at = match entries.iter().position(|e| std::ptr::eq(e.def, i.def)) {
                Some(at) => at,
                None => {
                    entries.push(RouteEntry {
                        def: i.def,
                        registry_index: REGISTRY
                            .iter()
                            .position(|d| d.name == i.def.name)
                            .unwrap_or(usize::MAX),
                        instances: Vec::new(),
                        consumer_scoped: false,
                        fixed: Vec::new(),
                    });
                    entries.len() - 1
                }
            };
            let e = &mut entries[at];
            e.instances.push(n as u32);
            e.consumer_scoped |= i.consumer.is_some();
        }
        // The order of `registry::present`.
        crate::sort::sort_by(&mut entries, |a, b| {
            b.def
                .priority
                .cmp(&a.def.priority)
                .then(a.def.name.cmp(b.def.name))
        });
        // Without consumer-scoped instances, `registry::select` gives the same for every request.
        for e in &mut entries {
            if e.consumer_scoped {
                continue;
            }
            e.fixed = match e.def.runs {
                Runs::All => e.instances.clone(),
                Runs::MostSpecific => e
                    .instances
                    .iter()
                    .copied()
                    .filter_map(|n| Some((n, self.instance(n as usize)?)))
                    .max_by_key(|(_, i)| (i.specificity(), std::cmp::Reverse(i.index)))
                    .map(|(n, _)| n)
                    .into_iter()
                    .collect(),
            };
        }
        RoutePlugins {
            consumer_scoped: entries.iter().any(|e| e.consumer_scoped),
            entries,
        }
    }

    /// The instances that may apply to a request on `route` (consumer-scoped ones included: check
    /// `PluginInstance::consumer` once the consumer is known). Call [`Plugins::ready`] first: an
    /// instance that does not compile is left out here.
    pub fn for_route(&self, route: usize) -> impl Iterator<Item = &PluginInstance> + '_ {
        self.indices(route)
            .filter_map(move |i| self.instances.get(i)?.get().as_ref().ok())
    }

    /// Compile the instances of `route` now; the first error if one does not compile (only possible
    /// with a damaged compiled form).
    pub fn ready(&self, route: usize) -> Result<(), String> {
        for i in self.indices(route) {
            if let Some(Err(e)) = self.instances.get(i).map(LazyInstance::get) {
                return Err(e.clone());
            }
        }
        Ok(())
    }

    fn indices(&self, route: usize) -> impl Iterator<Item = usize> + '_ {
        let start = self.starts.get(route).copied().unwrap_or(0) as usize;
        let end = self.starts.get(route + 1).copied().unwrap_or(0) as usize;
        self.list
            .get(start..end.max(start))
            .unwrap_or(&[])
            .iter()
            .map(|&i| i as usize)
    }

    /// The stored form (see `crate::compiled`): instances as JSON with their resolved scope, then the
    /// per-route lists.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let put = |out: &mut Vec<u8>, w: u32| out.extend_from_slice(&w.to_le_bytes());
        put(out, self.instances.len() as u32);
        for i in &self.instances {
            put(out, i.index as u32);
            put(out, i.route.map_or(NO_INDEX, |r| r as u32));
            put(out, i.service.map_or(NO_INDEX, |r| r as u32));
            put(out, i.key.len() as u32);
            out.extend_from_slice(i.key.as_bytes());
            put(out, i.json.len() as u32);
            out.extend_from_slice(&i.json);
        }
        put(out, self.starts.len() as u32);
        for w in &self.starts {
            put(out, *w);
        }
        put(out, self.list.len() as u32);
        for w in &self.list {
            put(out, *w);
        }
    }

    /// Read what [`Plugins::encode`] wrote; `None` if it does not fit.
    pub fn decode(bytes: &[u8]) -> Option<Plugins> {
        let mut r = crate::compiled::Reader::new(bytes);
        let n = r.u32()? as usize;
        let mut instances = Vec::with_capacity(n.min(bytes.len() / 16));
        for _ in 0..n {
            let index = r.u32()? as usize;
            let route = r.u32()?;
            let service = r.u32()?;
            let key_len = r.u32()? as usize;
            let key = String::from_utf8(r.bytes(key_len)?.to_vec()).ok()?;
            let len = r.u32()? as usize;
            instances.push(LazyInstance {
                index,
                key,
                route: (route != NO_INDEX).then_some(route as usize),
                service: (service != NO_INDEX).then_some(service as usize),
                json: r.bytes(len)?.into(),
                compiled: OnceLock::new(),
            });
        }
        let starts = r.u32s()?;
        let list = r.u32s()?;
        r.end()?;
        let routes = (0..starts.len().saturating_sub(1))
            .map(|_| OnceLock::new())
            .collect();
        Some(Plugins {
            instances,
            starts,
            list,
            routes,
        })
    }
}

/// Longest explicit plugin instance `id`.
pub const MAX_ID_LEN: usize = 64;

/// The scope of an instance as written in its key: `global`, or its `service`, `route` and `consumer`
/// references in that order, e.g. `route=orders`, `service=api,consumer=alice`. (Names cannot contain
/// `=`, `,` or `/`, so a scope is unambiguous.)
pub fn scope(p: &PluginConfig) -> String {
    let parts: Vec<String> = [
        ("service", &p.service),
        ("route", &p.route),
        ("consumer", &p.consumer),
    ]
    .iter()
    .filter_map(|(what, name)| name.as_ref().map(|n| format!("{what}={n}")))
    .collect();
    if parts.is_empty() {
        "global".into()
    } else {
        parts.join(",")
    }
}

/// The instance's id in its scope: the explicit `id`, else its plugin name, numbered `name.2`,
/// `name.3`, ... for the 2nd, 3rd, ... instance of that name without an id in the same scope (in
/// document order, enabled or not).
pub fn instance_ids(plugins: &[PluginConfig]) -> Vec<String> {
    let mut seen: std::collections::HashMap<(String, &str), usize> = Default::default();
    plugins
        .iter()
        .map(|p| match &p.id {
            Some(id) => id.clone(),
            None => {
                let n = seen.entry((scope(p), p.name.as_str())).or_insert(0);
                *n += 1;
                if *n == 1 {
                    p.name.clone()
                } else {
                    format!("{}.{n}", p.name)
                }
            }
        })
        .collect()
}

/// The stable identity of each instance, `<scope>/<id>` (e.g. `route=orders/rate-limiting`): it does
/// not depend on the instance's position, so inserting, removing or reordering other instances
/// keeps it. Validation guarantees the keys of a valid document are unique.
pub fn instance_keys(plugins: &[PluginConfig]) -> Vec<String> {
    plugins
        .iter()
        .zip(instance_ids(plugins))
        .map(|(p, id)| format!("{}/{id}", scope(p)))
        .collect()
}

#[cfg(test)]
mod scope_tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Kong's precedence of scopes: route + service beats a consumer alone.
    #[test]
    fn specificity_is_kongs_precedence() {
        let text = serde_json::json!({
            "format_version": 1,
            "services": [{"name": "a", "url": "http://a"}],
            "routes": [{"name": "r", "service": "a", "paths": ["/r"]}],
            "plugins": [
                {"name": "key-auth"},
                {"name": "key-auth", "service": "a"},
                {"name": "key-auth", "route": "r"},
                {"name": "key-auth", "consumer": "c"},
                {"name": "key-auth", "route": "r", "service": "a"},
                {"name": "key-auth", "consumer": "c", "service": "a"},
                {"name": "key-auth", "consumer": "c", "route": "r"},
                {"name": "key-auth", "consumer": "c", "route": "r", "service": "a"}
            ]
        })
        .to_string();
        let config = crate::config::parse_and_validate(&text).expect("valid");
        let plugins = Plugins::compile(&config).unwrap();
        let order: Vec<u8> = plugins.for_route(0).map(|i| i.specificity()).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5, 6, 7]);
    }

    /// A setting of the wrong type or an unknown variant is reported without its value.
    #[test]
    fn settings_errors_do_not_quote_values() {
        let one = |v: serde_json::Value, name: &str| match parse(name, &v) {
            Err(PluginError::Config(mut e)) => e.remove(0),
            other => panic!("expected an error, got {other:?}"),
        };
        let (path, message) = one(
            serde_json::json!({"status_code": "sk-SECRET \" \\ x"}),
            "request-termination",
        );
        assert_eq!(path, "status_code");
        assert_eq!(message, "invalid type: string, expected u16");
        let (path, message) = one(
            serde_json::json!({"allowed_payload_size": 1, "size_unit": "sk-SECRET`, expected"}),
            "request-size-limiting",
        );
        assert_eq!(path, "size_unit");
        assert!(
            message.starts_with("unknown variant, expected one of `bytes`"),
            "{message}"
        );
        assert_eq!(
            without_values("invalid value: string \"/a b\", expected a path"),
            "invalid value: string, expected a path"
        );
        assert_eq!(
            without_values("missing field `location`"),
            "missing field `location`"
        );
        // A short plain word is kept: it helps and cannot be much of a secret.
        assert_eq!(
            without_values("unknown variant `gigabytes`, expected one of `bytes`"),
            "unknown variant `gigabytes`, expected one of `bytes`"
        );
        assert_eq!(
            without_values("invalid type: string \"yes\", expected a boolean"),
            "invalid type: string \"yes\", expected a boolean"
        );
    }

    /// Each route gets exactly the enabled instances whose scope covers it, in configuration order.
    #[test]
    fn instances_per_route_follow_scope_and_order() {
        let text = serde_json::json!({
            "format_version": 1,
            "services": [{"name": "a", "url": "http://a"}, {"name": "b", "url": "http://b"}],
            "routes": [
                {"name": "r0", "service": "a", "paths": ["/r0"]},
                {"name": "r1", "service": "b", "paths": ["/r1"]},
                {"name": "r2", "service": "a", "paths": ["/r2"]}
            ],
            "plugins": [
                {"name": "key-auth", "route": "r2"},
                {"name": "key-auth", "service": "b"},
                {"name": "key-auth"},
                {"name": "key-auth", "route": "r0", "service": "b"},
                {"name": "key-auth", "route": "r0", "service": "a"},
                {"name": "key-auth", "enabled": false},
                {"name": "key-auth", "service": "a"}
            ]
        })
        .to_string();
        let config = crate::config::parse_and_validate(&text).expect("valid");
        let plugins = Plugins::compile(&config).unwrap();
        let got = |r: usize| plugins.for_route(r).map(|i| i.index).collect::<Vec<_>>();
        assert_eq!(got(0), vec![2, 4, 6]);
        assert_eq!(got(1), vec![1, 2]);
        assert_eq!(got(2), vec![0, 2, 6]);
    }

    /// A route's plugins come in the runner's order (priority, then name) with the instances that
    /// run, as `registry::present` and `registry::select` would give them.
    #[test]
    fn route_plugins_match_present_and_select() {
        let text = serde_json::json!({
            "format_version": 1,
            "services": [{"name": "a", "url": "http://a"}],
            "routes": [
                {"name": "r0", "service": "a", "paths": ["/r0"]},
                {"name": "r1", "service": "a", "paths": ["/r1"]}
            ],
            "plugins": [
                {"name": "rate-limiting", "config": {"minute": 5}},
                {"name": "key-auth"},
                {"name": "key-auth", "route": "r0"},
                {"name": "rate-limiting", "route": "r0", "consumer": "alice", "config": {"minute": 9}},
                {"name": "cors", "route": "r0"}
            ]
        })
        .to_string();
        let config = crate::config::parse_and_validate(&text).expect("valid");
        let plugins = Plugins::compile(&config).unwrap();
        for r in 0..2 {
            plugins.ready(r).unwrap();
            let view = plugins.route(r);
            let all: Vec<&PluginInstance> = plugins.for_route(r).collect();
            let present = registry::present(all.iter().copied());
            let names: Vec<_> = (0..view.len()).map(|k| view.def(k).name).collect();
            assert_eq!(names, present.iter().map(|d| d.name).collect::<Vec<_>>());
            for k in 0..view.len() {
                assert_eq!(REGISTRY[view.registry_index(k)].name, view.def(k).name);
                for user in [None, Some("alice"), Some("bob")] {
                    let want: Vec<usize> = registry::select(all.iter().copied(), view.def(k), user)
                        .iter()
                        .map(|i| i.index)
                        .collect();
                    let got: Vec<usize> = view.running(k, user).iter().map(|i| i.index).collect();
                    assert_eq!(got, want, "route {r} {} {user:?}", view.def(k).name);
                }
            }
        }
        assert_eq!(plugins.route(0).len(), 3);
        assert!(plugins.route(0).consumer_scoped());
        assert!(!plugins.route(1).consumer_scoped());
        assert!(plugins.route(7).is_empty());
    }
}
