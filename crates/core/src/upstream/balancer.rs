//! The per-service, per-isolate balancing state and the choice of a target.

use super::breaker::{Breaker, Outcome};
use super::hash::rendezvous;
use super::{Policy, Target};
use crate::config::Algorithm;

/// What [`Balancer::pick`] chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    Target(usize),
    /// Every target with a weight is out (its breaker open). `retry_at`: the earliest time (ms) at
    /// which one of them takes a request again (its cool-down ends), when one has a weight.
    NoneHealthy {
        retry_at: Option<u64>,
    },
}

/// Mutable state of one service in one isolate: smooth weighted round-robin counters, requests in
/// flight and a breaker per target.
#[derive(Debug, Clone)]
pub struct Balancer {
    current: Vec<i64>,
    in_flight: Vec<u32>,
    pub breakers: Vec<Breaker>,
    /// Turns for breaking ties between equally loaded targets (least-connections).
    turn: usize,
}

impl Balancer {
    pub fn new(targets: usize) -> Balancer {
        Balancer {
            current: vec![0; targets],
            in_flight: vec![0; targets],
            breakers: vec![Breaker::default(); targets],
            turn: 0,
        }
    }

    pub fn in_flight(&self, i: usize) -> u32 {
        self.in_flight.get(i).copied().unwrap_or(0)
    }

    fn available(&self, targets: &[Target], policy: &Policy, i: usize, now: u64) -> bool {
        targets[i].weight > 0
            && match &policy.breaker {
                None => true,
                Some(cfg) => self.breakers[i].available(now, cfg),
            }
    }

    /// Choose a target for a request and count it in flight (report its end with
    /// [`Balancer::finished`]). `key`: the request's hash key (consistent hashing); `tried`: targets
    /// already tried for this request, avoided while another is available.
    pub fn pick(
        &mut self,
        targets: &[Target],
        policy: &Policy,
        key: Option<u64>,
        tried: &[usize],
        now: u64,
    ) -> Pick {
        let n = targets.len().min(self.current.len());
        let up: Vec<bool> = (0..n)
            .map(|i| self.available(targets, policy, i, now))
            .collect();
        let fresh: Vec<bool> = (0..n).map(|i| up[i] && !tried.contains(&i)).collect();
        let allowed = if fresh.iter().any(|b| *b) { fresh } else { up };
        if !allowed.iter().any(|b| *b) {
            return Pick::NoneHealthy {
                retry_at: self.retry_at(targets, policy, now),
            };
        }
        let chosen = match (policy.algorithm, key) {
            (Algorithm::ConsistentHashing, Some(key)) => rendezvous(
                key,
                (0..n)
                    .filter(|i| allowed[*i])
                    .map(|i| (i, targets[i].weight, targets[i].id_hash)),
            ),
            (Algorithm::LeastConnections, _) => self.least_loaded(targets, &allowed),
            _ => self.round_robin(targets, &allowed),
        };
        let Some(i) = chosen else {
            return Pick::NoneHealthy {
                retry_at: self.retry_at(targets, policy, now),
            };
        };
        if policy.breaker.is_some() {
            self.breakers[i].take(now);
        }
        self.in_flight[i] += 1;
        Pick::Target(i)
    }

    /// When the first target with a weight becomes available again (`None` without a breaker or a
    /// weighted target).
    fn retry_at(&self, targets: &[Target], policy: &Policy, now: u64) -> Option<u64> {
        let cfg = policy.breaker.as_ref()?;
        let n = targets.len().min(self.breakers.len());
        (0..n)
            .filter(|i| targets[*i].weight > 0)
            .map(|i| self.breakers[i].available_at(now, cfg))
            .min()
    }

    /// Smooth weighted round-robin (nginx's): every allowed target gains its weight, the richest is
    /// chosen and pays the total. Over any run of `total` picks each target gets exactly its share.
    fn round_robin(&mut self, targets: &[Target], allowed: &[bool]) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, ok) in allowed.iter().enumerate() {
            if !ok {
                continue;
            }
            let w = i64::from(targets[i].weight);
            self.current[i] += w;
            total += w;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        self.current[b] -= total;
        Some(b)
    }

    /// Fewest requests in flight relative to weight; ties are taken in turn.
    fn least_loaded(&mut self, targets: &[Target], allowed: &[bool]) -> Option<usize> {
        let n = allowed.len();
        self.turn = self.turn.wrapping_add(1);
        let mut best: Option<usize> = None;
        for k in 0..n {
            let i = (self.turn + k) % n;
            if !allowed[i] {
                continue;
            }
            let better = match best {
                None => true,
                // in_flight[i] / w[i] < in_flight[b] / w[b]
                Some(b) => {
                    u64::from(self.in_flight[i]) * u64::from(targets[b].weight)
                        < u64::from(self.in_flight[b]) * u64::from(targets[i].weight)
                }
            };
            if better {
                best = Some(i);
            }
        }
        best
    }

    /// A request to target `i` ended with `outcome` (response headers, failure or timeout). Returns
    /// whether its health changed (for the log).
    pub fn finished(&mut self, i: usize, outcome: Outcome, policy: &Policy, now: u64) -> bool {
        if let Some(n) = self.in_flight.get_mut(i) {
            *n = n.saturating_sub(1);
        }
        match (&policy.breaker, self.breakers.get_mut(i)) {
            (Some(cfg), Some(b)) => b.report(outcome, now, cfg).is_some(),
            _ => false,
        }
    }
}
