//! `switchyard import-nginx` (SPEC §10): an nginx config translated into a switchyard YAML
//! file, with every directive that has no equivalent reported as `FILE:LINE: directive: why`.
//!
//! What is translated is listed in the README ("From nginx"). Directives that need no
//! equivalent (`sendfile`, `events`, the forwarding headers switchyard always sets…) are
//! reported as notes and do not change the exit code; directives whose meaning would be lost
//! are reported as skipped (exit 2).

pub mod parse;

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

#[derive(Default, Clone)]
struct Route {
    origin: String,
    host: Option<String>,
    path: String,
    upstream: Option<String>,
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
    zones: BTreeMap<String, (u32, &'static str)>,
    notes: Vec<Note>,
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
            _ if NOT_NEEDED.contains(&d.name.as_str()) => {
                out.note(d, "not needed by switchyard", false)
            }
            _ => out.skip(d, "no switchyard equivalent"),
        }
    }
    let yaml = render(&out);
    Ok(Imported {
        yaml,
        notes: out.notes,
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
            "upstream" => upstream(out, d),
            "server" => {}
            "gzip" => compress = d.args.first().is_some_and(|a| a == "on"),
            "include" => {}
            _ => common(out, d, None),
        }
    }
    for d in block.iter().filter(|d| d.name == "server") {
        server(out, d, compress);
    }
}

fn parse_rate(r: &str) -> Option<(u32, &'static str)> {
    if let Some(n) = r.strip_suffix("r/s") {
        return n.parse().ok().map(|n| (n, "1s"));
    }
    r.strip_suffix("r/m")
        .and_then(|n| n.parse().ok())
        .map(|n| (n, "1m"))
}

/// Directives valid at http, server or location level. `route`: the location's route.
fn common(out: &mut Out, d: &Directive, route: Option<&mut Route>) {
    let a0 = d.args.first().cloned().unwrap_or_default();
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
        n if NOT_NEEDED.contains(&n) => out.note(d, "not needed by switchyard", false),
        _ => out.skip(d, "no switchyard equivalent"),
    }
}

