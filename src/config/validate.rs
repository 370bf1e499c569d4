//! File structs -> typed [`Config`]: defaults, units, addresses, cross-references.
//!
//! Every problem is recorded with the position of the offending value (found in the YAML tree
//! by its key path) and checking goes on, so one run reports all of them. Never panics.

use super::error::{Issues, did_you_mean};
use super::file::{self, BalanceName, FileConfig, FileUpstream};
use super::units::{parse_duration, parse_listen, parse_size, parse_status_range, resolve_addr};
use super::yaml::{Node, Seg};
use super::{
    AccessLog, Balance, BreakerPolicy, Config, HashKey, HealthCheck, HostMatch, Keepalive, Limits,
    LogFormat, OutcomeSet, RetryPolicy, Route, ServerConfig, Timeouts, Upstream, Weight,
};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9901";

/// Smallest `max_header_bytes` accepted: below this, ordinary browser requests fail.
const MIN_HEADER_BYTES: u64 = 1024;
/// pingora reads at most 1 MiB of request head; a larger limit could never be reached.
const MAX_HEADER_BYTES: u64 = 1024 * 1024;
/// pingora's request body replay buffer (`BODY_BUF_LIMIT`) is fixed at 64 KiB.
const MAX_RETRY_BUFFER: u64 = 64 * 1024;

/// How `host:port` text becomes an address ([`resolve_addr`] resolves names).
pub type Resolve<'a> = &'a dyn Fn(&str) -> Result<SocketAddr, String>;

struct Checker<'a> {
    root: &'a Node,
    issues: &'a mut Issues,
    resolve: Resolve<'a>,
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
        resolve,
    };

    // listen
    let mut listen: Vec<SocketAddr> = Vec::new();
    match &file.listen {
        None => c.err(
            &[Seg::Key("listen")],
            "`listen` is required: one or more host:port for client traffic",
        ),
        Some(l) if l.0.is_empty() => {
            c.err(&[Seg::Key("listen")], "at least one address is required")
        }
        Some(l) => {
            for (i, text) in l.0.iter().enumerate() {
                let p = [Seg::Key("listen"), Seg::Index(i)];
                match parse_listen(text, c.resolve) {
                    Ok(a) if listen.contains(&a) => c.err(&p, format!("`{text}` is listed twice")),
                    Ok(a) => listen.push(a),
                    Err(e) => c.err(&p, e),
                }
            }
        }
    }

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

    let threads = file.threads.unwrap_or(0);
    if threads > 1024 {
        c.err(
            &[Seg::Key("threads")],
            format!("{threads} threads is more than the 1024 allowed"),
        );
    }
    let shutdown_grace = c.duration(
        &file.shutdown_grace,
        &[Seg::Key("shutdown_grace")],
        Duration::from_secs(30),
    );
    let watch = file.watch.unwrap_or(true);

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
        32 * 1024,
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
        Duration::from_secs(10),
    );
    let body_read_timeout = c.positive(
        &lim.and_then(|l| l.body_read_timeout.clone()),
        &lp("body_read_timeout"),
        Duration::from_secs(60),
    );
    let send_timeout = c.positive(
        &lim.and_then(|l| l.send_timeout.clone()),
        &lp("send_timeout"),
        Duration::from_secs(60),
    );
    let limits = Limits {
        max_header_bytes: usize::try_from(max_header.clamp(MIN_HEADER_BYTES, MAX_HEADER_BYTES))
            .unwrap_or(32 * 1024),
        max_body_bytes: (max_body > 0).then_some(max_body),
        header_read_timeout,
        body_read_timeout,
        send_timeout,
    };

    // upstreams
    let mut upstreams = Vec::new();
    match &file.upstreams {
        None => c.err(
            &[Seg::Key("upstreams")],
            "`upstreams` is required: at least one pool of servers",
        ),
        Some(u) if u.0.is_empty() => {
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
    let mut routes = Vec::new();
    let mut seen_routes: HashSet<(String, String)> = HashSet::new();
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
    for (i, r) in file_routes.iter().enumerate() {
        let rp = |k| [Seg::Key("routes"), Seg::Index(i), Seg::Key(k)];
        let host = match r.host.as_deref() {
            None => HostMatch::Any,
            Some(h) => match host_match(h) {
                Ok(m) => m,
                Err(e) => {
                    c.err(&rp("host"), e);
                    HostMatch::Any
                }
            },
        };
        let path = r.path.clone().unwrap_or_else(|| "/".to_string());
        if !path.starts_with('/') {
            c.err(&rp("path"), format!("`{path}` must start with /"));
        }
        let upstream = match r.upstream.as_deref() {
            None => {
                c.err(
                    &[Seg::Key("routes"), Seg::Index(i)],
                    "`upstream` is required",
                );
                None
            }
            Some(u) => match names.iter().position(|n| *n == u) {
                Some(idx) => Some(idx),
                None => {
                    c.err(
                        &rp("upstream"),
                        format!(
                            "unknown upstream `{u}`{}",
                            did_you_mean(u, names.iter().copied())
                        ),
                    );
                    None
                }
            },
        };
        let key = (format!("{host:?}"), path.clone());
        if !seen_routes.insert(key) {
            c.err(
                &[Seg::Key("routes"), Seg::Index(i)],
                "the same host and path are routed twice",
            );
        }
        if let Some(upstream) = upstream {
            routes.push(Route {
                host,
                path,
                upstream,
            });
        }
    }

    if !c.issues.is_empty() {
        return None;
    }
    Some(Config {
        source,
        listen,
        admin_listen,
        threads: threads as usize,
        shutdown_grace,
        watch,
        access_log,
        access_log_format,
        limits,
        upstreams,
        routes,
    })
}

fn host_match(h: &str) -> Result<HostMatch, String> {
    let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
    if h.is_empty() {
        return Err("an empty host; leave `host` out to match any host".into());
    }
    if h.contains(':') && !h.starts_with('[') {
        return Err(format!("`{h}`: write the host without a port"));
    }
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':')
            })
    };
    if let Some(rest) = h.strip_prefix("*.") {
        if !valid(rest) {
            return Err(format!("`{h}` is not a host name"));
        }
        return Ok(HostMatch::Wildcard(format!(".{rest}")));
    }
    if !valid(&h) || h.contains('*') {
        return Err(format!(
            "`{h}` is not a host name (a wildcard is written *.example.com)"
        ));
    }
    Ok(HostMatch::Exact(h))
}

