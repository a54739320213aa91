//! Native tests of the rate-limit algorithms with a fake clock (plain `u64` milliseconds).

use super::algorithm::*;
use super::config::*;
use super::headers::*;
use super::key::*;
use super::local::LocalCounters;
use crate::plugins::PluginError;
use serde_json::json;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const MIN: u64 = 60_000;
/// A fake "now": 2026-05-01T00:00:00Z plus an offset, aligned on every window but the month.
const T0: u64 = 1_777_593_600_000;

fn sliding(limits: &[(Window, u64)]) -> Spec {
    Spec {
        algorithm: Algorithm::SlidingWindow,
        limits: limits
            .iter()
            .map(|&(window, limit)| Limit {
                window,
                limit,
                burst: limit,
            })
            .collect(),
    }
}

fn bucket(window: Window, limit: u64, burst: u64) -> Spec {
    Spec {
        algorithm: Algorithm::TokenBucket,
        limits: vec![Limit {
            window,
            limit,
            burst,
        }],
    }
}

/// Runs requests against one key, like the Durable Object does.
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
    fn hit(&mut self, cost: u64, now: u64) -> Decision {
        let (state, d) = decide(&self.spec, &self.state, cost, now);
        // The state goes through storage as JSON.
        let text = serde_json::to_string(&state).unwrap();
        self.state = serde_json::from_str(&text).unwrap();
        d
    }
}

#[test]
fn sliding_admits_exactly_the_limit_then_refuses_with_retry_after() {
    let mut c = Counter::new(sliding(&[(Window::Minute, 50)]));
    let now = T0 + 10_000; // 10 s into the minute
    let mut remaining = Vec::new();
    let mut admitted = 0;
    for _ in 0..200 {
        let d = c.hit(1, now);
        let s = d.windows[0];
        assert_eq!(s.limit, 50);
        if d.allowed {
            admitted += 1;
            assert_eq!(d.retry_after_ms, None);
        } else {
            assert_eq!(s.remaining, 0);
            // 50 s to the end of the minute, then 1.2 s until the previous minute's weight
            // (50 * (60 - e) / 60, rounded up) leaves room for one: 49 at e = 1.2 s.
            assert_eq!(d.retry_after_ms, Some(50_000 + 1_200));
            assert_eq!(retry_after_secs(&d), 52);
        }
        assert_eq!(s.reset_ms, 50_000);
        remaining.push(s.remaining);
    }
    assert_eq!(admitted, 50);
    assert_eq!(remaining[..50], (0..50).rev().collect::<Vec<_>>()[..]);
    assert!(remaining.windows(2).all(|w| w[1] <= w[0]));
    // Exactly at Retry-After one more fits, a millisecond before it does not.
    let retry = T0 + MIN + 1_200;
    assert!(!decide(&c.spec, &c.state, 1, retry - 1).1.allowed);
    assert!(c.hit(1, retry).allowed);
    assert!(!c.hit(1, retry).allowed);
}

#[test]
fn sliding_window_rolls_over_and_weights_the_previous_window() {
    let mut c = Counter::new(sliding(&[(Window::Minute, 10)]));
    for _ in 0..10 {
        assert!(c.hit(1, T0 + 30_000).allowed);
    }
    assert!(!c.hit(1, T0 + 59_999).allowed);
    // Half way into the next minute: the previous 10 count as 5.
    let d = c.hit(1, T0 + MIN + 30_000);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 4);
    for _ in 0..4 {
        assert!(c.hit(1, T0 + MIN + 30_000).allowed);
    }
    assert!(!c.hit(1, T0 + MIN + 30_000).allowed);
    // Two windows later everything is forgotten.
    let d = c.hit(1, T0 + 3 * MIN);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 9);
}

#[test]
fn sliding_never_admits_more_than_the_limit_in_an_aligned_window() {
    // Pseudo-random arrivals and costs; check the per-minute total and Retry-After exactness.
    let mut c = Counter::new(sliding(&[(Window::Second, 7), (Window::Minute, 40)]));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut now = T0;
    let mut per_minute = std::collections::HashMap::<u64, u64>::new();
    let mut per_second = std::collections::HashMap::<u64, u64>::new();
    for _ in 0..5_000 {
        now += next() % 900;
        let cost = 1 + next() % 3;
        let before = c.state.clone();
        let d = c.hit(cost, now);
        if d.allowed {
            *per_minute.entry(now / MIN).or_default() += cost;
            *per_second.entry(now / 1000).or_default() += cost;
        } else {
            let wait = d.retry_after_ms.unwrap();
            assert!(wait >= 1);
            assert!(decide(&c.spec, &before, cost, now + wait).1.allowed);
            assert!(!decide(&c.spec, &before, cost, now + wait - 1).1.allowed);
            assert_eq!(
                c.state,
                decide(&c.spec, &before, 0, now).0,
                "refusal charged"
            );
        }
        for s in &d.windows {
            assert!(s.remaining <= s.limit);
        }
    }
    assert!(per_minute.values().all(|&n| n <= 40), "{per_minute:?}");
    assert!(per_second.values().all(|&n| n <= 7));
    assert!(
        per_minute.values().any(|&n| n >= 35),
        "the test should reach the limit"
    );
}

