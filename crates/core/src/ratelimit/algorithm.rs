//! The counting algorithms, as pure functions of `(spec, state, cost, now) -> (state, decision)`.
//!
//! Both the Durable Object (exact, one per counted key) and the `local` in-isolate policy call
//! [`decide`]; neither does any arithmetic of its own. Time is milliseconds since the epoch, passed in.
//!
//! Guarantees (documented in docs/rate-limiting.md):
//! - Check and increment are one step: a request is admitted only when every window of the policy
//!   has room for its whole cost, and then every window is charged; a refused request charges nothing.
//! - `remaining` is computed with saturating arithmetic and is never negative.
//! - Sliding window: in every fixed window aligned on the epoch (e.g. each UTC minute) at most
//!   `limit` is admitted, and across a boundary the previous window's count is weighted by how much of
//!   it still overlaps the sliding window (rounded up, so the estimate never under-counts).
//! - Token bucket: at most `burst` (the bucket size) at once, refilled continuously at
//!   `limit / window`; over any interval `t` at most `burst + limit * t / window` is admitted.
//! - Token budgets (`count: tokens`): the cost is only known after the answer, so the request is
//!   [`peek`]ed first (refused while nothing is left, nothing charged) and the real count is then
//!   [`charge`]d unconditionally. A charge may take a window over its limit (the bucket into debt);
//!   later requests are refused until enough of the window has passed (the bucket has refilled).

use serde::{Deserialize, Serialize};

/// A counting window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Second,
    Minute,
    Hour,
    Day,
    /// 30 days (a fixed length, not a calendar month).
    Month,
    /// 365 days (a fixed length, not a calendar year), as Kong's `year`.
    Year,
}

impl Window {
    pub const ALL: [Window; 6] = [
        Window::Second,
        Window::Minute,
        Window::Hour,
        Window::Day,
        Window::Month,
        Window::Year,
    ];

    /// Length in milliseconds.
    pub fn millis(self) -> u64 {
        match self {
            Window::Second => 1_000,
            Window::Minute => 60_000,
            Window::Hour => 3_600_000,
            Window::Day => 86_400_000,
            Window::Month => 30 * 86_400_000,
            Window::Year => 365 * 86_400_000,
        }
    }

    /// The config field name (`minute`).
    pub fn name(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
            Window::Year => "year",
        }
    }

    /// As used in `X-RateLimit-Limit-Minute`.
    pub fn title(self) -> &'static str {
        match self {
            Window::Second => "Second",
            Window::Minute => "Minute",
            Window::Hour => "Hour",
            Window::Day => "Day",
            Window::Month => "Month",
            Window::Year => "Year",
        }
    }
}

/// How requests are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "RateLimitAlgorithm")
)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Two fixed windows, the previous one weighted by its overlap with the sliding window.
    #[default]
    SlidingWindow,
    /// A bucket of `burst` tokens refilled at `limit` per window.
    TokenBucket,
}

/// One window of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub window: Window,
    /// Requests (cost units) per window.
    pub limit: u64,
    /// Token bucket size; equal to `limit` for the sliding window.
    pub burst: u64,
}

/// What to count: the algorithm and every window, checked together. This is also what the gateway
/// sends the Durable Object with each check, so the object needs no configuration of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub algorithm: Algorithm,
    pub limits: Vec<Limit>,
}

/// The stored state of one counted key (compact field names: it is stored once per key).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "a")]
    pub algorithm: Algorithm,
    #[serde(rename = "w")]
    pub windows: Vec<WindowState>,
    /// When this state stops mattering (ms since the epoch): from then on it equals a fresh state,
    /// so it can be deleted.
    #[serde(rename = "x")]
    pub expires_at: u64,
    /// Permit leases granted and not yet returned or expired (see [`super::lease`]).
    #[serde(rename = "l", default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<super::lease::LeaseRecord>,
    /// The id of the last lease granted.
    #[serde(rename = "n", default, skip_serializing_if = "is_zero")]
    pub last_lease: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Per-window counters.
