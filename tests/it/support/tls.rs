//! TLS test support: certificates made in the test (rcgen), a blocking HTTPS/1.1 client, and a
//! TLS upstream server. Everything on 127.0.0.1, bounded in time.

use super::{Response, parse_response};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A certificate and key written as PEM files.
#[derive(Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

fn write(dir: &Path, stem: &str, cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> CertFiles {
    let (cp, kp) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    );
    std::fs::write(&cp, cert.pem()).unwrap();
    std::fs::write(&kp, key.serialize_pem()).unwrap();
    CertFiles {
        cert: cp,
        key: kp,
        der: cert.der().clone(),
    }
}

/// A self-signed certificate for `names`, in `dir` as `<stem>.pem` / `<stem>.key`.
pub fn self_signed(dir: &Path, stem: &str, names: &[&str]) -> CertFiles {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    write(dir, stem, &cert, &key)
}

/// A private certificate authority.
pub struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    pub files: CertFiles,
}

impl Ca {
    pub fn new(dir: &Path, stem: &str) -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{stem} test CA"));
        let cert = params.self_signed(&key).unwrap();
        let files = write(dir, stem, &cert, &key);
        Ca { cert, key, files }
    }

    /// A certificate for `names` (DNS names or IP addresses) signed by this CA.
    pub fn issue(&self, dir: &Path, stem: &str, names: &[&str]) -> CertFiles {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        write(dir, stem, &cert, &key)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting `trusted`, offering `versions` and `alpn`.
pub fn client_config(
    trusted: &[CertificateDer<'static>],
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add(c.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

static BOTH: [&rustls::SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];

pub fn both_versions() -> &'static [&'static rustls::SupportedProtocolVersion] {
    &BOTH
}

/// What one HTTPS exchange showed.
pub struct Exchange {
    pub response: Response,
    /// The certificate the server presented.
    pub peer: CertificateDer<'static>,
    pub version: Option<rustls::ProtocolVersion>,
}

/// Connect with `config` for `sni`, send `request` (raw HTTP/1.1) and read the response until
/// the server closes (send `Connection: close`). `Err` with the TLS error on a failed
/// handshake.
pub fn exchange(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: &str,
    request: &[u8],
) -> Result<Exchange, String> {
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    let peer = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
        .ok_or("no peer certificate")?;
    let version = tls.conn.protocol_version();
    let response = parse_response(&raw).ok_or_else(|| {
        format!(
            "not an HTTP response: {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        )
    })?;
    Ok(Exchange {
        response,
        peer,
        version,
    })
}

/// Send `bytes` over TLS and read for up to 3 s: the first status, whether the server closed,
/// and what it sent (the conformance cases over TLS).
pub fn send(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    sni: &str,
    bytes: &[u8],
) -> (Option<u16>, bool, Vec<u8>) {
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::clone(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let _ = tls.write_all(bytes);
    super::read_answer(&mut tls)
}

/// `GET path` with `Host: host` over TLS (SNI `host`), closing after the answer.
pub fn https_get(
    addr: SocketAddr,
    trusted: &[CertificateDer<'static>],
    host: &str,
    path: &str,
) -> Result<Exchange, String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    exchange(
        addr,
        client_config(trusted, both_versions(), &[b"http/1.1"]),
        host,
        req.as_bytes(),
    )
}

/// A TLS upstream: answers every request `200` with a body `sni=<sni> client_cert=<yes|no>`,
/// then closes. With `client_ca`, a client certificate signed by it is required.
pub struct TlsUpstream {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Handshakes that completed.
    pub served: Arc<Mutex<usize>>,
    /// The head of every request read, as received.
    pub heads: Arc<Mutex<Vec<String>>>,
}

impl TlsUpstream {
    pub fn start(cert: &CertFiles, client_ca: Option<&CertificateDer<'static>>) -> TlsUpstream {
        let chain = vec![cert.der.clone()];
        let key = PrivateKeyDer::from_pem_file(&cert.key).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.clone()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = Arc::new(builder.with_single_cert(chain, key).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (stop2, served2, heads2) = (Arc::clone(&stop), Arc::clone(&served), Arc::clone(&heads));
        thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((tcp, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let config = Arc::clone(&config);
                let served = Arc::clone(&served2);
                let heads = Arc::clone(&heads2);
                thread::spawn(move || serve_one(tcp, config, served, heads));
            }
        });
        TlsUpstream {
            addr,
            stop,
            served,
            heads,
        }
    }
}

fn serve_one(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    served: Arc<Mutex<usize>>,
    heads: Arc<Mutex<Vec<String>>>,
) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    *served.lock().unwrap() += 1;
    heads
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&head).into_owned());
    let body = format!(
        "sni={} client_cert={}",
        tls.conn.server_name().unwrap_or("-"),
        if tls.conn.peer_certificates().is_some() {
            "yes"
        } else {
            "no"
        }
    );
    let _ = write!(
        tls,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

use rustls::pki_types::pem::PemObject;
