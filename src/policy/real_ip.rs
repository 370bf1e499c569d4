//! The client's address behind trusted proxies (SPEC §13, nginx's realip module): whose word
//! is taken, and the address it gives. Pure: the request path calls [`client_of`] once per
//! request and uses its answer everywhere (access lists, rate limits, hashing, forwarded
//! headers, variables, the access log).

use crate::config::{RealIp, RealIpSource, canonical};
use http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// The client of a request, as determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub addr: SocketAddr,
    /// The connection's peer is trusted (`real_ip.from`): its `X-Forwarded-For` chain is kept
    /// and extended. From any other peer the chain is started afresh.
    pub trusted: bool,
}

/// The client of a request from `peer` carrying `headers`, under `real_ip`.
pub fn client_of(real_ip: &RealIp, peer: SocketAddr, headers: &HeaderMap) -> Client {
    if !real_ip.trusts(peer.ip()) {
        return Client {
            addr: peer,
            trusted: false,
        };
    }
    let ip = match real_ip.source {
        // The front door already took the PROXY header's source as the peer.
        RealIpSource::ProxyProtocol => None,
        RealIpSource::XRealIp => headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_ip),
        RealIpSource::XForwardedFor => forwarded_for(real_ip, headers),
    };
    Client {
        // nginx keeps no port for an address taken from a header; the connection's is kept
        // here so `$remote_port` stays a number.
        addr: ip.map_or(peer, |ip| SocketAddr::new(ip, peer.port())),
        trusted: true,
    }
}

/// nginx's `ngx_http_get_forwarded_addr`: from the right of every `X-Forwarded-For` field
/// (in order), the last address; with `recursive`, the rightmost address that is not
/// trusted (the leftmost when all are). An entry that is not an address ends the walk with
/// the address found so far.
fn forwarded_for(real_ip: &RealIp, headers: &HeaderMap) -> Option<IpAddr> {
    let mut entries: Vec<&str> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(s) = v.to_str() else { return None };
        entries.extend(s.split(',').map(str::trim).filter(|e| !e.is_empty()));
    }
    let mut found = None;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_ip(entry) else { break };
        found = Some(ip);
        if !real_ip.recursive || !real_ip.trusts(ip) {
            break;
        }
    }
    found
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`, or with a
/// port (`192.0.2.1:443`, `[2001:db8::1]:443`).
fn parse_ip(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    t.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|ip| ip.parse().ok())
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real_ip(source: RealIpSource, recursive: bool) -> RealIp {
        RealIp {
            from: vec![
                "10.0.0.0/8".parse().unwrap(),
                "192.0.2.0/24".parse().unwrap(),
            ],
            source,
            recursive,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(c: Client) -> String {
        c.addr.ip().to_string()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_send() {
        let r = real_ip(RealIpSource::XForwardedFor, true);
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        let c = client_of(&r, "203.0.113.5:4000".parse().unwrap(), &h);
        assert_eq!(ip(c), "203.0.113.5");
        assert!(!c.trusted);
    }

    #[test]
    fn forwarded_for_takes_the_last_address_or_the_first_untrusted_one() {
        let peer: SocketAddr = "10.1.1.1:4000".parse().unwrap();
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-for", "192.0.2.9"),
        ]);
        let plain = client_of(&real_ip(RealIpSource::XForwardedFor, false), peer, &h);
        assert_eq!(ip(plain), "192.0.2.9");
        assert!(plain.trusted);
        assert_eq!(plain.addr.port(), 4000);
        let recursive = client_of(&real_ip(RealIpSource::XForwardedFor, true), peer, &h);
        assert_eq!(ip(recursive), "198.51.100.7");
        // Every address trusted: the leftmost.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 192.0.2.1")]);
        let all = client_of(&real_ip(RealIpSource::XForwardedFor, true), peer, &h);
        assert_eq!(ip(all), "10.9.9.9");
        // Garbage ends the walk: the address found before it.
        let h = headers(&[("x-forwarded-for", "nonsense, 10.2.2.2")]);
        let bad = client_of(&real_ip(RealIpSource::XForwardedFor, true), peer, &h);
        assert_eq!(ip(bad), "10.2.2.2");
        // No header: the peer.
        let none = client_of(
            &real_ip(RealIpSource::XForwardedFor, true),
            peer,
            &headers(&[]),
        );
        assert_eq!(ip(none), "10.1.1.1");
    }

    #[test]
    fn real_ip_header_mapped_addresses_and_ports() {
        let r = real_ip(RealIpSource::XRealIp, false);
        let peer: SocketAddr = "[::ffff:10.0.0.2]:80".parse().unwrap();
        let h = headers(&[("x-real-ip", "[2001:db8::7]:443")]);
        assert_eq!(ip(client_of(&r, peer, &h)), "2001:db8::7");
        let h = headers(&[("x-real-ip", "203.0.113.1:443")]);
        assert_eq!(ip(client_of(&r, peer, &h)), "203.0.113.1");
        let h = headers(&[("x-real-ip", "not an address")]);
        assert_eq!(ip(client_of(&r, peer, &h)), "::ffff:10.0.0.2");
    }
}
