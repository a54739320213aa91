//! One configuration version, compiled: validated config, routing index and resolved upstreams.
//! Built once per version and shared by every request the isolate serves.

use crate::compiled;
use crate::config::{
    parse_and_validate, GatewayConfig, HashOn, ServiceConfig, ServiceUrl, ValidationError,
    WeightedService,
};
use crate::error::{ErrorKind, GatewayError};
use crate::plugins::{PluginInstance, Plugins};
use crate::router::{RequestView, Router};
use crate::upstream::{self, HashSource, KeySource, Policy, Target};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// A service, resolved for fast proxying. `origin` to `port` describe its first target (its only
/// one for a service with a `url`).
#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    /// `scheme://host[:port]`.
    pub origin: String,
    /// `host[:port]`, the Host header the origin expects.
    pub authority: String,
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    pub timeout_ms: u64,
    /// Headers set on every upstream request (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Every target (one for a service with a `url`).
    pub targets: Vec<Target>,
    /// Balancing, health checks and retries.
    pub policy: Policy,
    /// What per-isolate balancing state depends on (see `upstream::fingerprint`).
    pub fingerprint: u64,
    /// Base path of every target, without a trailing slash.
    pub base_path: String,
}

impl Upstream {
    /// Whether choosing a target needs the balancer (several targets, or health checks); a
    /// single-origin service without health checks always goes to its one target.
    pub fn balanced(&self) -> bool {
        self.targets.len() > 1 || self.policy.breaker.is_some()
    }
}

/// What to do with a request: where to send it and how.
#[derive(Debug)]
pub struct ProxyPlan<'g> {
    /// Index of the matched route in the config.
    pub route_index: usize,
    pub route: &'g str,
    pub upstream: &'g Upstream,
    /// Index of `upstream` among the services (see [`Gateway::upstream`]).
    pub service_index: usize,
    /// Absolute upstream URL, query included.
    pub url: String,
    /// With `preserve_host`, the URL names the client's host and this is the host to connect to
    /// instead (Cloudflare's `cf.resolveOverride`): the Workers runtime derives the Host header from
    /// the URL and ignores a `Host` header set by the Worker.
    pub resolve_override: Option<&'g str>,
    /// How many bytes at the start of the client's path `strip_path` removed (see
    /// `RouteMatch::stripped`; `proxy::forwarded_prefix` makes `X-Forwarded-Prefix` of them).
    pub stripped: usize,
    /// Where the path starts in `url` (after `scheme://host[:port]`).
    pub path_start: usize,
    /// The route's captured path parameters, in order (templates' `uri_captures`).
    pub params: Vec<(String, String)>,
}

impl ProxyPlan<'_> {
    /// The URL and `resolve_override` for target `i` of the upstream (`url` is for target 0).
    /// `client_host` is the request's host (used with `preserve_host`).
    pub fn url_for(&self, i: usize, client_host: &str) -> (String, Option<String>) {
        let Some(t) = self.upstream.targets.get(i).filter(|_| i > 0) else {
            return (self.url.clone(), self.resolve_override.map(str::to_string));
        };
        let rest = &self.url[self.path_start.min(self.url.len())..];
        if self.resolve_override.is_some() {
            let port = t.port.map(|p| format!(":{p}")).unwrap_or_default();
            (
                format!("{}://{client_host}{port}{rest}", t.scheme),
                Some(t.host.clone()),
            )
        } else {
            ([&*t.origin, rest].concat(), None)
        }
    }
}

/// A route that splits its traffic across services (`services` on the route), as stored in the
/// compiled form.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SplitDef {
    route: usize,
    services: Vec<WeightedService>,
    hash_on: HashOn,
    hash_on_header: Option<String>,
    hash_on_cookie: Option<String>,
}

/// A route's traffic split, resolved: (service index, weight, identity hash) per service.
#[derive(Debug)]
struct Split {
    choices: Vec<(usize, u32, u64)>,
    source: HashSource,
    /// Requests placed so far in this isolate (without a hash: a Weyl sequence spreads them).
    placed: AtomicU64,
}

