//! The router as it was before the index became bytes read in place (everything compiled up front):
//! kept as the reference that the lazy router must agree with, request by request.

use super::super::pattern::{self, HeaderValue, HostPattern, PathPattern, RewritePart, TSeg};
use super::super::precedence::{HostRank, Precedence};
use super::super::{dot_segment, join_base, RequestView, RouteMatch};
use crate::config::{GatewayConfig, ServiceUrl};
use crate::error::{ErrorKind, GatewayError};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::HashMap;

/// A fast, non-keyed string hasher (FxHash's multiply-rotate) for the index maps. Hash flooding is
/// not a concern: only the config (trusted) inserts keys; requests only probe.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write(&[i]);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// One header condition: lower-case name and the accepted values (any of them).
struct HeaderCond {
    name: String,
    values: Vec<HeaderValue>,
}

struct CompiledRoute {
    service: usize,
    /// Upper case, sorted, de-duplicated. Empty: any method.
    methods: Vec<String>,
    headers: Vec<HeaderCond>,
    paths: Vec<PathPattern>,
    strip_path: bool,
    rewrite: Option<Vec<RewritePart>>,
    base_path: String,
}

/// One (route, host pattern, path pattern) in the index.
struct Entry {
    route: u32,
    path: u32,
    key: Precedence,
}

#[derive(Default)]
struct Node {
    children: FastMap<Box<str>, u32>,
    param: Option<u32>,
    /// Exact paths and templates without `{*rest}` ending at this node.
    end: Vec<u32>,
    /// Prefix routes and `{*rest}` templates: match whenever the walk reaches this node.
    open: Vec<u32>,
    /// Regex routes whose literal prefix leads to this node; the regex still has to match.
    regex: Vec<u32>,
}

/// A path trie for one host partition. Node 0 is the root.
struct Table {
    nodes: Vec<Node>,
}

impl Table {
    fn new() -> Table {
        Table {
            nodes: vec![Node::default()],
        }
    }

    fn literal_child(&mut self, node: u32, seg: &str) -> u32 {
        if let Some(&c) = self.nodes[node as usize].children.get(seg) {
            return c;
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(Node::default());
        self.nodes[node as usize].children.insert(seg.into(), id);
        id
    }

    fn param_child(&mut self, node: u32) -> u32 {
        if let Some(c) = self.nodes[node as usize].param {
            return c;
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(Node::default());
        self.nodes[node as usize].param = Some(id);
        id
    }

    fn insert(&mut self, pattern: &PathPattern, entry: u32) {
        match pattern {
            PathPattern::Prefix { segs, .. } => {
                let n = self.walk_literals(segs);
                self.nodes[n as usize].open.push(entry);
            }
            PathPattern::Exact { segs, .. } => {
                let n = self.walk_literals(segs);
                self.nodes[n as usize].end.push(entry);
            }
            PathPattern::Regex { anchor, .. } => {
                let n = self.walk_literals(anchor);
                self.nodes[n as usize].regex.push(entry);
            }
            PathPattern::Template { segs, rest } => {
                let mut n = 0;
                for s in segs {
                    n = match s {
                        TSeg::Lit(l) => self.literal_child(n, l),
                        TSeg::Param(_) => self.param_child(n),
                    };
                }
                let node = &mut self.nodes[n as usize];
                match rest {
                    Some(_) => node.open.push(entry),
                    None => node.end.push(entry),
                }
            }
        }
    }

    fn walk_literals(&mut self, segs: &[String]) -> u32 {
        segs.iter().fold(0, |n, s| self.literal_child(n, s))
    }

    /// Sort every entry list so that the greatest key comes first (lets the search stop early).
    fn sort(&mut self, entries: &[Entry]) {
        for node in &mut self.nodes {
            for list in [&mut node.end, &mut node.open, &mut node.regex] {
                list.sort_by(|a, b| entries[*b as usize].key.cmp(&entries[*a as usize].key));
            }
        }
    }
}

/// Compiled, immutable routing table for one config version.
pub struct EagerRouter {
    routes: Vec<CompiledRoute>,
    entries: Vec<Entry>,
    exact_hosts: FastMap<Box<str>, Table>,
    wildcard_hosts: FastMap<Box<str>, Table>,
    any_host: Table,
}

impl std::fmt::Debug for EagerRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EagerRouter")
            .field("routes", &self.routes.len())
            .field("entries", &self.entries.len())
            .field("exact_hosts", &self.exact_hosts.len())
            .field("wildcard_hosts", &self.wildcard_hosts.len())
            .finish_non_exhaustive()
    }
}

