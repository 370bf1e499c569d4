//! The client-facing listeners of a running state (SPEC §6): what the front door does with a
//! connection on each address, the TLS acceptor of each TLS listener, and the counters of
//! handshakes and requests by protocol.
//!
//! A reload builds new listener states with the state (so new certificates, `min_version`,
//! `http2` and `hsts` apply to new connections at once, and a reload that fails changes nothing);
//! the TLS session cache is carried over so that resumption survives a reload.

use crate::config::{Listener, ListenerKind, TlsListener};
use crate::tls::acceptor::{TlsAcceptor, server_config};
use crate::tls::certs::CertSet;
use crate::upstream::shard::Count;
use http::HeaderValue;
use rustls::server::StoresServerSessions;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// TLS sessions remembered per listener for resumption (rustls's default size).
const SESSION_CACHE: usize = 256;

/// What one listener does with its connections.
pub enum Serve {
    Plain,
    Tls(TlsServe),
    RedirectHttps { https_port: u16 },
}

pub struct ListenerState {
    pub addr: SocketAddr,
    pub serve: Serve,
    /// Connections start with a PROXY protocol header (SPEC §13).
    pub proxy_protocol: bool,
}

pub struct TlsServe {
    pub acceptor: TlsAcceptor,
    pub certs: Arc<CertSet>,
    /// The `Strict-Transport-Security` value, when `hsts` is on.
    pub hsts: Option<HeaderValue>,
    sessions: Arc<dyn StoresServerSessions>,
}

impl std::fmt::Debug for ListenerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.serve {
            Serve::Plain => "http",
            Serve::Tls(_) => "https",
            Serve::RedirectHttps { .. } => "redirect_https",
        };
        write!(f, "{kind} {}", self.addr)
    }
}

impl TlsServe {
    fn new(l: &TlsListener, previous: Option<&TlsServe>) -> Result<TlsServe, String> {
        let mut config = server_config(Arc::clone(&l.certs), l.min_version, l.http2)
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        let sessions = previous.map_or_else(
            || rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE) as Arc<_>,
            |p| Arc::clone(&p.sessions),
        );
        config.session_storage = Arc::clone(&sessions);
        let hsts = l.hsts.map(|d| {
            HeaderValue::from_str(&format!("max-age={}", d.as_secs()))
                .unwrap_or(HeaderValue::from_static("max-age=0"))
        });
        Ok(TlsServe {
            acceptor: TlsAcceptor::new(config),
            certs: Arc::clone(&l.certs),
            hsts,
            sessions,
        })
    }
}

/// The listener states for `listeners`, carrying TLS session caches from `previous`.
pub fn build(
    listeners: &[Listener],
    previous: &[ListenerState],
) -> Result<Vec<ListenerState>, String> {
    listeners
        .iter()
        .map(|l| {
            let serve = match &l.kind {
                ListenerKind::Plain => Serve::Plain,
                ListenerKind::RedirectHttps { https_port } => Serve::RedirectHttps {
                    https_port: *https_port,
                },
                ListenerKind::Tls(t) => {
                    let old = previous.iter().find_map(|p| match &p.serve {
                        Serve::Tls(s) if p.addr == l.addr => Some(s),
                        _ => None,
                    });
                    Serve::Tls(TlsServe::new(t, old)?)
                }
            };
            Ok(ListenerState {
                addr: l.addr,
                serve,
                proxy_protocol: l.proxy_protocol,
            })
        })
        .collect()
}

/// The listener a connection arrived on, by the address it was accepted at: the exact address,
/// else a listener on every address (`0.0.0.0`, `[::]`) with the same port.
pub fn find(listeners: &[ListenerState], local: SocketAddr) -> Option<&ListenerState> {
    position(listeners, local).map(|i| &listeners[i])
}

/// The index of [`find`]'s listener (listener states are in the config's order).
pub fn position(listeners: &[ListenerState], local: SocketAddr) -> Option<usize> {
    listeners.iter().position(|l| l.addr == local).or_else(|| {
        listeners
            .iter()
            .position(|l| l.addr.ip().is_unspecified() && l.addr.port() == local.port())
    })
}

/// Counters of the client side, kept across reloads.
#[derive(Debug, Default)]
pub struct EdgeStats {
    pub handshakes_ok: AtomicU64,
    pub handshakes_failed: AtomicU64,
    /// Per thread (every request counts one).
    pub requests_h1: Count,
    pub requests_h2: Count,
}

impl EdgeStats {
    pub fn handshake(&self, ok: bool) {
        if ok {
            self.handshakes_ok.fetch_add(1, Relaxed);
        } else {
            self.handshakes_failed.fetch_add(1, Relaxed);
        }
    }

    pub fn request(&self, h2: bool) {
        if h2 {
            self.requests_h2.add(1);
        } else {
            self.requests_h1.add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_finds_its_listener() {
        let l = |addr: &str| ListenerState {
            addr: addr.parse().unwrap(),
            serve: Serve::Plain,
            proxy_protocol: false,
        };
        let all = [l("127.0.0.1:8080"), l("0.0.0.0:8443"), l("[::]:9000")];
        let at = |a: &str| find(&all, a.parse().unwrap()).map(|l| l.addr.to_string());
        assert_eq!(at("127.0.0.1:8080").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(at("10.1.2.3:8443").as_deref(), Some("0.0.0.0:8443"));
        assert_eq!(at("[::1]:9000").as_deref(), Some("[::]:9000"));
        assert_eq!(at("127.0.0.2:8080"), None);
    }
}