///
/// Sliding window: `t` = start of the current fixed window, `a` = count in the previous window,
/// `b` = count in the current window. Token bucket: `t` = time of the last refill, the level in
/// units of `1/window_ms` token (so that refilling is exact integer arithmetic) is
/// `(c << 64 | a) - (d << 64 | b)`: `a`/`c` a positive level, `b`/`d` a debt after a forced charge.
/// The high words are needed from a day window on: a full bucket of 10^12 tokens a year is
/// 3.2 × 10^22 units, beyond `u64`. Use [`WindowState::level`] and [`WindowState::set_level`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowState {
    pub w: Window,
    pub t: u64,
    pub a: u64,
    #[serde(default)]
    pub b: u64,
    /// Token bucket: high 64 bits of the positive level (absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub c: u64,
    /// Token bucket: high 64 bits of the debt (absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub d: u64,
}

impl WindowState {
    /// Token bucket level in units of `1/window_ms` token (negative: a debt), saturating at the
    /// bounds of `i128`.
    pub fn level(&self) -> i128 {
        let wide =
            |hi: u64, lo: u64| i128::try_from((hi as u128) << 64 | lo as u128).unwrap_or(i128::MAX);
        wide(self.c, self.a).saturating_sub(wide(self.d, self.b))
    }

    /// Store a token bucket level (see [`WindowState::level`]).
    pub fn set_level(&mut self, level: i128) {
        let m = level.unsigned_abs();
        let (hi, lo) = ((m >> 64) as u64, m as u64);
        if level >= 0 {
            (self.a, self.c, self.b, self.d) = (lo, hi, 0, 0);
        } else {
            (self.a, self.c, self.b, self.d) = (0, 0, lo, hi);
        }
    }
}

/// The status of one window after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowStatus {
    pub window: Window,
    pub limit: u64,
    /// What is left after this request (never negative).
    pub remaining: u64,
    /// Milliseconds until the window resets: the end of the current fixed window (sliding window) or
    /// until the bucket is full again (token bucket).
    pub reset_ms: u64,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    pub windows: Vec<WindowStatus>,
    /// When refused: milliseconds until a request of the same cost would be admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl Decision {
    /// The most restrictive window (least remaining; on a tie the longer window, as Kong), for
    /// the `RateLimit-*` headers.
    pub fn tightest(&self) -> Option<&WindowStatus> {
        self.windows.iter().min_by(|x, y| {
            x.remaining
                .cmp(&y.remaining)
                .then(y.window.cmp(&x.window))
                .then(y.reset_ms.cmp(&x.reset_ms))
        })
    }
}

fn ceil_div(n: u128, d: u128) -> u128 {
    if d == 0 {
        return 0;
    }
    n.div_ceil(d)
}

fn clamp_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// One window's view at `now`, before charging.
struct Eval {
    /// The window as it stands if the cost is charged (`remaining` after it).
    status: WindowStatus,
    /// The window as it stands if nothing is charged.
    status_uncharged: WindowStatus,
    /// Whether `cost` fits.
    fits: bool,
    /// Milliseconds until `cost` fits (`None`: never, the cost exceeds the window).
    wait_ms: Option<u64>,
    /// The state if the request is charged, and if it is not.
    charged: WindowState,
    uncharged: WindowState,
    /// When the state (charged / uncharged) becomes equal to a fresh one.
    expires_charged: u64,
    expires_uncharged: u64,
}

/// Sliding-window estimate: `ceil(prev * (W - elapsed) / W) + curr`.
fn sliding_estimate(prev: u64, curr: u64, elapsed: u64, w: u64) -> u128 {
    let left = w.saturating_sub(elapsed) as u128;
    ceil_div(prev as u128 * left, w as u128) + curr as u128
}

/// Elapsed time in a window at which `ceil(prev * (W - e) / W) <= room` first holds.
fn sliding_needed(prev: u64, room: u64, w: u64) -> u64 {
    if prev <= room {
        return 0;
    }
    w - clamp_u64(room as u128 * w as u128 / prev as u128)
}

