//! Live state of a pool, shared across reloads by pool name: requests and retries in flight
//! (for the retry budget) and the pool's metric handles.

use crate::metrics::PoolMetrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
pub struct PoolStats {
    requests_in_flight: AtomicU32,
    retries_in_flight: AtomicU32,
    pub metrics: PoolMetrics,
}

impl PoolStats {
    pub fn new(name: &str, retry_reasons: &[String]) -> PoolStats {
        PoolStats {
            requests_in_flight: AtomicU32::new(0),
            retries_in_flight: AtomicU32::new(0),
            metrics: PoolMetrics::new(name, retry_reasons),
        }
    }

    pub fn requests_in_flight(&self) -> u32 {
        self.requests_in_flight.load(Ordering::Relaxed)
    }

    /// Count a request routed to this pool until the guard is dropped.
    pub fn begin_request(self: &Arc<Self>) -> InPool {
        self.requests_in_flight.fetch_add(1, Ordering::AcqRel);
        InPool {
            stats: Arc::clone(self),
            retrying: false,
        }
    }
}

/// A request counted in its pool; once it retries, also counted among the retries in flight.
#[derive(Debug)]
pub struct InPool {
    stats: Arc<PoolStats>,
    retrying: bool,
}

impl InPool {
    /// Take a place among the retries in flight if the budget allows (SPEC §2 `budget_percent`:
    /// retries in flight may be at most that share of the requests in flight, and at least 3).
    /// A request that already retries keeps its place.
    pub fn try_retry(&mut self, budget_percent: u32) -> bool {
        if self.retrying {
            return true;
        }
        let s = &self.stats;
        let allowed = s
            .retries_in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                crate::proxy::retry::budget_allows(budget_percent, r, s.requests_in_flight())
                    .then_some(r + 1)
            })
            .is_ok();
        self.retrying = allowed;
        allowed
    }
}

impl Drop for InPool {
    fn drop(&mut self) {
        self.stats.requests_in_flight.fetch_sub(1, Ordering::AcqRel);
        if self.retrying {
            self.stats.retries_in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
