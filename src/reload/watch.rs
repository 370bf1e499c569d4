//! The file watcher (see the notes of `reload`): notify's events about the config file, the
//! files it reads, or a link on the way to one, coalesced into `Change::FilesTouched`.

use super::{SETTLE, SETTLE_MAX};
use crate::changes::{Change, Changes};
use crate::state::Store;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
