//! Server certificates for TLS listeners (SPEC §6): read from PEM files, checked, and chosen by
//! SNI.
//!
//! [`load`] reads one certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or
//! SEC1), and refuses what would fail at handshake time or surprise an operator later: no
//! certificate, no key, a key that does not match the certificate, an expired certificate.
//! [`CertSet`] picks a certificate for a client's SNI: an exact DNS name first, then a
//! wildcard name (`*.example.com` covers one label), else the first certificate, which is also
//! what a client without SNI gets; it is the rustls certificate resolver of its listener.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The largest certificate or key file read (a chain is a few KiB).
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// How early `check` warns about a certificate that will expire.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// One certificate, ready to serve.
#[derive(Debug)]
pub struct LoadedCert {
    /// The certificate file, as configured: it names the certificate in metrics and `/status`.
    pub cert_path: PathBuf,
    /// The leaf's DNS names (subject alternative names, else the common name), lower-case.
    pub names: Vec<String>,
    /// When the leaf expires.
    pub not_after: SystemTime,
    pub key: Arc<CertifiedKey>,
}

impl LoadedCert {
    /// Whether this certificate covers `host` (lower-case, without a trailing dot).
    fn covers(&self, host: &str, wildcard: bool) -> bool {
        self.names.iter().any(|n| match n.strip_prefix("*.") {
            Some(suffix) if wildcard => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            Some(_) => false,
            None => !wildcard && n == host,
        })
    }

    /// Whether it expires within `within` of `now`.
    pub fn expires_within(&self, now: SystemTime, within: Duration) -> bool {
        self.not_after <= now + within
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    // A FIFO or a device would block or never end: regular files only.
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "the {what} {} is not a regular file",
            path.display()
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!(
            "the {what} {} is larger than 1 MiB; is it the right file?",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Read and check a certificate chain and its key. `now` decides what is expired.
pub fn load(cert: &Path, key: &Path, now: SystemTime) -> Result<LoadedCert, String> {
    load_with_key(cert, key, now).map(|(c, _)| c)
}

/// A client certificate for TLS to upstream servers (mTLS), with its key in DER as pingora's
/// connector takes it.
pub struct ClientIdentity {
    pub cert: LoadedCert,
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ClientIdentity")
            .field("cert", &self.cert.cert_path)
            .finish()
    }
}

/// [`load`] for a client certificate.
pub fn load_client(cert: &Path, key: &Path, now: SystemTime) -> Result<ClientIdentity, String> {
    let (cert_loaded, key_der) = load_with_key(cert, key, now)?;
    let key_der = key_der.secret_der().to_vec();
    // pingora's connector guesses the key type from the DER again; it must succeed.
    PrivateKeyDer::try_from(key_der.as_slice())
        .map_err(|e| format!("{}: unusable private key: {e}", key.display()))?;
    Ok(ClientIdentity {
        cert: cert_loaded,
        key_der,
    })
}

/// The certificates (DER) of a CA file: one or more PEM certificates, each a valid X.509.
pub fn load_ca(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let pem = read_pem(path, "CA file")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    for (i, c) in certs.iter().enumerate() {
        X509Certificate::from_der(c.as_ref()).map_err(|e| {
            format!(
                "{}: certificate {} is not an X.509 certificate: {e}",
                path.display(),
                i + 1
            )
        })?;
    }
    Ok(certs.into_iter().map(|c| c.as_ref().to_vec()).collect())
}

fn load_with_key(
    cert: &Path,
    key: &Path,
    now: SystemTime,
) -> Result<(LoadedCert, PrivateKeyDer<'static>), String> {
    let pem = read_pem(cert, "certificate")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("{}: no certificate in the file", cert.display()));
    };
    let (names, not_after) = leaf_facts(leaf).map_err(|e| format!("{}: {e}", cert.display()))?;
    if not_after <= now {
        let when: chrono::DateTime<chrono::Utc> = not_after.into();
        return Err(format!(
            "{}: the certificate expired on {}",
            cert.display(),
            when.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    let key_pem = read_pem(key, "private key")?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        format!(
            "{}: no private key in the file (PEM PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key_der)
        .map_err(|e| format!("{}: unusable private key: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        format!(
            "{} does not match the certificate {}",
            key.display(),
            cert.display()
        )
    })?;
    Ok((
        LoadedCert {
            cert_path: cert.to_path_buf(),
            names,
            not_after,
            key: Arc::new(certified),
        },
        key_der,
    ))
}

/// The DNS names and the expiry of a leaf certificate.
fn leaf_facts(leaf: &CertificateDer<'_>) -> Result<(Vec<String>, SystemTime), String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, x509) = X509Certificate::from_der(leaf.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut names: Vec<String> = match x509.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(
            x509.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    let secs = x509.validity().not_after.timestamp();
    let not_after = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    Ok((names, not_after))
}

/// The certificates of one listener, in configuration order (the first is the default).
#[derive(Debug)]
pub struct CertSet {
    certs: Vec<LoadedCert>,
}

impl CertSet {
    /// `None` when `certs` is empty.
    pub fn new(certs: Vec<LoadedCert>) -> Option<CertSet> {
        (!certs.is_empty()).then_some(CertSet { certs })
    }

    pub fn certs(&self) -> &[LoadedCert] {
        &self.certs
    }

    /// The certificate for a client's SNI: exact name, then wildcard, else the first.
    pub fn pick(&self, sni: Option<&str>) -> &LoadedCert {
        let host = sni.map(|h| h.trim_end_matches('.').to_ascii_lowercase());
        host.as_deref()
            .and_then(|h| {
                self.certs
                    .iter()
                    .find(|c| c.covers(h, false))
                    .or_else(|| self.certs.iter().find(|c| c.covers(h, true)))
            })
            .unwrap_or(&self.certs[0])
    }
}

/// rustls asks the set for a certificate at every handshake. A reload builds a new set (and a
/// new rustls configuration); connections already open keep their session.
impl ResolvesServerCert for CertSet {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.pick(hello.server_name()).key))
    }
}

#[cfg(test)]
mod tests;
