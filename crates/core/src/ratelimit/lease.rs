//! Permit leases: exact limits without a Durable Object round trip per request.
//!
//! The counting object grants an isolate a batch of permits (cost units) that the isolate spends
//! locally; the object charges the whole batch when it grants it, so what every isolate can spend
//! never exceeds what the object admitted: the limit holds exactly, across isolates and locations.
//! Unused permits are returned (refunded) or expire; near the limit the batch shrinks to zero and
//! every request goes to the object, which is the per-request mode.
//!
//! - Object side: [`serve`] (settle expired leases, take a returned one back, decide the request,
//!   grant a new batch), a pure function of `(spec, state, request, now)` like [`decide_op`].
//! - Isolate side: [`LeaseTable`] (spend locally, size the next batch, ask for it ahead of
//!   exhaustion, return the rest), driven by the glue with the isolate's clock.
//!
//! Accounting, per algorithm (docs/rate-limiting.md, "Permit leases"):
//! - Sliding window: a grant is charged to the current fixed window of every window of the policy,
//!   like that many admitted requests, and the lease expires before the end of the shortest window
//!   (minus a safety margin), so every permit is spent in the fixed window it was charged to. A
//!   returned permit is refunded to the window it was charged to (current or previous).
//! - Token bucket: a grant takes its tokens from every bucket; until the lease expires or is
//!   returned its tokens stay reserved: the bucket refills only up to `burst - reserved`, so tokens
//!   in the bucket plus tokens in leases never exceed `burst`, and over any interval `t` at most
//!   `burst + limit * t / window` can be spent, as without leases. Refill between lease expiries is
//!   computed piecewise, each piece with the reservation then in force.
//! - The isolate's lease ends at `sent_at + ttl` on its own clock, where `sent_at` is when it sent
//!   the request: never later than the object's `grant time + ttl`.
//! - A lease never returned (the isolate was evicted) only under-admits: at most its size, until
//!   it expires (token bucket) or for the rest of its window and, weighted, the next (sliding window).

use super::algorithm::{decide_reserved, Algorithm, Decision, Op, Spec, State};
use super::CheckRequest;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Longest lease (ms): a lease held by an evicted isolate blocks its permits at most this long
/// (token bucket) and a live isolate renews at least this often.
pub const MAX_LEASE_MS: u64 = 10_000;
/// Shortest lease worth granting (ms); with less time left in the window, no lease is granted.
pub const MIN_LEASE_MS: u64 = 20;
/// Most permits (cost units) in one lease.
pub const MAX_BATCH: u64 = 100_000;
/// How far ahead (ms) an isolate sizes its batch for, at least: the batch covers its recent rate
/// over `max(MIN_HORIZON_MS, 4 × round trip)`.
pub const MIN_HORIZON_MS: u64 = 1000;

/// A lease the object granted and has not seen returned or expired (stored with its state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    #[serde(rename = "i")]
    pub id: u64,
    /// Permits granted (cost units).
    #[serde(rename = "n")]
    pub permits: u64,
    /// When it was granted (object ms).
    #[serde(rename = "g")]
    pub granted_at: u64,
    /// When it ends (object ms).
    #[serde(rename = "x")]
    pub expires_at: u64,
}

/// Unused permits of a lease, given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseReturn {
    pub id: u64,
    pub unused: u64,
}

/// A batch of permits granted to an isolate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    pub id: u64,
    /// Permits (cost units) the isolate may spend.
    pub permits: u64,
    /// How long they may be spent, from when the isolate sent its request (ms).
    pub ttl_ms: u64,
    /// The lease the isolate said it holds was folded into this one: its permits now end with
    /// this lease.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub folded: bool,
    /// Token bucket: the permits are tokens reserved out of every window's bucket, so the
    /// isolate's view of a bucket (the object's level plus the permits it holds) is full again
    /// sooner than the object's, by the refill time of what it holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bucket: bool,
}

/// The object's answer: the decision for the request's own cost, and maybe a lease. Serialized as
/// the decision's fields plus `lease`, so an answer without a lease is today's [`Decision`]
/// (through [`AnswerWire`] rather than `#[serde(flatten)]`, whose generic code weighs in wasm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AnswerWire", into = "AnswerWire")]
pub struct Answer {
    pub decision: Decision,
    pub lease: Option<LeaseGrant>,
}

/// [`Answer`] as sent: [`Decision`]'s fields and `lease`.
#[derive(Serialize, Deserialize)]
struct AnswerWire {
    allowed: bool,
    windows: Vec<super::algorithm::WindowStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease: Option<LeaseGrant>,
}

