//! The routing index as bytes: built once (at push time, or from the JSON when no compiled form can
//! be used) and read in place, so that loading a version costs the same for 10 routes as for 10,000.
//!
//! Everything is little-endian `u32`. Layout of one index (offsets are from its start):
//!
//! ```text
//! header: 16 x u32   counts and section offsets (see `H_*`)
//! routes:  n x 3 u32  route record: offset and length of the route's JSON, service index
//! entries: n x 8 u32  (route, path pattern, precedence key) in the layout of `Index::entry`
//! nodes:   n x 9 u32  trie node: its segment (offset, length), first literal child and count (children
//!                     are consecutive nodes sorted by segment), param child, its lists (start, and the
//!                     lengths of the end, open and regex lists, stored one after the other)
//! hosts:   n x 3 u32  exact hosts then wildcard suffixes: (offset, length, root node), sorted
//! lists:   n x u32    entry ids, each list sorted greatest precedence first
//! strings            segment, host and route JSON bytes
//! ```
//!
//! Every read is bounds-checked and reads 0 past the end, so a damaged index can give wrong answers
//! but never a panic (the compiled form's checksum catches damage before that).

use super::pattern::{self, HostPattern, PathPattern, TSeg};
use super::precedence::{HostRank, PathKind, PathRank, Precedence};
use crate::config::{GatewayConfig, ServiceUrl};
use std::cmp::Reverse;
use std::collections::HashMap;

const H_ROUTES: usize = 0;
const H_ENTRIES: usize = 1;
const H_NODES: usize = 2;
const H_EXACT: usize = 4;
const H_N_EXACT: usize = 5;
const H_WILD: usize = 6;
const H_N_WILD: usize = 7;
const H_ANY_ROOT: usize = 8;
const H_N_ROUTES: usize = 9;
const H_LISTS: usize = 10;
const H_SERVICES: usize = 11;
const H_N_SERVICES: usize = 12;
/// 1 when the route records point into the JSON document (stored beside the index) instead of into
/// the index's own strings.
const H_ROUTES_IN_DOCUMENT: usize = 13;
const HEADER_WORDS: usize = 16;
const NONE: u32 = u32::MAX;
const NODE_WORDS: usize = 9;

/// One trie node while building.
#[derive(Default)]
struct Node {
    children: HashMap<String, u32>,
    param: Option<u32>,
    end: Vec<u32>,
    open: Vec<u32>,
    regex: Vec<u32>,
}

/// The nodes of every host partition while building; each partition has its own root.
struct Trie {
    nodes: Vec<Node>,
}

impl Trie {
    fn new_root(&mut self) -> u32 {
        self.nodes.push(Node::default());
        (self.nodes.len() - 1) as u32
    }

    fn literal_child(&mut self, node: u32, seg: &str) -> u32 {
        if let Some(&c) = self.nodes[node as usize].children.get(seg) {
            return c;
        }
        let id = self.new_root();
        self.nodes[node as usize].children.insert(seg.into(), id);
        id
    }

    fn param_child(&mut self, node: u32) -> u32 {
        if let Some(c) = self.nodes[node as usize].param {
            return c;
        }
        let id = self.new_root();
        self.nodes[node as usize].param = Some(id);
        id
    }

