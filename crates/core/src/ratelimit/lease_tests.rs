//! Permit leases: the object's accounting (`serve`), the isolate's table (`LeaseTable`) and the
//! simulation, with a fake clock.

use super::algorithm::*;
use super::lease::*;
use super::sim::{self, Arrivals, Scenario};
use super::CheckRequest;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// 2026-05-01T00:00:00Z: aligned on every window but the month.
const T0: u64 = 1_777_593_600_000;

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

fn ask(spec: &Spec, cost: u64, want: u64, ret: Option<LeaseReturn>) -> CheckRequest {
    CheckRequest {
        spec: spec.clone(),
        cost,
        op: Op::Check,
        want,
        ret,
        unit: 1,
        held: None,
    }
}

/// The object, with its state through JSON as storage keeps it.
struct Object {
    spec: Spec,
    state: State,
}

impl Object {
    fn new(spec: Spec) -> Self {
        Object {
            spec,
            state: State::default(),
        }
    }
    fn call(&mut self, req: &CheckRequest, now: u64) -> Answer {
        let (next, answer) = serve(&self.spec, &self.state, req, now);
        self.state = serde_json::from_str(&serde_json::to_string(&next).unwrap()).unwrap();
        // The answer goes through JSON too.
        serde_json::from_str(&serde_json::to_string(&answer).unwrap()).unwrap()
    }
}

#[test]
fn a_lease_is_charged_when_granted_and_sized_by_what_remains() {
    let s = spec(Algorithm::SlidingWindow, Window::Minute, 100);
    let mut o = Object::new(s.clone());
    // One request and 30 permits wanted: at most half of the 99 left (one holder) is granted.
    let a = o.call(&ask(&s, 1, 30, None), T0);
    assert!(a.decision.allowed);
    let g = a.lease.expect("granted");
    assert_eq!(g.permits, 30);
    assert_eq!(a.decision.windows[0].remaining, 69, "the batch is charged");
    // A second isolate wants 1000: its share is 69 / (2 × 2 holders) = 17.
    let b = o.call(&ask(&s, 1, 1000, None), T0 + 1);
    assert_eq!(b.lease.unwrap().permits, 17);
    assert_eq!(b.decision.windows[0].remaining, 68 - 17);
    // The batch shrinks as the window fills, to nothing: then only per-request answers.
    let mut granted = 30 + 17 + 2;
    let mut now = T0 + 2;
    loop {
        let a = o.call(&ask(&s, 1, 1000, None), now);
        now += 1;
        if !a.decision.allowed {
            break;
        }
        granted += 1 + a.lease.map_or(0, |g| g.permits);
    }
    assert_eq!(granted, 100, "never more than the limit, leases included");
    let last = o.call(&ask(&s, 1, 5, None), now);
    assert!(!last.decision.allowed && last.lease.is_none());
}

#[test]
fn a_peek_a_charge_or_a_refused_check_gets_no_lease() {
    let s = spec(Algorithm::SlidingWindow, Window::Minute, 10);
    let mut o = Object::new(s.clone());
    let mut peek = ask(&s, 1, 5, None);
    peek.op = Op::Peek;
    assert!(o.call(&peek, T0).lease.is_none());
    let mut charge = ask(&s, 10, 5, None);
    charge.op = Op::Charge;
    assert!(o.call(&charge, T0).lease.is_none());
    assert!(o.call(&ask(&s, 1, 5, None), T0).lease.is_none());
}

#[test]
fn sliding_window_leases_end_before_their_window() {
    let s = spec(Algorithm::SlidingWindow, Window::Second, 100);
    let mut o = Object::new(s.clone());
    let g = o.call(&ask(&s, 1, 10, None), T0 + 300).lease.unwrap();
    // 700 ms left in the second, minus the 50 ms margin.
    assert_eq!(g.ttl_ms, 650);
    assert_eq!(margin_ms(1000), 50);
    assert_eq!(margin_ms(60_000), 250);
    // Too close to the end: no lease, the request is still decided.
    let late = o.call(&ask(&s, 1, 10, None), T0 + 960);
    assert!(late.decision.allowed && late.lease.is_none());
    // A minute window: capped at MAX_LEASE_MS.
    let m = spec(Algorithm::SlidingWindow, Window::Minute, 100);
    let mut o = Object::new(m.clone());
    assert_eq!(
        o.call(&ask(&m, 1, 10, None), T0).lease.unwrap().ttl_ms,
        MAX_LEASE_MS
    );
}

