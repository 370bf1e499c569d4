//! Static files (SPEC §12): types, validators, conditional and range requests, `405`, the
//! directory redirect, index and listings, `try_files` with its three fallbacks, `internal`,
//! precompressed twins and `compress`, `expires`; no path outside the root (raw bytes on a
//! socket, so nothing normalises the path before switchyard sees it); a file rewritten while
//! it is sent; static answers counted as `upstream="static"`; and `check`'s errors.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;
use support::{Mock, Proxy, check_errors, get, metric, parse_response, raw, request, wait_until};

fn write(dir: &Path, name: &str, body: &[u8]) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, body).unwrap();
}

fn config(extra_pools: &str, routes: &str) -> String {
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\n{extra_pools}routes:\n{routes}"
    )
}

/// A raw request on its own connection; the parsed answer (the server closes after it).
fn raw_get(p: &Proxy, target: &[u8]) -> support::Response {
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let got = raw(p.addr, &req, Duration::from_secs(10));
    parse_response(&got)
        .unwrap_or_else(|| panic!("no answer to {:?}", String::from_utf8_lossy(target)))
}

#[test]
fn files_are_served_with_types_validators_conditionals_and_ranges() {
    let site = tempfile::tempdir().unwrap();
    let root = site.path();
    write(root, "index.html", b"<h1>home</h1>\n");
    write(root, "css/App.CSS", b"body{}\n");
    write(root, "empty.txt", b"");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    write(root, "big.bin", &big);
    std::fs::create_dir_all(root.join("noindex")).unwrap();
    let log = site.path().join("access.log");
    let p = Proxy::start(&config(
        &format!(
            "access_log: \"{}\"\naccess_log_format: combined\n",
            log.display()
        ),
        &format!(
            "  - path: /\n    static: {{root: \"{}\", expires: 30d}}\n",
            root.display()
        ),
    ));

    let r = get(p.addr, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<h1>home</h1>\n", "the index of /");
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert_eq!(r.header("content-length"), Some("14"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("cache-control"), Some("max-age=2592000"));
    assert!(r.header("expires").is_some_and(|e| e.ends_with(" GMT")));
    let etag = r.header("etag").unwrap().to_string();
    let last_modified = r.header("last-modified").unwrap().to_string();
    // nginx's form: "MTIME-SIZE" in hex.
    assert!(etag.starts_with('"') && etag.ends_with("-e\""), "{etag}");

    let r = get(p.addr, "/css/App.CSS");
    assert_eq!(
        r.header("content-type"),
        Some("text/css"),
        "extension case ignored"
    );
    assert_eq!(r.body, b"body{}\n");

    let r = request(p.addr, "HEAD", "/index.html", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("14"));
    assert!(r.body.is_empty());

    let r = get(p.addr, "/empty.txt");
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));

    // Conditionals.
    let r = request(
        p.addr,
        "GET",
        "/index.html",
        &[("If-None-Match", &etag)],
        b"",
    );
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(
        r.header("cache-control"),
        Some("max-age=2592000"),
        "expires applies to 304"
    );
    let r = request(
        p.addr,
        "GET",
        "/index.html",
        &[("If-None-Match", "\"other\"")],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = request(
        p.addr,
        "GET",
        "/index.html",
        &[("If-Modified-Since", &last_modified)],
        b"",
    );
    assert_eq!(r.status, 304);
    let r = request(
        p.addr,
        "GET",
        "/index.html",
        &[("If-Modified-Since", "Thu, 01 Jan 2015 00:00:00 GMT")],
        b"",
    );
    assert_eq!(r.status, 200);

    // Ranges.
    let r = request(p.addr, "GET", "/index.html", &[("Range", "bytes=4-7")], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"home");
    assert_eq!(r.header("content-range"), Some("bytes 4-7/14"));
    assert_eq!(r.header("content-length"), Some("4"));
    let r = request(p.addr, "GET", "/index.html", &[("Range", "bytes=-3")], b"");
    assert_eq!((r.status, &r.body[..]), (206, &b"1>\n"[..]));
    let r = request(p.addr, "GET", "/index.html", &[("Range", "bytes=14-")], b"");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */14"));
    let r = request(
        p.addr,
        "GET",
        "/index.html",
        &[("Range", "bytes=0-1"), ("If-Range", "\"stale\"")],
        b"",
    );
    assert_eq!(
        (r.status, r.body.len()),
        (200, 14),
        "a stale If-Range gets the whole file"
    );
    let r = request(
        p.addr,
        "GET",
        "/index.html",
        &[("Range", "bytes=0-1"), ("If-Range", &etag)],
        b"",
    );
    assert_eq!(r.status, 206);
    let r = request(
        p.addr,
        "GET",
        "/index.html",
        &[("Range", "bytes=0-1,3-4")],
        b"",
    );
    assert_eq!(
        (r.status, r.body.len()),
        (200, 14),
        "several ranges: the whole file"
    );

    // A file larger than one read: whole, and a range across the pieces.
    let r = get(p.addr, "/big.bin");
    assert_eq!(r.status, 200);
    assert!(r.body == big, "the whole file, {} bytes", r.body.len());
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let r = request(
        p.addr,
        "GET",
        "/big.bin",
        &[("Range", "bytes=131000-140000")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert!(r.body == big[131_000..=140_000]);

    // Methods, directories, what is missing.
    let r = request(p.addr, "POST", "/index.html", &[], b"x");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = request(p.addr, "GET", "/css?x=1", &[("Host", "files.test")], b"");
    assert_eq!(r.status, 301);
    // Absolute, as nginx writes it: the host, and the port the request came in on.
    let location = format!("http://files.test:{}/css/?x=1", p.addr.port());
    assert_eq!(r.header("location"), Some(location.as_str()));
    assert_eq!(
        get(p.addr, "/noindex/").status,
        403,
        "no index, no autoindex"
    );
    let r = get(p.addr, "/missing.txt");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("cache-control"), None, "expires is not for errors");

    // Counted as upstream="static", in the metrics and on the status page.
    assert!(
        metric(
            &p,
            "switchyard_requests_total{code=\"200\",upstream=\"static\"}"
        ) >= 8.0
    );
    assert!(
        metric(
            &p,
            "switchyard_requests_total{code=\"404\",upstream=\"static\"}"
        ) >= 1.0
    );
    wait_until(
        "the access log names the static answers",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log).is_ok_and(|t| {
                t.lines().any(|l| {
                    l.contains("\"GET /missing.txt HTTP/1.1\" 404")
                        && l.contains(" upstream=static ")
                })
            })
        },
    );
    let status = p.status_json();
    assert!(
        status["static"]["statuses"]["304"].as_u64().unwrap() >= 2,
        "{status}"
    );
}