impl Split {
    fn choose(&self, key: Option<u64>, seed: Option<u64>) -> usize {
        let items = || self.choices.iter().map(|(s, w, id)| (*s, *w, *id));
        if let Some(key) = key {
            if let Some(s) = upstream::rendezvous(key, items()) {
                return s;
            }
        }
        if let Some(seed) = seed {
            if let Some(s) = upstream::rendezvous(seed, items()) {
                return s;
            }
        }
        let n = self.placed.fetch_add(1, Ordering::Relaxed);
        let total: u64 = self.choices.iter().map(|c| u64::from(c.1)).sum();
        // The fractional parts of n * golden ratio are evenly spread for every run of requests.
        let u = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
        let mut at = (u * total as f64) as u64;
        for (s, w, _) in items() {
            if at < u64::from(w) {
                return s;
            }
            at -= u64::from(w);
        }
        self.choices.first().map_or(0, |c| c.0)
    }
}

fn split_defs(config: &GatewayConfig) -> Vec<SplitDef> {
    config
        .routes
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.services.is_empty())
        .map(|(i, r)| SplitDef {
            route: i,
            services: r.services.clone(),
            hash_on: r.hash_on,
            hash_on_header: r.hash_on_header.clone(),
            hash_on_cookie: r.hash_on_cookie.clone(),
        })
        .collect()
}

fn splits(
    defs: Vec<SplitDef>,
    services: &[ServiceConfig],
) -> Result<HashMap<usize, Split>, Vec<ValidationError>> {
    let index: HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .rev()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut out = HashMap::new();
    for d in defs {
        let mut choices = Vec::with_capacity(d.services.len());
        for (j, w) in d.services.iter().enumerate() {
            let s = index.get(w.name.as_str()).copied().ok_or_else(|| {
                internal(
                    &format!("routes[{}].services[{j}].name", d.route),
                    format!("unknown service {:?}", w.name),
                )
            })?;
            choices.push((
                s,
                u32::try_from(w.weight).unwrap_or(0),
                upstream::fnv1a(w.name.as_bytes()),
            ));
        }
        out.insert(
            d.route,
            Split {
                choices,
                source: HashSource::new(
                    d.hash_on,
                    d.hash_on_header.as_ref(),
                    d.hash_on_cookie.as_ref(),
                ),
                placed: AtomicU64::new(0),
            },
        );
    }
    Ok(out)
}

/// The services part of the compiled form: the services alone (a JSON array) when no route splits
/// its traffic, else both.
#[derive(Serialize, Deserialize)]
struct ServicesPart {
    services: Vec<ServiceConfig>,
    splits: Vec<SplitDef>,
}

fn read_services_part(bytes: &[u8]) -> Option<(Vec<ServiceConfig>, Vec<SplitDef>)> {
    // Through the validator's deserializers (path_error), not serde_json's reader: one copy in the wasm.
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if value.is_array() {
        let services = crate::config::path_error::deserialize::<Vec<ServiceConfig>>(&value).ok()?;
        return Some((services, Vec::new()));
    }
    let part = crate::config::path_error::deserialize::<ServicesPart>(&value).ok()?;
    Some((part.services, part.splits))
}

pub struct Gateway {
    router: Router,
    upstreams: Vec<Upstream>,
    plugins: Plugins,
    /// Routes that split their traffic across services, by route index (usually none).
    splits: HashMap<usize, Split>,
}

fn internal(path: &str, message: String) -> Vec<ValidationError> {
    vec![ValidationError {
        path: path.to_string(),
        message,
    }]
}

fn upstreams(services: &[ServiceConfig]) -> Result<Vec<Upstream>, Vec<ValidationError>> {
    let mut upstreams = Vec::with_capacity(services.len());
    for (i, s) in services.iter().enumerate() {
        let (first, targets) = if s.targets.is_empty() {
            let url = ServiceUrl::parse(&s.url)
                .map_err(|e| internal(&format!("services[{i}].url"), e))?;
            let target = Target::from_url(&url, 1);
            (url, vec![target])
        } else {
            let mut targets = Vec::with_capacity(s.targets.len());
            let mut first = None;
            for (j, t) in s.targets.iter().enumerate() {
                let url = ServiceUrl::parse(&t.url)
                    .map_err(|e| internal(&format!("services[{i}].targets[{j}].url"), e))?;
                targets.push(Target::from_url(&url, u32::try_from(t.weight).unwrap_or(0)));
                first.get_or_insert(url);
            }
            let Some(first) = first else {
                return Err(internal(&format!("services[{i}]"), "no target".into()));
            };
            (first, targets)
        };
        let policy = Policy::of(s);
        upstreams.push(Upstream {
            name: s.name.clone(),
            origin: first.origin(),
            authority: first.authority(),
            scheme: first.scheme.clone(),
            host: first.host.clone(),
            port: first.port,
            timeout_ms: s.timeout_ms,
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            fingerprint: upstream::fingerprint(&targets, &policy),
            targets,
            policy,
            base_path: first.base_path.clone(),
        });
    }
    Ok(upstreams)
}