#[test]
fn returned_permits_are_refunded_to_the_window_they_were_charged_to() {
    let s = spec(Algorithm::SlidingWindow, Window::Second, 100);
    let mut o = Object::new(s.clone());
    let g = o.call(&ask(&s, 1, 40, None), T0 + 100).lease.unwrap();
    assert_eq!(g.permits, 40);
    // 10 spent, 30 given back in the same second: 100 - 1 - 10 left.
    let ret = Some(LeaseReturn {
        id: g.id,
        unused: 30,
    });
    let a = o.call(&ask(&s, 1, 0, ret), T0 + 200);
    assert_eq!(a.decision.windows[0].remaining, 100 - 1 - 10 - 1);
    // Returning it again (or more than it held) changes nothing.
    let a = o.call(&ask(&s, 0, 0, ret), T0 + 201);
    assert_eq!(a.decision.windows[0].remaining, 88);

    // Given back in the next second: refunded to the previous window's count.
    let mut o = Object::new(s.clone());
    let g = o.call(&ask(&s, 1, 40, None), T0 + 100).lease.unwrap();
    let ret = Some(LeaseReturn {
        id: g.id,
        unused: 40,
    });
    let before = o.call(&ask(&s, 0, 0, None), T0 + 1500).decision.windows[0].remaining;
    let after = o.call(&ask(&s, 0, 0, ret), T0 + 1500).decision.windows[0].remaining;
    // Previous window 41 (then 1) weighted by half the second.
    assert_eq!((before, after), (100 - 21, 100 - 1));
}

#[test]
fn token_bucket_leased_tokens_stay_reserved_until_returned_or_expired() {
    let s = spec(Algorithm::TokenBucket, Window::Second, 10);
    let mut o = Object::new(s.clone());
    let a = o.call(&ask(&s, 1, 4, None), T0);
    let g = a.lease.unwrap();
    assert_eq!((g.permits, g.ttl_ms), (4, 1000));
    assert_eq!(a.decision.windows[0].remaining, 5);
    // Half a second later the bucket refilled only up to burst - reserved = 6 (not 10).
    let a = o.call(&ask(&s, 0, 0, None), T0 + 500);
    assert_eq!(a.decision.windows[0].remaining, 6);
    // Once the lease has ended, the bucket may fill up to 10 again, refilling from its end on:
    // at T0+1000 it held 6, full at 10.
    let a = o.call(&ask(&s, 0, 0, None), T0 + 1100);
    assert_eq!(a.decision.windows[0].remaining, 7);
    let a = o.call(&ask(&s, 0, 0, None), T0 + 2000);
    assert_eq!(a.decision.windows[0].remaining, 10);

    // A returned lease puts its unused tokens back at once.
    let mut o = Object::new(s.clone());
    let g = o.call(&ask(&s, 1, 4, None), T0).lease.unwrap();
    let ret = Some(LeaseReturn {
        id: g.id,
        unused: 3,
    });
    let a = o.call(&ask(&s, 0, 0, ret), T0);
    assert_eq!(a.decision.windows[0].remaining, 8);
}

