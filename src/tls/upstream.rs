//! TLS to the servers of a pool (`upstreams.NAME.tls`, SPEC §6), in the form pingora's rustls
//! connector takes: built once per loaded state, applied to each attempt's peer.
//!
//! pingora verifies the server's certificate against the system trust store, or against
//! `ca` when set (it then builds a root store per new connection; connections are pooled, so
//! that is once per connection, not per request). A failed verification fails the handshake
//! (`TLSHandshakeFailure`), which the retry logic counts as an `error` outcome.

use crate::tls::certs::ClientIdentity;
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{CertKey, WrappedX509, parse_x509};
use std::sync::Arc;

/// TLS to the servers of a pool (`upstreams.NAME.tls`), as validated.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// `None`: the host part of each server's `addr`.
    pub sni: Option<String>,
    pub verify: bool,
    /// The CA certificates (DER) from `ca`; `None`: the system trust store.
    pub ca: Option<Arc<Vec<Vec<u8>>>>,
    /// The client certificate and key (mTLS).
    pub client: Option<Arc<ClientIdentity>>,
}

pub struct PeerTls {
    sni: Option<String>,
    verify: bool,
    ca: Option<Arc<[WrappedX509]>>,
    client: Option<Arc<CertKey>>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("sni", &self.sni)
            .field("verify", &self.verify)
            .field("ca", &self.ca.as_ref().map(|c| c.len()))
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl PeerTls {
    /// From a validated config: every certificate in it already parsed as X.509, and the client
    /// key as DER pingora recognises, so nothing here can fail.
    pub fn new(tls: &UpstreamTls) -> PeerTls {
        let ca = tls.ca.as_ref().map(|ders| {
            ders.iter()
                .map(|d| WrappedX509::new(d.clone(), parse_x509))
                .collect::<Vec<_>>()
                .into()
        });
        let client = tls.client.as_ref().map(|id| {
            let chain = id
                .cert
                .key
                .cert
                .iter()
                .map(|c| c.as_ref().to_vec())
                .collect();
            Arc::new(CertKey::new(chain, id.key_der.clone()))
        });
        PeerTls {
            sni: tls.sni.clone(),
            verify: tls.verify,
            ca,
            client,
        }
    }

    /// The SNI set for the pool (`tls.sni`), if any.
    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// `peer` (the server at `addr`, as configured) over TLS.
    pub fn secure(&self, mut peer: HttpPeer, addr: &str) -> HttpPeer {
        let sni = self
            .sni
            .clone()
            .unwrap_or_else(|| host_of(addr).to_string());
        peer.scheme = pingora::upstreams::peer::Scheme::HTTPS;
        peer.sni = sni;
        peer.options.verify_cert = self.verify;
        peer.options.verify_hostname = self.verify;
        peer.options.ca = self.ca.clone();
        peer.client_cert_key = self.client.clone();
        peer
    }
}

/// The host part of `host:port`, `[v6]:port` or a bare host.
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((h, _)) if !h.contains(':') => h,
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_of() {
        assert_eq!(super::host_of("api.internal:443"), "api.internal");
        assert_eq!(super::host_of("10.0.0.1:8443"), "10.0.0.1");
        assert_eq!(super::host_of("[::1]:8443"), "::1");
        assert_eq!(super::host_of("api.internal"), "api.internal");
    }
}
