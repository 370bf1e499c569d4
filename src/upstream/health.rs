//! Active health checks (SPEC §3): each server of a pool with `health_check` is probed every
//! `interval` with `GET path`; it turns unhealthy after `unhealthy_after` consecutive failed
//! probes and healthy again after `healthy_after` consecutive passes. Servers start healthy.
//!
//! [`HealthState`] is the pure counting logic; [`HealthChecker`] is the background service that
//! probes, reading the pools from the live state on every round so that reloads are followed.

use crate::state::Store;
use crate::upstream::ServerStats;
use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
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
    fn claim(&self, now: Instant, interval: Duration) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.running || s.next_due.is_some_and(|t| now < t) {
            return false;
        }
        s.running = true;
        s.next_due = Some(now + interval);
        true
    }

    fn finish(&self, passed: bool, healthy_after: u32, unhealthy_after: u32) -> Option<bool> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.running = false;
        s.health.record(passed, healthy_after, unhealthy_after)
    }
}

/// The background service that runs the probes.
pub struct HealthChecker {
    inner: Arc<Checker>,
}

struct Checker {
    store: Store,
    connector: Connector,
}

impl HealthChecker {
    pub fn new(store: Store) -> HealthChecker {
        HealthChecker {
            inner: Arc::new(Checker {
                store,
                connector: Connector::new(None),
            }),
        }
    }
}

impl Checker {
    /// Start every probe that is due now.
    fn round(self: &Arc<Self>, now: Instant) {
        let state = self.store.load();
        for pool in &state.pools {
            let Some(hc) = pool.config.health_check.clone() else {
                continue;
            };
            for server in &pool.servers {
                if !server.stats.probe.claim(now, hc.interval) {
                    continue;
                }
                let this = Arc::clone(self);
                let stats = Arc::clone(&server.stats);
                let addr = server.config.socket;
                let label = (pool.name.clone(), server.config.addr.clone());
                let hc = hc.clone();
                tokio::spawn(async move {
                    let passed = this
                        .probe(addr, &hc.path, hc.timeout, |s| hc.expect_status.contains(s))
                        .await;
                    let changed = stats.probe.finish(
                        passed,
                        hc.healthy_after.get(),
                        hc.unhealthy_after.get(),
                    );
                    if let Some(healthy) = changed {
                        apply(&stats, healthy, &label.0, &label.1);
                    }
                });
            }
        }
    }

    /// One `GET path` to `addr`; passes when the status is expected, within `timeout`.
    async fn probe(
        &self,
        addr: std::net::SocketAddr,
        path: &str,
        timeout: Duration,
        ok: impl Fn(u16) -> bool,
    ) -> bool {
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(timeout);
        peer.options.total_connection_timeout = Some(timeout);
        peer.options.read_timeout = Some(timeout);
        peer.options.write_timeout = Some(timeout);
        let attempt = async {
            let (mut session, _) = self.connector.get_http_session(&peer).await.ok()?;
            let mut req = RequestHeader::build("GET", path.as_bytes(), None).ok()?;
            req.insert_header(http::header::HOST, addr.to_string())
                .ok()?;
            req.insert_header(http::header::USER_AGENT, "switchyard-health-check")
                .ok()?;
            req.insert_header(http::header::CONNECTION, "close").ok()?;
            session.write_request_header(Box::new(req)).await.ok()?;
            session.finish_request_body().await.ok()?;
            session.read_response_header().await.ok()?;
            session.response_header().map(|r| r.status.as_u16())
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Some(status)) => ok(status),
            _ => false,
        }
    }
}

fn apply(stats: &ServerStats, healthy: bool, pool: &str, addr: &str) {
    stats.set_healthy(healthy);
    if healthy {
        tracing::info!(
            upstream = pool,
            server = addr,
            "health check: server is healthy again"
        );
    } else {
        tracing::warn!(
            upstream = pool,
            server = addr,
            "health check: server is unhealthy; no traffic until it recovers"
        );
    }
}

/// How often the checker looks for due probes (each server still follows its `interval`).
const TICK: Duration = Duration::from_millis(100);

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let me = Arc::clone(&self.inner);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => me.round(Instant::now()),
            }
        }
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
