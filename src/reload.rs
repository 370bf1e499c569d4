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
//! when the file's content actually changed.

use crate::access_log::AccessLogger;
use crate::config::{self, Config};
use crate::metrics::metrics;
use crate::state::{RuntimeState, Store};
use notify::{RecursiveMode, Watcher};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Quiet time after the last file event before the file is read.
pub const SETTLE: Duration = Duration::from_millis(150);

/// Why a reload did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadRejected {
    /// One line per problem; config errors carry `file:line:col`.
    pub errors: Vec<String>,
}

pub struct Reloader {
    store: Store,
    path: PathBuf,
    /// Serializes reloads, and remembers the content last read (for the watcher). Held while
    /// loading (plain blocking work, never across an `.await`).
    last: Mutex<Option<u64>>,
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// What cannot change without restarting the listeners or runtimes.
fn fixed_settings_changed(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if old.listen != new.listen {
        out.push(format!(
            "`listen` changed ({:?} -> {:?}); listeners cannot change in a reload: restart, or start a new process with --upgrade and send SIGQUIT to this one",
            old.listen, new.listen
        ));
    }
    if old.admin_listen != new.admin_listen {
        out.push(format!(
            "`admin.listen` changed ({} -> {}); it cannot change in a reload: restart, or use the SIGQUIT upgrade",
            old.admin_listen, new.admin_listen
        ));
    }
    if old.worker_threads() != new.worker_threads() {
        out.push(format!(
            "`threads` changed ({} -> {}); worker threads cannot change in a reload: restart, or use the SIGQUIT upgrade",
            old.threads, new.threads
        ));
    }
    out
}

impl Reloader {
    pub fn new(store: Store, path: PathBuf) -> Reloader {
        let initial = std::fs::read(&path).ok().map(|b| content_hash(&b));
        Reloader {
            store,
            path,
            last: Mutex::new(initial),
        }
    }

    /// Reload now (SIGHUP, `POST /reload`). Returns the new generation.
    pub fn reload(&self, trigger: &str) -> Result<u64, ReloadRejected> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(bytes) = std::fs::read(&self.path) {
            *last = Some(content_hash(&bytes));
        }
        self.apply(trigger)
    }

    /// Reload if the file's content differs from what was last read (the watcher).
    fn reload_if_changed(&self) -> Option<Result<u64, ReloadRejected>> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        // Unreadable mid-swap: the next event or a later read will tell.
        let bytes = std::fs::read(&self.path).ok()?;
        let hash = content_hash(&bytes);
        if *last == Some(hash) {
            return None;
        }
        *last = Some(hash);
        Some(self.apply("file change"))
    }

    fn apply(&self, trigger: &str) -> Result<u64, ReloadRejected> {
        let result = self.build();
        let m = metrics();
        match &result {
            Ok(generation) => {
                m.reloads.with_label_values(&["success"]).inc();
                m.generation.set(*generation as i64);
                m.last_reload_success.set(unix_now());
                tracing::info!(trigger, generation, config = %self.path.display(), "configuration reloaded");
            }
            Err(rejected) => {
                m.reloads.with_label_values(&["failure"]).inc();
                for e in &rejected.errors {
                    tracing::error!(trigger, "reload rejected: {e}");
                }
                tracing::error!(trigger, "the running configuration is unchanged");
            }
        }
        result
    }

    fn build(&self) -> Result<u64, ReloadRejected> {
        let config = config::load(&self.path).map_err(|errs| ReloadRejected {
            errors: errs.0.iter().map(ToString::to_string).collect(),
        })?;
        let current = self.store.load_full();
        let fixed = fixed_settings_changed(&current.config, &config);
        if !fixed.is_empty() {
            return Err(ReloadRejected { errors: fixed });
        }
        let access_log = if current
            .access_log
            .matches(&config.access_log, config.access_log_format)
        {
            Arc::clone(&current.access_log)
        } else {
            Arc::new(
                AccessLogger::open(&config.access_log, config.access_log_format).map_err(|e| {
                    ReloadRejected {
                        errors: vec![format!(
                            "cannot open the access log {:?}: {e}",
                            config.access_log
                        )],
                    }
                })?,
            )
        };
        let generation = current.generation + 1;
        let state = RuntimeState::build(config, generation, Some(&current), access_log);
        self.store.store(Arc::new(state));
        Ok(generation)
    }

    /// Watch the config file and reload when it changes, for as long as the process lives.
    /// Runs on its own thread; returns an error only if watching cannot start.
    pub fn watch(self: &Arc<Self>) -> notify::Result<()> {
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if res.is_ok() {
                    let _ = tx.send(());
                }
            })?;
        for dir in watched_dirs(&self.path) {
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        }
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("config-watch".into())
            .spawn(move || {
                // The watcher lives (and keeps sending) as long as this thread.
                let _watcher = watcher;
                while rx.recv().is_ok() {
                    // Coalesce a burst of events into one look at the file.
                    while rx.recv_timeout(SETTLE).is_ok() {}
                    if !me.store.load().config.watch {
                        continue;
                    }
                    let _ = me.reload_if_changed();
                }
            })
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(())
    }
}

