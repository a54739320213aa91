//! Static checks of routes: `check_route` (syntax of the matching fields) and `find_shadowed` (routes
//! that can never win).

use super::pattern::{self, RewritePart};
use crate::config::RouteConfig;
use std::collections::{BTreeSet, HashMap};

pub(crate) fn check_route(route: &RouteConfig) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    for (i, h) in route.hosts.iter().enumerate() {
        if let Err(e) = pattern::parse_host(h) {
            errors.push((format!("hosts[{i}]"), e));
        }
    }
    // Parameters captured by each path (None: the path is invalid).
    let mut captured: Vec<(usize, Option<Vec<String>>)> = Vec::new();
    for (i, p) in route.paths.iter().enumerate() {
        match pattern::check_path(p) {
            Ok(pat) => captured.push((i, Some(pat.params()))),
            Err(e) => {
                errors.push((format!("paths[{i}]"), e));
                captured.push((i, None));
            }
        }
    }
    for (name, values) in &route.headers {
        let at = crate::config::path_error::key_path("headers", name);
        if let Err(e) = pattern::check_header_name(name) {
            errors.push((at.clone(), e));
        }
        if values.is_empty() {
            errors.push((
                at.clone(),
                "list at least one accepted value (\"~\" accepts any value)".to_string(),
            ));
        }
        for (j, v) in values.iter().enumerate() {
            if let Err(e) = pattern::check_header_value(v) {
                errors.push((format!("{at}[{j}]"), e));
            }
        }
    }
    if let Some(rw) = &route.rewrite {
        match pattern::parse_rewrite(rw) {
            Err(e) => errors.push(("rewrite".to_string(), e)),
            Ok(parts) => {
                check_rewrite_params(route, &parts, &captured, &mut errors);
                check_rewrite_confined(&parts, &mut errors);
            }
        }
    }
    errors
}

/// A rewrite whose own text has a dot segment would have every request refused (`invalid_path`):
/// say so when the configuration is checked instead. Parameters stand in as a plain segment text.
fn check_rewrite_confined(parts: &[RewritePart], errors: &mut Vec<(String, String)>) {
    let rendered: String = parts
        .iter()
        .map(|p| match p {
            RewritePart::Lit(l) => l.as_str(),
            RewritePart::Param(_) => "p",
        })
        .collect();
    if let Some(segment) = super::confine::dot_segment(&rendered) {
        errors.push((
            "rewrite".to_string(),
            format!(
                "the segment {segment:?} would be read as '.' or '..' and could leave the service's base path; dot segments are not allowed in a rewrite"
            ),
        ));
    }
}

fn check_rewrite_params(
    route: &RouteConfig,
    parts: &[RewritePart],
    captured: &[(usize, Option<Vec<String>>)],
    errors: &mut Vec<(String, String)>,
) {
    // Only judge against the valid paths; invalid ones already have their own error.
    let valid: Vec<(usize, &Vec<String>)> = captured
        .iter()
        .filter_map(|(i, p)| p.as_ref().map(|p| (*i, p)))
        .collect();
    let in_all = |name: &str| valid.iter().all(|(_, ps)| ps.iter().any(|p| p == name));
    // Parameters every path captures, in the order of the first path.
    let common: Vec<&str> = match valid.first() {
        Some((_, first)) => first
            .iter()
            .map(String::as_str)
            .filter(|n| in_all(n))
            .collect(),
        None => Vec::new(),
    };
    let mut reported = BTreeSet::new();
    for part in parts {
        let RewritePart::Param(name) = part else {
            continue;
        };
        if !reported.insert(name.clone()) {
            continue;
        }
        if route.paths.is_empty() {
            errors.push((
                "rewrite".to_string(),
                format!("unknown parameter {{{name}}}; the route has no paths, so it captures no parameters"),
            ));
            continue;
        }
        if in_all(name) {
            continue;
        }
        let somewhere = valid.iter().any(|(_, ps)| ps.iter().any(|p| p == name));
        let message = if somewhere {
            let missing: Vec<String> = valid
                .iter()
                .filter(|(_, ps)| !ps.iter().any(|p| p == name))
                .map(|(i, _)| format!("paths[{i}] ({:?})", route.paths[*i]))
                .collect();
            format!(
                "parameter {{{name}}} is not captured by every path: missing in {}",
                missing.join(", ")
            )
        } else if common.is_empty() {
            format!("unknown parameter {{{name}}}; the route's paths capture no parameter common to all of them")
        } else {
            format!(
                "unknown parameter {{{name}}}; the route's paths capture: {}",
                common.join(", ")
            )
        };
        errors.push(("rewrite".to_string(), message));
    }
}

/// The match conditions of a route, normalized so that equal conditions compare equal.
#[derive(PartialEq, Eq, Hash)]
struct MatchKey {
    priority: i32,
    hosts: BTreeSet<String>,
    paths: BTreeSet<String>,
    methods: BTreeSet<String>,
    headers: Vec<(String, BTreeSet<String>)>,
}

/// A set of the items (`extend`, not `collect`: collecting into a `BTreeSet` sorts, and that was one more
/// copy of the standard sort in the wasm).
fn set(items: impl Iterator<Item = String>) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    set.extend(items);
    set
}

fn match_key(r: &RouteConfig) -> MatchKey {
    let hosts = set(r
        .hosts
        .iter()
        .map(|h| h.to_ascii_lowercase().trim_end_matches('.').to_string()));
    let mut paths = set(r.paths.iter().map(|p| pattern::normalize_path(p)));
    if paths.is_empty() {
        paths.insert("/".to_string());
    }
    let methods = set(r.methods.iter().map(|m| m.to_ascii_uppercase()));
    let mut headers: Vec<(String, BTreeSet<String>)> = r
        .headers
        .iter()
        .map(|(name, values)| {
            let values = set(values.iter().map(|v| {
                if v.starts_with('~') {
                    v.clone()
                } else {
                    v.to_ascii_lowercase()
                }
            }));
            (name.to_ascii_lowercase(), values)
        })
        .collect();
    crate::sort::sort(&mut headers);
    MatchKey {
        priority: r.priority,
        hosts,
        paths,
        methods,
        headers,
    }
}

pub(crate) fn find_shadowed(routes: &[RouteConfig]) -> Vec<(usize, String)> {
    let mut first: HashMap<MatchKey, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        match first.entry(match_key(r)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let w = *e.get();
                out.push((
                    i,
                    format!(
                        "never matches: routes[{w}] ({:?}) has the same match conditions and takes precedence",
                        routes[w].name
                    ),
                ));
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i);
            }
        }
    }
    out
}
