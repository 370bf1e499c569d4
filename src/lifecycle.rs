//! A server's lifecycle counters: the requests in flight, which a graceful shutdown waits for,
//! and the failures summarised in the error log (`log_summary.rs`). One [`Tally`] per server,
//! shared by every state it loads (a reload carries it over), so two servers in one process
//! (the tests) count apart.
//!
//! pingora handles `SIGTERM` (graceful), `SIGINT` (fast) and `SIGQUIT` (upgrade). After a
//! graceful stop of the listeners its grace period ends, through switchyard's
//! `ShutdownSignalWatch::grace_period` (vendor patch 9), as soon as no request is in flight:
//! a `SIGTERM` with nothing in flight stops at once and one with a slow request when that
//! completes, or after `shutdown_grace` at the latest.

use crate::log_summary::Failures;
use crate::upstream::shard::Count;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A server's counters, shared by all its states.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests in flight (from a parsed head to the end of the response, and a new
    /// connection until its first request is answered), counted per thread: every request
    /// writes it, the drain check reads it.
    in_flight: Count,
    /// Failures since the last summary line.
    pub failures: Failures,
}

/// Counts one request in flight while it lives (the front door's first request of a
/// connection; a proxied request counts through its `Ctx`).
#[derive(Debug)]
pub struct ActiveRequest(Arc<Tally>);

impl Tally {
    pub fn start(self: &Arc<Self>) -> ActiveRequest {
        self.begin();
        ActiveRequest(Arc::clone(self))
    }

    /// One more request in flight; [`end`](Self::end) must follow.
    pub fn begin(&self) {
        self.in_flight.add(1);
    }

    pub fn end(&self) {
        self.in_flight.add(-1);
    }

    pub fn in_flight(&self) -> usize {
        usize::try_from(self.in_flight.sum()).unwrap_or(0)
    }

    /// Wait until no request is in flight, `grace` at most; whether that happened.
    pub async fn drained(&self, grace: Duration) -> bool {
        tracing::info!(
            in_flight = self.in_flight(),
            "listeners closed; finishing the requests in flight"
        );
        let end = Instant::now() + grace;
        // The count is summed over per-thread slots, so one read can miss a request that
        // starts on one thread while another ends on a second; two zero reads 20 ms apart
        // cannot both miss it.
        let mut zeros = 0;
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
            zeros = if self.in_flight() == 0 { zeros + 1 } else { 0 };
            if zeros == 2 {
                tracing::info!("all requests finished; stopping");
                return true;
            }
        }
        tracing::warn!(
            in_flight = self.in_flight(),
            "shutdown_grace is over; stopping with requests still in flight"
        );
        false
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.end();
    }
}