#[test]
fn no_request_reads_outside_the_root() {
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("public");
    write(&root, "index.html", b"public page");
    write(&root, "a/b.txt", b"inner");
    write(top.path(), "secret.txt", b"TOP SECRET");
    write(top.path(), "assets/app.js", b"js");
    std::os::unix::fs::symlink(top.path().join("secret.txt"), root.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(top.path(), root.join("up")).unwrap();
    std::os::unix::fs::symlink(root.join("a/b.txt"), root.join("inside.txt")).unwrap();
    let p = Proxy::start(&config(
        "",
        &format!(
            "  - path: /static\n    static: {{alias: \"{assets}/\"}}\n  - path: /followed/\n    static: {{alias: \"{root}/\", follow_symlinks: true}}\n  - path: /\n    static: {{root: \"{root}\", autoindex: true}}\n",
            assets = top.path().join("assets").display(),
            root = root.display(),
        ),
    ));
    assert_eq!(raw_get(&p, b"/a/b.txt").body, b"inner");

    let attempts: [(&[u8], u16); 12] = [
        (b"/../secret.txt", 400),
        (b"/a/../../secret.txt", 400),
        (b"/%2e%2e/secret.txt", 400),
        (b"/%2E%2E%2Fsecret.txt", 400),
        (b"/a/%2e%2e/%2e%2e/secret.txt", 400),
        (b"/..%2fsecret.txt", 400),
        (b"/..%5csecret.txt", 400),
        (b"/a\\..\\..\\secret.txt", 400),
        (b"/index.html%00.txt", 400),
        (b"/leak.txt", 403),
        (b"/up/secret.txt", 403),
        // nginx's alias traversal (`location /static { alias …/assets/; }`).
        (b"/static../secret.txt", 404),
    ];
    for (target, want) in attempts {
        let r = raw_get(&p, target);
        assert_eq!(r.status, want, "{}", String::from_utf8_lossy(target));
        assert!(
            !r.text().contains("TOP SECRET"),
            "{}",
            String::from_utf8_lossy(target)
        );
    }
    // A link that stays inside the root is served; the listing does not list what it cannot
    // reach either way, and `follow_symlinks` serves what the link names.
    assert_eq!(raw_get(&p, b"/inside.txt").body, b"inner");
    assert_eq!(raw_get(&p, b"/static/app.js").body, b"js");
    assert_eq!(raw_get(&p, b"/followed/leak.txt").body, b"TOP SECRET");
}

#[test]
fn try_files_fall_back_to_a_path_a_status_or_the_upstream() {
    let site = tempfile::tempdir().unwrap();
    let root = site.path();
    write(root, "index.html", b"spa shell");
    write(root, "app/main.js", b"main");
    write(root, "docs/index.html", b"docs index");
    write(root, "about.html", b"about page");
    write(root, "fallback.html", b"fallback page");
    write(root, "exists.txt", b"on disk");
    let app = Mock::named("app");
    let r = root.display();
    let p = Proxy::start(&config(
        &format!(
            "upstreams:\n  app: {{servers: [{{addr: \"{}\"}}]}}\n",
            app.addr
        ),
        &format!(
            r#"  - path: /spa/
    static: {{alias: "{r}/", try_files: ["$uri", "$uri/", "$uri.html", "/index.html"]}}
  - path: /gone/
    static: {{root: "{r}", try_files: ["$uri", "=410"]}}
  - path: /named/
    static: {{alias: "{r}/", try_files: ["$uri", "@app"]}}
  - path: /loop/
    static: {{root: "{r}", try_files: ["$uri", "/loop/again"]}}
  - exact: /fallback.html
    internal: true
    static: {{root: "{r}"}}
  - path: /inner/
    static: {{root: "{r}", try_files: ["$uri", "/fallback.html"]}}
  - exact: /index.html
    static: {{root: "{r}"}}
  - path: /
    static: {{root: "{r}"}}
    upstream: app
"#
        ),
    ));
    // SPA: a file, a directory's index, `$uri.html`, else the shell (routed again).
    assert_eq!(get(p.addr, "/spa/app/main.js").body, b"main");
    assert_eq!(get(p.addr, "/spa/docs/").body, b"docs index");
    assert_eq!(get(p.addr, "/spa/about").body, b"about page");
    let r = get(p.addr, "/spa/some/client/route");
    assert_eq!((r.status, &r.body[..]), (200, &b"spa shell"[..]));
    assert_eq!(get(p.addr, "/gone/nothing").status, 410);
    // `@POOL` and a route's `upstream`: what is not on disk is proxied, any method.
    let r = get(p.addr, "/named/missing?q=1");
    assert_eq!((r.status, r.text().as_str()), (200, "app"));
    assert_eq!(app.seen().last().unwrap().target, "/named/missing?q=1");
    assert_eq!(get(p.addr, "/exists.txt").body, b"on disk");
    let before = app.hits();
    let r = request(p.addr, "POST", "/api/things", &[], b"{}");
    assert_eq!(
        (r.status, app.hits()),
        (200, before + 1),
        "a missing file is the upstream's"
    );
    let r = request(p.addr, "POST", "/exists.txt", &[], b"{}");
    assert_eq!(
        (r.status, app.hits()),
        (405, before + 1),
        "a file is not POSTed to"
    );
    // `internal`: only a fallback reaches it.
    assert_eq!(get(p.addr, "/fallback.html").status, 404);
    assert_eq!(get(p.addr, "/inner/none").body, b"fallback page");
    // A fallback that comes back to itself: nginx's redirection cycle, 500.
    assert_eq!(get(p.addr, "/loop/x").status, 500);
}

#[test]
fn precompressed_twins_listings_and_compression() {
    let site = tempfile::tempdir().unwrap();
    let root = site.path();
    let css = "body { color: red }\n".repeat(100);
    write(root, "a.css", css.as_bytes());
    write(root, "a.css.gz", b"GZ BYTES");
    write(root, "a.css.br", b"BR BYTES");
    write(root, "only-gz.js", b"plain js");
    write(root, "only-gz.js.gz", b"GZ JS");
    write(root, "list/<b>&.txt", b"x");
    write(root, "list/sub/f.txt", b"y");
    write(root, "text/big.txt", "lorem ipsum ".repeat(500).as_bytes());
    let r = root.display();
    let p = Proxy::start(&config(
        "",
        &format!(
            "  - path: /text/\n    static: {{root: \"{r}\"}}\n    compress: true\n  - path: /\n    static: {{root: \"{r}\", precompressed: true, autoindex: true}}\n"
        ),
    ));
    let enc = |path: &str, accept: &str| {
        request(p.addr, "GET", path, &[("Accept-Encoding", accept)], b"")
    };
    let got = enc("/a.css", "gzip, deflate, br");
    assert_eq!(got.body, b"BR BYTES");
    assert_eq!(got.header("content-encoding"), Some("br"));
    assert_eq!(
        got.header("content-type"),
        Some("text/css"),
        "the type of the original"
    );
    assert_eq!(got.header("vary"), Some("Accept-Encoding"));
    let got = enc("/a.css", "gzip");
    assert_eq!(
        (got.header("content-encoding"), &got.body[..]),
        (Some("gzip"), &b"GZ BYTES"[..])
    );
    let got = enc("/a.css", "br;q=0, gzip;q=0");
    assert_eq!(got.body, css.as_bytes());
    assert_eq!(got.header("content-encoding"), None);
    assert_eq!(got.header("vary"), Some("Accept-Encoding"));
    assert_eq!(enc("/only-gz.js", "br").body, b"plain js");
    assert_eq!(enc("/only-gz.js", "br, gzip").body, b"GZ JS");

    let listing = get(p.addr, "/list/");
    assert_eq!(listing.status, 200);
    assert_eq!(
        listing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = listing.text();
    assert!(
        html.contains("<a href=\"%3Cb%3E%26.txt\">&lt;b&gt;&amp;.txt</a>"),
        "{html}"
    );
    assert!(html.contains("<a href=\"sub/\">sub/</a>"), "{html}");

    // `compress` on a file without a twin: gzip on the fly, and then no ranges.
    let got = request(
        p.addr,
        "GET",
        "/text/big.txt",
        &[("Accept-Encoding", "gzip"), ("Range", "bytes=0-9")],
        b"",
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&got.body[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, "lorem ipsum ".repeat(500));
    let got = request(
        p.addr,
        "GET",
        "/text/big.txt",
        &[("Range", "bytes=0-4")],
        b"",
    );
    assert_eq!((got.status, &got.body[..]), (206, &b"lorem"[..]));
}

#[test]
fn a_file_rewritten_while_it_is_sent_is_cut_short_not_mixed() {
    let site = tempfile::tempdir().unwrap();
    let len = 48 << 20;
    write(site.path(), "big.bin", &vec![b'a'; len]);
    let p = Proxy::start(&config(
        "",
        &format!(
            "  - path: /\n    static: {{root: \"{}\"}}\n",
            site.path().display()
        ),
    ));
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = vec![0u8; 65536];
    let n = s.read(&mut got).unwrap();
    got.truncate(n);
    // The same length, other bytes, in place: only the modification time tells.
    std::thread::sleep(Duration::from_millis(20));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(site.path().join("big.bin"))
        .unwrap();
    f.write_all(&vec![b'b'; len]).unwrap();
    drop(f);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]).to_string();
    assert!(
        head.contains(&format!("Content-Length: {len}"))
            || head.contains(&format!("content-length: {len}")),
        "{head}"
    );
    let body = &got[head_end..];
    assert!(
        body.len() < len,
        "the answer is cut short ({} of {len} bytes)",
        body.len()
    );
    assert!(
        body.iter().all(|b| *b == b'a'),
        "nothing of the new version is sent"
    );
}

#[test]
fn check_explains_static_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let pools = "upstreams:\n  app: {servers: [{addr: \"127.0.0.1:9\"}]}\n";
    let e = check_errors(
        "s.yaml",
        &format!(
            "listen: [\"127.0.0.1:0\"]\n{pools}routes:\n  - path: /a/\n    static: {{root: \"{d}\", alias: \"{d}\"}}\n  - regex: \\.png$\n    static: {{alias: \"{d}\"}}\n  - path: /c/\n    static: {{root: \"{d}\", try_files: [\"$uri\"]}}\n  - path: /d/\n    static: {{root: \"{d}\", try_files: [\"$uri\", \"@nope\"]}}\n  - path: /e/\n    static: {{root: \"{d}\", expires: soon, index: [\"a/b.html\"]}}\n  - path: /f/\n    static: {{root: \"{d}\"}}\n    redirect: {{to: /x}}\n  - path: /g/\n    static: {{root: \"{d}\", try_files: [\"$uri\", \"=404\"]}}\n    upstream: app\n"
        ),
    );
    for want in [
        "routes[0].static.alias: `root` or `alias`, not both",
        "routes[1].static.alias: a `regex` route has no prefix",
        "routes[2].static.try_files: a file to try and a fallback are needed",
        "routes[3].static.try_files[1]: unknown upstream `nope`",
        "routes[4].static.expires:",
        "routes[4].static.index[0]: `a/b.html`: an index is a file name",
        "routes[5].static: a route that answers a `redirect` or `respond` serves no files",
        "routes[6].static.try_files[1]: `=404` would leave the route's `upstream` unused",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    let ok = format!(
        "listen: [\"127.0.0.1:0\"]\n{pools}routes:\n  - path: /\n    static: {{root: \"{d}/not-yet\"}}\n"
    );
    let path = dir.path().join("ok.yaml");
    std::fs::write(&path, ok).unwrap();
    let (passed, err) = support::check_file(&path);
    assert!(passed, "a root that does not exist yet is a warning: {err}");
    assert!(err.contains("not-yet"), "{err}");
}

#[test]
fn kept_open_files_see_changes_in_place_at_once_and_renames_within_their_time() {
    let site = tempfile::tempdir().unwrap();
    let root = site.path();
    write(root, "app.js", b"version 1");
    let r = root.display();
    let p = Proxy::start(&config(
        "",
        &format!(
            "  - path: /fresh/\n    static: {{alias: \"{r}/\", open_file_cache: \"off\"}}\n  - path: /\n    static: {{root: \"{r}\", open_file_cache: 1s}}\n"
        ),
    ));
    assert_eq!(get(p.addr, "/app.js").body, b"version 1");
    // Rewritten in place: seen at once, kept open or not.
    write(root, "app.js", b"version 2, longer");
    assert_eq!(get(p.addr, "/app.js").body, b"version 2, longer");
    // Replaced by a rename, as deploys write: at once without the cache, within its time with.
    write(root, "app.js.new", b"version 3");
    std::fs::rename(root.join("app.js.new"), root.join("app.js")).unwrap();
    assert_eq!(get(p.addr, "/fresh/app.js").body, b"version 3");
    wait_until("the kept file expires", Duration::from_secs(5), || {
        get(p.addr, "/app.js").body == b"version 3"
    });
    // Deleted: gone at once without the cache.
    std::fs::remove_file(root.join("app.js")).unwrap();
    assert_eq!(get(p.addr, "/fresh/app.js").status, 404);
    wait_until("the deleted file is gone", Duration::from_secs(5), || {
        get(p.addr, "/app.js").status == 404
    });
}
