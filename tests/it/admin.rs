//! The admin port's defences (SPEC §9): bearer token, no reloads from web pages, and the proxy
//! port's head limits.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{Mock, Proxy, get, request};

const TOKEN: &str = "s3cret-token-0123456789";

fn proxy(mock: &Mock, admin_extra: &str, limits: &str) -> Proxy {
    Proxy::start(&format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"{admin_extra}}}\nthreads: 1\naccess_log: off\nwatch: false\n{limits}upstreams:\n  app: {{servers: [{{addr: \"{}\"}}]}}\n",
        mock.addr
    ))
}

#[test]
fn with_a_token_file_every_admin_request_but_healthz_needs_the_token() {
    let mock = Mock::named("ok");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let p = proxy(
        &mock,
        &format!(", token_file: \"{}\"", token_file.display()),
        "",
    );
    let bearer = format!("Bearer {TOKEN}");

    assert_eq!(get(p.admin, "/healthz").status, 200);
    for path in ["/status", "/metrics", "/"] {
        let r = get(p.admin, path);
        assert_eq!(r.status, 401, "{path} without a token");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer"))
        );
        let wrong = request(
            p.admin,
            "GET",
            path,
            &[("Authorization", "Bearer nope")],
            b"",
        );
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
        let ok = request(p.admin, "GET", path, &[("Authorization", &bearer)], b"");
        assert_eq!(ok.status, 200, "{path} with the token");
    }
    assert_eq!(request(p.admin, "POST", "/reload", &[], b"").status, 401);
    let reloaded = request(
        p.admin,
        "POST",
        "/reload",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    // The proxy itself is not affected.
    assert_eq!(get(p.addr, "/").status, 200);
}

#[test]
fn a_reload_from_a_web_page_is_refused() {
    let mock = Mock::named("ok");
    let p = proxy(&mock, "", "");
    let r = request(
        p.admin,
        "POST",
        "/reload",
        &[("Origin", "http://evil.example")],
        b"",
    );
    assert_eq!(r.status, 403);
    assert_eq!(p.status_json()["generation"], 1, "reloaded anyway");
    assert_eq!(request(p.admin, "POST", "/reload", &[], b"").status, 200);
}

#[test]
fn the_admin_port_has_the_proxy_ports_head_limits() {
    let mock = Mock::named("ok");
    let p = proxy(
        &mock,
        "",
        "limits: {max_header_bytes: 8KiB, header_read_timeout: 1s}\n",
    );
    // A 100 KB header: 431, not served.
    let big = "x".repeat(100_000);
    let r = request(p.admin, "GET", "/status", &[("X-Big", &big)], b"");
    assert_eq!(r.status, 431);
    // 1 000 header fields: 431.
    let mut head = String::from("GET /status HTTP/1.1\r\nHost: a\r\n");
    for i in 0..1000 {
        head.push_str(&format!("X-{i}: 1\r\n"));
    }
    head.push_str("\r\n");
    let mut s = TcpStream::connect(p.admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(head.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A head that never completes: 408 after header_read_timeout, not held for a minute.
    let mut s = TcpStream::connect(p.admin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /status HTTP/1.1\r\nHost: a\r\n").unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let took = started.elapsed();
    assert!(
        out.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(took < Duration::from_secs(3), "held for {took:?}");
}
