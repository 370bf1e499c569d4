//! The circuit breaker of one server (SPEC §3): closed, open, half-open.
//!
//! - CLOSED: consecutive failed attempts are counted (a success resets the count); at
//!   `failures` it OPENs.
//! - OPEN: no traffic for the open period (`open_for`, doubled on each consecutive re-open up
//!   to `max_open_for`). When it has passed, the next request finds it HALF-OPEN.
//! - HALF-OPEN: at most `half_open_requests` trial requests at once; a trial's success CLOSEs it
//!   and resets the open period, a failure re-OPENs it for twice as long.
//!
//! Time is always passed in (`now`), so the state machine runs on a fake clock in tests. The
//! state sits behind a mutex held for a few instructions and never across an `.await`; a
//! lock-free flag lets the common "closed" check skip the mutex entirely.

use crate::config::BreakerPolicy;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// Every state, in the order of their discriminants.
    pub const ALL: [BreakerState; 3] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// How a request was let through; needed to report its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The breaker was closed.
    Normal,
    /// One of the half-open trial slots.
    Trial,
}

/// A change of state, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub to: BreakerState,
    /// For a transition to open: how long it stays open.
    pub open_for: Option<Duration>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// When an open breaker half-opens.
    open_until: Option<Instant>,
    /// The open period used the last time it opened (doubles on each consecutive re-open).
    last_open_for: Option<Duration>,
    trials_in_flight: u32,
}

