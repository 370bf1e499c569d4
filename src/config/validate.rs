//! File structs -> typed [`Config`]: defaults, units, addresses, cross-references.
//!
//! Every problem is recorded with the position of the offending value (found in the YAML tree
//! by its key path) and checking goes on, so one run reports all of them. Never panics.

mod files;
mod location;
mod route;
#[cfg(test)]
mod tests;
mod tls;
mod transport;
mod upstream;
mod vars;

use super::error::{Issues, did_you_mean};
use super::file::FileConfig;
use super::units::{parse_duration, parse_listen, parse_size, resolve_addr};
use super::yaml::{Node, Seg};
use super::{AccessLog, AdminToken, Config, Limits, LogFormat, OutcomeSet, Route};
use crate::config::defaults;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;
use upstream::upstream;

pub use super::defaults::ADMIN_LISTEN as DEFAULT_ADMIN_LISTEN;

/// Smallest `max_header_bytes` accepted: below this, ordinary browser requests fail.
const MIN_HEADER_BYTES: u64 = 1024;
/// pingora reads at most 1 MiB of request head; a larger limit could never be reached.
const MAX_HEADER_BYTES: u64 = 1024 * 1024;
/// pingora's request body replay buffer (`BODY_BUF_LIMIT`) is fixed at 64 KiB.
const MAX_RETRY_BUFFER: u64 = defaults::RETRY_BUFFER;

/// How `host:port` text becomes an address ([`resolve_addr`] resolves names).
pub type Resolve<'a> = &'a dyn Fn(&str) -> Result<SocketAddr, String>;

struct Checker<'a> {
    root: &'a Node,
    issues: &'a mut Issues,
    /// Allowed, but worth saying (`Config::warnings`).
    warnings: Issues,
    resolve: Resolve<'a>,
    /// The config file: files it names are relative to its directory.
    source: PathBuf,
    /// Files read for this config (`Config::files`).
    files: Vec<PathBuf>,
}

