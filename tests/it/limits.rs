//! Request limits and framing: what a client gets, and what (if anything) reaches the upstream.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{Mock, Proxy, get, parse_response, raw, request};

fn config(mock: &Mock, limits: &str) -> String {
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\naccess_log: off\nlimits:\n{limits}upstreams:\n  app: {{servers: [{{addr: \"{}\"}}]}}\n",
        mock.addr
    )
}

#[test]
fn a_head_over_max_header_bytes_gets_431_and_the_proxy_keeps_serving() {
    let mock = Mock::named("ok");
    let p = Proxy::start(&config(&mock, "  max_header_bytes: 4KiB\n"));
    let big = "x".repeat(6000);
    let r = request(p.addr, "GET", "/", &[("X-Big", &big)], b"");
    assert_eq!(r.status, 431);
    assert_eq!(mock.hits(), 0, "the oversized request reached the upstream");
    // Just under the limit is fine.
    let ok = "x".repeat(3000);
    assert_eq!(
        request(p.addr, "GET", "/", &[("X-Ok", &ok)], b"").status,
        200
    );
    assert_eq!(mock.hits(), 1);
}

#[test]
fn a_body_over_max_body_bytes_gets_413() {
    let mock = Mock::named("ok");
    let p = Proxy::start(&config(&mock, "  max_body_bytes: 1KiB\n"));
    // Declared too large: refused before the body is read or anything is sent upstream.
    let r = request(p.addr, "POST", "/upload", &[], &vec![b'a'; 2000]);
    assert_eq!(r.status, 413);
    assert_eq!(mock.hits(), 0);
    // Chunked, so the size is only known while reading: still 413.
    let chunk = "a".repeat(700);
    let body = format!("2bc\r\n{chunk}\r\n2bc\r\n{chunk}\r\n0\r\n\r\n");
    let req = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}"
    );
    let resp =
        parse_response(&raw(p.addr, req.as_bytes(), Duration::from_secs(10))).expect("a response");
    assert_eq!(resp.status, 413);
    // Within the limit passes.
    assert_eq!(
        request(p.addr, "POST", "/upload", &[], &[b'a'; 1000]).status,
        200
    );
    assert_eq!(mock.seen().last().unwrap().body.len(), 1000);
}

#[test]
fn a_slow_head_is_cut_off_at_header_read_timeout() {
    let mock = Mock::named("ok");
    let p = Proxy::start(&config(&mock, "  header_read_timeout: 1s\n"));
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    // Slowloris: a byte at a time, never finishing the head.
    let mut answer = Vec::new();
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    for b in head.iter().chain(std::iter::repeat(&b'a')) {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if start.elapsed() > Duration::from_secs(5) {
            break;
        }
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
        s.set_nonblocking(false).unwrap();
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "cut off only after {elapsed:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut off too early: {elapsed:?}"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    assert_eq!(mock.hits(), 0);
    // The proxy still serves.
    assert_eq!(get(p.addr, "/").status, 200);
}

#[test]
fn an_idle_connection_is_closed_without_an_answer() {
    let mock = Mock::named("ok");
    let p = Proxy::start(&config(&mock, "  header_read_timeout: 1s\n"));
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected a silent close");
    assert!(start.elapsed() < Duration::from_secs(3));
}

/// RFC 9112 §6.1: with both Transfer-Encoding and Content-Length, TE wins and the connection
/// must close afterwards, so bytes after the chunked body can never become a second request.
#[test]
fn content_length_with_transfer_encoding_never_smuggles_a_second_request() {
    let mock = Mock::named("ok");
    let p = Proxy::start(&config(&mock, ""));
    let attack = b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let out = raw(p.addr, attack, Duration::from_secs(3));
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.matches("HTTP/1.1").count() <= 1,
        "two responses: {text}"
    );
    let targets: Vec<String> = mock.seen().iter().map(|s| s.target.clone()).collect();
    assert!(
        !targets.iter().any(|t| t.contains("smuggled")),
        "{targets:?}"
    );
    assert!(targets.len() <= 1, "{targets:?}");
    assert_eq!(get(p.addr, "/").status, 200);
}

#[test]
fn conflicting_content_lengths_are_refused() {
    let mock = Mock::named("ok");
    let p = Proxy::start(&config(&mock, ""));
    let attack = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 30\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let out = raw(p.addr, attack, Duration::from_secs(3));
    let resp = parse_response(&out).expect("an answer");
    assert_eq!(resp.status, 400);
    assert_eq!(mock.hits(), 0, "{:?}", mock.seen());
    assert_eq!(get(p.addr, "/").status, 200);
}
