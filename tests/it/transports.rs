//! Upstream transports and the client's identity (SPEC §13): Unix-socket servers, `real_ip`
//! with trusted and untrusted peers, PROXY protocol listeners (v1, v2, and a connection
//! without a header), and `send_proxy_protocol` to upstreams.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;
use support::{Mock, Proxy, Seen, get, read_request, request, wait_until};

/// A keep-alive HTTP/1.1 server on a Unix socket: answers `NAME conn N` (N counts its
/// connections) and records what it saw.
struct UnixMock {
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl UnixMock {
    fn start(path: &Path, name: &str) -> UnixMock {
        let listener = UnixListener::bind(path).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (conns, seen2, name) = (connections.clone(), seen.clone(), name.to_string());
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let n = conns.fetch_add(1, Ordering::SeqCst) + 1;
                let (seen, name) = (seen2.clone(), name.clone());
                thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    let Ok(mut w) = conn.try_clone() else { return };
                    let mut r = BufReader::new(conn);
                    while let Some(req) = read_request(&mut r) {
                        seen.lock().unwrap().push(req);
                        let body = format!("{name} conn {n}");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if w.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        UnixMock { connections, seen }
    }
}

/// A keep-alive HTTP/1.1 server that expects a PROXY header first on each connection and
/// records it; answers `conn N`.
struct HeaderMock {
    addr: std::net::SocketAddr,
    headers: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl HeaderMock {
    fn start() -> HeaderMock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let headers = Arc::new(Mutex::new(Vec::new()));
        let seen = headers.clone();
        thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(conn) = conn else { return };
                let seen = seen.clone();
                thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                    let Ok(mut w) = conn.try_clone() else { return };
                    let mut r = BufReader::new(conn);
                    let Some(header) = read_proxy_header(&mut r) else {
                        return;
                    };
                    seen.lock().unwrap().push(header);
                    while read_request(&mut r).is_some() {
                        let body = format!("conn {}", n + 1);
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if w.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        HeaderMock { addr, headers }
    }

    fn headers(&self) -> Vec<Vec<u8>> {
        self.headers.lock().unwrap().clone()
    }
}

/// A v1 line or a v2 binary header, as sent.
fn read_proxy_header(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut first = [0u8; 16];
    r.read_exact(&mut first[..6]).ok()?;
    if &first[..6] == b"PROXY " {
        let mut line = first[..6].to_vec();
        r.read_until(b'\n', &mut line).ok()?;
        return Some(line);
    }
    r.read_exact(&mut first[6..]).ok()?;
    let len = u16::from_be_bytes([first[14], first[15]]) as usize;
    let mut rest = vec![0; len];
    r.read_exact(&mut rest).ok()?;
    let mut all = first.to_vec();
    all.extend_from_slice(&rest);
    Some(all)
}

/// Send `bytes` on a new connection and read what comes back until the server closes.
fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    support::raw(addr, bytes, Duration::from_secs(10))
}

#[test]
fn unix_socket_servers_are_pooled_balanced_and_failed_over() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("app.sock");
    let missing = dir.path().join("missing.sock");
    let app = UnixMock::start(&live, "app");
    let config = format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\nupstreams:\n  app:\n    balance: round_robin\n    servers:\n      - addr: \"unix:{}\"\n      - addr: \"unix:{}\"\n",
        missing.display(),
        live.display()
    );
    // `check` warns about the missing socket (the app may start later) and accepts the file.
    let path = dir.path().join("unix.yaml");
    std::fs::write(
        &path,
        config
            .replace("{listen}", "127.0.0.1:1")
            .replace("{admin}", "127.0.0.1:2"),
    )
    .unwrap();
    let (ok, out) = support::check_file(&path);
    assert!(ok, "{out}");
    assert!(
        out.contains("missing.sock") && out.contains("does not exist"),
        "{out}"
    );

