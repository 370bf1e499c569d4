//! Open files kept for a moment (nginx's `open_file_cache`): a file served again within
//! `valid` of its opening is read from the descriptor already open, which saves the `open`,
//! the root check (`readlink`) and the `close` — most of the cost of a small file
//! (`benches/files.rs`: 9.3 µs to open and read 1 KiB, 1.3 µs from an open descriptor).
//!
//! A kept file is checked (`fstat`) each time it is used: one changed in place (size or
//! modification time) is opened again at once. One replaced by a rename (how deploys write)
//! is seen when its entry expires, within `valid`. Only regular files inside the root are
//! kept; what is missing or refused is looked up every time.

use super::Opened;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The open files of one `static` block.
pub struct OpenFiles {
    valid: Duration,
    max: usize,
    map: Mutex<HashMap<PathBuf, (Arc<Opened>, Instant)>>,
}

impl std::fmt::Debug for OpenFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFiles")
            .field("valid", &self.valid)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl OpenFiles {
    /// Files are kept for `valid` (zero: not at all), at most `max` of them.
    pub fn new(valid: Duration, max: usize) -> OpenFiles {
        OpenFiles {
            valid,
            max,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_on(&self) -> bool {
        !self.valid.is_zero() && self.max > 0
    }

    /// The file kept for `path`, if it was opened less than `valid` ago and is unchanged.
    pub fn get(&self, path: &Path, now: Instant) -> Option<Arc<Opened>> {
        if !self.is_on() {
            return None;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (file, until) = map.get(path)?;
        if *until > now && file.unchanged().unwrap_or(false) {
            return Some(Arc::clone(file));
        }
        map.remove(path);
        None
    }

    /// Keep `file` (opened just now) for `valid`. When `max` files are kept, they are all
    /// let go first: simple, and a working set larger than `max` is not served from the cache
    /// anyway.
    pub fn put(&self, file: &Arc<Opened>, now: Instant) {
        if !self.is_on() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max {
            map.clear();
        }
        map.insert(file.path.clone(), (Arc::clone(file), now + self.valid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{Found, open};

    fn opened(path: &Path) -> Arc<Opened> {
        let root = path.parent().unwrap();
        match open(path.to_path_buf(), root, None, false) {
            Found::File(f) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kept_until_valid_and_while_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"one").unwrap();
        let cache = OpenFiles::new(Duration::from_secs(1), 10);
        let t0 = Instant::now();
        assert!(cache.get(&path, t0).is_none());
        cache.put(&opened(&path), t0);
        assert!(cache.get(&path, t0 + Duration::from_millis(500)).is_some());
        assert!(
            cache.get(&path, t0 + Duration::from_secs(2)).is_none(),
            "expired"
        );
        cache.put(&opened(&path), t0);
        // Changed in place (another size): opened again at once.
        std::fs::write(&path, b"three").unwrap();
        assert!(cache.get(&path, t0).is_none());
    }

    #[test]
    fn off_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("{i}"))).collect();
        for p in &paths {
            std::fs::write(p, b"x").unwrap();
        }
        let t0 = Instant::now();
        let off = OpenFiles::new(Duration::ZERO, 10);
        off.put(&opened(&paths[0]), t0);
        assert!(off.get(&paths[0], t0).is_none());
        let two = OpenFiles::new(Duration::from_secs(1), 2);
        for p in &paths {
            two.put(&opened(p), t0);
        }
        assert!(two.get(&paths[2], t0).is_some());
        assert!(two.get(&paths[0], t0).is_none(), "let go when full");
    }
}
