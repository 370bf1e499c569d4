//! One upstream pool: its name, servers, balancing, timeouts, keep-alive, retry, breaker and
//! health-check policies.

use super::{Checker, MAX_RETRY_BUFFER};
use crate::config::defaults;
use crate::config::error::did_you_mean;
use crate::config::file::{self, BalanceName, FileUpstream};
use crate::config::units::parse_status_range;
use crate::config::yaml::Seg;
use crate::config::{
    Balance, BreakerPolicy, DnsEntry, Endpoint, HashKey, HealthCheck, Keepalive, Lookup,
    RetryPolicy, ServerConfig, StatusRange, Timeouts, UNIX_PREFIX, Upstream, Weight,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

fn valid_pool_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub(super) fn upstream(c: &mut Checker<'_>, name: &str, up: &FileUpstream) -> Option<Upstream> {
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
    let mut dns = Vec::new();
    let file_servers = up.servers.as_deref().unwrap_or(&[]);
    if file_servers.is_empty() {
        c.err(
            &at(&[Seg::Key("servers")]),
            "a pool needs at least one server",
        );
    }
    let mut by_text: HashMap<String, usize> = HashMap::new();
    let mut by_socket: HashMap<Endpoint, usize> = HashMap::new();
    for (i, s) in file_servers.iter().enumerate() {
        let sp = |k: &'static str| at(&[Seg::Key("servers"), Seg::Index(i), Seg::Key(k)]);
        let weight = match Weight::try_new(s.weight.unwrap_or(1)) {
            Ok(w) => w,
            Err(e) => {
                c.err(&sp("weight"), e.to_string());
                Weight::default()
            }
        };
        let (name, lookup) = match (
            s.addr.as_deref().map(str::trim),
            s.srv.as_deref().map(str::trim),
        ) {
            (Some(_), Some(_)) => {
                c.err(&sp("srv"), "a server entry has `addr` or `srv`, not both");
                continue;
            }
            (None, None) => {
                c.err(
                    &at(&[Seg::Key("servers"), Seg::Index(i)]),
                    "`addr` is required (host:port), or `srv` with `resolve`",
                );
                continue;
            }
            (None, Some(srv)) => {
                if s.resolve.is_none() {
                    c.err(
                        &sp("srv"),
                        "`srv` entries need `resolve` (how often to look them up)",
                    );
                    continue;
                }
                if s.weight.is_some() {
                    c.err(
                        &sp("weight"),
                        "an `srv` entry's weights come from its records",
                    );
                    continue;
                }
                (srv, Lookup::Srv(srv.trim_end_matches('.').to_string()))
            }
            (Some(addr), None) if addr.starts_with(UNIX_PREFIX) && s.resolve.is_some() => {
                c.err(&sp("resolve"), "a Unix socket is not looked up in DNS");
                continue;
            }
            (Some(addr), None) if s.resolve.is_some() => match split_host_port(addr) {
                Ok((host, port)) => (addr, Lookup::Host { host, port }),
                Err(e) => {
                    c.err(&sp("addr"), e);
                    continue;
                }
            },
            (Some(addr), None) => {
                let socket = match Endpoint::parse_unix(addr) {
                    Some(Ok(unix)) => {
                        if let Endpoint::Unix(u) = &unix
                            && !u.path().exists()
                        {
                            // The app may start after the proxy (SPEC §13).
                            c.warn(
                                &sp("addr"),
                                format!("`{addr}` does not exist (yet): requests fail until the app creates it"),
                            );
                        }
                        unix
                    }
                    Some(Err(e)) => {
                        c.err(&sp("addr"), e);
                        continue;
                    }
                    None => match (c.resolve)(addr) {
                        Ok(a) => Endpoint::Inet(a),
                        Err(e) => {
                            c.err(&sp("addr"), e);
                            continue;
                        }
                    },
                };
                if let Some(first) = by_text.insert(addr.to_string(), i) {
                    c.err(
                        &sp("addr"),
                        format!("`{addr}` is already servers[{first}] of this pool"),
                    );
                    continue;
                }
                if let Some(first) = by_socket.insert(socket.clone(), i) {
                    c.err(
                        &sp("addr"),
                        format!("`{addr}` resolves to {socket}, the same as servers[{first}]"),
                    );
                    continue;
                }
                servers.push(ServerConfig {
                    addr: addr.to_string(),
                    socket,
                    weight,
                    max_conns: s.max_conns.and_then(NonZeroU32::new),
                    backup: s.backup.unwrap_or(false),
                    from: None,
                });
                continue;
            }
        };
        if let Some(first) = by_text.insert(name.to_string(), i) {
            c.err(
                &sp(if matches!(lookup, Lookup::Srv(_)) {
                    "srv"
                } else {
                    "addr"
                }),
                format!("`{name}` is already servers[{first}] of this pool"),
            );
            continue;
        }
        let every = c.positive(&s.resolve, &sp("resolve"), Duration::from_secs(5));
        if every < MIN_RESOLVE {
            c.err(
                &sp("resolve"),
                format!("at least {MIN_RESOLVE:?}: DNS is not a per-request lookup"),
            );
        }
        dns.push(DnsEntry {
            name: name.to_string(),
            lookup,
            every: every.max(MIN_RESOLVE),
            weight,
            max_conns: s.max_conns.and_then(NonZeroU32::new),
            backup: s.backup.unwrap_or(false),
        });
    }
    if dns.is_empty() && !servers.is_empty() && servers.iter().all(|s| s.backup) {
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
            defaults::CONNECT_TIMEOUT,
        ),
        read: c.positive(
            &t.and_then(|t| t.read.clone()),
            &tp("read"),
            defaults::READ_TIMEOUT,
        ),
        write: c.positive(
            &t.and_then(|t| t.write.clone()),
            &tp("write"),
            defaults::WRITE_TIMEOUT,
        ),
    };

    let k = up.keepalive.as_ref();
    let keepalive = Keepalive {
        idle: k.and_then(|k| k.idle).unwrap_or(defaults::KEEPALIVE_IDLE) as usize,
        timeout: c.positive(
            &k.and_then(|k| k.timeout.clone()),
            &at(&[Seg::Key("keepalive"), Seg::Key("timeout")]),
            defaults::KEEPALIVE_IDLE_TIMEOUT,
        ),
    };

    let r = up.retry.as_ref();
    let rp = |k: &'static str| at(&[Seg::Key("retry"), Seg::Key(k)]);
    let (on, extras) = c.outcomes(
        &r.and_then(|r| r.on.clone()),
        &rp("on"),
        defaults::RETRY_ON,
        &["non_idempotent"],
    );
    let tries = c.nonzero(r.and_then(|r| r.tries), &rp("tries"), defaults::RETRY_TRIES);
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
        defaults::RETRY_BUFFER,
    );
    if buffer > MAX_RETRY_BUFFER {
        c.err(
            &rp("buffer"),
            "at most 64KiB: pingora keeps at most that much of a request body for replay",
        );
    }
    let budget_percent = r
        .and_then(|r| r.budget_percent)
        .unwrap_or(defaults::RETRY_BUDGET_PERCENT);
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
        defaults::BREAKER_OPEN_FOR,
    );
    let max_open_for = c.positive(
        &b.and_then(|b| b.max_open_for.clone()),
        &bp("max_open_for"),
        defaults::BREAKER_MAX_OPEN_FOR,
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
        failures: c.nonzero(
            b.and_then(|b| b.failures),
            &bp("failures"),
            defaults::BREAKER_FAILURES,
        ),
        open_for,
        max_open_for: max_open_for.max(open_for),
        half_open_requests: c.nonzero(
            b.and_then(|b| b.half_open_requests),
            &bp("half_open_requests"),
            defaults::BREAKER_HALF_OPEN_REQUESTS,
        ),
        on: breaker_on,
    };

    let health_check = up
        .health_check
        .as_ref()
        .map(|h| health(c, h, &at(&[Seg::Key("health_check")])));

    let tls = up
        .tls
        .as_ref()
        .and_then(|t| super::tls::upstream_tls(c, t, &at(&[Seg::Key("tls")])));

    let (protocol, send_proxy_protocol, buffering) = super::transport::pool_transport(c, up, &base);

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
        tls,
        dns,
        protocol,
        send_proxy_protocol,
        buffering,
    })
}

