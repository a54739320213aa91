//! Parsing of the matching fields of a route: host patterns, path patterns, header conditions and the
//! rewrite template. Used both by `check_route` (to report errors) and by `Router::compile`.

use super::precedence::{HostRank, PathKind, PathRank};
use regex_lite::Regex;

/// A parsed host pattern. Names are lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum HostPattern {
    /// `api.example.com`
    Exact(String),
    /// `*.example.com`, stored as the suffix after `*.` (`example.com`).
    Wildcard(String),
}

impl HostPattern {
    pub(crate) fn rank(&self) -> HostRank {
        match self {
            HostPattern::Exact(_) => HostRank::Exact,
            HostPattern::Wildcard(s) => HostRank::Wildcard {
                suffix_len: s.len(),
            },
        }
    }
}

fn valid_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty host name".into());
    }
    if name.contains(':') {
        return Err(format!(
            "{name:?}: ports are not allowed in host patterns (the request host is matched without its port)"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.' || *c == '_' || *c == '*'))
    {
        return Err(format!("{name:?}: invalid character {c:?} in host name"));
    }
    if name.contains('*') {
        return Err(format!(
            "{name:?}: '*' is only allowed as the whole first label ('*.example.com')"
        ));
    }
    if name.split('.').any(str::is_empty) {
        return Err(format!("{name:?}: empty label in host name"));
    }
    Ok(())
}

/// Parse a host pattern; upper case is folded to lower case.
pub(crate) fn parse_host(raw: &str) -> Result<HostPattern, String> {
    let lower = raw.to_ascii_lowercase();
    if lower.is_empty() {
        return Err("empty host pattern (leave `hosts` empty to match any host)".into());
    }
    if lower == "*" {
        return Err("\"*\" is not a host pattern (leave `hosts` empty to match any host)".into());
    }
    if let Some(suffix) = lower.strip_prefix("*.") {
        valid_host_name(suffix)?;
        return Ok(HostPattern::Wildcard(suffix.to_string()));
    }
    valid_host_name(&lower)?;
    Ok(HostPattern::Exact(lower))
}

/// One segment of a path template.
#[derive(Debug, Clone)]
pub(crate) enum TSeg {
    Lit(String),
    Param(String),
}

/// A parsed path pattern.
#[derive(Debug, Clone)]
pub(crate) enum PathPattern {
    /// `/api`: segment-aware prefix. `norm` has no trailing slash (except `/` itself).
    Prefix { norm: String, segs: Vec<String> },
    /// `=/health`
    Exact { path: String, segs: Vec<String> },
    /// `/users/{id}` or `/files/{*rest}`.
    Template {
        segs: Vec<TSeg>,
        rest: Option<String>,
    },
    /// `~^/v[0-9]+/items$`, compiled as `^(?:pattern)`.
    Regex {
        /// `None` when only checked (`check_path`): validation and the routing index need no
        /// engine; the route compiles it on first use (`parse_path`).
        re: Option<Regex>,
        /// Literal segments every match starts with (where the route sits in the trie).
        anchor: Vec<String>,
        /// The literal text every match starts with (quick rejection before running the regex).
        literal: String,
        /// Length of `literal` (precedence).
        literal_chars: usize,
        params: Vec<String>,
    },
}

/// Split a path (starting with `/`) into segments the same way the router walks requests.
pub(crate) fn split_segments(path: &str) -> Vec<String> {
    path[1..].split('/').map(str::to_string).collect()
}

fn valid_param_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl PathPattern {
    /// The prefix `/`, used for routes with no paths.
    pub(crate) fn any() -> PathPattern {
        PathPattern::Prefix {
            norm: "/".into(),
            segs: Vec::new(),
        }
    }

    pub(crate) fn rank(&self) -> PathRank {
        match self {
            PathPattern::Prefix { norm, .. } => PathRank {
                kind: PathKind::Prefix,
                literal_segments: 0,
                literal_chars: norm.len(),
                no_rest: true,
            },
            PathPattern::Exact { path, .. } => PathRank {
                kind: PathKind::Exact,
                literal_segments: 0,
                literal_chars: path.len(),
                no_rest: true,
            },
            PathPattern::Template { segs, rest } => {
                let lits = segs.iter().filter_map(|s| match s {
                    TSeg::Lit(l) => Some(l.len()),
                    TSeg::Param(_) => None,
                });
                PathRank {
                    kind: PathKind::Template,
                    literal_segments: lits.clone().count(),
                    literal_chars: lits.sum(),
                    no_rest: rest.is_none(),
                }
            }
            PathPattern::Regex { literal_chars, .. } => PathRank {
                kind: PathKind::Regex,
                literal_segments: 0,
                literal_chars: *literal_chars,
                no_rest: true,
            },
        }
    }

    /// Names of the parameters this pattern captures, in order.
    pub(crate) fn params(&self) -> Vec<String> {
        match self {
            PathPattern::Prefix { .. } | PathPattern::Exact { .. } => Vec::new(),
            PathPattern::Template { segs, rest } => segs
                .iter()
                .filter_map(|s| match s {
                    TSeg::Param(p) => Some(p.clone()),
                    TSeg::Lit(_) => None,
                })
                .chain(rest.clone())
                .collect(),
            PathPattern::Regex { params, .. } => params.clone(),
        }
    }
}

/// Normalized text of a path pattern, for comparing routes (`find_shadowed`). Fails like `parse_path`.
pub(crate) fn normalize_path(raw: &str) -> String {
    if raw.starts_with('~') {
        return raw.to_string();
    }
    match parse_path(raw) {
        Ok(PathPattern::Prefix { norm, .. }) => norm,
        _ => raw.to_string(),
    }
}

/// Parse a path pattern: `=exact`, `~regex`, template (contains `{`/`}`) or prefix. A regular
/// expression is compiled (for matching).
pub(crate) fn parse_path(raw: &str) -> Result<PathPattern, String> {
    parse_path_with(raw, true)
}

/// Like `parse_path`, with the same errors, but a regular expression is only checked, not compiled
/// (`re` is `None`): see `check_regex`.
pub(crate) fn check_path(raw: &str) -> Result<PathPattern, String> {
    parse_path_with(raw, false)
}

/// Where a path pattern of a validated route (`check_route` accepted it) sits in the routing index,
/// and its precedence: like `check_path`, but a regular expression is not parsed again (its `params`
/// are left empty; the index does not use them).
pub(crate) fn place_valid_path(raw: &str) -> Result<PathPattern, String> {
    match raw.strip_prefix('~') {
        Some(pattern) => Ok(regex_shape(pattern, None, Vec::new())),
        None => check_path(raw),
    }
}

fn parse_path_with(raw: &str, compile: bool) -> Result<PathPattern, String> {
    if let Some(pattern) = raw.strip_prefix('~') {
        return parse_regex_path(pattern, compile);
    }
    // Literal patterns are put in the normal form requests are matched in.
    let normal = super::normal::normalize_pattern(raw)?;
    let raw = &*normal;
    if let Some(exact) = raw.strip_prefix('=') {
        if !exact.starts_with('/') {
            return Err("an exact path must start with '/' after '=' (e.g. \"=/health\")".into());
        }
        return Ok(PathPattern::Exact {
            path: exact.to_string(),
            segs: split_segments(exact),
        });
    }
    if !raw.starts_with('/') {
        return Err(format!(
            "a path must start with '/' (or '=/' for exact, '~' for a regular expression), found {raw:?}"
        ));
    }
    if raw.contains(['{', '}']) {
        return parse_template(raw);
    }
    let norm = match raw.trim_end_matches('/') {
        "" => "/".to_string(),
        t => t.to_string(),
    };
    let segs = if norm == "/" {
        Vec::new()
    } else {
        split_segments(&norm)
    };
    Ok(PathPattern::Prefix { norm, segs })
}

fn parse_template(raw: &str) -> Result<PathPattern, String> {
    let parts: Vec<&str> = raw[1..].split('/').collect();
    let mut segs = Vec::new();
    let mut rest = None;
    let mut names: Vec<&str> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if !part.contains(['{', '}']) {
            segs.push(TSeg::Lit(part.to_string()));
            continue;
        }
        let open = part.find('{');
        let close = part.find('}');
        let inner = match (open, close) {
            (Some(_), None) => return Err("unclosed '{' in template".into()),
            (None, Some(_)) => return Err("unmatched '}' in template".into()),
            (Some(o), Some(c)) if c < o => return Err("unmatched '}' in template".into()),
            (Some(o), Some(c)) => {
                if o != 0 || c != part.len() - 1 || part[1..].contains(['{']) {
                    return Err(format!(
                        "a parameter must be a whole segment like '{{id}}', found {part:?} (use a '~' regular expression for partial segments)"
                    ));
                }
                &part[o + 1..c]
            }
            (None, None) => unreachable!("checked above"),
        };
        let (is_rest, name) = match inner.strip_prefix('*') {
            Some(n) => (true, n),
            None => (false, inner),
        };
        if name.is_empty() {
            return Err(format!("empty parameter name '{{{inner}}}' in template"));
        }
        if !valid_param_name(name) {
            return Err(format!(
                "invalid parameter name {name:?} (use letters, digits and '_')"
            ));
        }
        if names.contains(&name) {
            return Err(format!("duplicate parameter name {{{name}}} in template"));
        }
        names.push(name);
        if is_rest {
            if i != parts.len() - 1 {
                return Err(format!(
                    "'{{*{name}}}' must be the last segment of the template"
                ));
            }
            rest = Some(name.to_string());
        } else {
            segs.push(TSeg::Param(name.to_string()));
        }
    }
    Ok(PathPattern::Template { segs, rest })
}

const META: &[char] = &[
    '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
];

/// Whether the pattern has a `|` outside any group or class (then no literal prefix is certain).
fn has_top_level_alternation(p: &str) -> bool {
    let mut depth = 0usize;
    let mut in_class = false;
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => depth = depth.saturating_sub(1),
            '|' if !in_class && depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// The literal text every match of the (start-anchored) pattern begins with.
pub(crate) fn regex_literal_prefix(pattern: &str) -> String {
    if has_top_level_alternation(pattern) {
        return String::new();
    }
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let mut lit = String::new();
    for c in body.chars() {
        if META.contains(&c) {
            // A quantifier that may repeat zero times makes the previous character optional.
            if matches!(c, '?' | '*' | '{') {
                lit.pop();
            }
            break;
        }
        lit.push(c);
    }
    lit
}

/// Check a regular expression as `Regex::new` would, with the same errors, without building its
/// matching engine where that can be skipped: the pattern is parsed by regex-lite's own parser (a
/// builder with a size limit of 0 stops at the first compiled state, after the parser accepted the
/// pattern). Only the engine's size limit (10 MiB) is judged at compile time, and only counted
/// repetitions (`{n}`) or a very long pattern can reach it: such patterns are compiled in full here.
/// Returns the engine when it was built.
pub(crate) fn check_regex(pattern: &str) -> Result<Option<Regex>, regex_lite::Error> {
    if pattern.contains('{') || pattern.len() > 4096 {
        return Regex::new(pattern).map(Some);
    }
    match regex_lite::RegexBuilder::new(pattern).size_limit(0).build() {
        Ok(re) => Ok(Some(re)),
        Err(e) if e.to_string() == SIZE_LIMIT_ERROR => Ok(None),
        Err(e) => Err(e),
    }
}

/// regex-lite's message when the engine exceeds its size limit (what a size limit of 0 gives).
const SIZE_LIMIT_ERROR: &str = "compiled regex exceeded size limit";

/// Names of the capture groups of a regular expression that regex-lite's parser accepted, in order.
/// `None` when the pattern uses verbose mode (`x` flag, where `#` starts a comment): then compile.
fn capture_names(pattern: &str) -> Option<Vec<String>> {
    let b = pattern.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    let mut class = 0usize;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' => {
                class += 1;
                // A ']' first in a class (after an optional '^') is literal.
                if b.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if class > 0 => class -= 1,
            b'(' if class == 0 && b.get(i + 1) == Some(&b'?') => {
                let rest = &pattern[i + 2..];
                let named = rest.strip_prefix("P<").or_else(|| rest.strip_prefix('<'));
                if let Some(named) = named {
                    let end = named.find('>')?;
                    names.push(named[..end].to_string());
                } else {
                    let flags_end = rest.find([')', ':']).unwrap_or(rest.len());
                    if rest[..flags_end].contains('x') {
                        return None;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    Some(names)
}

fn parse_regex_path(pattern: &str, compile: bool) -> Result<PathPattern, String> {
    if pattern.is_empty() {
        return Err("empty regular expression after '~'".into());
    }
    let first = pattern.strip_prefix('^').unwrap_or(pattern).chars().next();
    if first.is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "regular expression {pattern:?} can never match: it is anchored at the start and paths start with '/'"
        ));
    }
    let source = format!("^(?:{pattern})");
    let mut re = if compile {
        Some(Regex::new(&source).map_err(|e| format!("invalid regular expression: {e}"))?)
    } else {
        check_regex(&source).map_err(|e| format!("invalid regular expression: {e}"))?
    };
    let names = match (&re, capture_names(pattern)) {
        (Some(re), _) => re.capture_names().flatten().map(str::to_string).collect(),
        (None, Some(names)) => names,
        (None, None) => {
            let full =
                Regex::new(&source).map_err(|e| format!("invalid regular expression: {e}"))?;
            let names = full.capture_names().flatten().map(str::to_string).collect();
            re = Some(full);
            names
        }
    };
    let mut params: Vec<String> = Vec::new();
    for name in names {
        if params.contains(&name) {
            return Err(format!(
                "duplicate group name {name:?} in regular expression"
            ));
        }
        params.push(name);
    }
    Ok(regex_shape(pattern, re, params))
}

fn regex_shape(pattern: &str, re: Option<Regex>, params: Vec<String>) -> PathPattern {
    let lit = regex_literal_prefix(pattern);
    let anchor = match lit.rfind('/') {
        Some(i) if lit.starts_with('/') && i > 0 => split_segments(&lit[..i]),
        _ => Vec::new(),
    };
    PathPattern::Regex {
        re,
        anchor,
        literal_chars: lit.len(),
        literal: lit,
        params,
    }
}

/// An accepted value of a header condition.
#[derive(Debug, Clone)]
pub(crate) enum HeaderValue {
    /// Compared ignoring ASCII case (stored lower case).
    Exact(String),
    /// Searched anywhere in the value (write `^`/`$` to anchor).
    Regex(Regex),
}

impl HeaderValue {
    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            HeaderValue::Exact(v) => v.eq_ignore_ascii_case(value),
            HeaderValue::Regex(re) => re.is_match(value),
        }
    }
}

