//! Route matching: compile the routes of a config into an index, then match requests against it.
//!
//! Precedence between routes that all match a request is one `Ord` (see `precedence.rs` and
//! docs/routing.md).
//!
//! The index: routes are partitioned by host (a map of exact hosts, a map of wildcard suffixes looked up
//! with every dot-suffix of the request host, and a bucket for routes without hosts). Each partition is
//! a trie of path segments: literal children in a map, one parameter child, and at each node the routes
//! that end there (exact paths and templates), the routes that match whenever the walk reaches the node
//! (prefixes and `{*rest}` templates) and the regex routes whose literal prefix leads there. A lookup
//! costs one map probe per host suffix plus one per path segment, whatever the number of routes.
//!
//! The index is bytes read in place (`index.rs`), built once per version with every route's precedence
//! key; a route's own patterns (regexes, templates, header conditions, rewrite) are parsed from its
//! JSON the first time a request reaches it, then kept. Loading a router is therefore O(1) in the
//! number of routes, and a request pays only for the routes it meets.

mod check;
mod confine;
mod index;
mod normal;
mod pattern;
pub mod precedence;
#[cfg(test)]
mod tests;

use crate::config::{GatewayConfig, RouteConfig};
use crate::error::{ErrorKind, GatewayError};
use index::Index;
use pattern::{HeaderValue, PathPattern, RewritePart, TSeg};
use precedence::Precedence;
use std::borrow::Cow;
use std::sync::OnceLock;
#[cfg(test)]
use {precedence::HostRank, std::cmp::Reverse};

pub use confine::dot_segment;
pub use normal::normalize_path;

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
    /// The part after the base path never has a dot segment (see [`dot_segment`]).
    pub upstream_path_and_query: String,
    /// Captured path parameters, in the order they appear.
    pub params: Vec<(String, String)>,
    /// How many bytes at the start of the request path `strip_path` removed (0: none, and always 0
    /// with a `rewrite`): `X-Forwarded-Prefix` comes from `&path[..stripped]`.
    pub stripped: usize,
    /// `strip_path` left only the request's final `/` (`/api/` on `/api`), which the upstream path
    /// keeps (`/base/`), as Kong's `path_handling: v0`: a split route keeps it for every service.
    pub trailing_slash: bool,
}

/// One header condition: lower-case name and the accepted values (any of them).
struct HeaderCond {
    name: String,
    values: Vec<HeaderValue>,
}

/// One route, compiled from its JSON on first use.
pub struct CompiledRoute {
    pub name: String,
    pub preserve_host: bool,
    service: usize,
    /// Upper case, sorted, de-duplicated. Empty: any method.
    methods: Vec<String>,
    headers: Vec<HeaderCond>,
    paths: Vec<PathPattern>,
    strip_path: bool,
    rewrite: Option<Vec<RewritePart>>,
    base_path: String,
}

impl CompiledRoute {
    /// The methods the route accepts: upper case, sorted, de-duplicated; empty for any method.
    pub fn methods(&self) -> &[String] {
        &self.methods
    }

    fn compile(r: &RouteConfig, service: usize, base_path: &str) -> Result<CompiledRoute, String> {
        let mut paths = r
            .paths
            .iter()
            .map(|p| pattern::parse_path(p))
            .collect::<Result<Vec<_>, _>>()?;
        if paths.is_empty() {
            paths.push(PathPattern::any());
        }
        let mut headers = Vec::new();
        for (name, values) in &r.headers {
            let values = values
                .iter()
                .map(|v| pattern::parse_header_value(v))
                .collect::<Result<Vec<_>, _>>()?;
            headers.push(HeaderCond {
                name: name.to_ascii_lowercase(),
                values,
            });
        }
        let rewrite = match &r.rewrite {
            Some(t) => Some(pattern::parse_rewrite(t)?),
            None => None,
        };
        let mut methods: Vec<String> = r.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        crate::sort::sort(&mut methods);
        methods.dedup();
        Ok(CompiledRoute {
            name: r.name.clone(),
            preserve_host: r.preserve_host,
            service,
            methods,
            headers,
            paths,
            strip_path: r.strip_path,
            rewrite,
            base_path: base_path.to_string(),
        })
    }
}