#[test]
fn the_table_spends_locally_and_refills_ahead_of_exhaustion() {
    let s = spec(Algorithm::SlidingWindow, Window::Minute, 1000);
    let mut o = Object::new(s.clone());
    let mut t = LeaseTable::default();
    let now = T0 + 1000;
    // First request: asks the object, wants at least one permit.
    let Plan::Remote(first) = t.plan("k", 1, true, now) else {
        panic!("no lease yet")
    };
    assert!(first.want >= 1);
    // While that ask is in flight, others ask for nothing (one ask per key at a time).
    let Plan::Remote(second) = t.plan("k", 1, true, now) else {
        panic!()
    };
    assert_eq!(second.want, 0);
    let a1 = o.call(&first.request(&s, Op::Check, 1), now);
    let granted = a1.lease.unwrap().permits;
    let d = t.answered("k", &first, a1, Some(1), now + 10).unwrap();
    assert!(d.allowed);
    assert_eq!(
        d.windows[0].remaining, 999,
        "the object's view plus the lease in hand"
    );
    assert_eq!(t.permits("k", now + 10), granted);
    let a2 = o.call(&second.request(&s, Op::Check, 1), now);
    let d = t.answered("k", &second, a2, Some(1), now + 10).unwrap();
    assert_eq!(d.windows[0].remaining, 998);
    // Now requests are admitted locally; the refill is asked once, when half the batch is spent.
    let mut refills = Vec::new();
    let mut shown = Vec::new();
    for i in 0..granted {
        match t.plan("k", 1, true, now + 20 + i) {
            Plan::Local { decision, refill } => {
                shown.push(decision.windows[0].remaining);
                refills.extend(refill);
            }
            Plan::Remote(_) => panic!("covered by the lease"),
        }
    }
    assert_eq!(refills.len(), 1, "one refill in flight at a time");
    assert!(shown.windows(2).all(|w| w[1] + 1 == w[0]), "{shown:?}");
    assert_eq!(t.permits("k", now + 20 + granted), 0);
}

#[test]
fn an_ended_lease_is_given_back_with_the_next_ask() {
    let s = spec(Algorithm::SlidingWindow, Window::Second, 1000);
    let mut o = Object::new(s.clone());
    let mut t = LeaseTable::default();
    let now = T0 + 100;
    let Plan::Remote(first) = t.plan("k", 1, true, now) else {
        panic!()
    };
    let a = o.call(&first.request(&s, Op::Check, 1), now);
    let g = a.lease.unwrap();
    t.answered("k", &first, a, Some(1), now);
    assert!(t.permits("k", now) > 0);
    // The second ends (the lease ends 50 ms before): the next request asks the object and gives
    // the lease back.
    let Plan::Remote(next) = t.plan("k", 1, true, T0 + 1000) else {
        panic!("the lease has ended")
    };
    assert_eq!(
        next.ret,
        Some(LeaseReturn {
            id: g.id,
            unused: g.permits
        })
    );
    // Per-request mode gives back a lease still in hand too, and never wants one.
    let mut t = LeaseTable::default();
    let Plan::Remote(first) = t.plan("k", 1, true, T0 + 2000) else {
        panic!()
    };
    let a = o.call(&first.request(&s, Op::Check, 1), T0 + 2000);
    let g = a.lease.unwrap();
    t.answered("k", &first, a, Some(1), T0 + 2000);
    let Plan::Remote(per) = t.plan("k", 1, false, T0 + 2001) else {
        panic!("lease: false never spends locally")
    };
    assert_eq!(per.want, 0);
    assert_eq!(per.ret.map(|r| r.id), Some(g.id));
}

#[test]
fn a_request_the_object_refused_is_admitted_from_a_lease_that_arrived_meanwhile() {
    let s = spec(Algorithm::SlidingWindow, Window::Minute, 10);
    let mut o = Object::new(s.clone());
    let mut t = LeaseTable::default();
    let now = T0;
    // A burst: the first ask wants permits, the others are sent before its answer comes.
    let asks: Vec<Ask> = (0..20)
        .map(|_| match t.plan("k", 1, true, now) {
            Plan::Remote(a) => a,
            Plan::Local { .. } => panic!(),
        })
        .collect();
    let answers: Vec<Answer> = asks
        .iter()
        .map(|a| o.call(&a.request(&s, Op::Check, 1), now))
        .collect();
    let admitted = asks
        .iter()
        .zip(answers)
        .map(|(a, answer)| t.answered("k", a, answer, Some(1), now + 5).unwrap())
        .filter(|d| d.allowed)
        .count();
    assert_eq!(
        admitted, 10,
        "exactly the limit: the lease was spent by refused requests"
    );
}