/// Check a header value as `parse_header_value` does (same errors), without compiling its regular
/// expression where that can wait (see `check_regex`).
pub(crate) fn check_header_value(raw: &str) -> Result<(), String> {
    match header_regex(raw) {
        Some((p, _)) => check_regex(p)
            .map(|_| ())
            .map_err(|e| format!("invalid regular expression: {e}")),
        None => Ok(()),
    }
}

pub(crate) fn parse_header_value(raw: &str) -> Result<HeaderValue, String> {
    match header_regex(raw) {
        Some((p, ignore_case)) => regex_lite::RegexBuilder::new(p)
            .case_insensitive(ignore_case)
            .build()
            .map(HeaderValue::Regex)
            .map_err(|e| format!("invalid regular expression: {e}")),
        None => Ok(HeaderValue::Exact(raw.to_ascii_lowercase())),
    }
}

/// The regular expression of a header value and whether it ignores case: `~regex` (case-sensitive)
/// or Kong's spelling `~*regex` (case-insensitive, as Kong compares lower-cased values; a regex
/// cannot start with `*`, so the two never clash). `None`: an exact value.
pub(crate) fn header_regex(raw: &str) -> Option<(&str, bool)> {
    let p = raw.strip_prefix('~')?;
    Some(match p.strip_prefix('*') {
        Some(p) => (p, true),
        None => (p, false),
    })
}

