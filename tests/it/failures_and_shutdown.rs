//! Upstream failures as the client sees them, and graceful shutdown.

use crate::support;

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};
use support::{Action, Mock, Proxy, get, refused_addr};

fn config(addr: &str, extra: &str) -> String {
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\naccess_log: off\nupstreams:\n  app:\n    servers: [{{addr: \"{addr}\"}}]\n{extra}"
    )
}

#[test]
fn a_refused_connection_is_502_with_a_plain_text_body() {
    // The only server refuses: the default `tries: 3` tries it three times, then 502.
    let p = Proxy::start(&config(&refused_addr().to_string(), ""));
    let r = get(p.addr, "/");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(r.text().starts_with("502"), "{}", r.text());
    assert!(r.header("x-request-id").is_some());
    let status = p.status_json();
    assert_eq!(status["upstreams"]["app"]["servers"][0]["failures"], 3);
    assert_eq!(status["upstreams"]["app"]["servers"][0]["active"], 0);
}

#[test]
fn a_read_timeout_is_504_within_a_bounded_time() {
    let mock = Mock::start(|_| Action::Hang(Duration::from_secs(10)));
    let p = Proxy::start(&config(
        &mock.addr.to_string(),
        "    timeouts: {read: 1s}\n    retry: {tries: 1}\n",
    ));
    let start = Instant::now();
    let r = get(p.addr, "/");
    let elapsed = start.elapsed();
    assert_eq!(r.status, 504);
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(3),
        "a 1 s read timeout answered after {elapsed:?}"
    );
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let mock = Mock::start(|_| Action::slow("finished", Duration::from_millis(1500)));
    let mut p = Proxy::spawn(&config(&mock.addr.to_string(), ""));
    let addr = p.addr;
    let client = thread::spawn(move || get(addr, "/slow"));
    // Wait until the request is at the upstream, then ask the proxy to stop.
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.hits() == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(mock.hits(), 1);
    p.signal("TERM");
    // No new connections are accepted while draining (the listeners close within a moment).
    let closing = Instant::now() + Duration::from_secs(3);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
        assert!(
            Instant::now() < closing,
            "still accepting 3 s after SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let r = client.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "finished");
    let status = p
        .wait_exit(Duration::from_secs(5))
        .expect("exited after draining");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigterm_with_nothing_in_flight_exits_at_once() {
    let mut p = Proxy::spawn(&config("127.0.0.1:9", "shutdown_grace: 30s\n"));
    let start = Instant::now();
    p.signal("TERM");
    let status = p.wait_exit(Duration::from_secs(5)).expect("exited");
    assert_eq!(status.code(), Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_graceful_stop_of_an_in_process_server_finishes_the_request_in_flight_then_returns() {
    let mock = Mock::start(|_| Action::slow("finished", Duration::from_millis(800)));
    let mut p = Proxy::start(&config(&mock.addr.to_string(), "shutdown_grace: 20s\n"));
    let addr = p.addr;
    let client = thread::spawn(move || get(addr, "/slow"));
    support::wait_until(
        "the request at the upstream",
        Duration::from_secs(5),
        || mock.hits() == 1,
    );
    let asked = Instant::now();
    // `Handle::stop(Graceful)` and `Handle::wait`: the server returns once the request is
    // answered, not after the 20 s grace period.
    assert!(p.stop_gracefully(Duration::from_secs(10)), "still running");
    let took = asked.elapsed();
    let r = client.join().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "finished"));
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
}
