//! Native cost of one rate-limit decision (what the Durable Object computes per request), including
//! the JSON round trip of the stored state and of the check request.
//!
//! Run in release: `cargo bench -p edgegate-core --bench ratelimit`. Plain `fn main` (harness = false),
//! timed with `std::time::Instant` (native only; never in Worker code).

use edgegate_core::ratelimit::{
    decide, Algorithm, CheckRequest, Decision, Limit, Spec, State, Window,
};
use std::hint::black_box;
use std::time::Instant;

fn spec(algorithm: Algorithm, windows: &[(Window, u64)]) -> Spec {
    Spec {
        algorithm,
        limits: windows
            .iter()
            .map(|&(window, limit)| Limit {
                window,
                limit,
                burst: limit,
            })
            .collect(),
    }
}

/// ns per iteration of `f` over `n` iterations.
fn time(n: u64, mut f: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    const N: u64 = 2_000_000;
    const T0: u64 = 1_777_593_600_000;
    let cases = [
        (
            "sliding window, 1 window",
            spec(Algorithm::SlidingWindow, &[(Window::Minute, 1_000)]),
        ),
        (
            "sliding window, 3 windows",
            spec(
                Algorithm::SlidingWindow,
                &[
                    (Window::Second, 10),
                    (Window::Minute, 100),
                    (Window::Hour, 1_000),
                ],
            ),
        ),
        (
            "token bucket, 1 window",
            spec(Algorithm::TokenBucket, &[(Window::Second, 1_000_000)]),
        ),
    ];
    println!("| decision | decide only | + JSON state and request/answer |");
    println!("|---|---:|---:|");
    for (name, spec) in cases {
        // decide() alone, state kept in memory (the Durable Object's hot path).
        let mut state = State::default();
        let bare = time(N, |i| {
            let (next, d) = decide(black_box(&spec), &state, 1, T0 + i * 7);
            black_box(d.allowed);
            state = next;
        });
        // Plus what a round trip serializes: the request in, the state out, the decision out.
        let request = serde_json::to_string(&CheckRequest {
            spec: spec.clone(),
            cost: 1,
            op: Default::default(),
            want: 0,
            ret: None,
            unit: 0,
            held: None,
        })
        .unwrap();
        let mut stored = serde_json::to_string(&State::default()).unwrap();
        let with_json = time(N / 4, |i| {
            let check: CheckRequest = serde_json::from_str(black_box(&request)).unwrap();
            let state: State = serde_json::from_str(&stored).unwrap();
            let (next, d): (State, Decision) = decide(&check.spec, &state, check.cost, T0 + i * 7);
            stored = serde_json::to_string(&next).unwrap();
            black_box(serde_json::to_string(&d).unwrap());
        });
        println!("| {name} | {bare:.0} ns | {with_json:.0} ns |");
    }
}
