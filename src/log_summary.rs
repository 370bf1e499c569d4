//! Failures of single requests are not error-log lines: each is in the access log and the
//! metrics already, and an outage answered at full speed would otherwise write hundreds of
//! thousands of lines a minute. The error log gets state changes (breakers, health, reloads)
//! and, from here, one summary line at most every [`INTERVAL`] counting what failed.
//!
//! pingora's own per-request error lines are silenced the same way: the proxy answers `true`
//! to its `suppress_error_log` / `suppress_proxy_warn_log` hooks, and the binary's default log
//! filter turns the `pingora_proxy` target off (`RUST_LOG` can turn it back on).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often the summary is written (when anything failed).
pub const INTERVAL: Duration = Duration::from_secs(10);

/// What a failed request or connection is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `503`: no server of the pool was eligible.
    NoServer,
    /// `502` / `504`: the servers failed.
    Upstream,
    /// The client went away before the answer.
    ClientGone,
    /// Refused at the front door: a bad, too large or too slow request head or body.
    Refused,
}

/// Failures counted for the next summary line (one set per server, in its `lifecycle::Tally`).
#[derive(Debug, Default)]
pub struct Failures([AtomicU64; 4]);

impl Failures {
    /// Count one failure for the next summary.
    pub fn count(&self, f: Failure) {
        self.0[f as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The summary of what was counted since the last call, if anything was (and reset).
    pub fn take_summary(&self) -> Option<String> {
        let [no_server, upstream, gone, refused] =
            [0, 1, 2, 3].map(|i| self.0[i].swap(0, Ordering::Relaxed));
        if no_server + upstream + gone + refused == 0 {
            return None;
        }
        let mut parts = Vec::new();
        for (n, what) in [
            (no_server, "answered 503 (no server available)"),
            (upstream, "answered 502/504 (the servers failed)"),
            (gone, "ended by the client before the answer"),
            (
                refused,
                "refused at the front door (bad, too large or too slow)",
            ),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        Some(parts.join(", "))
    }

    /// Write the summary every [`INTERVAL`] until `stop` (a task of the server's).
    pub async fn write_every_interval(&self, mut stop: pingora::server::ShutdownWatch) {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Some(s) = self.take_summary() {
                tracing::warn!(
                    "in the last {} s, requests failed: {s} (each is in the access log and the metrics)",
                    INTERVAL.as_secs()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_and_resets() {
        let f = Failures::default();
        for _ in 0..3 {
            f.count(Failure::NoServer);
        }
        f.count(Failure::Refused);
        let s = f.take_summary().unwrap();
        assert!(s.starts_with("3 answered 503"), "{s}");
        assert!(
            s.ends_with("1 refused at the front door (bad, too large or too slow)"),
            "{s}"
        );
        assert_eq!(f.take_summary(), None);
    }
}
