use super::*;
use crate::config::{PassiveHealthcheck, PassiveHealthy, PassiveUnhealthy};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn targets(weights: &[u32]) -> Vec<Target> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let url = ServiceUrl::parse(&format!("http://10.0.0.{}:80", i + 1)).unwrap();
            Target::from_url(&url, *w)
        })
        .collect()
}

fn policy(algorithm: Algorithm) -> Policy {
    Policy {
        algorithm,
        hash_on: HashSource::Header("x-user".into()),
        hash_fallback: HashSource::None,
        breaker: None,
        retry: RetryPolicy {
            retries: 1,
            on_connect_failure: true,
            on_timeout: false,
            on_statuses: vec![],
            non_idempotent: false,
        },
    }
}

fn breaker_cfg() -> BreakerConfig {
    BreakerConfig::of(&PassiveHealthcheck {
        unhealthy: PassiveUnhealthy {
            http_failures: 3,
            tcp_failures: 2,
            timeouts: 0,
            http_statuses: vec![500, 503],
        },
        healthy: PassiveHealthy { successes: 2 },
        window_ms: 10_000,
        cooldown_ms: 30_000,
    })
    .unwrap()
}

fn pick_target(b: &mut Balancer, t: &[Target], p: &Policy, key: Option<u64>, now: u64) -> usize {
    match b.pick(t, p, key, &[], now) {
        Pick::Target(i) => i,
        Pick::NoneHealthy { .. } => panic!("no healthy target"),
    }
}

#[test]
fn weighted_round_robin_gives_exact_shares_and_skips_weight_zero() {
    let t = targets(&[3, 1, 0, 6]);
    let p = policy(Algorithm::RoundRobin);
    let mut b = Balancer::new(t.len());
    let mut counts = [0; 4];
    for _ in 0..1000 {
        let i = pick_target(&mut b, &t, &p, None, 0);
        b.finished(i, Outcome::Status(200), &p, 0);
        counts[i] += 1;
    }
    assert_eq!(counts, [300, 100, 0, 600]);
    // Smooth: the heavy target is not chosen six times in a row.
    let mut b = Balancer::new(t.len());
    let seq: Vec<usize> = (0..10)
        .map(|_| pick_target(&mut b, &t, &p, None, 0))
        .collect();
    assert!(
        seq.windows(4).all(|w| !w.iter().all(|i| *i == 3)),
        "{seq:?}"
    );
}

#[test]
fn consistent_hashing_is_sticky_and_moves_few_keys_when_a_target_is_added() {
    let p = policy(Algorithm::ConsistentHashing);
    let three = targets(&[100, 100, 100]);
    let four = targets(&[100, 100, 100, 100]);
    let mut b3 = Balancer::new(3);
    let mut b4 = Balancer::new(4);
    let keys = 10_000u64;
    let (mut moved, mut counts) = (0, [0; 4]);
    for k in 0..keys {
        let key = fnv1a(format!("user-{k}").as_bytes());
        let a = pick_target(&mut b3, &three, &p, Some(key), 0);
        assert_eq!(a, pick_target(&mut b3, &three, &p, Some(key), 0), "sticky");
        let c = pick_target(&mut b4, &four, &p, Some(key), 0);
        counts[c] += 1;
        if a != c {
            moved += 1;
            assert_eq!(c, 3, "a key only ever moves to the new target");
        }
    }
    // Ideal: a quarter of the keys move (to the new target), none between old ones.
    let share = moved as f64 / keys as f64;
    assert!((0.22..0.28).contains(&share), "moved {share}");
    for c in counts {
        assert!((2200..2800).contains(&c), "{counts:?}");
    }
}

#[test]
fn consistent_hashing_follows_weights_and_removal_moves_only_the_removed_targets_keys() {
    let p = policy(Algorithm::ConsistentHashing);
    let t = targets(&[300, 100]);
    let mut b = Balancer::new(2);
    let mut counts = [0; 2];
    for k in 0..10_000u64 {
        counts[pick_target(&mut b, &t, &p, Some(fnv1a(&k.to_le_bytes())), 0)] += 1;
    }
    assert!((7200..7800).contains(&counts[0]), "{counts:?}");
    // Removing target 1 (weight 0) keeps every key of targets 0 and 2 where it was.
    let before = targets(&[100, 100, 100]);
    let after = targets(&[100, 0, 100]);
    let (mut b1, mut b2) = (Balancer::new(3), Balancer::new(3));
    for k in 0..5_000u64 {
        let key = fnv1a(&k.to_le_bytes());
        let x = pick_target(&mut b1, &before, &p, Some(key), 0);
        let y = pick_target(&mut b2, &after, &p, Some(key), 0);
        if x != 1 {
            assert_eq!(x, y);
        }
    }
}

