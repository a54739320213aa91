//! The arithmetic at the extremes: limits of 10^12 (the largest accepted), costs equal to the limit,
//! huge elapsed times, unbounded debts, states and answers through JSON as storage keeps them. Debug
//! builds panic on overflow, so these tests also prove that nothing overflows.

use super::algorithm::*;
use super::config::MAX_LIMIT;
use super::lease::*;
use super::local::LocalCounters;
use super::CheckRequest;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// 2026-05-01T00:00:00Z.
const T0: u64 = 1_777_593_600_000;
const L: u64 = MAX_LIMIT;

fn spec(algorithm: Algorithm, window: Window, limit: u64) -> Spec {
    Spec {
        algorithm,
        limits: vec![Limit {
            window,
            limit,
            burst: limit,
        }],
    }
}

/// One key's counter, its state through JSON after every operation.
struct Counter {
    spec: Spec,
    state: State,
}

impl Counter {
    fn new(spec: Spec) -> Self {
        Counter {
            spec,
            state: State::default(),
        }
    }
    fn op(&mut self, op: Op, cost: u64, now: u64) -> Decision {
        let (state, d) = decide_op(&self.spec, &self.state, op, cost, now);
        self.state = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        d
    }
    fn hit(&mut self, cost: u64, now: u64) -> Decision {
        self.op(Op::Check, cost, now)
    }
}

#[test]
fn a_token_bucket_of_ten_to_the_twelve_a_year_counts_exactly_through_storage() {
    let y = Window::Year.millis();
    for window in [Window::Day, Window::Month, Window::Year] {
        let mut c = Counter::new(spec(Algorithm::TokenBucket, window, L));
        // Its level (in 1/window_ms token) no longer fits 64 bits: every token still counts.
        assert_eq!(c.hit(1, T0).windows[0].remaining, L - 1, "{window:?}");
        assert_eq!(c.hit(1, T0).windows[0].remaining, L - 2, "{window:?}");
        let d = c.hit(L - 2, T0);
        assert!(d.allowed);
        assert_eq!(d.windows[0].remaining, 0);
        assert_eq!(
            d.windows[0].reset_ms,
            window.millis(),
            "empty: full again in one window"
        );
        let d = c.hit(1, T0);
        assert!(!d.allowed);
        // One token takes window / 10^12 ms to refill: under 1 ms, so 1 ms.
        assert_eq!(d.retry_after_ms, Some(1));
    }
    // A year bucket refills 10^12 / 31,536,000,000 = 31.7 tokens a millisecond.
    let mut c = Counter::new(spec(Algorithm::TokenBucket, Window::Year, L));
    assert!(
        c.hit(L, T0).allowed,
        "a cost equal to the limit passes once"
    );
    assert!(!c.hit(32, T0 + 1).allowed);
    assert_eq!(c.hit(31, T0 + 1).windows[0].remaining, 0);
    // A year later (and long after) it is full again, not more.
    assert!(c.hit(L, T0 + 1 + y).allowed);
    let d = c.hit(1, T0 + 1 + 1000 * y);
    assert_eq!(d.windows[0].remaining, L - 1);
}

#[test]
fn a_sliding_window_of_ten_to_the_twelve_weights_the_previous_window_exactly() {
    let m = Window::Month.millis();
    let start = T0 - T0 % m;
    let mut c = Counter::new(spec(Algorithm::SlidingWindow, Window::Month, L));
    let d = c.hit(L, start);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 0);
    assert!(!c.hit(1, start + m - 1).allowed);
    // Half-way through the next month the previous one weighs exactly half of 10^12.
    let half = start + m + m / 2;
    let d = c.hit(L / 2 + 1, half);
    assert!(!d.allowed);
    // ceil(10^12 × (m − e) / m) + 5 × 10^11 + 1 ≤ 10^12 first holds 1 ms later.
    assert_eq!(d.retry_after_ms, Some(1));
    let d = c.hit(L / 2, half);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 0);
    // Ten years later: a fresh window.
    assert!(c.hit(L, start + 120 * m).allowed);
}

#[test]
fn huge_times_and_elapsed_times_never_overflow() {
    for algorithm in [Algorithm::SlidingWindow, Algorithm::TokenBucket] {
        for window in Window::ALL {
            let mut c = Counter::new(spec(algorithm, window, L));
            assert!(c.hit(L, 0).allowed);
            // From the epoch to the end of time: everything refilled or rolled.
            let d = c.hit(L, u64::MAX);
            assert!(d.allowed, "{algorithm:?} {window:?}");
            assert_eq!(d.windows[0].remaining, 0);
            // The clock going back from there refills nothing.
            assert!(!c.hit(1, 0).allowed, "{algorithm:?} {window:?}");
            let d = c.hit(1, u64::MAX - 1);
            assert!(!d.allowed);
            assert!(d.retry_after_ms.is_some());
        }
    }
}