#[derive(Debug)]
pub struct Breaker {
    /// True while CLOSED: the fast path of `available` and `admit`.
    closed: AtomicBool,
    /// Consecutive failures while closed; lock-free so that successes cost one load.
    failures: AtomicU32,
    inner: Mutex<Inner>,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            closed: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                open_until: None,
                last_open_for: None,
                trials_in_flight: 0,
            }),
        }
    }
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Plain counters and timestamps: valid whatever a panicking holder left.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state as reported (an open breaker whose time is up reports half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        if self.closed.load(Ordering::Acquire) {
            return BreakerState::Closed;
        }
        let inner = self.lock();
        match inner.state {
            BreakerState::Open if inner.open_until.is_some_and(|t| now >= t) => {
                BreakerState::HalfOpen
            }
            s => s,
        }
    }

    /// Whether a request could be admitted now (without taking a trial slot).
    pub fn available(&self, now: Instant, policy: &BreakerPolicy) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return true;
        }
        let inner = self.lock();
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::Open => inner.open_until.is_some_and(|t| now >= t),
            BreakerState::HalfOpen => inner.trials_in_flight < policy.half_open_requests.get(),
        }
    }

    /// Let a request through, taking a trial slot when half-open. `None`: not now.
    pub fn admit(
        &self,
        now: Instant,
        policy: &BreakerPolicy,
    ) -> (Option<Admission>, Option<Transition>) {
        if self.closed.load(Ordering::Acquire) {
            return (Some(Admission::Normal), None);
        }
        let mut inner = self.lock();
        let mut transition = None;
        if inner.state == BreakerState::Open && inner.open_until.is_some_and(|t| now >= t) {
            inner.state = BreakerState::HalfOpen;
            inner.trials_in_flight = 0;
            transition = Some(Transition {
                to: BreakerState::HalfOpen,
                open_for: None,
            });
        }
        let admission = match inner.state {
            BreakerState::Closed => Some(Admission::Normal),
            BreakerState::Open => None,
            BreakerState::HalfOpen => {
                if inner.trials_in_flight < policy.half_open_requests.get() {
                    inner.trials_in_flight += 1;
                    Some(Admission::Trial)
                } else {
                    None
                }
            }
        };
        (admission, transition)
    }

    /// Report the outcome of an admitted request. `failed`: its outcome is one the policy
    /// counts (`circuit_breaker.on`).
    pub fn record(
        &self,
        admission: Admission,
        failed: bool,
        now: Instant,
        policy: &BreakerPolicy,
    ) -> Option<Transition> {
        if admission == Admission::Normal {
            if !failed {
                // The hot path: one load, and a store only when there is a count to reset.
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
                return None;
            }
            let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
            if n < policy.failures.get() {
                return None;
            }
            let mut inner = self.lock();
            // A request admitted before the breaker opened, failing late, does not extend the
            // open period.
            if inner.state != BreakerState::Closed {
                return None;
            }
            return Some(self.open(&mut inner, now, policy.open_for));
        }
        let mut inner = self.lock();
        if inner.state != BreakerState::HalfOpen {
            return None;
        }
        inner.trials_in_flight = inner.trials_in_flight.saturating_sub(1);
        if failed {
            let next = inner
                .last_open_for
                .map_or(policy.open_for, |d| d.saturating_mul(2))
                .min(policy.max_open_for);
            Some(self.open(&mut inner, now, next))
        } else {
            inner.state = BreakerState::Closed;
            inner.open_until = None;
            inner.last_open_for = None;
            self.failures.store(0, Ordering::Relaxed);
            self.closed.store(true, Ordering::Release);
            Some(Transition {
                to: BreakerState::Closed,
                open_for: None,
            })
        }
    }

    /// A trial ended without an outcome (the client went away): free its slot.
    pub fn release(&self, admission: Admission) {
        if admission == Admission::Trial {
            let mut inner = self.lock();
            if inner.state == BreakerState::HalfOpen {
                inner.trials_in_flight = inner.trials_in_flight.saturating_sub(1);
            }
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant, open_for: Duration) -> Transition {
        inner.state = BreakerState::Open;
        inner.open_until = Some(now + open_for);
        inner.last_open_for = Some(open_for);
        inner.trials_in_flight = 0;
        self.failures.store(0, Ordering::Relaxed);
        self.closed.store(false, Ordering::Release);
        Transition {
            to: BreakerState::Open,
            open_for: Some(open_for),
        }
    }

    /// Whether the breaker is open and its open period still running (not yet half-open).
    pub fn is_open(&self, now: Instant) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let inner = self.lock();
        inner.state == BreakerState::Open && inner.open_until.is_some_and(|t| now < t)
    }

    /// End the open period now (the server answers connections again while its whole pool is
    /// out): the breaker half-opens, and the next request is its trial, whose outcome decides
    /// as usual. The open period's length is kept, so a failed trial still doubles it.
    /// Returns whether it was open.
    pub fn end_open_period(&self, now: Instant) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let mut inner = self.lock();
        if inner.state != BreakerState::Open || inner.open_until.is_none_or(|t| now >= t) {
            return false;
        }
        inner.open_until = Some(now);
        true
    }

    /// Time until an open breaker half-opens; `None` unless open.
    pub fn reopens_in(&self, now: Instant) -> Option<Duration> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let inner = self.lock();
        match inner.state {
            BreakerState::Open => inner.open_until.map(|t| t.saturating_duration_since(now)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod outage_tests {
    use super::*;
    use crate::config::OutcomeSet;
    use std::num::NonZeroU32;

    #[test]
    fn ending_the_open_period_half_opens_and_a_failed_trial_still_doubles() {
        let policy = BreakerPolicy {
            failures: NonZeroU32::new(1).unwrap(),
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(300),
            half_open_requests: NonZeroU32::new(1).unwrap(),
            on: {
                let mut s = OutcomeSet::default();
                s.insert_name("error").unwrap();
                s
            },
        };
        let b = Breaker::default();
        let t = Instant::now();
        assert!(!b.end_open_period(t), "a closed breaker has no open period");
        b.record(Admission::Normal, true, t, &policy);
        assert!(b.is_open(t + Duration::from_secs(2)));
        assert!(b.end_open_period(t + Duration::from_secs(2)));
        assert!(!b.is_open(t + Duration::from_secs(2)));
        assert_eq!(b.state(t + Duration::from_secs(2)), BreakerState::HalfOpen);
        // The trial fails: open again for twice the period.
        let (a, _) = b.admit(t + Duration::from_secs(2), &policy);
        b.record(a.unwrap(), true, t + Duration::from_secs(2), &policy);
        assert_eq!(
            b.reopens_in(t + Duration::from_secs(2)),
            Some(Duration::from_secs(60))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutcomeSet;
    use std::num::NonZeroU32;

    fn policy(failures: u32, half_open: u32) -> BreakerPolicy {
        BreakerPolicy {
            failures: NonZeroU32::new(failures).unwrap(),
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(300),
            half_open_requests: NonZeroU32::new(half_open).unwrap(),
            on: OutcomeSet::default(),
        }
    }

    /// A fake clock: a fixed origin plus seconds.
    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    fn fail(b: &Breaker, now: Instant, p: &BreakerPolicy) -> Option<Transition> {
        let (adm, _) = b.admit(now, p);
        b.record(adm.expect("admitted"), true, now, p)
    }

    #[test]
    fn opens_after_exactly_n_consecutive_failures() {
        let t0 = Instant::now();
        let p = policy(3, 1);
        let b = Breaker::default();
        assert_eq!(fail(&b, t0, &p), None);
        assert_eq!(fail(&b, t0, &p), None);
        // A success resets the count.
        b.record(Admission::Normal, false, t0, &p);
        assert_eq!(fail(&b, t0, &p), None);
        assert_eq!(fail(&b, t0, &p), None);
        let t = fail(&b, t0, &p).expect("third consecutive failure opens");
        assert_eq!(t.to, BreakerState::Open);
        assert_eq!(t.open_for, Some(Duration::from_secs(30)));
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(!b.available(at(t0, 29), &p));
        assert_eq!(b.admit(at(t0, 29), &p).0, None);
        assert_eq!(b.reopens_in(at(t0, 10)), Some(Duration::from_secs(20)));
    }

    #[test]
    fn half_open_admits_limited_trials_and_success_closes() {
        let t0 = Instant::now();
        let p = policy(1, 2);
        let b = Breaker::default();
        fail(&b, t0, &p);
        let t30 = at(t0, 30);
        assert_eq!(b.state(t30), BreakerState::HalfOpen);
        let (a1, tr) = b.admit(t30, &p);
        assert_eq!(a1, Some(Admission::Trial));
        assert_eq!(tr.map(|t| t.to), Some(BreakerState::HalfOpen));
        assert_eq!(b.admit(t30, &p).0, Some(Admission::Trial));
        // Never more than half_open_requests at once.
        assert_eq!(b.admit(t30, &p).0, None);
        assert!(!b.available(t30, &p));
        // One trial leaves without an outcome: its slot is free again.
        b.release(Admission::Trial);
        assert!(b.available(t30, &p));
        let tr = b.record(Admission::Trial, false, t30, &p).expect("closes");
        assert_eq!(tr.to, BreakerState::Closed);
        assert_eq!(b.state(t30), BreakerState::Closed);
        assert_eq!(b.admit(t30, &p).0, Some(Admission::Normal));
    }

    #[test]
    fn a_failed_trial_reopens_for_twice_as_long_up_to_the_cap() {
        let t0 = Instant::now();
        let mut p = policy(1, 1);
        p.max_open_for = Duration::from_secs(100);
        let b = Breaker::default();
        fail(&b, t0, &p); // open 30 s
        let mut now = at(t0, 30);
        for expected in [60, 100, 100] {
            let (adm, _) = b.admit(now, &p);
            assert_eq!(adm, Some(Admission::Trial));
            let tr = b.record(Admission::Trial, true, now, &p).expect("re-opens");
            assert_eq!(tr.open_for, Some(Duration::from_secs(expected)));
            assert!(!b.available(now + Duration::from_secs(expected - 1), &p));
            now += Duration::from_secs(expected);
            assert!(b.available(now, &p));
        }
        // Success resets the period: the next opening is 30 s again.
        let (adm, _) = b.admit(now, &p);
        b.record(adm.unwrap(), false, now, &p);
        let tr = fail(&b, now, &p).unwrap();
        assert_eq!(tr.open_for, Some(Duration::from_secs(30)));
    }

    #[test]
    fn late_results_of_requests_admitted_before_opening_change_nothing() {
        let t0 = Instant::now();
        let p = policy(1, 1);
        let b = Breaker::default();
        fail(&b, t0, &p);
        assert_eq!(b.record(Admission::Normal, false, at(t0, 1), &p), None);
        assert_eq!(b.record(Admission::Normal, true, at(t0, 1), &p), None);
        assert_eq!(b.reopens_in(at(t0, 1)), Some(Duration::from_secs(29)));
    }
}
