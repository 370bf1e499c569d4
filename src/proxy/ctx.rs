//! Per-request state: the snapshot of the configuration the request started with, its pool,
//! and the attempt in progress.
//!
//! Each attempt ([`Attempt`]) holds the chosen server's in-flight count and, when its breaker is
//! half-open, a trial slot; both are released when the attempt is replaced or the context is
//! dropped, whichever way the request ends. Choosing the server and recording an attempt's
//! outcome are the pool's ([`Pool::choose`], [`Pool::record`]); this file keeps the request's
//! side of the bookkeeping and asks `retry.rs` whether a failed attempt goes on.

use super::retry;
use crate::config::Outcome;
use crate::policy::{self, Rejection, RouteState};
use crate::state::RuntimeState;
use crate::upstream::{Attempt, Choice, InPool, Pool, Tried};
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::protocols::http::compression::ResponseCompressionCtx;
use pingora::protocols::tls::SslDigest;
use pingora::proxy::Session;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The least of the `retry.timeout` budget a retry must have left to be made.
const MIN_RETRY_TIME: Duration = Duration::from_millis(50);

/// Per-request state.
pub struct Ctx {
    /// The configuration this request started with.
    pub state: Arc<RuntimeState>,
    pub(super) started: Instant,
    /// The pool the request was routed to, as its index in `state.pools` (reached through the
    /// state this request holds: no reference count of the pool is touched per request).
    pub(super) pool: Option<usize>,
    /// The client connection's TLS facts; `None` on plain HTTP.
    pub(super) tls: Option<Arc<SslDigest>>,
    /// `Strict-Transport-Security` for the response (TLS listeners with `hsts`).
    pub(super) hsts: Option<HeaderValue>,
    /// The route taken (index into `state.routes`).
    pub(super) route: Option<usize>,
    /// Why the route refused the request, if it did.
    pub(super) rejected: Option<Rejection>,
    /// The response's compression, on `compress` routes.
    pub(super) compress: Option<Box<ResponseCompressionCtx>>,
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
    /// Whole seconds for `Retry-After` on a 503.
    pub(super) retry_after: Option<u64>,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.state.tally.end();
    }
}

/// Why no attempt could be started.
pub(super) enum NoAttempt {
    /// The first attempt found no eligible server: 503 with `Retry-After`.
    NoServer,
    /// A retry found no server left: the answer reflects the last real failure.
    NoneLeft(u16),
}

impl Ctx {
    /// The route taken, once routed.
    pub(super) fn route(&self) -> Option<&RouteState> {
        self.route.map(|i| &self.state.routes[i])
    }

    /// Refuse the request for `why`: counted for the route and logged.
    pub(super) fn reject(&mut self, why: Rejection) {
        if self.rejected.is_none() {
            self.rejected = Some(why);
            if let Some(r) = self.route() {
                r.rejections.count(why);
            }
        }
    }

