//! Whether a failed attempt is tried again on the next server (SPEC §3, nginx's
//! `proxy_next_upstream` semantics plus a deadline and a budget).
//!
//! Pure functions: the proxy gathers the facts about the attempt and the request, and these
//! decide — the one replay rule, the free replay after a stale keep-alive connection included.
//! The request's side of the bookkeeping (tries used, servers tried, the deadline) is
//! [`super::attempts::Attempts`]. The budget needs the pool's live counters and is applied by the caller through
//! [`crate::upstream::InPool::try_retry`], after everything else said yes, and only to
//! retries of requests that reached a server: a request whose connection failed was delivered
//! nowhere, so retrying it multiplies no server's load (Envoy caps these too; we do not, so a
//! killed server's refused connections never fail a request while its breaker is still closed).

use crate::config::{Outcome, RetryPolicy};
use pingora::{Error, ErrorType};

/// What pingora's error says about an attempt that failed.
pub fn classify(e: &Error) -> Outcome {
    match e.etype() {
        ErrorType::HTTPStatus(code) => Outcome::Status(*code),
        ErrorType::ConnectTimedout
        | ErrorType::ReadTimedout
        | ErrorType::WriteTimedout
        | ErrorType::TLSHandshakeTimedout => Outcome::Timeout,
        ErrorType::InvalidHTTPHeader
        | ErrorType::H1Error
        | ErrorType::InvalidH2
        | ErrorType::H2Error => Outcome::InvalidHeader,
        _ => Outcome::Error,
    }
}

/// The outcome of an attempt that got a response head with this status.
pub fn status_outcome(status: u16) -> Outcome {
    if status == 429 || (500..=599).contains(&status) {
        Outcome::Status(status)
    } else {
        Outcome::Success
    }
}

/// Facts about one failed attempt and its request.
#[derive(Debug, Clone, Copy)]
pub struct Attempted {
    pub outcome: Outcome,
    /// Attempts made so far that count against `tries` (this one included).
    pub tries_used: u32,
    /// Whether any of the request may have reached the server (false for connect failures).
    pub request_sent: bool,
    /// GET, HEAD, PUT, DELETE, OPTIONS, TRACE (RFC 9110 §9.2.2).
    pub idempotent: bool,
    /// The request body read so far is still held for replay.
    pub body_replayable: bool,
    /// A byte of the response has gone to the client.
    pub response_started: bool,
    /// The `retry.timeout` budget is spent.
    pub deadline_passed: bool,
    /// The attempt failed on a pooled keep-alive connection the server had already closed
    /// (pingora's `ReusedOnly` error on a reused connection).
    pub stale_connection: bool,
    /// This request already had its free replay.
    pub free_replay_used: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Retry,
    /// Replay once on another connection, counted neither against the server nor `tries`:
    /// the request met a keep-alive connection the server had closed, which says nothing
    /// about the server.
    FreeReplay,
    /// The outcome is not listed in `retry.on`.
    NotListed,
    NoTriesLeft,
    /// A non-idempotent request that may have been received, without `non_idempotent`.
    NotIdempotent,
    /// The body is larger than `retry.buffer` and part of it was sent.
    BodyNotReplayable,
    ResponseStarted,
    DeadlinePassed,
}

