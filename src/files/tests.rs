use super::*;

#[test]
fn file_for_root_and_alias() {
    let d = Path::new("/srv/www");
    assert_eq!(
        file_for(d, false, "/", "/a/b.css"),
        Some(PathBuf::from("/srv/www/a/b.css"))
    );
    assert_eq!(
        file_for(
            Path::new("/srv/assets/"),
            true,
            "/static/",
            "/static/css/a.css"
        ),
        Some(PathBuf::from("/srv/assets/css/a.css"))
    );
    // An alias without its slash under a prefix with one still gets one between.
    assert_eq!(
        file_for(Path::new("/srv/assets"), true, "/static/", "/static/a.css"),
        Some(PathBuf::from("/srv/assets/a.css"))
    );
    // nginx's classic alias traversal: `location /static { alias /srv/assets/; }` and
    // `/static../secret` would read /srv/secret there.
    assert_eq!(
        file_for(
            Path::new("/srv/assets/"),
            true,
            "/static",
            "/static../secret"
        ),
        None
    );
    // `location = /favicon.ico { alias /srv/f.ico; }`
    assert_eq!(
        file_for(
            Path::new("/srv/f.ico"),
            true,
            "/favicon.ico",
            "/favicon.ico"
        ),
        Some(PathBuf::from("/srv/f.ico"))
    );
    assert_eq!(file_for(d, true, "/static/", "/other"), None);
}

#[test]
fn symlinks_out_of_the_root_are_refused_unless_followed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"s").unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("in.txt"), b"hello").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("out")).unwrap();
    std::os::unix::fs::symlink(root.path().join("in.txt"), root.path().join("alias.txt")).unwrap();
    let real = std::fs::canonicalize(root.path()).unwrap();
    let open_ = |name: &str, follow| open(root.path().join(name), root.path(), Some(&real), follow);
    assert!(matches!(open_("in.txt", false), Found::File(f) if f.len == 5));
    assert!(
        matches!(open_("alias.txt", false), Found::File(_)),
        "a link within the root"
    );
    assert!(matches!(open_("out", false), Found::Forbidden));
    assert!(matches!(open_("out", true), Found::File(_)));
    assert!(matches!(open_("missing", false), Found::Missing));
    assert!(matches!(open_("in.txt/x", false), Found::Missing));
    // Resolved at request time when the root did not exist at load.
    assert!(matches!(
        open(root.path().join("out"), root.path(), None, false),
        Found::Forbidden
    ));
    assert!(matches!(
        open(root.path().join("in.txt"), root.path(), None, false),
        Found::File(_)
    ));
}

#[test]
fn fifos_are_refused_without_blocking() {
    let root = tempfile::tempdir().unwrap();
    let fifo = root.path().join("pipe");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert!(matches!(
        open(fifo.clone(), root.path(), None, false),
        Found::Forbidden
    ));
}

#[test]
fn encodings_br_first_and_q_zero_refused() {
    let e = |a: &str| {
        accepted_encodings(Some(a.as_bytes()))
            .map(|(e, _)| e)
            .collect::<Vec<_>>()
    };
    assert_eq!(e("gzip, deflate, br"), ["br", "gzip"]);
    assert_eq!(e("gzip"), ["gzip"]);
    assert_eq!(e("br;q=0, gzip;q=0.5"), ["gzip"]);
    assert_eq!(e("*"), ["br", "gzip"]);
    assert_eq!(e("*, br;q=0"), ["gzip"]);
    assert_eq!(e("identity"), Vec::<&str>::new());
    assert_eq!(accepted_encodings(None).count(), 0);
}

#[test]
fn content_types_from_the_table_ignoring_case() {
    assert_eq!(content_type(Path::new("/a/INDEX.HTML")), "text/html");
    assert_eq!(content_type(Path::new("/a/x.css")), "text/css");
    assert_eq!(
        content_type(Path::new("/a/x.unknownext")),
        "application/octet-stream"
    );
}
