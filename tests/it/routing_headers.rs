//! Routing by host and path, and the headers an upstream receives.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::{Action, Mock, Proxy, request};

#[test]
fn routes_by_host_then_longest_path_and_404_without_a_match() {
    let (web, api, admin, wild) = (
        Mock::named("web"),
        Mock::named("api"),
        Mock::named("api-admin"),
        Mock::named("wild"),
    );
    let config = format!(
        r#"listen: ["{{listen}}"]
admin: {{listen: "{{admin}}"}}
threads: 1
access_log: off
upstreams:
  web: {{servers: [{{addr: "{}"}}]}}
  api: {{servers: [{{addr: "{}"}}]}}
  admin: {{servers: [{{addr: "{}"}}]}}
  wild: {{servers: [{{addr: "{}"}}]}}
routes:
  - host: www.example.com
    upstream: web
  - host: api.example.com
    path: /v1/
    upstream: api
  - host: api.example.com
    path: /v1/admin/
    upstream: admin
  - host: "*.example.com"
    upstream: wild
  - path: /static/
    upstream: web
"#,
        web.addr, api.addr, admin.addr, wild.addr
    );
    let p = Proxy::start(&config);
    let at = |host: &str, path: &str| {
        let r = request(p.addr, "GET", path, &[("Host", host)], b"");
        (r.status, r.text())
    };
    assert_eq!(at("www.example.com", "/"), (200, "web".into()));
    assert_eq!(at("WWW.Example.com:8080", "/x"), (200, "web".into()));
    assert_eq!(at("api.example.com", "/v1/users"), (200, "api".into()));
    assert_eq!(
        at("api.example.com", "/v1/admin/users"),
        (200, "api-admin".into())
    );
    // api.example.com has no route for /other: the wildcard catches it.
    assert_eq!(at("api.example.com", "/other"), (200, "wild".into()));
    assert_eq!(at("shop.example.com", "/"), (200, "wild".into()));
    assert_eq!(at("other.org", "/static/app.js"), (200, "web".into()));
    let (status, body) = at("other.org", "/");
    assert_eq!(status, 404);
    assert!(body.contains("no route"), "{body}");
    // The absolute form routes by its authority.
    let r = request(
        p.addr,
        "GET",
        "http://api.example.com/v1/x",
        &[("Host", "api.example.com")],
        b"",
    );
    assert_eq!(r.text(), "api");
    // Nothing was contacted for the 404.
    assert_eq!(web.hits() + api.hits() + admin.hits() + wild.hits(), 8);
}

fn one_pool(mock: &Mock) -> String {
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\naccess_log: off\nupstreams:\n  app: {{servers: [{{addr: \"{}\"}}]}}\n",
        mock.addr
    )
}

#[test]
fn upstream_sees_forwarded_headers_and_no_hop_by_hop_headers() {
    let mock = Mock::named("ok");
    let p = Proxy::start(&one_pool(&mock));
    let r = request(
        p.addr,
        "GET",
        "/path?q=1",
        &[
            ("Host", "shop.example.com"),
            ("X-Forwarded-For", "203.0.113.7"),
            ("Connection", "keep-alive, X-Drop-Me, X-Real-IP"),
            ("X-Drop-Me", "secret"),
            ("X-Real-IP", "6.6.6.6"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAAQAAP__"),
            ("X-Custom", "kept"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    let seen = &mock.seen()[0];
    assert_eq!(seen.target, "/path?q=1");
    assert_eq!(seen.header("host"), Some("shop.example.com"));
    assert_eq!(
        seen.headers_named("x-forwarded-for"),
        vec!["203.0.113.7, 127.0.0.1"]
    );
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("shop.example.com"));
    assert_eq!(seen.header("x-custom"), Some("kept"));
    for gone in [
        "x-drop-me",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
        "http2-settings",
    ] {
        assert_eq!(seen.header(gone), None, "{gone} reached the upstream");
    }
    assert_ne!(
        seen.header("connection"),
        Some("keep-alive, X-Drop-Me, X-Real-IP")
    );
    // The request id is added, sent upstream and echoed to the client.
    let id = r.header("x-request-id").expect("x-request-id echoed");
    assert_eq!(id.len(), 32);
    assert_eq!(seen.header("x-request-id"), Some(id));
}

#[test]
fn a_client_request_id_is_kept_and_response_hop_by_hop_headers_are_dropped() {
    let mock = Mock::start(|_| Action::Respond {
        status: 200,
        headers: vec![
            ("Connection".into(), "X-Upstream-Private".into()),
            ("X-Upstream-Private".into(), "1".into()),
            ("Keep-Alive".into(), "timeout=99".into()),
            ("X-Public".into(), "yes".into()),
        ],
        body: b"ok".to_vec(),
        delay: Duration::ZERO,
    });
    let p = Proxy::start(&one_pool(&mock));
    let r = request(
        p.addr,
        "GET",
        "/",
        &[("X-Request-Id", "client-chosen-id")],
        b"",
    );
    assert_eq!(r.header("x-request-id"), Some("client-chosen-id"));
    assert_eq!(
        mock.seen()[0].header("x-request-id"),
        Some("client-chosen-id")
    );
    assert_eq!(r.header("x-public"), Some("yes"));
    assert_eq!(r.header("x-upstream-private"), None);
    assert_eq!(r.header("keep-alive"), None);
}

#[test]
fn websocket_upgrade_passes_through() {
    let mock = Mock::start(|_| Action::UpgradeEcho);
    let p = Proxy::start(&one_pool(&mock));
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the 101");
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    let seen = &mock.seen()[0];
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert_eq!(
        seen.header("sec-websocket-key"),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
    // Bytes now flow both ways untouched.
    s.write_all(b"ping-frame-bytes").unwrap();
    let mut got = Vec::new();
    while got.len() < 16 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&got, b"ping-frame-bytes");
}

/// RFC 9112 §9.6: `close` in any `Connection` field closes the connection after the response.
#[test]
fn a_close_option_in_any_connection_field_closes_the_connection() {
    let mock = Mock::named("ok");
    let p = Proxy::start(&one_pool(&mock));
    let start = std::time::Instant::now();
    let out = support::raw(
        p.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "connection left open"
    );
}

#[test]
fn any_protocol_upgrade_but_h2c_passes_through() {
    let mock = Mock::start(|_| Action::UpgradeEcho);
    let p = Proxy::start(&one_pool(&mock));
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /custom HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: custom_protocol\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the 101");
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert_eq!(mock.seen()[0].header("upgrade"), Some("custom_protocol"));
    // A two-way tunnel now.
    s.write_all(b"custom bytes").unwrap();
    let mut echoed = Vec::new();
    while echoed.len() < 12 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "tunnel closed");
        echoed.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&echoed, b"custom bytes");
}
