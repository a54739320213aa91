use super::*;
use crate::config::GatewayConfig;
use serde_json::{json, Value};
use std::cell::Cell;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Confinement of the upstream path to the service's base path (issue 11 item 1).
mod confined;

fn config(routes: Value) -> GatewayConfig {
    serde_json::from_value(json!({
        "format_version": 1,
        "services": [
            {"name": "s", "url": "http://up.internal:9000"},
            {"name": "b", "url": "http://up.internal:9000/base"},
            {"name": "t", "url": "http://up.internal:9000/s/"}
        ],
        "routes": routes,
    }))
    .expect("test config deserializes")
}

/// Routes given as `(name, extra fields)`; service `s` unless set.
fn routes(list: &[(&str, Value)]) -> (GatewayConfig, Router) {
    let routes: Vec<Value> = list
        .iter()
        .map(|(name, extra)| {
            let mut r = json!({"name": name, "service": "s"});
            for (k, v) in extra.as_object().expect("object") {
                r[k] = v.clone();
            }
            r
        })
        .collect();
    let cfg = config(Value::Array(routes));
    for (i, r) in cfg.routes.iter().enumerate() {
        assert_eq!(check_route(r), vec![], "routes[{i}] should be valid");
    }
    let router = Router::compile(&cfg).expect("compiles");
    (cfg, router)
}

struct Req<'a> {
    method: &'a str,
    host: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a [(&'a str, &'a str)],
}

fn get(path: &str) -> Req<'_> {
    Req {
        method: "GET",
        host: "example.com",
        path,
        query: "",
        headers: &[],
    }
}

impl<'a> Req<'a> {
    fn method(mut self, m: &'a str) -> Self {
        self.method = m;
        self
    }
    fn host(mut self, h: &'a str) -> Self {
        self.host = h;
        self
    }
    fn query(mut self, q: &'a str) -> Self {
        self.query = q;
        self
    }
    fn headers(mut self, h: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = h;
        self
    }
}

fn run(router: &Router, r: &Req<'_>) -> Result<RouteMatch, GatewayError> {
    let headers = r.headers;
    let lookup = move |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_string())
    };
    router.route(&RequestView {
        method: r.method,
        host: r.host,
        path: r.path,
        query: r.query,
        header: &lookup,
    })
}

/// Name of the matched route, `404`, or `405 GET, POST`.
fn outcome(cfg: &GatewayConfig, router: &Router, r: Req<'_>) -> String {
    match run(router, &r) {
        Ok(m) => cfg.routes[m.route].name.clone(),
        Err(e) => match e.kind {
            ErrorKind::NoRoute => "404".into(),
            ErrorKind::MethodNotAllowed { allow } => format!("405 {}", allow.join(", ")),
            other => panic!("unexpected error {other:?}"),
        },
    }
}

fn upstream(router: &Router, r: Req<'_>) -> String {
    run(router, &r).expect("matches").upstream_path_and_query
}

fn params(router: &Router, r: Req<'_>) -> Vec<(String, String)> {
    run(router, &r).expect("matches").params
}

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

// ---------------------------------------------------------------- precedence: one test per rule.
// The examples are the ones in docs/routing.md.

#[test]
fn priority_precedence() {
    let (c, r) = routes(&[
        ("health", json!({"paths": ["=/health"]})),
        ("catch-all", json!({"paths": ["/"], "priority": 10})),
    ]);
    assert_eq!(outcome(&c, &r, get("/health")), "catch-all");
    let (c, r) = routes(&[
        ("health", json!({"paths": ["=/health"], "priority": -1})),
        ("catch-all", json!({"paths": ["/"], "priority": -2})),
    ]);
    assert_eq!(outcome(&c, &r, get("/health")), "health");
}

#[test]
fn host_specificity_precedence() {
    let (c, r) = routes(&[
        ("any", json!({"paths": ["/"]})),
        ("wild", json!({"hosts": ["*.example.com"]})),
        ("wild-eu", json!({"hosts": ["*.eu.example.com"]})),
        ("exact", json!({"hosts": ["api.eu.example.com"]})),
    ]);
    assert_eq!(
        outcome(&c, &r, get("/").host("api.eu.example.com")),
        "exact"
    );
    assert_eq!(
        outcome(&c, &r, get("/").host("web.eu.example.com")),
        "wild-eu"
    );
    assert_eq!(outcome(&c, &r, get("/").host("www.example.com")), "wild");
    assert_eq!(outcome(&c, &r, get("/").host("example.com")), "any");
    // Host beats path: a host-specific prefix `/` wins over an exact path on any host.
    let (c, r) = routes(&[
        ("exact-path", json!({"paths": ["=/login"]})),
        (
            "host",
            json!({"hosts": ["auth.example.com"], "paths": ["/"]}),
        ),
    ]);
    assert_eq!(
        outcome(&c, &r, get("/login").host("auth.example.com")),
        "host"
    );
    assert_eq!(
        outcome(&c, &r, get("/login").host("www.example.com")),
        "exact-path"
    );
}