impl From<AnswerWire> for Answer {
    fn from(w: AnswerWire) -> Self {
        Answer {
            decision: Decision {
                allowed: w.allowed,
                windows: w.windows,
                retry_after_ms: w.retry_after_ms,
            },
            lease: w.lease,
        }
    }
}

impl From<Answer> for AnswerWire {
    fn from(a: Answer) -> Self {
        AnswerWire {
            allowed: a.decision.allowed,
            windows: a.decision.windows,
            retry_after_ms: a.decision.retry_after_ms,
            lease: a.lease,
        }
    }
}

/// Tokens held by leases (token bucket; the sliding window charges grants to its counts instead).
fn reserved(state: &State) -> u64 {
    if state.algorithm != Algorithm::TokenBucket {
        return 0;
    }
    state
        .leases
        .iter()
        .fold(0u64, |n, l| n.saturating_add(l.permits))
}

fn shortest_window_ms(spec: &Spec) -> u64 {
    spec.limits
        .iter()
        .map(|l| l.window.millis())
        .min()
        .unwrap_or(1000)
}

fn longest_window_ms(spec: &Spec) -> u64 {
    spec.limits
        .iter()
        .map(|l| l.window.millis())
        .max()
        .unwrap_or(1000)
}

/// Safety margin before a sliding-window lease's window ends (ms): covers an isolate's clock
/// lagging the real time by the CPU time since its last I/O (Workers freeze `Date.now()` meanwhile).
pub fn margin_ms(window_ms: u64) -> u64 {
    (window_ms / 20).min(250)
}

/// Bring `state` up to `now`: drop leases of another algorithm, expire ended leases (refilling
/// token buckets piecewise, each piece with the reservation then in force) and roll every window.
pub fn settle(spec: &Spec, state: &State, now: u64) -> State {
    let mut st = state.clone();
    if st.algorithm != spec.algorithm {
        st.leases.clear();
    }
    if spec.algorithm == Algorithm::TokenBucket {
        let mut ended: Vec<u64> = st
            .leases
            .iter()
            .filter(|l| l.expires_at <= now)
            .map(|l| l.expires_at)
            .collect();
        ended.sort_unstable();
        ended.dedup();
        for at in ended {
            st = decide_reserved(spec, &st, Op::Peek, 0, reserved(&st), at).0;
            st.leases.retain(|l| l.expires_at > at);
        }
    } else {
        // An ended lease can still be given back (its permits were not spent) while the window it
        // was charged to counts: until two shortest windows after it.
        let w = shortest_window_ms(spec);
        st.leases
            .retain(|l| (l.granted_at - l.granted_at % w).saturating_add(2 * w) > now);
    }
    let r = reserved(&st);
    decide_reserved(spec, &st, Op::Peek, 0, r, now).0
}

/// Give back `unused` permits of lease `id` (at most what it still holds). A lease the object no
/// longer knows (expired, already returned) is ignored.
fn take_back(spec: &Spec, st: &mut State, ret: &LeaseReturn) {
    let Some(pos) = st.leases.iter().position(|l| l.id == ret.id) else {
        return;
    };
    let record = st.leases.remove(pos);
    let n = ret.unused.min(record.permits);
    if n == 0 {
        return;
    }
    for (ws, limit) in st.windows.iter_mut().zip(&spec.limits) {
        let w = limit.window.millis();
        match spec.algorithm {
            Algorithm::SlidingWindow => {
                let charged_in = record.granted_at - record.granted_at % w;
                if ws.t == charged_in {
                    ws.b = ws.b.saturating_sub(n);
                } else if ws.t == charged_in.saturating_add(w) {
                    ws.a = ws.a.saturating_sub(n);
                }
            }
            Algorithm::TokenBucket => {
                // The tokens go back into the bucket (they were reserved until now).
                ws.set_level(ws.level().saturating_add(n as i128 * w as i128));
            }
        }
    }
}