#[test]
fn multiple_windows_are_checked_in_one_decision_and_refusals_charge_nothing() {
    let mut c = Counter::new(sliding(&[(Window::Second, 2), (Window::Minute, 3)]));
    assert!(c.hit(1, T0).allowed);
    let d = c.hit(1, T0 + 10);
    assert!(d.allowed);
    assert_eq!(
        d.windows.iter().map(|s| s.remaining).collect::<Vec<_>>(),
        [0, 1]
    );
    // Refused by the second window: the minute is not charged and still reports 1 left.
    let d = c.hit(1, T0 + 20);
    assert!(!d.allowed);
    // 980 ms to the next second, then half of it until the previous second's 2 weigh 1.
    assert_eq!(d.retry_after_ms, Some(980 + 500));
    assert_eq!(d.windows[1].remaining, 1);
    assert_eq!(d.tightest().unwrap().window, Window::Second);
    // A second later (and the previous second weighted 0): the minute admits its last one.
    assert!(c.hit(1, T0 + 2_000).allowed);
    let d = c.hit(1, T0 + 3_000);
    assert!(!d.allowed);
    assert_eq!(d.tightest().unwrap().window, Window::Minute);
    // The minute frees up at the next minute (weight of the previous one: 3 * (60 - e) / 60 <= 2
    // at e = 20 s).
    assert_eq!(d.retry_after_ms, Some(57_000 + 20_000));
}

#[test]
fn token_bucket_bursts_then_refills_at_the_rate() {
    let mut c = Counter::new(bucket(Window::Second, 2, 10));
    for i in 0..10 {
        let d = c.hit(1, T0);
        assert!(d.allowed, "burst {i}");
        assert_eq!(d.windows[0].remaining, 9 - i);
    }
    let d = c.hit(1, T0);
    assert!(!d.allowed);
    assert_eq!(d.retry_after_ms, Some(500)); // 2 per second
    assert_eq!(d.windows[0].reset_ms, 5_000); // empty to full
    assert!(!c.hit(1, T0 + 499).allowed);
    assert!(c.hit(1, T0 + 500).allowed);
    assert!(!c.hit(1, T0 + 500).allowed);
    // Long idle: refilled, but never above the burst.
    let d = c.hit(1, T0 + 3_600_000);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 9);
    assert_eq!(d.windows[0].reset_ms, 500);
}

#[test]
fn token_bucket_admits_at_most_burst_plus_rate_times_time() {
    let mut c = Counter::new(bucket(Window::Minute, 30, 5));
    let mut now = T0;
    let mut admitted = 0u64;
    for i in 0..10_000u64 {
        now += 37 + i % 11;
        if c.hit(1, now).allowed {
            admitted += 1;
        }
        let elapsed = now - T0;
        assert!(
            admitted <= 5 + 30 * elapsed / MIN + 1,
            "{admitted} at {elapsed}"
        );
    }
    let elapsed = now - T0;
    assert!(admitted >= 30 * elapsed / MIN, "the refill rate is reached");
}

#[test]
fn costs_are_charged_whole_and_remaining_is_never_negative() {
    let mut c = Counter::new(sliding(&[(Window::Minute, 10)]));
    assert_eq!(c.hit(4, T0).windows[0].remaining, 6);
    assert_eq!(c.hit(4, T0).windows[0].remaining, 2);
    let d = c.hit(4, T0);
    assert!(!d.allowed);
    assert_eq!(d.windows[0].remaining, 2);
    assert!(c.hit(2, T0).allowed);
    let d = c.hit(1, T0);
    assert!(!d.allowed);
    assert_eq!(d.windows[0].remaining, 0);
    // Cost 0 is a peek.
    let d = c.hit(0, T0);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 0);

    let mut b = Counter::new(bucket(Window::Second, 10, 10));
    assert!(b.hit(7, T0).allowed);
    let d = b.hit(7, T0);
    assert!(!d.allowed);
    assert_eq!(d.windows[0].remaining, 3);
    assert_eq!(d.retry_after_ms, Some(400));
}

