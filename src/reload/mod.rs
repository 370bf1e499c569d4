//! Hot reload (SPEC §3): `SIGHUP`, a change of the file, or `POST /reload` -> load -> validate
//! -> build the new state (carrying per-server state over) -> swap the one `ArcSwap`.
//!
//! All or nothing: any error leaves the running state untouched, is logged with its
//! `file:line:col`, and counts as a failed reload. A change of `listen`, `admin.listen` or
//! `threads` cannot be applied to running listeners and runtimes, so such a reload is refused
//! with a message saying so (use the `SIGQUIT` upgrade).
//!
//! The file watcher watches the directory holding the config (and the directory its symlink
//! points into), not the file: editors that save by writing a new file and renaming it over the
//! old one, and Kubernetes ConfigMap updates (a new `..data` symlink swapped in), replace the
//! file rather than modify it. Events are coalesced for [`SETTLE`], and a reload happens only
//! when the file's content actually changed. The files the config reads (TLS certificates and
//! keys, CA files, the admin token) are watched the same way: certbot renewing a certificate or
//! cert-manager updating a Kubernetes Secret reloads the same config with the new files.
//!
//! The file is read once per reload; its bytes go to [`state::build`], the same path the
//! start-up takes.
//!
//! [`Writer`] is the one writer of the live state (see `changes.rs`): reloads, whatever asks
//! for them, and DNS refreshes are applied by it, one at a time.

mod watch;

pub use watch::{Watching, watch};

use crate::changes::{Change, Inbox, Outcome, ReloadRejected};
use crate::config;
use crate::state::{self, Store};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Quiet time after the last event about the config file before it is read.
pub const SETTLE: Duration = Duration::from_millis(150);

/// Longest wait for a burst of events to end: an edit is applied within this (plus the load)
/// even while the file keeps changing.
pub const SETTLE_MAX: Duration = Duration::from_millis(500);

/// Reload counters, read by the metrics (SPEC §5). The load at start counts as the first
/// success (it sets the timestamp) but not as a reload.
#[derive(Debug, Default)]
pub struct ReloadStats {
    success: AtomicU64,
    failure: AtomicU64,
    last_success_unix_ms: AtomicU64,
}

impl ReloadStats {
    /// Stats whose last success is now (the configuration loaded at start).
    pub fn started() -> ReloadStats {
        let s = ReloadStats::default();
        s.last_success_unix_ms
            .store(unix_now_ms(), Ordering::Relaxed);
        s
    }

    /// (successful, failed) reloads.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.success.load(Ordering::Relaxed),
            self.failure.load(Ordering::Relaxed),
        )
    }

    pub fn last_success_unix(&self) -> f64 {
        self.last_success_unix_ms.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// What the running configuration was built from, as hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    config: Option<u64>,
    /// The files the config reads (certificates, keys…): their paths and contents.
    files: u64,
}

/// A hash of the paths and contents of `files` (a missing or unreadable file hashes as such).
fn files_hash(files: &[PathBuf]) -> u64 {
    use std::io::Read;
    let mut h = DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        let mut bytes = Vec::new();
        match std::fs::File::open(f).and_then(|file| file.take(4 << 20).read_to_end(&mut bytes)) {
            Ok(_) => bytes.hash(&mut h),
            Err(e) => e.kind().to_string().hash(&mut h),
        }
    }
    h.finish()
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The one writer of the live state: applies each [`Change`] in the order received, through
/// the one build path, and publishes the result ([`Writer::run`], a task of the server's).
pub struct Writer {
    store: Store,
    path: PathBuf,
    stats: Arc<ReloadStats>,
    /// What the running state was built from (for the watcher's "did it change").
    last: Seen,
}

impl Writer {
    /// The writer of `store`, whose state was built from `loaded`, the bytes of `path`.
    pub fn new(store: Store, path: PathBuf, loaded: &[u8]) -> Writer {
        let files = files_hash(&store.load().config.files);
        Writer {
            store,
            path,
            stats: Arc::new(ReloadStats::started()),
            last: Seen {
                config: Some(content_hash(loaded)),
                files,
            },
        }
    }

    /// The reload counters (for the metrics).
    pub fn stats(&self) -> Arc<ReloadStats> {
        Arc::clone(&self.stats)
    }

