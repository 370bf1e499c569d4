//! nginx's request model (SPEC §11): exact, `^~`, regex and prefix routes chosen by nginx's
//! algorithm, host forms, listener scoping, `match`, `respond` (444 included), and the
//! normalized path routes are matched against.

use crate::support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use support::{Mock, Proxy, request};

fn config(pools: &[(&str, &Mock)], listen: &str, routes: &str) -> String {
    let pools: String = pools
        .iter()
        .map(|(n, m)| format!("  {n}: {{servers: [{{addr: \"{}\"}}]}}\n", m.addr))
        .collect();
    format!(
        "listen: {listen}\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\naccess_log: off\nupstreams:\n{pools}routes:\n{routes}"
    )
}

fn at(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut headers = vec![("Host", host)];
    headers.extend_from_slice(extra);
    let r = request(addr, method, path, &headers, b"");
    (r.status, r.text())
}

#[test]
fn exact_stop_regex_regex_and_prefix_routes_choose_as_nginx_does() {
    let (a, b, c, d, e) = (
        Mock::named("A"),
        Mock::named("B"),
        Mock::named("C"),
        Mock::named("D"),
        Mock::named("E"),
    );
    // nginx's documentation example of `location`, configurations A to E.
    let p = Proxy::start(&config(
        &[("a", &a), ("b", &b), ("c", &c), ("d", &d), ("e", &e)],
        "[\"{listen}\"]",
        "  - {exact: /, upstream: a}\n  - {path: /, upstream: b}\n  - {path: /documents/, upstream: c}\n  - {path: /images/, stop_regex: true, upstream: d}\n  - {regex: \"\\\\.(gif|jpg|jpeg)$\", case_insensitive: true, upstream: e}\n",
    ));
    for (path, want) in [
        ("/", "A"),
        ("/index.html", "B"),
        ("/documents/document.html", "C"),
        ("/images/1.gif", "D"),
        ("/documents/1.jpg", "E"),
        ("/documents/1.JPEG?x=1", "E"),
        // Routed by nginx's $uri: decoded, slashes merged, dot segments resolved.
        ("/%69mages/1.gif", "D"),
        ("//images//1.gif", "D"),
        ("/documents/../images/1.gif", "D"),
    ] {
        assert_eq!(
            at(p.addr, "GET", "x", path, &[]),
            (200, want.to_string()),
            "{path}"
        );
    }
    // The upstream hears the path as the client sent it.
    assert!(
        d.seen()
            .iter()
            .any(|s| s.target == "/documents/../images/1.gif")
    );
    // Above the root, or a broken escape: 400, as from nginx.
    for bad in ["/../etc/passwd", "/a/%2e%2e/%2e%2e/x", "/a%zz"] {
        assert_eq!(at(p.addr, "GET", "x", bad, &[]).0, 400, "{bad}");
    }
}

#[test]
fn host_forms_follow_server_name_precedence() {
    let names = ["exact", "leading", "trailing", "regex", "any"];
    let mocks: Vec<Mock> = names.iter().map(|n| Mock::named(n)).collect();
    let pools: Vec<(&str, &Mock)> = names.iter().copied().zip(mocks.iter()).collect();
    let p = Proxy::start(&config(
        &pools,
        "[\"{listen}\"]",
        "  - {host: \"~^(www|api)\\\\.example\\\\.[a-z]+$\", upstream: regex}\n  - {host: \"www.example.*\", upstream: trailing}\n  - {host: \"*.example.com\", upstream: leading}\n  - {host: www.example.com, upstream: exact}\n  - {upstream: any}\n",
    ));
    for (host, want) in [
        ("www.example.com", "exact"),
        ("api.example.com", "leading"),
        ("www.example.net", "trailing"),
        ("API.example.org:8080", "regex"),
        ("example.com", "any"),
    ] {
        assert_eq!(
            at(p.addr, "GET", host, "/", &[]),
            (200, want.to_string()),
            "{host}"
        );
    }
}

#[test]
fn listeners_and_match_scope_routes_and_respond_answers_directly() {
    let (app, admin, canary) = (
        Mock::named("app"),
        Mock::named("admin"),
        Mock::named("canary"),
    );
    let p = Proxy::start(&config(
        &[("app", &app), ("admin", &admin), ("canary", &canary)],
        "\n  - {addr: \"{listen}\", name: public}\n  - {addr: \"{listen2}\", name: internal}",
        "  - {exact: /healthz, respond: {status: 200, body: \"ok\\n\", headers: {Cache-Control: no-store}}}\n  - {exact: /empty, respond: {status: 204}}\n  - {path: /admin/, upstream: admin, listeners: [internal]}\n  - {path: /, upstream: canary, match: {headers: {X-Canary: \"1\"}}}\n  - {path: /, upstream: canary, match: {cookies: {beta: \"~^(yes|1)$\"}, methods: [GET]}}\n  - {path: /, upstream: app}\n",
    ));
    let internal = p.addr2.expect("the second listener");
    assert_eq!(
        at(internal, "GET", "x", "/admin/users", &[]),
        (200, "admin".into())
    );
    // Not on the public listener: the `/` route takes it there.
    assert_eq!(
        at(p.addr, "GET", "x", "/admin/users", &[]),
        (200, "app".into())
    );
    assert_eq!(
        at(p.addr, "GET", "x", "/", &[("X-Canary", "1")]),
        (200, "canary".into())
    );
    assert_eq!(
        at(p.addr, "GET", "x", "/", &[("X-Canary", "0")]),
        (200, "app".into())
    );
    assert_eq!(
        at(p.addr, "GET", "x", "/", &[("Cookie", "a=1; beta=yes")]),
        (200, "canary".into())
    );
    assert_eq!(
        at(p.addr, "POST", "x", "/", &[("Cookie", "beta=yes")]),
        (200, "app".into())
    );

    let r = request(p.addr, "GET", "/healthz", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(
        r.header("x-request-id").is_some(),
        "a respond answer has the request id"
    );
    let r = request(p.addr, "GET", "/empty", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (204, ""));
    assert_eq!(
        app.hits() + admin.hits() + canary.hits(),
        6,
        "respond went upstream"
    );
}

#[test]
fn respond_444_closes_the_connection_without_an_answer() {
    let app = Mock::named("app");
    let p = Proxy::start(&config(
        &[("app", &app)],
        "[\"{listen}\"]",
        "  - {exact: /wp-login.php, respond: {status: 444}}\n  - {path: /, upstream: app}\n",
    ));
    // A kept-alive connection answers once, then is closed without a byte for the 444.
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = Vec::new();
    let mut buf = [0u8; 4096];
    while !first.ends_with(b"\r\n\r\napp") {
        let n = s.read(&mut buf).expect("the first answer");
        assert!(n > 0, "closed before the first answer");
        first.extend_from_slice(&buf[..n]);
    }
    assert!(first.starts_with(b"HTTP/1.1 200"));
    s.write_all(b"GET /wp-login.php HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    // EOF (not the read timeout), and not a byte before it.
    let n = s.read_to_end(&mut rest).expect("the connection is closed");
    assert_eq!((n, rest), (0, vec![]), "444 sent bytes");
    assert_eq!(app.hits(), 1);
    let closed = support::metric(&p, "switchyard_requests_total{code=\"444\",upstream=\"\"}");
    assert_eq!(closed, 1.0);
}
