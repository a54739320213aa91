//! The path that reaches the origin stays under the service's base path, for every kind of route and
//! every way the upstream path is built (docs/routing.md, "The upstream path").

use super::*;
use crate::gateway::Gateway;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Routes on one service `e`, `http://origin/echo/base` (the issue's setup).
fn echo_routes(list: &[(&str, Value)]) -> Router {
    let routes: Vec<Value> = list
        .iter()
        .map(|(name, extra)| {
            let mut r = json!({"name": name, "service": "e"});
            for (k, v) in extra.as_object().expect("object") {
                r[k] = v.clone();
            }
            r
        })
        .collect();
    let cfg: GatewayConfig = serde_json::from_value(json!({
        "format_version": 1,
        "services": [{"name": "e", "url": "http://origin/echo/base"}],
        "routes": routes,
    }))
    .expect("test config deserializes");
    for (i, r) in cfg.routes.iter().enumerate() {
        assert_eq!(check_route(r), vec![], "routes[{i}] should be valid");
    }
    Router::compile(&cfg).expect("compiles")
}

/// The upstream path and query, or the error code.
fn forward(router: &Router, path: &str) -> Result<String, &'static str> {
    run(router, &get(path))
        .map(|m| m.upstream_path_and_query)
        .map_err(|e| e.kind.code())
}

/// Every spelling of `.` and `..` the URL parser resolves (and the `;` and tab forms origins or the
/// parser read as one).
fn dot_spellings() -> Vec<String> {
    const DOT: [&str; 3] = [".", "%2e", "%2E"];
    let mut out: Vec<String> = DOT.iter().map(|d| d.to_string()).collect();
    for a in DOT {
        for b in DOT {
            out.push(format!("{a}{b}"));
        }
    }
    out.push("..;x".into());
    out
}

#[test]
fn the_issues_examples_are_refused() {
    let r = echo_routes(&[
        ("v", json!({"paths": ["~^/v[0-9]+"], "strip_path": true})),
        ("w", json!({"paths": ["~^/w"], "strip_path": true})),
        (
            "rr",
            json!({"paths": ["~^/rr/(?P<n>[^/]+)\\.json$"], "rewrite": "/{n}"}),
        ),
    ]);
    assert_eq!(forward(&r, "/v2../admin/x"), Err("invalid_path"));
    assert_eq!(forward(&r, "/w%2e%2e/admin/x"), Err("invalid_path"));
    assert_eq!(forward(&r, "/w%2E%2e/admin/x"), Err("invalid_path"));
    assert_eq!(forward(&r, "/w.%2e/admin/x"), Err("invalid_path"));
    assert_eq!(forward(&r, "/rr/...json"), Err("invalid_path"));
    assert_eq!(forward(&r, "/rr/%2e%2e.json"), Err("invalid_path"));
    assert_eq!(forward(&r, "/rr/..json"), Err("invalid_path"));
    // Dots inside a segment still pass.
    assert_eq!(
        forward(&r, "/v2/file.tar.gz"),
        Ok("/echo/base/file.tar.gz".into())
    );
    assert_eq!(forward(&r, "/v2...").as_deref(), Ok("/echo/base/..."));
    assert_eq!(forward(&r, "/w..b/x").as_deref(), Ok("/echo/base/..b/x"));
    assert_eq!(forward(&r, "/rr/a.b.json").as_deref(), Ok("/echo/base/a.b"));
    assert_eq!(forward(&r, "/rr/....json").as_deref(), Ok("/echo/base/..."));
}

