//! `listen` entries (plain, TLS, redirect) and `upstreams.NAME.tls` (SPEC §6). Certificates and
//! keys are read and checked here, so `check` and a reload refuse what a handshake would.

use super::Checker;
use crate::config::defaults;
use crate::config::file::{FileListen, FileListenTls, FileListener, FileUpstreamTls};
use crate::config::units::parse_listen;
use crate::config::yaml::Seg;
use crate::config::{Listener, ListenerKind, TlsListener, UpstreamTls};
use crate::tls::acceptor::MinVersion;
use crate::tls::certs::{self, CertSet, EXPIRY_WARNING};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// A file named in the config: relative paths are relative to the config file's directory.
pub(super) fn resolve_file(config: &Path, file: &str) -> PathBuf {
    match config.parent() {
        Some(dir) if Path::new(file).is_relative() => dir.join(file),
        _ => PathBuf::from(file),
    }
}

pub(super) fn listeners(c: &mut Checker<'_>, entries: &[FileListen]) -> Vec<Listener> {
    let mut out: Vec<Listener> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let base = [Seg::Key("listen"), Seg::Index(i)];
        let (text, full) = match entry {
            FileListen::Addr(text) => (Some(text.as_str()), None),
            FileListen::Full(l) => (l.addr.as_deref(), Some(l)),
        };
        let addr_path: Vec<Seg<'_>> = match full {
            Some(_) => [&base[..], &[Seg::Key("addr")]].concat(),
            None => base.to_vec(),
        };
        let Some(text) = text else {
            c.err(&base, "`addr` is required: the host:port to listen on");
            continue;
        };
        let addr = match parse_listen(text, c.resolve) {
            Ok(a) if out.iter().any(|l| l.addr == a) => {
                c.err(&addr_path, format!("`{text}` is listed twice"));
                continue;
            }
            Ok(a) => a,
            Err(e) => {
                c.err(&addr_path, e);
                continue;
            }
        };
        let kind = match full {
            None => ListenerKind::Plain,
            Some(l) => match kind(c, l, &base) {
                Some(k) => k,
                None => continue,
            },
        };
        let name = full.and_then(|l| l.name.as_deref()).map(str::trim);
        let name = match name {
            Some(n) if !valid_name(n) => {
                c.err(
                    &[&base[..], &[Seg::Key("name")]].concat(),
                    format!("`{n}`: a listener name is 1 to 64 letters, digits, `-` or `_`"),
                );
                None
            }
            Some(n) if out.iter().any(|l| l.name.as_deref() == Some(n)) => {
                c.err(
                    &[&base[..], &[Seg::Key("name")]].concat(),
                    format!("the listener name `{n}` is taken by an earlier listener"),
                );
                None
            }
            n => n.map(str::to_string),
        };
        let proxy_protocol = full.and_then(|l| l.proxy_protocol).unwrap_or(false);
        out.push(Listener {
            addr,
            name,
            kind,
            proxy_protocol,
        });
    }
    out
}

/// A listener name: what `listeners` on a route can refer to.
fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn kind(c: &mut Checker<'_>, l: &FileListener, base: &[Seg<'_>]) -> Option<ListenerKind> {
    let at = |key: &'static str| [base, &[Seg::Key(key)]].concat();
    let errors_before = c.issues.len();
    let redirect = l.redirect_https.unwrap_or(false);
    if redirect && l.tls.is_some() {
        c.err(
            &at("redirect_https"),
            "a listener either serves TLS or redirects to HTTPS, not both",
        );
    }
    if l.https_port.is_some() && !redirect {
        c.err(
            &at("https_port"),
            "`https_port` goes with `redirect_https: true`",
        );
    }
    if l.tls.is_none() {
        if l.http2.is_some() {
            c.err(
                &at("http2"),
                "`http2` applies to TLS listeners (a plain listener accepts h2c with prior knowledge)",
            );
        }
        if l.hsts.is_some() {
            c.err(
                &at("hsts"),
                "`hsts` applies to TLS listeners (browsers ignore it over plain HTTP)",
            );
        }
    }
    if redirect {
        let https_port = match l.https_port {
            Some(0) => {
                c.err(&at("https_port"), "must be a port from 1 to 65535");
                443
            }
            Some(p) => p,
            None => 443,
        };
        return (c.issues.len() == errors_before)
            .then_some(ListenerKind::RedirectHttps { https_port });
    }
    let Some(tls) = &l.tls else {
        return (c.issues.len() == errors_before).then_some(ListenerKind::Plain);
    };
    let hsts = c.duration(&l.hsts, &at("hsts"), defaults::LISTENER_HSTS);
    let settings = tls_listener(c, tls, &at("tls"));
    if c.issues.len() > errors_before {
        return None;
    }
    let (certs, min_version) = settings?;
    Some(ListenerKind::Tls(TlsListener {
        certs: Arc::new(certs),
        min_version,
        http2: l.http2.unwrap_or(defaults::LISTENER_HTTP2),
        hsts: (!hsts.is_zero()).then_some(hsts),
    }))
}