/// The object's whole job for one call: settle, take back a returned lease, decide the request's
/// own `cost` with `op`, and, for an admitted `check` asking for `want` permits, grant a batch
/// sized from what remains: at most half the remainder shared among the isolates holding leases
/// (so the batch shrinks as the window fills, to zero near the limit), never beyond it.
pub fn serve(spec: &Spec, state: &State, req: &CheckRequest, now: u64) -> (State, Answer) {
    let mut st = settle(spec, state, now);
    if let Some(ret) = &req.ret {
        take_back(spec, &mut st, ret);
    }
    let (mut next, decision) = decide_reserved(spec, &st, req.op, req.cost, reserved(&st), now);
    let mut answer = Answer {
        decision,
        lease: None,
    };
    if req.op == Op::Check && answer.decision.allowed && req.want > 0 {
        let unit = req.unit.max(1);
        let held = req.held;
        if let Some((grant, after)) =
            grant(spec, &next, req.want, unit, held, &answer.decision, now)
        {
            next = after.0;
            answer.decision = after.1;
            answer.lease = Some(grant);
        }
    }
    if let Some(last) = next
        .leases
        .iter()
        .map(|l| {
            l.expires_at
                .max(l.granted_at.saturating_add(2 * shortest_window_ms(spec)))
        })
        .max()
    {
        // Keep the state (and its leases) until every lease has ended and its effect has passed.
        next.expires_at = next
            .expires_at
            .max(last.saturating_add(2 * longest_window_ms(spec)));
    }
    (next, answer)
}

type Granted = (LeaseGrant, (State, Decision));

fn grant(
    spec: &Spec,
    st: &State,
    want: u64,
    unit: u64,
    held: Option<LeaseReturn>,
    decided: &Decision,
    now: u64,
) -> Option<Granted> {
    let shortest = shortest_window_ms(spec);
    let ttl = match spec.algorithm {
        Algorithm::SlidingWindow => {
            let end = (now - now % shortest).saturating_add(shortest);
            end.saturating_sub(now)
                .saturating_sub(margin_ms(shortest))
                .min(MAX_LEASE_MS)
        }
        Algorithm::TokenBucket => shortest.min(MAX_LEASE_MS),
    };
    if ttl < MIN_LEASE_MS {
        return None;
    }
    let holders = st
        .leases
        .iter()
        .filter(|l| l.expires_at > now && Some(l.id) != held.map(|h| h.id))
        .count() as u64
        + 1;
    let share = decided
        .windows
        .iter()
        .map(|w| w.remaining / (2 * holders))
        .min()
        .unwrap_or(0);
    // Whole requests only: a lease smaller than one request's cost is of no use.
    let permits = want.min(share).min(MAX_BATCH) / unit * unit;
    if permits == 0 {
        return None;
    }
    let (mut after, decision) = decide_reserved(spec, st, Op::Check, permits, reserved(st), now);
    if !decision.allowed {
        return None;
    }
    let id = st.last_lease.wrapping_add(1);
    after.last_lease = id;
    let mut record = LeaseRecord {
        id,
        permits,
        granted_at: now,
        expires_at: now.saturating_add(ttl),
    };
    // Fold the lease the isolate still holds into the new one: one record per isolate (so
    // `holders` counts isolates), its permits reserved and spendable until the new end. Only a
    // live lease charged to the same fixed window is folded, so every permit is still spent in
    // the window it was charged to.
    let window = shortest_window_ms(spec);
    let mut folded = false;
    if let Some(pos) = after.leases.iter().position(|l| {
        Some(l.id) == held.map(|h| h.id)
            && l.expires_at > now
            && l.granted_at - l.granted_at % window == now - now % window
    }) {
        let prev = after.leases.remove(pos);
        // What the isolate had not spent when it asked (it may have spent some since: still
        // reserved until the end, so only ever too much is kept, never too little).
        let left = held.map_or(0, |h| h.unused).min(prev.permits);
        record.permits = record.permits.saturating_add(left);
        record.granted_at = prev.granted_at;
        folded = true;
    }
    after.leases.push(record);
    Some((
        LeaseGrant {
            id,
            permits,
            ttl_ms: ttl,
            folded,
            bucket: spec.algorithm == Algorithm::TokenBucket,
        },
        (after, decision),
    ))
}

// ------------------------------------------------------------------------------------------------
// Isolate side

/// What the isolate asks the object (besides the request's own op and cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ask {
    /// Permits wanted for a lease (0: none).
    pub want: u64,
    /// The cost of one request (leases come in multiples of it).
    pub unit: u64,
    /// The lease in hand when the ask was sent, with its permits then left: the object may
    /// fold it into a new batch.
    pub held: Option<LeaseReturn>,
    /// A lease given back.
    pub ret: Option<LeaseReturn>,
    /// When it was sent (isolate ms).
    pub sent_at: u64,
    /// The key's configuration generation when it was sent ([`LeaseTable::plan_for`]): a lease
    /// granted for an older configuration is not spent.
    pub gen: u64,
}

