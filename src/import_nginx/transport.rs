//! The client's address and the upstream transports (SPEC §13): `set_real_ip_from`,
//! `real_ip_header`, `real_ip_recursive`; `proxy_buffering`, `proxy_request_buffering`,
//! `proxy_buffers`, `proxy_buffer_size`; `grpc_pass`. `unix:` servers and `listen …
//! proxy_protocol` are read where servers and listeners are.
//!
//! nginx buffers answers and request bodies by default, in memory and then in temporary
//! files (up to 1 GiB); switchyard holds them in memory up to a bound. The bound written is
//! `proxy_buffers` + `proxy_buffer_size` when the config sets them, else
//! [`DEFAULT_BOUND`]. `buffering` is per pool in switchyard: a pool is left streaming when any
//! location proxying to it turns buffering off (an event stream must not be held back).

use super::*;
use crate::config::units::parse_size;

/// What is held per request when the config names no buffer sizes.
pub(super) const DEFAULT_BOUND: &str = "1MiB";

/// nginx's `proxy_buffers 8 4k` / `proxy_buffer_size 4k` (one memory page each).
const NGINX_BUFFERS: (u64, u64) = (8, 4096);
const NGINX_BUFFER_SIZE: u64 = 4096;

/// The buffering directives in effect at one level (http, server, location).
#[derive(Default, Clone, Debug)]
pub(super) struct Buffering {
    pub response: Option<bool>,
    pub request: Option<bool>,
    pub buffers: Option<(u64, u64)>,
    pub buffer_size: Option<u64>,
}

impl Buffering {
    /// `self` over `outer` (a location's settings over its server's, a server's over http's).
    fn over(&self, outer: &Buffering) -> Buffering {
        Buffering {
            response: self.response.or(outer.response),
            request: self.request.or(outer.request),
            buffers: self.buffers.or(outer.buffers),
            buffer_size: self.buffer_size.or(outer.buffer_size),
        }
    }
}

/// A directive of this module at any level; `false` when it is not one. `route`: the
/// location's (or server's) route; `None` at http level.
pub(super) fn transport_directive(out: &mut Out, d: &Directive, route: Option<&mut Route>) -> bool {
    let a0 = d.args.first().cloned().unwrap_or_default();
    let at_http = route.is_none();
    let on_off = |out: &mut Out| match a0.as_str() {
        "on" => Some(true),
        "off" => Some(false),
        _ => {
            out.skip(d, "`on` or `off`");
            None
        }
    };
    match d.name.as_str() {
        "set_real_ip_from" => {
            let cidr = a0.parse::<ipnet::IpNet>().is_ok() || a0.parse::<std::net::IpAddr>().is_ok();
            if a0 == "unix:" {
                out.note(
                    d,
                    "connections over Unix sockets are not accepted by switchyard",
                    false,
                );
            } else if cidr {
                out.real_ip.from.push(a0);
            } else {
                out.skip(d, "only addresses and CIDR blocks are translated");
            }
            real_ip_level(out, d, at_http);
        }
        "real_ip_header" => {
            match a0.to_ascii_lowercase().as_str() {
                "x-forwarded-for" | "x-real-ip" | "proxy_protocol" => {
                    out.real_ip.header = Some(a0.clone())
                }
                _ => out.skip(
                    d,
                    "only X-Forwarded-For, X-Real-IP and proxy_protocol are translated",
                ),
            }
            real_ip_level(out, d, at_http);
        }
        "real_ip_recursive" => {
            out.real_ip.recursive = on_off(out);
            real_ip_level(out, d, at_http);
        }
        "proxy_buffering" | "proxy_request_buffering" => {
            let v = on_off(out);
            let b = level(out, route);
            if d.name == "proxy_buffering" {
                b.response = v;
            } else {
                b.request = v;
            }
        }
        "proxy_buffers" => {
            let n = a0.parse::<u64>().ok().filter(|n| *n > 0);
            let size = d.args.get(1).and_then(|s| parse_size(s).ok());
            match n.zip(size) {
                Some(ns) => level(out, route).buffers = Some(ns),
                None => out.skip(d, "`proxy_buffers NUMBER SIZE` is translated"),
            }
        }
        "proxy_buffer_size" => match parse_size(&a0) {
            Ok(n) => level(out, route).buffer_size = Some(n),
            Err(e) => out.skip(d, e),
        },
        _ => return false,
    }
    true
}

