//! Recovery from a total outage (SPEC §3): when every server of a pool has an open breaker,
//! each is probed with a TCP connect once per [`PROBE_INTERVAL`]; a server that accepts ends
//! its open period at once (`Breaker::end_open_period`), so the next request is its half-open
//! trial, and the pool serves again within about a second of the server's return instead of
//! after the whole open period (30 s by default, doubling).
//!
//! Why a connect probe and not early trial requests: while the pool is out, every request still
//! gets its `503` at once and no real request is spent on a server that may still be down; the
//! trial that closes the breaker is a real request, so a server that accepts connections but
//! answers errors re-opens it. A pool that still has one server available is left alone: its
//! open breakers keep their full open period, which is what protects a struggling server.

use crate::config::Endpoint;
use crate::state::Store;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::time::{Duration, Instant};

/// How often each server of a pool in total outage is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The background service that probes pools in total outage.
pub struct OutageProber {
    store: Store,
}

impl OutageProber {
    pub fn new(store: Store) -> OutageProber {
        OutageProber { store }
    }

    /// Probe every server of every pool in total outage, all at once; returns when each probe
    /// has answered or timed out (at most one interval).
    async fn round(&self) {
        let state = self.store.load_full();
        let now = Instant::now();
        let mut probes = tokio::task::JoinSet::new();
        for pool in state.pools.iter().filter(|p| p.in_total_outage(now)) {
            let timeout = pool.config.timeouts.connect.min(PROBE_INTERVAL);
            for server in &pool.servers {
                let addr = server.config.socket.clone();
                let (name, shown) = (pool.name.clone(), server.config.addr.clone());
                let stats = std::sync::Arc::clone(&server.stats);
                probes.spawn(async move {
                    let connect = async {
                        match &addr {
                            Endpoint::Inet(a) => tokio::net::TcpStream::connect(a).await.is_ok(),
                            Endpoint::Unix(u) => {
                                tokio::net::UnixStream::connect(u.path()).await.is_ok()
                            }
                        }
                    };
                    let connected = tokio::time::timeout(timeout, connect)
                        .await
                        .unwrap_or(false);
                    if connected && stats.breaker.end_open_period(Instant::now()) {
                        tracing::info!(
                            upstream = %name,
                            server = %shown,
                            "the whole pool is out and this server accepts connections again: half-open for a trial"
                        );
                    }
                });
            }
        }
        while probes.join_next().await.is_some() {}
    }
}

#[async_trait]
impl BackgroundService for OutageProber {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(PROBE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => self.round().await,
            }
        }
    }
}
