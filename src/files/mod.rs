//! Static files (SPEC §12), the parts that do not touch a connection: where a request's file
//! is, opening it without leaving the root, its validators and what a conditional or range
//! request gets ([`cond`]), the `Accept-Encoding` choice of a precompressed twin, and
//! directory listings ([`listing`]). `crate::proxy::files` writes the answers.
//!
//! Files are opened and read with blocking calls on the worker thread, as nginx does without
//! `aio`: a read of a cached page costs far less than a hand-off to a thread pool
//! (`benches/files.rs` measures both). A download holds one chunk in memory at a time.

pub mod cache;
pub mod cond;
pub mod listing;

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What a path names on disk.
#[derive(Debug)]
pub enum Found {
    File(std::sync::Arc<Opened>),
    /// A directory, by its path.
    Dir(PathBuf),
    Missing,
    /// Not readable, not a regular file or directory, or (through a symbolic link) outside
    /// the root.
    Forbidden,
}

/// An open regular file and what it was when opened.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub path: PathBuf,
    pub len: u64,
    /// The modification time in whole seconds (what `Last-Modified` and `ETag` say).
    pub modified: SystemTime,
    /// The modification time as the file system keeps it (nanoseconds on most).
    exact_mtime: Option<SystemTime>,
}

impl Opened {
    /// Whether the file on disk is still the one that was opened: same size, same mtime. A
    /// file rewritten in place while it is sent fails this (nginx checks the same).
    pub fn unchanged(&self) -> io::Result<bool> {
        let m = self.file.metadata()?;
        Ok(m.len() == self.len && m.modified().ok() == self.exact_mtime)
    }

    /// The strong `ETag`, nginx's form: `"MTIME-SIZE"` in hex.
    pub fn etag(&self) -> cond::Etag {
        cond::Etag::new(self.modified, self.len)
    }
}

fn modified(m: &Metadata) -> SystemTime {
    let secs = m.mtime();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH
    }
}

/// The file for `uri` (a normalized request path): `dir` + `uri`, or with `alias`, `dir` +
/// the part of `uri` after `prefix`. `None` when `uri` is not under `prefix`, or when the
/// relative part would climb (`/static..` under a `/static` prefix leaves `..`).
pub fn file_for(dir: &Path, alias: bool, prefix: &str, uri: &str) -> Option<PathBuf> {
    let rel = if alias {
        uri.strip_prefix(prefix)?
    } else {
        uri
    };
    if rel.split('/').any(|seg| seg == "..") {
        return None;
    }
    let mut s = OsString::from(dir.as_os_str());
    let dir_slash = s.as_encoded_bytes().last() == Some(&b'/');
    match (dir_slash, rel.as_bytes().first()) {
        (true, Some(b'/')) => s.push(&rel[1..]),
        (false, Some(b'/')) | (true, _) => s.push(rel),
        (false, None) => {}
        (false, Some(_)) => {
            s.push("/");
            s.push(rel);
        }
    }
    Some(PathBuf::from(s))
}

/// Open `path`, refusing one whose real path is not under the root unless
/// `follow_symlinks`. `real_root` is the root's real path as resolved at load; `None` (it did
/// not exist then) resolves `root` now. FIFOs and devices are refused without blocking on
/// them.
pub fn open(path: PathBuf, root: &Path, real_root: Option<&Path>, follow_symlinks: bool) -> Found {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path);
    let file = match file {
        Ok(f) => f,
        Err(e) => return missing_or_forbidden(&e),
    };
    let Ok(meta) = file.metadata() else {
        return Found::Forbidden;
    };
    if !follow_symlinks && !inside(&file, &path, root, real_root) {
        return Found::Forbidden;
    }
    if meta.is_dir() {
        return Found::Dir(path);
    }
    if !meta.is_file() {
        return Found::Forbidden;
    }
    Found::File(std::sync::Arc::new(Opened {
        file,
        path,
        len: meta.len(),
        modified: modified(&meta),
        exact_mtime: meta.modified().ok(),
    }))
}

fn missing_or_forbidden(e: &io::Error) -> Found {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG) => Found::Missing,
        _ => Found::Forbidden,
    }
}

/// Whether the open `file`'s real path is under the root's. The real path is read back from
/// the descriptor (`/proc/self/fd`: one call, no allocation, and it is the file actually
/// opened), else resolved from `path`.
fn inside(file: &File, path: &Path, root: &Path, real_root: Option<&Path>) -> bool {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let resolved;
    let real_root = match real_root {
        Some(r) => r,
        None => match std::fs::canonicalize(root) {
            Ok(r) => {
                resolved = r;
                &resolved
            }
            Err(_) => return false,
        },
    };
    let under = |real: &[u8]| {
        let root = real_root.as_os_str().as_bytes();
        real.starts_with(root)
            && (real.len() == root.len() || root.ends_with(b"/") || real[root.len()] == b'/')
    };
    let mut link = [0u8; 40];
    let mut w = &mut link[..];
    let named = write!(w, "/proc/self/fd/{}\0", file.as_raw_fd()).is_ok();
    // Not zeroed: readlink says how much of it it wrote (zeroing 4 KiB per request showed in
    // the profile).
    let mut real = std::mem::MaybeUninit::<[u8; 4096]>::uninit();
    // SAFETY: `link` is NUL-terminated (written above) and `real` is writable for 4096 bytes;
    // readlink writes at most that many and returns how many.
    let n = if named {
        unsafe { libc::readlink(link.as_ptr().cast(), real.as_mut_ptr().cast(), 4096) }
    } else {
        -1
    };
    match usize::try_from(n) {
        Ok(n) if n < 4096 => {
            // SAFETY: readlink initialized the first `n` bytes.
            let real = unsafe { std::slice::from_raw_parts(real.as_ptr().cast::<u8>(), n) };
            under(real)
        }
        _ => std::fs::canonicalize(path).is_ok_and(|r| under(r.as_os_str().as_bytes())),
    }
}

/// `path` with `suffix` appended to its file name (`a.css` -> `a.css.br`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned().into_vec();
    s.extend_from_slice(suffix.as_bytes());
    PathBuf::from(OsString::from_vec(s))
}

/// The precompressed encodings the client accepts, best first: `br` before `gzip`
/// (SPEC §12), each listed with a q above 0 or covered by `*`.
pub fn accepted_encodings(
    accept: Option<&[u8]>,
) -> impl Iterator<Item = (&'static str, &'static str)> {
    let text = accept
        .and_then(|a| std::str::from_utf8(a).ok())
        .unwrap_or("");
    let q_of = |name: &str| -> Option<bool> {
        let mut star = None;
        for item in text.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let zero = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            if coding.eq_ignore_ascii_case(name) {
                return Some(!zero);
            }
            if coding == "*" {
                star = Some(!zero);
            }
        }
        star
    };
    let br = q_of("br").unwrap_or(false);
    let gzip = q_of("gzip").or_else(|| q_of("x-gzip")).unwrap_or(false);
    [("br", ".br", br), ("gzip", ".gz", gzip)]
        .into_iter()
        .filter(|(_, _, ok)| *ok)
        .map(|(e, s, _)| (e, s))
}

/// The `Content-Type` for a file name, from the maintained `mime_guess` table (extensions
/// compared without regard to case); `application/octet-stream` when unknown.
pub fn content_type(path: &Path) -> &'static str {
    mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests;
