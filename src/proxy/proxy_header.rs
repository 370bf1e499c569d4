//! The PROXY protocol header at the start of a connection on a `proxy_protocol` listener
//! (SPEC §13): read before anything else (before a TLS handshake), within
//! `limits.header_read_timeout`. The client it names becomes the connection's peer address,
//! which every later step reads (the `real_ip` logic, access lists, logs, `$remote_addr`).
//! A connection without a valid header is closed.

use super::conns::Slot;
use crate::config::{Limits, RealIp, RealIpSource};
use crate::proxy_protocol::{self, Parsed};
use pingora::protocols::Stream;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use tokio::io::AsyncReadExt;

/// Bytes asked for per read: a v1 header and the start of what follows in one read, mostly.
const READ: usize = 512;

/// `stream` with its PROXY header consumed and its peer address replaced by the header's
/// source. `None`: no valid header in time (or the connection was closed to make room); the
/// connection is then closed.
pub(super) async fn accept(
    stream: Stream,
    limits: &Limits,
    real_ip: Option<&RealIp>,
    slot: &Slot,
) -> Option<Stream> {
    let mut l4: Box<L4Stream> = stream.into_any().downcast().ok()?;
    let mut buf = Vec::new();
    let read = async {
        loop {
            match proxy_protocol::parse(&buf) {
                Parsed::Header { len, source } => return Some((len, source)),
                Parsed::Invalid => return None,
                Parsed::Incomplete => {}
            }
            let have = buf.len();
            buf.resize(have + READ, 0);
            let n = l4.read(&mut buf[have..]).await.ok()?;
            buf.truncate(have + n);
            if n == 0 {
                return None;
            }
        }
    };
    let (len, source) = tokio::select! {
        r = tokio::time::timeout(limits.header_read_timeout, read) => r.ok()??,
        _ = slot.closed() => return None,
    };
    l4.rewind(&buf[len..]);
    let peer = l4
        .get_socket_digest()
        .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
    // `real_ip.header: proxy_protocol` believes the header only from its trusted peers.
    let believed = match real_ip {
        Some(r) if r.source == RealIpSource::ProxyProtocol => {
            peer.is_some_and(|p| r.trusts(p.ip()))
        }
        _ => true,
    };
    if let Some(source) = source.filter(|_| believed) {
        set_peer(&mut l4, source);
    }
    Some(l4)
}

/// Replace the connection's digest with one whose peer is `client` (its local address kept).
fn set_peer(l4: &mut L4Stream, client: SocketAddr) {
    let local = l4.get_socket_digest().and_then(|d| d.local_addr().cloned());
    let digest = SocketDigest::from_raw_fd(l4.as_raw_fd());
    let _ = digest.peer_addr.set(Some(PingoraAddr::Inet(client)));
    if let Some(local) = local {
        let _ = digest.local_addr.set(Some(local));
    }
    l4.set_socket_digest(digest);
}

/// Connections of a `send_proxy_protocol` pool start with a header naming `client` and the
/// listener it came in on (SPEC §13), and are pooled only for requests of the same client
/// connection (its peer and local address name it while it is open).
pub(super) fn send_client_header(
    peer: &mut pingora::upstreams::peer::HttpPeer,
    version: crate::config::ProxyVersion,
    session: &pingora::proxy::Session,
    client: Option<std::net::SocketAddr>,
) {
    use std::hash::{Hash, Hasher};
    let local = super::request::local_addr(session);
    let header = match (client, local) {
        (Some(c), Some(l)) => crate::proxy_protocol::encode(version, c, l),
        _ => crate::proxy_protocol::local(version),
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    session.client_addr().hash(&mut h);
    local.hash(&mut h);
    // u64::MAX is the health checks' group.
    peer.group_key = h.finish().min(u64::MAX - 1);
    peer.options.custom_l4 = Some(std::sync::Arc::new(crate::proxy_protocol::SendHeader {
        header,
    }));
}
