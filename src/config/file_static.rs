//! `static` as written in the file (SPEC §12); validated in `validate/files.rs`.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStatic {
    /// The file is `root` + the request path (nginx `root`).
    pub root: Option<String>,
    /// Or: the file is `alias` + the path after the route's prefix (nginx `alias`).
    pub alias: Option<String>,
    /// Files tried for a path ending in `/` (default `[index.html]`).
    pub index: Option<Vec<String>>,
    /// Tried in order (`$uri`, `$uri/`, `$uri.html`, ...); the last is the fallback: a path
    /// (routed again), `=CODE`, or `@POOL` (nginx `try_files`).
    pub try_files: Option<Vec<String>>,
    /// `Cache-Control: max-age` and `Expires`: a duration (`30d`), `max` or `epoch`.
    pub expires: Option<String>,
    /// Serve `FILE.br` / `FILE.gz` when the client accepts it (nginx `gzip_static`).
    pub precompressed: Option<bool>,
    /// An HTML listing for a directory without an index file.
    pub autoindex: Option<bool>,
    /// Follow symbolic links that lead outside the root (default: 403).
    pub follow_symlinks: Option<bool>,
    /// Keep files open this long after they are opened (nginx `open_file_cache`; default 1s,
    /// `off` to open every time). A file changed in place is seen at once, one replaced within
    /// this time.
    pub open_file_cache: Option<String>,
}
