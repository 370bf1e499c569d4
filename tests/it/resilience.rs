//! Retries, circuit breakers and health checks, against upstreams that refuse, close, hang,
//! answer 5xx or answer slowly.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use support::{Action, Mock, Proxy, get, refused_addr, request};

fn pool(servers: &[String], extra: &str) -> String {
    let list: String = servers
        .iter()
        .map(|a| format!("      - addr: \"{a}\"\n"))
        .collect();
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 2\naccess_log: off\nupstreams:\n  app:\n    servers:\n{list}{extra}"
    )
}

#[test]
fn a_refused_server_is_skipped_for_every_method() {
    let good = Mock::named("good");
    let p = Proxy::start(&pool(
        &[refused_addr().to_string(), good.addr.to_string()],
        "",
    ));
    for i in 0..20 {
        let r = get(p.addr, &format!("/get/{i}"));
        assert_eq!((r.status, r.text()), (200, "good".to_string()));
    }
    // A connect failure sent nothing, so even a POST goes to the next server.
    for _ in 0..4 {
        let r = request(p.addr, "POST", "/post", &[], b"payload");
        assert_eq!(r.status, 200);
    }
    assert_eq!(good.hits(), 24);
}

#[test]
fn http_500_is_retried_only_when_listed() {
    let bad = Mock::start(|_| Action::status(500));
    let good = Mock::named("good");
    let servers = [bad.addr.to_string(), good.addr.to_string()];
    let listed = Proxy::start(&pool(
        &servers,
        "    retry:\n      on: [error, timeout, http_500]\n",
    ));
    for _ in 0..20 {
        let r = get(listed.addr, "/");
        assert_eq!((r.status, r.text()), (200, "good".to_string()));
    }
    assert!(bad.hits() > 0, "the failing server was never tried");

    let plain = Proxy::start(&pool(&servers, ""));
    let statuses: Vec<u16> = (0..20).map(|_| get(plain.addr, "/").status).collect();
    let passed_through = statuses.iter().filter(|s| **s == 500).count();
    assert!(passed_through >= 5, "{statuses:?}");
    // The 500 reaches the client as the server sent it.
    let r = (0..10)
        .map(|_| get(plain.addr, "/"))
        .find(|r| r.status == 500)
        .expect("a 500");
    assert_eq!(r.text(), "status 500");
}

#[test]
fn a_post_that_reached_a_server_is_not_replayed_unless_allowed() {
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let a = Mock::start(|_| Action::Close);
    let b = Mock::start(|_| Action::Close);
    let servers = [a.addr.to_string(), b.addr.to_string()];

    let strict = Proxy::start(&pool(&servers, ""));
    let r = request(strict.addr, "POST", "/orders", &[], &body);
    assert_eq!(r.status, 502);
    assert_eq!(
        a.hits() + b.hits(),
        1,
        "the POST reached more than one server"
    );

    let (a_before, b_before) = (a.hits(), b.hits());
    let lenient = Proxy::start(&pool(
        &servers,
        "    retry:\n      on: [error, timeout, non_idempotent]\n      tries: 2\n",
    ));
    let r = request(lenient.addr, "POST", "/orders", &[], &body);
    assert_eq!(r.status, 502);
    assert_eq!(a.hits() - a_before, 1);
    assert_eq!(b.hits() - b_before, 1);
    // The replay carries the identical body.
    let bodies: Vec<Vec<u8>> = a
        .seen()
        .into_iter()
        .chain(b.seen())
        .map(|s| s.body)
        .collect();
    assert!(
        bodies.iter().all(|x| *x == body),
        "a replay changed the body"
    );
}