#[test]
fn without_a_key_consistent_hashing_balances_by_weight() {
    let p = policy(Algorithm::ConsistentHashing);
    let t = targets(&[1, 1]);
    let mut b = Balancer::new(2);
    let seq: Vec<usize> = (0..4)
        .map(|_| pick_target(&mut b, &t, &p, None, 0))
        .collect();
    assert_eq!(seq.iter().filter(|i| **i == 0).count(), 2);
}

#[test]
fn least_connections_prefers_the_least_loaded_per_weight() {
    let p = policy(Algorithm::LeastConnections);
    let t = targets(&[1, 1, 2]);
    let mut b = Balancer::new(3);
    // Four requests in flight: the double-weight target takes two of them.
    let mut got = [0; 3];
    for _ in 0..4 {
        got[pick_target(&mut b, &t, &p, None, 0)] += 1;
    }
    assert_eq!(got, [1, 1, 2]);
    b.finished(0, Outcome::Status(200), &p, 0);
    assert_eq!(pick_target(&mut b, &t, &p, None, 0), 0);
    assert_eq!(b.in_flight(0), 1);
}

#[test]
fn a_retry_avoids_tried_targets_while_others_are_available() {
    let p = policy(Algorithm::ConsistentHashing);
    let t = targets(&[1, 1, 1]);
    let mut b = Balancer::new(3);
    let key = Some(fnv1a(b"k"));
    let first = pick_target(&mut b, &t, &p, key, 0);
    let Pick::Target(second) = b.pick(&t, &p, key, &[first], 0) else {
        panic!()
    };
    assert_ne!(first, second);
    let Pick::Target(third) = b.pick(&t, &p, key, &[first, second], 0) else {
        panic!()
    };
    assert!(third != first && third != second);
    // All tried: any available one again.
    assert!(matches!(
        b.pick(&t, &p, key, &[0, 1, 2], 0),
        Pick::Target(_)
    ));
}

#[test]
fn breaker_opens_after_failures_in_the_window_then_half_opens_and_closes() {
    let cfg = breaker_cfg();
    let mut br = Breaker::default();
    // Two 500s, then the window passes: the count starts again.
    br.report(Outcome::Status(500), 0, &cfg);
    br.report(Outcome::Status(500), 1_000, &cfg);
    br.report(Outcome::Status(500), 20_000, &cfg);
    assert_eq!(br.state, BreakerState::Closed);
    // Statuses not listed are successes; successes do not reset the count.
    br.report(Outcome::Status(502), 20_100, &cfg);
    br.report(Outcome::Status(200), 20_200, &cfg);
    br.report(Outcome::Status(503), 21_000, &cfg);
    assert_eq!(br.state, BreakerState::Closed);
    br.report(Outcome::Status(500), 22_000, &cfg);
    assert_eq!(br.state, BreakerState::Open { until: 52_000 });
    assert!(!br.available(51_999, &cfg));
    assert!(br.available(52_000, &cfg));
    // Half-open: one trial at a time.
    br.take(52_000);
    assert!(!br.available(52_001, &cfg));
    br.report(Outcome::Status(200), 52_010, &cfg);
    assert!(matches!(
        br.state,
        BreakerState::HalfOpen { successes: 1, .. }
    ));
    assert!(br.available(52_011, &cfg));
    br.take(52_011);
    br.report(Outcome::Status(200), 52_020, &cfg);
    assert_eq!(br.state, BreakerState::Closed);
}

#[test]
fn a_failed_trial_opens_the_breaker_again_and_a_lost_trial_is_forgotten() {
    let cfg = breaker_cfg();
    let mut br = Breaker::default();
    br.report(Outcome::ConnectFailure, 0, &cfg);
    br.report(Outcome::ConnectFailure, 10, &cfg);
    assert_eq!(br.state, BreakerState::Open { until: 30_010 });
    br.take(30_010);
    br.report(Outcome::ConnectFailure, 30_020, &cfg);
    assert_eq!(br.state, BreakerState::Open { until: 60_020 });
    br.take(60_020);
    // Never reported: after a cool-down another trial may go.
    assert!(!br.available(90_019, &cfg));
    assert!(br.available(90_020, &cfg));
    // Timeouts are not counted (threshold 0): neither failure nor success.
    br.take(90_020);
    br.report(Outcome::Timeout, 90_030, &cfg);
    assert!(matches!(
        br.state,
        BreakerState::HalfOpen {
            probing_since: None,
            successes: 0
        }
    ));
}

