//! Upstream transports and the client's identity, as validated (SPEC §13).

use ipnet::IpNet;
use std::net::IpAddr;

/// `real_ip`: which peers may tell the client address, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealIp {
    pub from: Vec<IpNet>,
    pub source: RealIpSource,
    pub recursive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealIpSource {
    XForwardedFor,
    XRealIp,
    /// The address read from a `proxy_protocol` listener's header.
    ProxyProtocol,
}

impl RealIp {
    /// Whether `peer` is one of the trusted addresses.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        self.from.iter().any(|net| net.contains(&peer))
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack socket reports) as its
/// IPv4 address, so `10.0.0.0/8` matches it.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The protocol spoken to a pool's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge, without TLS.
    H2c,
    /// HTTP/2 over the pool's `tls` (ALPN `h2`).
    H2,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http1 => "http1",
            Protocol::H2c => "h2c",
            Protocol::H2 => "h2",
        }
    }

    pub fn is_h2(self) -> bool {
        !matches!(self, Protocol::Http1)
    }
}

/// The PROXY protocol version a pool sends.
pub use crate::proxy_protocol::Version as ProxyVersion;

/// `buffering`: bytes held in memory per request (0: stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Buffering {
    pub request: u64,
    pub response: u64,
}
