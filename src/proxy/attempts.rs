//! A request's attempts on its pool's servers: the one owner of its retry state.
//!
//! Each attempt ([`Attempt`]) holds the chosen server's in-flight count and, when its breaker is
//! half-open, a trial slot; both are released when the attempt is replaced or ended, whichever
//! way the request ends. Choosing the server and recording an outcome are the pool's
//! ([`Pool::choose`], [`Pool::record`]); whether a failed attempt goes on is
//! [`retry::decide`]'s. This type keeps what lies between: the servers tried, the tries used,
//! the free replay, the `retry.timeout` deadline, the body bytes an attempt has carried and the
//! retry budget's share of the pool.

use super::retry::{self, Verdict};
use crate::config::Outcome;
use crate::upstream::{Attempt, Choice, InPool, Pool, Tried};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The least of the `retry.timeout` budget a retry must have left to be made.
const MIN_RETRY_TIME: Duration = Duration::from_millis(50);

/// Why no attempt could be started.
pub(super) enum NoAttempt {
    /// The first attempt found no eligible server: 503 with `Retry-After`.
    NoServer,
    /// A retry found no server left: the answer reflects the last real failure.
    NoneLeft(u16),
}

/// What the proxy knows about the request when an attempt fails (from pingora's session).
#[derive(Debug, Clone, Copy)]
pub(super) struct Request {
    /// GET, HEAD, PUT, DELETE, OPTIONS, TRACE.
    pub idempotent: bool,
    /// pingora's retry buffer no longer holds the whole body read so far.
    pub buffer_truncated: bool,
    /// A response head has gone to the client.
    pub response_started: bool,
}

/// A failed attempt, as the hook that saw it describes it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Failure {
    pub outcome: Outcome,
    /// Any of the request may have reached the server (false when the connection failed).
    pub request_sent: bool,
    /// A pooled connection the server had already closed.
    pub stale_connection: bool,
}

impl Failure {
    /// A failure after the request (or part of it) went to the server.
    pub(super) fn sent(outcome: Outcome) -> Failure {
        Failure {
            outcome,
            request_sent: true,
            stale_connection: false,
        }
    }
}

/// A request's attempts on its pool (created when the request is routed to the pool).
pub(super) struct Attempts {
    in_pool: InPool,
    /// End of the `retry.timeout` budget.
    deadline: Option<Instant>,
    current: Option<Attempt>,
    /// The server of the last attempt, kept for the log after the attempt ends.
    server: Option<usize>,
    tried: Tried,
    /// All attempts made (for the log).
    made: u32,
    /// Attempts that count against `retry.tries`.
    tries_used: u32,
    free_replay_used: bool,
    /// The next attempt is the free replay: it does not count against `tries`.
    next_is_free: bool,
    /// The last failure recorded against a server (picks 502 or 504 when none is left).
    last_failure: Option<Outcome>,
    /// The current attempt was failed by one of our filters, which already recorded its
    /// outcome and decided whether to retry.
    decided: Option<bool>,
    /// Request body bytes seen by the current attempt.
    body_bytes: u64,
    /// Whole seconds for `Retry-After` on a 503.
    retry_after: Option<u64>,
}

impl Attempts {
    /// The request enters `pool` now: it counts among the pool's requests in flight until
    /// this is dropped, and its `retry.timeout` runs from `started`.
    pub(super) fn new(pool: &Arc<Pool>, started: Instant) -> Attempts {
        Attempts {
            in_pool: pool.stats.begin_request(),
            deadline: pool.config.retry.timeout.map(|t| started + t),
            current: None,
            server: None,
            tried: Tried::default(),
            made: 0,
            tries_used: 0,
            free_replay_used: false,
            next_is_free: false,
            last_failure: None,
            decided: None,
            body_bytes: 0,
            retry_after: None,
        }
    }