fn path_string(path: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

impl Checker<'_> {
    fn err(&mut self, path: &[Seg<'_>], msg: impl Into<String>) {
        let mark = self.root.locate(path);
        self.issues.push(mark, path_string(path), msg);
    }

    /// A file named in the config, relative to the config's directory; remembered as read.
    fn file(&mut self, name: &str) -> PathBuf {
        let path = tls::resolve_file(&self.source, name);
        if !self.files.contains(&path) {
            self.files.push(path.clone());
        }
        path
    }

    fn warn(&mut self, path: &[Seg<'_>], msg: impl Into<String>) {
        let mark = self.root.locate(path);
        self.warnings.push(mark, path_string(path), msg);
    }

    fn duration(&mut self, v: &Option<String>, path: &[Seg<'_>], default: Duration) -> Duration {
        match v {
            None => default,
            Some(t) => parse_duration(t).unwrap_or_else(|e| {
                self.err(path, e);
                default
            }),
        }
    }

    /// A duration that must be more than zero.
    fn positive(&mut self, v: &Option<String>, path: &[Seg<'_>], default: Duration) -> Duration {
        let d = self.duration(v, path, default);
        if d.is_zero() && v.is_some() {
            self.err(path, "must be more than 0");
            return default;
        }
        d
    }

    fn size(&mut self, v: &Option<String>, path: &[Seg<'_>], default: u64) -> u64 {
        match v {
            None => default,
            Some(t) => parse_size(t).unwrap_or_else(|e| {
                self.err(path, e);
                default
            }),
        }
    }

    fn nonzero(&mut self, v: Option<u32>, path: &[Seg<'_>], default: u32) -> NonZeroU32 {
        let fallback = NonZeroU32::new(default).unwrap_or(NonZeroU32::MIN);
        match v {
            None => fallback,
            Some(n) => NonZeroU32::new(n).unwrap_or_else(|| {
                self.err(path, "must be at least 1");
                fallback
            }),
        }
    }

    fn outcomes(
        &mut self,
        v: &Option<Vec<String>>,
        path: &[Seg<'_>],
        default: &[&str],
        extra: &[&str],
    ) -> (OutcomeSet, Vec<String>) {
        let mut set = OutcomeSet::default();
        let mut extras_found = Vec::new();
        let names: Vec<&str> = match v {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => default.to_vec(),
        };
        let known = [
            "error",
            "timeout",
            "invalid_header",
            "http_500",
            "http_502",
            "http_503",
            "http_504",
            "http_429",
        ];
        for (i, name) in names.iter().enumerate() {
            if extra.contains(name) {
                extras_found.push(name.to_string());
                continue;
            }
            if let Err(e) = set.insert_name(name) {
                let mut p = path.to_vec();
                p.push(Seg::Index(i));
                let candidates = known.iter().chain(extra.iter()).copied();
                self.err(&p, format!("{e}{}", did_you_mean(name, candidates)));
            }
        }
        (set, extras_found)
    }
}

/// Validate `file` (read from the YAML tree `root`). Returns `None` only when nothing usable
/// could be built; callers must check `issues` either way.
/// Whether the loader accepts `re` as a route or `match` regex (for `import-nginx`).
pub fn check_regex(re: &str) -> Result<(), String> {
    location::compile(re, false).map(|_| ())
}

pub fn validate(
    file: &FileConfig,
    root: &Node,
    issues: &mut Issues,
    source: PathBuf,
) -> Option<Config> {
    validate_with(file, root, issues, source, &resolve_addr)
}

/// [`validate`] with a chosen way of turning addresses into socket addresses.
pub fn validate_with(
    file: &FileConfig,
    root: &Node,
    issues: &mut Issues,
    source: PathBuf,
    resolve: Resolve<'_>,
) -> Option<Config> {
    let mut c = Checker {
        root,
        issues,
        warnings: Issues::default(),
        resolve,
        source: source.clone(),
        files: Vec::new(),
    };

    // listen
    let listeners = match &file.listen {
        None => {
            c.err(
                &[Seg::Key("listen")],
                "`listen` is required: one or more host:port for client traffic",
            );
            Vec::new()
        }
        Some(l) if l.0.is_empty() => {
            c.err(&[Seg::Key("listen")], "at least one address is required");
            Vec::new()
        }
        Some(l) => tls::listeners(&mut c, &l.0),
    };
    let listen: Vec<SocketAddr> = listeners.iter().map(|l| l.addr).collect();

    // admin
    let admin_text = file
        .admin
        .as_ref()
        .and_then(|a| a.listen.clone())
        .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_string());
    let admin_path = [Seg::Key("admin"), Seg::Key("listen")];
    let admin_listen = match parse_listen(&admin_text, c.resolve) {
        Ok(a) => {
            if listen.contains(&a) {
                c.err(
                    &admin_path,
                    format!("`{admin_text}` is also a proxy `listen` address"),
                );
            }
            a
        }
        Err(e) => {
            c.err(&admin_path, e);
            SocketAddr::from(([127, 0, 0, 1], 9901))
        }
    };

    let token_path = [Seg::Key("admin"), Seg::Key("token_file")];
    let admin_token = match file.admin.as_ref().and_then(|a| a.token_file.as_deref()) {
        Some(t) => match read_token(&c.file(t), t) {
            Ok(token) => Some(token),
            Err(e) => {
                c.err(&token_path, e);
                None
            }
        },
        None => None,
    };
    if admin_token.is_none() && !admin_listen.ip().is_loopback() {
        c.err(
            &admin_path,
            format!(
                "`{admin_text}` is not a loopback address: set admin.token_file too (the admin API reloads the config and shows the whole fleet)"
            ),
        );
    }

    let threads = file.threads.unwrap_or(defaults::THREADS);
    if threads > 1024 {
        c.err(
            &[Seg::Key("threads")],
            format!("{threads} threads is more than the 1024 allowed"),
        );
    }
    let shutdown_grace = c.duration(
        &file.shutdown_grace,
        &[Seg::Key("shutdown_grace")],
        defaults::SHUTDOWN_GRACE,
    );
    let watch = file.watch.unwrap_or(defaults::WATCH);

    let access_log = match file.access_log.as_deref().map(str::trim) {
        None | Some("stdout") => AccessLog::Stdout,
        Some("off") => AccessLog::Off,
        Some("") => {
            c.err(
                &[Seg::Key("access_log")],
                "expected off, stdout or a file path",
            );
            AccessLog::Off
        }
        Some(p) => AccessLog::File(PathBuf::from(p)),
    };
    let access_log_format = file.access_log_format.unwrap_or(LogFormat::Json);

    // limits
    let lim = file.limits.as_ref();
    let lp = |k| [Seg::Key("limits"), Seg::Key(k)];
    let max_header = c.size(
        &lim.and_then(|l| l.max_header_bytes.clone()),
        &lp("max_header_bytes"),
        defaults::MAX_HEADER_BYTES,
    );
    if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&max_header) {
        c.err(&lp("max_header_bytes"), "must be from 1KiB to 1MiB");
    }
    let max_body = c.size(
        &lim.and_then(|l| l.max_body_bytes.clone()),
        &lp("max_body_bytes"),
        0,
    );
    let header_read_timeout = c.positive(
        &lim.and_then(|l| l.header_read_timeout.clone()),
        &lp("header_read_timeout"),
        defaults::HEADER_READ_TIMEOUT,
    );
    let body_read_timeout = c.positive(
        &lim.and_then(|l| l.body_read_timeout.clone()),
        &lp("body_read_timeout"),
        defaults::BODY_READ_TIMEOUT,
    );
    let send_timeout = c.positive(
        &lim.and_then(|l| l.send_timeout.clone()),
        &lp("send_timeout"),
        defaults::SEND_TIMEOUT,
    );
    let keepalive_timeout = c.positive(
        &lim.and_then(|l| l.keepalive_timeout.clone()),
        &lp("keepalive_timeout"),
        defaults::KEEPALIVE_TIMEOUT,
    );
    let limits = Limits {
        max_header_bytes: usize::try_from(max_header.clamp(MIN_HEADER_BYTES, MAX_HEADER_BYTES))
            .unwrap_or(defaults::MAX_HEADER_BYTES as usize),
        max_body_bytes: (max_body > 0).then_some(max_body),
        header_read_timeout,
        body_read_timeout,
        send_timeout,
        max_connections: lim
            .and_then(|l| l.max_connections)
            .and_then(NonZeroU32::new),
        keepalive_timeout,
    };

    // upstreams
    let mut upstreams = Vec::new();
    // A file server (routes with `static` only) needs no pool.
    let serves_files = file
        .routes
        .iter()
        .flatten()
        .any(|r| r.static_files.is_some());
    match &file.upstreams {
        None if serves_files => {}
        None => c.err(
            &[Seg::Key("upstreams")],
            "`upstreams` is required: at least one pool of servers (or routes with `static`)",
        ),
        Some(u) if u.0.is_empty() && !serves_files => {
            c.err(&[Seg::Key("upstreams")], "at least one pool is required")
        }
        Some(u) => {
            for (name, up) in &u.0 {
                if let Some(pool) = upstream(&mut c, name, up) {
                    upstreams.push(pool);
                }
            }
        }
    }

    // routes
    let names: Vec<&str> = file
        .upstreams
        .as_ref()
        .map(|u| u.0.iter().map(|(n, _)| n.as_str()).collect())
        .unwrap_or_default();
    let map_names = vars::map_names(file);
    let maps = vars::maps(&mut c, file, &map_names);
    let error_pages = vars::error_pages(&mut c, &file.error_pages, &[Seg::Key("error_pages")])
        .unwrap_or_default();
    let known = route::Known {
        pools: &names,
        map_names: &map_names,
        maps: &maps,
    };
    let mut routes: Vec<Route> = Vec::new();
    let file_routes = file.routes.as_deref().unwrap_or(&[]);
    if file_routes.is_empty() && names.len() > 1 {
        c.err(
            &[Seg::Key("routes")],
            format!(
                "`routes` are required when there is more than one upstream ({})",
                names.join(", ")
            ),
        );
    }
    // Host and path of each route so far that takes all of their requests (no `listeners`,
    // no `match`): it leaves nothing for a later route with the same host and path.
    let mut takes_all: HashSet<(String, String)> = HashSet::new();
    for (i, r) in file_routes.iter().enumerate() {
        let at = location::location(&mut c, i, r, &listeners);
        let key = (at.host.label(), at.path.label());
        let guarded = r.listeners.is_some() || r.conditions.is_some();
        if takes_all.contains(&key) {
            c.err(
                &[Seg::Key("routes"), Seg::Index(i)],
                "the same host and path are routed twice (an earlier route takes all of its requests)",
            );
        }
        if !guarded {
            takes_all.insert(key);
        }
        if let Some(route) = route::route(&mut c, i, r, at, &known, &routes) {
            if routes.iter().any(|o: &Route| o.name == route.name) {
                c.err(
                    &[Seg::Key("routes"), Seg::Index(i)],
                    format!(
                        "the route name `{}` is taken by an earlier route (names label metrics: give each route its own)",
                        route.name
                    ),
                );
            }
            routes.push(route);
        }
    }

    let dns_servers = upstream::dns_servers(&mut c, file);
    let real_ip = file
        .real_ip
        .as_ref()
        .and_then(|r| transport::real_ip(&mut c, r, &listeners));
    if !c.issues.is_empty() {
        return None;
    }
    let warnings = std::mem::take(&mut c.warnings)
        .into_errors(&source.display().to_string())
        .0;
    Some(Config {
        source,
        listeners,
        admin_listen,
        admin_token,
        threads: threads as usize,
        shutdown_grace,
        watch,
        access_log,
        access_log_format,
        limits,
        upstreams,
        routes,
        maps: maps.into(),
        error_pages,
        warnings,
        files: c.files,
        dns_servers,
        real_ip,
    })
}

/// The token in `admin.token_file` (relative to the config file's directory): the file's
/// content without surrounding whitespace, from a regular file of at most 4 KiB.
/// `path` is `file` resolved against the config's directory.
fn read_token(path: &std::path::Path, file: &str) -> Result<AdminToken, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read `{file}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("`{file}` is not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4097).read_to_string(&mut text))
        .map_err(|e| format!("cannot read `{file}`: {e}"))?;
    if text.len() > 4096 {
        return Err(format!(
            "`{file}` is larger than 4 KiB; it should hold one token"
        ));
    }
    let token = text.trim();
    if token.len() < 16 || token.contains(char::is_whitespace) {
        return Err(format!(
            "`{file}` must hold one token of at least 16 characters without spaces"
        ));
    }
    Ok(AdminToken::new(token.to_string()))
}
