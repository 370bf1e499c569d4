//! The PROXY protocol (HAProxy's `proxy-protocol.txt`, versions 1 and 2), as switchyard reads it
//! on `proxy_protocol` listeners and writes it for `send_proxy_protocol` pools (SPEC §13). The
//! parsing and building are the `ppp` crate's; this module decides what a header means here:
//! the connection's client address (`PROXY TCP4/TCP6`, v2 `PROXY` over IPv4/IPv6), or none
//! (`UNKNOWN`, v2 `LOCAL`, a Unix or unspecified family: the connection's own peer stays the
//! client). TLVs are skipped.

use ppp::PartialResult;
use std::net::{IpAddr, SocketAddr};

/// The largest header accepted: v1's limit is 107 bytes; a v2 header's address block and TLVs
/// beyond 4 KiB are refused (load balancers send well under 1 KiB).
pub const MAX_HEADER: usize = 16 + 4096;

/// What the start of a connection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Not enough bytes yet to tell.
    Incomplete,
    /// A header of `len` bytes; `source` is the client it names (`None`: keep the peer).
    Header {
        len: usize,
        source: Option<SocketAddr>,
    },
    /// Not a PROXY header: the connection is refused.
    Invalid,
}

/// Parse the header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::Incomplete;
    }
    // v2 needs its 12-byte signature; v1 starts with "PROXY ". Anything else is refused
    // at once rather than waited on.
    let v2_sig = b"\r\n\r\n\0\r\nQUIT\n";
    let v1_sig = b"PROXY ";
    let n = buf.len().min(12);
    let maybe_v2 = buf[..n] == v2_sig[..n];
    let maybe_v1 = buf[..buf.len().min(6)] == v1_sig[..buf.len().min(6)];
    if !maybe_v1 && !maybe_v2 {
        return Parsed::Invalid;
    }
    if maybe_v2 {
        return match ppp::v2::Header::try_from(buf) {
            Ok(h) => Parsed::Header {
                len: h.len(),
                source: v2_source(&h),
            },
            Err(e) if e.is_incomplete() => {
                if buf.len() >= 16
                    && 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]])) > MAX_HEADER
                {
                    Parsed::Invalid
                } else {
                    Parsed::Incomplete
                }
            }
            Err(_) => Parsed::Invalid,
        };
    }
    // A v1 header is one line: it ends at the first CRLF (after `UNKNOWN`, any bytes may come
    // before it), within 107 bytes. Until then it is incomplete.
    let Some(end) = memchr::memmem::find(buf, b"\r\n").map(|i| i + 2) else {
        return if buf.len() < V1_MAX {
            Parsed::Incomplete
        } else {
            Parsed::Invalid
        };
    };
    if end > V1_MAX {
        return Parsed::Invalid;
    }
    match ppp::v1::Header::try_from(&buf[..end]) {
        Ok(h) if h.header.len() == end => Parsed::Header {
            len: end,
            source: match h.addresses {
                ppp::v1::Addresses::Tcp4(a) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                ppp::v1::Addresses::Tcp6(a) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                ppp::v1::Addresses::Unknown => None,
            },
        },
        _ => Parsed::Invalid,
    }
}

/// v1's longest line, `\r\n` included.
const V1_MAX: usize = 107;

fn v2_source(h: &ppp::v2::Header<'_>) -> Option<SocketAddr> {
    if h.command == ppp::v2::Command::Local {
        return None;
    }
    match h.addresses {
        ppp::v2::Addresses::IPv4(a) => {
            Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
        }
        ppp::v2::Addresses::IPv6(a) => {
            Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
        }
        ppp::v2::Addresses::Unspecified | ppp::v2::Addresses::Unix(_) => None,
    }
}

/// The version a pool sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A header naming `source` (the client) and `destination` (the listener it came in on);
/// when the two are of different families, both are written as IPv6 (IPv4-mapped).
pub fn encode(version: Version, source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (source, destination) = same_family(source, destination);
    match version {
        Version::V1 => ppp::v1::Addresses::from((source, destination))
            .to_string()
            .into_bytes(),
        Version::V2 => build_v2(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Addresses::from((source, destination)),
        ),
    }
}

/// The header of a connection switchyard opens for itself (a health check): v1 `UNKNOWN`,
/// v2 `LOCAL`.
pub fn local(version: Version) -> Vec<u8> {
    match version {
        Version::V1 => b"PROXY UNKNOWN\r\n".to_vec(),
        Version::V2 => build_v2(
            ppp::v2::Version::Two | ppp::v2::Command::Local,
            ppp::v2::Addresses::Unspecified,
        ),
    }
}

fn build_v2(version_command: u8, addresses: ppp::v2::Addresses) -> Vec<u8> {
    ppp::v2::Builder::with_addresses(version_command, ppp::v2::Protocol::Stream, addresses)
        .build()
        // Writing into a Vec cannot fail; an empty header would be refused by the server,
        // which is what the error case deserves.
        .unwrap_or_default()
}

fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |s: SocketAddr| match s.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), s.port()),
        IpAddr::V6(_) => s,
    };
    if a.is_ipv4() == b.is_ipv4() {
        (a, b)
    } else {
        (v6(a), v6(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_headers_name_the_client_or_none() {
        let h = b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 443\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            parse(h),
            Parsed::Header {
                len: 44,
                source: Some(addr("203.0.113.7:51000"))
            }
        );
        let h = b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n";
        assert!(
            matches!(parse(h), Parsed::Header { source: Some(s), .. } if s == addr("[2001:db8::7]:51000"))
        );
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Parsed::Header {
                len: 15,
                source: None
            }
        );
        assert_eq!(parse(b"PROXY TCP4 203.0"), Parsed::Incomplete);
        // Every prefix of a header is incomplete, never refused; `UNKNOWN` may be followed by
        // anything up to the line end (found by the fuzz target).
        for full in [
            &b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n"[..],
            b"PROXY UNKNOWN 0\0\0PROXY \0\x16\r\n",
            b"PROXY UNKNOWN \n\0\x004IT\ncccc\r\n",
        ] {
            assert!(matches!(parse(full), Parsed::Header { .. }));
            for n in 0..full.len() {
                assert_eq!(parse(&full[..n]), Parsed::Incomplete, "{n}");
            }
        }
        assert_eq!(parse(b"PRO"), Parsed::Incomplete);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Parsed::Invalid);
        assert_eq!(parse(b"\x16\x03\x01"), Parsed::Invalid);
        assert_eq!(
            parse(b"PROXY TCP4 300.1.1.1 1.1.1.1 1 2\r\n"),
            Parsed::Invalid
        );
        assert_eq!(parse(&[b'P'; 200]), Parsed::Invalid);
    }

    #[test]
    fn v2_headers_round_trip_and_skip_tlvs() {
        let src = addr("198.51.100.4:40000");
        let dst = addr("192.0.2.1:8443");
        let mut h = encode(Version::V2, src, dst);
        assert_eq!(
            parse(&h),
            Parsed::Header {
                len: h.len(),
                source: Some(src)
            }
        );
        // Every prefix is incomplete, never invalid.
        for n in 0..h.len() {
            assert_eq!(parse(&h[..n]), Parsed::Incomplete, "{n}");
        }
        // With a TLV (AWS's VPC endpoint id) and the request after it.
        let with_tlv = ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            (src, dst),
        )
        .write_tlv(0xEA, b"\x01vpce-0123456789")
        .unwrap()
        .build()
        .unwrap();
        let len = with_tlv.len();
        let mut bytes = with_tlv;
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            parse(&bytes),
            Parsed::Header {
                len,
                source: Some(src)
            }
        );
        let local = local(Version::V2);
        assert_eq!(
            parse(&local),
            Parsed::Header {
                len: local.len(),
                source: None
            }
        );
        // A declared length beyond the limit is refused before it is read.
        h[14] = 0xff;
        h[15] = 0xff;
        assert_eq!(parse(&h[..16]), Parsed::Invalid);
    }

    #[test]
    fn encoding_v1_and_mixed_families() {
        let h = encode(Version::V1, addr("203.0.113.7:5"), addr("192.0.2.1:80"));
        assert_eq!(h, b"PROXY TCP4 203.0.113.7 192.0.2.1 5 80\r\n");
        let h = encode(Version::V1, addr("203.0.113.7:5"), addr("[::1]:80"));
        assert_eq!(h, b"PROXY TCP6 ::ffff:203.0.113.7 ::1 5 80\r\n");
        assert_eq!(local(Version::V1), b"PROXY UNKNOWN\r\n");
    }
}

/// The connector of a `send_proxy_protocol` pool: connects to the server (TCP or Unix socket)
/// and writes `header` before anything else. One per client connection's requests (pingora's
/// pool keys such connections by the client: see `group_key` where peers are built).
#[derive(Debug)]
pub struct SendHeader {
    pub header: Vec<u8>,
}

#[async_trait::async_trait]
impl pingora::connectors::L4Connect for SendHeader {
    async fn connect(
        &self,
        addr: &pingora::protocols::l4::socket::SocketAddr,
    ) -> pingora::Result<pingora::protocols::l4::stream::Stream> {
        use pingora::protocols::l4::socket::SocketAddr as Addr;
        use pingora::{Error, ErrorType};
        use tokio::io::AsyncWriteExt;
        let failed = |e: std::io::Error| {
            let kind = if e.kind() == std::io::ErrorKind::TimedOut {
                ErrorType::ConnectTimedout
            } else {
                ErrorType::ConnectRefused
            };
            Error::because(kind, format!("connecting to {addr}"), e)
        };
        match addr {
            Addr::Inet(a) => {
                let mut s = tokio::net::TcpStream::connect(a).await.map_err(failed)?;
                s.write_all(&self.header).await.map_err(failed)?;
                Ok(s.into())
            }
            Addr::Unix(u) => {
                let path = u.as_pathname().ok_or_else(|| {
                    Error::explain(ErrorType::ConnectRefused, "an unnamed Unix socket")
                })?;
                let mut s = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(failed)?;
                s.write_all(&self.header).await.map_err(failed)?;
                Ok(s.into())
            }
        }
    }
}