impl Ask {
    /// The request to send the object for this ask, with the request's own `op` and `cost` (a
    /// background refill sends `check` with cost 0).
    pub fn request(&self, spec: &Spec, op: Op, cost: u64) -> CheckRequest {
        CheckRequest {
            spec: spec.clone(),
            cost,
            op,
            want: self.want,
            ret: self.ret,
            unit: self.unit,
            held: self.held,
        }
    }
}

/// How to decide one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Admitted from the lease in hand, no round trip. `refill`: also ask for the next batch in
    /// the background (a `check` of cost 0).
    Local {
        decision: Decision,
        refill: Option<Ask>,
    },
    /// Ask the object (and wait): the lease does not cover the request.
    Remote(Ask),
}

/// Requests per second of one key in this isolate: a two-bucket sliding estimate over 1 s.
#[derive(Debug, Clone, Copy, Default)]
struct Meter {
    start: u64,
    prev: u64,
    cur: u64,
}

impl Meter {
    fn hit(&mut self, now: u64) {
        let start = now - now % 1000;
        if start != self.start {
            self.prev = if start == self.start.saturating_add(1000) {
                self.cur
            } else {
                0
            };
            self.cur = 0;
            self.start = start;
        }
        self.cur = self.cur.saturating_add(1);
    }

    fn per_second(&self, now: u64) -> u64 {
        let elapsed = now.saturating_sub(self.start).min(1000);
        (self.prev.saturating_mul(1000 - elapsed))
            .div_ceil(1000)
            .saturating_add(self.cur)
    }
}

/// One key's lease in this isolate.
#[derive(Debug, Clone, Default)]
struct Held {
    /// The lease in hand (`permits` may be 0).
    id: u64,
    permits: u64,
    /// Size of the last batch granted.
    batch: u64,
    /// When the lease ends (isolate ms; 0: none).
    expires_at: u64,
    /// The object's last answer (its windows after its charges) and when it came.
    snapshot: Option<Decision>,
    snapshot_at: u64,
    /// The lease holds token-bucket tokens ([`LeaseGrant::bucket`]).
    bucket: bool,
    /// An ask for a batch is on its way (one at a time per key).
    in_flight: bool,
    /// A lease to give back with the next ask.
    to_return: Option<LeaseReturn>,
    meter: Meter,
    /// Round trip to the object (ms), smoothed.
    rtt_ms: u64,
    /// The policy's windows and algorithm the lease in hand was granted for ([`LeaseTable::plan_for`]).
    spec: Option<Spec>,
    /// Bumped at every change of `spec`; `layout_gen`: the generation of the last change of its
    /// windows or algorithm (a lease granted before it cannot be given back: the object would
    /// refund it to windows it was not charged to).
    gen: u64,
    layout_gen: u64,
}

impl Held {
    fn valid(&self, now: u64) -> bool {
        now < self.expires_at
    }

    /// The configuration now in force for this key. When it changed (a new configuration version
    /// changed the limits, a burst, the windows or the algorithm), the lease in hand ends: its
    /// permits were granted under the old limits, so spending them could admit past the new ones.
    /// With the same windows and algorithm it is given back with the next ask (the object
    /// refunds it, then decides with the new limits); otherwise it is dropped, as if spent (it can
    /// only under-admit, by at most its size, as a lease of an evicted isolate).
    fn respec(&mut self, spec: &Spec, now: u64) {
        let same_layout = match &self.spec {
            Some(old) if old == spec => return,
            None => {
                self.spec = Some(spec.clone());
                return;
            }
            Some(old) => {
                old.algorithm == spec.algorithm
                    && old
                        .limits
                        .iter()
                        .map(|l| l.window)
                        .eq(spec.limits.iter().map(|l| l.window))
            }
        };
        self.gen = self.gen.saturating_add(1);
        if same_layout {
            if self.valid(now) && self.permits > 0 {
                self.to_return = Some(LeaseReturn {
                    id: self.id,
                    unused: self.permits,
                });
            }
        } else {
            self.layout_gen = self.gen;
            self.to_return = None;
        }
        self.permits = 0;
        self.expires_at = 0;
        self.batch = 0;
        self.snapshot = None;
        self.spec = Some(spec.clone());
    }

    /// The lease in hand, for an ask.
    fn in_hand(&self, now: u64) -> Option<LeaseReturn> {
        (self.valid(now) && self.permits > 0).then_some(LeaseReturn {
            id: self.id,
            unused: self.permits,
        })
    }