#[test]
fn an_evicted_isolates_lease_only_under_admits_and_is_bounded() {
    let s = spec(Algorithm::SlidingWindow, Window::Second, 100);
    let mut o = Object::new(s.clone());
    // Isolate A takes a lease and is evicted (never spends, never returns).
    let lost = o.call(&ask(&s, 1, 40, None), T0).lease.unwrap().permits;
    assert_eq!(lost, 40);
    // Isolate B, per request: this second admits 100 - 1 - 40.
    let mut admitted = 0;
    for i in 0..200 {
        admitted += o.call(&ask(&s, 1, 0, None), T0 + 100 + i).decision.allowed as u64;
    }
    assert_eq!(admitted, 59);
    // Two seconds later nothing is left of it (the next second, the previous count, 41 of it the
    // lost lease, still weighs as counted requests do).
    let mut admitted = 0;
    for i in 0..200 {
        admitted += o.call(&ask(&s, 1, 0, None), T0 + 2000 + i).decision.allowed as u64;
    }
    assert_eq!(admitted, 100);

    // Token bucket: the lost lease's tokens are reserved until it ends (one window at most).
    let s = spec(Algorithm::TokenBucket, Window::Second, 100);
    let mut o = Object::new(s.clone());
    let lost = o.call(&ask(&s, 1, 40, None), T0).lease.unwrap();
    assert_eq!((lost.permits, lost.ttl_ms), (40, 1000));
    let a = o.call(&ask(&s, 0, 0, None), T0 + 999);
    assert_eq!(
        a.decision.windows[0].remaining, 60,
        "bucket full up to 100 - 40 reserved"
    );
    let a = o.call(&ask(&s, 0, 0, None), T0 + 1400);
    assert_eq!(a.decision.windows[0].remaining, 100);
}

#[test]
fn the_simulation_never_over_admits() {
    // The documented table's lease scenarios, shorter (65 s: across one minute boundary).
    let mut lease_under = Vec::new();
    for s in sim::table_scenarios(65_000).into_iter().filter(|s| s.lease) {
        let r = sim::run(&s);
        assert_eq!(r.over, 0, "{s:?}: {r:?}");
        assert!(r.admitted <= r.offered);
        if s.lease && s.latency_ms == 0 {
            // Without latency, leases cost almost nothing.
            lease_under.push((r.under as f64) / (r.ideal.max(1) as f64));
        }
    }
    assert!(
        lease_under.iter().all(|&u| u < 0.1),
        "under-admission at 0 ms: {lease_under:?}"
    );
}

#[test]
fn under_the_limit_leases_decide_most_requests_without_a_round_trip() {
    let scenario = Scenario {
        algorithm: Algorithm::SlidingWindow,
        limit: 6000,
        isolates: 8,
        locations: 4,
        latency_ms: 80,
        arrivals: Arrivals::Poisson,
        load: 0.5,
        duration_ms: 20_000,
        lease: true,
        seed: 1,
    };
    let r = sim::run(&scenario);
    assert_eq!(r.over, 0);
    assert_eq!(r.p50_ms, 0, "{r:?}");
    let per = sim::run(&Scenario {
        lease: false,
        ..scenario
    });
    assert_eq!(per.p50_ms, 80, "per-request mode: one round trip each");
}

#[test]
fn leases_come_in_whole_requests_and_a_short_one_is_given_back() {
    // cost 4, bucket of 10: after the first request 6 are left, half of it (3) is less than one
    // request, so no lease.
    let s = spec(Algorithm::TokenBucket, Window::Minute, 10);
    let mut o = Object::new(s.clone());
    let mut req = ask(&s, 4, 8, None);
    req.unit = 4;
    let a = o.call(&req, T0);
    assert!(a.decision.allowed && a.lease.is_none());
    assert_eq!(a.decision.windows[0].remaining, 6);

    // A table holding fewer permits than the cost gives them back with its ask.
    let s = spec(Algorithm::SlidingWindow, Window::Minute, 1000);
    let mut o = Object::new(s.clone());
    let mut t = LeaseTable::default();
    let Plan::Remote(first) = t.plan("k", 1, true, T0) else {
        panic!()
    };
    let a = o.call(&first.request(&s, Op::Check, 1), T0);
    let g = a.lease.unwrap();
    t.answered("k", &first, a, Some(1), T0);
    let Plan::Remote(big) = t.plan("k", g.permits + 1, true, T0 + 1) else {
        panic!("a lease too small for the cost")
    };
    assert_eq!(
        big.ret,
        Some(LeaseReturn {
            id: g.id,
            unused: g.permits
        })
    );
    assert_eq!(big.unit, g.permits + 1);
}