#[test]
fn balancer_skips_open_targets_and_reports_none_healthy() {
    let mut p = policy(Algorithm::RoundRobin);
    p.breaker = Some(breaker_cfg());
    let t = targets(&[1, 1]);
    let mut b = Balancer::new(2);
    for now in [0, 1] {
        b.pick(&t, &p, None, &[], now);
        assert!(!b.finished(0, Outcome::ConnectFailure, &p, now) || now == 1);
    }
    assert!(matches!(b.breakers[0].state, BreakerState::Open { .. }));
    for _ in 0..5 {
        assert_eq!(b.pick(&t, &p, None, &[], 100), Pick::Target(1));
    }
    b.finished(1, Outcome::ConnectFailure, &p, 100);
    b.finished(1, Outcome::ConnectFailure, &p, 101);
    // Both out: the first cool-down (target 0's, opened at 1) ends at 30,001.
    assert_eq!(
        b.pick(&t, &p, None, &[], 200),
        Pick::NoneHealthy {
            retry_at: Some(30_001)
        }
    );
    // After the cool-down target 0 gets one trial; the other requests find none healthy until it
    // is back.
    assert_eq!(b.pick(&t, &p, None, &[], 30_001), Pick::Target(0));
    // Target 0's trial is in flight (its probe slot frees at 60,001); target 1's cool-down ends first.
    assert_eq!(
        b.pick(&t, &p, None, &[], 30_002),
        Pick::NoneHealthy {
            retry_at: Some(30_101)
        }
    );
}

#[test]
fn retries_only_where_allowed() {
    let mut r = policy(Algorithm::RoundRobin).retry;
    assert!(r.again("GET", 1, Outcome::ConnectFailure, true));
    assert!(!r.again("GET", 2, Outcome::ConnectFailure, true), "count");
    assert!(!r.again("GET", 1, Outcome::Timeout, true), "not listed");
    assert!(!r.again("POST", 1, Outcome::ConnectFailure, true), "POST");
    assert!(
        !r.again("PUT", 1, Outcome::ConnectFailure, false),
        "streamed body"
    );
    assert!(r.again("DELETE", 1, Outcome::ConnectFailure, true));
    r.non_idempotent = true;
    r.on_statuses = vec![503];
    r.retries = 2;
    assert!(r.again("POST", 2, Outcome::Status(503), true));
    assert!(!r.again("POST", 2, Outcome::Status(500), true));
    r.retries = 0;
    assert!(!r.allows("GET"));
}

#[test]
fn hash_keys_come_from_the_source_or_the_fallback() {
    let header = |n: &str| match n {
        "x-user" => Some("alice".to_string()),
        "cookie" => Some("a=1; session=\"s-42\"; b=2".to_string()),
        _ => None,
    };
    let src = KeySource {
        header: &header,
        ip: Some("192.0.2.1"),
        path: "/a/b",
        consumer: None,
    };
    let k = |on: HashSource, fb: HashSource| request_key(&on, &fb, &src);
    assert_eq!(
        k(HashSource::Header("x-user".into()), HashSource::None),
        Some(fnv1a(b"alice"))
    );
    assert_eq!(
        k(HashSource::Cookie("session".into()), HashSource::None),
        Some(fnv1a(b"s-42"))
    );
    assert_eq!(
        k(HashSource::Consumer, HashSource::Ip),
        Some(fnv1a(b"192.0.2.1"))
    );
    assert_eq!(k(HashSource::Path, HashSource::None), Some(fnv1a(b"/a/b")));
    assert_eq!(
        k(HashSource::Header("x-none".into()), HashSource::None),
        None
    );
    assert_eq!(cookie_value("x=1;y=2", "y"), Some("2"));
    assert_eq!(cookie_value("xy=1", "y"), None);
}

