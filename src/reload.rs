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

use crate::config;
use crate::state::{self, Store};
use notify::{RecursiveMode, Watcher};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Quiet time after the last event about the config file before it is read.
pub const SETTLE: Duration = Duration::from_millis(150);

/// Longest wait for a burst of events to end: an edit is applied within this (plus the load)
/// even while the file keeps changing.
pub const SETTLE_MAX: Duration = Duration::from_millis(500);

/// Why a reload did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadRejected {
    /// One line per problem; config errors carry `file:line:col`.
    pub errors: Vec<String>,
}

pub struct Reloader {
    store: Store,
    path: PathBuf,
    pub stats: Arc<ReloadStats>,
    /// Serializes reloads, and remembers the content last read (for the watcher). Held while
    /// loading (plain blocking work, never across an `.await`).
    last: Mutex<Seen>,
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

impl Reloader {
    /// `loaded`: the bytes the running state was built from.
    pub fn new(store: Store, path: PathBuf, loaded: &[u8]) -> Reloader {
        let files = files_hash(&store.load().config.files);
        Reloader {
            store,
            path,
            stats: Arc::new(ReloadStats::started()),
            last: Mutex::new(Seen {
                config: Some(content_hash(loaded)),
                files,
            }),
        }
    }

    /// Reload now (SIGHUP, `POST /reload`). Returns the new generation.
    pub fn reload(&self, trigger: &str) -> Result<u64, ReloadRejected> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = config::read(&self.path).map_err(|e| ReloadRejected {
            errors: e.0.iter().map(ToString::to_string).collect(),
        });
        if let Ok(b) = &bytes {
            last.config = Some(content_hash(b));
        }
        let result = self.apply(trigger, bytes.map(|b| self.build(&b)).and_then(|r| r));
        last.files = files_hash(&self.store.load().config.files);
        result
    }

    /// The live state.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Rebuild the running state with the servers DNS now gives (the discovery service),
    /// serialized with reloads.
    pub fn refresh(&self) {
        let _serial = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.store.load_full();
        match state::refresh(&current) {
            Ok(next) => self.store.store(Arc::new(next)),
            Err(errors) => {
                for e in errors {
                    tracing::error!("cannot apply the servers found in DNS: {e}");
                }
            }
        }
    }

    /// Reload if the file's content differs from what was last read (the watcher).
    fn reload_if_changed(&self) -> Option<Result<u64, ReloadRejected>> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        // Unreadable mid-swap: the next event or a later read will tell.
        let bytes = match config::read(&self.path) {
            Ok(b) => b,
            // Missing for a moment (an editor's or a ConfigMap's swap): the next event will tell.
            Err(_) if !self.path.exists() => return None,
            Err(e) => {
                let errors = e.0.iter().map(ToString::to_string).collect();
                return Some(self.apply("file change", Err(ReloadRejected { errors })));
            }
        };
        let hash = content_hash(&bytes);
        let files = files_hash(&self.store.load().config.files);
        let trigger = if last.config != Some(hash) {
            "file change"
        } else if last.files != files {
            // A certificate or key rewritten (certbot, cert-manager): the same config, read
            // again with the new files.
            "certificate change"
        } else {
            return None;
        };
        last.config = Some(hash);
        let result = self.apply(trigger, self.build(&bytes));
        // After a failed reload the running config still reads the old list of files: what
        // they hold now is what was seen (a fix to them is a new change).
        last.files = files_hash(&self.store.load().config.files);
        Some(result)
    }

    /// Every path whose change concerns the running state: the config and the files it reads.
    fn watched_files(&self) -> Vec<PathBuf> {
        let mut out = vec![self.path.clone()];
        out.extend(self.store.load().config.files.iter().cloned());
        out
    }

    /// Count and log the result of a reload.
    fn apply(
        &self,
        trigger: &str,
        result: Result<u64, ReloadRejected>,
    ) -> Result<u64, ReloadRejected> {
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

    /// Build the new state from `bytes` and publish it.
    fn build(&self, bytes: &[u8]) -> Result<u64, ReloadRejected> {
        let current = self.store.load_full();
        let next = state::build(&self.path, bytes, Some(&current))
            .map_err(|errors| ReloadRejected { errors })?;
        let generation = next.generation;
        self.store.store(Arc::new(next));
        Ok(generation)
    }

    /// Watch the config file and reload when it changes, for as long as the process lives.
    /// Runs on its own thread; returns an error only if watching cannot start.
    pub fn watch(self: &Arc<Self>) -> notify::Result<()> {
        let (tx, rx) = mpsc::channel::<()>();
        // The files that matter, refreshed after every reload (certificates may move).
        let files = Arc::new(Mutex::new(self.watched_files()));
        let seen_by_callback = Arc::clone(&files);
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                // Only events about the config file, a file it reads, or a link on the way to
                // one count: a log file written next to them must not hold back (or trigger) a
                // reload.
                let Ok(event) = res else { return };
                let files = seen_by_callback
                    .lock()
                    .map(|f| f.clone())
                    .unwrap_or_default();
                if event
                    .paths
                    .iter()
                    .any(|p| files.iter().any(|f| concerns(f, p)))
                {
                    let _ = tx.send(());
                }
            })?;
        let mut watching: Vec<PathBuf> = Vec::new();
        // The config's directory must be watchable; a certificate directory that is not is
        // logged, and SIGHUP still reloads.
        watch_new(
            &mut watcher,
            &mut watching,
            std::slice::from_ref(&self.path),
        )?;
        if let Err(e) = watch_new(&mut watcher, &mut watching, &self.watched_files()) {
            tracing::warn!(
                "cannot watch the certificate files for changes ({e}); reload with SIGHUP or POST /reload"
            );
        }
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("config-watch".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Coalesce a burst of events into one look at the file, but never wait
                    // longer than SETTLE_MAX for the burst to end.
                    let burst_end = std::time::Instant::now() + SETTLE_MAX;
                    while let Some(wait) = burst_end
                        .checked_duration_since(std::time::Instant::now())
                        .map(|left| left.min(SETTLE))
                        && rx.recv_timeout(wait).is_ok()
                    {}
                    if !me.store.load().config.watch {
                        continue;
                    }
                    let _ = me.reload_if_changed();
                    // Follow files a reload may have added.
                    let now_watched = me.watched_files();
                    if let Ok(mut f) = files.lock() {
                        f.clone_from(&now_watched);
                    }
                    if let Err(e) = watch_new(&mut watcher, &mut watching, &now_watched) {
                        tracing::warn!("cannot watch a file of the configuration: {e}");
                    }
                }
            })
            .map_err(|e| notify::Error::generic(&e.to_string()))?;
        Ok(())
    }
}