impl Gateway {
    /// Parse, validate and compile a configuration document. Errors are one line each, with JSON paths.
    pub fn compile(text: &str) -> Result<Gateway, Vec<ValidationError>> {
        let config = parse_and_validate(text)?;
        Self::build(config, Some(text))
    }

    pub fn from_config(config: GatewayConfig) -> Result<Gateway, Vec<ValidationError>> {
        Self::build(config, None)
    }

    /// With `text` (the document `config` was parsed from), route records point into it rather
    /// than holding a copy of each route.
    fn build(config: GatewayConfig, text: Option<&str>) -> Result<Gateway, Vec<ValidationError>> {
        let upstreams = upstreams(&config.services)?;
        // With `text`, `config` came from `parse_and_validate`.
        let index = match text {
            Some(_) => Router::build_index_of_valid(&config, text),
            None => Router::build_index(&config, None),
        };
        let router = index
            .and_then(|index| Router::from_index(index, 0, text.map(|t| t.as_bytes().to_vec())))
            .map_err(|e| internal("routes", e))?;
        let plugins = Plugins::compile(&config).map_err(|e| internal("plugins", e))?;
        let splits = splits(split_defs(&config), &config.services)?;
        Ok(Gateway {
            router,
            upstreams,
            plugins,
            splits,
        })
    }

    /// Validate a document and make its compiled form (see [`crate::compiled`]), as `push` stores it.
    pub fn compile_to_bytes(text: &str) -> Result<Vec<u8>, Vec<ValidationError>> {
        let config = parse_and_validate(text)?;
        upstreams(&config.services)?;
        let index =
            Router::build_index_of_valid(&config, Some(text)).map_err(|e| internal("routes", e))?;
        let plugins = Plugins::compile(&config).map_err(|e| internal("plugins", e))?;
        let mut plugin_bytes = Vec::new();
        plugins.encode(&mut plugin_bytes);
        let defs = split_defs(&config);
        splits(defs.clone(), &config.services)?;
        let services = if defs.is_empty() {
            serde_json::to_vec(&config.services)
        } else {
            serde_json::to_vec(&ServicesPart {
                services: config.services.clone(),
                splits: defs,
            })
        }
        .map_err(|e| internal("services", e.to_string()))?;
        Ok(compiled::write(
            text.as_bytes(),
            &compiled::Parts {
                services: &services,
                plugins: &plugin_bytes,
                index: &index,
            },
        ))
    }

    /// Load a version from its compiled form, without validating it again, after checking that it
    /// belongs to `json` (the document stored under the same version) and to this gateway. Costs the
    /// fingerprints and the services; routes and plugins are compiled when a request first needs them.
    /// On refusal, `json` is given back (to be loaded the slow way).
    pub fn from_compiled(
        blob: Vec<u8>,
        json: Vec<u8>,
    ) -> Result<Gateway, (compiled::Unused, Vec<u8>)> {
        let corrupt =
            |what: &str| compiled::Unused::Corrupt(format!("the compiled form is damaged: {what}"));
        let (base, upstreams, plugins, splits) = match compiled::read(&blob, &json) {
            Err(why) => return Err((why, json)),
            Ok(parts) => {
                let services = read_services_part(parts.services)
                    .and_then(|(s, defs)| Some((upstreams(&s).ok()?, splits(defs, &s).ok()?)));
                let plugins = Plugins::decode(parts.plugins);
                let (Some((upstreams, splits)), Some(plugins)) = (services, plugins) else {
                    return Err((corrupt("services or plugins"), json));
                };
                if parts.index.len() < 64 {
                    return Err((corrupt("routing index"), json));
                }
                let base = parts.index.as_ptr() as usize - blob.as_ptr() as usize;
                (base, upstreams, plugins, splits)
            }
        };
        // The index needs the JSON only when its route records point into it.
        let router = match Router::from_index(blob, base, Some(json)) {
            Ok(r) => r,
            Err(e) => return Err((corrupt(&e), Vec::new())),
        };
        Ok(Gateway {
            router,
            upstreams,
            plugins,
            splits,
        })
    }

    /// Number of services and routes.
    pub fn summary(&self) -> (usize, usize) {
        (self.upstreams.len(), self.router.len())
    }