/// The shortest `resolve` interval accepted.
const MIN_RESOLVE: Duration = Duration::from_millis(500);

/// `host:port` of an entry followed in DNS (the host is not looked up here).
fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("`{addr}` is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{addr}`: `{port}` is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("`{addr}` is not host:port"));
    }
    Ok((host.trim_end_matches('.').to_string(), port))
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
    let path = h
        .path
        .clone()
        .unwrap_or_else(|| defaults::HEALTH_PATH.to_string());
    if !path.starts_with('/') {
        c.err(&at("path"), format!("`{path}` must start with /"));
    }
    let expect_status = match &h.expect_status {
        None => parse_status_range(defaults::HEALTH_EXPECT_STATUS),
        Some(t) => parse_status_range(t),
    };
    let expect_status = expect_status.unwrap_or_else(|e| {
        c.err(&at("expect_status"), e);
        StatusRange { lo: 200, hi: 399 }
    });
    HealthCheck {
        path,
        interval: c.positive(&h.interval, &at("interval"), defaults::HEALTH_INTERVAL),
        timeout: c.positive(&h.timeout, &at("timeout"), defaults::HEALTH_TIMEOUT),
        healthy_after: c.nonzero(
            h.healthy_after,
            &at("healthy_after"),
            defaults::HEALTH_HEALTHY_AFTER,
        ),
        unhealthy_after: c.nonzero(
            h.unhealthy_after,
            &at("unhealthy_after"),
            defaults::HEALTH_UNHEALTHY_AFTER,
        ),
        expect_status,
    }
}

/// `dns.servers`: resolver addresses, IP with an optional port (53 by default).
pub(super) fn dns_servers(
    c: &mut Checker<'_>,
    file: &crate::config::file::FileConfig,
) -> Vec<SocketAddr> {
    let mut dns_servers = Vec::new();
    for (i, text) in file
        .dns
        .as_ref()
        .and_then(|d| d.servers.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let t = text.trim();
        match t.parse::<SocketAddr>().or_else(|_| {
            t.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, 53))
        }) {
            Ok(a) => dns_servers.push(a),
            Err(_) => c.err(
                &[Seg::Key("dns"), Seg::Key("servers"), Seg::Index(i)],
                format!("`{t}` is not an IP address (with an optional :port)"),
            ),
        }
    }
    dns_servers
}