/// Watch the directories of `paths` not watched yet.
fn watch_new(
    watcher: &mut notify::RecommendedWatcher,
    watching: &mut Vec<PathBuf>,
    paths: &[PathBuf],
) -> notify::Result<()> {
    for dir in paths.iter().flat_map(|p| watched_dirs(p)) {
        if !watching.contains(&dir) {
            watcher.watch(&dir, RecursiveMode::NonRecursive)?;
            watching.push(dir);
        }
    }
    Ok(())
}

/// Whether a file event at `event_path` concerns the file at `config`: the file itself, or
/// any link on the way to it, or what such a link points to (a Kubernetes ConfigMap swaps the
/// `..data` link; an editor renames a new file over the old one).
fn concerns(config: &Path, event_path: &Path) -> bool {
    let event = normalized(event_path);
    chain(config).iter().any(|p| normalized(p) == event)
}

/// A path with its directory made canonical (the file itself may be gone, or a link), so
/// `./switchyard.yaml`, `switchyard.yaml` and `/etc/switchyard/switchyard.yaml` compare equal.
fn normalized(p: &Path) -> PathBuf {
    let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
        return p.to_path_buf();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::canonicalize(dir).map_or_else(|_| p.to_path_buf(), |d| d.join(name))
}

/// The config path and every path met while resolving it: each symlink, each link target and
/// the directories a relative target goes through. Computed on each event, so it follows
/// swaps; bounded against link loops.
fn chain(config: &Path) -> Vec<PathBuf> {
    let mut out = vec![config.to_path_buf()];
    let mut pending = vec![config.to_path_buf()];
    while let Some(p) = pending.pop() {
        if out.len() > 64 {
            break;
        }
        // Every ancestor that is a link counts too (`..data` in `..data/switchyard.yaml`).
        for ancestor in p.ancestors().skip(1).take(4) {
            if ancestor.is_symlink() && !out.iter().any(|o| o == ancestor) {
                out.push(ancestor.to_path_buf());
                pending.push(ancestor.to_path_buf());
            }
        }
        let Ok(target) = std::fs::read_link(&p) else {
            continue;
        };
        let target = match p.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
        if !out.contains(&target) {
            out.push(target.clone());
            pending.push(target);
        }
    }
    // Where it all leads (events in the target's directory name the real file).
    if let Ok(real) = std::fs::canonicalize(config)
        && !out.contains(&real)
    {
        out.push(real);
    }
    out
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

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_file_and_its_links_concern_the_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("..v1")).unwrap();
        std::fs::write(d.join("..v1/switchyard.yaml"), "x").unwrap();
        std::os::unix::fs::symlink("..v1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/switchyard.yaml", d.join("switchyard.yaml")).unwrap();
        let config = d.join("switchyard.yaml");
        assert!(concerns(&config, &config));
        assert!(concerns(&config, &d.join("..data")));
        assert!(concerns(&config, &d.join("..v1/switchyard.yaml")));
        assert!(!concerns(&config, &d.join("access.log")));
        assert!(!concerns(&config, &d.join("..data_tmp")));
        // The same file named through another spelling of its directory.
        assert!(concerns(&config, &d.join("..v1/../switchyard.yaml")));
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
