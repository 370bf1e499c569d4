//! A pool of servers and how one is chosen for an attempt (SPEC §3).
//!
//! [`Pool::choose`] runs the whole selection: the balancer's pick among eligible servers
//! (healthy, breaker available, room under `max_conns`, not yet tried), then the breaker's
//! admission, which can still refuse (a half-open breaker whose trial slots another thread just
//! took); a refused server is set aside and the pick runs again. [`Pool::record`] feeds an
//! attempt's outcome to the server's breaker and counters. Breaker transitions are logged and
//! counted here, wherever they happen.
//!
//! The pool's live state ([`PoolStats`]: requests and retries in flight for the retry budget,
//! and the pool's counters) is kept across reloads by pool name.

use super::balance::{Balancer, PickInput};
use super::breaker::{Admission, BreakerState, Transition};
use super::counters::{Histogram, RetryReasons, StatusCounts};
use super::server::{InFlightGuard, Server, ServerStats};
use super::shard::Count;
use super::tried::Tried;
use crate::config::{Outcome, Upstream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A pool as the runtime uses it: its configuration, its servers with their live state, its
/// balancer and its live pool state.
#[derive(Debug)]
pub struct Pool {
    pub name: String,
    pub config: Upstream,
    pub servers: Vec<Server>,
    /// Shared with the previous state when the pool's servers and balance did not change, so
    /// a reload does not rebuild a consistent-hash ring (or reset round-robin positions).
    pub balancer: Arc<Balancer>,
    pub stats: Arc<PoolStats>,
}

/// One attempt to one server: it holds the server's in-flight count and, when the breaker is
/// half-open, a trial slot. Dropping an attempt whose outcome was never recorded (the client
/// went away, the request was cancelled) gives the trial slot back.
#[derive(Debug)]
pub struct Attempt {
    server: usize,
    guard: InFlightGuard,
    admission: Admission,
    done: bool,
}

impl Attempt {
    /// The index of the server in its pool.
    pub fn server(&self) -> usize {
        self.server
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.done {
            self.guard.stats().breaker.release(self.admission);
        }
    }
}

/// What [`Pool::choose`] found.
#[derive(Debug)]
pub enum Choice {
    Server(Attempt),
    /// No server can take the request now; the earliest one may in `retry_after`.
    NoServer {
        retry_after: Duration,
    },
}

impl Pool {
    /// The pool for `config`. `previous` is the pool of the same name in the running state;
    /// `carried(addr)` hands over the live state of a server that stays.
    pub fn new(
        config: &Upstream,
        previous: Option<&Pool>,
        mut carried: impl FnMut(&str) -> Option<Arc<ServerStats>>,
    ) -> Pool {
        let servers: Vec<Server> = config
            .servers
            .iter()
            .map(|s| Server {
                config: s.clone(),
                stats: carried(&s.addr).unwrap_or_default(),
            })
            .collect();
        let stats =
            previous.map_or_else(|| Arc::new(PoolStats::default()), |p| Arc::clone(&p.stats));
        let balancer = match previous {
            Some(p) if p.config.balance == config.balance && p.config.servers == config.servers => {
                Arc::clone(&p.balancer)
            }
            _ => Arc::new(Balancer::new(&config.balance, &servers)),
        };
        Pool {
            name: config.name.clone(),
            config: config.clone(),
            servers,
            balancer,
            stats,
        }
    }

    /// Choose a server for the next attempt of a request that has already tried `tried`.
    pub fn choose(&self, now: Instant, hash_key: Option<&[u8]>, tried: &Tried) -> Choice {
        let policy = &self.config.breaker;
        // Servers whose breaker refused the request between the pick and the admission.
        let mut refused = Tried::default();
        loop {
            let eligible = |i: usize| {
                let st = &self.servers[i].stats;
                st.is_healthy() && st.breaker.available(now, policy) && !refused.contains(i)
            };
            let Some((i, guard)) =
                self.balancer
                    .pick(&self.servers, PickInput { hash_key }, tried, &eligible)
            else {
                return Choice::NoServer {
                    retry_after: self.retry_after(now),
                };
            };
            let (admission, transition) = self.servers[i].stats.breaker.admit(now, policy);
            if let Some(t) = transition {
                self.report_transition(i, t);
            }
            match admission {
                Some(admission) => {
                    return Choice::Server(Attempt {
                        server: i,
                        guard,
                        admission,
                        done: false,
                    });
                }
                None => refused.insert(i),
            }
        }
    }

    /// Record the outcome of an attempt, once: the server's counters and its breaker. Returns
    /// false when the attempt's outcome was already recorded.
    pub fn record(&self, attempt: &mut Attempt, outcome: Outcome, now: Instant) -> bool {
        if attempt.done {
            return false;
        }
        attempt.done = true;
        let stats = attempt.guard.stats();
        stats.count_outcome(outcome);
        let policy = &self.config.breaker;
        let failed = policy.on.contains(outcome);
        if let Some(t) = stats.breaker.record(attempt.admission, failed, now, policy) {
            self.report_transition(attempt.server, t);
        }
        true
    }

    /// Whether every server of the pool has an open breaker (a total outage): then the pool
    /// looks for servers that are back ahead of their open periods.
    pub fn in_total_outage(&self, now: Instant) -> bool {
        !self.servers.is_empty() && self.servers.iter().all(|s| s.stats.breaker.is_open(now))
    }

    /// How long until the pool may have a server again: until the earliest breaker
    /// half-opens; else a health-check interval; else one second.
    pub fn retry_after(&self, now: Instant) -> Duration {
        self.servers
            .iter()
            .filter_map(|s| s.stats.breaker.reopens_in(now))
            .min()
            .or_else(|| self.config.health_check.as_ref().map(|h| h.interval))
            .unwrap_or(Duration::from_secs(1))
    }

    /// Log and count a breaker transition (SPEC §3: `warn` on open).
    fn report_transition(&self, server: usize, t: Transition) {
        let s = &self.servers[server];
        let (name, addr) = (self.name.as_str(), s.config.addr.as_str());
        match (t.to, t.open_for) {
            (BreakerState::Open, Some(d)) => {
                tracing::warn!(upstream = name, server = addr, open_for = ?d, "circuit breaker opened");
            }
            (to, _) => tracing::info!(
                upstream = name,
                server = addr,
                state = to.as_str(),
                "circuit breaker changed state"
            ),
        }
        s.stats.count_transition(t.to);
    }
}

/// Live state of a pool, shared across reloads by pool name: requests and retries in flight
/// (for the retry budget) and the pool's counters.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Per thread: every request writes it, a retry decision and a scrape read it.
    requests_in_flight: Count,
    retries_in_flight: AtomicU32,
    /// Requests answered, by the status sent to the client (0: nothing could be sent).
    pub statuses: StatusCounts,
    /// Time from the request head to the end of the response.
    pub duration: Histogram,
    pub retries: RetryReasons,
    retries_over_budget: AtomicU64,
    no_server: AtomicU64,
    /// `buffering` (SPEC §13): [request, response] bodies held whole, and ones that outgrew
    /// the buffer and streamed.
    pub buffered_whole: [AtomicU64; 2],
    pub buffered_overflowed: [AtomicU64; 2],
}