#[test]
fn a_missing_hash_cookie_gets_a_new_value_to_set() {
    let none = |_: &str| None;
    let with_cookie = |n: &str| (n == "cookie").then(|| "sid=v-1".to_string());
    let src = |header| KeySource {
        header,
        ip: Some("192.0.2.1"),
        path: "/p",
        consumer: None,
    };
    let cookie = HashSource::Cookie("sid".into());
    let mut made = 0;
    let mut fresh = || {
        made += 1;
        format!("new-{made}")
    };
    // The request has the cookie: it is hashed, nothing is set.
    let (k, set) = request_key_or_new_cookie(
        &cookie,
        &HashSource::None,
        &src(&with_cookie),
        &|_| None,
        &mut fresh,
    );
    assert_eq!((k, set), (Some(fnv1a(b"v-1")), None));
    // It has none: a new value is hashed and set.
    let (k, set) = request_key_or_new_cookie(
        &cookie,
        &HashSource::None,
        &src(&none),
        &|_| None,
        &mut fresh,
    );
    assert_eq!(k, Some(fnv1a(b"new-1")));
    let set = set.unwrap();
    assert_eq!(set.header_value(), "sid=new-1; Path=/; HttpOnly");
    // A retry of that request reuses the value chosen before.
    let given = |n: &str| (n == "sid").then(|| "new-1".to_string());
    let (k, _) =
        request_key_or_new_cookie(&cookie, &HashSource::None, &src(&none), &given, &mut fresh);
    assert_eq!(k, Some(fnv1a(b"new-1")));
    // As a fallback: used only when `hash_on` has no value.
    let ip_then_cookie = |fb: &HashSource| {
        request_key_or_new_cookie(
            &HashSource::Header("x-user".into()),
            fb,
            &src(&none),
            &|_| None,
            &mut || "fb".to_string(),
        )
    };
    assert_eq!(ip_then_cookie(&cookie).0, Some(fnv1a(b"fb")));
    assert_eq!(
        ip_then_cookie(&HashSource::Ip),
        (Some(fnv1a(b"192.0.2.1")), None)
    );
    let u = uuid_v4([0xff; 16]);
    assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
}

fn view<'a>(
    path: &'a str,
    header: &'a dyn Fn(&str) -> Option<String>,
) -> crate::router::RequestView<'a> {
    crate::router::RequestView {
        method: "GET",
        host: "gw.example.com",
        path,
        query: "",
        header,
    }
}

const SPLIT_DOC: &str = r#"{"format_version": 1,
  "services": [
    {"name": "v1", "url": "http://v1.internal/base"},
    {"name": "v2", "targets": [{"url": "http://a.internal:81/two"}, {"url": "http://b.internal:82/two"}]}
  ],
  "routes": [
    {"name": "split", "paths": ["/c"], "services": [{"name": "v1", "weight": 1}, {"name": "v2", "weight": 3}],
     "hash_on": "header", "hash_on_header": "x-user"},
    {"name": "kept-host", "paths": ["/k"], "service": "v2", "preserve_host": true}
  ]}"#;

#[test]
fn a_split_route_uses_the_chosen_services_base_path_and_survives_the_compiled_form() {
    use crate::gateway::Gateway;
    let blob = Gateway::compile_to_bytes(SPLIT_DOC).unwrap();
    let gateways = [
        Gateway::compile(SPLIT_DOC).unwrap(),
        Gateway::from_compiled(blob, SPLIT_DOC.as_bytes().to_vec())
            .map_err(|(why, _)| why)
            .unwrap(),
    ];
    for gw in &gateways {
        let mut seen = std::collections::BTreeMap::new();
        for u in 0..200 {
            let user = format!("user-{u}");
            let header = |n: &str| (n == "x-user").then(|| user.clone());
            let plan = gw.plan(&view("/c/items", &header)).unwrap();
            // Sticky: the same user is placed alike every time.
            let again = gw.plan(&view("/c/items", &header)).unwrap();
            assert_eq!(plan.upstream.name, again.upstream.name);
            let url = plan.url.clone();
            match plan.upstream.name.as_str() {
                "v1" => assert_eq!(url, "http://v1.internal/base/items"),
                _ => assert_eq!(url, "http://a.internal:81/two/items"),
            }
            *seen.entry(plan.upstream.name.clone()).or_insert(0) += 1;
        }
        assert!((25..75).contains(&seen["v1"]), "{seen:?}");
    }
}