#[test]
fn a_cost_larger_than_the_limit_never_passes() {
    let mut c = Counter::new(sliding(&[(Window::Minute, 3)]));
    let d = c.hit(5, T0);
    assert!(!d.allowed);
    assert_eq!(d.retry_after_ms, Some(MIN));
    let mut b = Counter::new(bucket(Window::Second, 3, 3));
    assert_eq!(b.hit(5, T0).retry_after_ms, Some(1_000));
}

#[test]
fn state_expires_and_an_algorithm_change_restarts_counting() {
    let spec = sliding(&[(Window::Second, 5), (Window::Minute, 100)]);
    let (state, _) = decide(&spec, &State::default(), 1, T0 + 100);
    assert_eq!(state.expires_at, T0 + 2 * MIN);
    assert!(!state.is_expired(T0 + 2 * MIN - 1));
    assert!(state.is_expired(T0 + 2 * MIN));
    // An expired state decides like a fresh one.
    let later = T0 + 2 * MIN;
    assert_eq!(
        decide(&spec, &state, 1, later).1,
        decide(&spec, &State::default(), 1, later).1
    );
    let b = bucket(Window::Second, 5, 5);
    let (bs, _) = decide(&b, &State::default(), 2, T0);
    assert_eq!(bs.expires_at, T0 + 400);
    let (fresh, d) = decide(&b, &state, 1, T0 + 200);
    assert_eq!(d.windows[0].remaining, 4);
    assert_eq!(fresh.algorithm, Algorithm::TokenBucket);
    // Fresh state with nothing counted is already expired (nothing to store).
    assert!(decide(&spec, &State::default(), 0, T0).0.is_expired(T0));
}

#[test]
fn clock_going_backwards_does_not_reset_or_refill() {
    let mut c = Counter::new(sliding(&[(Window::Second, 2)]));
    assert!(c.hit(1, T0 + 1_500).allowed);
    assert!(c.hit(1, T0 + 1_500).allowed);
    assert!(!c.hit(1, T0 + 900).allowed);
    let mut b = Counter::new(bucket(Window::Second, 1, 1));
    assert!(b.hit(1, T0 + 5_000).allowed);
    assert!(!b.hit(1, T0 + 1_000).allowed);
}

#[test]
fn month_and_day_windows_do_not_overflow() {
    let spec = Spec {
        algorithm: Algorithm::TokenBucket,
        limits: vec![
            Limit {
                window: Window::Day,
                limit: MAX_LIMIT,
                burst: MAX_LIMIT,
            },
            Limit {
                window: Window::Month,
                limit: MAX_LIMIT,
                burst: MAX_LIMIT,
            },
        ],
    };
    let (_, d) = decide(&spec, &State::default(), 1, u64::MAX / 4);
    assert!(d.allowed);
    assert_eq!(d.windows[1].remaining, MAX_LIMIT - 1);
    let s = sliding(&[(Window::Month, MAX_LIMIT)]);
    let (state, d) = decide(&s, &State::default(), MAX_LIMIT, T0);
    assert!(d.allowed);
    assert!(!decide(&s, &state, 1, T0 + 1).1.allowed);
}

// ------------------------------------------------------------------------------------------------
// Configuration

fn compile(v: serde_json::Value) -> Result<RateLimitConfig, Vec<(String, String)>> {
    parse(&v).map_err(|e| match e {
        PluginError::Config(list) => list,
        other => panic!("{other:?}"),
    })
}

#[test]
fn config_defaults_follow_kong() {
    let c = compile(json!({"minute": 50})).unwrap();
    assert_eq!(c.limit_by, LimitBy::Consumer);
    assert_eq!(c.policy, CounterPolicy::Durable);
    assert_eq!(c.spec.algorithm, Algorithm::SlidingWindow);
    assert_eq!(c.error_code, 429);
    assert_eq!(c.error_message, "API rate limit exceeded");
    assert!(c.fault_tolerant);
    assert!(!c.hide_client_headers);
    assert_eq!(c.timeout_ms, 1_000);
    assert_eq!(c.cost, 1);
    assert_eq!(
        c.spec.limits,
        vec![Limit {
            window: Window::Minute,
            limit: 50,
            burst: 50
        }]
    );
}