fn upstream(out: &mut Out, d: &Directive) {
    let Some(name) = d.args.first().cloned() else {
        out.skip(d, "an upstream without a name");
        return;
    };
    out.pool(&name).origin = format!("upstream {name} ({})", d.at());
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
                        out.pool(&name).failures = Some(f.to_string());
                    } else if let Some(t) = a.strip_prefix("fail_timeout=") {
                        out.pool(&name).open_for = Some(duration(t));
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
            "keepalive_timeout" => out.pool(&name).keepalive_timeout = Some(duration(&a0)),
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

fn server(out: &mut Out, d: &Directive, http_compress: bool) {
    let block = d.block.as_deref().unwrap_or(&[]);
    let mut listens: Vec<(String, bool, bool)> = Vec::new();
    let mut hosts: Vec<String> = Vec::new();
    let (mut cert, mut key, mut min_version) = (None, None, None);
    let mut compress = http_compress;
    let mut server_route = Route::default();
    let mut redirect_all = None;
    for s in block {
        let a0 = s.args.first().cloned().unwrap_or_default();
        match s.name.as_str() {
            "listen" => {
                let addr = if a0.bytes().all(|b| b.is_ascii_digit()) {
                    format!("0.0.0.0:{a0}")
                } else if (a0.starts_with('[') && !a0.contains("]:")) || !a0.contains(':') {
                    // `[::]` or a bare address: nginx's default port.
                    format!("{a0}:80")
                } else {
                    a0.clone()
                };
                let ssl = s.args.iter().any(|a| a == "ssl");
                let h2 = s.args.iter().any(|a| a == "http2");
                listens.push((addr, ssl, h2));
            }
            "server_name" => hosts.extend(
                s.args
                    .iter()
                    .filter(|h| *h != "_" && !h.is_empty())
                    .cloned(),
            ),
            "ssl_certificate" => cert = Some(a0),
            "ssl_certificate_key" => key = Some(a0),
            "ssl_protocols" => {
                min_version = Some(
                    if s.args.iter().any(|p| p == "TLSv1.2") {
                        "1.2"
                    } else {
                        "1.3"
                    }
                    .to_string(),
                );
                if s.args.iter().any(|p| p == "TLSv1" || p == "TLSv1.1") {
                    out.note(s, "TLS 1.0 and 1.1 are never offered", false);
                }
            }
            "http2" => {
                if a0 == "on" {
                    for l in &mut listens {
                        l.2 = true;
                    }
                }
            }
            "gzip" => compress = a0 == "on",
            "return" => match return_redirect(s) {
                Some(r) => redirect_all = Some((s.clone(), r)),
                None => out.skip(s, "only `return 301|302|307|308 URL` is translated"),
            },
            "location" | "include" => {}
            "add_header" | "proxy_hide_header" | "allow" | "deny" | "proxy_set_header"
            | "limit_req" | "rewrite" => location_directive(out, s, &mut server_route),
            "proxy_pass"
            | "proxy_connect_timeout"
            | "proxy_read_timeout"
            | "proxy_send_timeout"
            | "proxy_next_upstream"
            | "proxy_next_upstream_tries"
            | "proxy_next_upstream_timeout"
            | "proxy_http_version" => location_directive(out, s, &mut server_route),
            _ => common(out, s, None),
        }
    }
    if listens.is_empty() {
        listens.push(("0.0.0.0:80".into(), false, false));
    }
    let plain_redirect = redirect_all.as_ref().is_some_and(|(_, (to, _))| {
        to.starts_with("https://$host") || to.starts_with("https://$server_name")
    });
    for (addr, ssl, h2) in &listens {
        let i = match out.listeners.iter().position(|(a, _)| a == addr) {
            Some(i) => i,
            None => {
                out.listeners.push((addr.clone(), Listener::default()));
                out.listeners.len() - 1
            }
        };
        let l = &mut out.listeners[i].1;
        l.ssl |= *ssl;
        l.http2 |= *h2;
        if *ssl {
            if let (Some(c), Some(k)) = (&cert, &key)
                && !l.certs.contains(&(c.clone(), k.clone()))
            {
                l.certs.push((c.clone(), k.clone()));
            }
            if min_version.is_some() {
                l.min_version.clone_from(&min_version);
            }
        } else if plain_redirect && block.iter().all(|s| s.name != "location") {
            l.redirect_only = true;
        }
    }
    if let Some((d, _)) = &redirect_all
        && listens.iter().all(|(_, ssl, _)| !ssl)
        && plain_redirect
    {
        out.note(d, "a `redirect_https` listener", false);
        return;
    }
    let locations: Vec<&Directive> = block.iter().filter(|s| s.name == "location").collect();
    let host_list: Vec<Option<String>> = if hosts.is_empty() {
        vec![None]
    } else {
        hosts
            .iter()
            .map(|h| Some(h.trim_start_matches('.').to_string()))
            .collect()
    };
    if let Some((rd, (to, status))) = &redirect_all {
        for h in &host_list {
            out.routes.push(Route {
                origin: format!("return {status} {to} ({})", rd.at()),
                host: h.clone(),
                path: "/".into(),
                redirect: Some((to.clone(), *status)),
                ..server_route.clone()
            });
        }
        return;
    }
    for loc in locations {
        let Some((path, exact)) = location_path(loc) else {
            out.skip(
                loc,
                "regex and named locations are not translated (prefix locations are)",
            );
            continue;
        };
        if exact {
            out.note(loc, "an exact-match location becomes a prefix route", false);
        }
        let mut r = Route {
            origin: format!("location {} ({})", loc.args.join(" "), loc.at()),
            path: path.clone(),
            compress,
            ..server_route.clone()
        };
        // `proxy_pass` first: the per-pool directives of the location need its pool.
        let mut inner: Vec<&Directive> = loc.block.iter().flatten().collect();
        inner.sort_by_key(|s| s.name != "proxy_pass");
        for s in inner {
            match s.name.as_str() {
                "gzip" => r.compress = s.args.first().is_some_and(|a| a == "on"),
                "return" => match return_redirect(s) {
                    Some(rd) => r.redirect = Some(rd),
                    None => out.skip(s, "only `return 301|302|307|308 URL` is translated"),
                },
                "client_max_body_size" => common(out, s, Some(&mut r)),
                _ => location_directive(out, s, &mut r),
            }
        }
        if r.upstream.is_none() && r.redirect.is_none() {
            out.skip(
                loc,
                "a location without `proxy_pass` or `return` (static files are not served)",
            );
            continue;
        }
        for h in &host_list {
            let mut route = r.clone();
            route.host = h.clone();
            route.path.clone_from(&path);
            out.routes.push(route);
        }
    }
}

fn location_path(loc: &Directive) -> Option<(String, bool)> {
    match loc.args.as_slice() {
        [p] if p.starts_with('/') => Some((p.clone(), false)),
        [m, p] if (m == "^~") && p.starts_with('/') => Some((p.clone(), false)),
        [m, p] if m == "=" && p.starts_with('/') => Some((p.clone(), true)),
        _ => None,
    }
}

fn return_redirect(d: &Directive) -> Option<(String, u16)> {
    match d.args.as_slice() {
        [code, url] => {
            let code: u16 = code.parse().ok()?;
            [301, 302, 307, 308]
                .contains(&code)
                .then(|| (url.clone(), code))
        }
        [url] if url.starts_with("http") => Some((url.clone(), 302)),
        _ => None,
    }
}

/// Directives of a `location` (or a `server` applying to its locations).
fn location_directive(out: &mut Out, s: &Directive, r: &mut Route) {
    let a0 = s.args.first().cloned().unwrap_or_default();
    match s.name.as_str() {
        "proxy_pass" => {
            let rest = a0
                .strip_prefix("http://")
                .or_else(|| a0.strip_prefix("https://"));
            let Some(rest) = rest else {
                out.skip(s, "only http:// and https:// targets are translated");
                return;
            };
            if a0.starts_with("https://") {
                out.note(s, "add `tls:` to the upstream for HTTPS to it", true);
            }
            let (host, uri) = match rest.find('/') {
                Some(i) => (&rest[..i], Some(&rest[i..])),
                None => (rest, None),
            };
            if host.contains('$') {
                out.skip(s, "a target with variables is not translated");
                return;
            }
            let name = if out.pools.iter().any(|(n, _)| n == host) {
                host.to_string()
            } else {
                // A literal host:port: a pool of one server.
                let pool: String = host
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                let addr = if host.contains(':') {
                    host.to_string()
                } else {
                    format!("{host}:80")
                };
                let origin = format!("proxy_pass {a0} ({})", s.at());
                let p = out.pool(&pool);
                if p.servers.is_empty() {
                    p.origin = origin;
                    p.servers.push((addr, None, None, false));
                    p.balance = Some("round_robin".into());
                }
                pool
            };
            r.upstream = Some(name);
            match uri {
                None => {}
                Some("/") => r.strip_prefix = true,
                Some(u) => {
                    r.strip_prefix = true;
                    r.rewrite = Some(("^/(.*)$".into(), format!("{}/$1", u.trim_end_matches('/'))));
                }
            }
        }
        "proxy_set_header" => {
            let (Some(name), Some(value)) = (s.args.first(), s.args.get(1)) else {
                out.skip(s, "needs a name and a value");
                return;
            };
            if MANAGED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                out.note(s, "switchyard sets this header itself", false);
            } else if value.is_empty() {
                r.request_set.retain(|(n, _)| n != name);
                out.note(s, "an empty value removes the field: not forwarded", false);
            } else if value.contains('$') {
                out.skip(s, "a value with variables is not translated");
            } else {
                r.request_set.push((name.clone(), value.clone()));
            }
        }
        "add_header" => match (s.args.first(), s.args.get(1)) {
            (Some(n), Some(v)) if !v.contains('$') => r.response_set.push((n.clone(), v.clone())),
            _ => out.skip(s, "only literal `add_header NAME VALUE` is translated"),
        },
        "proxy_hide_header" | "more_clear_headers" => {
            r.response_remove.extend(s.args.iter().cloned())
        }
        "allow" => {
            if a0 != "all" {
                r.allow.push(a0);
            }
        }
        "deny" => {
            if a0 == "all" {
                if r.allow.is_empty() {
                    r.allow.push("0.0.0.0/32".into());
                    out.note(s, "`deny all` without `allow`: nothing is allowed", false);
                }
            } else {
                r.deny.push(a0);
            }
        }
        "limit_req" => {
            let zone = s.args.iter().find_map(|a| a.strip_prefix("zone="));
            let burst: u32 = s
                .args
                .iter()
                .find_map(|a| a.strip_prefix("burst="))
                .and_then(|b| b.parse().ok())
                .unwrap_or(0);
            match zone.and_then(|z| out.zones.get(z).copied()) {
                Some((n, per)) => {
                    r.rate = Some((n, per, burst));
                    if !s.args.iter().any(|a| a == "nodelay") {
                        out.note(s, "excess requests get 429 at once (nginx would delay them within `burst`)", false);
                    }
                }
                None => out.skip(s, "its `limit_req_zone` was not translated"),
            }
        }
        "rewrite" => match s.args.as_slice() {
            [from, to] | [from, to, _]
                if s.args.get(2).is_none_or(|f| f == "break" || f == "last") =>
            {
                r.rewrite = Some((from.clone(), to.clone()));
            }
            _ => out.skip(
                s,
                "only `rewrite REGEX REPLACEMENT [break|last]` is translated",
            ),
        },
        "proxy_connect_timeout"
        | "proxy_read_timeout"
        | "proxy_send_timeout"
        | "proxy_next_upstream"
        | "proxy_next_upstream_tries"
        | "proxy_next_upstream_timeout" => {
            let Some(pool) = r.upstream.clone() else {
                out.skip(
                    s,
                    "put it in a location with `proxy_pass` (it is per pool in switchyard)",
                );
                return;
            };
            let p = out.pool(&pool);
            match s.name.as_str() {
                "proxy_connect_timeout" => p.connect = Some(duration(&a0)),
                "proxy_read_timeout" => p.read = Some(duration(&a0)),
                "proxy_send_timeout" => p.write = Some(duration(&a0)),
                "proxy_next_upstream_tries" => p.tries = Some(a0),
                "proxy_next_upstream_timeout" => p.retry_timeout = Some(duration(&a0)),
                _ => {
                    let mut on = Vec::new();
                    let mut dropped = Vec::new();
                    for a in &s.args {
                        match a.as_str() {
                            "error" | "timeout" | "invalid_header" | "http_500" | "http_502"
                            | "http_503" | "http_504" | "http_429" | "non_idempotent" => {
                                on.push(a.clone())
                            }
                            "off" => {}
                            other => dropped.push(other.to_string()),
                        }
                    }
                    p.retry_on = Some(on);
                    if !dropped.is_empty() {
                        out.skip(s, format!("{} not translated", dropped.join(", ")));
                    }
                }
            }
        }
        "proxy_http_version" => out.note(s, "switchyard speaks HTTP/1.1 to upstreams", false),
        "client_max_body_size" => r.max_body = Some(a0),
        n if NOT_NEEDED.contains(&n) => out.note(s, "not needed by switchyard", false),
        _ => out.skip(s, "no switchyard equivalent"),
    }
}