    /// What is left of the `retry.timeout` budget (`None`: no budget).
    pub(super) fn remaining(&self, now: Instant) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(now))
    }

    /// Start the next attempt on a server `pool` chooses (ending the previous one).
    pub(super) fn start(
        &mut self,
        pool: &Pool,
        now: Instant,
        hash_key: Option<&[u8]>,
    ) -> Result<usize, NoAttempt> {
        self.current = None;
        self.body_bytes = 0;
        self.decided = None;
        let attempt = match pool.choose(now, hash_key, &self.tried) {
            Choice::Server(a) => a,
            Choice::NoServer { retry_after } if self.made == 0 => {
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
        self.current = Some(attempt);
        self.made += 1;
        if !std::mem::take(&mut self.next_is_free) {
            self.tries_used += 1;
        }
        Ok(i)
    }

    /// The current attempt got an answer that is not a failure: its server's breaker and
    /// counters hear of it.
    pub(super) fn succeeded(&mut self, pool: &Pool) {
        if let Some(a) = self.current.as_mut() {
            pool.record(a, Outcome::Success, Instant::now());
        }
    }

    /// The current attempt failed: record it against its server (unless it is the free
    /// replay's stale connection, which says nothing about the server) and say whether the
    /// request goes on to another attempt. A retry is counted, or refused by the budget.
    pub(super) fn failed(&mut self, pool: &Pool, req: Request, f: Failure) -> bool {
        let Some(attempt) = self.current.as_mut() else {
            return false;
        };
        let policy = &pool.config.retry;
        let facts = retry::Attempted {
            outcome: f.outcome,
            tries_used: self.tries_used,
            request_sent: f.request_sent,
            idempotent: req.idempotent,
            body_replayable: !req.buffer_truncated && self.body_bytes <= policy.buffer as u64,
            response_started: req.response_started,
            // A retry needs a useful part of the `retry.timeout` budget: one started with a
            // sliver left (an attempt's capped timeout can fire a hair before the deadline)
            // could only time out again, at another server's expense.
            deadline_passed: self
                .deadline
                .is_some_and(|d| Instant::now() + MIN_RETRY_TIME >= d),
            stale_connection: f.stale_connection,
            free_replay_used: self.free_replay_used,
        };
        let verdict = retry::decide(policy, &facts);
        if verdict == Verdict::FreeReplay {
            // The server is not to blame: it may be chosen again (on a fresh connection), so
            // a one-server pool can replay too.
            self.tried.remove(attempt.server());
            self.free_replay_used = true;
            self.next_is_free = true;
            self.current = None;
            return true;
        }
        if pool.record(attempt, f.outcome, Instant::now()) && f.outcome != Outcome::Success {
            self.last_failure = Some(f.outcome);
        }
        if verdict != Verdict::Retry {
            return false;
        }
        // The budget guards servers against load multiplied by retries. A request whose
        // connection failed reached no server, so sending it to another adds no load anywhere:
        // such retries are not capped (a dead server would otherwise turn the first burst of
        // refused connections into errors, before its breaker opens).
        if !f.request_sent {
            self.in_pool.count_free_retry(f.outcome);
            return true;
        }
        let allowed = self.in_pool.try_retry(policy.budget_percent, f.outcome);
        if !allowed {
            tracing::debug!(upstream = %pool.name, "retry not made: the retry budget is spent");
        }
        allowed
    }

    /// One of our filters failed the attempt (through [`Attempts::failed`]) and decided: the
    /// error hook that follows takes the decision instead of making another.
    pub(super) fn decide_now(&mut self, again: bool) {
        self.decided = Some(again);
    }

    /// The decision a filter made for the current attempt, once.
    pub(super) fn take_decision(&mut self) -> Option<bool> {
        self.decided.take()
    }

    /// End the current attempt; one without an outcome frees its breaker trial slot.
    pub(super) fn end(&mut self) {
        self.current = None;
    }

    /// Count request body bytes sent by the current attempt; returns its total so far.
    pub(super) fn count_body(&mut self, len: usize) -> u64 {
        self.body_bytes += len as u64;
        self.body_bytes
    }

    /// The server of the last attempt.
    pub(super) fn server(&self) -> Option<usize> {
        self.server
    }

    /// All attempts made.
    pub(super) fn made(&self) -> u32 {
        self.made
    }

    /// `Retry-After` seconds, when no server was eligible for the first attempt.
    pub(super) fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}
