//! `switchyard import-nginx` (SPEC §10): an nginx config translated into a switchyard YAML
//! file, with every directive that has no equivalent reported as `FILE:LINE: directive: why`.
//!
//! What is translated is listed in the README ("From nginx"). Directives that need no
//! equivalent (`sendfile`, `events`, the forwarding headers switchyard always sets…) are
//! reported as notes and do not change the exit code; directives whose meaning would be lost
//! are reported as skipped (exit 2).

mod check;
mod common;
mod files;
mod location;
pub mod parse;
mod render;
mod server;
mod transport;
mod upstream;

use check::{drop_empty_pools, self_check};
use common::{bad_value, common, settled_value};
use location::{Return, location_directive, location_path, translate_return};
use render::render;
use server::server;
use upstream::{map, pool_name, upstream};

use parse::{Directive, ParseError};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One report line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub at: String,
    pub directive: String,
    pub why: String,
    /// Something of the nginx config is not carried over (exit 2).
    pub skipped: bool,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.directive, self.why)
    }
}

pub struct Imported {
    pub yaml: String,
    pub notes: Vec<Note>,
    /// What `check` would refuse in `yaml`: an importer bug (the YAML must not be written).
    pub invalid: Vec<String>,
    /// No upstream server could be translated and no files are served: there is nothing to
    /// write.
    pub empty: bool,
}

impl Imported {
    pub fn skipped(&self) -> bool {
        self.notes.iter().any(|n| n.skipped)
    }
}

#[derive(Default)]
struct Pool {
    /// Where it came from, for a comment in the output.
    origin: String,
    /// Its name in nginx, when that is not a valid pool name (`upstream brewbit.com`).
    nginx_name: Option<String>,
    balance: Option<String>,
    hash_key: Option<String>,
    servers: Vec<(String, Option<String>, Option<String>, bool)>, // addr, weight, max_conns, backup
    keepalive_idle: Option<String>,
    keepalive_timeout: Option<String>,
    failures: Option<String>,
    open_for: Option<String>,
    retry_on: Option<Vec<String>>,
    tries: Option<String>,
    retry_timeout: Option<String>,
    connect: Option<String>,
    read: Option<String>,
    write: Option<String>,
    /// `h2c` / `h2` for `grpc_pass` targets.
    protocol: Option<&'static str>,
    /// `grpcs://`: TLS without verification (nginx's default).
    tls_unverified: bool,
    /// `buffering.response` / `buffering.request` (nginx buffers both by default).
    buffer_response: Option<String>,
    buffer_request: Option<String>,
}

/// A location's path form (nginx's modifiers).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Loc {
    /// `location /p` (`stop_regex`: `location ^~ /p`).
    Prefix { path: String, stop_regex: bool },
    /// `location = /p`
    Exact(String),
    /// `location ~ RE` (`case_insensitive`: `~*`)
    Regex { re: String, case_insensitive: bool },
}

impl Default for Loc {
    fn default() -> Loc {
        Loc::Prefix {
            path: "/".into(),
            stop_regex: false,
        }
    }
}

/// A condition of an nginx `if`, as a route `match` entry.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Cond {
    Methods(Vec<String>),
    /// Header name and the test (`VALUE`, `!VALUE`, `~REGEX`).
    Header(String, String),
    Cookie(String, String),
}