/// The directory of the config path, and that of the file it resolves to if different.
fn watched_dirs(path: &Path) -> Vec<PathBuf> {
    let parent = |p: &Path| -> PathBuf {
        match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    };
    let mut dirs = vec![parent(path)];
    if let Ok(real) = std::fs::canonicalize(path) {
        let d = parent(&real);
        if !dirs.contains(&d) && std::fs::canonicalize(&dirs[0]).ok().as_ref() != Some(&d) {
            dirs.push(d);
        }
    }
    dirs
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Set the metrics of the configuration loaded at start (generation 1).
pub fn record_initial_load(generation: u64) {
    let m = metrics();
    m.generation.set(generation as i64);
    m.last_reload_success.set(unix_now());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn cfg(text: &str) -> Config {
        load_str(text, "t", PathBuf::from("t")).unwrap()
    }

    #[test]
    fn listen_admin_and_threads_are_fixed() {
        let base = "listen: [\"127.0.0.1:8080\"]\nthreads: 2\nupstreams:\n  app: {servers: [{addr: \"127.0.0.1:1\"}]}\n";
        let a = cfg(base);
        assert!(
            fixed_settings_changed(&a, &cfg(&base.replace("127.0.0.1:1", "127.0.0.1:2")))
                .is_empty()
        );
        let moved = fixed_settings_changed(&a, &cfg(&base.replace("8080", "8081")));
        assert_eq!(moved.len(), 1);
        assert!(moved[0].contains("`listen` changed"), "{moved:?}");
        assert!(moved[0].contains("--upgrade"), "{moved:?}");
        let threads = fixed_settings_changed(&a, &cfg(&base.replace("threads: 2", "threads: 4")));
        assert!(threads[0].contains("`threads` changed"), "{threads:?}");
        let admin = fixed_settings_changed(
            &a,
            &cfg(&format!("{base}admin: {{listen: \"127.0.0.1:9999\"}}\n")),
        );
        assert!(admin[0].contains("`admin.listen` changed"), "{admin:?}");
    }

    #[test]
    fn watches_the_directory_and_the_symlink_target_directory() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("..2024_01_01");
        std::fs::create_dir(&real_dir).unwrap();
        std::fs::write(real_dir.join("switchyard.yaml"), "x").unwrap();
        let link = dir.path().join("switchyard.yaml");
        std::os::unix::fs::symlink(real_dir.join("switchyard.yaml"), &link).unwrap();
        let dirs = watched_dirs(&link);
        assert_eq!(dirs.len(), 2, "{dirs:?}");
        assert_eq!(dirs[0], dir.path());
        assert_eq!(dirs[1], std::fs::canonicalize(&real_dir).unwrap());
    }
}