#[test]
fn every_route_kind_and_every_spelling() {
    let r = echo_routes(&[
        ("prefix", json!({"paths": ["/p"]})),
        ("keep", json!({"paths": ["/k"], "strip_path": false})),
        ("exact", json!({"paths": ["=/e"], "strip_path": false})),
        ("tpl", json!({"paths": ["/t/{id}/x"], "strip_path": false})),
        (
            "tpl-rw",
            json!({"paths": ["/tr/{id}"], "rewrite": "/v2/{id}"}),
        ),
        ("rest", json!({"paths": ["/f/{*rest}"]})),
        (
            "rest-rw",
            json!({"paths": ["/fr/{*rest}"], "rewrite": "/s/{rest}"}),
        ),
        ("re-strip", json!({"paths": ["~^/re[0-9]"]})),
        ("re-keep", json!({"paths": ["~^/rk/"], "strip_path": false})),
        (
            "re-rw",
            json!({"paths": ["~^/rw/(?<a>[^/]*)/(?<b>[^/]*)$"], "rewrite": "/{a}{b}"}),
        ),
        (
            "tpl-join",
            json!({"paths": ["/j/{a}/{b}"], "rewrite": "/x/{a}{b}/y"}),
        ),
    ]);
    for dot in dot_spellings() {
        for path in [
            format!("/p/{dot}/admin"),
            format!("/p/a/{dot}"),
            format!("/k/{dot}/admin"),
            format!("/t/{dot}/x"),
            format!("/tr/{dot}"),
            format!("/f/a/{dot}/b"),
            format!("/f/{dot}"),
            format!("/fr/{dot}/b"),
            format!("/re1{dot}/admin"),
            format!("/re1/{dot}"),
            format!("/rk/{dot}/admin"),
            format!("/rw/{dot}/"),
            // The URL parser reads `\` as `/`; origins often decode %2F and %5C first.
            format!("/p/a\\{dot}\\admin"),
            format!("/p/a%2F{dot}%2Fadmin"),
            format!("/p/a%5c{dot}"),
            format!("/tr/{dot}%2f"),
        ] {
            assert_eq!(forward(&r, &path), Err("invalid_path"), "{path}");
        }
        // Slashes are merged before matching: `/rw//.` is `/rw/.`, which this regex does not match.
        assert!(forward(&r, &format!("/rw//{dot}")).is_err(), "/rw//{dot}");
    }
    // Captures that are harmless alone but join into a dot segment.
    assert_eq!(forward(&r, "/rw/./."), Err("invalid_path"));
    assert_eq!(forward(&r, "/rw/%2e/."), Err("invalid_path"));
    assert_eq!(forward(&r, "/j/./%2E"), Err("invalid_path"));
    assert_eq!(forward(&r, "/j/a/.").as_deref(), Ok("/echo/base/x/a./y"));
    assert_eq!(forward(&r, "/rw/./x").as_deref(), Ok("/echo/base/.x"));
    // A template without {*rest} strips the whole path: nothing of it is forwarded.
    let r2 = echo_routes(&[("user", json!({"paths": ["/u/{id}"]}))]);
    assert_eq!(forward(&r2, "/u/..").as_deref(), Ok("/echo/base"));
}

#[test]
fn ordinary_paths_still_pass_on_every_route_kind() {
    let r = echo_routes(&[
        ("prefix", json!({"paths": ["/p"]})),
        (
            "tpl-rw",
            json!({"paths": ["/tr/{id}"], "rewrite": "/v2/{id}"}),
        ),
        ("rest", json!({"paths": ["/f/{*rest}"]})),
        ("re-strip", json!({"paths": ["~^/v[0-9]+"]})),
        ("any", json!({"paths": ["/"], "strip_path": false})),
    ]);
    for (path, up) in [
        ("/p/a..b/c.d", "/echo/base/a..b/c.d"),
        ("/p/.well-known/x", "/echo/base/.well-known/x"),
        ("/tr/v1.2", "/echo/base/v2/v1.2"),
        ("/f/a/b/c.tar.gz", "/echo/base/a/b/c.tar.gz"),
        ("/v2/file.tar.gz", "/echo/base/file.tar.gz"),
        ("/a..b", "/echo/base/a..b"),
        // Normal form: encoded unreserved characters are decoded (docs/routing.md).
        ("/x/%2e%2e%2e", "/echo/base/x/..."),
        ("/x/%252e%252e/y", "/echo/base/x/%252e%252e/y"),
        ("/x/a;..", "/echo/base/x/a;.."),
    ] {
        assert_eq!(forward(&r, path).as_deref(), Ok(up), "{path}");
    }
}

#[test]
fn refusal_comes_after_routing() {
    // A path that matches no route is still a 404, and a wrong method a 405: only the route that
    // would forward the request judges its path.
    let r = echo_routes(&[("v", json!({"paths": ["~^/v[0-9]+"], "methods": ["GET"]}))]);
    assert_eq!(forward(&r, "/x/../y"), Err("no_route"));
    let e = run(&r, &get("/v2../x").method("POST")).unwrap_err();
    assert_eq!(e.kind.code(), "method_not_allowed");
    let e = run(&r, &get("/v2../x")).unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.detail.contains("\"..\""), "{}", e.detail);
}