pub fn decide(policy: &RetryPolicy, a: &Attempted) -> Verdict {
    if a.response_started {
        return Verdict::ResponseStarted;
    }
    if a.stale_connection && !a.free_replay_used && a.idempotent && a.body_replayable {
        return Verdict::FreeReplay;
    }
    if !policy.on.contains(a.outcome) {
        return Verdict::NotListed;
    }
    if a.tries_used >= policy.tries.get() {
        return Verdict::NoTriesLeft;
    }
    if a.deadline_passed {
        return Verdict::DeadlinePassed;
    }
    if a.request_sent {
        // Every gRPC call is a POST: listing `grpc_N` (UNAVAILABLE, say) is the consent to
        // retry it, as gRPC's own retry policy's `retryableStatusCodes` is.
        if !a.idempotent && !policy.non_idempotent && !matches!(a.outcome, Outcome::Grpc(_)) {
            return Verdict::NotIdempotent;
        }
        if !a.body_replayable {
            return Verdict::BodyNotReplayable;
        }
    }
    Verdict::Retry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutcomeSet;
    use std::num::NonZeroU32;

    fn policy(on: &[&str]) -> RetryPolicy {
        let mut set = OutcomeSet::default();
        for n in on {
            set.insert_name(n).unwrap();
        }
        RetryPolicy {
            on: set,
            non_idempotent: false,
            tries: NonZeroU32::new(3).unwrap(),
            timeout: None,
            buffer: 65536,
            budget_percent: 20,
        }
    }

    fn attempt(outcome: Outcome) -> Attempted {
        Attempted {
            outcome,
            tries_used: 1,
            request_sent: true,
            idempotent: true,
            body_replayable: true,
            response_started: false,
            deadline_passed: false,
            stale_connection: false,
            free_replay_used: false,
        }
    }

    #[test]
    fn a_stale_keep_alive_connection_is_replayed_once_for_free_if_replay_is_safe() {
        // Not listed in `retry.on` and no tries left: the free replay does not need either.
        let p = policy(&[]);
        let stale = Attempted {
            stale_connection: true,
            tries_used: 3,
            ..attempt(Outcome::Error)
        };
        assert_eq!(decide(&p, &stale), Verdict::FreeReplay);
        let again = Attempted {
            free_replay_used: true,
            ..stale
        };
        assert_eq!(decide(&p, &again), Verdict::NotListed);
        let post = Attempted {
            idempotent: false,
            ..stale
        };
        assert_eq!(decide(&p, &post), Verdict::NotListed);
        let big = Attempted {
            body_replayable: false,
            ..stale
        };
        assert_eq!(decide(&p, &big), Verdict::NotListed);
        let started = Attempted {
            response_started: true,
            ..stale
        };
        assert_eq!(decide(&p, &started), Verdict::ResponseStarted);
    }

    #[test]
    fn listed_outcomes_are_retried_within_tries() {
        let p = policy(&["error", "timeout", "http_503"]);
        assert_eq!(decide(&p, &attempt(Outcome::Error)), Verdict::Retry);
        assert_eq!(decide(&p, &attempt(Outcome::Timeout)), Verdict::Retry);
        assert_eq!(decide(&p, &attempt(Outcome::Status(503))), Verdict::Retry);
        assert_eq!(
            decide(&p, &attempt(Outcome::Status(500))),
            Verdict::NotListed
        );
        assert_eq!(
            decide(&p, &attempt(Outcome::InvalidHeader)),
            Verdict::NotListed
        );
        let third = Attempted {
            tries_used: 3,
            ..attempt(Outcome::Error)
        };
        assert_eq!(decide(&p, &third), Verdict::NoTriesLeft);
        let late = Attempted {
            deadline_passed: true,
            ..attempt(Outcome::Error)
        };
        assert_eq!(decide(&p, &late), Verdict::DeadlinePassed);
        let started = Attempted {
            response_started: true,
            ..attempt(Outcome::Error)
        };
        assert_eq!(decide(&p, &started), Verdict::ResponseStarted);
    }

    #[test]
    fn non_idempotent_requests_are_replayed_only_if_nothing_was_sent_or_allowed() {
        let mut p = policy(&["error"]);
        let post = Attempted {
            idempotent: false,
            ..attempt(Outcome::Error)
        };
        assert_eq!(decide(&p, &post), Verdict::NotIdempotent);
        let refused = Attempted {
            request_sent: false,
            ..post
        };
        assert_eq!(decide(&p, &refused), Verdict::Retry);
        p.non_idempotent = true;
        assert_eq!(decide(&p, &post), Verdict::Retry);
        let big = Attempted {
            body_replayable: false,
            ..post
        };
        assert_eq!(decide(&p, &big), Verdict::BodyNotReplayable);
        // A connect failure sent nothing: even an unreplayable body has not started to flow.
        assert_eq!(
            decide(
                &p,
                &Attempted {
                    request_sent: false,
                    ..big
                }
            ),
            Verdict::Retry
        );
    }

    #[test]
    fn errors_are_classified() {
        let e = |t| Error::new(t);
        assert_eq!(classify(&e(ErrorType::ConnectRefused)), Outcome::Error);
        assert_eq!(classify(&e(ErrorType::ConnectionClosed)), Outcome::Error);
        assert_eq!(classify(&e(ErrorType::ReadTimedout)), Outcome::Timeout);
        assert_eq!(classify(&e(ErrorType::ConnectTimedout)), Outcome::Timeout);
        assert_eq!(
            classify(&e(ErrorType::InvalidHTTPHeader)),
            Outcome::InvalidHeader
        );
        assert_eq!(
            classify(&e(ErrorType::HTTPStatus(502))),
            Outcome::Status(502)
        );
        assert_eq!(status_outcome(404), Outcome::Success);
        assert_eq!(status_outcome(429), Outcome::Status(429));
        assert_eq!(status_outcome(503), Outcome::Status(503));
    }
}