    /// The router (tests and diagnostics: how many routes are compiled so far).
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The plugin instances that may apply to requests on a route (see `Plugins::for_route`).
    pub fn plugins_for(&self, route_index: usize) -> impl Iterator<Item = &PluginInstance> + '_ {
        self.plugins.for_route(route_index)
    }

    /// The plugins of a route in the order the phase runner calls them (see `Plugins::route`).
    pub fn route_plugins(&self, route_index: usize) -> crate::plugins::RouteView<'_> {
        self.plugins.route(route_index)
    }

    /// Route a request and work out the upstream URL. Its path stays under the service's base path
    /// once the runtime's URL parser has read it (`InvalidPath` otherwise, see `router::dot_segment`).
    pub fn plan(&self, req: &RequestView<'_>) -> Result<ProxyPlan<'_>, GatewayError> {
        self.plan_with(req, None)
    }

    /// Service `i` (as in [`ProxyPlan::service_index`]).
    pub fn upstream(&self, i: usize) -> Option<&Upstream> {
        self.upstreams.get(i)
    }

    /// [`Gateway::plan`], with `seed` (a hash of the request id) placing the request on a route that
    /// splits its traffic without `hash_on`: the same request is always placed alike (a retry
    /// routes it again), and requests spread by weight. Without a seed, a sequence per isolate
    /// spreads them.
    pub fn plan_with(
        &self,
        req: &RequestView<'_>,
        seed: Option<u64>,
    ) -> Result<ProxyPlan<'_>, GatewayError> {
        let m = self.router.route(req)?;
        let damaged = |e: String| {
            GatewayError::new(
                ErrorKind::NoConfig,
                format!("the configuration in service is damaged: {e}"),
            )
        };
        let route = self
            .router
            .compiled(m.route)
            .ok_or_else(|| damaged(format!("route {}", m.route)))?;
        let mut service_index = m.service;
        let mut upstream = self
            .upstreams
            .get(m.service)
            .ok_or_else(|| damaged(format!("service {}", m.service)))?;
        let mut path_and_query = m.upstream_path_and_query;
        if !self.splits.is_empty() {
            if let Some(split) = self.splits.get(&m.route) {
                let ip = match split.source {
                    HashSource::Ip => (req.header)("cf-connecting-ip"),
                    _ => None,
                };
                let key = upstream::request_key(
                    &split.source,
                    &HashSource::None,
                    &KeySource {
                        header: req.header,
                        ip: ip.as_deref(),
                        path: req.path,
                        consumer: None,
                    },
                );
                let chosen = split.choose(key, seed);
                service_index = chosen;
                let other = self
                    .upstreams
                    .get(chosen)
                    .ok_or_else(|| damaged(format!("service {chosen}")))?;
                if other.base_path != upstream.base_path {
                    // Swap the first service's base path (the router added it) for this one's.
                    let rest = path_and_query
                        .get(upstream.base_path.len()..)
                        .unwrap_or_default();
                    let (path, query) = match rest.find('?') {
                        Some(q) => rest.split_at(q),
                        None => (rest, ""),
                    };
                    let mut joined = crate::router::join_base(&other.base_path, path);
                    // The router kept the request's trailing slash (`/api/` -> `/b1/`): keep it for
                    // this service too (`/b2/`, as Kong's path_handling v0).
                    if m.trailing_slash && !joined.ends_with('/') {
                        joined.push('/');
                    }
                    path_and_query = joined + query;
                }
                upstream = other;
            }
        }
        // Compile the route's plugins now, so that one that cannot be is an error, not skipped.
        self.plugins.ready(m.route).map_err(damaged)?;
        if route.preserve_host {
            let port = upstream.port.map(|p| format!(":{p}")).unwrap_or_default();
            let origin = format!("{}://{}{port}", upstream.scheme, req.host);
            return Ok(ProxyPlan {
                route_index: m.route,
                route: &route.name,
                upstream,
                service_index,
                path_start: origin.len(),
                url: origin + &path_and_query,
                resolve_override: Some(&upstream.host),
                stripped: m.stripped,
                params: m.params,
            });
        }
        Ok(ProxyPlan {
            route_index: m.route,
            route: &route.name,
            upstream,
            service_index,
            path_start: upstream.origin.len(),
            url: [upstream.origin.as_str(), &path_and_query].concat(),
            resolve_override: None,
            stripped: m.stripped,
            params: m.params,
        })
    }
}

/// Join validation errors into one log-friendly string.
pub fn errors_to_string(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