#[test]
fn stripped_prefix_is_reported() {
    let r = echo_routes(&[
        ("prefix", json!({"paths": ["/api"]})),
        ("keep", json!({"paths": ["/keep"], "strip_path": false})),
        ("exact", json!({"paths": ["=/health"]})),
        ("rest", json!({"paths": ["/files/{*rest}"]})),
        ("regex", json!({"paths": ["~^/v[0-9]+"]})),
        ("rw", json!({"paths": ["/rw/{id}"], "rewrite": "/x/{id}"})),
        ("root", json!({"paths": ["/"]})),
    ]);
    let stripped = |path: &str| {
        let m = run(&r, &get(path)).expect("matches");
        path[..m.stripped].to_string()
    };
    assert_eq!(stripped("/api/x/y"), "/api");
    assert_eq!(stripped("/api/"), "/api");
    assert_eq!(stripped("/api"), "/api");
    assert_eq!(stripped("/keep/x"), "");
    assert_eq!(stripped("/health"), "/health");
    assert_eq!(stripped("/files/a/b"), "/files");
    assert_eq!(stripped("/v12/items"), "/v12");
    assert_eq!(stripped("/rw/7"), "", "a rewrite strips nothing");
    assert_eq!(stripped("/other"), "", "the prefix / strips nothing");
}

#[test]
fn preserve_host_is_confined_too() {
    let gw = Gateway::compile(
        &json!({
            "format_version": 1,
            "services": [{"name": "e", "url": "http://origin:8080/echo/base"}],
            "routes": [{"name": "v", "service": "e", "paths": ["~^/v[0-9]+"], "preserve_host": true}],
        })
        .to_string(),
    )
    .expect("valid");
    let plan = |path: &str| {
        gw.plan(&RequestView {
            method: "GET",
            host: "client.example",
            path,
            query: "q=1",
            header: &|_| None,
        })
    };
    let ok = plan("/v2/a.b").expect("plans");
    assert_eq!(ok.url, "http://client.example:8080/echo/base/a.b?q=1");
    assert_eq!(ok.resolve_override, Some("origin"));
    assert_eq!(ok.stripped, 3);
    for path in ["/v2../admin", "/v2%2e%2e/admin", "/v2/./x", "/v2\\..\\x"] {
        let e = plan(path).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidPath, "{path}");
    }
}

#[test]
fn check_route_refuses_a_rewrite_with_a_dot_segment() {
    for rewrite in [
        "/a/../{id}",
        "/%2e%2e/{id}",
        "/{id}/.",
        "/x/.%2E",
        "/..;/{id}",
    ] {
        let errs = errors(json!({"paths": ["/u/{id}"], "rewrite": rewrite}));
        assert!(
            has_error(&errs, "rewrite", "dot segments are not allowed"),
            "{rewrite}: {errs:?}"
        );
    }
    for rewrite in [
        "/v2.1/{id}",
        "/{id}.json",
        "/.well-known/{id}",
        "/{id}..{id}",
    ] {
        assert_eq!(
            errors(json!({"paths": ["/u/{id}"], "rewrite": rewrite})),
            vec![],
            "{rewrite}"
        );
    }
}

#[test]
fn a_config_with_such_a_rewrite_is_refused_before_it_serves() {
    let doc = json!({
        "format_version": 1,
        "services": [{"name": "e", "url": "http://origin/echo/base"}],
        "routes": [{"name": "r", "service": "e", "paths": ["/u/{id}"], "rewrite": "/a/../{id}"}],
    })
    .to_string();
    let Err(errors) = Gateway::compile(&doc) else {
        panic!("the document must be refused");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "routes[0].rewrite");
    assert!(
        errors[0].message.contains("\"..\""),
        "{}",
        errors[0].message
    );
}

#[test]
fn spellings_of_a_path_reach_the_route_they_spell() {
    let r = echo_routes(&[
        ("admin", json!({"paths": ["/admin"]})),
        ("enc", json!({"paths": ["/%7Eu/{id}"]})),
        ("any", json!({"paths": ["/"], "strip_path": false})),
    ]);
    // Through "admin" (prefix stripped) rather than "any" (whole path kept).
    for path in [
        "/admin/x",
        "/%61dmin/x",
        "//admin/x",
        "/admin//x",
        "/%61%64%6d%69%6e/x",
    ] {
        assert_eq!(forward(&r, path).as_deref(), Ok("/echo/base/x"), "{path}");
    }
    // A pattern is put in normal form too: `/%7Eu/{id}` is `/~u/{id}`.
    assert_eq!(forward(&r, "/~u/7").as_deref(), Ok("/echo/base"));
    assert_eq!(forward(&r, "/%7eu/7").as_deref(), Ok("/echo/base"));
    // Case, and an encoded slash, are not the admin route.
    assert_eq!(forward(&r, "/Admin/x").as_deref(), Ok("/echo/base/Admin/x"));
    assert_eq!(
        forward(&r, "/admin%2fx").as_deref(),
        Ok("/echo/base/admin%2Fx")
    );
}