    let p = Proxy::start(&config);
    // Every request is answered by the live socket: the missing one fails to connect and
    // the attempt moves on.
    let mut stream = TcpStream::connect(p.addr).unwrap();
    for _ in 0..6 {
        let r = support::request_on(&mut stream, "GET", "/x", &[], b"");
        assert_eq!(r.status, 200);
        // One upstream connection, reused by the pool.
        assert_eq!(r.text(), "app conn 1");
    }
    assert_eq!(app.connections.load(Ordering::SeqCst), 1);
    let seen = app.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 6);
    // The client's address still reaches the app over the socket.
    assert_eq!(seen[0].header("x-real-ip"), Some("127.0.0.1"));

    let status = p.status_json();
    let text = status.to_string();
    assert!(text.contains(&format!("unix:{}", live.display())), "{text}");
    let metrics = get(p.admin, "/metrics").text();
    assert!(
        metrics.contains(&format!(
            "outcome=\"error\",server=\"unix:{}\",upstream=\"app\"}} 3",
            missing.display()
        )),
        "the missing socket's failed attempts are counted:\n{metrics}"
    );
}

fn real_ip_config(from: &str, upstream: std::net::SocketAddr) -> String {
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\nreal_ip:\n  from: [\"{from}\"]\n  recursive: true\nupstreams:\n  app:\n    servers: [{{addr: \"{upstream}\"}}]\nroutes:\n  - path: /blocked\n    upstream: app\n    deny: [\"203.0.113.0/24\"]\n  - path: /\n    upstream: app\n    response_headers:\n      set: {{X-Client: \"$remote_addr\"}}\n"
    )
}

#[test]
fn real_ip_believes_trusted_peers_only() {
    let app = Mock::named("app");
    // The test client (127.0.0.1) is trusted.
    let p = Proxy::start(&real_ip_config("127.0.0.0/8", app.addr));
    let xff = [("X-Forwarded-For", "198.51.100.1, 203.0.113.9, 127.0.0.5")];
    let r = request(p.addr, "GET", "/", &xff, b"");
    assert_eq!(r.status, 200);
    // recursive: 127.0.0.5 is trusted and skipped; 203.0.113.9 is the client.
    assert_eq!(r.header("x-client"), Some("203.0.113.9"));
    let seen = app.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.header("x-real-ip"), Some("203.0.113.9"));
    assert_eq!(
        last.header("x-forwarded-for"),
        Some("198.51.100.1, 203.0.113.9, 127.0.0.5, 203.0.113.9")
    );
    // Access lists see the client as determined.
    let r = request(p.addr, "GET", "/blocked", &xff, b"");
    assert_eq!(r.status, 403);
    let r = request(p.addr, "GET", "/blocked", &[], b"");
    assert_eq!(r.status, 200);
    drop(p);

    // Only 10.0.0.0/8 is trusted: what the test client says is ignored, and its chain is
    // started afresh.
    let p = Proxy::start(&real_ip_config("10.0.0.0/8", app.addr));
    let r = request(p.addr, "GET", "/", &xff, b"");
    assert_eq!(r.header("x-client"), Some("127.0.0.1"));
    let seen = app.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(last.header("x-forwarded-for"), Some("127.0.0.1"));
    let r = request(p.addr, "GET", "/blocked", &xff, b"");
    assert_eq!(
        r.status, 200,
        "a spoofed address cannot get itself denied either"
    );
}

