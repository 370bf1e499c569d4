//! Where a server is reached (SPEC §13): a TCP address, or a Unix domain socket
//! (`addr: "unix:/run/app/puma.sock"`, nginx's `server unix:…`).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::unix::net::SocketAddr as UnixAddr;
use std::path::Path;
use std::sync::Arc;

/// The prefix that marks a Unix socket in `addr`.
pub const UNIX_PREFIX: &str = "unix:";

/// A server's address as the connector uses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Inet(SocketAddr),
    Unix(UnixPath),
}

/// A Unix socket's path, checked at load to fit a socket address (at most 107 bytes on
/// Linux), so building a connection to it cannot fail later.
#[derive(Clone)]
pub struct UnixPath {
    path: Arc<Path>,
    addr: UnixAddr,
}

impl UnixPath {
    /// `path` as a socket address: absolute, and short enough.
    pub fn new(path: &str) -> Result<UnixPath, String> {
        let p = Path::new(path);
        if !p.is_absolute() {
            return Err(format!("`unix:{path}`: the socket path must be absolute"));
        }
        let addr = UnixAddr::from_pathname(p).map_err(|_| {
            format!(
                "`unix:{path}`: a socket path has at most 107 bytes (this one has {})",
                path.len()
            )
        })?;
        Ok(UnixPath {
            path: Arc::from(p),
            addr,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn addr(&self) -> &UnixAddr {
        &self.addr
    }
}

impl PartialEq for UnixPath {
    fn eq(&self, other: &UnixPath) -> bool {
        self.path == other.path
    }
}

impl Eq for UnixPath {}

impl std::hash::Hash for UnixPath {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.path.hash(state);
    }
}

impl fmt::Debug for UnixPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.path)
    }
}

impl Endpoint {
    /// `unix:/path` as a Unix socket; `None` for anything else (a `host:port`).
    pub fn parse_unix(text: &str) -> Option<Result<Endpoint, String>> {
        let path = text.trim().strip_prefix(UNIX_PREFIX)?;
        Some(UnixPath::new(path).map(Endpoint::Unix))
    }

    /// The TCP address, if this is one.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Inet(a) => Some(*a),
            Endpoint::Unix(_) => None,
        }
    }

    /// A stand-in TCP address for code keyed by one (the consistent-hash ring places servers
    /// by address): a Unix socket maps to an address in the IPv6 discard prefix `100::/64`
    /// (RFC 6666) derived from its path with FNV-1a, stable across runs and reloads.
    pub fn ring_addr(&self) -> SocketAddr {
        match self {
            Endpoint::Inet(a) => *a,
            Endpoint::Unix(u) => {
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in u.path.as_os_str().as_encoded_bytes() {
                    h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
                }
                let ip = Ipv6Addr::from((0x0100u128 << 112) | u128::from(h));
                SocketAddr::new(IpAddr::V6(ip), 0)
            }
        }
    }

    /// A pingora peer for this address (timeouts and protocol are the caller's).
    pub fn peer(&self, tls: bool, sni: String) -> pingora::upstreams::peer::HttpPeer {
        let mut peer =
            pingora::upstreams::peer::HttpPeer::new(SocketAddr::from(([0, 0, 0, 0], 0)), tls, sni);
        peer._address = self.pingora();
        peer
    }

    /// pingora's form of the address, for a peer.
    pub fn pingora(&self) -> pingora::protocols::l4::socket::SocketAddr {
        match self {
            Endpoint::Inet(a) => pingora::protocols::l4::socket::SocketAddr::Inet(*a),
            Endpoint::Unix(u) => pingora::protocols::l4::socket::SocketAddr::Unix(u.addr.clone()),
        }
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Endpoint {
        Endpoint::Inet(a)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Inet(a) => a.fmt(f),
            Endpoint::Unix(u) => write!(f, "{UNIX_PREFIX}{}", u.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_addresses_are_checked_and_shown_as_written() {
        let e = Endpoint::parse_unix("unix:/run/app.sock").unwrap().unwrap();
        assert_eq!(e.to_string(), "unix:/run/app.sock");
        assert!(e.inet().is_none());
        assert!(Endpoint::parse_unix("127.0.0.1:80").is_none());
        let relative = Endpoint::parse_unix("unix:app.sock").unwrap().unwrap_err();
        assert!(relative.contains("absolute"), "{relative}");
        let long = format!("unix:/{}", "a".repeat(200));
        let err = Endpoint::parse_unix(&long).unwrap().unwrap_err();
        assert!(err.contains("107 bytes"), "{err}");
    }

    #[test]
    fn unix_sockets_get_distinct_stable_ring_addresses() {
        let a = Endpoint::parse_unix("unix:/a.sock").unwrap().unwrap();
        let b = Endpoint::parse_unix("unix:/b.sock").unwrap().unwrap();
        assert_ne!(a.ring_addr(), b.ring_addr());
        assert_eq!(a.ring_addr(), a.clone().ring_addr());
        assert!(a.ring_addr().to_string().starts_with("[100::"));
    }
}