    fn insert(&mut self, root: u32, pattern: &PathPattern, entry: u32) {
        let walk =
            |t: &mut Trie, segs: &[String]| segs.iter().fold(root, |n, s| t.literal_child(n, s));
        match pattern {
            PathPattern::Prefix { segs, .. } => {
                let n = walk(self, segs);
                self.nodes[n as usize].open.push(entry);
            }
            PathPattern::Exact { segs, .. } => {
                let n = walk(self, segs);
                self.nodes[n as usize].end.push(entry);
            }
            PathPattern::Regex { anchor, .. } => {
                let n = walk(self, anchor);
                self.nodes[n as usize].regex.push(entry);
            }
            PathPattern::Template { segs, rest } => {
                let mut n = root;
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
}

/// Build the index of a valid configuration (route precedence is computed here, once). Parses every
/// pattern (regexes included) to place it in the trie; invalid input gives an error, never a panic.
/// With `validated` (the configuration passed `parse_and_validate`, which checked every pattern), a
/// regular expression is not parsed again (only its literal prefix is read) and header values and
/// rewrites are not checked again.
///
/// With `document` (the text `config` was parsed from), route records point at each route's object in
/// that text instead of holding a copy of it: the compiled form then carries no route twice.
pub(crate) fn build(
    config: &GatewayConfig,
    document: Option<&str>,
    validated: bool,
) -> Result<Vec<u8>, String> {
    let place = if validated {
        pattern::place_valid_path
    } else {
        pattern::check_path
    };
    let spans = document
        .and_then(route_spans)
        .filter(|s| s.len() == config.routes.len());
    let mut services: HashMap<&str, usize> = HashMap::new();
    let mut base_paths = Vec::with_capacity(config.services.len());
    for (i, s) in config.services.iter().enumerate() {
        let url = ServiceUrl::parse(s.base_url()).map_err(|e| format!("services[{i}].url: {e}"))?;
        services.entry(s.name.as_str()).or_insert(i);
        base_paths.push(url.base_path);
    }
    let mut trie = Trie { nodes: Vec::new() };
    let any_root = trie.new_root();
    let mut exact: HashMap<String, u32> = HashMap::new();
    let mut wild: HashMap<String, u32> = HashMap::new();
    let mut entries: Vec<(u32, u32, Precedence)> = Vec::new();
    let mut route_json = Vec::with_capacity(config.routes.len());
    let mut route_service = Vec::with_capacity(config.routes.len());
    for (i, r) in config.routes.iter().enumerate() {
        let at = |field: &str, e: String| format!("routes[{i}].{field}: {e}");
        let service = *services.get(r.primary_service()).ok_or_else(|| {
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
            .map(|(j, p)| place(p).map_err(|e| at(&format!("paths[{j}]"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        if paths.is_empty() {
            paths.push(PathPattern::any());
        }
        // Checked here so that a route compiled later on first use cannot fail.
        for (name, values) in r.headers.iter().filter(|_| !validated) {
            for (j, v) in values.iter().enumerate() {
                pattern::check_header_value(v).map_err(|e| {
                    let name = crate::config::path_error::key_path("headers", name);
                    at(&format!("{name}[{j}]"), e)
                })?;
            }
        }
        if let Some(t) = r.rewrite.as_ref().filter(|_| !validated) {
            pattern::parse_rewrite(t).map_err(|e| at("rewrite", e))?;
        }
        let has_methods = !r.methods.is_empty();
        let route_id = u32::try_from(i).map_err(|_| "too many routes".to_string())?;
        let host_ranks: Vec<(Option<&HostPattern>, HostRank)> = if hosts.is_empty() {
            vec![(None, HostRank::Any)]
        } else {
            hosts.iter().map(|h| (Some(h), h.rank())).collect()
        };
        for (host, host_rank) in host_ranks {
            let root = match host {
                None => any_root,
                Some(HostPattern::Exact(h)) => match exact.get(h) {
                    Some(&n) => n,
                    None => {
                        let n = trie.new_root();
                        exact.insert(h.clone(), n);
                        n
                    }
                },
                Some(HostPattern::Wildcard(s)) => match wild.get(s) {
                    Some(&n) => n,
                    None => {
                        let n = trie.new_root();
                        wild.insert(s.clone(), n);
                        n
                    }
                },
            };
            for (p, path) in paths.iter().enumerate() {
                let entry = entries.len() as u32;
                entries.push((
                    route_id,
                    p as u32,
                    Precedence {
                        priority: r.priority,
                        host: host_rank,
                        path: path.rank(),
                        has_methods,
                        header_conditions: r.headers.len(),
                        order: Reverse(i),
                    },
                ));
                trie.insert(root, path, entry);
            }
        }
        match &spans {
            Some(_) => route_json.push(Vec::new()),
            None => route_json.push(serde_json::to_vec(r).map_err(|e| at("", e.to_string()))?),
        }
        route_service.push(service as u32);
    }
    for node in &mut trie.nodes {
        for list in [&mut node.end, &mut node.open, &mut node.regex] {
            crate::sort::sort_by(list, |a, b| {
                entries[*b as usize].2.cmp(&entries[*a as usize].2)
            });
        }
    }
    Ok(write(
        spans.as_deref(),
        &trie,
        any_root,
        &exact,
        &wild,
        &entries,
        &route_json,
        &route_service,
        &base_paths,
    ))
}

#[allow(clippy::too_many_arguments)]
fn write(
    spans: Option<&[(u32, u32)]>,
    trie: &Trie,
    any_root: u32,
    exact: &HashMap<String, u32>,
    wild: &HashMap<String, u32>,
    entries: &[(u32, u32, Precedence)],
    route_json: &[Vec<u8>],
    route_service: &[u32],
    base_paths: &[String],
) -> Vec<u8> {
    let mut strings: Vec<u8> = Vec::new();
    let mut string = |s: &[u8]| -> (u32, u32) {
        let off = strings.len() as u32;
        strings.extend_from_slice(s);
        (off, s.len() as u32)
    };
    // Words first, with string offsets relative to the strings area; fixed up at the end.
    let mut routes = Vec::with_capacity(route_json.len() * 3);
    for (i, (json, service)) in route_json.iter().zip(route_service).enumerate() {
        let (o, l) = match spans {
            Some(spans) => spans[i],
            None => string(json),
        };
        routes.extend([o, l, *service]);
    }
    let mut services = Vec::with_capacity(base_paths.len() * 2);
    for b in base_paths {
        let (o, l) = string(b.as_bytes());
        services.extend([o, l]);
    }
    let mut entry_words = Vec::with_capacity(entries.len() * 8);
    for (route, path, k) in entries {
        let (host_kind, suffix) = match k.host {
            HostRank::Any => (0, 0),
            HostRank::Wildcard { suffix_len } => (1, suffix_len as u32),
            HostRank::Exact => (2, 0),
        };
        let path_kind = match k.path.kind {
            PathKind::Prefix => 0,
            PathKind::Regex => 1,
            PathKind::Template => 2,
            PathKind::Exact => 3,
        };
        let flags =
            host_kind | path_kind << 2 | (k.path.no_rest as u32) << 4 | (k.has_methods as u32) << 5;
        entry_words.extend([
            *route,
            *path,
            k.priority as u32,
            suffix,
            k.path.literal_segments as u32,
            k.path.literal_chars as u32,
            k.header_conditions as u32,
            flags,
        ]);
    }
    // Number the nodes so that every node's literal children are consecutive and sorted by segment:
    // a node then names its first child and their count, and each node carries its own segment (no
    // separate table of edges).
    let mut order: Vec<u32> = Vec::with_capacity(trie.nodes.len());
    let mut new_id = vec![NONE; trie.nodes.len()];
    let mut roots: Vec<u32> = vec![any_root];
    for map in [exact, wild] {
        roots.extend(map.values().copied());
    }
    for r in roots {
        if new_id[r as usize] == NONE {
            new_id[r as usize] = order.len() as u32;
            order.push(r);
        }
    }
    let mut segment = vec![""; trie.nodes.len()];
    let mut first_child = vec![0u32; trie.nodes.len()];
    let mut next = 0;
    while next < order.len() {
        let old = order[next] as usize;
        next += 1;
        let node = &trie.nodes[old];
        let mut kids: Vec<(&String, u32)> = node.children.iter().map(|(k, v)| (k, *v)).collect();
        crate::sort::sort_by(&mut kids, |a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        first_child[old] = order.len() as u32;
        for (k, c) in kids {
            segment[c as usize] = k.as_str();
            new_id[c as usize] = order.len() as u32;
            order.push(c);
        }
        if let Some(p) = node.param {
            new_id[p as usize] = order.len() as u32;
            order.push(p);
        }
    }
    let mut lists: Vec<u32> = Vec::new();
    let mut nodes = Vec::with_capacity(order.len() * NODE_WORDS);
    for &old in &order {
        let node = &trie.nodes[old as usize];
        let (so, sl) = string(segment[old as usize].as_bytes());
        let start = lists.len() as u32;
        lists.extend_from_slice(&node.end);
        lists.extend_from_slice(&node.open);
        lists.extend_from_slice(&node.regex);
        nodes.extend([
            so,
            sl,
            first_child[old as usize],
            node.children.len() as u32,
            node.param.map_or(NONE, |p| new_id[p as usize]),
            start,
            node.end.len() as u32,
            node.open.len() as u32,
            node.regex.len() as u32,
        ]);
    }
    let renumbered = |r: u32| new_id[r as usize];
    let mut host_words = Vec::new();
    for map in [exact, wild] {
        let mut sorted: Vec<(&String, &u32)> = map.iter().collect();
        crate::sort::sort_by(&mut sorted, |a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (h, root) in sorted {
            let (o, l) = string(h.as_bytes());
            host_words.extend([o, l, renumbered(*root)]);
        }
    }
    // Lay the sections out and fix string offsets up to absolute ones.
    let mut header = [0u32; HEADER_WORDS];
    let mut at = (HEADER_WORDS * 4) as u32;
    let mut place = |slot: usize, words: usize| {
        header[slot] = at;
        at += (words * 4) as u32;
    };
    place(H_ROUTES, routes.len());
    place(H_SERVICES, services.len());
    place(H_ENTRIES, entry_words.len());
    place(H_NODES, nodes.len());
    place(H_EXACT, host_words.len());
    place(H_LISTS, lists.len());
    let strings_at = at;
    header[H_WILD] = header[H_EXACT] + (exact.len() * 12) as u32;
    header[H_N_EXACT] = exact.len() as u32;
    header[H_N_WILD] = wild.len() as u32;
    header[H_ANY_ROOT] = renumbered(any_root);
    header[H_N_ROUTES] = route_json.len() as u32;
    header[H_N_SERVICES] = base_paths.len() as u32;
    header[H_ROUTES_IN_DOCUMENT] = spans.is_some() as u32;
    if spans.is_none() {
        for r in routes.chunks_mut(3) {
            r[0] += strings_at;
        }
    }
    for s in services.chunks_mut(2) {
        s[0] += strings_at;
    }
    for n in nodes.chunks_mut(NODE_WORDS) {
        n[0] += strings_at;
    }
    for h in host_words.chunks_mut(3) {
        h[0] += strings_at;
    }
    let mut out = Vec::with_capacity(strings_at as usize + strings.len());
    for w in header
        .iter()
        .chain(&routes)
        .chain(&services)
        .chain(&entry_words)
        .chain(&nodes)
        .chain(&host_words)
        .chain(&lists)
    {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&strings);
    out
}

/// A trie node, read from the index.
#[derive(Clone, Copy)]
pub(crate) struct NodeRec {
    /// First literal child and how many there are (consecutive, sorted by segment).
    children: (u32, u32),
    pub(crate) param: Option<u32>,
    pub(crate) end: (u32, u32),
    pub(crate) open: (u32, u32),
    pub(crate) regex: (u32, u32),
}

/// An index, read in place: `bytes[base..]` (the index may sit inside a larger compiled form, kept
/// whole rather than copied), and the JSON document its route records may point into.
pub(crate) struct Index {
    bytes: Vec<u8>,
    base: usize,
    document: Option<Vec<u8>>,
}

impl Index {
    /// Take an index's bytes. Checks only that its header fits: anything else reads as 0.
    pub(crate) fn new(
        bytes: Vec<u8>,
        base: usize,
        document: Option<Vec<u8>>,
    ) -> Result<Index, String> {
        if bytes.len() < base.saturating_add(HEADER_WORDS * 4) {
            return Err("the routing index is truncated".into());
        }
        let index = Index {
            bytes,
            base,
            document,
        };
        if index.header(H_ROUTES_IN_DOCUMENT) == 1 && index.document.is_none() {
            return Err("the routing index needs its JSON document".into());
        }
        Ok(index)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.bytes.get(self.base..).unwrap_or(&[])
    }

    fn word(&self, at: u32) -> u32 {
        let at = self.base.saturating_add(at as usize);
        match self.bytes.get(at..at.saturating_add(4)) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            None => 0,
        }
    }

    fn header(&self, slot: usize) -> u32 {
        self.word((slot * 4) as u32)
    }

    fn str_at(&self, off: u32, len: u32) -> &[u8] {
        let start = self.base.saturating_add(off as usize);
        self.bytes
            .get(start..start.saturating_add(len as usize))
            .unwrap_or(&[])
    }

    pub(crate) fn routes(&self) -> usize {
        self.header(H_N_ROUTES) as usize
    }

    /// The JSON of route `i` and its service index.
    pub(crate) fn route(&self, i: usize) -> (&[u8], usize) {
        let at = self.header(H_ROUTES) + (i as u32) * 12;
        let (o, l, s) = (self.word(at), self.word(at + 4), self.word(at + 8));
        let json = match (&self.document, self.header(H_ROUTES_IN_DOCUMENT)) {
            (Some(doc), 1) => doc
                .get(o as usize..(o as usize).saturating_add(l as usize))
                .unwrap_or(&[]),
            _ => self.str_at(o, l),
        };
        (json, s as usize)
    }

    /// The base path of service `i`.
    pub(crate) fn base_path(&self, i: usize) -> &str {
        if i >= self.header(H_N_SERVICES) as usize {
            return "";
        }
        let at = self.header(H_SERVICES) + (i as u32) * 8;
        std::str::from_utf8(self.str_at(self.word(at), self.word(at + 4))).unwrap_or("")
    }

    /// Entry `id`: (route, path pattern, precedence key).
    pub(crate) fn entry(&self, id: u32) -> (u32, u32, Precedence) {
        let at = self.header(H_ENTRIES) + id * 32;
        let w = |k: u32| self.word(at + k * 4);
        let flags = w(7);
        let host = match flags & 3 {
            0 => HostRank::Any,
            1 => HostRank::Wildcard {
                suffix_len: w(3) as usize,
            },
            _ => HostRank::Exact,
        };
        let kind = match (flags >> 2) & 3 {
            0 => PathKind::Prefix,
            1 => PathKind::Regex,
            2 => PathKind::Template,
            _ => PathKind::Exact,
        };
        let route = w(0);
        (
            route,
            w(1),
            Precedence {
                priority: w(2) as i32,
                host,
                path: PathRank {
                    kind,
                    literal_segments: w(4) as usize,
                    literal_chars: w(5) as usize,
                    no_rest: flags & 16 != 0,
                },
                has_methods: flags & 32 != 0,
                header_conditions: w(6) as usize,
                order: Reverse(route as usize),
            },
        )
    }

    fn node_at(&self, id: u32) -> u32 {
        self.header(H_NODES)
            .saturating_add(id.saturating_mul(NODE_WORDS as u32 * 4))
    }

    pub(crate) fn node(&self, id: u32) -> NodeRec {
        let at = self.node_at(id);
        let w = |k: u32| self.word(at.saturating_add(k * 4));
        let param = w(4);
        let (start, end, open, regex) = (w(5), w(6), w(7), w(8));
        NodeRec {
            children: (w(2), w(3)),
            param: (param != NONE).then_some(param),
            end: (start, end),
            open: (start.saturating_add(end), open),
            regex: (start.saturating_add(end).saturating_add(open), regex),
        }
    }

    /// The segment of node `id` (empty for roots and parameter nodes).
    fn segment(&self, id: u32) -> &[u8] {
        let at = self.node_at(id);
        self.str_at(self.word(at), self.word(at.saturating_add(4)))
    }

    /// Binary search in `count` sorted (offset, length, value) triples starting at `at`.
    fn search(&self, at: u32, count: u32, key: &[u8]) -> Option<u32> {
        let (mut lo, mut hi) = (0u32, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let rec = at + mid * 12;
            match self.str_at(self.word(rec), self.word(rec + 4)).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.word(rec + 8)),
            }
        }
        None
    }

    pub(crate) fn child(&self, node: &NodeRec, seg: &str) -> Option<u32> {
        let (first, count) = node.children;
        let (mut lo, mut hi) = (0u32, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let id = first.saturating_add(mid);
            match self.segment(id).cmp(seg.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(id),
            }
        }
        None
    }

    pub(crate) fn exact_host(&self, host: &str) -> Option<u32> {
        self.search(
            self.header(H_EXACT),
            self.header(H_N_EXACT),
            host.as_bytes(),
        )
    }

    pub(crate) fn has_wildcards(&self) -> bool {
        self.header(H_N_WILD) > 0
    }

    pub(crate) fn wildcard_host(&self, suffix: &str) -> Option<u32> {
        self.search(
            self.header(H_WILD),
            self.header(H_N_WILD),
            suffix.as_bytes(),
        )
    }

    pub(crate) fn any_root(&self) -> u32 {
        self.header(H_ANY_ROOT)
    }

    /// The entry ids of a list (`(start, len)` from a node).
    pub(crate) fn list(&self, (start, len): (u32, u32)) -> impl Iterator<Item = u32> + '_ {
        let at = self.header(H_LISTS) + start * 4;
        (0..len).map(move |k| self.word(at + k * 4))
    }
}

/// The byte span of each element of the top-level `routes` array of a JSON document, or `None` if the
/// text is not shaped as expected (then the routes are copied into the index instead). The document
/// has been validated, so this only has to find boundaries: strings (with escapes), nesting, commas.
fn route_spans(text: &str) -> Option<Vec<(u32, u32)>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        match b.get(i)? {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = skip_string(b, i)?;
        let key: String = serde_json::from_str(text.get(i..key_end)?).ok()?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if key != "routes" {
            i = skip_value(b, i)?;
            continue;
        }
        if b.get(i) != Some(&b'[') {
            return None;
        }
        i += 1;
        let mut spans = Vec::new();
        loop {
            i = skip_ws(b, i);
            match b.get(i)? {
                b']' => return Some(spans),
                b',' => i += 1,
                _ => {
                    let end = skip_value(b, i)?;
                    spans.push((u32::try_from(i).ok()?, u32::try_from(end - i).ok()?));
                    i = end;
                }
            }
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// `b[i]` is `"`: the index just past the closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index just past the JSON value starting at `b[i]`.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match b.get(i) {
            Some(b'"') => i = skip_string(b, i)?,
            Some(b'{' | b'[') => {
                depth += 1;
                i += 1;
            }
            Some(b'}' | b']') => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            Some(b',') if depth == 0 => return Some(i),
            Some(_) => i += 1,
            None => return (depth == 0).then_some(i),
        }
    }
}
