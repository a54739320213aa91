//! Where loading a configuration version costs: parse + validate + compile from JSON, against making
//! and loading the compiled form. `CONFIG_FILE=path cargo bench -p edgegate-core --bench config_load`
//! (default: a generated 10,000-route document).

use edgegate_core::config::parse_and_validate;
use edgegate_core::gateway::Gateway;
use edgegate_core::plugins::Plugins;
use edgegate_core::router::{RequestView, Router};
use std::time::Instant;

fn time<T>(label: &str, runs: u32, mut f: impl FnMut() -> T) -> T {
    let mut out = f();
    let t = Instant::now();
    for _ in 0..runs {
        out = f();
    }
    let per = t.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
    println!("  {label:<44} {per:>9.3} ms");
    out
}

fn generated(n: usize) -> String {
    let mut routes = Vec::new();
    for i in 0..n {
        let path = match i % 10 {
            0..=3 => format!("/t{i}/api"),
            4 => format!("=/t{i}/api/health"),
            5 | 6 => format!("/t{i}/api/{{id}}/x/{{sub}}"),
            7 => format!("/t{i}/files/{{*rest}}"),
            _ => format!("~^/t{i}/api/(?P<id>[0-9]+)(/[a-z]+)?$"),
        };
        routes.push(serde_json::json!({"name": format!("r{i}"), "service": "s", "paths": [path]}));
    }
    serde_json::json!({"format_version": 1, "services": [{"name": "s", "url": "http://o"}], "routes": routes}).to_string()
}

fn main() {
    let text = match std::env::var("CONFIG_FILE") {
        Ok(p) => std::fs::read_to_string(p).expect("CONFIG_FILE readable"),
        Err(_) => generated(10_000),
    };
    println!("config load ({} bytes of JSON)", text.len());
    let config = time("parse_and_validate (JSON)", 3, || {
        parse_and_validate(&text).unwrap()
    });
    time("router index build", 3, || {
        Router::build_index(&config, Some(&text)).unwrap()
    });
    time("plugins compile", 3, || Plugins::compile(&config).unwrap());
    time("Gateway::compile (JSON path, all of it)", 3, || {
        Gateway::compile(&text).ok().unwrap()
    });
    let blob = time("compile_to_bytes (push)", 3, || {
        Gateway::compile_to_bytes(&text).unwrap()
    });
    println!("  compiled form: {} bytes", blob.len());
    let gw = time("Gateway::from_compiled (Worker)", 20, || {
        Gateway::from_compiled(blob.clone(), text.as_bytes().to_vec())
            .ok()
            .unwrap()
    });
    let header = |_: &str| None;
    let req = RequestView {
        method: "GET",
        host: "h",
        path: "/t5/api/7/x/8",
        query: "",
        header: &header,
    };
    time("first request on it (one route compiled)", 1, || {
        gw.plan(&req).map(|p| p.url).ok()
    });
}