    /// Apply every change from `inbox`, in order, until `stop` (the server's shutdown) or
    /// until every sender is gone. Building a state reads the disk and resolves host names, so
    /// each change is applied on the runtime's blocking threads.
    pub async fn run(self, mut inbox: Inbox, mut stop: pingora::server::ShutdownWatch) {
        let me = Arc::new(Mutex::new(self));
        loop {
            let (change, answer) = tokio::select! {
                next = inbox.next() => match next {
                    Some(n) => n,
                    None => return,
                },
                _ = stop.changed() => return,
            };
            let writer = Arc::clone(&me);
            let outcome = tokio::task::spawn_blocking(move || {
                writer
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .apply(change)
            })
            .await
            .unwrap_or_else(|e| {
                Err(ReloadRejected {
                    errors: vec![format!("the reload failed: {e}")],
                })
            });
            answer.give(outcome);
        }
    }

    /// Apply one change. A change with nothing to do (files touched but unchanged, `watch`
    /// off) answers the running generation.
    pub fn apply(&mut self, change: Change) -> Outcome {
        match change {
            Change::Reload { trigger } => self.reload(trigger),
            Change::FilesTouched if self.store.load().config.watch => self
                .reload_if_changed()
                .unwrap_or_else(|| Ok(self.store.load().generation)),
            Change::FilesTouched => Ok(self.store.load().generation),
            Change::DnsAnswers => self.refresh(),
        }
    }

    /// Reload now (SIGHUP, `POST /reload`). Returns the new generation.
    fn reload(&mut self, trigger: &str) -> Outcome {
        let bytes = config::read(&self.path).map_err(|e| ReloadRejected {
            errors: e.0.iter().map(ToString::to_string).collect(),
        });
        if let Ok(b) = &bytes {
            self.last.config = Some(content_hash(b));
        }
        let built = bytes.and_then(|b| self.build(&b));
        let result = self.count(trigger, built);
        self.last.files = files_hash(&self.store.load().config.files);
        result
    }

    /// Rebuild the running state with the servers DNS now gives (the discovery service).
    fn refresh(&mut self) -> Outcome {
        let current = self.store.load_full();
        match state::refresh(&current) {
            Ok(next) => {
                let generation = next.generation;
                self.store.store(Arc::new(next));
                Ok(generation)
            }
            Err(errors) => {
                for e in &errors {
                    tracing::error!("cannot apply the servers found in DNS: {e}");
                }
                Err(ReloadRejected { errors })
            }
        }
    }

    /// Reload if the file's content differs from what was last read (the watcher).
    fn reload_if_changed(&mut self) -> Option<Outcome> {
        // Unreadable mid-swap: the next event or a later read will tell.
        let bytes = match config::read(&self.path) {
            Ok(b) => b,
            // Missing for a moment (an editor's or a ConfigMap's swap): the next event will tell.
            Err(_) if !self.path.exists() => return None,
            Err(e) => {
                let errors = e.0.iter().map(ToString::to_string).collect();
                return Some(self.count("file change", Err(ReloadRejected { errors })));
            }
        };
        let hash = content_hash(&bytes);
        let files = files_hash(&self.store.load().config.files);
        let trigger = if self.last.config != Some(hash) {
            "file change"
        } else if self.last.files != files {
            // A certificate or key rewritten (certbot, cert-manager): the same config, read
            // again with the new files.
            "certificate change"
        } else {
            return None;
        };
        self.last.config = Some(hash);
        let built = self.build(&bytes);
        let result = self.count(trigger, built);
        // After a failed reload the running config still reads the old list of files: what
        // they hold now is what was seen (a fix to them is a new change).
        self.last.files = files_hash(&self.store.load().config.files);
        Some(result)
    }

    /// Count and log the result of a reload.
    fn count(&self, trigger: &str, result: Outcome) -> Outcome {
        let st = &self.stats;
        match &result {
            Ok(generation) => {
                st.success.fetch_add(1, Ordering::Relaxed);
                st.last_success_unix_ms
                    .store(unix_now_ms(), Ordering::Relaxed);
                tracing::info!(trigger, generation, config = %self.path.display(), "configuration reloaded");
            }
            Err(rejected) => {
                st.failure.fetch_add(1, Ordering::Relaxed);
                for e in &rejected.errors {
                    tracing::error!(trigger, "reload rejected: {e}");
                }
                tracing::error!(trigger, "the running configuration is unchanged");
            }
        }
        result
    }

    /// Build the new state from `bytes` and publish it: the one store into the live state
    /// besides [`refresh`](Self::refresh), both on this writer.
    fn build(&self, bytes: &[u8]) -> Outcome {
        let current = self.store.load_full();
        let next = state::build(&self.path, bytes, Some(&current))
            .map_err(|errors| ReloadRejected { errors })?;
        let generation = next.generation;
        self.store.store(Arc::new(next));
        Ok(generation)
    }
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