/// Routing table for one config version: the index, and each route compiled when first needed.
pub struct Router {
    index: Index,
    routes: Box<[OnceLock<Option<Box<CompiledRoute>>>]>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes.len())
            .field("compiled", &self.compiled_routes())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Build the index and the router. The config must already be valid (see
    /// `config::parse_and_validate`); invalid input gives an error, never a panic.
    pub fn compile(config: &GatewayConfig) -> Result<Router, String> {
        Router::from_index(index::build(config, None, false)?, 0, None)
    }

    /// Build only the index's bytes (stored in the compiled form of a version). With `document`, the
    /// text `config` was parsed from, route records point into it (pass it to [`Router::from_index`]).
    pub fn build_index(config: &GatewayConfig, document: Option<&str>) -> Result<Vec<u8>, String> {
        index::build(config, document, false)
    }

    /// [`Router::build_index`] for a configuration that [`crate::config::parse_and_validate`]
    /// accepted: the same bytes, without checking again what validation checked (regular expressions
    /// are not parsed a second time, header values and rewrites not checked again).
    pub fn build_index_of_valid(
        config: &GatewayConfig,
        document: Option<&str>,
    ) -> Result<Vec<u8>, String> {
        index::build(config, document, true)
    }

    /// A router over index bytes made by [`Router::build_index`] (by this gateway version), found at
    /// `bytes[base..]`, with the document it was built with, if any. Costs one allocation of a
    /// pointer per route; nothing is parsed.
    pub fn from_index(
        bytes: Vec<u8>,
        base: usize,
        document: Option<Vec<u8>>,
    ) -> Result<Router, String> {
        let index = Index::new(bytes, base, document)?;
        let routes = (0..index.routes()).map(|_| OnceLock::new()).collect();
        Ok(Router { index, routes })
    }

    /// The index's bytes.
    pub fn index_bytes(&self) -> &[u8] {
        self.index.bytes()
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// How many routes have been compiled so far (for tests and diagnostics).
    pub fn compiled_routes(&self) -> usize {
        self.routes.iter().filter(|r| r.get().is_some()).count()
    }

    /// Route `i`, compiled on first use. `None` only if its record is damaged (never for an index
    /// this gateway built from a valid config).
    pub fn compiled(&self, i: usize) -> Option<&CompiledRoute> {
        self.routes
            .get(i)?
            .get_or_init(|| {
                let (json, service) = self.index.route(i);
                let config: RouteConfig = crate::config::path_error::from_slice(json).ok()?;
                CompiledRoute::compile(&config, service, self.index.base_path(service))
                    .ok()
                    .map(Box::new)
            })
            .as_deref()
    }

    /// The root of every partition whose host pattern matches `host`. A wildcard stands for one or
    /// more labels, none of them empty: a host with an empty label (`.example.com`, `a..example.com`,
    /// which the runtime lets through) matches no wildcard (and no exact pattern, which validation
    /// keeps free of empty labels).
    fn tables<'s>(&'s self, host: &'s str) -> impl Iterator<Item = u32> + 's {
        let exact = self.index.exact_host(host);
        let wild = (self.index.has_wildcards() && !host.starts_with('.') && !host.contains(".."))
            .then(|| {
                host.match_indices('.')
                    .filter_map(move |(i, _)| self.index.wildcard_host(&host[i + 1..]))
            })
            .into_iter()
            .flatten();
        exact
            .into_iter()
            .chain(wild)
            .chain(std::iter::once(self.index.any_root()))
    }

    /// Find the route for a request. Errors: `NoRoute` (404) or `MethodNotAllowed` (405, with `allow`).
    pub fn route(&self, req: &RequestView<'_>) -> Result<RouteMatch, GatewayError> {
        let no_route = || {
            GatewayError::new(
                ErrorKind::NoRoute,
                format!("no route matches {} {}", req.method, req.path),
            )
        };
        if !req.path.starts_with('/') {
            return Err(no_route());
        }
        // Matched, and forwarded, in normal form (see `normalize_path`).
        let normal = normalize_path(req.path);
        let normal_view;
        let req = match &normal {
            Cow::Borrowed(_) => req,
            Cow::Owned(path) => {
                normal_view = RequestView { path, ..*req };
                &normal_view
            }
        };
        let mut host: Cow<str> = Cow::Borrowed(req.host.strip_suffix('.').unwrap_or(req.host));
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            host = Cow::Owned(host.to_ascii_lowercase());
        }
        let mut search = Search {
            router: self,
            req,
            best: None,
            method_mismatch: false,
            allow: None,
        };
        for root in self.tables(&host) {
            search.walk(root, req.path);
        }
        if let Some((_, entry)) = search.best {
            return self.build_match(entry, req);
        }
        if !search.method_mismatch {
            return Err(no_route());
        }
        // Second pass, only for a likely 405: collect the methods of every route that matches all
        // but the method.
        search.allow = Some(Vec::new());
        for root in self.tables(&host) {
            search.walk(root, req.path);
        }
        let mut allow: Vec<String> = search
            .allow
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| self.compiled(r as usize))
            .flat_map(|r| r.methods.iter().cloned())
            .collect();
        if allow.is_empty() {
            return Err(no_route());
        }
        crate::sort::sort(&mut allow);
        allow.dedup();
        let detail = format!(
            "method {} is not allowed for {}; allowed: {}",
            req.method,
            req.path,
            allow.join(", ")
        );
        Err(GatewayError::new(
            ErrorKind::MethodNotAllowed { allow },
            detail,
        ))
    }

    /// The match for a route that won: parameters and the upstream path. Errors with `InvalidPath`
    /// when the forwarded part of that path has a dot segment ([`dot_segment`]): the URL parser (or
    /// the origin) would resolve it and the request could leave the service's base path. This holds
    /// for every kind of path pattern and every way the forwarded part is built (strip, rewrite with
    /// template parameters or regex captures, `preserve_host`, which only changes the host).
    fn build_match(&self, entry: u32, req: &RequestView<'_>) -> Result<RouteMatch, GatewayError> {
        let (route_index, path_index, _) = self.index.entry(entry);
        let route = self.compiled(route_index as usize).ok_or_else(|| {
            GatewayError::new(ErrorKind::NoRoute, "the route's record is damaged")
        })?;
        let path = req.path;
        let mut params = Vec::new();
        // Bytes of the path removed by strip_path.
        let Some(pattern) = route.paths.get(path_index as usize) else {
            return Err(GatewayError::new(
                ErrorKind::NoRoute,
                "the route's record is damaged",
            ));
        };
        let cut = match pattern {
            PathPattern::Prefix { norm, .. } => {
                if norm == "/" {
                    0
                } else {
                    norm.len()
                }
            }
            PathPattern::Exact { .. } => path.len(),
            PathPattern::Template { segs, rest } => {
                let mut offset = 0;
                let mut parts = path[1..].split('/');
                for s in segs {
                    let seg = parts.next().unwrap_or("");
                    if let TSeg::Param(name) = s {
                        params.push((name.clone(), seg.to_string()));
                    }
                    offset += 1 + seg.len();
                }
                match rest {
                    Some(name) => {
                        let value = path.get(offset + 1..).unwrap_or("");
                        params.push((name.clone(), value.to_string()));
                        offset
                    }
                    None => path.len(),
                }
            }
            PathPattern::Regex { re: Some(re), .. } => match re.captures(path) {
                Some(caps) => {
                    for (i, name) in re.capture_names().enumerate() {
                        if let (Some(name), Some(m)) = (name, caps.get(i)) {
                            params.push((name.to_string(), m.as_str().to_string()));
                        }
                    }
                    caps.get(0).map_or(0, |m| m.end())
                }
                None => 0,
            },
            // Routes are compiled with `parse_path`, which always builds the engine.
            PathPattern::Regex { re: None, .. } => 0,
        };
        let mut stripped = 0;
        // Kong's path_handling v0 keeps a trailing slash of the request when strip_path leaves
        // nothing else: `/api/` on the prefix `/api` goes to `/base/`, not `/base`.
        let mut trailing_slash = false;
        let forwarded: Cow<str> = match &route.rewrite {
            Some(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        RewritePart::Lit(l) => s.push_str(l),
                        RewritePart::Param(name) => {
                            if let Some((_, v)) = params.iter().find(|(n, _)| n == name) {
                                s.push_str(v);
                            }
                        }
                    }
                }
                Cow::Owned(s)
            }
            None if route.strip_path => {
                stripped = cut.min(path.len());
                let rem = path.get(cut..).unwrap_or("");
                // `rem` is the end of `path`: "" or "/" here.
                trailing_slash = path.len() > 1 && path.ends_with('/') && rem.len() <= 1;
                if rem.is_empty() {
                    Cow::Borrowed("/")
                } else if rem.starts_with('/') {
                    Cow::Borrowed(rem)
                } else {
                    Cow::Owned(format!("/{rem}"))
                }
            }
            None => Cow::Borrowed(path),
        };
        if let Some(segment) = dot_segment(&forwarded) {
            return Err(GatewayError::new(
                ErrorKind::InvalidPath,
                format!(
                    "the path to forward has the segment {segment:?}, which would be read as '.' or '..'; such segments are refused in any spelling"
                ),
            ));
        }
        let mut upstream = join_base(&route.base_path, &forwarded);
        if trailing_slash && !upstream.ends_with('/') {
            upstream.push('/');
        }
        if !req.query.is_empty() {
            upstream.push('?');
            upstream.push_str(req.query);
        }
        Ok(RouteMatch {
            route: route_index as usize,
            service: route.service,
            upstream_path_and_query: upstream,
            params,
            stripped,
            trailing_slash,
        })
    }
}