#[test]
fn a_split_route_keeps_the_trailing_slash_for_every_service() {
    use crate::gateway::Gateway;
    let gw = Gateway::compile(SPLIT_DOC).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for u in 0..50 {
        let user = format!("user-{u}");
        let header = |n: &str| (n == "x-user").then(|| user.clone());
        for (path, v1, v2) in [
            (
                "/c/",
                "http://v1.internal/base/",
                "http://a.internal:81/two/",
            ),
            ("/c", "http://v1.internal/base", "http://a.internal:81/two"),
        ] {
            let plan = gw.plan(&view(path, &header)).unwrap();
            let want = if plan.upstream.name == "v1" { v1 } else { v2 };
            assert_eq!(plan.url, want, "{path} for {user}");
            seen.insert(plan.upstream.name.clone());
        }
    }
    assert_eq!(seen.len(), 2, "both services were chosen: {seen:?}");
}

#[test]
fn a_split_route_joins_each_services_base_path_its_own_way() {
    use crate::gateway::Gateway;
    // Base paths with and without a trailing slash, and none, each first in one route.
    let doc = r#"{"format_version": 1,
      "services": [
        {"name": "slash", "url": "http://s.internal/s/"},
        {"name": "plain", "url": "http://p.internal/two"},
        {"name": "bare", "url": "http://b.internal"}
      ],
      "routes": [
        {"name": "c", "paths": ["/c"], "services": [{"name": "slash", "weight": 1}, {"name": "plain", "weight": 1}, {"name": "bare", "weight": 1}],
         "hash_on": "header", "hash_on_header": "x-user"},
        {"name": "d", "paths": ["/d"], "services": [{"name": "plain", "weight": 1}, {"name": "slash", "weight": 1}, {"name": "bare", "weight": 1}],
         "hash_on": "header", "hash_on_header": "x-user"},
        {"name": "e", "paths": ["/e"], "services": [{"name": "bare", "weight": 1}, {"name": "slash", "weight": 1}, {"name": "plain", "weight": 1}],
         "hash_on": "header", "hash_on_header": "x-user"}
      ]}"#;
    let gw = Gateway::compile(doc).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for route in ["/c", "/d", "/e"] {
        for u in 0..60 {
            let user = format!("user-{u}");
            let header = |n: &str| (n == "x-user").then(|| user.clone());
            for (rest, slash, plain, bare) in [
                (
                    "",
                    "http://s.internal/s/",
                    "http://p.internal/two",
                    "http://b.internal/",
                ),
                (
                    "/",
                    "http://s.internal/s/",
                    "http://p.internal/two/",
                    "http://b.internal/",
                ),
                (
                    "/x",
                    "http://s.internal/s/x",
                    "http://p.internal/two/x",
                    "http://b.internal/x",
                ),
                (
                    "/x/",
                    "http://s.internal/s/x/",
                    "http://p.internal/two/x/",
                    "http://b.internal/x/",
                ),
            ] {
                let path = format!("{route}{rest}");
                let plan = gw.plan(&view(&path, &header)).unwrap();
                let want = match plan.upstream.name.as_str() {
                    "slash" => slash,
                    "plain" => plain,
                    _ => bare,
                };
                assert_eq!(plan.url, want, "{path} for {user}");
                seen.insert((route, plan.upstream.name.clone()));
            }
        }
    }
    assert_eq!(
        seen.len(),
        9,
        "every service was chosen on every route: {seen:?}"
    );
}

#[test]
fn urls_for_other_targets_keep_the_path_and_preserve_host() {
    use crate::gateway::Gateway;
    let gw = Gateway::compile(SPLIT_DOC).unwrap();
    let none = |_: &str| None;
    let plan = gw.plan(&view("/k/x", &none)).unwrap();
    assert_eq!(plan.url, "http://gw.example.com:81/two/x");
    assert_eq!(
        plan.url_for(1, "gw.example.com"),
        (
            "http://gw.example.com:82/two/x".to_string(),
            Some("b.internal".to_string())
        )
    );
    assert_eq!(plan.url_for(0, "gw.example.com").0, plan.url);
    let header = |n: &str| (n == "x-user").then(|| "u".to_string());
    let plan = gw.plan(&view("/c/q", &header)).unwrap();
    if plan.upstream.name == "v2" {
        assert_eq!(
            plan.url_for(1, "gw.example.com").0,
            "http://b.internal:82/two/q"
        );
    }
}