#[test]
fn a_new_batch_is_folded_into_the_lease_in_hand() {
    let s = spec(Algorithm::TokenBucket, Window::Minute, 1000);
    let mut o = Object::new(s.clone());
    let first = o.call(&ask(&s, 1, 10, None), T0).lease.unwrap();
    let mut again = ask(&s, 0, 10, None);
    // The isolate has spent nothing of it.
    again.held = Some(LeaseReturn {
        id: first.id,
        unused: 10,
    });
    let second = o.call(&again, T0 + 2000).lease.unwrap();
    assert!(second.folded);
    // One record for the isolate: holding 20, until the new lease's end.
    assert_eq!(o.state.leases.len(), 1);
    let r = &o.state.leases[0];
    assert_eq!(
        (r.id, r.permits, r.expires_at),
        (second.id, 20, T0 + 2000 + MAX_LEASE_MS)
    );
    // So the isolate is still one holder: another isolate's share is what the bucket holds
    // (1000 less the 20 reserved; the request's own token has refilled) over 2 × 2.
    let other = o.call(&ask(&s, 0, 10_000, None), T0 + 2001);
    assert_eq!(other.lease.unwrap().permits, (1000 - 20) / 4);

    // On the isolate side, the new permits end with the lease they joined.
    let s = spec(Algorithm::SlidingWindow, Window::Minute, 100_000);
    let mut o = Object::new(s.clone());
    let mut t = LeaseTable::default();
    let Plan::Remote(mut a) = t.plan("k", 1, true, T0) else {
        panic!()
    };
    a.want = 50;
    let answer = o.call(&a.request(&s, Op::Check, 1), T0);
    t.answered("k", &a, answer, Some(1), T0);
    // Spend until a refill is asked: it names the lease in hand.
    let refill = (1..1000)
        .find_map(|i| match t.plan("k", 1, true, T0 + i) {
            Plan::Local { refill, .. } => refill,
            Plan::Remote(_) => panic!("covered"),
        })
        .expect("a refill");
    let held = refill.held.expect("names the lease in hand");
    assert_eq!(held.unused, 25, "half of the 50 left");
    let sent = refill.sent_at;
    let answer = o.call(&refill.request(&s, Op::Check, 0), sent + 5);
    let grant = answer.lease.unwrap();
    assert!(grant.folded);
    assert_eq!(o.state.leases.len(), 1, "folded into lease {}", held.id);
    // Only what was left is kept with the new batch (spent permits are no longer held).
    assert_eq!(o.state.leases[0].permits, 25 + grant.permits);
    t.answered("k", &refill, answer, None, sent + 10);
    // Everything in hand now lasts as long as the new lease, from when the refill was sent.
    assert!(t.permits("k", sent + MAX_LEASE_MS - 1) > 0);
    assert_eq!(t.permits("k", sent + MAX_LEASE_MS), 0);
}

#[test]
fn an_answer_is_a_decision_plus_its_lease_on_the_wire() {
    let s = spec(Algorithm::SlidingWindow, Window::Minute, 100);
    let (_, answer) = serve(&s, &State::default(), &ask(&s, 1, 10, None), T0);
    let text = serde_json::to_string(&answer).unwrap();
    assert_eq!(
        text,
        r#"{"allowed":true,"windows":[{"window":"minute","limit":100,"remaining":89,"reset_ms":60000}],"lease":{"id":1,"permits":10,"ttl_ms":10000}}"#
    );
    // Without a lease it reads as a plain decision, and a plain decision reads as an answer.
    let decision: Decision = serde_json::from_str(&text).unwrap();
    assert_eq!(decision, answer.decision);
    let back: Answer = serde_json::from_str(&serde_json::to_string(&decision).unwrap()).unwrap();
    assert_eq!(back.lease, None);
}

