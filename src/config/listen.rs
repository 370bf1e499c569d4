//! Client-facing listeners and TLS to upstreams (SPEC §6), as validated.

use crate::tls::acceptor::MinVersion;
use crate::tls::certs::CertSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One client-facing listener.
#[derive(Debug, Clone)]
pub struct Listener {
    pub addr: SocketAddr,
    /// `name`, which routes' `listeners` refer to.
    pub name: Option<String>,
    pub kind: ListenerKind,
    /// Every connection starts with a PROXY protocol header (SPEC §13).
    pub proxy_protocol: bool,
}

#[derive(Debug, Clone)]
pub enum ListenerKind {
    /// Plain HTTP/1.1 (and h2c with prior knowledge).
    Plain,
    Tls(TlsListener),
    /// Answers every request `308` to `https://host[:https_port]/path?query`.
    RedirectHttps {
        https_port: u16,
    },
}

impl ListenerKind {
    /// What cannot change in a reload: the kind of socket it is.
    pub fn name(&self) -> &'static str {
        match self {
            ListenerKind::Plain => "http",
            ListenerKind::Tls(_) => "https",
            ListenerKind::RedirectHttps { .. } => "redirect_https",
        }
    }
}

/// A TLS listener's settings, with its certificates read and checked.
#[derive(Debug, Clone)]
pub struct TlsListener {
    pub certs: Arc<CertSet>,
    pub min_version: MinVersion,
    pub http2: bool,
    /// `Strict-Transport-Security: max-age=…` on every response; `None`: not sent.
    pub hsts: Option<Duration>,
}

/// TLS to the servers of a pool (`upstreams.NAME.tls`): defined beside the connector that
/// uses it, so `tls` never needs `config`.
pub use crate::tls::upstream::UpstreamTls;