#[test]
fn retry_timeout_bounds_the_total_time_across_hanging_servers() {
    let hangs: Vec<Mock> = (0..3)
        .map(|_| Mock::start(|_| Action::Hang(Duration::from_secs(10))))
        .collect();
    let servers: Vec<String> = hangs.iter().map(|m| m.addr.to_string()).collect();
    let p = Proxy::start(&pool(
        &servers,
        "    timeouts: {read: 2s}\n    retry:\n      tries: 3\n      timeout: 2500ms\n",
    ));
    let start = Instant::now();
    let r = get(p.addr, "/");
    let elapsed = start.elapsed();
    assert_eq!(r.status, 504);
    // Three tries of 2 s would be 6 s.
    assert!(elapsed < Duration::from_millis(3500), "took {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(2400), "took {elapsed:?}");
    let tried = hangs.iter().filter(|m| m.hits() > 0).count();
    assert_eq!(tried, 2, "the budget allowed a second server, not a third");
}

/// A server whose answers the test switches: 503 or 200, after an optional delay.
struct Flaky {
    mock: Mock,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
}

fn flaky() -> Flaky {
    let status = Arc::new(AtomicU16::new(503));
    let delay_ms = Arc::new(AtomicU64::new(0));
    let (s, d) = (status.clone(), delay_ms.clone());
    let mock = Mock::start(move |_| Action::Respond {
        status: s.load(Ordering::SeqCst),
        headers: vec![],
        body: b"flaky".to_vec(),
        delay: Duration::from_millis(d.load(Ordering::SeqCst)),
    });
    Flaky {
        mock,
        status,
        delay_ms,
    }
}

fn breaker_state(p: &Proxy, server: usize) -> String {
    p.status_json()["upstreams"]["app"]["servers"][server]["breaker"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Wait (at most 10 s) until the server's breaker reports `want`.
fn wait_breaker(p: &Proxy, server: usize, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while breaker_state(p, server) != want {
        assert!(Instant::now() < deadline, "breaker never became {want}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The breaker seen from outside. Its timing (open periods, doubling, the cap) is tested on an
/// injected clock in `upstream::breaker` and `upstream::pool`; here each step waits for the
/// state `/status` reports, not for a wall-clock window.
#[test]
fn the_breaker_opens_after_n_failures_and_probes_back_gently() {
    let f = flaky();
    let good = Mock::named("good");
    let p = Arc::new(Proxy::start(&pool(
        &[f.mock.addr.to_string(), good.addr.to_string()],
        "    circuit_breaker:\n      failures: 3\n      open_for: 1s\n      max_open_for: 10s\n      half_open_requests: 1\n",
    )));

    // Sequential requests alternate; the flaky server's third 503 opens its breaker.
    support::wait_until("three failures", Duration::from_secs(10), || {
        assert_eq!(
            breaker_state(&p, 0),
            "closed",
            "opened before the third failure"
        );
        get(p.addr, "/");
        f.mock.hits() >= 3
    });
    assert_eq!(breaker_state(&p, 0), "open");
    // Open: requests go to the other server only (ten quick requests, well within 1 s).
    for _ in 0..10 {
        assert_eq!(get(p.addr, "/").text(), "good");
    }
    assert_eq!(f.mock.hits(), 3);

    // Half-open: slow trials under concurrent clients; at most one trial at a time.
    wait_breaker(&p, 0, "half_open");
    f.delay_ms.store(400, Ordering::SeqCst);
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let p = Arc::clone(&p);
            thread::spawn(move || (0..4).map(|_| get(p.addr, "/").status).collect::<Vec<_>>())
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(
        f.mock.hits(),
        4,
        "half-open let more than one trial through"
    );
    // The trial failed: open again, and again no traffic while open.
    assert_eq!(breaker_state(&p, 0), "open");
    f.delay_ms.store(0, Ordering::SeqCst);
    f.status.store(200, Ordering::SeqCst);
    for _ in 0..10 {
        get(p.addr, "/");
    }
    assert_eq!(f.mock.hits(), 4, "traffic during the re-open period");
    // When it half-opens, a successful trial closes it and traffic returns.
    wait_breaker(&p, 0, "half_open");
    for _ in 0..10 {
        get(p.addr, "/");
    }
    assert_eq!(breaker_state(&p, 0), "closed");
    assert!(
        f.mock.hits() >= 8,
        "closed breaker but no traffic: {}",
        f.mock.hits()
    );
}

#[test]
fn an_open_breaker_on_the_only_server_answers_503_at_once_with_retry_after() {
    let bad = Mock::start(|_| Action::status(502));
    let p = Proxy::start(&pool(
        &[bad.addr.to_string()],
        "    circuit_breaker: {failures: 2, open_for: 30s}\n",
    ));
    assert_eq!(get(p.addr, "/").status, 502);
    assert_eq!(get(p.addr, "/").status, 502);
    // The breaker is open. The outage prober (once a second) may find the server accepting
    // and end the open period, making the next request a half-open trial (502 again, and the
    // breaker re-opens): so one of the next two requests is the fast 503.
    let r = (0..2)
        .map(|_| {
            let start = Instant::now();
            (get(p.addr, "/"), start.elapsed())
        })
        .find(|(r, _)| r.status == 503)
        .map(|(r, took)| {
            assert!(took < Duration::from_millis(500), "{took:?}");
            r
        })
        .expect("a 503 while the breaker is open");
    let retry_after: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    // Either the breaker is still in its first open period (30 s, the server contacted twice),
    // or a trial the prober allowed failed and it re-opened for twice as long (60 s, three).
    let (hits, want) = match bad.hits() {
        2 => (2, 29..=30),
        3 => (3, 59..=60),
        n => panic!("the server was contacted {n} times while its breaker was open"),
    };
    assert!(
        want.contains(&retry_after),
        "Retry-After {retry_after} after {hits} contacts"
    );
}

#[test]
fn health_checks_take_a_server_out_and_bring_it_back() {
    let health = Arc::new(AtomicU16::new(200));
    let h = health.clone();
    let a = Mock::start(move |req| {
        if req.target == "/healthz" {
            Action::status(h.load(Ordering::SeqCst))
        } else {
            Action::ok("a")
        }
    });
    let b = Mock::start(|req| {
        if req.target == "/healthz" {
            Action::status(200)
        } else {
            Action::ok("b")
        }
    });
    let p = Proxy::start(&pool(
        &[a.addr.to_string(), b.addr.to_string()],
        "    health_check:\n      path: /healthz\n      interval: 200ms\n      timeout: 500ms\n      unhealthy_after: 3\n      healthy_after: 2\n",
    ));
    let healthy = |p: &Proxy| {
        p.status_json()["upstreams"]["app"]["servers"][0]["healthy"]
            .as_bool()
            .unwrap()
    };
    let probes = || a.hits_on("/healthz");
    // Passing probes keep it healthy.
    let deadline = Instant::now() + Duration::from_secs(5);
    while probes() < 2 {
        assert!(Instant::now() < deadline, "no health probe within 5 s");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(healthy(&p));

    health.store(500, Ordering::SeqCst);
    let failing_from = probes();
    let deadline = Instant::now() + Duration::from_secs(5);
    while healthy(&p) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(!healthy(&p), "never marked unhealthy");
    let failed = probes() - failing_from;
    assert!(
        (3..=4).contains(&failed),
        "unhealthy after {failed} failed probes"
    );
    let before = a.hits_on("/x");
    for _ in 0..10 {
        assert_eq!(get(p.addr, "/x").text(), "b");
    }
    assert_eq!(a.hits_on("/x"), before);

    health.store(200, Ordering::SeqCst);
    let passing_from = probes();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !healthy(&p) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(healthy(&p), "never healthy again");
    let passed = probes() - passing_from;
    assert!(
        (2..=3).contains(&passed),
        "healthy after {passed} passing probes"
    );
    let bodies: Vec<String> = (0..10).map(|_| get(p.addr, "/x").text()).collect();
    assert!(bodies.iter().any(|b| b == "a"), "{bodies:?}");
}

#[test]
fn killing_one_of_three_servers_under_load_fails_no_request() {
    let mocks: Vec<Mock> = (0..3).map(|i| Mock::named(&format!("s{i}"))).collect();
    let servers: Vec<String> = mocks.iter().map(|m| m.addr.to_string()).collect();
    let p = Arc::new(Proxy::spawn(&pool(&servers, "")));
    let stop_at = Instant::now() + Duration::from_millis(2000);
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let p = Arc::clone(&p);
            thread::spawn(move || {
                let mut statuses = Vec::new();
                while Instant::now() < stop_at {
                    statuses.push(get(p.addr, "/").status);
                }
                statuses
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while mocks[1].hits() < 20 {
        assert!(
            Instant::now() < deadline,
            "the server to kill got no traffic before"
        );
        thread::sleep(Duration::from_millis(5));
    }
    mocks[1].kill();
    let at_kill = mocks[1].hits();
    let statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let failed = statuses.iter().filter(|s| **s != 200).count();
    if failed > 0 {
        let bad: Vec<_> = statuses.iter().filter(|s| **s != 200).collect();
        let errs: Vec<String> = p
            .stderr()
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            .map(String::from)
            .collect();
        eprintln!("failed statuses {bad:?}\n{}", errs.join("\n"));
    }
    assert!(statuses.len() > 100, "only {} requests", statuses.len());
    assert_eq!(failed, 0, "{failed} of {} requests failed", statuses.len());
    // A request a connection thread had already read when the kill came may still be counted.
    assert!(
        mocks[1].hits() <= at_kill + 3,
        "the killed server kept getting requests: {} after the kill, {at_kill} before",
        mocks[1].hits()
    );
}

/// SPEC §3 total outage, with default settings (breakers open for 30 s): the pool notices
/// within about a second that servers are back.
#[test]
fn after_a_total_outage_the_first_200_comes_within_5_s_of_the_servers_return() {
    let mocks: Vec<Mock> = (0..3).map(|i| Mock::named(&format!("s{i}"))).collect();
    let addrs: Vec<_> = mocks.iter().map(|m| m.addr).collect();
    let p = Proxy::start(&pool(
        &addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "",
    ));
    assert_eq!(get(p.addr, "/").status, 200);
    for m in &mocks {
        m.kill();
    }
    // Down: requests fail until every breaker is open, then get 503 at once.
    support::wait_until("every breaker open", Duration::from_secs(10), || {
        get(p.addr, "/");
        (0..3).all(|i| breaker_state(&p, i) == "open")
    });
    assert_eq!(get(p.addr, "/").status, 503);
    // Back (on the same addresses).
    let _back: Vec<Mock> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| Mock::start_on(*a, move |_| Action::ok(&format!("s{i}"))))
        .collect();
    let returned = Instant::now();
    support::wait_until(
        "a 200 after the servers' return",
        Duration::from_secs(8),
        || {
            thread::sleep(Duration::from_millis(50)); // a client's request rate, not a wait
            get(p.addr, "/").status == 200
        },
    );
    let took = returned.elapsed();
    eprintln!("first 200 {took:?} after the servers came back");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The other servers follow.
    support::wait_until("every breaker closed", Duration::from_secs(8), || {
        get(p.addr, "/");
        (0..3).all(|i| breaker_state(&p, i) == "closed")
    });
}

#[test]
fn a_kept_alive_connection_the_server_closed_is_replayed_once_without_counting_a_failure() {
    // The first request to arrive on a kept-alive connection is read and met with a close,
    // as a server does whose keep-alive timer fired as the request crossed. With `tries: 1`
    // only the free replay on a fresh connection can answer it, and the server must not be
    // charged an error for it. (Whether a given request reuses a connection is pingora's
    // timing: the requests go on until one has.)
    let closed = Arc::new(AtomicU64::new(0));
    let c = closed.clone();
    let server = Mock::start(move |s| {
        let stale = s.method == "POST" || s.on_connection == 2;
        if stale && c.fetch_add(1, Ordering::SeqCst) == 0 || s.method == "POST" {
            Action::Close
        } else {
            Action::ok("fresh")
        }
    });
    let p = Proxy::start(&pool(
        &[server.addr.to_string()],
        "    retry: {tries: 1}\n    circuit_breaker: {failures: 1, open_for: 60s}\n",
    ));
    let mut sent = 0;
    while closed.load(Ordering::SeqCst) == 0 && sent < 50 {
        let r = get(p.addr, &format!("/{sent}"));
        assert_eq!(
            (r.status, r.text()),
            (200, "fresh".to_string()),
            "request {sent}"
        );
        sent += 1;
    }
    assert_eq!(
        closed.load(Ordering::SeqCst),
        1,
        "no request met a kept-alive connection"
    );
    assert_eq!(
        server.hits(),
        sent + 1,
        "the closed request was replayed once"
    );
    let errors = support::metric(
        &p,
        &format!(
            "switchyard_upstream_attempts_total{{outcome=\"error\",server=\"{}\",upstream=\"app\"}}",
            server.addr
        ),
    );
    assert_eq!(errors, 0.0, "the stale connection was counted as a failure");
    // A POST is never replayed, even for free: it may have been acted on.
    let r = request(p.addr, "POST", "/order", &[], b"x");
    assert_eq!(r.status, 502);
    let posts = server.seen().iter().filter(|s| s.method == "POST").count();
    assert_eq!(posts, 1, "the POST was sent twice");
}