/// The buffering settings of the level a directive is at.
fn level<'a>(out: &'a mut Out, route: Option<&'a mut Route>) -> &'a mut Buffering {
    match route {
        Some(r) => &mut r.buffering,
        None => &mut out.http_buffering,
    }
}

fn real_ip_level(out: &mut Out, d: &Directive, at_http: bool) {
    if !at_http {
        out.note(
            d,
            "`real_ip` applies to every request in switchyard, not only this block's",
            false,
        );
    }
}

/// `grpc_pass TARGET` in a location: `proxy_pass` to the same servers, over HTTP/2 without
/// TLS (`grpc://`, a bare address, an upstream name) or with it (`grpcs://`).
pub(super) fn grpc_pass(out: &mut Out, d: &Directive, r: &mut Route) {
    let a0 = d.args.first().cloned().unwrap_or_default();
    let (rest, tls) = match (a0.strip_prefix("grpc://"), a0.strip_prefix("grpcs://")) {
        (Some(rest), _) => (rest.to_string(), false),
        (_, Some(rest)) => (rest.to_string(), true),
        _ => (a0.clone(), false),
    };
    let mut as_proxy = d.clone();
    as_proxy.name = "proxy_pass".into();
    as_proxy.args = vec![format!("http://{rest}")];
    location::location_directive(out, &as_proxy, r);
    let Some(pool) = r.upstream.clone().filter(|u| !u.starts_with('$')) else {
        return;
    };
    let p = out.pool(&pool);
    p.protocol = Some(if tls { "h2" } else { "h2c" });
    if tls {
        p.tls_unverified = true;
        out.note(
            d,
            "grpcs: `tls` with `verify: false`, as nginx does not verify (grpc_ssl_verify off); turn `verify` on with a `ca`",
            false,
        );
    }
    // nginx's `$proxy_host` is not what a gRPC server is sent: it keeps the client's host.
    r.proxy_host = None;
}

/// Each pool's `buffering` from the locations that proxy to it, and `real_ip` against the
/// listeners (after every server is read).
pub(super) fn settle(out: &mut Out) {
    let from_proxy_header = out
        .real_ip
        .header
        .as_deref()
        .is_some_and(|h| h.eq_ignore_ascii_case("proxy_protocol"));
    if from_proxy_header
        && !out.listeners.iter().any(|(_, l)| l.proxy_protocol)
        && !out.real_ip.from.is_empty()
    {
        // nginx has no PROXY address to take without a `listen … proxy_protocol`.
        out.real_ip.from.clear();
        out.notes.push(Note {
            at: String::new(),
            directive: "real_ip_header proxy_protocol".into(),
            why: "no `listen … proxy_protocol`: the client address is the peer's, as in nginx"
                .into(),
            skipped: false,
        });
    }
    let http = out.http_buffering.clone();
    let mut settled: Vec<(String, Buffering)> = Vec::new();
    for r in &out.routes {
        let Some(pool) = r.upstream.as_ref().filter(|u| !u.starts_with('$')) else {
            continue;
        };
        let b = r.buffering.over(&http);
        match settled.iter_mut().find(|(n, _)| n == pool) {
            Some((_, s)) => {
                // Off anywhere is off for the pool; the largest buffers win.
                s.response = Some(s.response != Some(false) && b.response != Some(false));
                s.request = Some(s.request != Some(false) && b.request != Some(false));
                s.buffers = s.buffers.max(b.buffers);
                s.buffer_size = s.buffer_size.max(b.buffer_size);
            }
            None => settled.push((pool.clone(), b)),
        }
    }
    for (pool, b) in settled {
        let p = out.pool(&pool);
        if p.protocol.is_some() {
            // gRPC answers stream (switchyard never holds them).
            continue;
        }
        let sized = b.buffers.is_some() || b.buffer_size.is_some();
        let bound = if sized {
            let (n, size) = b.buffers.unwrap_or(NGINX_BUFFERS);
            let total = n.saturating_mul(size) + b.buffer_size.unwrap_or(NGINX_BUFFER_SIZE);
            format!("{}KiB", total.div_ceil(1024))
        } else {
            DEFAULT_BOUND.to_string()
        };
        if b.response != Some(false) {
            p.buffer_response = Some(bound);
        }
        if b.request != Some(false) {
            p.buffer_request = Some(DEFAULT_BOUND.to_string());
        }
    }
}

/// `real_ip` as collected from the whole config.
#[derive(Default)]
pub(super) struct RealIp {
    pub from: Vec<String>,
    pub header: Option<String>,
    pub recursive: Option<bool>,
}
