//! Prints the permit-lease simulation table of docs/rate-limiting.md:
//! `cargo run --release -p edgegate-core --example lease_sim [seconds]` (default 180 simulated seconds).
//! Panics if any scenario over-admits.

use edgegate_core::ratelimit::sim::{run, table_scenarios, Report};
use edgegate_core::ratelimit::Algorithm;

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let scenarios = table_scenarios(seconds * 1000);
    let results: Vec<Report> = scenarios.iter().map(run).collect();
    for algorithm in [Algorithm::SlidingWindow, Algorithm::TokenBucket] {
        println!(
            "\n{} (limit 6000 a minute, 8 isolates in 4 locations, {seconds} s simulated)\n",
            match algorithm {
                Algorithm::SlidingWindow => "Sliding window",
                Algorithm::TokenBucket => "Token bucket",
            }
        );
        println!("| RTT | arrivals | load | ideal | lease: admitted | over | under | p50 / p99 ms | calls/req | per-request: admitted | over | p50 / p99 ms |");
        println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let pairs = scenarios
            .iter()
            .zip(&results)
            .filter(|(s, _)| s.algorithm == algorithm)
            .collect::<Vec<_>>();
        for pair in pairs.chunks(2) {
            let [(s, lease), (_, per)] = [pair[0], pair[1]];
            assert!(s.lease);
            let under = if lease.ideal == 0 {
                0.0
            } else {
                100.0 * lease.under as f64 / lease.ideal as f64
            };
            println!(
                "| {} ms | {} | {}x | {} | {} | {} | {} ({:.1}%) | {} / {} | {:.3} | {} | {} | {} / {} |",
                s.latency_ms,
                s.arrivals.name(),
                s.load,
                lease.ideal,
                lease.admitted,
                lease.over,
                lease.under,
                under,
                lease.p50_ms,
                lease.p99_ms,
                lease.calls_per_request,
                per.admitted,
                per.over,
                per.p50_ms,
                per.p99_ms,
            );
        }
    }
    let over: u64 = results.iter().map(|r| r.over).sum();
    assert_eq!(over, 0, "some scenario over-admitted");
    println!("\nover-admission in every scenario: 0");
}