/// Prepend the service base path (Kong's `path_handling` "v0"): `/base` + `/x` = `/base/x`,
/// `/base` + `/` = `/base`, `` + `/x` = `/x`, and never an empty path. A base path with a trailing
/// slash keeps it and is never doubled: `/base/` + `/` = `/base/`, `/base/` + `/x` = `/base/x`. (A
/// trailing slash that strip_path leaves, `/api/` on `/api`, is added back by the caller: `/base/`.)
pub(crate) fn join_base(base: &str, path: &str) -> String {
    if base.is_empty() {
        if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        }
    } else if path.is_empty() || path == "/" {
        base.to_string()
    } else if base.ends_with('/') {
        format!("{base}{}", path.strip_prefix('/').unwrap_or(path))
    } else if path.starts_with('/') {
        format!("{base}{path}")
    } else {
        format!("{base}/{path}")
    }
}

/// State of one lookup.
struct Search<'r, 'q> {
    router: &'r Router,
    req: &'q RequestView<'q>,
    /// Best full match so far: (key, entry).
    best: Option<(Precedence, u32)>,
    /// Some entry matched host and path but not the method.
    method_mismatch: bool,
    /// Second pass: collect the routes that match all but the method.
    allow: Option<Vec<u32>>,
}

impl Search<'_, '_> {
    /// Walk one trie. `rest` is the part of the path not consumed yet: empty or starting with `/`.
    fn walk(&mut self, node: u32, rest: &str) {
        let index = &self.router.index;
        let n = index.node(node);
        self.visit_all(n.open, false);
        self.visit_all(n.regex, true);
        if rest.is_empty() {
            self.visit_all(n.end, false);
            return;
        }
        let after = &rest[1..];
        let (seg, next) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if let Some(c) = index.child(&n, seg) {
            self.walk(c, next);
        }
        if !seg.is_empty() {
            if let Some(p) = n.param {
                self.walk(p, next);
            }
        }
    }

