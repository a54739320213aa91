//! Route matching: compile the routes of a config into an index, then match requests against it.
//!
//! Precedence between routes that all match a request is one `Ord` (see `precedence.rs` and
//! docs/routing.md).

use crate::config::{GatewayConfig, RouteConfig};
use crate::error::GatewayError;

/// What the router needs to know about a request. Header lookup is a closure so the glue can read
/// headers lazily (only routes with header conditions ask).
pub struct RequestView<'a> {
    /// Upper-case method, e.g. `GET`.
    pub method: &'a str,
    /// Host without port, lower case.
    pub host: &'a str,
    /// Path as received (percent-encoded), always starting with `/`.
    pub path: &'a str,
    /// Query string without the `?`, empty when there is none.
    pub query: &'a str,
    /// Case-insensitive header lookup.
    pub header: &'a dyn Fn(&str) -> Option<String>,
}

/// The outcome of a successful match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// Index of the route in `GatewayConfig::routes`.
    pub route: usize,
    /// Index of the service in `GatewayConfig::services`.
    pub service: usize,
    /// Path and query to send upstream, base path of the service included, e.g. `/base/users/7?x=1`.
    pub upstream_path_and_query: String,
    /// Captured path parameters, in the order they appear.
    pub params: Vec<(String, String)>,
}

/// Compiled, immutable routing table for one config version.
pub struct Router {
    // filled by the router implementation
}

impl Router {
    /// Build the index. The config must already be valid (see `config::parse_and_validate`).
    pub fn compile(config: &GatewayConfig) -> Result<Router, String> {
        let _ = config;
        todo!("router helper")
    }

    /// Find the route for a request. Errors: `NoRoute` (404) or `MethodNotAllowed` (405, with `allow`).
    pub fn route(&self, req: &RequestView<'_>) -> Result<RouteMatch, GatewayError> {
        let _ = req;
        todo!("router helper")
    }
}

/// Check the matching fields of one route (hosts, paths, header patterns, rewrite). Each error is
/// `(relative JSON path, message)`, e.g. `("paths[0]", "unclosed '{'")`.
pub fn check_route(route: &RouteConfig) -> Vec<(String, String)> {
    let _ = route;
    todo!("router helper")
}

/// Routes that can never match because an earlier route with identical match conditions always wins.
/// Each entry is `(index of the shadowed route, message naming the route that wins)`.
pub fn find_shadowed(routes: &[RouteConfig]) -> Vec<(usize, String)> {
    let _ = routes;
    todo!("router helper")
}