#[test]
fn a_token_bucket_reset_shown_from_a_lease_matches_the_remaining_shown() {
    // 6 a minute: one token every 10 s. The object reserves the leased tokens, so its own reset
    // counts them as gone; the isolate, which still holds them, shows them as in the bucket.
    let s = spec(Algorithm::TokenBucket, Window::Minute, 6);
    let mut o = Object::new(s.clone());
    let mut t = LeaseTable::default();
    let now = T0;
    let Plan::Remote(first) = t.plan("k", 1, true, now) else {
        panic!("no lease yet")
    };
    let a = o.call(&first.request(&s, Op::Check, 1), now);
    assert!(a.lease.as_ref().is_some_and(|l| l.permits >= 1 && l.bucket));
    let d = t.answered("k", &first, a, Some(1), now).unwrap();
    // One token taken: 5 left, full again in 10 s (the object alone would say 10 s per token it
    // no longer has, the leased ones included).
    assert_eq!((d.windows[0].remaining, d.windows[0].reset_ms), (5, 10_000));
    // The next request spends the leased token: 4 left, full again in 20 s (less the 1 ms passed).
    let Plan::Local { decision, .. } = t.plan("k", 1, true, now + 1) else {
        panic!("covered by the lease")
    };
    let w = &decision.windows[0];
    assert_eq!((w.remaining, w.reset_ms), (4, 20_000 - 1));

    // A sliding window's reset is the end of its fixed window, whatever is held.
    let s = spec(Algorithm::SlidingWindow, Window::Minute, 6);
    let mut o = Object::new(s.clone());
    let mut t = LeaseTable::default();
    let Plan::Remote(first) = t.plan("k", 1, true, T0 + 1000) else {
        panic!()
    };
    let a = o.call(&first.request(&s, Op::Check, 1), T0 + 1000);
    assert!(a.lease.as_ref().is_some_and(|l| !l.bucket));
    let d = t.answered("k", &first, a, Some(1), T0 + 1000).unwrap();
    assert_eq!(d.windows[0].reset_ms, 59_000);
}

#[test]
fn a_token_bucket_reset_stays_consistent_with_the_remaining_across_refills() {
    // After a refill in the background (and old leased tokens still reserved in the object), the
    // reset shown is still the refill time of what is missing from the remaining shown, whether
    // the next request is decided from the new lease or by the object.
    let s = spec(Algorithm::TokenBucket, Window::Minute, 6);
    let mut o = Object::new(s.clone());
    let mut t = LeaseTable::default();
    let now = T0;
    let Plan::Remote(first) = t.plan("k", 1, true, now) else {
        panic!()
    };
    let a = o.call(&first.request(&s, Op::Check, 1), now);
    t.answered("k", &first, a, Some(1), now).unwrap();
    let Plan::Local {
        refill: Some(refill),
        ..
    } = t.plan("k", 1, true, now + 1)
    else {
        panic!("spent from the lease, with a refill")
    };
    let shown = |d: &Decision| (d.windows[0].remaining, d.windows[0].reset_ms);
    // The refill answers first: the third request spends the new lease.
    let (mut t2, mut o2) = (t.clone(), Object::new(s.clone()));
    o2.state = o.state.clone();
    let a = o2.call(&refill.request(&s, Op::Check, 0), now + 2);
    t2.answered("k", &refill, a, None, now + 3);
    let Plan::Local { decision, .. } = t2.plan("k", 1, true, now + 4) else {
        panic!("covered by the new lease")
    };
    // (the object answered at +2, seen at +3, shown at +4: 1 ms since the answer)
    assert_eq!(shown(&decision), (3, 30_000 - 2 - 1));
    // The third request comes first: the object decides it.
    let Plan::Remote(third) = t.plan("k", 1, true, now + 2) else {
        panic!("nothing in hand")
    };
    let a = o.call(&third.request(&s, Op::Check, 1), now + 2);
    let d = t.answered("k", &third, a, Some(1), now + 2).unwrap();
    assert_eq!(shown(&d), (3, 30_000 - 2));
}

