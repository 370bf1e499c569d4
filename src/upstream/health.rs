//! Active health checks (SPEC §3): each server of a pool with `health_check` is probed every
//! `interval` with `GET path`; it turns unhealthy after `unhealthy_after` consecutive failed
//! probes and healthy again after `healthy_after` consecutive passes. Servers start healthy.
//!
//! This is the counting logic only: [`HealthState`] counts consecutive results and [`Probe`]
//! spaces the probes of one server. The network part, the background service that sends the
//! probes, is `crate::services::health`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive probe results of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthState {
    pub healthy: bool,
    passes: u32,
    failures: u32,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState {
            healthy: true,
            passes: 0,
            failures: 0,
        }
    }
}

impl HealthState {
    /// Count one probe; returns the new health when it changes.
    pub fn record(
        &mut self,
        passed: bool,
        healthy_after: u32,
        unhealthy_after: u32,
    ) -> Option<bool> {
        if passed {
            self.failures = 0;
            self.passes = self.passes.saturating_add(1);
            if !self.healthy && self.passes >= healthy_after {
                self.healthy = true;
                return Some(true);
            }
        } else {
            self.passes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.healthy && self.failures >= unhealthy_after {
                self.healthy = false;
                return Some(false);
            }
        }
        None
    }
}

/// Per-server probe bookkeeping, kept with the server's live state across reloads.
#[derive(Debug, Default)]
pub struct Probe {
    state: Mutex<ProbeState>,
}

#[derive(Debug, Default)]
struct ProbeState {
    health: HealthState,
    next_due: Option<Instant>,
    running: bool,
}

impl Probe {
    /// Claim the next probe if it is due; the caller must then call [`Probe::finish`].
    pub fn claim(&self, now: Instant, interval: Duration) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.running || s.next_due.is_some_and(|t| now < t) {
            return false;
        }
        s.running = true;
        s.next_due = Some(now + interval);
        true
    }

    pub fn finish(&self, passed: bool, healthy_after: u32, unhealthy_after: u32) -> Option<bool> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.running = false;
        s.health.record(passed, healthy_after, unhealthy_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_unhealthy_after_n_failures_and_back_after_m_passes() {
        let mut h = HealthState::default();
        assert!(h.healthy);
        assert_eq!(h.record(false, 2, 3), None);
        assert_eq!(h.record(false, 2, 3), None);
        // A pass in between resets the count of failures.
        assert_eq!(h.record(true, 2, 3), None);
        assert_eq!(h.record(false, 2, 3), None);
        assert_eq!(h.record(false, 2, 3), None);
        assert_eq!(h.record(false, 2, 3), Some(false));
        assert_eq!(h.record(false, 2, 3), None);
        assert_eq!(h.record(true, 2, 3), None);
        assert_eq!(h.record(true, 2, 3), Some(true));
        assert!(h.healthy);
    }

    #[test]
    fn a_probe_is_claimed_once_per_interval() {
        let p = Probe::default();
        let t0 = Instant::now();
        let iv = Duration::from_secs(5);
        assert!(p.claim(t0, iv));
        // Still running: not claimed again.
        assert!(!p.claim(t0 + Duration::from_secs(6), iv));
        p.finish(true, 1, 1);
        assert!(!p.claim(t0 + Duration::from_secs(4), iv));
        assert!(p.claim(t0 + Duration::from_secs(5), iv));
    }
}