#[test]
fn config_accepts_kongs_year_window() {
    let c = compile(json!({"month": 100, "year": 1000})).unwrap();
    assert_eq!(c.spec.limits[1].window, Window::Year);
    assert_eq!(Window::Year.millis(), 365 * 86_400_000);
    assert_eq!(Window::Year.title(), "Year");
    // Kong's rule holds for it too: a year cannot allow less than a month.
    let errs = compile(json!({"month": 100, "year": 10})).unwrap_err();
    assert_eq!(errs[0].0, "year");
    let s = sliding(&[(Window::Year, 2)]);
    let (state, d) = decide(&s, &State::default(), 2, T0);
    assert!(d.allowed);
    let (_, d) = decide(&s, &state, 1, T0 + 86_400_000);
    assert!(!d.allowed);
}

#[test]
fn config_token_bucket_burst_applies_to_the_shortest_window() {
    let c = compile(
        json!({"second": 5, "hour": 1000, "algorithm": "token_bucket", "burst": 20,
                           "limit_by": "header", "header_name": "X-Tenant", "policy": "local"}),
    )
    .unwrap();
    assert_eq!(c.spec.limits[0].burst, 20);
    assert_eq!(c.spec.limits[1].burst, 1000);
    assert_eq!(c.header_name.as_deref(), Some("x-tenant"));
    assert_eq!(c.policy, CounterPolicy::Local);
}

#[test]
fn config_errors_have_paths() {
    let errs = compile(json!({})).unwrap_err();
    assert_eq!(errs[0].0, "");
    let errs = compile(json!({"second": 10, "minute": 5})).unwrap_err();
    assert_eq!(errs[0].0, "minute");
    assert!(errs[0].1.contains("cannot be lower"), "{errs:?}");
    let errs = compile(json!({"minute": 0})).unwrap_err();
    assert_eq!(errs[0].0, "minute");
    let errs = compile(json!({"minute": 5, "limit_by": "header"})).unwrap_err();
    assert_eq!(errs[0].0, "header_name");
    let errs = compile(json!({"minute": 5, "burst": 9})).unwrap_err();
    assert_eq!(errs[0].0, "burst");
    let errs =
        compile(json!({"minute": 5, "error_code": 200, "timeout_ms": 0, "cost": 6})).unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(paths, ["error_code", "timeout_ms", "cost"]);
    let errs = compile(json!({"minute": 5, "limit_by": "visitor"})).unwrap_err();
    assert_eq!(errs[0].0, "limit_by");
    let errs = compile(json!({"minute": 5, "colour": 1})).unwrap_err();
    assert!(errs[0].1.contains("unknown field"), "{errs:?}");
    let errs = compile(json!({"minute": 5, "path": "/x"})).unwrap_err();
    assert_eq!(errs[0].0, "path");
    // A path no request can have (a query, a fragment, a space, non-ASCII): refused, as in Kong.
    for bad in ["/login?next=1", "/a#b", "/a b", "/caf\u{e9}", "/a\tb"] {
        let errs = compile(json!({"minute": 5, "limit_by": "path", "path": bad})).unwrap_err();
        assert_eq!(errs[0].0, "path", "{bad:?}");
        assert!(errs[0].1.contains("request path"), "{errs:?}");
    }
    for good in ["/caf%C3%A9", "/a%20b", "//login", "/a:b@c!$&'()*+,;=~"] {
        compile(json!({"minute": 5, "limit_by": "path", "path": good})).unwrap();
    }
}

#[test]
fn plugin_is_known_to_the_plugin_registry() {
    let p = crate::plugins::parse("rate-limiting", &json!({"second": 1})).unwrap();
    assert!(p.get::<crate::ratelimit::RateLimitConfig>().is_some());
}

// ------------------------------------------------------------------------------------------------
// Keys and headers

fn inputs() -> KeyInputs<'static> {
    KeyInputs {
        consumer_id: None,
        credential_id: None,
        client_ip: Some("203.0.113.9"),
        header: None,
        path: "/users/1",
        route: "users",
        service: "backend",
    }
}

fn by(limit_by: &str) -> RateLimitConfig {
    let mut v = json!({"minute": 5, "limit_by": limit_by});
    if limit_by == "header" {
        v["header_name"] = json!("x-tenant");
    }
    compile(v).unwrap()
}