pub(crate) fn check_header_name(name: &str) -> Result<(), String> {
    const TCHAR: &str = "!#$%&'*+-.^_`|~";
    if name.is_empty() {
        return Err("empty header name".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || TCHAR.contains(*c)))
    {
        return Err(format!(
            "invalid character {c:?} in header name {}",
            crate::config::path_error::quote_key(name, "\"")
        ));
    }
    Ok(())
}

/// A piece of a rewrite template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RewritePart {
    Lit(String),
    Param(String),
}

pub(crate) fn parse_rewrite(raw: &str) -> Result<Vec<RewritePart>, String> {
    if !raw.starts_with('/') {
        return Err(format!("a rewrite must start with '/', found {raw:?}"));
    }
    let mut parts = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let open = rest.find('{');
        let close = rest.find('}');
        match (open, close) {
            (Some(o), Some(c)) if c < o => return Err("unmatched '}' in rewrite".into()),
            (None, Some(_)) => return Err("unmatched '}' in rewrite".into()),
            _ => {}
        }
        let Some(o) = open else {
            parts.push(RewritePart::Lit(rest.to_string()));
            break;
        };
        let c = close.ok_or("unclosed '{' in rewrite")?;
        if o > 0 {
            parts.push(RewritePart::Lit(rest[..o].to_string()));
        }
        let inner = &rest[o + 1..c];
        let name = inner.strip_prefix('*').unwrap_or(inner);
        if name.is_empty() {
            return Err("empty parameter name '{}' in rewrite".into());
        }
        if !valid_param_name(name) {
            return Err(format!(
                "invalid parameter name {name:?} in rewrite (use letters, digits and '_')"
            ));
        }
        parts.push(RewritePart::Param(name.to_string()));
        rest = &rest[c + 1..];
    }
    Ok(parts)
}