#[test]
fn debts_saturate_instead_of_overflowing() {
    let mut c = Counter::new(spec(Algorithm::TokenBucket, Window::Year, L));
    for _ in 0..3 {
        let d = c.op(Op::Charge, u64::MAX, T0);
        assert!(d.allowed);
        assert_eq!(d.windows[0].remaining, 0);
    }
    let d = c.op(Op::Peek, 1, T0);
    assert!(!d.allowed);
    // 3 × (2^64 − 1) tokens of debt at 10^12 a year: about 55 million years.
    let wait = d.retry_after_ms.unwrap();
    assert!(wait > 1_000_000 * Window::Year.millis(), "{wait}");
    // The deepest debt a state can hold, charged again: saturates, refuses, never panics.
    let mut deep = c.state.clone();
    let ws = &mut deep.windows[0];
    (ws.a, ws.b, ws.c, ws.d) = (0, u64::MAX, 0, u64::MAX);
    let (after, d) = charge(&c.spec, &deep, u64::MAX, T0);
    assert!(d.allowed);
    assert_eq!(after.windows[0].level(), -i128::MAX);
    let (_, d) = peek(&c.spec, &after, 1, u64::MAX);
    assert!(!d.allowed);
    assert_eq!(d.retry_after_ms, Some(u64::MAX));
    assert_eq!(
        super::headers::retry_after_secs(&d),
        u64::MAX.div_ceil(1000)
    );
}

#[test]
fn levels_are_stored_compactly_and_old_states_still_load() {
    let mut ws = WindowState {
        w: Window::Year,
        t: T0,
        a: 0,
        b: 0,
        c: 0,
        d: 0,
    };
    for level in [
        0,
        1,
        -1,
        i64::MAX as i128 * 4,
        -(u64::MAX as i128) * 3,
        i128::MAX,
        -i128::MAX,
    ] {
        ws.set_level(level);
        assert_eq!(ws.level(), level);
        let back: WindowState = serde_json::from_str(&serde_json::to_string(&ws).unwrap()).unwrap();
        assert_eq!(back.level(), level);
    }
    // A level that fits 64 bits is stored as before (no high words), and a state stored before
    // the high words existed reads the same.
    ws.set_level(12_345);
    let text = serde_json::to_string(&ws).unwrap();
    assert_eq!(text, format!(r#"{{"w":"year","t":{T0},"a":12345,"b":0}}"#));
    let old: WindowState = serde_json::from_str(r#"{"w":"minute","t":5,"a":0,"b":7}"#).unwrap();
    assert_eq!(old.level(), -7);
}

#[test]
fn leases_at_ten_to_the_twelve_a_year_are_refunded_exactly() {
    let s = spec(Algorithm::TokenBucket, Window::Year, L);
    let mut state = State::default();
    let mut call = |req: &CheckRequest, now: u64| {
        let (next, answer) = serve(&s, &state, req, now);
        state = serde_json::from_str(&serde_json::to_string(&next).unwrap()).unwrap();
        answer
    };
    let req = |cost: u64, want: u64, ret: Option<LeaseReturn>| CheckRequest {
        spec: s.clone(),
        cost,
        op: Op::Check,
        want,
        ret,
        unit: 1,
        held: None,
    };
    let a = call(&req(1, MAX_BATCH, None), T0);
    let g = a.lease.expect("granted");
    assert_eq!(g.permits, MAX_BATCH);
    assert_eq!(a.decision.windows[0].remaining, L - 1 - MAX_BATCH);
    // All of it given back: the bucket holds every token again.
    let ret = Some(LeaseReturn {
        id: g.id,
        unused: MAX_BATCH,
    });
    let a = call(&req(1, 0, ret), T0);
    assert!(a.decision.allowed);
    assert_eq!(a.decision.windows[0].remaining, L - 2);

    // A request costing the whole limit: no lease can hold one (the batch is capped), so it is
    // decided by the object, exactly.
    let mut table = LeaseTable::default();
    let Plan::Remote(ask) = table.plan("k", L, true, T0) else {
        panic!("a lease cannot cover it");
    };
    let s2 = spec(Algorithm::SlidingWindow, Window::Year, L);
    let (_, answer) = serve(&s2, &State::default(), &ask.request(&s2, Op::Check, L), T0);
    assert!(answer.lease.is_none());
    let d = table.answered("k", &ask, answer, Some(L), T0).unwrap();
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 0);
}

#[test]
fn local_counters_at_ten_to_the_twelve() {
    let s = spec(Algorithm::TokenBucket, Window::Year, L);
    let mut local = LocalCounters::default();
    assert_eq!(local.check("k", &s, 1, T0).windows[0].remaining, L - 1);
    assert_eq!(local.check("k", &s, 1, T0).windows[0].remaining, L - 2);
    assert!(!local.check("k", &s, L, T0).allowed);
    assert!(local.check("k", &s, L - 2, T0).allowed);
}

#[test]
fn a_bad_header_name_is_not_quoted() {
    let config = serde_json::json!({"minute": 5, "limit_by": "header",
                                    "header_name": "Authorization: Bearer sk-secret-1"});
    match super::config::parse(&config) {
        Err(crate::plugins::PluginError::Config(e)) => {
            assert_eq!(e[0].0, "header_name");
            assert!(e[0].1.starts_with("not a valid header name"), "{e:?}");
            assert!(!e[0].1.contains("sk-secret"), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
}