#[test]
fn identifiers_per_limit_by_with_ip_fallback() {
    let i = inputs();
    assert_eq!(identifier(&by("consumer"), &i).unwrap(), "ip:203.0.113.9");
    let with_consumer = KeyInputs {
        consumer_id: Some("c-1"),
        credential_id: Some("key-7"),
        header: Some("acme"),
        ..i
    };
    assert_eq!(
        identifier(&by("consumer"), &with_consumer).unwrap(),
        "consumer:c-1"
    );
    assert_eq!(
        identifier(&by("credential"), &with_consumer).unwrap(),
        "credential:key-7"
    );
    assert_eq!(identifier(&by("credential"), &i).unwrap(), "ip:203.0.113.9");
    assert_eq!(
        identifier(&by("header"), &with_consumer).unwrap(),
        "header:acme"
    );
    assert_eq!(identifier(&by("header"), &i).unwrap(), "ip:203.0.113.9");
    assert_eq!(identifier(&by("path"), &i).unwrap(), "path:/users/1");
    assert_eq!(identifier(&by("route"), &i).unwrap(), "route:users");
    assert_eq!(identifier(&by("service"), &i).unwrap(), "service:backend");
    let no_ip = KeyInputs {
        client_ip: None,
        ..i
    };
    assert_eq!(identifier(&by("ip"), &no_ip).unwrap(), "ip:unknown");
    let only = compile(json!({"minute": 5, "limit_by": "path", "path": "/login"})).unwrap();
    assert_eq!(identifier(&only, &i), None);
    let login = KeyInputs {
        path: "/login",
        ..i
    };
    assert_eq!(identifier(&only, &login).unwrap(), "path:/login");
    // Spellings an origin reads as the same path count as that path (no bypass by re-encoding).
    for spelling in [
        "/%6Cogin",
        "/%6cogin",
        "//login",
        "/%6C%6F%67%69%6E",
        "///log%69n",
    ] {
        let p = KeyInputs {
            path: spelling,
            ..i
        };
        assert_eq!(
            identifier(&only, &p).as_deref(),
            Some("path:/login"),
            "{spelling}"
        );
    }
    for other in ["/Login", "/login/", "/log%2Fin", "/logins"] {
        let p = KeyInputs { path: other, ..i };
        assert_eq!(identifier(&only, &p), None, "{other}");
    }
    assert_eq!(
        object_name("route=orders/rate-limiting", "ip:1.2.3.4"),
        "rate-limiting/route=orders/rate-limiting/ip:1.2.3.4"
    );
}

#[test]
fn a_consumer_limit_follows_the_consumer_across_credentials() {
    let c = by("consumer");
    let a = KeyInputs {
        consumer_id: Some("c-1"),
        credential_id: Some("key-a"),
        ..inputs()
    };
    let b = KeyInputs {
        credential_id: Some("key-b"),
        client_ip: Some("198.51.100.1"),
        ..a
    };
    assert_eq!(identifier(&c, &a), identifier(&c, &b));
    let cred = by("credential");
    assert_ne!(identifier(&cred, &a), identifier(&cred, &b));
}

#[test]
fn long_identifiers_are_shortened_with_a_hash() {
    let long_a = "a".repeat(1000);
    let mut long_b = long_a.clone();
    long_b.push('b');
    let c = by("header");
    let id = |h: &'static str| {
        identifier(
            &c,
            &KeyInputs {
                header: Some(h),
                ..inputs()
            },
        )
        .unwrap()
    };
    let a = id(Box::leak(long_a.into_boxed_str()));
    let b = id(Box::leak(long_b.into_boxed_str()));
    assert!(a.len() <= 256 && b.len() <= 256);
    assert_ne!(a, b);
}

#[test]
fn headers_report_the_tightest_window_of_all_policies() {
    let mut minute = Counter::new(sliding(&[(Window::Second, 10), (Window::Minute, 20)]));
    let d1 = minute.hit(1, T0 + 500);
    let mut hour = Counter::new(sliding(&[(Window::Minute, 100), (Window::Hour, 1000)]));
    let d2 = hour.hit(1, T0 + 500);
    let h = client_headers([&d1, &d2]);
    let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get("ratelimit-limit"), Some("10"));
    assert_eq!(get("ratelimit-remaining"), Some("9"));
    assert_eq!(get("ratelimit-reset"), Some("1"));
    assert_eq!(get("x-ratelimit-limit-Second"), Some("10"));
    assert_eq!(get("x-ratelimit-limit-Minute"), Some("20"));
    assert_eq!(get("x-ratelimit-remaining-Minute"), Some("19"));
    assert_eq!(get("x-ratelimit-remaining-Hour"), Some("999"));
    assert_eq!(h.len(), 3 + 2 * 3);
    assert!(client_headers([]).is_empty());
    assert_eq!(seconds(0), 0);
    assert_eq!(seconds(1), 1);
    assert_eq!(seconds(1000), 1);
    assert_eq!(seconds(1001), 2);
}