    /// Drop an ended lease (its unused permits are given back with the next ask).
    fn expire(&mut self, now: u64) {
        if self.expires_at != 0 && !self.valid(now) {
            if self.permits > 0 {
                self.to_return = Some(LeaseReturn {
                    id: self.id,
                    unused: self.permits,
                });
            }
            self.permits = 0;
            self.expires_at = 0;
        }
    }

    /// Permits to ask for: the recent rate over the horizon, in cost units.
    fn want(&self, cost: u64, now: u64) -> u64 {
        let horizon = MIN_HORIZON_MS.max(self.rtt_ms.saturating_mul(4));
        let requests = self
            .meter
            .per_second(now)
            .saturating_mul(horizon)
            .div_ceil(1000)
            .max(1);
        requests.saturating_mul(cost.max(1)).min(MAX_BATCH)
    }

    /// The decision shown for a request decided here: the object's last view plus what this
    /// isolate still holds. A token bucket's reset (until the bucket is full again) is the
    /// object's less the time the held tokens take to refill (`held × window / limit`), so that
    /// it matches the remaining shown; a sliding window's (the end of the fixed window) does not
    /// depend on the counts.
    fn shown(&self, now: u64) -> Option<Decision> {
        let snap = self.snapshot.as_ref()?;
        let held = if self.valid(now) { self.permits } else { 0 };
        let elapsed = now.saturating_sub(self.snapshot_at);
        let mut d = snap.clone();
        for w in &mut d.windows {
            w.remaining = w.remaining.saturating_add(held);
            let mut reset = w.reset_ms.saturating_sub(elapsed);
            if self.bucket && held > 0 && w.limit > 0 {
                let refill = (held as u128 * w.window.millis() as u128) / w.limit as u128;
                reset = reset.saturating_sub(refill.min(u64::MAX as u128) as u64);
            }
            w.reset_ms = reset;
        }
        Some(d)
    }
}

/// The leases of one isolate, one per counter name, bounded in size.
#[derive(Debug, Clone)]
pub struct LeaseTable {
    held: HashMap<String, Held>,
    max_entries: usize,
}

impl Default for LeaseTable {
    fn default() -> Self {
        LeaseTable::new(super::local::DEFAULT_MAX_ENTRIES)
    }
}

impl LeaseTable {
    pub fn new(max_entries: usize) -> Self {
        LeaseTable {
            held: HashMap::new(),
            max_entries: max_entries.max(1),
        }
    }

    fn entry(&mut self, name: &str, now: u64) -> &mut Held {
        if !self.held.contains_key(name) {
            if self.held.len() >= self.max_entries {
                // Forget keys whose lease has ended and that nobody is asking for; when all are
                // live, forget them all (their permits expire unspent: under-admission only).
                self.held
                    .retain(|_, h| h.in_flight || (h.valid(now) && h.permits > 0));
                if self.held.len() >= self.max_entries {
                    self.held.clear();
                }
            }
            self.held.insert(name.to_string(), Held::default());
        }
        self.held.get_mut(name).expect("inserted above")
    }

    /// Decide how to take `cost` for counter `name` at `now`: from the lease in hand, or by asking
    /// the object. `lease: false` (per-request mode) asks the object every time and never wants a
    /// lease (it still gives back one held from before).
    ///
    /// The key's configuration is taken as unchanged: the gateway calls [`LeaseTable::plan_for`].
    pub fn plan(&mut self, name: &str, cost: u64, lease: bool, now: u64) -> Plan {
        Self::plan_held(self.entry(name, now), cost, lease, now)
    }

    /// [`LeaseTable::plan`] for a policy with this `spec` (windows, limits, algorithm): when the
    /// configuration changed since the lease in hand was granted, that lease ends first (see
    /// `Held::respec`), so every request is decided under the limits now in force.
    pub fn plan_for(&mut self, name: &str, spec: &Spec, cost: u64, lease: bool, now: u64) -> Plan {
        let h = self.entry(name, now);
        h.respec(spec, now);
        Self::plan_held(h, cost, lease, now)
    }