fn valid_pool_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn upstream(c: &mut Checker<'_>, name: &str, up: &FileUpstream) -> Option<Upstream> {
    let base = [Seg::Key("upstreams"), Seg::Key(name)];
    let at = |tail: &[Seg<'static>]| -> Vec<Seg<'_>> {
        let mut v = base.to_vec();
        v.extend_from_slice(tail);
        v
    };
    let errors_before = c.issues.len();
    if !valid_pool_name(name) {
        c.err(
            &base,
            format!("pool name `{name}` may only contain letters, digits, _ and -"),
        );
    }

    let balance = match (
        up.balance.unwrap_or(BalanceName::LeastConn),
        up.hash_key.as_deref(),
    ) {
        (BalanceName::Hash, None) => {
            c.err(
                &at(&[Seg::Key("balance")]),
                "`balance: hash` needs a `hash_key` (client_ip, header:NAME, cookie:NAME or path)",
            );
            Balance::Hash(HashKey::ClientIp)
        }
        (BalanceName::Hash, Some(k)) => match hash_key(k) {
            Ok(k) => Balance::Hash(k),
            Err(e) => {
                c.err(&at(&[Seg::Key("hash_key")]), e);
                Balance::Hash(HashKey::ClientIp)
            }
        },
        (other, Some(_)) => {
            c.err(
                &at(&[Seg::Key("hash_key")]),
                "`hash_key` is only used with `balance: hash`",
            );
            balance_of(other)
        }
        (other, None) => balance_of(other),
    };

    let mut servers = Vec::new();
    let file_servers = up.servers.as_deref().unwrap_or(&[]);
    if file_servers.is_empty() {
        c.err(
            &at(&[Seg::Key("servers")]),
            "a pool needs at least one server",
        );
    }
    let mut by_text: HashMap<String, usize> = HashMap::new();
    let mut by_socket: HashMap<SocketAddr, usize> = HashMap::new();
    for (i, s) in file_servers.iter().enumerate() {
        let sp = |k: &'static str| at(&[Seg::Key("servers"), Seg::Index(i), Seg::Key(k)]);
        let Some(addr) = s.addr.as_deref().map(str::trim) else {
            c.err(
                &at(&[Seg::Key("servers"), Seg::Index(i)]),
                "`addr` is required (host:port)",
            );
            continue;
        };
        let socket = match (c.resolve)(addr) {
            Ok(a) => a,
            Err(e) => {
                c.err(&sp("addr"), e);
                continue;
            }
        };
        if let Some(first) = by_text.insert(addr.to_string(), i) {
            c.err(
                &sp("addr"),
                format!("`{addr}` is already servers[{first}] of this pool"),
            );
            continue;
        }
        if let Some(first) = by_socket.insert(socket, i) {
            c.err(
                &sp("addr"),
                format!("`{addr}` resolves to {socket}, the same as servers[{first}]"),
            );
            continue;
        }
        let weight = match Weight::try_new(s.weight.unwrap_or(1)) {
            Ok(w) => w,
            Err(e) => {
                c.err(&sp("weight"), e.to_string());
                Weight::default()
            }
        };
        servers.push(ServerConfig {
            addr: addr.to_string(),
            socket,
            weight,
            max_conns: s.max_conns.and_then(NonZeroU32::new),
            backup: s.backup.unwrap_or(false),
        });
    }
    if !servers.is_empty() && servers.iter().all(|s| s.backup) {
        c.err(
            &at(&[Seg::Key("servers")]),
            "every server is a backup; at least one must not be",
        );
    }

    let t = up.timeouts.as_ref();
    let tp = |k: &'static str| at(&[Seg::Key("timeouts"), Seg::Key(k)]);
    let timeouts = Timeouts {
        connect: c.positive(
            &t.and_then(|t| t.connect.clone()),
            &tp("connect"),
            Duration::from_secs(5),
        ),
        read: c.positive(
            &t.and_then(|t| t.read.clone()),
            &tp("read"),
            Duration::from_secs(60),
        ),
        write: c.positive(
            &t.and_then(|t| t.write.clone()),
            &tp("write"),
            Duration::from_secs(60),
        ),
    };

    let k = up.keepalive.as_ref();
    let keepalive = Keepalive {
        idle: k.and_then(|k| k.idle).unwrap_or(64) as usize,
        timeout: c.positive(
            &k.and_then(|k| k.timeout.clone()),
            &at(&[Seg::Key("keepalive"), Seg::Key("timeout")]),
            Duration::from_secs(60),
        ),
    };

    let r = up.retry.as_ref();
    let rp = |k: &'static str| at(&[Seg::Key("retry"), Seg::Key(k)]);
    let (on, extras) = c.outcomes(
        &r.and_then(|r| r.on.clone()),
        &rp("on"),
        &["error", "timeout"],
        &["non_idempotent"],
    );
    let tries = c.nonzero(r.and_then(|r| r.tries), &rp("tries"), 3);
    if tries.get() > 100 {
        c.err(&rp("tries"), "more than 100 tries is not allowed");
    }
    let retry_timeout = c.duration(
        &r.and_then(|r| r.timeout.clone()),
        &rp("timeout"),
        Duration::ZERO,
    );
    let buffer = c.size(
        &r.and_then(|r| r.buffer.clone()),
        &rp("buffer"),
        MAX_RETRY_BUFFER,
    );
    if buffer > MAX_RETRY_BUFFER {
        c.err(
            &rp("buffer"),
            "at most 64KiB: pingora keeps at most that much of a request body for replay",
        );
    }
    let budget_percent = r.and_then(|r| r.budget_percent).unwrap_or(20);
    if budget_percent > 100 {
        c.err(&rp("budget_percent"), "must be from 0 to 100");
    }
    let retry = RetryPolicy {
        on,
        non_idempotent: !extras.is_empty(),
        tries,
        timeout: (!retry_timeout.is_zero()).then_some(retry_timeout),
        buffer: usize::try_from(buffer).unwrap_or(usize::MAX),
        budget_percent: budget_percent.min(100),
    };

    let b = up.circuit_breaker.as_ref();
    let bp = |k: &'static str| at(&[Seg::Key("circuit_breaker"), Seg::Key(k)]);
    let open_for = c.positive(
        &b.and_then(|b| b.open_for.clone()),
        &bp("open_for"),
        Duration::from_secs(30),
    );
    let max_open_for = c.positive(
        &b.and_then(|b| b.max_open_for.clone()),
        &bp("max_open_for"),
        Duration::from_secs(300),
    );
    if max_open_for < open_for {
        c.err(&bp("max_open_for"), "must not be shorter than `open_for`");
    }
    let (breaker_on, _) = c.outcomes(
        &b.and_then(|b| b.on.clone()),
        &bp("on"),
        &["error", "timeout", "http_502", "http_503", "http_504"],
        &[],
    );
    let breaker = BreakerPolicy {
        failures: c.nonzero(b.and_then(|b| b.failures), &bp("failures"), 5),
        open_for,
        max_open_for: max_open_for.max(open_for),
        half_open_requests: c.nonzero(
            b.and_then(|b| b.half_open_requests),
            &bp("half_open_requests"),
            1,
        ),
        on: breaker_on,
    };

    let health_check = up
        .health_check
        .as_ref()
        .map(|h| health(c, h, &at(&[Seg::Key("health_check")])));

    if c.issues.len() > errors_before {
        return None;
    }
    Some(Upstream {
        name: name.to_string(),
        balance,
        servers,
        timeouts,
        keepalive,
        retry,
        breaker,
        health_check,
    })
}

fn balance_of(b: BalanceName) -> Balance {
    match b {
        BalanceName::LeastConn => Balance::LeastConn,
        BalanceName::RoundRobin => Balance::RoundRobin,
        BalanceName::Random => Balance::Random,
        BalanceName::Hash => Balance::Hash(HashKey::ClientIp),
    }
}

fn hash_key(k: &str) -> Result<HashKey, String> {
    let k = k.trim();
    match k {
        "client_ip" => return Ok(HashKey::ClientIp),
        "path" => return Ok(HashKey::Path),
        _ => {}
    }
    if let Some(name) = k.strip_prefix("header:") {
        return http::HeaderName::from_bytes(name.trim().as_bytes())
            .map(HashKey::Header)
            .map_err(|_| format!("`{name}` is not a header name"));
    }
    if let Some(name) = k.strip_prefix("cookie:") {
        let name = name.trim();
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b"=;,\"".contains(&b)) {
            return Err(format!("`{name}` is not a cookie name"));
        }
        return Ok(HashKey::Cookie(name.to_string()));
    }
    Err(format!(
        "unknown hash key `{k}`; expected client_ip, header:NAME, cookie:NAME or path{}",
        did_you_mean(k, ["client_ip", "path"])
    ))
}