#[test]
fn local_counters_count_per_key_and_stay_bounded() {
    let spec = sliding(&[(Window::Second, 2)]);
    let mut l = LocalCounters::new(3);
    assert!(l.check("a", &spec, 1, T0).allowed);
    assert!(l.check("a", &spec, 1, T0).allowed);
    assert!(!l.check("a", &spec, 1, T0).allowed);
    assert!(l.check("b", &spec, 1, T0).allowed);
    assert!(l.check("c", &spec, 1, T0).allowed);
    assert_eq!(l.len(), 3);
    // Full of live keys: a new key clears the map instead of growing it.
    assert!(l.check("d", &spec, 1, T0).allowed);
    assert_eq!(l.len(), 1);
    // Expired keys are swept first.
    let mut l = LocalCounters::new(2);
    l.check("a", &spec, 1, T0);
    l.check("b", &spec, 1, T0 + 1_500);
    l.check("c", &spec, 1, T0 + 2_500);
    assert_eq!(l.len(), 2);
    assert!(!l.is_empty());
}

#[test]
fn check_request_round_trips_as_json() {
    let req = super::CheckRequest {
        spec: bucket(Window::Minute, 5, 7),
        cost: 2,
        op: Op::Check,
        want: 0,
        ret: None,
        unit: 0,
        held: None,
    };
    let text = serde_json::to_string(&req).unwrap();
    assert_eq!(
        text,
        r#"{"spec":{"algorithm":"token_bucket","limits":[{"window":"minute","limit":5,"burst":7}]},"cost":2}"#
    );
    assert_eq!(
        serde_json::from_str::<super::CheckRequest>(&text).unwrap(),
        req
    );
}

// ---- Token budgets: peek before, forced charge after ----------------------------------------

impl Counter {
    fn op(&mut self, op: Op, cost: u64, now: u64) -> Decision {
        let (state, d) = decide_op(&self.spec, &self.state, op, cost, now);
        if op != Op::Peek {
            let text = serde_json::to_string(&state).unwrap();
            self.state = serde_json::from_str(&text).unwrap();
        }
        d
    }
}

#[test]
fn peek_never_charges() {
    for spec in [
        sliding(&[(Window::Minute, 100)]),
        bucket(Window::Minute, 100, 100),
    ] {
        let mut c = Counter::new(spec.clone());
        for i in 0..10 {
            let d = c.op(Op::Peek, 1, T0 + i);
            assert!(d.allowed);
            assert_eq!(d.windows[0].remaining, 100, "{spec:?}");
        }
        let (state, _) = peek(&spec, &State::default(), 1, T0);
        let (_, d) = peek(&spec, &state, 1, T0 + 5);
        assert_eq!(d.windows[0].remaining, 100);
    }
}

#[test]
fn sliding_tokens_charge_goes_over_then_recovers() {
    let mut c = Counter::new(sliding(&[(Window::Minute, 1000)]));
    let now = T0 + 10_000;
    assert!(c.op(Op::Peek, 1, now).allowed);
    let d = c.op(Op::Charge, 700, now);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 300);
    let d = c.op(Op::Peek, 1, now + 1);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 300);
    // The second answer costs more than is left: charged anyway.
    let d = c.op(Op::Charge, 700, now + 2);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 0);
    // Now refused until the window frees enough for one token.
    let d = c.op(Op::Peek, 1, now + 3);
    assert!(!d.allowed);
    assert_eq!(d.windows[0].remaining, 0);
    let wait = d.retry_after_ms.unwrap();
    // 1400 counted in this minute: the next minute starts at 50 s from now, and its weighted
    // estimate ceil(1400 * (60 - e) / 60) <= 999 first holds at e = 17.185... s.
    assert_eq!(wait, 50_000 - 3 + 17_186);
    assert!(!c.op(Op::Peek, 1, now + 3 + wait - 1).allowed);
    let d = c.op(Op::Peek, 1, now + 3 + wait);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 1);
    assert!(retry_after_secs(&c.op(Op::Peek, 1, now + 3)) >= 67);
    // Two windows later everything is forgotten.
    let d = c.op(Op::Peek, 1, T0 + 2 * MIN);
    assert_eq!(d.windows[0].remaining, 1000);
}