#[test]
fn path_kind_precedence() {
    let (c, r) = routes(&[
        ("prefix", json!({"paths": ["/users"]})),
        ("regex", json!({"paths": ["~^/users/[0-9]+/?$"]})),
        ("template", json!({"paths": ["/users/{id}"]})),
        ("exact", json!({"paths": ["=/users/me"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/users/me")), "exact");
    assert_eq!(outcome(&c, &r, get("/users/42")), "template");
    assert_eq!(outcome(&c, &r, get("/users/42/")), "regex");
    assert_eq!(outcome(&c, &r, get("/users/42/posts")), "prefix");
}

#[test]
fn path_length_precedence() {
    let (c, r) = routes(&[
        ("api", json!({"paths": ["/api"]})),
        ("api-v1", json!({"paths": ["/api/v1"]})),
        ("repo", json!({"paths": ["/{org}/{repo}"]})),
        ("settings", json!({"paths": ["/{org}/settings"]})),
        ("file", json!({"paths": ["/files/{name}"]})),
        ("files", json!({"paths": ["/files/{*path}"]})),
        ("v-short", json!({"paths": ["~^/v"]})),
        ("v-long", json!({"paths": ["~^/v1/"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/api/v1/users")), "api-v1");
    assert_eq!(outcome(&c, &r, get("/api/v2/users")), "api");
    assert_eq!(outcome(&c, &r, get("/acme/settings")), "settings");
    assert_eq!(outcome(&c, &r, get("/acme/widgets")), "repo");
    assert_eq!(outcome(&c, &r, get("/files/a.txt")), "file");
    assert_eq!(outcome(&c, &r, get("/files/dir/a.txt")), "files");
    assert_eq!(outcome(&c, &r, get("/v1/x/y")), "v-long");
    assert_eq!(outcome(&c, &r, get("/v2/x/y")), "v-short");
}

#[test]
fn method_precedence() {
    let (c, r) = routes(&[
        ("any-method", json!({"paths": ["/orders"]})),
        (
            "get-only",
            json!({"paths": ["/orders"], "methods": ["GET"]}),
        ),
    ]);
    assert_eq!(outcome(&c, &r, get("/orders")), "get-only");
    assert_eq!(outcome(&c, &r, get("/orders").method("POST")), "any-method");
}

#[test]
fn header_precedence() {
    let (c, r) = routes(&[
        ("stable", json!({"paths": ["/app"]})),
        (
            "canary",
            json!({"paths": ["/app"], "headers": {"x-canary": ["1"]}}),
        ),
        (
            "canary-eu",
            json!({"paths": ["/app"], "headers": {"x-canary": ["1"], "x-region": ["eu"]}}),
        ),
    ]);
    assert_eq!(outcome(&c, &r, get("/app")), "stable");
    assert_eq!(
        outcome(&c, &r, get("/app").headers(&[("x-canary", "1")])),
        "canary"
    );
    let both = [("X-Canary", "1"), ("x-region", "EU")];
    assert_eq!(outcome(&c, &r, get("/app").headers(&both)), "canary-eu");
}

#[test]
fn config_order_precedence() {
    let (c, r) = routes(&[
        ("first", json!({"paths": ["/api"], "methods": ["GET"]})),
        (
            "second",
            json!({"paths": ["/api"], "methods": ["GET", "POST"]}),
        ),
    ]);
    assert_eq!(outcome(&c, &r, get("/api")), "first");
    assert_eq!(outcome(&c, &r, get("/api").method("POST")), "second");
}

#[test]
fn precedence_is_one_total_order() {
    use precedence::{PathKind, PathRank};
    let key = |priority, host, kind, has_methods, header_conditions, order| Precedence {
        priority,
        host,
        path: PathRank {
            kind,
            literal_segments: 0,
            literal_chars: 1,
            no_rest: true,
        },
        has_methods,
        header_conditions,
        order: Reverse(order),
    };
    // Each rule dominates all the ones after it.
    let high = key(1, HostRank::Any, PathKind::Prefix, false, 0, 9);
    let low = key(0, HostRank::Exact, PathKind::Exact, true, 5, 0);
    assert!(high > low);
    let high = key(
        0,
        HostRank::Wildcard { suffix_len: 3 },
        PathKind::Prefix,
        false,
        0,
        9,
    );
    let low = key(0, HostRank::Any, PathKind::Exact, true, 5, 0);
    assert!(high > low);
    assert!(HostRank::Wildcard { suffix_len: 12 } > HostRank::Wildcard { suffix_len: 11 });
    assert!(HostRank::Exact > HostRank::Wildcard { suffix_len: 100 });
    let high = key(0, HostRank::Any, PathKind::Regex, false, 0, 9);
    let low = key(0, HostRank::Any, PathKind::Prefix, true, 5, 0);
    assert!(high > low);
    let high = key(0, HostRank::Any, PathKind::Prefix, true, 0, 9);
    let low = key(0, HostRank::Any, PathKind::Prefix, false, 5, 0);
    assert!(high > low);
    let high = key(0, HostRank::Any, PathKind::Prefix, false, 1, 9);
    let low = key(0, HostRank::Any, PathKind::Prefix, false, 0, 0);
    assert!(high > low);
    assert!(
        key(0, HostRank::Any, PathKind::Prefix, false, 0, 0)
            > key(0, HostRank::Any, PathKind::Prefix, false, 0, 1)
    );
}

// ---------------------------------------------------------------- path kinds

#[test]
fn prefix_is_segment_aware() {
    let (c, r) = routes(&[("api", json!({"paths": ["/api"]}))]);
    for hit in ["/api", "/api/", "/api/x", "/api/x/y"] {
        assert_eq!(outcome(&c, &r, get(hit)), "api", "{hit}");
    }
    for miss in ["/apix", "/", "/ap", "/x/api"] {
        assert_eq!(outcome(&c, &r, get(miss)), "404", "{miss}");
    }
    // A trailing slash in the pattern is the same prefix.
    let (c, r) = routes(&[("api", json!({"paths": ["/api/"]}))]);
    assert_eq!(outcome(&c, &r, get("/api")), "api");
    assert_eq!(outcome(&c, &r, get("/apix")), "404");
    // `/` and an empty list match everything.
    let (c, r) = routes(&[("root", json!({"paths": ["/"]}))]);
    for hit in ["/", "/x", "/x/y/", "//"] {
        assert_eq!(outcome(&c, &r, get(hit)), "root", "{hit}");
    }
    let (c, r) = routes(&[("none", json!({}))]);
    assert_eq!(outcome(&c, &r, get("/anything/at/all")), "none");
}

#[test]
fn exact_paths() {
    let (c, r) = routes(&[
        ("health", json!({"paths": ["=/health"]})),
        ("root", json!({"paths": ["=/"]})),
        ("slash", json!({"paths": ["=/dir/"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/health")), "health");
    assert_eq!(outcome(&c, &r, get("/")), "root");
    assert_eq!(outcome(&c, &r, get("/dir/")), "slash");
    for miss in ["/health/", "/healthz", "/health/x", "/dir", "/Health"] {
        assert_eq!(outcome(&c, &r, get(miss)), "404", "{miss}");
    }
}

#[test]
fn templates() {
    let (c, r) = routes(&[
        ("user", json!({"paths": ["/users/{id}"]})),
        ("post", json!({"paths": ["/users/{uid}/posts/{pid}"]})),
        ("files", json!({"paths": ["/files/{*rest}"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/users/7")), "user");
    assert_eq!(params(&r, get("/users/7")), p(&[("id", "7")]));
    assert_eq!(
        params(&r, get("/users/a%2Fb/posts/9")),
        p(&[("uid", "a%2Fb"), ("pid", "9")])
    );
    for miss in [
        "/users",
        "/users/",
        "/users/7/",
        "/users/7/x",
        "/users//posts/9",
    ] {
        assert_eq!(outcome(&c, &r, get(miss)), "404", "{miss}");
    }
    assert_eq!(params(&r, get("/files/a/b.txt")), p(&[("rest", "a/b.txt")]));
    assert_eq!(params(&r, get("/files/")), p(&[("rest", "")]));
    assert_eq!(params(&r, get("/files")), p(&[("rest", "")]));
    assert_eq!(outcome(&c, &r, get("/filesx")), "404");
    // `{*rest}` at the root takes everything.
    let (c, r) = routes(&[("all", json!({"paths": ["/{*all}"]}))]);
    assert_eq!(params(&r, get("/a/b")), p(&[("all", "a/b")]));
    assert_eq!(outcome(&c, &r, get("/")), "all");
}

#[test]
fn regex_paths() {
    let (c, r) = routes(&[
        ("items", json!({"paths": ["~^/v[0-9]+/items$"]})),
        (
            "named",
            json!({"paths": ["~^/orders/(?<id>[0-9]+)/lines/(?P<line>[0-9]+)"]}),
        ),
        ("unanchored", json!({"paths": ["~/docs/[a-z]+"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/v2/items")), "items");
    assert_eq!(outcome(&c, &r, get("/v2/items/x")), "404");
    assert_eq!(outcome(&c, &r, get("/x/v2/items")), "404");
    assert_eq!(
        params(&r, get("/orders/12/lines/3/extra")),
        p(&[("id", "12"), ("line", "3")])
    );
    // Implicitly anchored at the start, not at the end.
    assert_eq!(outcome(&c, &r, get("/docs/intro/more")), "unanchored");
    assert_eq!(outcome(&c, &r, get("/x/docs/intro")), "404");
}

#[test]
fn regex_literal_prefix_does_not_lose_matches() {
    let (c, r) = routes(&[
        ("optional-char", json!({"paths": ["~^/api/?x"]})),
        ("alternation", json!({"paths": ["~^/a/b|/c/d"]})),
        ("star", json!({"paths": ["~^/q/r*s"]})),
        ("class", json!({"paths": ["~^/k/[0-9]"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/apix")), "optional-char");
    assert_eq!(outcome(&c, &r, get("/api/x")), "optional-char");
    assert_eq!(outcome(&c, &r, get("/c/d")), "alternation");
    assert_eq!(outcome(&c, &r, get("/a/b")), "alternation");
    assert_eq!(outcome(&c, &r, get("/q/s")), "star");
    assert_eq!(outcome(&c, &r, get("/k/1")), "class");
    assert_eq!(
        pattern::regex_literal_prefix("^/api/v1/items/(?<id>x)"),
        "/api/v1/items/"
    );
    assert_eq!(pattern::regex_literal_prefix("/api/?x"), "/api");
    assert_eq!(pattern::regex_literal_prefix("^/a|/b"), "");
    assert_eq!(pattern::regex_literal_prefix("^/a/(b|c)"), "/a/");
    match pattern::parse_path("~^/api/v1/items/(?<id>[0-9]+)").unwrap() {
        PathPattern::Regex { anchor, params, .. } => {
            assert_eq!(anchor, vec!["api", "v1", "items"]);
            assert_eq!(params, vec!["id"]);
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- hosts

#[test]
fn wildcard_and_exact_hosts() {
    let (c, r) = routes(&[
        ("exact", json!({"hosts": ["API.Example.com"]})),
        ("wild", json!({"hosts": ["*.example.org"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/").host("api.example.com")), "exact");
    assert_eq!(outcome(&c, &r, get("/").host("API.EXAMPLE.COM")), "exact");
    assert_eq!(outcome(&c, &r, get("/").host("api.example.com.")), "exact");
    assert_eq!(outcome(&c, &r, get("/").host("x.api.example.com")), "404");
    assert_eq!(outcome(&c, &r, get("/").host("a.example.org")), "wild");
    assert_eq!(outcome(&c, &r, get("/").host("a.b.c.example.org")), "wild");
    assert_eq!(outcome(&c, &r, get("/").host("example.org")), "404");
    assert_eq!(outcome(&c, &r, get("/").host("badexample.org")), "404");
    assert_eq!(outcome(&c, &r, get("/").host("")), "404");
    // A wildcard stands for non-empty labels only.
    for bad in [
        ".example.org",
        "..example.org",
        "a..example.org",
        ".a.example.org",
        "a..b.example.org",
    ] {
        assert_eq!(outcome(&c, &r, get("/").host(bad)), "404", "{bad}");
    }
    assert_eq!(outcome(&c, &r, get("/").host("a.b.example.org.")), "wild");
}

#[test]
fn route_with_several_hosts_and_paths() {
    let (c, r) = routes(&[
        (
            "multi",
            json!({"hosts": ["a.com", "*.b.com"], "paths": ["=/x", "/y/{id}"]}),
        ),
        ("fallback", json!({"paths": ["/"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/x").host("a.com")), "multi");
    assert_eq!(outcome(&c, &r, get("/y/1").host("q.b.com")), "multi");
    assert_eq!(outcome(&c, &r, get("/x").host("c.com")), "fallback");
    assert_eq!(outcome(&c, &r, get("/z").host("a.com")), "fallback");
}

// ---------------------------------------------------------------- headers

#[test]
fn header_exact_and_regex_values() {
    let (c, r) = routes(&[(
        "env",
        json!({"paths": ["/"], "headers": {"X-Env": ["prod", "~^stag"]}}),
    )]);
    assert_eq!(
        outcome(&c, &r, get("/").headers(&[("x-env", "PROD")])),
        "env"
    );
    assert_eq!(
        outcome(&c, &r, get("/").headers(&[("x-env", "staging-2")])),
        "env"
    );
    assert_eq!(
        outcome(&c, &r, get("/").headers(&[("x-env", "prod2")])),
        "404"
    );
    assert_eq!(
        outcome(&c, &r, get("/").headers(&[("x-env", "my-staging")])),
        "404"
    );
    assert_eq!(outcome(&c, &r, get("/")), "404");
    // Unanchored regex searches anywhere; "~" alone only requires presence.
    let (c, r) = routes(&[
        (
            "search",
            json!({"paths": ["/"], "headers": {"user-agent": ["~bot"]}}),
        ),
        (
            "present",
            json!({"paths": ["/p"], "headers": {"x-key": ["~"]}}),
        ),
    ]);
    assert_eq!(
        outcome(&c, &r, get("/").headers(&[("user-agent", "googlebot/2")])),
        "search"
    );
    assert_eq!(
        outcome(&c, &r, get("/p").headers(&[("x-key", "")])),
        "present"
    );
    assert_eq!(outcome(&c, &r, get("/p")), "404");
}

/// Kong's spelling of a header regex, `~*regex`, is accepted and ignores case (Kong lower-cases both
/// sides); `~*` alone accepts any value. It is distinct from `~` + a regex (which cannot start with `*`).
#[test]
fn header_regex_in_kongs_spelling_ignores_case() {
    let (c, r) = routes(&[
        (
            "kong",
            json!({"paths": ["/k"], "headers": {"x-env": ["~*^stag"]}}),
        ),
        (
            "any",
            json!({"paths": ["/a"], "headers": {"x-env": ["~*"]}}),
        ),
    ]);
    for (value, expected) in [
        ("staging-2", "kong"),
        ("STAGING", "kong"),
        ("StAg", "kong"),
        ("my-staging", "404"),
    ] {
        let h = [("x-env", value)];
        assert_eq!(outcome(&c, &r, get("/k").headers(&h)), expected, "{value}");
    }
    assert_eq!(outcome(&c, &r, get("/a").headers(&[("x-env", "")])), "any");
    assert_eq!(outcome(&c, &r, get("/a")), "404");
    // Whitespace around a value is not part of it (the runtime keeps trailing spaces).
    let h = [("x-env", " \tStaging  \t")];
    assert_eq!(outcome(&c, &r, get("/k").headers(&h)), "kong");
    let errs = errors(json!({"headers": {"x-env": ["~*(", "~**"]}}));
    assert!(has_error(
        &errs,
        "headers.x-env[0]",
        "invalid regular expression: "
    ));
    assert!(has_error(
        &errs,
        "headers.x-env[1]",
        "invalid regular expression: "
    ));
}

/// A literal path pattern gets the percent-encoding the runtime gives a request path (non-ASCII bytes,
/// space, `"` `<` `>` `` ` `` `^`), so `/café` matches `/caf%C3%A9`; `?` and `#` are refused.
#[test]
fn literal_patterns_are_encoded_as_requests_arrive() {
    let (c, r) = routes(&[
        ("cafe", json!({"paths": ["/caf\u{e9}"]})),
        ("space", json!({"paths": ["=/a b"]})),
        ("tmpl", json!({"paths": ["/\u{e9}t\u{e9}/{id}"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/caf%C3%A9/x")), "cafe");
    assert_eq!(outcome(&c, &r, get("/caf%c3%a9")), "cafe");
    assert_eq!(outcome(&c, &r, get("/a%20b")), "space");
    assert_eq!(outcome(&c, &r, get("/%C3%A9t%C3%A9/7")), "tmpl");
    assert_eq!(upstream(&r, get("/caf%C3%A9/x")), "/x");
    let errs = errors(json!({"paths": ["/a?b", "=/a#b", "/ok/\u{e9}"]}));
    assert!(has_error(&errs, "paths[0]", "never part of a request path"));
    assert!(has_error(&errs, "paths[1]", "never part of a request path"));
    assert_eq!(errs.len(), 2, "{errs:?}");
}

#[test]
fn headers_are_read_only_for_routes_with_conditions() {
    let (_, r) = routes(&[
        ("plain", json!({"paths": ["/plain"]})),
        (
            "cond",
            json!({"paths": ["/cond"], "headers": {"x-a": ["1"]}}),
        ),
    ]);
    let calls = Cell::new(0);
    let lookup = |_: &str| {
        calls.set(calls.get() + 1);
        Some("1".to_string())
    };
    let view = |path| RequestView {
        method: "GET",
        host: "h",
        path,
        query: "",
        header: &lookup,
    };
    assert!(r.route(&view("/plain")).is_ok());
    assert_eq!(calls.get(), 0);
    assert!(r.route(&view("/cond")).is_ok());
    assert_eq!(calls.get(), 1);
}

// ---------------------------------------------------------------- 404 / 405

#[test]
fn method_not_allowed_lists_sorted_union() {
    let (c, r) = routes(&[
        (
            "read",
            json!({"paths": ["/items"], "methods": ["GET", "HEAD"]}),
        ),
        (
            "write",
            json!({"paths": ["/items"], "methods": ["POST", "GET"]}),
        ),
        (
            "other-host",
            json!({"hosts": ["x.com"], "paths": ["/items"], "methods": ["PUT"]}),
        ),
        (
            "needs-header",
            json!({"paths": ["/items"], "methods": ["PATCH"], "headers": {"x-a": ["1"]}}),
        ),
    ]);
    assert_eq!(
        outcome(&c, &r, get("/items").method("DELETE")),
        "405 GET, HEAD, POST"
    );
    let e = run(&r, &get("/items").method("DELETE")).unwrap_err();
    assert_eq!(e.status(), 405);
    assert_eq!(e.headers(), vec![("allow", "GET, HEAD, POST".to_string())]);
    // With the header, PATCH joins the list; on x.com, PUT does.
    assert_eq!(
        outcome(
            &c,
            &r,
            get("/items").method("DELETE").headers(&[("x-a", "1")])
        ),
        "405 GET, HEAD, PATCH, POST"
    );
    assert_eq!(
        outcome(&c, &r, get("/items").method("DELETE").host("x.com")),
        "405 GET, HEAD, POST, PUT"
    );
    assert_eq!(outcome(&c, &r, get("/nothing").method("DELETE")), "404");
}

#[test]
fn full_match_beats_method_not_allowed() {
    let (c, r) = routes(&[
        (
            "specific",
            json!({"paths": ["=/items"], "methods": ["GET"]}),
        ),
        ("fallback", json!({"paths": ["/"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/items").method("POST")), "fallback");
    // Headers that fail make a route not count for 405 either.
    let (c, r) = routes(&[(
        "h",
        json!({"paths": ["/items"], "methods": ["GET"], "headers": {"x-a": ["1"]}}),
    )]);
    assert_eq!(outcome(&c, &r, get("/items").method("POST")), "404");
    assert_eq!(
        outcome(
            &c,
            &r,
            get("/items").method("POST").headers(&[("x-a", "1")])
        ),
        "405 GET"
    );
    // A regex that does not match does not count either.
    let (c, r) = routes(&[("re", json!({"paths": ["~^/n/[0-9]+$"], "methods": ["GET"]}))]);
    assert_eq!(outcome(&c, &r, get("/n/x").method("POST")), "404");
    assert_eq!(outcome(&c, &r, get("/n/1").method("POST")), "405 GET");
    let e = run(&r, &get("/nope")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NoRoute);
    assert_eq!(e.status(), 404);
}

// ---------------------------------------------------------------- upstream path

#[test]
fn strip_path_and_base_path_joining() {
    let (_, r) = routes(&[
        ("api", json!({"paths": ["/api"], "service": "b"})),
        (
            "api-nostrip",
            json!({"paths": ["/keep"], "service": "b", "strip_path": false}),
        ),
        ("plain", json!({"paths": ["/plain"]})),
        ("health", json!({"paths": ["=/health"], "service": "b"})),
        ("root", json!({"paths": ["/"], "service": "b"})),
    ]);
    assert_eq!(upstream(&r, get("/api/x/y")), "/base/x/y");
    // Kong's v0 keeps the request's trailing slash: `/api/` gives `/base/`.
    assert_eq!(upstream(&r, get("/api/")), "/base/");
    assert_eq!(upstream(&r, get("/api/x/")), "/base/x/");
    assert_eq!(upstream(&r, get("/plain/")), "/");
    assert_eq!(upstream(&r, get("/keep/")), "/base/keep/");
    assert_eq!(upstream(&r, get("/api")), "/base");
    assert_eq!(upstream(&r, get("/keep/x")), "/base/keep/x");
    assert_eq!(upstream(&r, get("/plain/x")), "/x");
    assert_eq!(upstream(&r, get("/plain")), "/");
    assert_eq!(upstream(&r, get("/health")), "/base");
    assert_eq!(upstream(&r, get("/other/z")), "/base/other/z");
    assert_eq!(upstream(&r, get("/")), "/base");
}

#[test]
fn strip_path_for_templates_and_regexes() {
    let (_, r) = routes(&[
        ("user", json!({"paths": ["/users/{id}"]})),
        (
            "files",
            json!({"paths": ["/files/{*rest}"], "service": "b"}),
        ),
        ("ver", json!({"paths": ["~^/v[0-9]+"]})),
        ("short", json!({"paths": ["~^/w"]})),
        ("whole", json!({"paths": ["~^/all/[a-z]+$"]})),
    ]);
    assert_eq!(upstream(&r, get("/users/7")), "/");
    assert_eq!(upstream(&r, get("/files/a/b")), "/base/a/b");
    assert_eq!(upstream(&r, get("/files")), "/base");
    assert_eq!(upstream(&r, get("/files/")), "/base/");
    assert_eq!(upstream(&r, get("/v2/")), "/");
    assert_eq!(upstream(&r, get("/v2")), "/");
    assert_eq!(upstream(&r, get("/v2/items")), "/items");
    assert_eq!(upstream(&r, get("/w2/items")), "/2/items");
    assert_eq!(upstream(&r, get("/all/xyz")), "/");
}

#[test]
fn rewrite_with_params_ignores_strip_path() {
    let (_, r) = routes(&[
        (
            "user",
            json!({"paths": ["/users/{id}"], "service": "b", "rewrite": "/v2/users/{id}"}),
        ),
        (
            "re",
            json!({"paths": ["~^/o/(?<oid>[0-9]+)"], "rewrite": "/orders/{oid}/view", "strip_path": false}),
        ),
        (
            "files",
            json!({"paths": ["/f/{*rest}"], "rewrite": "/static/{rest}"}),
        ),
        (
            "fixed",
            json!({"paths": ["/fixed"], "service": "b", "rewrite": "/"}),
        ),
    ]);
    assert_eq!(upstream(&r, get("/users/7")), "/base/v2/users/7");
    assert_eq!(
        upstream(&r, get("/users/a%20b").query("x=1")),
        "/base/v2/users/a%20b?x=1"
    );
    assert_eq!(upstream(&r, get("/o/55/x")), "/orders/55/view");
    assert_eq!(upstream(&r, get("/f/css/a.css")), "/static/css/a.css");
    assert_eq!(upstream(&r, get("/fixed/anything")), "/base");
}

#[test]
fn query_passthrough() {
    let (_, r) = routes(&[("api", json!({"paths": ["/api"], "service": "b"}))]);
    assert_eq!(
        upstream(&r, get("/api/x").query("a=1&b=%20")),
        "/base/x?a=1&b=%20"
    );
    assert_eq!(upstream(&r, get("/api").query("a")), "/base?a");
    assert_eq!(upstream(&r, get("/api/x").query("")), "/base/x");
    let m = run(&r, &get("/api")).unwrap();
    assert_eq!((m.route, m.service), (0, 1));
}

#[test]
fn join_base_follows_kong_v0() {
    assert_eq!(join_base("/base", "/x"), "/base/x");
    assert_eq!(join_base("/base", "/"), "/base");
    assert_eq!(join_base("", "/"), "/");
    assert_eq!(join_base("", ""), "/");
    assert_eq!(join_base("/base", "/x/"), "/base/x/");
    // A base path's trailing slash is kept and never doubled.
    assert_eq!(join_base("/s/", "/"), "/s/");
    assert_eq!(join_base("/s/", ""), "/s/");
    assert_eq!(join_base("/s/", "/x"), "/s/x");
    assert_eq!(join_base("/s/", "x"), "/s/x");
    assert_eq!(join_base("/s/", "/x/"), "/s/x/");
}

#[test]
fn a_service_path_with_a_trailing_slash_keeps_it_as_kong_v0() {
    let (_, r) = routes(&[
        ("p", json!({"paths": ["/p"], "service": "t"})),
        (
            "keep",
            json!({"paths": ["/keep"], "service": "t", "strip_path": false}),
        ),
        (
            "rw",
            json!({"paths": ["/users/{id}"], "service": "t", "rewrite": "/v2/users/{id}"}),
        ),
        (
            "fixed",
            json!({"paths": ["/fixed"], "service": "t", "rewrite": "/"}),
        ),
        ("health", json!({"paths": ["=/health"], "service": "t"})),
    ]);
    // Service URL `http://up.internal:9000/s/`.
    assert_eq!(upstream(&r, get("/p")), "/s/");
    assert_eq!(upstream(&r, get("/p/")), "/s/");
    assert_eq!(upstream(&r, get("/p/x")), "/s/x");
    assert_eq!(upstream(&r, get("/p/x/")), "/s/x/");
    assert_eq!(upstream(&r, get("/p/x").query("a=1")), "/s/x?a=1");
    assert_eq!(upstream(&r, get("/p").query("a=1")), "/s/?a=1");
    assert_eq!(upstream(&r, get("/keep")), "/s/keep");
    assert_eq!(upstream(&r, get("/keep/x/")), "/s/keep/x/");
    assert_eq!(upstream(&r, get("/users/7")), "/s/v2/users/7");
    assert_eq!(upstream(&r, get("/fixed/z")), "/s/");
    assert_eq!(upstream(&r, get("/health")), "/s/");
    // Never `//`, whatever the request.
    for path in ["/p", "/p/", "/p/x", "/keep/", "/health", "/fixed"] {
        assert!(!upstream(&r, get(path)).contains("//"), "{path}");
    }
}

// ---------------------------------------------------------------- check_route

fn route_json(extra: Value) -> RouteConfig {
    let mut r = json!({"name": "r", "service": "s"});
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    serde_json::from_value(r).unwrap()
}

fn errors(extra: Value) -> Vec<(String, String)> {
    check_route(&route_json(extra))
}

fn has_error(errs: &[(String, String)], path: &str, needle: &str) -> bool {
    errs.iter().any(|(p, m)| p == path && m.contains(needle))
}

#[test]
fn check_route_accepts_the_documented_example() {
    let errs = errors(json!({
        "hosts": ["api.example.com", "*.example.com", "UPPER.example.com"],
        "paths": ["/users/{id}", "/api", "=/health", "~^/v[0-9]+/items$"],
        "methods": ["GET"],
        "headers": {"x-env": ["prod", "~^stag"]},
    }));
    assert_eq!(errs, vec![]);
    let errs = errors(
        json!({"paths": ["/users/{id}", "~^/u/(?<id>[0-9]+)"], "rewrite": "/v2/users/{id}"}),
    );
    assert_eq!(errs, vec![]);
}

#[test]
fn check_route_rejects_bad_hosts() {
    let errs = errors(json!({"hosts": [
        "", "api.*.com", "example.com:8080", "exa mple.com", "*", "*.", "a..b", "*example.com", "ok.com"
    ]}));
    for i in 0..8 {
        assert!(
            errs.iter().any(|(p, _)| p == &format!("hosts[{i}]")),
            "hosts[{i}]: {errs:?}"
        );
    }
    assert!(!errs.iter().any(|(p, _)| p == "hosts[8]"));
    assert!(has_error(&errs, "hosts[2]", "ports are not allowed"));
    assert!(has_error(&errs, "hosts[1]", "'*' is only allowed"));
    assert!(has_error(&errs, "hosts[3]", "invalid character"));
}

#[test]
fn check_route_rejects_bad_paths() {
    let errs = errors(json!({"paths": [
        "/ok",
        "/users/{id",
        "api",
        "=health",
        "/users/{}",
        "/a/{id}/b/{id}",
        "/a/{*rest}/b",
        "~^/v(",
        "/v{version}",
        "/a/}",
        "/a/{b-c}",
        "~v1/items",
        "~",
    ]}));
    assert!(!errs.iter().any(|(p, _)| p == "paths[0]"), "{errs:?}");
    assert!(
        has_error(&errs, "paths[1]", "unclosed '{' in template"),
        "{errs:?}"
    );
    assert!(has_error(&errs, "paths[2]", "must start with '/'"));
    assert!(has_error(&errs, "paths[3]", "must start with '/'"));
    assert!(has_error(&errs, "paths[4]", "empty parameter name"));
    assert!(has_error(
        &errs,
        "paths[5]",
        "duplicate parameter name {id}"
    ));
    assert!(has_error(&errs, "paths[6]", "must be the last segment"));
    assert!(has_error(&errs, "paths[7]", "invalid regular expression: "));
    assert!(has_error(&errs, "paths[8]", "whole segment"));
    assert!(has_error(&errs, "paths[9]", "unmatched '}'"));
    assert!(has_error(&errs, "paths[10]", "invalid parameter name"));
    assert!(has_error(&errs, "paths[11]", "can never match"));
    assert!(has_error(&errs, "paths[12]", "empty regular expression"));
    assert_eq!(errs.len(), 12, "{errs:?}");
}

#[test]
fn check_route_rejects_bad_headers() {
    let errs = errors(json!({"headers": {
        "x-env": ["prod", "~(unclosed"],
        "bad name": ["x"],
        "x-empty": [],
    }}));
    assert!(
        has_error(&errs, "headers.x-env[1]", "invalid regular expression: "),
        "{errs:?}"
    );
    assert!(has_error(
        &errs,
        "headers[<hidden key, 8 characters>]",
        "invalid character ' ' in header name <hidden key, 8 characters>"
    ));
    assert!(has_error(&errs, "headers.x-empty", "at least one"));
    assert_eq!(errs.len(), 3, "{errs:?}");
}

#[test]
fn check_route_rejects_bad_rewrites() {
    let errs = errors(json!({"paths": ["/users/{id}"], "rewrite": "/v2/users/{idd}"}));
    assert_eq!(
        errs,
        vec![(
            "rewrite".to_string(),
            "unknown parameter {idd}; the route's paths capture: id".to_string()
        )]
    );
    let errs = errors(json!({"paths": ["/users/{id}", "/api"], "rewrite": "/x/{id}"}));
    assert!(
        has_error(&errs, "rewrite", "missing in paths[1] (\"/api\")"),
        "{errs:?}"
    );
    let errs = errors(json!({"paths": ["/users/{id}"], "rewrite": "v2/{id}"}));
    assert!(has_error(&errs, "rewrite", "must start with '/'"));
    let errs = errors(json!({"paths": ["/users/{id}"], "rewrite": "/v2/{id"}));
    assert!(has_error(&errs, "rewrite", "unclosed '{'"));
    let errs = errors(json!({"rewrite": "/v2/{id}"}));
    assert!(has_error(&errs, "rewrite", "captures no parameters"));
    let errs = errors(json!({"paths": ["/a"], "rewrite": "/v2/{id}"}));
    assert!(has_error(&errs, "rewrite", "unknown parameter {id}"));
    // A bad path only yields its own error, not also a rewrite error.
    let errs = errors(json!({"paths": ["/users/{id}", "/x/{"], "rewrite": "/v2/{id}"}));
    assert_eq!(errs.len(), 1, "{errs:?}");
}

// ---------------------------------------------------------------- find_shadowed

#[test]
fn find_shadowed_reports_identical_conditions() {
    let list = vec![
        route_json(
            json!({"name": "a", "paths": ["/api", "=/x"], "hosts": ["A.com"], "methods": ["GET"]}),
        ),
        route_json(json!({"name": "b", "paths": ["/other"]})),
        route_json(
            json!({"name": "c", "paths": ["=/x", "/api/"], "hosts": ["a.com"], "methods": ["get"]}),
        ),
        route_json(
            json!({"name": "d", "paths": ["/api"], "hosts": ["a.com"], "methods": ["GET"], "priority": 1}),
        ),
        route_json(json!({"name": "e", "headers": {"X-A": ["One"]}})),
        route_json(json!({"name": "f", "paths": ["/"], "headers": {"x-a": ["one"]}})),
        route_json(json!({"name": "g", "headers": {"x-a": ["~One"]}})),
        route_json(json!({"name": "h", "paths": ["/other"]})),
    ];
    let shadowed = find_shadowed(&list);
    assert_eq!(
        shadowed,
        vec![
            (
                2,
                "never matches: routes[0] (\"a\") has the same match conditions and takes precedence"
                    .to_string()
            ),
            (
                5,
                "never matches: routes[4] (\"e\") has the same match conditions and takes precedence"
                    .to_string()
            ),
            (
                7,
                "never matches: routes[1] (\"b\") has the same match conditions and takes precedence"
                    .to_string()
            ),
        ]
    );
}

// ---------------------------------------------------------------- compile

#[test]
fn compile_reports_invalid_input_without_panicking() {
    let cfg = config(json!([{"name": "x", "service": "missing"}]));
    assert!(Router::compile(&cfg)
        .unwrap_err()
        .contains("unknown service"));
    let cfg = config(json!([{"name": "x", "service": "s", "paths": ["~(("]}]));
    assert!(Router::compile(&cfg)
        .unwrap_err()
        .starts_with("routes[0].paths[0]"));
    let cfg = config(json!([{"name": "x", "service": "s", "hosts": ["a:1"]}]));
    assert!(Router::compile(&cfg).is_err());
    let cfg = config(json!([{"name": "x", "service": "s", "rewrite": "nope"}]));
    assert!(Router::compile(&cfg).is_err());
    let cfg: GatewayConfig = serde_json::from_value(json!({"format_version": 1,
        "services": [{"name": "s", "url": "ftp://x"}], "routes": []}))
    .unwrap();
    assert!(Router::compile(&cfg).is_err());
    // An empty table routes nothing.
    let (c, r) = routes(&[]);
    assert!(r.is_empty());
    assert_eq!(outcome(&c, &r, get("/")), "404");
    // Odd request paths do not panic.
    let (c, r) = routes(&[("all", json!({}))]);
    assert_eq!(outcome(&c, &r, get("")), "404");
    assert_eq!(outcome(&c, &r, get("*")), "404");
    assert_eq!(outcome(&c, &r, get("/é/ü")), "all");
}

#[test]
fn many_routes_match_correctly() {
    let mut list = Vec::new();
    for i in 0..500 {
        list.push(json!({"name": format!("r{i}"), "service": "s",
            "hosts": [format!("h{}.example.com", i % 10)],
            "paths": [format!("/svc{i}/items/{{id}}"), format!("=/svc{i}/health")],
            "methods": ["GET"]}));
    }
    list.push(
        json!({"name": "fallback", "service": "s", "hosts": ["*.example.com"], "paths": ["/svc7"]}),
    );
    let cfg = config(Value::Array(list));
    let r = Router::compile(&cfg).unwrap();
    assert_eq!(r.len(), 501);
    assert_eq!(
        outcome(&cfg, &r, get("/svc123/items/9").host("h3.example.com")),
        "r123"
    );
    assert_eq!(
        outcome(&cfg, &r, get("/svc123/health").host("h3.example.com")),
        "r123"
    );
    assert_eq!(
        outcome(&cfg, &r, get("/svc123/items/9").host("h4.example.com")),
        "404"
    );
    assert_eq!(
        outcome(
            &cfg,
            &r,
            get("/svc123/items/9").host("h3.example.com").method("PUT")
        ),
        "405 GET"
    );
    assert_eq!(
        outcome(&cfg, &r, get("/svc7/items/1").host("h7.example.com")),
        "r7"
    );
    assert_eq!(
        outcome(&cfg, &r, get("/svc7/other").host("h7.example.com")),
        "fallback"
    );
}

#[test]
fn odd_patterns_never_panic() {
    let patterns = [
        "=",
        "~",
        "~^",
        "/",
        "//",
        "/é/{id}",
        "/{é}",
        "~^/é+",
        "/a/{*}",
        "/{a}{b}",
        "/{",
        "/}",
        "/{*a}/",
        "/{*a}",
        "/a//{id}",
        "~^/a/(?<x>é)",
        "~(?i)^/API",
        "~^/api\\.json",
        "/{a}/{*b}",
        "=/é",
        "~^/(a|b)/c",
        "~[",
        "/x/{a}}",
        "/{{a}}",
    ];
    let requests = [
        "/",
        "//",
        "/é",
        "/é/1",
        "/a",
        "/a/",
        "/a//1",
        "/API",
        "/api.json",
        "/a/b/c",
        "/x/%2F",
    ];
    for (i, pat) in patterns.iter().enumerate() {
        let route = route_json(json!({"name": "r", "paths": [pat], "rewrite": "/r"}));
        let errs = check_route(&route);
        let cfg = config(json!([{"name": "r", "service": "s", "paths": [pat]}]));
        let compiled = Router::compile(&cfg);
        assert_eq!(errs.is_empty(), compiled.is_ok(), "{i}: {pat:?} {errs:?}");
        if let Ok(r) = compiled {
            for path in requests {
                let _ = run(&r, &get(path));
                let _ = run(&r, &get(path).method("POST").host("Ünïcode.example"));
            }
        }
    }
    let (c, r) = routes(&[
        ("ci", json!({"paths": ["~(?i)^/API"]})),
        ("dot", json!({"paths": ["~^/api\\.json$"]})),
        ("uni", json!({"paths": ["/é/{id}"]})),
    ]);
    assert_eq!(outcome(&c, &r, get("/api/x")), "ci");
    assert_eq!(outcome(&c, &r, get("/api.json")), "dot");
    // The pattern is put in the runtime's encoding; requests arrive in it.
    assert_eq!(params(&r, get("/%C3%A9/%C3%BC")), p(&[("id", "%C3%BC")]));
}

/// The router before it became lazy, as a reference.
mod eager;
/// The lazy router (index read in place, routes compiled on first use) against the eager reference.
mod lazy;

/// Checking a regular expression without compiling it (validation, routing index) gives the same
/// verdict, error text and capture names as compiling it.
#[test]
fn checked_regex_matches_compiled_regex() {
    let patterns = [
        r"^/v[0-9]+/items$",
        r"^/t8/api/(?P<id>[0-9]+)(/[a-z]+)?$",
        r"/u/(?<user>[^/]+)/(?P<rest>.*)",
        r"/a/(?P<x>[a-z]+)/(?P<x>[0-9]+)",
        r"/a/([a-z]+",
        r"/a/[z-a]",
        r"/a/\p{Greek}",
        r"/a/(?P<1bad>x)",
        r"/a/[(?P<notgroup>)]/(?P<real>x)",
        r"/a/[]x](?P<n>y)",
        r"/a/[^]x](?P<n>y)",
        r"/a/[[:alpha:]](?P<n>y)",
        r"/a/\((?P<n>y)\)",
        r"(?x) /a/ (?P<n> y ) # (?P<comment>z)",
        r"(?i)/A/(?P<n>y)",
        r"/a/(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:(?:x)))))))))))))))))))))))))))))))))))))))))))))))))))",
        r"/a/(?:x{1000}){1000}",
        r"/a/x{3}",
        r"/a/*",
        r"",
        r"a",
        r"/a/(?P<n>",
        r"/a/\",
    ];
    for p in patterns {
        let raw = format!("~{p}");
        let full = pattern::parse_path(&raw);
        let checked = pattern::check_path(&raw);
        match (&full, &checked) {
            (Err(a), Err(b)) => assert_eq!(a, b, "{p}"),
            (Ok(a), Ok(b)) => {
                assert_eq!(a.params(), b.params(), "{p}");
                assert_eq!(a.rank(), b.rank(), "{p}");
            }
            _ => panic!("{p}: compiled {full:?}, checked {checked:?}"),
        }
        let h_full = pattern::parse_header_value(&raw).err();
        let h_checked = pattern::check_header_value(&raw).err();
        assert_eq!(h_full, h_checked, "header {p}");
    }
    // The engine's size limit is still judged at validation.
    let err = pattern::check_path(r"~/a/(?:x{1000}){1000}").unwrap_err();
    assert!(err.contains("size limit"), "{err}");
    let err = pattern::check_path(&format!("~/a/(?:{}", "(".repeat(60))).unwrap_err();
    assert!(err.starts_with("invalid regular expression: "), "{err}");
}