impl PoolStats {
    pub fn requests_in_flight(&self) -> u32 {
        u32::try_from(self.requests_in_flight.sum().max(0)).unwrap_or(u32::MAX)
    }

    /// Count a request routed to this pool until the guard is dropped.
    pub fn begin_request(self: &Arc<Self>) -> InPool {
        self.requests_in_flight.add(1);
        InPool {
            stats: Arc::clone(self),
            retrying: false,
        }
    }

    /// Count a finished request: the status sent to the client, and how long it took.
    pub fn count_request(&self, status: u16, elapsed: Duration) {
        self.statuses.add(status);
        self.duration.observe(elapsed);
    }

    /// A request body (`direction` 0) or an answer (1) held by `buffering`: whole, or
    /// outgrown and streamed.
    pub fn count_buffered(&self, direction: usize, whole: bool) {
        let counts = if whole {
            &self.buffered_whole
        } else {
            &self.buffered_overflowed
        };
        counts[direction.min(1)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_no_server(&self) {
        self.no_server.fetch_add(1, Ordering::Relaxed);
    }

    pub fn no_server(&self) -> u64 {
        self.no_server.load(Ordering::Relaxed)
    }

    pub fn retries_over_budget(&self) -> u64 {
        self.retries_over_budget.load(Ordering::Relaxed)
    }
}

/// The retry budget: may one more retry be in flight, given `retries` retries and `requests`
/// requests in flight in the pool? At most `percent`% of the requests, but always at least 3;
/// 100% means no budget.
pub fn budget_allows(percent: u32, retries: u32, requests: u32) -> bool {
    if percent >= 100 {
        return true;
    }
    let cap = (u64::from(requests) * u64::from(percent) / 100).max(3);
    u64::from(retries) < cap
}

/// A request counted in its pool; once it retries, also counted among the retries in flight.
#[derive(Debug)]
pub struct InPool {
    stats: Arc<PoolStats>,
    retrying: bool,
}

impl InPool {
    /// Take a place among the retries in flight if the budget allows (SPEC §2 `budget_percent`),
    /// counting the retry by its reason, or the refusal. A request that already retries keeps
    /// its place.
    pub fn try_retry(&mut self, budget_percent: u32, reason: Outcome) -> bool {
        let s = &self.stats;
        let allowed = self.retrying
            || s.retries_in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                    budget_allows(budget_percent, r, s.requests_in_flight()).then_some(r + 1)
                })
                .is_ok();
        self.retrying = allowed;
        if allowed {
            s.retries.add(reason);
        } else {
            s.retries_over_budget.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }

    /// Count a retry that the budget does not cap (the request reached no server).
    pub fn count_free_retry(&self, reason: Outcome) {
        self.stats.retries.add(reason);
    }
}

impl Drop for InPool {
    fn drop(&mut self) {
        self.stats.requests_in_flight.add(-1);
        if self.retrying {
            self.stats.retries_in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests;
