//! `switchyard import-nginx` (SPEC §10): an nginx config translated into a switchyard YAML
//! file, with every directive that has no equivalent reported as `FILE:LINE: directive: why`.
//!
//! What is translated is listed in the README ("From nginx"). Directives that need no
//! equivalent (`sendfile`, `events`, the forwarding headers switchyard always sets…) are
//! reported as notes and do not change the exit code; directives whose meaning would be lost
//! are reported as skipped (exit 2).

mod location;
pub mod parse;
mod render;
mod server;

use location::{Return, location_directive, location_path, translate_return};
use render::render;
use server::server;

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
    /// No upstream server could be translated: there is nothing to write.
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
    "proxy_buffering",
    "proxy_buffers",
    "proxy_buffer_size",
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
    if out.pools.is_empty() {
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

/// A pool left without servers (all of them Unix sockets, or `down`) cannot be written: it is
/// left out, and so are the routes to it (each reported).
fn drop_empty_pools(out: &mut Out) {
    let empty: Vec<String> = out
        .pools
        .iter()
        .filter(|(_, p)| p.servers.is_empty())
        .map(|(n, _)| n.clone())
        .collect();
    if empty.is_empty() {
        return;
    }
    out.pools.retain(|(n, _)| !empty.contains(n));
    let mut dropped = Vec::new();
    out.routes.retain(|r| {
        let gone = r.upstream.as_ref().is_some_and(|u| empty.contains(u));
        if gone {
            dropped.push(r.origin.clone());
        }
        !gone
    });
    for origin in dropped {
        let (directive, at) = origin.rsplit_once(" (").unwrap_or((&origin, ""));
        out.notes.push(Note {
            at: at.trim_end_matches(')').to_string(),
            directive: directive.to_string(),
            why: "left out: its upstream has no server switchyard can reach".into(),
            skipped: true,
        });
    }
}

/// Run the loader's own validation on the translation. Files it names that are not on this
/// machine (certificates, error pages) become notes: the config is checked where it will
/// run. Names in server addresses are not resolved here. Anything else `check` would refuse
/// is returned: the importer must never write such a config.
fn self_check(yaml: &str, nginx: &Path, notes: &mut Vec<Note>) -> Vec<String> {
    let any_name = |text: &str| -> Result<std::net::SocketAddr, String> {
        crate::config::units::literal_addr(text).or_else(|_| {
            let port = text.trim().rsplit_once(':').map(|(_, p)| p.parse::<u16>());
            match port {
                Some(Ok(port)) => Ok(std::net::SocketAddr::from(([192, 0, 2, 1], port))),
                _ => Err(format!("`{text}` is not host:port")),
            }
        })
    };
    let source = nginx.with_extension("yaml");
    match crate::config::load_str_with(yaml, "the translation", source, &any_name) {
        Ok(_) => Vec::new(),
        Err(errors) => {
            let mut left = Vec::new();
            for e in errors.0 {
                if e.message.starts_with("cannot read") {
                    notes.push(Note {
                        at: e.path.clone(),
                        directive: "file".into(),
                        why: format!("{} (it must exist where switchyard runs)", e.message),
                        skipped: false,
                    });
                } else {
                    left.push(e.to_string());
                }
            }
            left
        }
    }
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

/// `map $from $name { default D; KEY VALUE; ~REGEX VALUE; }` as a switchyard map.
fn map(out: &mut Out, d: &Directive) {
    let (Some(from), Some(name)) = (d.args.first(), d.args.get(1)) else {
        out.skip(d, "`map` needs a source and a variable");
        return;
    };
    let Some(name) = name.strip_prefix('$').filter(|n| !n.is_empty()) else {
        out.skip(d, "the map's variable must start with `$`");
        return;
    };
    if let Err(why) = out.template(from, false, 0) {
        out.skip(d, format!("its source is not translated: {why}"));
        return;
    }
    let mut m = ImportMap {
        origin: format!("map {from} ${name} ({})", d.at()),
        name: name.to_string(),
        from: from.clone(),
        values: Vec::new(),
        default: None,
    };
    for e in d.block.iter().flatten() {
        let value = e.args.first().cloned().unwrap_or_default();
        match (e.name.as_str(), e.args.len()) {
            ("default", 1) => m.default = Some(value),
            ("hostnames", 0) => out.skip(
                e,
                "`hostnames` maps are not translated: keys are compared exactly",
            ),
            ("volatile", 0) => out.note(
                e,
                "switchyard computes a map's value each time it is used",
                false,
            ),
            ("include", _) => missing_include(out, e),
            (_, 1) if value.contains('$') => {
                out.skip(e, "a map value with variables is not translated")
            }
            (key, 1) => {
                if let Some(re) = key.strip_prefix('~') {
                    let re = re.strip_prefix('*').unwrap_or(re);
                    if let Err(why) = crate::config::validate::check_regex(re) {
                        out.skip(e, format!("its regex does not translate ({why})"));
                        continue;
                    }
                }
                m.values.push((key.to_string(), value));
            }
            _ => out.skip(e, "a map entry is a key and a value"),
        }
    }
    out.maps.push(m);
}

/// A valid pool name for an nginx upstream name: what is not a letter, digit, `_` or `-`
/// becomes `-`.
fn pool_name(nginx: &str) -> String {
    let n: String = nginx
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if n.is_empty() { "upstream".into() } else { n }
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

/// Why the value of a size or time directive cannot be translated (`None`: it can, or the
/// directive takes neither).
fn bad_value(d: &Directive) -> Option<String> {
    use crate::config::units::{parse_duration, parse_size};
    let (at, size) = match d.name.as_str() {
        "client_max_body_size" => (0, true),
        "large_client_header_buffers" => (1, true),
        "client_header_timeout"
        | "client_body_timeout"
        | "send_timeout"
        | "keepalive_timeout"
        | "proxy_connect_timeout"
        | "proxy_read_timeout"
        | "proxy_send_timeout"
        | "proxy_next_upstream_timeout" => (0, false),
        _ => return None,
    };
    let v = d.args.get(at)?;
    let ok = if size {
        parse_size(v).is_ok()
    } else {
        parse_duration(&duration(v)).is_ok()
    };
    (!ok).then(|| format!("`{v}` is not a {}", if size { "size" } else { "time" }))
}

/// A size or time directive whose value cannot be translated is reported, and
/// `client_max_body_size 0` (nginx: no check) noted; `true` when the directive is done with.
fn settled_value(out: &mut Out, d: &Directive) -> bool {
    if let Some(why) = bad_value(d) {
        out.skip(d, why);
        return true;
    }
    if d.name == "client_max_body_size" && d.args.first().is_some_and(|a| a == "0") {
        out.note(
            d,
            "0 turns nginx's check off: switchyard has no limit by default",
            false,
        );
        return true;
    }
    false
}

/// Directives valid at http, server or location level. `route`: the location's route.
fn common(out: &mut Out, d: &Directive, route: Option<&mut Route>) {
    let a0 = d.args.first().cloned().unwrap_or_default();
    if settled_value(out, d) {
        return;
    }
    match d.name.as_str() {
        "access_log" => {
            out.access_log = Some(if a0 == "off" {
                "off".into()
            } else {
                a0.clone()
            });
            if d.args.len() > 1 && d.args[1] != "combined" {
                out.note(
                    d,
                    "the log format is switchyard's `json` (or `combined`)",
                    false,
                );
            }
        }
        "client_max_body_size" => match route {
            Some(r) => r.max_body = Some(a0),
            None => {
                out.limits.insert("max_body_bytes", a0);
            }
        },
        "client_header_timeout" => {
            out.limits.insert("header_read_timeout", duration(&a0));
        }
        "client_body_timeout" => {
            out.limits.insert("body_read_timeout", duration(&a0));
        }
        "send_timeout" => {
            out.limits.insert("send_timeout", duration(&a0));
        }
        "keepalive_timeout" => {
            out.limits.insert("keepalive_timeout", duration(&a0));
        }
        "large_client_header_buffers" => {
            if let Some(size) = d.args.get(1) {
                out.limits.insert("max_header_bytes", size.clone());
            }
        }
        "include" => missing_include(out, d),
        n if NOT_NEEDED.contains(&n) => out.note(d, "not needed by switchyard", false),
        _ => out.skip(d, "no switchyard equivalent"),
    }
}

fn upstream(out: &mut Out, d: &Directive) {
    let Some(nginx_name) = d.args.first().cloned() else {
        out.skip(d, "an upstream without a name");
        return;
    };
    let name = pool_name(&nginx_name);
    out.pool(&name).origin = format!("upstream {nginx_name} ({})", d.at());
    if name != nginx_name {
        out.pool(&name).nginx_name = Some(nginx_name.clone());
        out.note(
            d,
            format!("the pool is named `{name}` (pool names are letters, digits, _ and -)"),
            false,
        );
    }
    for s in d.block.iter().flatten() {
        let a0 = s.args.first().cloned().unwrap_or_default();
        match s.name.as_str() {
            "server" => {
                let (mut weight, mut max_conns, mut backup, mut down) = (None, None, false, false);
                for a in s.args.iter().skip(1) {
                    if let Some(w) = a.strip_prefix("weight=") {
                        weight = Some(w.to_string());
                    } else if let Some(m) = a.strip_prefix("max_conns=") {
                        max_conns = Some(m.to_string());
                    } else if let Some(f) = a.strip_prefix("max_fails=") {
                        if f == "0" {
                            out.note(
                                s,
                                "max_fails=0 (no failure accounting): switchyard's breaker keeps its default `failures`",
                                false,
                            );
                        } else {
                            out.pool(&name).failures = Some(f.to_string());
                        }
                    } else if let Some(t) = a.strip_prefix("fail_timeout=") {
                        match crate::config::units::parse_duration(&duration(t)) {
                            Ok(d) if !d.is_zero() => out.pool(&name).open_for = Some(duration(t)),
                            Ok(_) => out.note(
                                s,
                                "fail_timeout=0: switchyard's breaker keeps its default `open_for`",
                                false,
                            ),
                            Err(e) => out.skip(s, format!("fail_timeout={t}: {e}")),
                        }
                    } else if a == "backup" {
                        backup = true;
                    } else if a == "down" {
                        down = true;
                    } else {
                        out.skip(s, format!("`{a}` is not translated"));
                    }
                }
                if down {
                    out.note(s, "a `down` server is left out", false);
                    continue;
                }
                if a0.is_empty() {
                    out.skip(s, "`server` needs an address");
                    continue;
                }
                if a0.starts_with("unix:") {
                    out.skip(s, "Unix-socket servers are not translated");
                    continue;
                }
                let addr = if a0.contains(':') {
                    a0.clone()
                } else {
                    format!("{a0}:80")
                };
                out.pool(&name)
                    .servers
                    .push((addr, weight, max_conns, backup));
            }
            "least_conn" => out.pool(&name).balance = Some("least_conn".into()),
            "random" => out.pool(&name).balance = Some("random".into()),
            "ip_hash" => {
                let p = out.pool(&name);
                p.balance = Some("hash".into());
                p.hash_key = Some("client_ip".into());
            }
            "hash" => {
                let key = match a0.as_str() {
                    "$remote_addr" | "$binary_remote_addr" => Some("client_ip".to_string()),
                    "$uri" | "$request_uri" => Some("path".to_string()),
                    k => k
                        .strip_prefix("$http_")
                        .map(|h| format!("header:{}", h.replace('_', "-")))
                        .or_else(|| k.strip_prefix("$cookie_").map(|c| format!("cookie:{c}"))),
                };
                match key {
                    Some(k) => {
                        if s.args.get(1).map(String::as_str) != Some("consistent") {
                            out.note(s, "switchyard's hash is always consistent (ketama)", false);
                        }
                        let p = out.pool(&name);
                        p.balance = Some("hash".into());
                        p.hash_key = Some(k);
                    }
                    None => out.skip(s, format!("hash key `{a0}` is not translated")),
                }
            }
            "keepalive" => out.pool(&name).keepalive_idle = Some(a0),
            "keepalive_timeout" => match bad_value(s) {
                Some(why) => out.skip(s, why),
                None => out.pool(&name).keepalive_timeout = Some(duration(&a0)),
            },
            "keepalive_requests" | "keepalive_time" => {
                out.note(s, "not needed by switchyard", false)
            }
            _ => out.skip(s, "no switchyard equivalent"),
        }
    }
    let p = out.pool(&name);
    if p.balance.is_none() {
        // nginx's default is weighted round robin.
        p.balance = Some("round_robin".into());
    }
}
