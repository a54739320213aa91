//! Router benchmark: compile time and lookup cost for 100, 1,000 and 10,000 routes.
//!
//! Run in release: `cargo bench -p edgegate-core --bench router`. Plain `fn main` (harness = false),
//! timed with `std::time::Instant` (native only; never in Worker code).

use edgegate_core::config::GatewayConfig;
use edgegate_core::router::{RequestView, Router};
use edgegate_core::ErrorKind;
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

/// Kind of route `i`, by `i % 20`.
fn path_of(i: usize) -> (String, String) {
    // (pattern, a request path that matches it)
    match i % 20 {
        0..=7 | 19 => (format!("/t{i}/api"), format!("/t{i}/api/v1/orders/123")),
        8..=11 => (format!("=/t{i}/health"), format!("/t{i}/health")),
        12..=14 => (
            format!("/t{i}/users/{{id}}/posts/{{pid}}"),
            format!("/t{i}/users/42/posts/7"),
        ),
        15..=17 => (
            format!("/t{i}/files/{{*rest}}"),
            format!("/t{i}/files/a/b/c.txt"),
        ),
        _ => (
            format!("~^/t{i}/items/(?<id>[0-9]+)$"),
            format!("/t{i}/items/987"),
        ),
    }
}

fn host_of(i: usize) -> (Option<String>, String) {
    match i % 10 {
        0..=5 => (
            Some(format!("svc{}.example.com", i % 100)),
            format!("svc{}.example.com", i % 100),
        ),
        6 | 7 => (
            Some(format!("*.zone{}.example.net", i % 10)),
            format!("a.b.zone{}.example.net", i % 10),
        ),
        _ => (None, "free.example.org".to_string()),
    }
}

fn config(n: usize) -> GatewayConfig {
    let mut routes = Vec::with_capacity(n);
    for i in 0..n {
        let (path, _) = path_of(i);
        let mut r = json!({"name": format!("r{i}"), "service": "up", "paths": [path]});
        if let (Some(h), _) = host_of(i) {
            r["hosts"] = json!([h]);
        }
        if i % 3 == 0 {
            r["methods"] = json!(["GET", "POST"]);
        }
        if i % 7 == 0 {
            r["headers"] = json!({"x-tenant": ["acme", "~^gold-"]});
        }
        routes.push(r);
    }
    serde_json::from_value(json!({
        "format_version": 1,
        "services": [{"name": "up", "url": "http://origin.internal:8080/base"}],
        "routes": routes,
    }))
    .expect("bench config")
}

struct Probe {
    method: &'static str,
    host: String,
    path: String,
    expect: Result<usize, u16>,
}

fn kind_of(i: usize) -> usize {
    match i % 20 {
        0..=7 | 19 => 0,
        8..=11 => 1,
        12..=14 => 2,
        15..=17 => 3,
        _ => 4,
    }
}

const KINDS: [&str; 5] = ["prefix", "exact", "template", "{*rest}", "regex"];

/// Probes for routes among the last 1,000 of the table ("deep" in config order), every 7th route so
/// that every kind of path and host appears. Returns hits by path kind, misses and 405s.
fn probes(n: usize) -> ([Vec<Probe>; 5], Vec<Probe>, Vec<Probe>) {
    let mut hits: [Vec<Probe>; 5] = Default::default();
    let (mut misses, mut not_allowed) = (Vec::new(), Vec::new());
    for i in (n.saturating_sub(1_000)..n).rev().step_by(7) {
        let (_, path) = path_of(i);
        let (_, host) = host_of(i);
        hits[kind_of(i)].push(Probe {
            method: "GET",
            host: host.clone(),
            path: path.clone(),
            expect: Ok(i),
        });
        if i % 3 == 0 {
            not_allowed.push(Probe {
                method: "DELETE",
                host: host.clone(),
                path,
                expect: Err(405),
            });
        }
        misses.push(Probe {
            method: "GET",
            host: host.clone(),
            path: format!("/t{i}/nothing/here"),
            expect: Err(404),
        });
        misses.push(Probe {
            method: "GET",
            host: "unknown.example.com".into(),
            path: format!("/u{i}/api/x"),
            expect: Err(404),
        });
    }
    (hits, misses, not_allowed)
}

