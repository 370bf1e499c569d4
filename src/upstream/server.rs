//! A backend server: its identity (pool + addr), its configuration, and its live state.
//!
//! The live state ([`ServerStats`]) is shared by every runtime state that contains the
//! server, so a reload that keeps the server (same pool + `addr`) keeps its in-flight count,
//! counters and health; requests started before the reload still decrement the same counter
//! through their [`InFlightGuard`]. Counters are plain atomics, read by the metrics at scrape
//! time.

use super::breaker::{Breaker, BreakerState};
use super::counters::{OUTCOMES, outcome_index};
use super::health::Probe;
use crate::config::{Outcome, ServerConfig};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// The stable key of a server across reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey {
    pub pool: String,
    pub addr: String,
}

/// Live, shared, lock-free state of one server.
///
/// Aligned to a cache line so that two servers' counters never share one (they are written
/// by every worker thread).
#[derive(Debug)]
#[repr(align(128))]
pub struct ServerStats {
    /// Requests in flight to this server from this process, all worker threads together.
    in_flight: AtomicU32,
    /// Attempts sent to this server.
    requests: AtomicU64,
    /// Attempts that failed (error, timeout, invalid header, or a 5xx answer).
    failures: AtomicU64,
    /// Result of active health checks; servers start healthy (SPEC §3).
    healthy: AtomicBool,
    /// Attempts by outcome class, indexed as [`OUTCOMES`].
    outcomes: [AtomicU64; OUTCOMES.len()],
    /// Breaker transitions by the state entered (closed, open, half-open).
    transitions: [AtomicU64; 3],
    pub breaker: Breaker,
    pub probe: Probe,
}

impl ServerStats {
    /// Fresh state for a newly configured server: closed, healthy, nothing counted.
    pub fn new() -> ServerStats {
        ServerStats {
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            outcomes: Default::default(),
            transitions: Default::default(),
            breaker: Breaker::default(),
            probe: Probe::default(),
        }
    }

    /// Count the outcome of one attempt (a failure also counts in [`ServerStats::failures`]).
    pub fn count_outcome(&self, o: Outcome) {
        self.outcomes[outcome_index(o)].fetch_add(1, Ordering::Relaxed);
        if o != Outcome::Success {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Attempts by outcome class, in the order of [`OUTCOMES`].
    pub fn outcomes(&self) -> [u64; OUTCOMES.len()] {
        std::array::from_fn(|i| self.outcomes[i].load(Ordering::Relaxed))
    }

    pub fn count_transition(&self, to: BreakerState) {
        self.transitions[to as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Breaker transitions into `to`.
    pub fn transitions(&self, to: BreakerState) -> u64 {
        self.transitions[to as usize].load(Ordering::Relaxed)
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Whether one more request would stay within `max_conns`.
    pub fn has_room(&self, max_conns: Option<NonZeroU32>) -> bool {
        max_conns.is_none_or(|m| self.in_flight() < m.get())
    }

    /// Count one more request in flight unless that would exceed `max_conns`. Exact under
    /// concurrency (a compare-and-swap), so `max_conns` is never overshot.
    pub fn try_acquire(self: &Arc<Self>, max_conns: Option<NonZeroU32>) -> Option<InFlightGuard> {
        match max_conns {
            None => {
                self.in_flight.fetch_add(1, Ordering::AcqRel);
            }
            Some(max) => {
                self.in_flight
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        (n < max.get()).then_some(n + 1)
                    })
                    .ok()?;
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        Some(InFlightGuard {
            stats: Arc::clone(self),
        })
    }
}

/// One request in flight to one server; the count goes down when this is dropped, whatever
/// path the request took (response, error, client gone, task cancelled).
#[derive(Debug)]
pub struct InFlightGuard {
    stats: Arc<ServerStats>,
}

impl InFlightGuard {
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats::new()
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A server as the runtime uses it.
#[derive(Debug, Clone)]
pub struct Server {
    pub config: ServerConfig,
    pub stats: Arc<ServerStats>,
}

impl Server {
    pub fn weight(&self) -> u32 {
        self.config.weight.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_and_releases() {
        let s = Arc::new(ServerStats::new());
        let g1 = s.try_acquire(None).unwrap();
        let g2 = s.try_acquire(None).unwrap();
        assert_eq!(s.in_flight(), 2);
        assert_eq!(s.requests(), 2);
        drop(g1);
        assert_eq!(s.in_flight(), 1);
        drop(g2);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn max_conns_is_never_exceeded_under_contention() {
        let s = Arc::new(ServerStats::new());
        let max = NonZeroU32::new(5);
        let peak = Arc::new(AtomicU32::new(0));
        std::thread::scope(|scope| {
            for _ in 0..8 {
                let s = Arc::clone(&s);
                let peak = Arc::clone(&peak);
                scope.spawn(move || {
                    for _ in 0..10_000 {
                        if let Some(g) = s.try_acquire(max) {
                            peak.fetch_max(g.stats().in_flight(), Ordering::Relaxed);
                            drop(g);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 5);
        assert_eq!(s.in_flight(), 0);
    }
}