fn render(out: &Out) -> String {
    let mut y = String::new();
    y.push_str(
        "# Imported from nginx by `switchyard import-nginx`; check it with `switchyard check`.\n",
    );
    y.push_str("# What could not be carried over was reported on stderr.\n");
    y.push_str("listen:\n");
    if out.listeners.is_empty() {
        y.push_str("  - \"0.0.0.0:80\"\n");
    }
    for (addr, l) in &out.listeners {
        if l.ssl {
            let _ = writeln!(y, "  - addr: {}", yaml_str(addr));
            y.push_str("    tls:\n      certificates:\n");
            for (c, k) in &l.certs {
                let _ = writeln!(
                    y,
                    "        - {{cert: {}, key: {}}}",
                    yaml_str(c),
                    yaml_str(k)
                );
            }
            if let Some(v) = &l.min_version {
                let _ = writeln!(y, "      min_version: \"{v}\"");
            }
            let _ = writeln!(y, "    http2: {}", l.http2);
        } else if l.redirect_only {
            let _ = writeln!(y, "  - addr: {}\n    redirect_https: true", yaml_str(addr));
        } else {
            let _ = writeln!(y, "  - {}", yaml_str(addr));
        }
    }
    if let Some(t) = &out.threads {
        let _ = writeln!(y, "threads: {t}");
    }
    if let Some(a) = &out.access_log {
        let _ = writeln!(y, "access_log: {}", yaml_str(a));
        if a != "off" && a != "stdout" {
            y.push_str("access_log_format: combined\n");
        }
    }
    if !out.limits.is_empty() {
        y.push_str("limits:\n");
        for (k, v) in &out.limits {
            let _ = writeln!(y, "  {k}: {}", yaml_str(v));
        }
    }
    y.push_str("upstreams:\n");
    for (name, p) in &out.pools {
        if !p.origin.is_empty() {
            let _ = writeln!(y, "  # {}", p.origin);
        }
        let _ = writeln!(y, "  {name}:");
        if let Some(b) = &p.balance {
            let _ = writeln!(y, "    balance: {b}");
        }
        if let Some(k) = &p.hash_key {
            let _ = writeln!(y, "    hash_key: {}", yaml_str(k));
        }
        y.push_str("    servers:\n");
        for (addr, weight, max_conns, backup) in &p.servers {
            let _ = write!(y, "      - addr: {}", yaml_str(addr));
            if let Some(w) = weight {
                let _ = write!(y, "\n        weight: {w}");
            }
            if let Some(m) = max_conns {
                let _ = write!(y, "\n        max_conns: {m}");
            }
            if *backup {
                y.push_str("\n        backup: true");
            }
            y.push('\n');
        }
        let timeouts: Vec<String> = [
            ("connect", &p.connect),
            ("read", &p.read),
            ("write", &p.write),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
        .collect();
        if !timeouts.is_empty() {
            let _ = writeln!(y, "    timeouts: {{{}}}", timeouts.join(", "));
        }
        let keepalive: Vec<String> = [
            ("idle", &p.keepalive_idle),
            ("timeout", &p.keepalive_timeout),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
        .collect();
        if !keepalive.is_empty() {
            let _ = writeln!(y, "    keepalive: {{{}}}", keepalive.join(", "));
        }
        let mut retry = Vec::new();
        if let Some(on) = &p.retry_on {
            retry.push(format!("on: [{}]", on.join(", ")));
        }
        if let Some(t) = &p.tries {
            retry.push(format!("tries: {t}"));
        }
        if let Some(t) = &p.retry_timeout {
            retry.push(format!("timeout: {t}"));
        }
        if !retry.is_empty() {
            let _ = writeln!(y, "    retry: {{{}}}", retry.join(", "));
        }
        let breaker: Vec<String> = [("failures", &p.failures), ("open_for", &p.open_for)]
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
            .collect();
        if !breaker.is_empty() {
            let _ = writeln!(y, "    circuit_breaker: {{{}}}", breaker.join(", "));
        }
    }
    // Only needed with more than one pool or with policies; always written for clarity.
    let mut seen = std::collections::HashSet::new();
    let routes: Vec<&Route> = out
        .routes
        .iter()
        .filter(|r| seen.insert((r.host.clone(), r.path.clone())))
        .collect();
    if !routes.is_empty() {
        y.push_str("routes:\n");
    }
    for r in routes {
        if !r.origin.is_empty() {
            let _ = writeln!(y, "  # {}", r.origin);
        }
        let _ = write!(y, "  - path: {}", yaml_str(&r.path));
        if let Some(h) = &r.host {
            let _ = write!(y, "\n    host: {}", yaml_str(h));
        }
        if let Some(u) = &r.upstream {
            let _ = write!(y, "\n    upstream: {u}");
        }
        if let Some((to, status)) = &r.redirect {
            let _ = write!(
                y,
                "\n    redirect: {{to: {}, status: {status}}}",
                yaml_str(to)
            );
        }
        if r.redirect.is_none() {
            if r.strip_prefix {
                y.push_str("\n    strip_prefix: true");
            }
            if let Some((from, to)) = &r.rewrite {
                let _ = write!(
                    y,
                    "\n    rewrite: {{from: {}, to: {}}}",
                    yaml_str(from),
                    yaml_str(to)
                );
            }
            if !r.request_set.is_empty() {
                y.push_str("\n    request_headers:\n      set:");
                for (k, v) in &r.request_set {
                    let _ = write!(y, "\n        {}: {}", yaml_str(k), yaml_str(v));
                }
            }
            if let Some(m) = &r.max_body {
                let _ = write!(y, "\n    max_body_bytes: {}", yaml_str(m));
            }
            if r.compress {
                y.push_str("\n    compress: true");
            }
        }
        if !r.response_set.is_empty() || !r.response_remove.is_empty() {
            y.push_str("\n    response_headers:");
            if !r.response_set.is_empty() {
                y.push_str("\n      set:");
                for (k, v) in &r.response_set {
                    let _ = write!(y, "\n        {}: {}", yaml_str(k), yaml_str(v));
                }
            }
            if !r.response_remove.is_empty() {
                let list: Vec<String> = r.response_remove.iter().map(|s| yaml_str(s)).collect();
                let _ = write!(y, "\n      remove: [{}]", list.join(", "));
            }
        }
        if !r.allow.is_empty() {
            let list: Vec<String> = r.allow.iter().map(|s| yaml_str(s)).collect();
            let _ = write!(y, "\n    allow: [{}]", list.join(", "));
        }
        if !r.deny.is_empty() {
            let list: Vec<String> = r.deny.iter().map(|s| yaml_str(s)).collect();
            let _ = write!(y, "\n    deny: [{}]", list.join(", "));
        }
        if let Some((n, per, burst)) = r.rate {
            let _ = write!(
                y,
                "\n    rate_limit: {{requests: {n}, per: {per}, burst: {burst}}}"
            );
        }
        y.push('\n');
    }
    y
}