fn v2_header(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, tlv: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // v2, PROXY
    h.push(0x11); // TCP over IPv4
    h.extend_from_slice(&((12 + tlv.len()) as u16).to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(tlv);
    h
}

#[test]
fn proxy_protocol_listeners_take_the_client_from_the_header() {
    let app = Mock::named("app");
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("access.log");
    let p = Proxy::start(&format!(
        "listen:\n  - addr: \"{{listen}}\"\n    proxy_protocol: true\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\nlimits: {{header_read_timeout: 1s}}\naccess_log: \"{}\"\naccess_log_format: combined\nupstreams:\n  app:\n    servers: [{{addr: \"{}\"}}]\n",
        log.display(),
        app.addr
    ));
    let req = b"GET /v1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

    // v1, with the request in the same packet.
    let mut bytes = b"PROXY TCP4 198.51.100.7 192.0.2.1 40001 443\r\n".to_vec();
    bytes.extend_from_slice(req);
    let answer = support::parse_response(&exchange(p.addr, &bytes)).expect("an answer");
    assert_eq!(answer.status, 200);
    assert_eq!(
        app.seen().last().unwrap().header("x-real-ip"),
        Some("198.51.100.7")
    );

    // v2 with a TLV, written in two pieces (the header split across reads).
    let header = v2_header(
        [203, 0, 113, 50],
        40002,
        [192, 0, 2, 1],
        443,
        &[0xEA, 0, 3, 1, 2, 3],
    );
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&header[..10]).unwrap();
    thread::sleep(Duration::from_millis(50));
    s.write_all(&header[10..]).unwrap();
    s.write_all(b"GET /v2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert_eq!(
        support::parse_response(&got).expect("an answer").status,
        200
    );
    assert_eq!(
        app.seen().last().unwrap().header("x-real-ip"),
        Some("203.0.113.50")
    );

    // `PROXY UNKNOWN` (a balancer's own health check): the connection's peer stays the client.
    let mut bytes = b"PROXY UNKNOWN\r\n".to_vec();
    bytes.extend_from_slice(req);
    assert_eq!(
        support::parse_response(&exchange(p.addr, &bytes))
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        app.seen().last().unwrap().header("x-real-ip"),
        Some("127.0.0.1")
    );

    // No header: refused without an answer, and nothing reaches the app.
    let before = app.hits();
    assert!(exchange(p.addr, req).is_empty());
    // A header that never completes: closed after header_read_timeout (1 s).
    let started = std::time::Instant::now();
    assert!(exchange(p.addr, b"PROXY TCP4 198.51.100.7").is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(app.hits(), before);

    wait_until(
        "the access log names the header's clients",
        Duration::from_secs(5),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains("198.51.100.7 ") && text.contains("203.0.113.50 ")
        },
    );
}

#[test]
fn send_proxy_protocol_names_each_client_connection() {
    let upstream = HeaderMock::start();
    let p = Proxy::start(&format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\nupstreams:\n  app:\n    send_proxy_protocol: v1\n    servers: [{{addr: \"{}\"}}]\n",
        upstream.addr
    ));
    // Two requests on one client connection share an upstream connection and its header.
    let mut first = TcpStream::connect(p.addr).unwrap();
    let port = first.local_addr().unwrap().port();
    for _ in 0..2 {
        let r = support::request_on(&mut first, "GET", "/", &[], b"");
        assert_eq!(r.text(), "conn 1");
    }
    // Another client connection never reuses it.
    let mut second = TcpStream::connect(p.addr).unwrap();
    let r = support::request_on(&mut second, "GET", "/", &[], b"");
    assert_eq!(r.text(), "conn 2");
    let headers = upstream.headers();
    assert_eq!(headers.len(), 2);
    assert_eq!(
        String::from_utf8_lossy(&headers[0]),
        format!(
            "PROXY TCP4 127.0.0.1 127.0.0.1 {port} {}\r\n",
            p.addr.port()
        )
    );

    // v2, and a health check's connection says LOCAL.
    let upstream = HeaderMock::start();
    let p = Proxy::start(&format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\nupstreams:\n  app:\n    send_proxy_protocol: v2\n    health_check: {{path: /health, interval: 100ms}}\n    servers: [{{addr: \"{}\"}}]\n",
        upstream.addr
    ));
    wait_until("a health check connects", Duration::from_secs(5), || {
        !upstream.headers().is_empty()
    });
    let local = upstream.headers()[0].clone();
    assert_eq!(local[12], 0x20, "v2 LOCAL");
    let mut client = TcpStream::connect(p.addr).unwrap();
    let port = client.local_addr().unwrap().port();
    assert_eq!(
        support::request_on(&mut client, "GET", "/", &[], b"").status,
        200
    );
    let expected = v2_header([127, 0, 0, 1], port, [127, 0, 0, 1], p.addr.port(), &[]);
    wait_until(
        "the request's connection names the client",
        Duration::from_secs(5),
        || upstream.headers().contains(&expected),
    );
}
