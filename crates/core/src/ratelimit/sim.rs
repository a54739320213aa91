//! A simulation of permit leases (fake clock, deterministic): N isolates in M locations share one
//! counting object, each location at its own round-trip latency from it, under Poisson or bursty
//! arrivals. It runs the real code of both sides ([`serve`] for the object, [`LeaseTable`] for the
//! isolates, exactly as the glue drives them) and compares what they admit with an ideal global
//! counter (the same algorithm, one place, no latency, seeing every arrival).
//!
//! Over-admission is measured strictly: every admission, at the time it was made (the object's
//! decision time, or the isolate's time when spent from a lease), is replayed in time order
//! through an exact counter of the same policy; each one that counter would refuse is one
//! over-admission. It must be 0. `cargo run -p edgegate-core --example lease_sim` prints the table
//! of docs/rate-limiting.md.

use super::algorithm::{decide, Algorithm, Limit, Op, Spec, State, Window};
use super::lease::{serve, Answer, Ask, LeaseTable, Plan};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// How requests arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Independent arrivals (exponential gaps), each at a random isolate.
    Poisson,
    /// Bursts of [`BURST`] requests at one isolate within a millisecond, bursts arriving as a
    /// Poisson process (the same mean rate).
    Bursty,
}

/// Requests per burst.
pub const BURST: u64 = 10;

impl Arrivals {
    pub fn name(self) -> &'static str {
        match self {
            Arrivals::Poisson => "Poisson",
            Arrivals::Bursty => "bursty",
        }
    }
}

/// One simulated setting.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub algorithm: Algorithm,
    /// The policy: `limit` per minute.
    pub limit: u64,
    pub isolates: usize,
    pub locations: usize,
    /// Mean round trip to the object (ms); location `m` is at `latency × FACTORS[m % 4]`.
    pub latency_ms: u64,
    pub arrivals: Arrivals,
    /// Offered rate as a multiple of the limit.
    pub load: f64,
    pub duration_ms: u64,
    /// Permit leases on (`false`: per-request mode).
    pub lease: bool,
    pub seed: u64,
}

/// Round-trip factors of the locations (mean 1).
pub const FACTORS: [f64; 4] = [0.5, 1.0, 1.0, 1.5];

/// What a scenario gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub offered: u64,
    pub admitted: u64,
    /// What the ideal global counter admits.
    pub ideal: u64,
    /// Admissions an exact counter replaying them would refuse (must be 0).
    pub over: u64,
    /// `ideal - admitted` when positive.
    pub under: u64,
    /// Latency the limit adds to a request (ms): median and 99th percentile.
    pub p50_ms: u64,
    pub p99_ms: u64,
    /// Calls to the object per request (foreground and background).
    pub calls_per_request: f64,
}

/// splitmix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A request arrives at an isolate.
    Arrive { isolate: usize, id: usize },
    /// A call reaches the object. `request`: the request it decides (None: a background refill).
    AtObject {
        isolate: usize,
        request: Option<usize>,
        call: usize,
    },
    /// The object's answer reaches the isolate.
    Answered {
        isolate: usize,
        request: Option<usize>,
        call: usize,
    },
}

struct Call {
    ask: Ask,
    cost: u64,
    answer: Option<(Answer, u64)>,
}

const NAME: &str = "k";
const T0: u64 = 1_800_000_000_000;

