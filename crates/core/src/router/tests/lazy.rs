//! The lazy router must choose exactly what the eager one chose: same route, same upstream path, same
//! parameters, same 404/405 (with the same `allow`), for many requests over a generated config.

use super::super::*;
use super::eager::EagerRouter;
use crate::config::GatewayConfig;
use serde_json::{json, Value};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// A small deterministic generator (no dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const SEGS: &[&str] = &[
    "api", "v1", "users", "items", "files", "a", "b", "health", "x",
];
const HOSTS: &[&str] = &[
    "api.example.com",
    "*.example.com",
    "*.b.example.com",
    "other.org",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE"];

fn generated(n: usize, seed: u64) -> GatewayConfig {
    let mut g = Lcg(seed);
    let mut routes = Vec::new();
    for i in 0..n {
        let depth = 1 + g.below(3) as usize;
        let segs: Vec<&str> = (0..depth).map(|_| g.pick(SEGS)).collect();
        let lit = format!("/{}", segs.join("/"));
        let path = match g.below(10) {
            0..=3 => lit.clone(),
            4 => format!("={lit}"),
            5 | 6 => format!("{lit}/{{id}}"),
            7 => format!("{lit}/{{*rest}}"),
            8 => format!("~^{lit}/(?P<n>[0-9]+)"),
            _ => format!("~^/{}[0-9]*", g.pick(SEGS)),
        };
        let mut r = json!({"name": format!("r{i}"), "service": if i % 3 == 0 { "b" } else { "s" }, "paths": [path]});
        if g.below(4) == 0 {
            r["paths"]
                .as_array_mut()
                .unwrap()
                .push(json!(format!("/{}", g.pick(SEGS))));
        }
        if g.below(3) == 0 {
            r["hosts"] = json!([g.pick(HOSTS)]);
        }
        if g.below(3) == 0 {
            r["methods"] = json!([g.pick(METHODS)]);
        }
        if g.below(8) == 0 {
            r["headers"] = json!({"x-t": [g.pick(&["1", "~^gold"])]});
        }
        if g.below(10) == 0 {
            r["priority"] = json!(g.below(3));
        }
        if g.below(6) == 0 {
            r["strip_path"] = json!(false);
        }
        routes.push(r);
    }
    serde_json::from_value(json!({
        "format_version": 1,
        "services": [
            {"name": "s", "url": "http://up.internal:9000"},
            {"name": "b", "url": "http://up.internal:9000/base"}
        ],
        "routes": routes,
    }))
    .expect("generated config deserializes")
}

fn outcome(r: Result<RouteMatch, GatewayError>) -> String {
    match r {
        Ok(m) => format!("{m:?}"),
        Err(e) => format!("{:?} {}", e.kind, e.detail),
    }
}

#[test]
fn lazy_router_matches_the_eager_one_on_many_requests() {
    for seed in [1u64, 7, 42] {
        let cfg = generated(400, seed);
        let eager = EagerRouter::compile(&cfg).expect("eager compiles");
        let lazy = Router::compile(&cfg).expect("lazy compiles");
        // The same index, read from its bytes (as the Worker does with a compiled form).
        let stored = Router::from_index(Router::build_index(&cfg, None).unwrap(), 0, None).unwrap();
        // And with route records pointing into the document's text, as `push` stores it.
        let text = serde_json::to_string_pretty(&cfg).unwrap();
        let with_doc = Router::from_index(
            Router::build_index(&cfg, Some(&text)).unwrap(),
            0,
            Some(text.clone().into_bytes()),
        )
        .unwrap();
        // Built without parsing regular expressions again (for a validated configuration).
        let of_valid = Router::from_index(
            Router::build_index_of_valid(&cfg, Some(&text)).unwrap(),
            0,
            Some(text.clone().into_bytes()),
        )
        .unwrap();
        assert_eq!(lazy.len(), cfg.routes.len());
        assert_eq!(
            lazy.compiled_routes(),
            0,
            "nothing is compiled before a request"
        );
        let mut g = Lcg(seed ^ 0xdead_beef);
        let mut matched = 0;
        for _ in 0..4000 {
            let depth = 1 + g.below(4) as usize;
            let mut path = String::new();
            for _ in 0..depth {
                path.push('/');
                path.push_str(match g.below(4) {
                    0 => "7",
                    1 => "12a",
                    _ => g.pick(SEGS),
                });
            }
            if g.below(10) == 0 {
                path.push('/');
            }
            let host = g.pick(&[
                "api.example.com",
                "c.b.example.com",
                "z.example.com",
                "other.org",
                "none.net",
            ]);
            let method = g.pick(METHODS);
            let query = if g.below(5) == 0 { "q=1" } else { "" };
            let tenant = g.pick(&["1", "gold-x", "no"]);
            let with_header = g.below(2) == 0;
            let header = move |n: &str| (with_header && n == "x-t").then(|| tenant.to_string());
            let req = RequestView {
                method,
                host,
                path: &path,
                query,
                header: &header,
            };
            let want = outcome(eager.route(&req));
            assert_eq!(outcome(lazy.route(&req)), want, "{method} {host}{path}");
            assert_eq!(
                outcome(stored.route(&req)),
                want,
                "{method} {host}{path} (stored index)"
            );
            assert_eq!(
                outcome(with_doc.route(&req)),
                want,
                "{method} {host}{path} (document)"
            );
            assert_eq!(
                outcome(of_valid.route(&req)),
                want,
                "{method} {host}{path} (index of a validated configuration)"
            );
            matched += want.starts_with("RouteMatch") as usize;
        }
        assert!(matched > 500, "the requests exercise matches ({matched})");
        assert!(
            lazy.compiled_routes() < cfg.routes.len(),
            "only routes requests reached were compiled"
        );
    }
}

#[test]
fn a_request_compiles_only_the_routes_it_meets() {
    let routes: Vec<Value> = (0..1000)
        .map(|i| json!({"name": format!("r{i}"), "service": "s", "paths": [format!("/p{i}/{{id}}")]}))
        .collect();
    let cfg: GatewayConfig = serde_json::from_value(json!({
        "format_version": 1,
        "services": [{"name": "s", "url": "http://up"}],
        "routes": routes,
    }))
    .unwrap();
    let router = Router::compile(&cfg).unwrap();
    let header = |_: &str| None;
    let req = RequestView {
        method: "GET",
        host: "h",
        path: "/p500/9",
        query: "",
        header: &header,
    };
    assert_eq!(router.route(&req).unwrap().route, 500);
    assert_eq!(router.compiled_routes(), 1);
}