impl EagerRouter {
    /// Build the index. The config must already be valid (see `config::parse_and_validate`); invalid
    /// input gives an error, never a panic.
    pub fn compile(config: &GatewayConfig) -> Result<EagerRouter, String> {
        let mut services: HashMap<&str, (usize, String)> = HashMap::new();
        for (i, s) in config.services.iter().enumerate() {
            let url =
                ServiceUrl::parse(s.base_url()).map_err(|e| format!("services[{i}].url: {e}"))?;
            services
                .entry(s.name.as_str())
                .or_insert((i, url.base_path));
        }
        let mut router = EagerRouter {
            routes: Vec::with_capacity(config.routes.len()),
            entries: Vec::new(),
            exact_hosts: FastMap::default(),
            wildcard_hosts: FastMap::default(),
            any_host: Table::new(),
        };
        for (i, r) in config.routes.iter().enumerate() {
            let at = |field: &str, e: String| format!("routes[{i}].{field}: {e}");
            let (service, base_path) =
                services.get(r.primary_service()).cloned().ok_or_else(|| {
                    at(
                        "service",
                        format!("unknown service {:?}", r.primary_service()),
                    )
                })?;
            let hosts = r
                .hosts
                .iter()
                .enumerate()
                .map(|(j, h)| pattern::parse_host(h).map_err(|e| at(&format!("hosts[{j}]"), e)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut paths = r
                .paths
                .iter()
                .enumerate()
                .map(|(j, p)| pattern::parse_path(p).map_err(|e| at(&format!("paths[{j}]"), e)))
                .collect::<Result<Vec<_>, _>>()?;
            if paths.is_empty() {
                paths.push(PathPattern::any());
            }
            let mut headers = Vec::new();
            for (name, values) in &r.headers {
                let values = values
                    .iter()
                    .enumerate()
                    .map(|(j, v)| {
                        pattern::parse_header_value(v)
                            .map_err(|e| at(&format!("headers.{name}[{j}]"), e))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                headers.push(HeaderCond {
                    name: name.to_ascii_lowercase(),
                    values,
                });
            }
            let rewrite = match &r.rewrite {
                Some(t) => Some(pattern::parse_rewrite(t).map_err(|e| at("rewrite", e))?),
                None => None,
            };
            let mut methods: Vec<String> =
                r.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
            methods.sort();
            methods.dedup();

            let route_id = u32::try_from(i).map_err(|_| "too many routes".to_string())?;
            let host_ranks: Vec<(Option<&HostPattern>, HostRank)> = if hosts.is_empty() {
                vec![(None, HostRank::Any)]
            } else {
                hosts.iter().map(|h| (Some(h), h.rank())).collect()
            };
            for (host, host_rank) in host_ranks {
                let table = match host {
                    None => &mut router.any_host,
                    Some(HostPattern::Exact(h)) => router
                        .exact_hosts
                        .entry(h.as_str().into())
                        .or_insert_with(Table::new),
                    Some(HostPattern::Wildcard(s)) => router
                        .wildcard_hosts
                        .entry(s.as_str().into())
                        .or_insert_with(Table::new),
                };
                for (p, path) in paths.iter().enumerate() {
                    let entry = router.entries.len() as u32;
                    router.entries.push(Entry {
                        route: route_id,
                        path: p as u32,
                        key: Precedence {
                            priority: r.priority,
                            host: host_rank,
                            path: path.rank(),
                            has_methods: !methods.is_empty(),
                            header_conditions: headers.len(),
                            order: Reverse(i),
                        },
                    });
                    table.insert(path, entry);
                }
            }
            router.routes.push(CompiledRoute {
                service,
                methods,
                headers,
                paths,
                strip_path: r.strip_path,
                rewrite,
                base_path,
            });
        }
        let entries = &router.entries;
        router.any_host.sort(entries);
        for t in router.exact_hosts.values_mut() {
            t.sort(entries);
        }
        for t in router.wildcard_hosts.values_mut() {
            t.sort(entries);
        }
        Ok(router)
    }

    /// Every partition whose host pattern matches `host`.
    fn tables<'s>(&'s self, host: &'s str) -> impl Iterator<Item = &'s Table> + 's {
        let exact = self.exact_hosts.get(host);
        let wild = (!self.wildcard_hosts.is_empty())
            .then(|| {
                host.match_indices('.')
                    .filter_map(move |(i, _)| self.wildcard_hosts.get(&host[i + 1..]))
            })
            .into_iter()
            .flatten();
        exact
            .into_iter()
            .chain(wild)
            .chain(std::iter::once(&self.any_host))
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
        for table in self.tables(&host) {
            search.walk(table, 0, req.path);
        }
        if let Some((_, entry)) = search.best {
            return self.build_match(&self.entries[entry as usize], req);
        }
        if !search.method_mismatch {
            return Err(no_route());
        }
        // Second pass, only for a likely 405: collect the methods of every route that matches all
        // but the method.
        search.allow = Some(Vec::new());
        for table in self.tables(&host) {
            search.walk(table, 0, req.path);
        }
        let mut allow: Vec<String> = search
            .allow
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| self.routes[r as usize].methods.iter().cloned())
            .collect();
        if allow.is_empty() {
            return Err(no_route());
        }
        allow.sort();
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
    fn build_match(
        &self,
        entry: &Entry,
        req: &RequestView<'_>,
    ) -> Result<RouteMatch, GatewayError> {
        let route = &self.routes[entry.route as usize];
        let path = req.path;
        let mut params = Vec::new();
        // Bytes of the path removed by strip_path.
        let cut = match &route.paths[entry.path as usize] {
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
            route: entry.route as usize,
            service: route.service,
            upstream_path_and_query: upstream,
            params,
            stripped,
            trailing_slash,
        })
    }
}

/// State of one lookup.
struct Search<'r, 'q> {
    router: &'r EagerRouter,
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
    fn walk(&mut self, table: &Table, node: u32, rest: &str) {
        let n = &table.nodes[node as usize];
        self.visit_all(&n.open, false);
        self.visit_all(&n.regex, true);
        if rest.is_empty() {
            self.visit_all(&n.end, false);
            return;
        }
        let after = &rest[1..];
        let (seg, next) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if let Some(&c) = n.children.get(seg) {
            self.walk(table, c, next);
        }
        if !seg.is_empty() {
            if let Some(p) = n.param {
                self.walk(table, p, next);
            }
        }
    }

    fn visit_all(&mut self, list: &[u32], regex: bool) {
        for &e in list {
            if !self.visit(e, regex) {
                break;
            }
        }
    }

    /// Consider one entry whose path pattern matches (regexes still have to be run). Returns false
    /// when the rest of this (sorted) list cannot beat the best match.
    fn visit(&mut self, id: u32, regex: bool) -> bool {
        let router = self.router;
        let entry = &router.entries[id as usize];
        let route = &router.routes[entry.route as usize];
        let method_ok =
            route.methods.is_empty() || route.methods.iter().any(|m| m == self.req.method);
        if self.allow.is_some() {
            if !method_ok && self.path_and_headers_match(entry, regex) {
                if let Some(allow) = &mut self.allow {
                    allow.push(entry.route);
                }
            }
            return true;
        }
        if let Some((best, _)) = &self.best {
            if entry.key <= *best {
                return false;
            }
        }
        if !method_ok {
            self.method_mismatch = true;
            return true;
        }
        if self.path_and_headers_match(entry, regex) {
            self.best = Some((entry.key, id));
        }
        true
    }

    fn path_and_headers_match(&self, entry: &Entry, regex: bool) -> bool {
        let route = &self.router.routes[entry.route as usize];
        if regex {
            if let PathPattern::Regex {
                re: Some(re),
                literal,
                ..
            } = &route.paths[entry.path as usize]
            {
                if !self.req.path.starts_with(literal.as_str()) || !re.is_match(self.req.path) {
                    return false;
                }
            }
        }
        route
            .headers
            .iter()
            .all(|h| match (self.req.header)(&h.name) {
                Some(v) => {
                    let v = v.trim_matches([' ', '\t']);
                    h.values.iter().any(|accepted| accepted.matches(v))
                }
                None => false,
            })
    }
}