    fn plan_held(h: &mut Held, cost: u64, lease: bool, now: u64) -> Plan {
        h.meter.hit(now);
        h.expire(now);
        if lease && h.valid(now) && h.permits >= cost {
            h.permits -= cost;
            let mut decision = h.shown(now).expect("a lease comes with an answer");
            decision.allowed = true;
            decision.retry_after_ms = None;
            let refill = (!h.in_flight && h.permits.saturating_mul(2) <= h.batch).then(|| {
                h.in_flight = true;
                Ask {
                    want: h.want(cost, now),
                    unit: cost,
                    held: h.in_hand(now),
                    ret: None,
                    sent_at: now,
                    gen: h.gen,
                }
            });
            return Plan::Local { decision, refill };
        }
        // Not covered (per-request mode, or fewer permits than the cost): give back what is left.
        if h.valid(now) && h.permits > 0 {
            h.to_return = Some(LeaseReturn {
                id: h.id,
                unused: h.permits,
            });
            h.permits = 0;
            h.expires_at = 0;
        }
        let want = if lease && !h.in_flight {
            h.in_flight = true;
            h.want(cost, now)
        } else {
            0
        };
        Plan::Remote(Ask {
            want,
            unit: cost,
            held: h.in_hand(now),
            ret: h.to_return.take(),
            sent_at: now,
            gen: h.gen,
        })
    }

    /// The object's answer to `ask`, at `now`. Installs a granted lease (merged with a lease
    /// still in hand). For a request's own ask (`cost` = `Some`), returns the
    /// decision to use: a request the object refused is still admitted when a lease that arrived
    /// meanwhile covers it.
    pub fn answered(
        &mut self,
        name: &str,
        ask: &Ask,
        answer: Answer,
        cost: Option<u64>,
        now: u64,
    ) -> Option<Decision> {
        let h = self.entry(name, now);
        if ask.want > 0 {
            h.in_flight = false;
        }
        let rtt = now.saturating_sub(ask.sent_at);
        h.rtt_ms = if h.rtt_ms == 0 {
            rtt
        } else {
            h.rtt_ms.saturating_mul(3).saturating_add(rtt) / 4
        };
        h.expire(now);
        let Answer { decision, lease } = answer;
        let allowed = decision.allowed;
        if let Some(g) = lease.filter(|_| ask.gen != h.gen) {
            // Granted for a configuration replaced since the ask was sent: not spent (given back
            // when the windows are the same, else dropped; see `Held::respec`).
            if ask.gen >= h.layout_gen {
                h.to_return = Some(LeaseReturn {
                    id: g.id,
                    unused: g.permits,
                });
            }
        } else if let Some(g) = lease {
            let expires_at = ask.sent_at.saturating_add(g.ttl_ms);
            if expires_at > now {
                let in_hand = h.valid(now) && h.permits > 0;
                if in_hand && g.folded && ask.held.map(|l| l.id) == Some(h.id) {
                    // The object folded the lease in hand into this one: all of it lasts as long.
                    h.permits = h.permits.saturating_add(g.permits);
                    h.expires_at = expires_at;
                } else if in_hand {
                    // Two leases charged to the same window: keep spending the old permits until
                    // the earlier of the two ends (a token bucket releases the old reservation at
                    // its end).
                    h.permits = h.permits.saturating_add(g.permits);
                    h.expires_at = h.expires_at.min(expires_at);
                } else {
                    h.permits = g.permits;
                    h.expires_at = expires_at;
                }
                h.id = g.id;
                h.batch = g.permits;
                h.bucket = g.bucket;
            } else {
                h.to_return = Some(LeaseReturn {
                    id: g.id,
                    unused: g.permits,
                });
            }
        }
        h.snapshot = Some(decision);
        h.snapshot_at = now;
        let cost = cost?;
        if !allowed && h.valid(now) && h.permits >= cost {
            h.permits -= cost;
            let mut d = h.shown(now).expect("set above");
            d.allowed = true;
            d.retry_after_ms = None;
            return Some(d);
        }
        let mut d = h.shown(now).expect("set above");
        d.allowed = allowed;
        if allowed {
            d.retry_after_ms = None;
        } else {
            d.retry_after_ms = h.snapshot.as_ref().and_then(|s| s.retry_after_ms);
        }
        Some(d)
    }

    /// The ask got no answer (error, timeout): allow another.
    pub fn failed(&mut self, name: &str, ask: &Ask) {
        if let Some(h) = self.held.get_mut(name) {
            if ask.want > 0 {
                h.in_flight = false;
            }
        }
    }

    /// Permits in hand for `name` (for tests and the simulation).
    pub fn permits(&self, name: &str, now: u64) -> u64 {
        self.held
            .get(name)
            .filter(|h| h.valid(now))
            .map_or(0, |h| h.permits)
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}
