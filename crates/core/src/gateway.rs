//! One configuration version, compiled: validated config, routing index and resolved upstreams.
//! Built once per version and shared by every request the isolate serves.

use crate::compiled;
use crate::config::{
    parse_and_validate, GatewayConfig, ServiceConfig, ServiceUrl, ValidationError,
};
use crate::error::{ErrorKind, GatewayError};
use crate::plugins::{PluginInstance, Plugins};
use crate::router::{RequestView, Router};

/// A service, resolved for fast proxying.
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
}

/// What to do with a request: where to send it and how.
#[derive(Debug)]
pub struct ProxyPlan<'g> {
    /// Index of the matched route in the config.
    pub route_index: usize,
    pub route: &'g str,
    pub upstream: &'g Upstream,
    /// Absolute upstream URL, query included.
    pub url: String,
    /// With `preserve_host`, the URL names the client's host and this is the host to connect to
    /// instead (Cloudflare's `cf.resolveOverride`): the Workers runtime derives the Host header from
    /// the URL and ignores a `Host` header set by the Worker.
    pub resolve_override: Option<&'g str>,
    /// How many bytes at the start of the client's path `strip_path` removed (see
    /// `RouteMatch::stripped`; `proxy::forwarded_prefix` makes `X-Forwarded-Prefix` of them).
    pub stripped: usize,
    /// The route's captured path parameters, in order (templates' `uri_captures`).
    pub params: Vec<(String, String)>,
}

pub struct Gateway {
    router: Router,
    upstreams: Vec<Upstream>,
    plugins: Plugins,
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
        let url =
            ServiceUrl::parse(&s.url).map_err(|e| internal(&format!("services[{i}].url"), e))?;
        upstreams.push(Upstream {
            name: s.name.clone(),
            origin: url.origin(),
            authority: url.authority(),
            scheme: url.scheme.clone(),
            host: url.host.clone(),
            port: url.port,
            timeout_ms: s.timeout_ms,
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
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
        Ok(Gateway {
            router,
            upstreams,
            plugins,
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
        let services = serde_json::to_vec(&config.services)
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
        let (base, upstreams, plugins) = match compiled::read(&blob, &json) {
            Err(why) => return Err((why, json)),
            Ok(parts) => {
                let services = serde_json::from_slice::<Vec<ServiceConfig>>(parts.services)
                    .ok()
                    .and_then(|s| upstreams(&s).ok());
                let plugins = Plugins::decode(parts.plugins);
                let (Some(upstreams), Some(plugins)) = (services, plugins) else {
                    return Err((corrupt("services or plugins"), json));
                };
                if parts.index.len() < 64 {
                    return Err((corrupt("routing index"), json));
                }
                let base = parts.index.as_ptr() as usize - blob.as_ptr() as usize;
                (base, upstreams, plugins)
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

    /// Route a request and work out the upstream URL. Its path stays under the service's base path
    /// once the runtime's URL parser has read it (`InvalidPath` otherwise, see `router::dot_segment`).
    pub fn plan(&self, req: &RequestView<'_>) -> Result<ProxyPlan<'_>, GatewayError> {
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
        let upstream = self
            .upstreams
            .get(m.service)
            .ok_or_else(|| damaged(format!("service {}", m.service)))?;
        // Compile the route's plugins now, so that one that cannot be is an error, not skipped.
        self.plugins.ready(m.route).map_err(damaged)?;
        if route.preserve_host {
            let port = upstream.port.map(|p| format!(":{p}")).unwrap_or_default();
            return Ok(ProxyPlan {
                route_index: m.route,
                route: &route.name,
                upstream,
                url: format!(
                    "{}://{}{port}{}",
                    upstream.scheme, req.host, m.upstream_path_and_query
                ),
                resolve_override: Some(&upstream.host),
                stripped: m.stripped,
                params: m.params,
            });
        }
        Ok(ProxyPlan {
            route_index: m.route,
            route: &route.name,
            upstream,
            url: [upstream.origin.as_str(), &m.upstream_path_and_query].concat(),
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