fn eval_sliding(limit: &Limit, old: Option<&WindowState>, cost: u64, now: u64) -> Eval {
    let w = limit.window.millis();
    let start = now - now % w;
    let (start, prev, curr) = match old {
        Some(s) if s.t == start => (start, s.a, s.b),
        Some(s) if s.t.saturating_add(w) == start => (start, s.b, 0),
        // The clock went backwards (another isolate's clock, a restore): keep counting where we were.
        Some(s) if s.t > start => (s.t, s.a, s.b),
        _ => (start, 0, 0),
    };
    let elapsed = now.saturating_sub(start);
    let estimate = sliding_estimate(prev, curr, elapsed, w);
    let fits = estimate + cost as u128 <= limit.limit as u128;
    let wait_ms = if fits {
        Some(0)
    } else if cost > limit.limit {
        None
    } else if curr.saturating_add(cost) <= limit.limit {
        let room = limit.limit - cost - curr;
        Some(sliding_needed(prev, room, w).saturating_sub(elapsed).max(1))
    } else {
        let room = limit.limit - cost;
        Some(w.saturating_sub(elapsed) + sliding_needed(curr, room, w))
    };
    let uncharged = WindowState {
        w: limit.window,
        t: start,
        a: prev,
        b: curr,
        c: 0,
        d: 0,
    };
    let charged = WindowState {
        b: curr.saturating_add(cost),
        ..uncharged
    };
    let expiry = |s: &WindowState| {
        if s.a == 0 && s.b == 0 {
            0
        } else {
            s.t.saturating_add(2 * w)
        }
    };
    let status = |used: u128| WindowStatus {
        window: limit.window,
        limit: limit.limit,
        remaining: clamp_u64((limit.limit as u128).saturating_sub(used)),
        reset_ms: start.saturating_add(w).saturating_sub(now),
    };
    Eval {
        status: status(estimate + cost as u128),
        status_uncharged: status(estimate),
        fits,
        wait_ms,
        expires_charged: expiry(&charged),
        expires_uncharged: expiry(&uncharged),
        charged,
        uncharged,
    }
}

fn eval_bucket(
    limit: &Limit,
    old: Option<&WindowState>,
    cost: u64,
    reserved: u64,
    now: u64,
) -> Eval {
    // Every quantity below is in units of `1/w` token. With limits up to 10^12 and windows up to
    // a year they reach 3.2 × 10^22 (beyond `u64`); `i128` holds them, and every operation
    // saturates so that no input (a state or spec from storage, a huge elapsed time, a debt from
    // repeated forced charges) can overflow.
    let w = limit.window.millis() as i128;
    let rate = limit.limit as i128; // units per millisecond
                                    // Tokens held by outstanding leases are not in the bucket but count against its size: the
                                    // level refills only up to `burst - reserved` (see `lease`).
    let capacity = (limit.burst.saturating_sub(reserved) as i128).saturating_mul(w);
    // The level may be negative (a debt) after a forced charge.
    let (t, level) = match old {
        // Refill since the last update; a clock that went backwards refills nothing.
        Some(s) if s.t <= now => {
            let refill = ((now - s.t) as i128).saturating_mul(rate);
            (now, s.level().saturating_add(refill).min(capacity))
        }
        Some(s) => (s.t, s.level().min(capacity)),
        None => (now, capacity),
    };
    let need = (cost as i128).saturating_mul(w);
    let fits = level >= need;
    let wait_ms = if fits {
        Some(0)
    } else if need > capacity || rate == 0 {
        None
    } else {
        Some(clamp_u64(ceil_div(need.saturating_sub(level) as u128, rate as u128)).max(1))
    };
    let state = |level: i128| {
        let mut s = WindowState {
            w: limit.window,
            t,
            a: 0,
            b: 0,
            c: 0,
            d: 0,
        };
        s.set_level(level);
        s
    };
    let full_at = |level: i128| {
        t.saturating_add(clamp_u64(ceil_div(
            capacity.saturating_sub(level).max(0) as u128,
            rate.max(1) as u128,
        )))
    };
    // The reset shown is until the level reaches the whole `burst`, reservations or not: the
    // time until `remaining` (which leaves reserved tokens out) is back at the burst. An isolate
    // holding leased tokens subtracts their refill time (`lease`), as it adds them to `remaining`.
    let full_burst = (limit.burst as i128).saturating_mul(w);
    let status = |level: i128| WindowStatus {
        window: limit.window,
        limit: limit.limit,
        remaining: clamp_u64((level.max(0) / w) as u128),
        reset_ms: t
            .saturating_add(clamp_u64(ceil_div(
                full_burst.saturating_sub(level).max(0) as u128,
                rate.max(1) as u128,
            )))
            .saturating_sub(now),
    };
    let charged = level.saturating_sub(need);
    Eval {
        status: status(charged),
        status_uncharged: status(level),
        fits,
        wait_ms,
        charged: state(charged),
        uncharged: state(level),
        expires_charged: full_at(charged),
        expires_uncharged: full_at(level),
    }
}

