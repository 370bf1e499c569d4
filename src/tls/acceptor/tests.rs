//! Real handshakes on loopback: a rustls client against the acceptor, certificates from rcgen.

use super::*;
use crate::tls::certs::{CertSet, load};
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed certificate for `name`, loaded; also its DER for the client's trust store.
fn cert(dir: &Path, name: &str) -> (crate::tls::certs::LoadedCert, CertificateDer<'static>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let c = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cp, kp) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cp, c.pem()).unwrap();
    std::fs::write(&kp, key.serialize_pem()).unwrap();
    let der = c.der().clone();
    (load(&cp, &kp, std::time::SystemTime::now()).unwrap(), der)
}

struct Outcome {
    alpn: Option<Vec<u8>>,
    version: String,
    peer: CertificateDer<'static>,
    server_saw: (Option<ALPN>, String, Option<String>),
}

/// One handshake: the server with `min`/`http2`, the client offering `client_versions`, h2
/// and http/1.1, for `sni`. The server writes a line through the pingora stream.
async fn handshake(
    store: Arc<CertSet>,
    trusted: &[CertificateDer<'static>],
    min: MinVersion,
    http2: bool,
    client_versions: &[&'static rustls::SupportedProtocolVersion],
    sni: &str,
) -> Result<Outcome, String> {
    let acceptor = TlsAcceptor::new(server_config(store, min, http2).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let stream: Stream = Box::new(pingora::protocols::l4::stream::Stream::from(tcp));
        let conn = acceptor.accept(stream, Duration::from_secs(5)).await.ok()?;
        let saw = (
            conn.selected_alpn_proto(),
            conn.get_ssl_digest().unwrap().version.to_string(),
            conn.server_name().map(str::to_string),
        );
        // What pingora is handed: a boxed stream that still knows its ALPN.
        let mut boxed: Stream = Box::new(conn);
        assert_eq!(boxed.selected_alpn_proto(), saw.0);
        boxed.write_all(b"hello\n").await.ok()?;
        boxed.flush().await.ok()?;
        Some(saw)
    });
    let mut roots = rustls::RootCertStore::empty();
    for c in trusted {
        roots.add(c.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(client_versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let result = connector.connect(name, tcp).await;
    let mut tls = match result {
        Ok(t) => t,
        Err(e) => {
            let _ = server.await;
            return Err(e.to_string());
        }
    };
    let mut line = [0u8; 6];
    tls.read_exact(&mut line).await.map_err(|e| e.to_string())?;
    assert_eq!(&line, b"hello\n");
    let (_, session) = tls.get_ref();
    let out = Outcome {
        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
        version: format!("{:?}", session.protocol_version().unwrap()),
        peer: session.peer_certificates().unwrap()[0].clone(),
        server_saw: server.await.unwrap().expect("server side of the handshake"),
    };
    Ok(out)
}

fn both() -> &'static [&'static rustls::SupportedProtocolVersion] {
    rustls::ALL_VERSIONS
}

#[tokio::test]
async fn sni_alpn_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (a, a_der) = cert(dir.path(), "a.example");
    let (b, b_der) = cert(dir.path(), "b.example");
    let store = Arc::new(CertSet::new(vec![a, b]).unwrap());
    let trusted = [a_der.clone(), b_der.clone()];

    // SNI picks the certificate; h2 by ALPN; TLS 1.3 preferred.
    let o = handshake(
        Arc::clone(&store),
        &trusted,
        MinVersion::Tls12,
        true,
        both(),
        "b.example",
    )
    .await
    .unwrap();
    assert_eq!(o.peer, b_der);
    assert_eq!(o.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(o.version, "TLSv1_3");
    assert_eq!(
        o.server_saw,
        (
            Some(ALPN::H2),
            "TLSv1.3".to_string(),
            Some("b.example".to_string())
        )
    );

    // Without HTTP/2 the listener offers only http/1.1; a TLS 1.2 client is served.
    let o = handshake(
        Arc::clone(&store),
        &trusted,
        MinVersion::Tls12,
        false,
        &[&rustls::version::TLS12],
        "a.example",
    )
    .await
    .unwrap();
    assert_eq!(o.peer, a_der);
    assert_eq!(o.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(o.version, "TLSv1_2");

    // min_version 1.3 refuses a client that speaks only TLS 1.2.
    let refused = handshake(
        Arc::clone(&store),
        &trusted,
        MinVersion::Tls13,
        true,
        &[&rustls::version::TLS12],
        "a.example",
    )
    .await;
    assert!(
        refused.is_err(),
        "a TLS 1.2 client got through a 1.3 listener"
    );
}

#[tokio::test]
async fn a_new_certificate_set_serves_new_handshakes() {
    let dir = tempfile::tempdir().unwrap();
    let (old, old_der) = cert(dir.path(), "a.example");
    let store = Arc::new(CertSet::new(vec![old]).unwrap());
    let renewed = tempfile::tempdir().unwrap();
    let (new, new_der) = cert(renewed.path(), "a.example");
    let trusted = [old_der.clone(), new_der.clone()];
    let before = handshake(
        Arc::clone(&store),
        &trusted,
        MinVersion::Tls12,
        true,
        both(),
        "a.example",
    )
    .await
    .unwrap();
    assert_eq!(before.peer, old_der);
    // A reload builds a new set and configuration for new handshakes.
    let after = handshake(
        Arc::new(CertSet::new(vec![new]).unwrap()),
        &trusted,
        MinVersion::Tls12,
        true,
        both(),
        "a.example",
    )
    .await
    .unwrap();
    assert_eq!(after.peer, new_der);
}