    /// What every response to the client carries, the proxy's own answers included: the
    /// request id, `Strict-Transport-Security` on TLS listeners with `hsts`, and the route's
    /// `response_headers`.
    pub(super) fn decorate(&self, resp: &mut ResponseHeader) -> pingora::Result<()> {
        if let Some(id) = &self.request_id {
            resp.insert_header(super::headers::X_REQUEST_ID, id.clone())?;
        }
        if let Some(hsts) = &self.hsts {
            resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone())?;
        }
        if let Some(r) = self.route().filter(|r| !r.plain) {
            policy::apply_to_response(&r.policy.response_headers, resp)?;
        }
        Ok(())
    }

    /// A request's state, with the configuration it starts with.
    /// A request in flight from now until the `Ctx` is dropped (counted in the server's
    /// `Tally`, which a graceful shutdown waits on).
    pub(super) fn new(state: Arc<RuntimeState>) -> Ctx {
        state.tally.begin();
        Ctx {
            state,
            started: Instant::now(),
            pool: None,
            tls: None,
            hsts: None,
            route: None,
            rejected: None,
            compress: None,
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
        }
    }

    /// Route the request to pool `index`: it counts among the pool's requests in flight from now.
    pub(super) fn enter_pool(&mut self, index: usize) {
        let pool = &self.state.pools[index];
        self.in_pool = Some(pool.stats.begin_request());
        self.deadline = pool.config.retry.timeout.map(|t| self.started + t);
        self.pool = Some(index);
    }

    /// The pool the request was routed to.
    pub(super) fn pool(&self) -> Option<&Pool> {
        self.pool.map(|i| &*self.state.pools[i])
    }

    /// Start the next attempt on a server the pool chooses.
    pub(super) fn start_attempt(
        &mut self,
        now: Instant,
        hash_key: Option<&[u8]>,
    ) -> Result<usize, NoAttempt> {
        self.attempt = None;
        let Some(pool) = self.pool.map(|i| &self.state.pools[i]) else {
            return Err(NoAttempt::NoServer);
        };
        let attempt = match pool.choose(now, hash_key, &self.tried) {
            Choice::Server(a) => a,
            Choice::NoServer { retry_after } if self.attempts == 0 => {
                pool.stats.count_no_server();
                self.retry_after = Some(retry_after.as_millis().div_ceil(1000).max(1) as u64);
                return Err(NoAttempt::NoServer);
            }
            Choice::NoServer { .. } => {
                let code = if self.last_failure == Some(Outcome::Timeout) {
                    504
                } else {
                    502
                };
                return Err(NoAttempt::NoneLeft(code));
            }
        };
        let i = attempt.server();
        self.tried.insert(i);
        self.server = Some(i);
        self.attempt = Some(attempt);
        self.attempts += 1;
        if !std::mem::take(&mut self.next_attempt_free) {
            // A replay after a stale keep-alive connection does not count as a try.
            self.tries_used += 1;
        }
        Ok(i)
    }

    /// Record the outcome of the current attempt (once): breaker and counters.
    pub(super) fn finish_attempt(&mut self, outcome: Outcome) {
        let (Some(pool), Some(a)) = (
            self.pool.map(|i| &self.state.pools[i]),
            self.attempt.as_mut(),
        ) else {
            return;
        };
        if pool.record(a, outcome, Instant::now()) && outcome != Outcome::Success {
            self.last_failure = Some(outcome);
        }
    }

    /// End the current attempt; one without an outcome frees its breaker trial slot.
    pub(super) fn end_attempt(&mut self) {
        self.attempt = None;
    }

    /// Whether the failed attempt is tried again; counts the retry or the refusal by budget.
    pub(super) fn should_retry(
        &mut self,
        session: &Session,
        outcome: Outcome,
        request_sent: bool,
    ) -> bool {
        let (Some(pool), Some(in_pool)) = (
            self.pool.map(|i| &self.state.pools[i]),
            self.in_pool.as_mut(),
        ) else {
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
            // A retry needs a useful part of the `retry.timeout` budget: one started with a
            // sliver left (an attempt's capped timeout can fire a hair before the deadline)
            // could only time out again, at another server's expense.
            deadline_passed: self
                .deadline
                .is_some_and(|d| Instant::now() + MIN_RETRY_TIME >= d),
        };
        if retry::decide(policy, &facts) != retry::Verdict::Retry {
            return false;
        }
        // The budget guards servers against load multiplied by retries. A request whose
        // connection failed reached no server, so sending it to another adds no load anywhere:
        // such retries are not capped (a dead server would otherwise turn the first burst of
        // refused connections into errors, before its breaker opens).
        if !request_sent {
            in_pool.count_free_retry(outcome);
            return true;
        }
        let allowed = in_pool.try_retry(policy.budget_percent, outcome);
        if !allowed {
            tracing::debug!(upstream = %pool.name, "retry not made: the retry budget is spent");
        }
        allowed
    }
}