#[derive(Default, Clone)]
struct Route {
    origin: String,
    host: Option<String>,
    loc: Loc,
    /// The listen addresses of the route's `server` (named in the output when the servers do
    /// not all listen on the same addresses).
    listeners: Vec<String>,
    conditions: Vec<Cond>,
    upstream: Option<String>,
    /// `return CODE [TEXT]` (444: close).
    respond: Option<(u16, Option<String>)>,
    strip_prefix: bool,
    rewrite: Option<(String, String)>,
    request_set: Vec<(String, String)>,
    response_set: Vec<(String, String)>,
    response_remove: Vec<String>,
    allow: Vec<String>,
    deny: Vec<String>,
    rate: Option<(u32, &'static str, u32)>,
    max_body: Option<String>,
    compress: bool,
    redirect: Option<(String, u16)>,
    /// `proxy_set_header Host VALUE`, when given.
    host_header: Option<String>,
    /// The `proxy_pass` target as written (nginx's `$proxy_host`).
    proxy_host: Option<String>,
    /// `error_page CODES URI` resolved to files: (statuses, file).
    error_pages: Vec<(String, String)>,
    intercept_errors: bool,
    /// `root`, `try_files` and the other file directives (SPEC §12).
    files: files::Files,
    /// nginx `internal`.
    internal: bool,
    /// `proxy_buffering` & co. of the location (and its server).
    buffering: transport::Buffering,
}

/// What the default-server pass needs of a `server` block.
struct ServerInfo {
    /// Its `listen` addresses.
    addrs: Vec<String>,
    /// Those it marks `default_server`.
    defaults: Vec<String>,
    /// It has a `server_name`.
    named: bool,
    /// Its routes in [`Out::routes`].
    routes: std::ops::Range<usize>,
}

#[derive(Default)]
struct Listener {
    ssl: bool,
    http2: bool,
    certs: Vec<(String, String)>,
    redirect_only: bool,
    min_version: Option<String>,
    /// `listen … proxy_protocol`.
    proxy_protocol: bool,
}

#[derive(Default)]
struct Out {
    threads: Option<String>,
    access_log: Option<String>,
    limits: BTreeMap<&'static str, String>,
    pools: Vec<(String, Pool)>,
    listeners: Vec<(String, Listener)>,
    routes: Vec<Route>,
    servers: Vec<ServerInfo>,
    zones: BTreeMap<String, (u32, &'static str)>,
    /// `map` blocks, in file order.
    maps: Vec<ImportMap>,
    /// The `server` block being translated (its locations resolve `error_page` URIs).
    server_block: Vec<Directive>,
    notes: Vec<Note>,
    /// `set_real_ip_from` & co., wherever they were.
    real_ip: transport::RealIp,
    /// `proxy_buffering` & co. at http level.
    http_buffering: transport::Buffering,
}

/// An nginx `map $from $name { … }`.
#[derive(Clone)]
struct ImportMap {
    origin: String,
    name: String,
    from: String,
    values: Vec<(String, String)>,
    default: Option<String>,
}

impl Out {
    fn note(&mut self, d: &Directive, why: impl Into<String>, skipped: bool) {
        self.notes.push(Note {
            at: d.at(),
            directive: d.name.clone(),
            why: why.into(),
            skipped,
        });
    }
    fn skip(&mut self, d: &Directive, why: impl Into<String>) {
        self.note(d, why, true);
    }
    /// Whether `text` is a template switchyard can evaluate (its variables known, maps
    /// included); the error says which variable is not. `response`: `$status` and
    /// `$upstream_addr` are allowed; `groups`: the regex groups `$N` may name.
    fn template(&self, text: &str, response: bool, groups: usize) -> Result<(), String> {
        let maps: Vec<String> = self.maps.iter().map(|m| m.name.clone()).collect();
        crate::vars::Template::compile(
            text,
            crate::vars::Scope {
                maps: &maps,
                response,
                groups,
            },
        )
        .map(|_| ())
    }

