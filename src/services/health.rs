//! The health-check service (SPEC §3): the network half of active health checks. Every
//! [`TICK`] it looks at the live state's pools and, for each server whose probe is due (the
//! counting and spacing live in `crate::upstream::health`), sends `GET path` and records the
//! result. It reads the pools from the store on every round, so reloads are followed.

use crate::state::Store;
use crate::upstream::ServerStats;
use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
                // The pool's transport: TLS with its SNI, CA and client certificate when it
                // has `tls:` (a plain probe of a TLS server would mark every server down).
                let peer = pool.peer(server);
                let host = pool.own_host(server).to_string();
                let label = (pool.name.clone(), server.config.addr.clone());
                let hc = hc.clone();
                tokio::spawn(async move {
                    let passed = this
                        .probe(peer, &host, &hc.path, hc.timeout, |s| {
                            hc.expect_status.contains(s)
                        })
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

    /// One `GET path` to `peer` with `Host: host`; passes when the status is expected, within
    /// `timeout`.
    async fn probe(
        &self,
        mut peer: HttpPeer,
        host: &str,
        path: &str,
        timeout: Duration,
        ok: impl Fn(u16) -> bool,
    ) -> bool {
        peer.options.connection_timeout = Some(timeout);
        peer.options.total_connection_timeout = Some(timeout);
        peer.options.read_timeout = Some(timeout);
        peer.options.write_timeout = Some(timeout);
        let attempt = async {
            let (mut session, _) = self.connector.get_http_session(&peer).await.ok()?;
            let mut req = RequestHeader::build("GET", path.as_bytes(), None).ok()?;
            req.insert_header(http::header::HOST, host).ok()?;
            req.insert_header(http::header::USER_AGENT, "switchyard-health-check")
                .ok()?;
            if peer.options.alpn.get_min_http_version() < 2 {
                // HTTP/2 has no `Connection` field (RFC 9113 §8.2.2): h2c / h2 pools' probes
                // share one connection.
                req.insert_header(http::header::CONNECTION, "close").ok()?;
            }
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
