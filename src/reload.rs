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

use crate::changes::{Change, Changes, Inbox, Outcome, ReloadRejected};
use crate::config;
use crate::state::{self, Store};
use notify::{RecursiveMode, Watcher};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
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

/// Every path whose change concerns the running state: the config and the files it reads.
fn watched_files(path: &Path, store: &Store) -> Vec<PathBuf> {
    let mut out = vec![path.to_path_buf()];
    out.extend(store.load().config.files.iter().cloned());
    out
}

/// The watcher of the config file and the files it reads ([`watch`]); its events are turned
/// into changes by [`Watching::run`].
pub struct Watching {
    watcher: notify::RecommendedWatcher,
    watching: Vec<PathBuf>,
    /// The files that matter (shared with notify's callback), refreshed after every reload:
    /// certificates may move.
    files: Arc<Mutex<Vec<PathBuf>>>,
    events: tokio::sync::mpsc::UnboundedReceiver<()>,
    path: PathBuf,
    store: Store,
    changes: Changes,
}

/// Start watching the config file at `path` and the files it reads (the directories that hold
/// them, see the module's notes). Returns an error only if the config's own directory cannot
/// be watched. `store` is read, never written.
pub fn watch(path: &Path, store: Store, changes: Changes) -> notify::Result<Watching> {
    let path = path.to_path_buf();
    let (tx, events) = tokio::sync::mpsc::unbounded_channel::<()>();
    let files = Arc::new(Mutex::new(watched_files(&path, &store)));
    let seen_by_callback = Arc::clone(&files);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Only events about the config file, a file it reads, or a link on the way to one
        // count: a log file written next to them must not hold back (or trigger) a reload.
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
    watch_new(&mut watcher, &mut watching, std::slice::from_ref(&path))?;
    if let Err(e) = watch_new(&mut watcher, &mut watching, &watched_files(&path, &store)) {
        tracing::warn!(
            "cannot watch the certificate files for changes ({e}); reload with SIGHUP or POST /reload"
        );
    }
    Ok(Watching {
        watcher,
        watching,
        files,
        events,
        path,
        store,
        changes,
    })
}

impl Watching {
    /// Tell the writer when a watched file was touched, until `stop`: a burst of events is
    /// coalesced into one look at the files ([`SETTLE`] of quiet, [`SETTLE_MAX`] at most), and
    /// nothing is asked while the running config says `watch: false`.
    pub async fn run(mut self, mut stop: pingora::server::ShutdownWatch) {
        loop {
            tokio::select! {
                event = self.events.recv() => if event.is_none() { return },
                _ = stop.changed() => return,
            }
            let burst_end = tokio::time::Instant::now() + SETTLE_MAX;
            loop {
                let left = burst_end
                    .saturating_duration_since(tokio::time::Instant::now())
                    .min(SETTLE);
                if left.is_zero()
                    || !matches!(
                        tokio::time::timeout(left, self.events.recv()).await,
                        Ok(Some(()))
                    )
                {
                    break;
                }
            }
            if !self.store.load().config.watch {
                continue;
            }
            let _ = self.changes.ask(Change::FilesTouched).await;
            // Follow files a reload may have added.
            let now_watched = watched_files(&self.path, &self.store);
            if let Ok(mut f) = self.files.lock() {
                f.clone_from(&now_watched);
            }
            if let Err(e) = watch_new(&mut self.watcher, &mut self.watching, &now_watched) {
                tracing::warn!("cannot watch a file of the configuration: {e}");
            }
        }
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