    fn pool(&mut self, name: &str) -> &mut Pool {
        if let Some(i) = self.pools.iter().position(|(n, _)| n == name) {
            return &mut self.pools[i].1;
        }
        self.pools.push((name.to_string(), Pool::default()));
        let last = self.pools.len() - 1;
        &mut self.pools[last].1
    }
}

/// Directives a proxy in front of app servers does not need.
const NOT_NEEDED: &[&str] = &[
    "user",
    "pid",
    "error_log",
    "events",
    "worker_connections",
    "multi_accept",
    "use",
    "sendfile",
    "tcp_nopush",
    "tcp_nodelay",
    "types",
    "default_type",
    "types_hash_max_size",
    "server_tokens",
    "charset",
    "server_names_hash_bucket_size",
    "log_format",
    "proxy_busy_buffers_size",
    "proxy_redirect",
    "gzip_vary",
    "gzip_proxied",
    "gzip_comp_level",
    "gzip_types",
    "gzip_min_length",
    "gzip_http_version",
    "gzip_disable",
    "ssl_prefer_server_ciphers",
    "ssl_ciphers",
    "ssl_session_cache",
    "ssl_session_timeout",
    "ssl_session_tickets",
    "resolver_timeout",
    "ssl_dhparam",
    "ssl_ecdh_curve",
    "ssl_buffer_size",
    "types_hash_bucket_size",
    "server_names_hash_max_size",
    "variables_hash_max_size",
    "variables_hash_bucket_size",
    "map_hash_bucket_size",
    "map_hash_max_size",
    "client_body_buffer_size",
    "client_header_buffer_size",
    "proxy_temp_file_write_size",
    "proxy_max_temp_file_size",
    "proxy_temp_path",
    "client_body_temp_path",
    "output_buffers",
    "postpone_output",
    "reset_timedout_connection",
    "keepalive_requests",
    "limit_req_status",
    "worker_rlimit_nofile",
];

/// Headers switchyard sets itself (SPEC §3).
const MANAGED_HEADERS: &[&str] = &[
    "host",
    "x-forwarded-for",
    "x-real-ip",
    "x-forwarded-proto",
    "x-forwarded-host",
    "connection",
    "upgrade",
    "x-request-id",
];

/// An nginx time (`30`, `30s`, `1m`, `500ms`) with a unit.
fn duration(v: &str) -> String {
    if v.bytes().all(|b| b.is_ascii_digit()) {
        format!("{v}s")
    } else {
        v.to_string()
    }
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// Translate the nginx config at `path`.
pub fn import(path: &Path) -> Result<Imported, ParseError> {
    let top = parse::parse_file(path)?;
    let mut out = Out::default();
    for d in &top {
        match (d.name.as_str(), &d.block) {
            ("http", Some(b)) => http(&mut out, b),
            ("worker_processes", None) => {
                out.threads = Some(match d.args.first().map(String::as_str) {
                    Some("auto") | None => "0".into(),
                    Some(n) => n.to_string(),
                })
            }
            // A file with only http-context directives (a conf.d snippet).
            ("upstream" | "server" | "limit_req_zone", _) => {
                http(&mut out, std::slice::from_ref(d))
            }
            ("include", _) => missing_include(&mut out, d),
            _ if NOT_NEEDED.contains(&d.name.as_str()) => {
                out.note(d, "not needed by switchyard", false)
            }
            _ => out.skip(d, "no switchyard equivalent"),
        }
    }
    drop_empty_pools(&mut out);
    transport::settle(&mut out);
    if out.pools.is_empty() && !out.routes.iter().any(|r| r.files.serve) {
        return Ok(Imported {
            yaml: String::new(),
            notes: out.notes,
            invalid: Vec::new(),
            empty: true,
        });
    }
    let yaml = render(&out);
    let invalid = self_check(&yaml, path, &mut out.notes);
    Ok(Imported {
        yaml,
        notes: out.notes,
        invalid,
        empty: false,
    })
}

fn http(out: &mut Out, block: &[Directive]) {
    // Zones first: `limit_req` may come before its zone in file order.
    for d in block.iter().filter(|d| d.name == "limit_req_zone") {
        let zone = d
            .args
            .iter()
            .find_map(|a| a.strip_prefix("zone="))
            .and_then(|z| z.split(':').next());
        let rate = d.args.iter().find_map(|a| a.strip_prefix("rate="));
        let key_ok = d
            .args
            .first()
            .is_some_and(|k| k == "$binary_remote_addr" || k == "$remote_addr");
        match (zone, rate.and_then(parse_rate)) {
            (Some(z), Some(r)) if key_ok => {
                out.zones.insert(z.to_string(), r);
            }
            _ => out.skip(
                d,
                "only `$binary_remote_addr` zones with a `rate=Nr/s|m` are translated",
            ),
        }
    }
    let mut compress = false;
    for d in block {
        match d.name.as_str() {
            "limit_req_zone" => {}
            "map" => map(out, d),
            "upstream" => upstream(out, d),
            "server" => {}
            "gzip" => compress = d.args.first().is_some_and(|a| a == "on"),
            "include" => missing_include(out, d),
            _ => common(out, d, None),
        }
    }
    for d in block.iter().filter(|d| d.name == "server") {
        server(out, d, compress);
    }
    default_servers(out);
}

/// nginx sends a request whose `Host` matches no `server_name` to the default server of the
/// address it arrived on: the one marked `default_server`, else the first `server` listening
/// there. switchyard's equivalent is routes without `host`, on that listener: the default
/// server's routes are copied so (a server without `server_name` has such routes already).
fn default_servers(out: &mut Out) {
    let mut copies = Vec::new();
    for (addr, _) in &out.listeners {
        let on = |s: &&ServerInfo| s.addrs.contains(addr);
        let default = out
            .servers
            .iter()
            .find(|s| on(s) && s.defaults.contains(addr))
            .or_else(|| out.servers.iter().find(on));
        let Some(server) = default.filter(|s| s.named) else {
            continue;
        };
        for r in &out.routes[server.routes.clone()] {
            if r.host.is_some() {
                copies.push(Route {
                    origin: format!("{} as the default server of {addr}", r.origin),
                    host: None,
                    listeners: vec![addr.clone()],
                    ..r.clone()
                });
            }
        }
    }
    out.routes.extend(copies);
}

/// An `include` left in the tree is one whose file is not there (the parser expands the rest).
fn missing_include(out: &mut Out, d: &Directive) {
    let why = d.args.get(1).map_or("cannot read it", String::as_str);
    out.skip(d, format!("{why}; whatever it holds is not translated"));
}

fn parse_rate(r: &str) -> Option<(u32, &'static str)> {
    if let Some(n) = r.strip_suffix("r/s") {
        return n.parse().ok().map(|n| (n, "1s"));
    }
    r.strip_suffix("r/m")
        .and_then(|n| n.parse().ok())
        .map(|n| (n, "1m"))
}