#[test]
fn a_token_budgets_wait_the_page_states() {
    // docs/rate-limiting.md, Token budgets: `"minute": 25` and a 100-token answer.
    let mut c = Counter::new(bucket(Window::Minute, 25, 25));
    c.op(Op::Charge, 100, T0);
    let d = c.op(Op::Peek, 1, T0);
    assert_eq!(d.retry_after_ms, Some(182_400));
    assert_eq!(retry_after_secs(&d), 183);
    assert_eq!(d.windows[0].reset_ms, 240_000);
    let mut c = Counter::new(sliding(&[(Window::Minute, 25)]));
    c.op(Op::Charge, 100, T0 + 10_000);
    let d = c.op(Op::Peek, 1, T0 + 10_000);
    assert_eq!(d.retry_after_ms, Some(50_000 + 45_600));
    assert_eq!(d.windows[0].reset_ms, 50_000);
    // However far over: a sliding window's wait is at most its end plus one more window.
    for over in [26, 1_000, 1_000_000_000_000] {
        let mut c = Counter::new(sliding(&[(Window::Minute, 25)]));
        c.op(Op::Charge, over, T0 + 10_000);
        let wait = c.op(Op::Peek, 1, T0 + 10_000).retry_after_ms.unwrap();
        assert!(wait > 50_000 && wait <= 50_000 + MIN, "{over}: {wait}");
    }
}

#[test]
fn bucket_tokens_charge_goes_into_debt_then_refills() {
    let mut c = Counter::new(bucket(Window::Minute, 1000, 1000));
    let d = c.op(Op::Charge, 1500, T0);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 0);
    // 500 tokens of debt: the level must climb back to 1 token = 501 tokens of refill at
    // 1000 per minute = 30.06 s.
    let d = c.op(Op::Peek, 1, T0);
    assert!(!d.allowed);
    assert_eq!(d.retry_after_ms, Some(30_060));
    assert_eq!(d.windows[0].reset_ms, 90_000);
    assert!(!c.op(Op::Peek, 1, T0 + 30_059).allowed);
    let d = c.op(Op::Peek, 1, T0 + 30_060);
    assert!(d.allowed);
    assert_eq!(d.windows[0].remaining, 1);
    // A normal check/charge works from the debt level too.
    assert!(c.op(Op::Check, 1, T0 + 30_060).allowed);
    assert!(!c.op(Op::Check, 1, T0 + 30_060).allowed);
    // Full again after 90 s, and the state expires then.
    let d = c.op(Op::Peek, 1, T0 + 90_060);
    assert_eq!(d.windows[0].remaining, 1000);
    assert!(c.state.is_expired(T0 + 90_060));
}

#[test]
fn charge_with_several_windows_charges_all() {
    let mut c = Counter::new(sliding(&[(Window::Minute, 100), (Window::Hour, 150)]));
    c.op(Op::Charge, 120, T0);
    let d = c.op(Op::Peek, 1, T0 + MIN);
    // The minute has moved on (120 weighted fully at its start), the hour still holds 120.
    assert!(!d.allowed);
    let d = c.op(Op::Peek, 1, T0 + 2 * MIN);
    assert!(d.allowed);
    assert_eq!(d.windows[1].remaining, 30);
}

#[test]
fn local_counters_peek_and_charge() {
    let spec = sliding(&[(Window::Minute, 10)]);
    let mut l = LocalCounters::new(10);
    assert!(l.apply("k", &spec, Op::Peek, 1, T0).allowed);
    assert!(l.is_empty());
    l.apply("k", &spec, Op::Charge, 25, T0);
    assert!(!l.apply("k", &spec, Op::Peek, 1, T0 + 1).allowed);
    assert!(l.apply("other", &spec, Op::Peek, 1, T0 + 1).allowed);
}

#[test]
fn count_tokens_parses_and_rejects_cost() {
    let c = parse(&json!({"minute": 1000, "count": "tokens"})).unwrap();
    assert_eq!(c.count, Count::Tokens);
    assert_eq!(parse(&json!({"minute": 5})).unwrap().count, Count::Requests);
    let Err(PluginError::Config(errors)) =
        parse(&json!({"minute": 1000, "count": "tokens", "cost": 5}))
    else {
        panic!("cost must be refused with count tokens")
    };
    assert_eq!(errors[0].0, "cost");
    assert!(parse(&json!({"minute": 1000, "count": "bytes"})).is_err());
}

