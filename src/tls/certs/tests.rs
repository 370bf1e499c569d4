//! Certificates generated on the spot (rcgen), written to a scratch directory, loaded.

use super::*;

struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

/// A self-signed certificate for `names`, valid until `not_after` (y, m, d).
fn make(dir: &Path, file: &str, names: &[&str], not_after: (i32, u8, u8)) -> Pair {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.self_signed(&key).unwrap();
    let pair = Pair {
        cert: dir.join(format!("{file}.pem")),
        key: dir.join(format!("{file}.key")),
    };
    std::fs::write(&pair.cert, cert.pem()).unwrap();
    std::fs::write(&pair.key, key.serialize_pem()).unwrap();
    pair
}

fn now() -> SystemTime {
    SystemTime::now()
}

#[test]
fn a_certificate_and_its_key_load_with_names_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let p = make(
        dir.path(),
        "a",
        &["A.example.com", "*.api.example.com"],
        (2099, 1, 1),
    );
    let c = load(&p.cert, &p.key, now()).unwrap();
    assert_eq!(c.names, vec!["a.example.com", "*.api.example.com"]);
    let year_2099 = SystemTime::UNIX_EPOCH + Duration::from_secs(4_070_908_800);
    assert_eq!(c.not_after, year_2099);
    assert!(!c.expires_within(now(), EXPIRY_WARNING));
    assert!(c.expires_within(year_2099 - Duration::from_secs(3600), EXPIRY_WARNING));
}

#[test]
fn bad_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let a = make(dir.path(), "a", &["a.example.com"], (2099, 1, 1));
    let b = make(dir.path(), "b", &["b.example.com"], (2099, 1, 1));
    let mismatched = load(&a.cert, &b.key, now()).unwrap_err();
    assert!(mismatched.contains("does not match"), "{mismatched}");

    let old = make(dir.path(), "old", &["old.example.com"], (2021, 6, 1));
    let expired = load(&old.cert, &old.key, now()).unwrap_err();
    assert!(expired.contains("expired on 2021-06-01"), "{expired}");

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let none = load(&garbage, &a.key, now()).unwrap_err();
    assert!(none.contains("no certificate"), "{none}");
    let no_key = load(&a.cert, &garbage, now()).unwrap_err();
    assert!(no_key.contains("no private key"), "{no_key}");
    let missing = load(&dir.path().join("nope.pem"), &a.key, now()).unwrap_err();
    assert!(missing.contains("cannot read the certificate"), "{missing}");
    // A directory (or a FIFO, a device) is refused before it is opened.
    let dir_as_cert = load(dir.path(), &a.key, now()).unwrap_err();
    assert!(dir_as_cert.contains("not a regular file"), "{dir_as_cert}");
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo_key = load(&a.cert, &fifo, now()).unwrap_err();
    assert!(fifo_key.contains("not a regular file"), "{fifo_key}");
    // A CA file: certificates only, at least one.
    assert_eq!(load_ca(&a.cert).unwrap().len(), 1);
    assert!(load_ca(&garbage).unwrap_err().contains("no certificate"));
}

#[test]
fn sni_picks_exact_then_wildcard_else_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let load_one = |file: &str, names: &[&str]| {
        let p = make(dir.path(), file, names, (2099, 1, 1));
        load(&p.cert, &p.key, now()).unwrap()
    };
    let set = CertSet::new(vec![
        load_one("default", &["default.example"]),
        load_one("wild", &["*.example.com"]),
        load_one("exact", &["api.example.com"]),
    ])
    .unwrap();
    let picked = |sni: Option<&str>| {
        set.pick(sni)
            .cert_path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(picked(Some("api.example.com")), "exact");
    assert_eq!(picked(Some("API.Example.com.")), "exact");
    assert_eq!(picked(Some("www.example.com")), "wild");
    // A wildcard covers one label only, and not the bare domain.
    assert_eq!(picked(Some("a.b.example.com")), "default");
    assert_eq!(picked(Some("example.com")), "default");
    assert_eq!(picked(Some("other.org")), "default");
    assert_eq!(picked(None), "default");
    assert!(CertSet::new(Vec::new()).is_none());
}