/// What a call to the counter does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Check and charge in one step: admitted (and charged) only if every window has room.
    #[default]
    Check,
    /// Check only: would `cost` be admitted now? Nothing is charged; `remaining` is what is left
    /// before this request.
    Peek,
    /// Charge `cost` whatever the windows say (always "allowed"; may go over the limit, after which
    /// requests are refused until enough of the window has passed or the bucket refilled).
    Charge,
}

/// Check `cost` against every window of `spec` at `now`, and charge it to all of them if (and only
/// if) every window has room. Returns the new state and the decision.
///
/// A state written by the other algorithm is ignored (counting restarts); windows the spec no
/// longer has are dropped.
pub fn decide(spec: &Spec, state: &State, cost: u64, now: u64) -> (State, Decision) {
    decide_op(spec, state, Op::Check, cost, now)
}

/// [`decide`] without charging: whether `cost` would fit now. The returned state equals the given
/// one brought up to `now` (it need not be stored).
pub fn peek(spec: &Spec, state: &State, cost: u64, now: u64) -> (State, Decision) {
    decide_op(spec, state, Op::Peek, cost, now)
}

/// Charge `cost` unconditionally (the real token count of an answer, known only afterwards).
pub fn charge(spec: &Spec, state: &State, cost: u64, now: u64) -> (State, Decision) {
    decide_op(spec, state, Op::Charge, cost, now)
}

/// One operation on one key's counts: [`Op::Check`], [`Op::Peek`] or [`Op::Charge`].
pub fn decide_op(spec: &Spec, state: &State, op: Op, cost: u64, now: u64) -> (State, Decision) {
    decide_reserved(spec, state, op, cost, 0, now)
}

/// [`decide_op`] with `reserved` units of every token bucket held by outstanding leases (the
/// bucket then refills only up to `burst - reserved`). Leases in `state` are carried over untouched.
pub(crate) fn decide_reserved(
    spec: &Spec,
    state: &State,
    op: Op,
    cost: u64,
    reserved: u64,
    now: u64,
) -> (State, Decision) {
    let same_algorithm = state.algorithm == spec.algorithm;
    let evals: Vec<Eval> = spec
        .limits
        .iter()
        .map(|limit| {
            let old = same_algorithm
                .then(|| state.windows.iter().find(|s| s.w == limit.window))
                .flatten();
            match spec.algorithm {
                Algorithm::SlidingWindow => eval_sliding(limit, old, cost, now),
                Algorithm::TokenBucket => eval_bucket(limit, old, cost, reserved, now),
            }
        })
        .collect();
    let fits = evals.iter().all(|e| e.fits);
    let allowed = fits || op == Op::Charge;
    let charged = match op {
        Op::Check => fits,
        Op::Peek => false,
        Op::Charge => true,
    };
    let retry_after_ms = if allowed {
        None
    } else {
        // Estimates only fall as time passes (nothing is admitted meanwhile), so the request fits
        // once the slowest window has room. A cost larger than a window never fits: suggest that
        // window's length.
        evals
            .iter()
            .filter(|e| !e.fits)
            .map(|e| e.wait_ms.unwrap_or(e.status.window.millis()))
            .max()
    };
    let mut windows = Vec::with_capacity(evals.len());
    let mut statuses = Vec::with_capacity(evals.len());
    let mut expires_at = 0;
    for e in evals {
        let (s, x, status) = if charged {
            (e.charged, e.expires_charged, e.status)
        } else {
            // Refused (here or by another window) or only peeking: reported uncharged.
            (e.uncharged, e.expires_uncharged, e.status_uncharged)
        };
        windows.push(s);
        expires_at = expires_at.max(x);
        statuses.push(status);
    }
    (
        State {
            algorithm: spec.algorithm,
            windows,
            expires_at,
            leases: state.leases.clone(),
            last_lease: state.last_lease,
        },
        Decision {
            allowed,
            windows: statuses,
            retry_after_ms,
        },
    )
}

impl State {
    /// True when the state no longer differs from a fresh one at `now` (it can be deleted).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at <= now
    }
}