#[test]
fn check_request_carries_the_operation() {
    let req = super::CheckRequest {
        spec: sliding(&[(Window::Minute, 5)]),
        cost: 42,
        op: Op::Charge,
        want: 0,
        ret: None,
        unit: 0,
        held: None,
    };
    let text = serde_json::to_string(&req).unwrap();
    assert!(text.ends_with(r#""cost":42,"op":"charge"}"#), "{text}");
    assert_eq!(
        serde_json::from_str::<super::CheckRequest>(&text).unwrap(),
        req
    );
}

#[test]
fn openai_headers_for_tokens() {
    let spec = sliding(&[(Window::Minute, 1000)]);
    let (_, d) = charge(&spec, &State::default(), 400, T0 + 30_000);
    let h = openai_headers("tokens", [&d]);
    assert_eq!(
        h,
        vec![
            ("x-ratelimit-limit-tokens".to_string(), "1000".to_string()),
            ("x-ratelimit-remaining-tokens".into(), "600".into()),
            ("x-ratelimit-reset-tokens".into(), "30s".into()),
        ]
    );
    assert_eq!(openai_duration(250), "250ms");
    assert_eq!(openai_duration(360_000), "6m0s");
    assert_eq!(openai_duration(3_723_000), "1h2m3s");
    assert!(openai_headers("tokens", []).is_empty());
}

#[test]
fn tokens_to_charge_uses_usage_or_estimates_an_interrupted_stream() {
    use super::tokens::{prompt_estimate, tokens_to_charge};
    use crate::ai::{ChatRequest, Message, Usage};
    let req = ChatRequest {
        messages: vec![
            Message::text("system", "be brief"),
            Message::text("user", "hello there, how are you?"),
        ],
        ..ChatRequest::default()
    };
    // 8 chars -> 2 + 4, 25 chars -> 7 + 4.
    assert_eq!(prompt_estimate(&req), 17);
    let full = Usage::new(12, 30);
    assert_eq!(tokens_to_charge(Some(&full), true, 17, 5), Some(42));
    // Interrupted: the usage seen so far (Anthropic reports the prompt at the start) or estimates.
    let start = Usage::new(12, 1);
    assert_eq!(tokens_to_charge(Some(&start), false, 17, 9), Some(21));
    assert_eq!(tokens_to_charge(None, false, 17, 9), Some(26));
    // A provider that never reports usage: estimated even when finished.
    assert_eq!(tokens_to_charge(None, true, 17, 3), Some(20));
    assert_eq!(tokens_to_charge(None, false, 0, 0), None);
}

#[test]
fn limit_by_path_counts_the_routers_normal_form() {
    let canonical_path = crate::router::normalize_path;
    assert_eq!(canonical_path("/a%2fb%2Fc"), "/a%2Fb%2Fc");
    assert_eq!(canonical_path("/%7euser/%41-%5F.%2E"), "/~user/A-_..");
    assert_eq!(canonical_path("/a%20b%zz%4"), "/a%20b%zz%4");
    assert_eq!(canonical_path("//a///b/"), "/a/b/");
    assert_eq!(canonical_path("/caf\u{e9}/%C3%A9"), "/caf\u{e9}/%C3%A9");
}

#[test]
fn on_a_tie_of_remaining_the_headers_show_the_longer_window_as_kong() {
    let status = |window, limit, remaining, reset_ms| WindowStatus {
        window,
        limit,
        remaining,
        reset_ms,
    };
    let header = |h: &[(String, String)], name: &str| {
        h.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    // The last minute of an hour: the minute and the hour end together; the hour is shown.
    let d = Decision {
        allowed: true,
        windows: vec![
            status(Window::Minute, 6, 5, 30_000),
            status(Window::Hour, 7, 5, 30_000),
        ],
        retry_after_ms: None,
    };
    let h = client_headers([&d]);
    assert_eq!(header(&h, "ratelimit-limit"), "7");
    assert_eq!(d.tightest().unwrap().window, Window::Hour);
    // Less remaining wins whatever the window.
    let d = Decision {
        allowed: true,
        windows: vec![
            status(Window::Minute, 6, 4, 30_000),
            status(Window::Hour, 7, 5, 90_000),
        ],
        retry_after_ms: None,
    };
    assert_eq!(header(&client_headers([&d]), "ratelimit-limit"), "6");
    // The same window in two policies, as little left: the one that resets later.
    let a = Decision {
        allowed: true,
        windows: vec![status(Window::Minute, 10, 2, 10_000)],
        retry_after_ms: None,
    };
    let b = Decision {
        allowed: true,
        windows: vec![status(Window::Minute, 8, 2, 50_000)],
        retry_after_ms: None,
    };
    let h = client_headers([&a, &b]);
    assert_eq!(header(&h, "ratelimit-limit"), "8");
    assert_eq!(header(&h, "x-ratelimit-limit-Minute"), "8");
}
