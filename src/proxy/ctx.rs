//! Per-request state: the attempt in progress and the bookkeeping around it.
//!
//! Each attempt holds an [`InFlightGuard`] on the chosen server (and, when its breaker is
//! half-open, a trial slot), released when the attempt is replaced or the context is dropped,
//! whichever way the request ends. Every attempt ends in exactly one outcome, which feeds the
//! server's breaker, its counters and metrics, and the retry decision (`retry.rs`).

use super::retry;
use crate::config::Outcome;
use crate::lifecycle::ActiveRequest;
use crate::state::{Pool, RuntimeState};
use crate::upstream::breaker::{Admission, BreakerState, Transition};
use crate::upstream::pool::InPool;
use crate::upstream::{InFlightGuard, Server, Tried};
use http::HeaderValue;
use pingora::proxy::Session;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One attempt to one server.
pub(super) struct Attempt {
    pub(super) server: usize,
    pub(super) _guard: InFlightGuard,
    pub(super) admission: Admission,
    /// Its outcome has been recorded.
    pub(super) done: bool,
}

/// Per-request state.
pub struct Ctx {
    /// The configuration this request started with.
    pub state: Arc<RuntimeState>,
    pub(super) started: Instant,
    pub(super) pool: Option<usize>,
    pub(super) in_pool: Option<InPool>,
    /// End of the `retry.timeout` budget.
    pub(super) deadline: Option<Instant>,
    pub(super) attempt: Option<Attempt>,
    /// The server of the last attempt, kept for the log after the attempt ends.
    pub(super) server: Option<usize>,
    pub(super) tried: Tried,
    /// All attempts made (for the log).
    pub(super) attempts: u32,
    /// Attempts that count against `retry.tries`.
    pub(super) tries_used: u32,
    /// pingora may replay once on a stale keep-alive connection without counting a try.
    pub(super) free_retry_used: bool,
    pub(super) next_attempt_free: bool,
    pub(super) last_failure: Option<Outcome>,
    /// The current attempt was failed by one of our filters, which already recorded its
    /// outcome and decided whether to retry.
    pub(super) decided_retry: Option<bool>,
    pub(super) request_id: Option<HeaderValue>,
    /// Request body bytes seen by the current attempt.
    pub(super) body_bytes: u64,
    pub(super) retry_after: Option<u64>,
    pub(super) _active: ActiveRequest,
}

impl Ctx {
    /// A request's state, with the configuration it starts with.
    pub(super) fn new(state: Arc<RuntimeState>) -> Ctx {
        Ctx {
            state,
            started: Instant::now(),
            pool: None,
            in_pool: None,
            deadline: None,
            attempt: None,
            server: None,
            tried: Tried::default(),
            attempts: 0,
            tries_used: 0,
            free_retry_used: false,
            next_attempt_free: false,
            last_failure: None,
            decided_retry: None,
            request_id: None,
            body_bytes: 0,
            retry_after: None,
            _active: ActiveRequest::start(),
        }
    }

    pub(super) fn pool(&self) -> Option<&Pool> {
        self.pool.and_then(|p| self.state.pools.get(p))
    }

    /// Record the outcome of the current attempt (once): breaker, counters, metrics.
    pub(super) fn finish_attempt(&mut self, outcome: Outcome) {
        let (Some(pool), Some(a)) = (
            self.pool.and_then(|p| self.state.pools.get(p)),
            self.attempt.as_mut(),
        ) else {
            return;
        };
        if a.done {
            return;
        }
        a.done = true;
        let server = &pool.servers[a.server];
        let stats = &server.stats;
        stats.metrics.count_attempt(outcome);
        if outcome != Outcome::Success {
            stats.record_failure();
            self.last_failure = Some(outcome);
        }
        let policy = &pool.config.breaker;
        let failed = policy.on.contains(outcome);
        if let Some(t) = stats
            .breaker
            .record(a.admission, failed, Instant::now(), policy)
        {
            report_transition(pool, server, t);
        }
    }

    /// End the current attempt; one without an outcome frees its breaker trial slot.
    pub(super) fn end_attempt(&mut self) {
        if let Some(a) = self.attempt.take()
            && !a.done
            && let Some(pool) = self.pool()
        {
            pool.servers[a.server].stats.breaker.release(a.admission);
        }
    }

    /// Whether the failed attempt is tried again; counts the retry or the refusal by budget.
    pub(super) fn should_retry(
        &mut self,
        session: &Session,
        outcome: Outcome,
        request_sent: bool,
    ) -> bool {
        let Some(pool) = self.pool.and_then(|p| self.state.pools.get(p)) else {
            return false;
        };
        let policy = &pool.config.retry;
        let facts = retry::Attempted {
            outcome,
            tries_used: self.tries_used,
            request_sent,
            idempotent: session.req_header().method.is_idempotent(),
            body_replayable: !session.as_ref().retry_buffer_truncated()
                && self.body_bytes <= policy.buffer as u64,
            response_started: session.response_written().is_some(),
            deadline_passed: self.deadline.is_some_and(|d| Instant::now() >= d),
        };
        if retry::decide(policy, &facts) != retry::Verdict::Retry {
            return false;
        }
        // The budget guards servers against load multiplied by retries. A request whose
        // connection failed reached no server, so sending it to another adds no load anywhere:
        // such retries are not capped (a dead server would otherwise turn the first burst of
        // refused connections into errors, before its breaker opens).
        let within_budget = !request_sent
            || self
                .in_pool
                .as_mut()
                .is_some_and(|p| p.try_retry(policy.budget_percent));
        match within_budget {
            true => {
                pool.stats.metrics.count_retry(outcome);
                true
            }
            false => {
                pool.stats.metrics.retries_over_budget.inc();
                tracing::debug!(upstream = %pool.name, "retry not made: the retry budget is spent");
                false
            }
        }
    }
}

/// Log and count a breaker transition (SPEC §3: `warn` on open).
pub(super) fn report_transition(pool: &Pool, server: &Server, t: Transition) {
    let (name, addr) = (pool.name.as_str(), server.config.addr.as_str());
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
    crate::metrics::metrics()
        .breaker_transitions
        .with_label_values(&[name, addr, t.to.as_str()])
        .inc();
    server.stats.metrics.set_breaker(t.to);
}

/// Seconds a client should wait before a pool has a server again (`Retry-After`): until the
/// earliest breaker half-opens; else a health-check interval; else one second.
pub(super) fn retry_after_secs(pool: &Pool, now: Instant) -> u64 {
    let reopen = pool
        .servers
        .iter()
        .filter_map(|s| s.stats.breaker.reopens_in(now))
        .min();
    let wait = reopen
        .or_else(|| pool.config.health_check.as_ref().map(|h| h.interval))
        .unwrap_or(Duration::from_secs(1));
    wait.as_millis().div_ceil(1000).max(1) as u64
}