fn tls_listener(
    c: &mut Checker<'_>,
    tls: &FileListenTls,
    base: &[Seg<'_>],
) -> Option<(CertSet, MinVersion)> {
    let min_version = match tls.min_version.as_deref().map(str::trim) {
        None | Some("1.2") => MinVersion::Tls12,
        Some("1.3") => MinVersion::Tls13,
        Some(other) => {
            c.err(
                &[base, &[Seg::Key("min_version")]].concat(),
                format!("`{other}` is not offered: \"1.2\" or \"1.3\" (older versions are never offered)"),
            );
            MinVersion::Tls12
        }
    };
    let list_path = [base, &[Seg::Key("certificates")]].concat();
    let Some(list) = tls.certificates.as_ref().filter(|l| !l.is_empty()) else {
        c.err(
            &list_path,
            "at least one certificate is required: `- {cert: chain.pem, key: key.pem}`",
        );
        return None;
    };
    let now = SystemTime::now();
    let mut loaded = Vec::new();
    for (j, entry) in list.iter().enumerate() {
        let p = [&list_path[..], &[Seg::Index(j)]].concat();
        let (Some(cert), Some(key)) = (&entry.cert, &entry.key) else {
            c.err(
                &p,
                "both `cert` (PEM chain, leaf first) and `key` are required",
            );
            continue;
        };
        let cert_path = [&p[..], &[Seg::Key("cert")]].concat();
        let (cert_file, key_file) = (c.file(cert), c.file(key));
        match certs::load(&cert_file, &key_file, now) {
            Ok(mut l) => {
                // Named as configured, in metrics and `/status`.
                l.cert_path = PathBuf::from(cert);
                warn_expiry(c, &cert_path, &l, now);
                loaded.push(l);
            }
            Err(e) => c.err(&cert_path, e),
        }
    }
    Some((CertSet::new(loaded)?, min_version))
}

fn warn_expiry(c: &mut Checker<'_>, path: &[Seg<'_>], cert: &certs::LoadedCert, now: SystemTime) {
    if cert.expires_within(now, EXPIRY_WARNING) {
        let left = cert.not_after.duration_since(now).unwrap_or_default();
        let when: chrono::DateTime<chrono::Utc> = cert.not_after.into();
        c.warn(
            path,
            format!(
                "{} expires on {} (in {} days)",
                cert.cert_path.display(),
                when.format("%Y-%m-%d %H:%M UTC"),
                left.as_secs() / 86_400
            ),
        );
    }
}

pub(super) fn upstream_tls(
    c: &mut Checker<'_>,
    tls: &FileUpstreamTls,
    base: &[Seg<'_>],
) -> Option<UpstreamTls> {
    let at = |key: &'static str| [base, &[Seg::Key(key)]].concat();
    let errors_before = c.issues.len();
    let sni = match tls.sni.as_deref().map(str::trim) {
        None => None,
        Some(s) if s.is_empty() || s.contains(|ch: char| ch.is_whitespace() || ch == '/') => {
            c.err(&at("sni"), format!("`{s}` is not a server name"));
            None
        }
        Some(s) => Some(s.trim_end_matches('.').to_ascii_lowercase()),
    };
    let verify = tls.verify.unwrap_or(defaults::UPSTREAM_TLS_VERIFY);
    if !verify {
        c.warn(
            &at("verify"),
            "`verify: false`: the servers' certificates are not checked, so anyone on the path can pose as them",
        );
    }
    let ca = match &tls.ca {
        None => None,
        Some(file) => match certs::load_ca(&c.file(file)) {
            Ok(list) => Some(Arc::new(list)),
            Err(e) => {
                c.err(&at("ca"), e);
                None
            }
        },
    };
    let client = match (&tls.client_cert, &tls.client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let now = SystemTime::now();
            let (cert_file, key_file) = (c.file(cert), c.file(key));
            match certs::load_client(&cert_file, &key_file, now) {
                Ok(mut l) => {
                    l.cert.cert_path = PathBuf::from(cert);
                    warn_expiry(c, &at("client_cert"), &l.cert, now);
                    Some(Arc::new(l))
                }
                Err(e) => {
                    c.err(&at("client_cert"), e);
                    None
                }
            }
        }
        (Some(_), None) => {
            c.err(&at("client_cert"), "`client_cert` needs `client_key` too");
            None
        }
        (None, Some(_)) => {
            c.err(&at("client_key"), "`client_key` needs `client_cert` too");
            None
        }
    };
    (c.issues.len() == errors_before).then_some(UpstreamTls {
        sni,
        verify,
        ca,
        client,
    })
}
