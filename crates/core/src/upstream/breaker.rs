//! Passive health checks as a circuit breaker per target.
//!
//! Closed: traffic flows; failures of each kind (connection failures, timeouts, responses with an
//! unhealthy status) are counted within `window_ms`, and reaching a kind's threshold opens the
//! breaker. Open: no traffic for `cooldown_ms`. Half-open: one request at a time is let through;
//! `successes` successful ones close the breaker, one counted failure opens it again. A trial
//! request that never reports back is forgotten after `cooldown_ms`.

use crate::config::PassiveHealthcheck;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    pub http_failures: u32,
    pub tcp_failures: u32,
    pub timeouts: u32,
    pub http_statuses: Vec<u16>,
    pub successes: u32,
    pub window_ms: u64,
    pub cooldown_ms: u64,
}

impl BreakerConfig {
    /// `None` when every threshold is 0 (health checks off, Kong's default).
    pub fn of(p: &PassiveHealthcheck) -> Option<BreakerConfig> {
        let u = &p.unhealthy;
        if u.http_failures == 0 && u.tcp_failures == 0 && u.timeouts == 0 {
            return None;
        }
        let small = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Some(BreakerConfig {
            http_failures: small(u.http_failures),
            tcp_failures: small(u.tcp_failures),
            timeouts: small(u.timeouts),
            http_statuses: u.http_statuses.clone(),
            successes: small(p.healthy.successes).max(1),
            window_ms: p.window_ms,
            cooldown_ms: p.cooldown_ms,
        })
    }
}

/// What became of one request to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The origin answered with this status.
    Status(u16),
    /// No response: the connection failed or was dropped.
    ConnectFailure,
    /// No response headers within the timeout.
    Timeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open {
        until: u64,
    },
    HalfOpen {
        /// When the trial request in flight started, if one is.
        probing_since: Option<u64>,
        successes: u32,
    },
}

#[derive(Debug, Clone)]
pub struct Breaker {
    pub state: BreakerState,
    /// Times of recent failures, per kind: http, tcp, timeouts.
    failures: [Vec<u64>; 3],
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            state: BreakerState::Closed,
            failures: Default::default(),
        }
    }
}

impl Breaker {
    /// Whether a request may go to the target now.
    pub fn available(&self, now: u64, cfg: &BreakerConfig) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open { until } => now >= until,
            BreakerState::HalfOpen {
                probing_since: Some(t),
                ..
            } => now >= t.saturating_add(cfg.cooldown_ms),
            BreakerState::HalfOpen {
                probing_since: None,
                ..
            } => true,
        }
    }

    /// The earliest time, not before `now`, at which [`Breaker::available`] says yes.
    pub fn available_at(&self, now: u64, cfg: &BreakerConfig) -> u64 {
        let at = match self.state {
            BreakerState::Closed
            | BreakerState::HalfOpen {
                probing_since: None,
                ..
            } => now,
            BreakerState::Open { until } => until,
            BreakerState::HalfOpen {
                probing_since: Some(t),
                ..
            } => t.saturating_add(cfg.cooldown_ms),
        };
        at.max(now)
    }

    /// A request is sent to the target (after [`Breaker::available`] said yes).
    pub fn take(&mut self, now: u64) {
        match self.state {
            BreakerState::Closed => {}
            BreakerState::Open { .. } => {
                self.state = BreakerState::HalfOpen {
                    probing_since: Some(now),
                    successes: 0,
                }
            }
            BreakerState::HalfOpen {
                ref mut probing_since,
                ..
            } => *probing_since = Some(now),
        }
    }

    /// The failure kind an outcome counts as (index into `failures`) and its threshold, or `None`
    /// when it is not a counted failure.
    fn failure(outcome: Outcome, cfg: &BreakerConfig) -> Option<(usize, u32)> {
        let (kind, threshold) = match outcome {
            Outcome::Status(s) if cfg.http_statuses.contains(&s) => (0, cfg.http_failures),
            Outcome::Status(_) => return None,
            Outcome::ConnectFailure => (1, cfg.tcp_failures),
            Outcome::Timeout => (2, cfg.timeouts),
        };
        (threshold > 0).then_some((kind, threshold))
    }

    /// Report what a request to the target became. Returns the new state when it changed.
    pub fn report(
        &mut self,
        outcome: Outcome,
        now: u64,
        cfg: &BreakerConfig,
    ) -> Option<&BreakerState> {
        let failure = Self::failure(outcome, cfg);
        let success = matches!(outcome, Outcome::Status(_)) && failure.is_none();
        match (&mut self.state, failure) {
            (BreakerState::Closed, Some((kind, threshold))) => {
                let list = &mut self.failures[kind];
                list.retain(|t| now.saturating_sub(*t) < cfg.window_ms);
                list.push(now);
                if list.len() >= threshold as usize {
                    self.open(now, cfg);
                    return Some(&self.state);
                }
                None
            }
            (BreakerState::HalfOpen { .. }, Some(_)) => {
                self.open(now, cfg);
                Some(&self.state)
            }
            (
                BreakerState::HalfOpen {
                    probing_since,
                    successes,
                },
                None,
            ) => {
                *probing_since = None;
                if success {
                    *successes += 1;
                    if *successes >= cfg.successes {
                        self.state = BreakerState::Closed;
                        return Some(&self.state);
                    }
                }
                None
            }
            _ => None,
        }
    }

    fn open(&mut self, now: u64, cfg: &BreakerConfig) {
        self.state = BreakerState::Open {
            until: now.saturating_add(cfg.cooldown_ms),
        };
        for list in &mut self.failures {
            list.clear();
        }
    }
}
