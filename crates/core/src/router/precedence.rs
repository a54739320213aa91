//! Precedence between routes that all match a request: ONE total order, the derived `Ord` of
//! [`Precedence`]. The greatest key wins. Fields are compared in declaration order, which is the order
//! of the rules documented in docs/routing.md:
//!
//! 1. `priority`: higher wins;
//! 2. `host`: exact host > wildcard host (longer suffix wins) > any host;
//! 3. `path`: exact > template > regex > prefix; within a kind more literal characters win (templates:
//!    more literal segments, then more literal characters, then a template without `{*rest}` wins);
//! 4. `has_methods`: a route listing methods beats one accepting any method;
//! 5. `header_conditions`: more header conditions win;
//! 6. `order`: earlier in the config wins.
//!
//! A route with several hosts or paths gets one key per (host pattern, path pattern) pair; the pair that
//! matched the request decides.

use std::cmp::Reverse;

/// Rule 2: how specific the host pattern that matched is. Variant order is the ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostRank {
    /// The route has no hosts: any host.
    Any,
    /// `*.example.com`; a longer suffix (`example.com`, in bytes) is more specific.
    Wildcard { suffix_len: usize },
    /// `api.example.com`.
    Exact,
}

/// Rule 3, first part: the kind of path pattern. Variant order is the ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathKind {
    /// `/api`
    Prefix,
    /// `~^/v[0-9]+/`
    Regex,
    /// `/users/{id}`
    Template,
    /// `=/health`
    Exact,
}

/// Rule 3: path specificity. Fields compared in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathRank {
    pub kind: PathKind,
    /// Templates only (0 for other kinds): number of literal segments.
    pub literal_segments: usize,
    /// Prefix: length of the prefix; exact: length of the path; template: total length of the literal
    /// segments; regex: length of the literal text the pattern starts with.
    pub literal_chars: usize,
    /// Templates: `true` when the template has no `{*rest}` (so `/users/{id}` beats `/users/{*rest}`
    /// for `/users/7`). Always `true` for other kinds.
    pub no_rest: bool,
}

/// The precedence key of one (route, host pattern, path pattern). Greater wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Precedence {
    /// Rule 1.
    pub priority: i32,
    /// Rule 2.
    pub host: HostRank,
    /// Rule 3.
    pub path: PathRank,
    /// Rule 4: the route lists methods.
    pub has_methods: bool,
    /// Rule 5: number of header conditions.
    pub header_conditions: usize,
    /// Rule 6: index of the route in the config, reversed so that earlier is greater.
    pub order: Reverse<usize>,
}