fn header(name: &str) -> Option<String> {
    (name == "x-tenant").then(|| "gold-42".to_string())
}

fn run(router: &Router, p: &Probe) -> Result<usize, u16> {
    let view = RequestView {
        method: p.method,
        host: &p.host,
        path: &p.path,
        query: "page=2",
        header: &header,
    };
    match router.route(&view) {
        Ok(m) => Ok(m.route),
        Err(e) => {
            if let ErrorKind::MethodNotAllowed { allow } = &e.kind {
                assert_eq!(allow, &["GET", "POST"]);
            }
            Err(e.status())
        }
    }
}

/// Average nanoseconds per lookup over about `total` lookups.
fn time_lookups(router: &Router, probes: &[Probe], total: usize) -> f64 {
    let refs: Vec<&Probe> = probes.iter().collect();
    time_lookups_ref(router, &refs, total)
}

fn time_lookups_ref(router: &Router, probes: &[&Probe], total: usize) -> f64 {
    for p in probes {
        assert_eq!(
            run(router, p),
            p.expect,
            "{} {} {}",
            p.method,
            p.host,
            p.path
        );
    }
    let rounds = (total / probes.len()).max(1);
    let start = Instant::now();
    for _ in 0..rounds {
        for p in probes {
            black_box(run(router, black_box(p)).is_ok());
        }
    }
    start.elapsed().as_nanos() as f64 / (rounds * probes.len()) as f64
}

fn main() {
    const LOOKUPS: usize = 1_000_000;
    let mut by_kind = Vec::new();
    println!(
        "| routes | compile (ms) | hit (ns) | miss 404 (ns) | 405 (ns) | mixed (ns) |\n|---:|---:|---:|---:|---:|---:|"
    );
    for n in [100, 1_000, 10_000] {
        let cfg = config(n);
        let runs = 5;
        let start = Instant::now();
        for _ in 0..runs {
            black_box(Router::compile(black_box(&cfg)).expect("compiles"));
        }
        let compile_ms = start.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        let router = Router::compile(&cfg).expect("compiles");
        let (hits, misses, not_allowed) = probes(n);
        let kinds: Vec<f64> = hits
            .iter()
            .map(|h| time_lookups(&router, h, LOOKUPS / 5))
            .collect();
        let all_hits: Vec<&Probe> = hits.iter().flatten().collect();
        let hit = time_lookups_ref(&router, &all_hits, LOOKUPS);
        let miss = time_lookups(&router, &misses, LOOKUPS);
        let nope = time_lookups(&router, &not_allowed, LOOKUPS);
        let mixed: Vec<&Probe> = all_hits
            .iter()
            .copied()
            .chain(&misses)
            .chain(&not_allowed)
            .collect();
        let mix = time_lookups_ref(&router, &mixed, LOOKUPS);
        println!("| {n} | {compile_ms:.2} | {hit:.0} | {miss:.0} | {nope:.0} | {mix:.0} |");
        by_kind.push((n, kinds));
        assert!(
            n < 10_000 || compile_ms < 100.0,
            "compile too slow: {compile_ms} ms"
        );
        assert!(mix < 5_000.0, "lookup too slow: {mix} ns");
    }
    println!("\nhits by path kind (ns per lookup)\n");
    println!("| routes | {} |", KINDS.join(" | "));
    println!("|---:|{}", "---:|".repeat(KINDS.len()));
    for (n, kinds) in by_kind {
        let cells: Vec<String> = kinds.iter().map(|k| format!("{k:.0}")).collect();
        println!("| {n} | {} |", cells.join(" | "));
    }
}
