//! `buffering` (SPEC §13): a slow client does not hold the server (the answer is read whole
//! while the client reads nothing), an answer larger than the bound streams intact, and a
//! slow upload reaches the server only once it is complete. Each is set against a pool
//! without buffering, which behaves the other way.

use crate::support::{self, Mock, Proxy, metric, wait_until};

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A server that answers each request with `size` bytes and reports how long writing them
/// took (a synchronous worker is busy for that long).
fn big_answer_server(size: usize) -> (SocketAddr, mpsc::Receiver<Duration>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let tx = tx.clone();
            thread::spawn(move || {
                let Ok(mut w) = conn.try_clone() else { return };
                let mut r = BufReader::new(conn);
                while support::read_request(&mut r).is_some() {
                    let body = vec![b'x'; size];
                    let started = Instant::now();
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
                    if w.write_all(head.as_bytes()).is_err() || w.write_all(&body).is_err() {
                        return;
                    }
                    let _ = tx.send(started.elapsed());
                }
            });
        }
    });
    (addr, rx)
}

fn config(pools: &str) -> String {
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\nupstreams:\n{pools}routes:\n  - path: /buffered\n    upstream: buffered\n  - path: /\n    upstream: streamed\n"
    )
}

/// Send `GET path`, read nothing for `stall`, then read the whole answer: its body length.
fn slow_client(addr: SocketAddr, path: &str, stall: Duration) -> thread::JoinHandle<usize> {
    let path = path.to_string();
    thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        thread::sleep(stall);
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        let end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        all.len() - end - 4
    })
}

#[test]
fn a_slow_client_does_not_hold_the_server_when_answers_are_buffered() {
    // Bigger than every socket buffer between the server and a client that reads nothing.
    const SIZE: usize = 64 << 20;
    let (buffered_addr, buffered_writes) = big_answer_server(SIZE);
    let (streamed_addr, streamed_writes) = big_answer_server(SIZE);
    let p = Proxy::start(&config(&format!(
        "  buffered:\n    buffering: {{response: 128MiB}}\n    servers: [{{addr: \"{buffered_addr}\"}}]\n  streamed:\n    servers: [{{addr: \"{streamed_addr}\"}}]\n"
    )));

    let client = slow_client(p.addr, "/buffered", Duration::from_secs(3));
    let took = buffered_writes
        .recv_timeout(Duration::from_secs(2))
        .expect("the server finished writing its answer while the client read nothing");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(client.join().unwrap(), SIZE);

    // Without buffering, the same server is held until the client reads.
    let client = slow_client(p.addr, "/", Duration::from_secs(3));
    assert!(
        streamed_writes
            .recv_timeout(Duration::from_secs(2))
            .is_err(),
        "a streamed answer cannot be written whole to a client that reads nothing"
    );
    assert_eq!(client.join().unwrap(), SIZE);
    assert!(streamed_writes.recv_timeout(Duration::from_secs(5)).is_ok());

    let series = |result: &str| {
        metric(
            &p,
            &format!(
                "switchyard_upstream_buffered_total{{direction=\"response\",result=\"{result}\",upstream=\"buffered\"}}"
            ),
        )
    };
    assert_eq!(series("whole"), 1.0);
    assert_eq!(series("streamed"), 0.0);
}

#[test]
fn an_answer_larger_than_the_buffer_streams_intact() {
    let body: String = (0..400_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let expected = body.clone();
    let app = Mock::start(move |_| support::Action::ok(&body));
    let p = Proxy::start(&config(&format!(
        "  buffered:\n    buffering: {{response: 64KiB}}\n    servers: [{{addr: \"{}\"}}]\n  streamed:\n    servers: [{{addr: \"{}\"}}]\n",
        app.addr, app.addr
    )));
    let r = support::get(p.addr, "/buffered");
    assert_eq!(r.status, 200);
    assert!(r.text() == expected, "the body arrived changed");
    let small = support::request(p.addr, "HEAD", "/buffered", &[], b"");
    assert_eq!(small.status, 200);
    let series = |result: &str| {
        metric(
            &p,
            &format!(
                "switchyard_upstream_buffered_total{{direction=\"response\",result=\"{result}\",upstream=\"buffered\"}}"
            ),
        )
    };
    assert_eq!(series("streamed"), 1.0);
    assert_eq!(series("whole"), 0.0, "a HEAD answer has no body to hold");
}

/// Send a POST of `pieces` pieces 300 ms apart; after each but the last, `during` is called.
fn slow_upload(
    addr: SocketAddr,
    path: &str,
    pieces: usize,
    mut during: impl FnMut(usize),
) -> support::Response {
    let piece = vec![b'u'; 100_000];
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        piece.len() * pieces
    )
    .unwrap();
    for i in 0..pieces {
        s.write_all(&piece).unwrap();
        if i + 1 < pieces {
            thread::sleep(Duration::from_millis(300));
            during(i);
        }
    }
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    support::parse_response(&all).expect("an answer")
}

#[test]
fn a_slow_upload_reaches_the_server_once_complete_when_requests_are_buffered() {
    let buffered = Mock::named("buffered");
    let streamed = Mock::named("streamed");
    let p = Proxy::start(&config(&format!(
        "  buffered:\n    buffering: {{request: 1MiB}}\n    servers: [{{addr: \"{}\"}}]\n  streamed:\n    servers: [{{addr: \"{}\"}}]\n",
        buffered.addr, streamed.addr
    )));
    let r = slow_upload(p.addr, "/buffered", 3, |_| {
        assert_eq!(
            buffered.connections(),
            0,
            "connected before the body was in"
        );
    });
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "buffered");
    assert_eq!(buffered.seen()[0].body.len(), 300_000);

    // Without request buffering the server is connected to (and waits) from the start.
    let r = slow_upload(p.addr, "/", 3, |i| {
        if i == 1 {
            wait_until(
                "the streamed pool is connected to",
                Duration::from_secs(2),
                || streamed.connections() == 1,
            );
        }
    });
    assert_eq!(r.status, 200);
    assert_eq!(streamed.seen()[0].body.len(), 300_000);
    assert_eq!(
        metric(
            &p,
            "switchyard_upstream_buffered_total{direction=\"request\",result=\"whole\",upstream=\"buffered\"}"
        ),
        1.0
    );
}
