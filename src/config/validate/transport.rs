//! `real_ip`, listeners' `proxy_protocol` and a pool's `protocol`, `send_proxy_protocol` and
//! `buffering` (SPEC §13).

use super::Checker;
use crate::config::file::FileUpstream;
use crate::config::file_transport::{FileRealIp, ProtocolName, ProxyVersionName};
use crate::config::yaml::Seg;
use crate::config::{Buffering, Listener, Protocol, ProxyVersion, RealIp, RealIpSource};

/// The most a pool may hold per request in memory with `buffering` (1 GiB): beyond that a
/// slow client is cheaper than the proxy's memory.
const MAX_BUFFERING: u64 = 1 << 30;

pub(super) fn real_ip(
    c: &mut Checker<'_>,
    r: &FileRealIp,
    listeners: &[Listener],
) -> Option<RealIp> {
    let base = [Seg::Key("real_ip")];
    let at = |k: &'static str| [&base[..], &[Seg::Key(k)]].concat();
    let from = super::route::cidrs(c, &r.from, &at("from"));
    if r.from.as_ref().is_none_or(Vec::is_empty) {
        c.err(
            &at("from"),
            "`from` is required: the addresses or CIDR blocks trusted to tell the client address",
        );
        return None;
    }
    let source = match r.header.as_deref().map(str::trim) {
        None => RealIpSource::XForwardedFor,
        Some(h) if h.eq_ignore_ascii_case("x-forwarded-for") => RealIpSource::XForwardedFor,
        Some(h) if h.eq_ignore_ascii_case("x-real-ip") => RealIpSource::XRealIp,
        Some("proxy_protocol") => {
            if !listeners.iter().any(|l| l.proxy_protocol) {
                c.err(
                    &at("header"),
                    "`proxy_protocol` needs a listener with `proxy_protocol: true`",
                );
            }
            RealIpSource::ProxyProtocol
        }
        Some(other) => {
            c.err(
                &at("header"),
                format!("`{other}`: one of X-Forwarded-For, X-Real-IP or proxy_protocol"),
            );
            RealIpSource::XForwardedFor
        }
    };
    let recursive = r.recursive.unwrap_or(false);
    if recursive && source != RealIpSource::XForwardedFor {
        c.err(
            &at("recursive"),
            "`recursive` only applies to `header: X-Forwarded-For`",
        );
    }
    Some(RealIp {
        from,
        source,
        recursive,
    })
}

/// A pool's transport settings: protocol, PROXY protocol and buffering.
pub(super) fn pool_transport(
    c: &mut Checker<'_>,
    up: &FileUpstream,
    base: &[Seg<'_>],
) -> (Protocol, Option<ProxyVersion>, Buffering) {
    let at = |k: &'static str| [base, &[Seg::Key(k)]].concat();
    let protocol = match up.protocol {
        None | Some(ProtocolName::Http1) => Protocol::Http1,
        Some(ProtocolName::H2c) => {
            if up.tls.is_some() {
                c.err(
                    &at("protocol"),
                    "`h2c` is HTTP/2 without TLS: with `tls`, write `protocol: h2`",
                );
            }
            Protocol::H2c
        }
        Some(ProtocolName::H2) => {
            if up.tls.is_none() {
                c.err(
                    &at("protocol"),
                    "`h2` is HTTP/2 over TLS and needs `tls` (without TLS, write `protocol: h2c`)",
                );
            }
            Protocol::H2
        }
    };
    let send = up.send_proxy_protocol.map(|v| match v {
        ProxyVersionName::V1 => ProxyVersion::V1,
        ProxyVersionName::V2 => ProxyVersion::V2,
    });
    let b = up.buffering.as_ref();
    let bp = |k: &'static str| [base, &[Seg::Key("buffering"), Seg::Key(k)]].concat();
    let size = |c: &mut Checker<'_>, v: Option<&String>, key: &'static str| {
        let n = c.size(&v.cloned(), &bp(key), 0);
        if n > MAX_BUFFERING {
            c.err(&bp(key), "at most 1GiB per request");
            return 0;
        }
        n
    };
    let buffering = Buffering {
        request: size(c, b.and_then(|b| b.request.as_ref()), "request"),
        response: size(c, b.and_then(|b| b.response.as_ref()), "response"),
    };
    (protocol, send, buffering)
}