/// A lease in hand and the object that granted it, for the configuration-change tests.
fn leased(s: &Spec, now: u64) -> (Object, LeaseTable, LeaseGrant) {
    let mut o = Object::new(s.clone());
    let mut t = LeaseTable::default();
    let Plan::Remote(first) = t.plan_for("k", s, 1, true, now) else {
        panic!("no lease yet")
    };
    let a = o.call(&first.request(s, Op::Check, 1), now);
    let g = a.lease.expect("a lease");
    t.answered("k", &first, a, Some(1), now);
    assert!(t.permits("k", now) > 0);
    (o, t, g)
}

#[test]
fn a_new_limit_ends_the_lease_in_hand_which_is_given_back() {
    let s = spec(Algorithm::SlidingWindow, Window::Hour, 1000);
    let now = T0 + 1000;
    let (mut o, mut t, g) = leased(&s, now);
    // The configuration now says 5 an hour: the next request asks the object (no permit of the
    // old limit is spent), giving the lease back.
    let lower = spec(Algorithm::SlidingWindow, Window::Hour, 5);
    let Plan::Remote(next) = t.plan_for("k", &lower, 1, true, now + 2) else {
        panic!("a lease of the old limit must not be spent")
    };
    assert_eq!(
        next.ret,
        Some(LeaseReturn {
            id: g.id,
            unused: g.permits
        })
    );
    o.spec = lower.clone();
    let a = o.call(&next.request(&lower, Op::Check, 1), now + 2);
    // The lease refunded: the first request, then this one: 2 of 5 (the isolate's view: what the
    // object has left plus the new lease in hand, if any).
    assert!(a.decision.allowed);
    assert_eq!(a.decision.windows[0].limit, 5);
    let d = t.answered("k", &next, a, Some(1), now + 3).unwrap();
    assert_eq!(d.windows[0].limit, 5);
    assert_eq!(d.windows[0].remaining, 3);
    // The same configuration again changes nothing.
    let mut unchanged = t.clone();
    assert_eq!(
        t.plan_for("k", &lower, 1, true, now + 4),
        unchanged.plan("k", 1, true, now + 4)
    );
}

#[test]
fn new_windows_drop_the_lease_in_hand_and_a_lease_granted_before_the_change() {
    let s = spec(Algorithm::SlidingWindow, Window::Hour, 1000);
    let now = T0 + 1000;
    let (_, mut t, _) = leased(&s, now);
    let mut wider = s.clone();
    wider.limits.push(Limit {
        window: Window::Day,
        limit: 2000,
        burst: 2000,
    });
    // Another window: the lease cannot be refunded to windows it was not charged to, so it is
    // dropped (as if spent), and nothing is given back.
    let Plan::Remote(next) = t.plan_for("k", &wider, 1, true, now + 2) else {
        panic!("a lease of the old windows must not be spent")
    };
    assert_eq!(next.ret, None);
    assert_eq!(t.permits("k", now + 2), 0);

    // A lease asked for under the old configuration and answered after the change is not
    // installed: with the same windows it is given back, otherwise dropped.
    for (changed, given_back) in [
        (spec(Algorithm::SlidingWindow, Window::Hour, 500), true),
        (wider.clone(), false),
        (spec(Algorithm::TokenBucket, Window::Hour, 1000), false),
    ] {
        let mut o = Object::new(s.clone());
        let mut t = LeaseTable::default();
        let Plan::Remote(ask) = t.plan_for("k", &s, 1, true, now) else {
            panic!()
        };
        let Plan::Remote(during) = t.plan_for("k", &changed, 1, true, now + 1) else {
            panic!()
        };
        let a = o.call(&ask.request(&s, Op::Check, 1), now);
        let g = a.lease.expect("a lease");
        t.answered("k", &ask, a, Some(1), now + 2);
        assert_eq!(t.permits("k", now + 2), 0, "{changed:?}");
        let Plan::Remote(after) = t.plan_for("k", &changed, 1, true, now + 3) else {
            panic!("no lease in hand")
        };
        let _ = during;
        assert_eq!(
            after.ret,
            given_back.then_some(LeaseReturn {
                id: g.id,
                unused: g.permits
            }),
            "{changed:?}"
        );
    }
}