    fn visit_all(&mut self, list: (u32, u32), regex: bool) {
        let router = self.router;
        for e in router.index.list(list) {
            if !self.visit(e, regex) {
                break;
            }
        }
    }

    /// Consider one entry whose path pattern matches (regexes still have to be run). Returns false
    /// when the rest of this (sorted) list cannot beat the best match.
    fn visit(&mut self, id: u32, regex: bool) -> bool {
        let router = self.router;
        let (route_index, path_index, key) = router.index.entry(id);
        if self.allow.is_none() {
            if let Some((best, _)) = &self.best {
                if key <= *best {
                    return false;
                }
            }
        }
        let Some(route) = router.compiled(route_index as usize) else {
            return true;
        };
        let method_ok =
            route.methods.is_empty() || route.methods.iter().any(|m| m == self.req.method);
        if self.allow.is_some() {
            if !method_ok && self.path_and_headers_match(route, path_index, regex) {
                if let Some(allow) = &mut self.allow {
                    allow.push(route_index);
                }
            }
            return true;
        }
        if !method_ok {
            self.method_mismatch = true;
            return true;
        }
        if self.path_and_headers_match(route, path_index, regex) {
            self.best = Some((key, id));
        }
        true
    }

    fn path_and_headers_match(&self, route: &CompiledRoute, path: u32, regex: bool) -> bool {
        if regex {
            if let Some(PathPattern::Regex { re, literal, .. }) = route.paths.get(path as usize) {
                if !self.req.path.starts_with(literal.as_str())
                    || !re.as_ref().is_some_and(|re| re.is_match(self.req.path))
                {
                    return false;
                }
            }
        }
        route
            .headers
            .iter()
            .all(|h| match (self.req.header)(&h.name) {
                // A field value has no leading or trailing whitespace (RFC 9110 section 5.5);
                // the Workers runtime keeps the trailing spaces of a line.
                Some(v) => {
                    let v = v.trim_matches([' ', '\t']);
                    h.values.iter().any(|accepted| accepted.matches(v))
                }
                None => false,
            })
    }
}

/// Check the matching fields of one route (hosts, paths, header patterns, rewrite). Each error is
/// `(relative JSON path, message)`, e.g. `("paths[0]", "unclosed '{'")`.
pub fn check_route(route: &RouteConfig) -> Vec<(String, String)> {
    check::check_route(route)
}

/// Routes that can never match because an earlier route with identical match conditions always wins.
/// Each entry is `(index of the shadowed route, message naming the route that wins)`.
pub fn find_shadowed(routes: &[RouteConfig]) -> Vec<(usize, String)> {
    check::find_shadowed(routes)
}
