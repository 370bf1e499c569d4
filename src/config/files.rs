//! `static` (SPEC §12), as validated: where a route's files are and how they are served.

use crate::vars::Template;
use std::path::PathBuf;
use std::time::Duration;

/// A route's `static` block.
#[derive(Debug)]
pub struct StaticFiles {
    /// `root` or `alias`, as configured (made absolute against the config's directory).
    pub dir: PathBuf,
    /// `alias`: the route's prefix is replaced by `dir` (else `dir` + the whole path).
    pub alias: bool,
    /// `dir` with its symbolic links resolved, when it could be at load: a file whose real
    /// path is not under it is outside the root.
    pub real_dir: Option<PathBuf>,
    /// Names tried for a path ending in `/`.
    pub index: Vec<String>,
    /// `try_files` but the last entry.
    pub try_files: Vec<TryFile>,
    /// What happens when nothing was found.
    pub fallback: Fallback,
    pub expires: Option<Expires>,
    pub precompressed: bool,
    pub autoindex: bool,
    pub follow_symlinks: bool,
    /// Files kept open (`open_file_cache`).
    pub open_files: crate::files::cache::OpenFiles,
}

/// One `try_files` entry: a URI, rendered per request; one ending in `/` names a directory.
#[derive(Debug)]
pub enum TryFile {
    /// `$uri`, the common case (nothing to render).
    Uri,
    /// `$uri/`.
    UriDir,
    Template(Template),
}

/// The last `try_files` entry.
#[derive(Debug)]
pub enum Fallback {
    /// No `try_files` and no upstream: nginx's own handling of `$uri` (a directory without
    /// its `/` is redirected to it; with it, its index).
    Serve,
    /// `=CODE`.
    Status(u16),
    /// `@POOL`, or the route's `upstream`: the request is proxied.
    Upstream,
    /// A path: the request is routed again with this target (nginx's internal redirect).
    Redirect(Template),
}

/// `expires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expires {
    /// `Cache-Control: max-age=N`, `Expires` N from now.
    For(Duration),
    /// `max`: ten years, `Expires: Thu, 31 Dec 2037 23:55:55 GMT` (nginx's).
    Max,
    /// `epoch`: `Cache-Control: no-cache`, `Expires` in 1970.
    Epoch,
}

impl StaticFiles {
    /// The `try_files` entries and the fallback, in nginx's words (for messages).
    pub fn tries_upstream(&self) -> bool {
        matches!(self.fallback, Fallback::Upstream)
    }
}