/// The policy of a scenario.
pub fn spec_of(s: &Scenario) -> Spec {
    Spec {
        algorithm: s.algorithm,
        limits: vec![Limit {
            window: Window::Minute,
            limit: s.limit,
            burst: s.limit,
        }],
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Run one scenario.
pub fn run(s: &Scenario) -> Report {
    let spec = spec_of(s);
    let mut rng = Rng(s.seed);
    let mut queue: BinaryHeap<Reverse<(u64, u64, Event)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |q: &mut BinaryHeap<Reverse<(u64, u64, Event)>>, at: u64, e: Event| {
        seq += 1;
        q.push(Reverse((at, seq, e)));
    };

    // Arrivals.
    let rate_per_ms = s.load * s.limit as f64 / 60_000.0;
    let (group, group_rate) = match s.arrivals {
        Arrivals::Poisson => (1, rate_per_ms),
        Arrivals::Bursty => (BURST, rate_per_ms / BURST as f64),
    };
    let mut arrivals: Vec<u64> = Vec::new();
    let mut t = 0.0f64;
    loop {
        t += -rng.unit().ln() / group_rate;
        if t >= s.duration_ms as f64 {
            break;
        }
        let isolate = rng.below(s.isolates);
        for _ in 0..group {
            let id = arrivals.len();
            let at = T0 + t as u64;
            arrivals.push(at);
            push(&mut queue, at, Event::Arrive { isolate, id });
        }
    }

    // The ideal counter sees every arrival, in order, at once.
    let mut ideal_state = State::default();
    let mut ideal = 0;
    for &at in &arrivals {
        let (next, d) = decide(&spec, &ideal_state, 1, at);
        ideal_state = next;
        ideal += d.allowed as u64;
    }

    let rtt = |isolate: usize| -> u64 {
        let loc = isolate % s.locations.max(1);
        (s.latency_ms as f64 * FACTORS[loc % FACTORS.len()]).round() as u64
    };
    let mut tables: Vec<LeaseTable> = (0..s.isolates).map(|_| LeaseTable::default()).collect();
    let mut object = State::default();
    let mut calls: Vec<Call> = Vec::new();
    let mut admissions: Vec<u64> = Vec::new();
    let mut latencies: Vec<u64> = Vec::with_capacity(arrivals.len());

    while let Some(Reverse((now, _, event))) = queue.pop() {
        match event {
            Event::Arrive { isolate, id } => match tables[isolate].plan(NAME, 1, s.lease, now) {
                Plan::Local { decision, refill } => {
                    assert!(decision.allowed);
                    admissions.push(now);
                    latencies.push(0);
                    if let Some(ask) = refill {
                        calls.push(Call {
                            ask,
                            cost: 0,
                            answer: None,
                        });
                        let call = calls.len() - 1;
                        push(
                            &mut queue,
                            now + rtt(isolate) / 2,
                            Event::AtObject {
                                isolate,
                                request: None,
                                call,
                            },
                        );
                    }
                }
                Plan::Remote(ask) => {
                    calls.push(Call {
                        ask,
                        cost: 1,
                        answer: None,
                    });
                    let call = calls.len() - 1;
                    push(
                        &mut queue,
                        now + rtt(isolate) / 2,
                        Event::AtObject {
                            isolate,
                            request: Some(id),
                            call,
                        },
                    );
                }
            },
            Event::AtObject {
                isolate,
                request,
                call,
            } => {
                let c = &mut calls[call];
                let req = c.ask.request(&spec, Op::Check, c.cost);
                let (next, answer) = serve(&spec, &object, &req, now);
                object = next;
                c.answer = Some((answer, now));
                let back = rtt(isolate) - rtt(isolate) / 2;
                push(
                    &mut queue,
                    now + back,
                    Event::Answered {
                        isolate,
                        request,
                        call,
                    },
                );
            }
            Event::Answered {
                isolate,
                request,
                call,
            } => {
                let c = &mut calls[call];
                let (answer, decided_at) = c.answer.take().expect("answered at the object");
                let object_allowed = answer.decision.allowed;
                let cost = request.map(|_| c.cost);
                let decision = tables[isolate].answered(NAME, &c.ask, answer, cost, now);
                if let (Some(id), Some(d)) = (request, decision) {
                    latencies.push(now - arrivals[id]);
                    if d.allowed {
                        // Admitted by the object at its decision time, or spent from a lease
                        // here and now.
                        admissions.push(if object_allowed { decided_at } else { now });
                    }
                }
            }
        }
    }

    // Replay every admission, in time order, through an exact counter.
    admissions.sort_unstable();
    let mut check = State::default();
    let mut over = 0;
    for &at in &admissions {
        let (next, d) = decide(&spec, &check, 1, at);
        if d.allowed {
            check = next;
        } else {
            over += 1;
        }
    }
    latencies.sort_unstable();
    let admitted = admissions.len() as u64;
    Report {
        offered: arrivals.len() as u64,
        admitted,
        ideal,
        over,
        under: ideal.saturating_sub(admitted),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        calls_per_request: calls.len() as f64 / arrivals.len().max(1) as f64,
    }
}

/// The scenarios of the documented table: both algorithms, latencies 0, 20, 80 and 150 ms,
/// Poisson and bursty arrivals at 0.5×, 1× and 3× the limit, with leases and per request.
pub fn table_scenarios(duration_ms: u64) -> Vec<Scenario> {
    let mut out = Vec::new();
    for algorithm in [Algorithm::SlidingWindow, Algorithm::TokenBucket] {
        for latency_ms in [0, 20, 80, 150] {
            for arrivals in [Arrivals::Poisson, Arrivals::Bursty] {
                for load in [0.5, 1.0, 3.0] {
                    for lease in [true, false] {
                        out.push(Scenario {
                            algorithm,
                            limit: 6000,
                            isolates: 8,
                            locations: 4,
                            latency_ms,
                            arrivals,
                            load,
                            duration_ms,
                            lease,
                            seed: 7 + latency_ms + (load * 10.0) as u64,
                        });
                    }
                }
            }
        }
    }
    out
}
