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

static COUNTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// Count one failure for the next summary.
pub fn count(f: Failure) {
    COUNTS[f as usize].fetch_add(1, Ordering::Relaxed);
}

/// The summary of what was counted since the last call, if anything was (and reset).
pub fn take_summary() -> Option<String> {
    let [no_server, upstream, gone, refused] =
        [0, 1, 2, 3].map(|i| COUNTS[i].swap(0, Ordering::Relaxed));
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

/// Write the summary every [`INTERVAL`] on a thread of its own, for as long as the process runs.
pub fn start() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("log-summary".into())
        .spawn(|| {
            loop {
                std::thread::sleep(INTERVAL);
                if let Some(s) = take_summary() {
                    tracing::warn!(
                        "in the last {} s, requests failed: {s} (each is in the access log and the metrics)",
                        INTERVAL.as_secs()
                    );
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_and_resets() {
        // The counters are process-wide: this is the only test touching them.
        let _ = take_summary();
        for _ in 0..3 {
            count(Failure::NoServer);
        }
        count(Failure::Refused);
        let s = take_summary().unwrap();
        assert!(s.starts_with("3 answered 503"), "{s}");
        assert!(
            s.ends_with("1 refused at the front door (bad, too large or too slow)"),
            "{s}"
        );
        assert_eq!(take_summary(), None);
    }
}