fn health(c: &mut Checker<'_>, h: &file::FileHealthCheck, base: &[Seg<'_>]) -> HealthCheck {
    let at = |k: &'static str| {
        let mut v = base.to_vec();
        v.push(Seg::Key(k));
        v
    };
    let path = h.path.clone().unwrap_or_else(|| "/".to_string());
    if !path.starts_with('/') {
        c.err(&at("path"), format!("`{path}` must start with /"));
    }
    let expect_status = match &h.expect_status {
        None => parse_status_range("200-399"),
        Some(t) => parse_status_range(t),
    };
    let expect_status = expect_status.unwrap_or_else(|e| {
        c.err(&at("expect_status"), e);
        super::StatusRange { lo: 200, hi: 399 }
    });
    HealthCheck {
        path,
        interval: c.positive(&h.interval, &at("interval"), Duration::from_secs(5)),
        timeout: c.positive(&h.timeout, &at("timeout"), Duration::from_secs(2)),
        healthy_after: c.nonzero(h.healthy_after, &at("healthy_after"), 2),
        unhealthy_after: c.nonzero(h.unhealthy_after, &at("unhealthy_after"), 3),
        expect_status,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Balance, HashKey, HostMatch, load_str};
    use std::path::PathBuf;

    fn errors(text: &str) -> Vec<String> {
        match load_str(text, "t.yaml", PathBuf::from("t.yaml")) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    const MINIMAL: &str = "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app:\n    servers:\n      - addr: 127.0.0.1:3000\n";

    #[test]
    fn minimal_config_gets_spec_defaults() {
        let c = load_str(MINIMAL, "t.yaml", PathBuf::from("t.yaml")).unwrap();
        assert_eq!(c.admin_listen.to_string(), "127.0.0.1:9901");
        assert_eq!(c.shutdown_grace.as_secs(), 30);
        assert!(c.watch);
        assert_eq!(c.limits.max_header_bytes, 32 * 1024);
        assert_eq!(c.limits.max_body_bytes, None);
        assert_eq!(c.limits.header_read_timeout.as_secs(), 10);
        let u = &c.upstreams[0];
        assert_eq!(u.balance, Balance::LeastConn);
        assert_eq!(u.timeouts.connect.as_secs(), 5);
        assert_eq!(u.timeouts.read.as_secs(), 60);
        assert_eq!(u.keepalive.idle, 64);
        assert_eq!(u.retry.tries.get(), 3);
        assert_eq!(u.retry.buffer, 64 * 1024);
        assert_eq!(u.retry.budget_percent, 20);
        assert_eq!(u.breaker.failures.get(), 5);
        assert_eq!(u.breaker.open_for.as_secs(), 30);
        assert_eq!(u.breaker.max_open_for.as_secs(), 300);
        assert_eq!(u.servers[0].weight.get(), 1);
        assert!(c.routes.is_empty());
    }

    #[test]
    fn spec_rejections_all_reported_at_once() {
        let text = r#"
listen: []
upstreams:
  a:
    balance: hash
    servers:
      - addr: 127.0.0.1:1
        weight: 0
      - addr: 127.0.0.1:1
      - addr: 127.0.0.1:2
        weight: 1001
    retry:
      tries: 0
    circuit_breaker:
      half_open_requests: 0
  b:
    servers: []
routes:
  - upstream: nope
"#;
        let errs = errors(text);
        let want = [
            "t.yaml:2:9: listen: at least one address",
            "t.yaml:5:14: upstreams.a.balance: `balance: hash` needs a `hash_key`",
            "t.yaml:8:17: upstreams.a.servers[0].weight: weight must be from 1 to 1000, found 0",
            "t.yaml:9:15: upstreams.a.servers[1].addr: `127.0.0.1:1` is already servers[0]",
            "t.yaml:11:17: upstreams.a.servers[2].weight: weight must be from 1 to 1000, found 1001",
            "t.yaml:13:14: upstreams.a.retry.tries: must be at least 1",
            "t.yaml:15:27: upstreams.a.circuit_breaker.half_open_requests: must be at least 1",
            "t.yaml:17:14: upstreams.b.servers: a pool needs at least one server",
            "t.yaml:19:15: routes[0].upstream: unknown upstream `nope`",
        ];
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
        for (got, want) in errs.iter().zip(want) {
            assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn routes_need_known_pools_and_are_required_with_two_pools() {
        let text = "listen: \":8080\"\nupstreams:\n  app: {servers: [{addr: \"127.0.0.1:1\"}]}\n  api: {servers: [{addr: \"127.0.0.1:2\"}]}\n";
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("`routes` are required"), "{errs:?}");
        let text = format!(
            "{text}routes:\n  - host: \"*.Example.com\"\n    upstream: app\n  - path: /api/\n    upstream: appp\n"
        );
        let errs = errors(&text);
        assert_eq!(
            errs,
            vec!["t.yaml:9:15: routes[1].upstream: unknown upstream `appp`; did you mean `app`?"]
        );
    }

    #[test]
    fn hash_keys_and_hosts() {
        let text = "listen: \":8080\"\nupstreams:\n  app:\n    balance: hash\n    hash_key: \"cookie:sid\"\n    servers: [{addr: \"127.0.0.1:1\"}]\nroutes:\n  - host: \"*.Example.com.\"\n    upstream: app\n";
        let c = load_str(text, "t.yaml", PathBuf::from("t.yaml")).unwrap();
        assert_eq!(
            c.upstreams[0].balance,
            Balance::Hash(HashKey::Cookie("sid".into()))
        );
        assert_eq!(c.routes[0].host, HostMatch::Wildcard(".example.com".into()));
        let bad = text.replace("cookie:sid", "cokie:sid");
        let errs = errors(&bad);
        assert!(errs[0].contains("unknown hash key"), "{errs:?}");
    }

    #[test]
    fn durations_sizes_and_unknown_keys() {
        let text = "listen: \":8080\"\nshutdown_grace: 30\nlimits:\n  max_body_bytes: 1MiB\n  max_header_bytes: 10\nupstreams:\n  app:\n    servers: [{addr: \"127.0.0.1:1\", wieght: 2}]\n    timeouts: {connect: 5x}\n";
        let errs = errors(text);
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(
            errs[0].starts_with("t.yaml:2:17: shutdown_grace: `30` has no unit"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("t.yaml:5:21: limits.max_header_bytes: must be from 1KiB"),
            "{errs:?}"
        );
        assert!(
            errs[2].contains("unknown key `wieght`; did you mean `weight`?"),
            "{errs:?}"
        );
        assert!(
            errs[3].contains("timeouts.connect: `5x` is not a duration"),
            "{errs:?}"
        );
    }
}
