//! One configuration version, compiled: validated config, routing index and resolved upstreams.
//! Built once per version and shared by every request the isolate serves.

use crate::config::{parse_and_validate, GatewayConfig, ServiceUrl, ValidationError};
use crate::error::GatewayError;
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
}

pub struct Gateway {
    config: GatewayConfig,
    router: Router,
    upstreams: Vec<Upstream>,
    plugins: Plugins,
}

impl Gateway {
    /// Parse, validate and compile a configuration document. Errors are one line each, with JSON paths.
    pub fn compile(text: &str) -> Result<Gateway, Vec<ValidationError>> {
        let config = parse_and_validate(text)?;
        Self::from_config(config)
    }

    pub fn from_config(config: GatewayConfig) -> Result<Gateway, Vec<ValidationError>> {
        let internal = |path: &str, message: String| {
            vec![ValidationError {
                path: path.to_string(),
                message,
            }]
        };
        let mut upstreams = Vec::with_capacity(config.services.len());
        for (i, s) in config.services.iter().enumerate() {
            let url = ServiceUrl::parse(&s.url)
                .map_err(|e| internal(&format!("services[{i}].url"), e))?;
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
        let router = Router::compile(&config).map_err(|e| internal("routes", e))?;
        let plugins = Plugins::compile(&config).map_err(|e| internal("plugins", e))?;
        Ok(Gateway {
            config,
            router,
            upstreams,
            plugins,
        })
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The plugin instances that may apply to requests on a route (see `Plugins::for_route`).
    pub fn plugins_for(&self, route_index: usize) -> impl Iterator<Item = &PluginInstance> + '_ {
        self.plugins.for_route(route_index)
    }

    /// Route a request and work out the upstream URL. Its path stays under the service's base path
    /// once the runtime's URL parser has read it (`InvalidPath` otherwise, see `router::dot_segment`).
    pub fn plan(&self, req: &RequestView<'_>) -> Result<ProxyPlan<'_>, GatewayError> {
        let m = self.router.route(req)?;
        let route = &self.config.routes[m.route];
        let upstream = &self.upstreams[m.service];
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
            });
        }
        Ok(ProxyPlan {
            route_index: m.route,
            route: &route.name,
            upstream,
            url: [upstream.origin.as_str(), &m.upstream_path_and_query].concat(),
            resolve_override: None,
            stripped: m.stripped,
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
