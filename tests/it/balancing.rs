//! Load balancing as a client sees it: which server answered.

use crate::support;

use std::sync::Arc;
use std::thread;
use std::time::Duration;
use support::{Action, Mock, Proxy, get, tally};

fn pool_config(balance: &str, servers: &[(&Mock, u32)]) -> String {
    let list: String = servers
        .iter()
        .map(|(m, w)| format!("      - addr: \"{}\"\n        weight: {w}\n", m.addr))
        .collect();
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 2\naccess_log: off\nupstreams:\n  app:\n    balance: {balance}\n    servers:\n{list}"
    )
}

#[test]
fn weighted_least_conn_splits_sequential_traffic_3_3_2() {
    let (a, b, c) = (Mock::named("a"), Mock::named("b"), Mock::named("c"));
    let proxy = Proxy::start(&pool_config("least_conn", &[(&a, 3), (&b, 3), (&c, 2)]));
    let counts = tally((0..800).map(|_| get(proxy.addr, "/").text()));
    for (name, expected) in [("a", 0.375), ("b", 0.375), ("c", 0.25)] {
        let share = counts.get(name).copied().unwrap_or(0) as f64 / 800.0;
        assert!(
            (share - expected).abs() <= 0.02,
            "{name}: share {share:.3}, expected {expected} ± 0.02 ({counts:?})"
        );
    }
    // The live counts agree, and nothing is left in flight.
    let status = proxy.status_json();
    let servers = status["upstreams"]["app"]["servers"].as_array().unwrap();
    let requests: Vec<u64> = servers
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .collect();
    assert_eq!(requests.iter().sum::<u64>(), 800);
    assert!(servers.iter().all(|s| s["active"] == 0));
}

/// 8 clients, one server answering in 500 ms and two at once: least_conn sends the slow server
/// only what its in-flight count allows, round_robin gives it a third of everything.
fn slow_server_share(balance: &str) -> f64 {
    let slow = Mock::start(|_| Action::slow("slow", Duration::from_millis(500)));
    let (f1, f2) = (Mock::named("fast"), Mock::named("fast"));
    let proxy = Arc::new(Proxy::start(&pool_config(
        balance,
        &[(&slow, 1), (&f1, 1), (&f2, 1)],
    )));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let proxy = Arc::clone(&proxy);
            thread::spawn(move || {
                (0..30)
                    .map(|_| get(proxy.addr, "/").text())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let bodies: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(bodies.len(), 240);
    let counts = tally(bodies);
    counts.get("slow").copied().unwrap_or(0) as f64 / 240.0
}

#[test]
fn least_conn_keeps_traffic_off_a_slow_server_where_round_robin_does_not() {
    let lc = slow_server_share("least_conn");
    let rr = slow_server_share("round_robin");
    eprintln!(
        "slow server share: least_conn {:.1}%, round_robin {:.1}%",
        lc * 100.0,
        rr * 100.0
    );
    assert!(
        lc < 0.12,
        "least_conn sent {:.1}% to the slow server",
        lc * 100.0
    );
    assert!(
        (rr - 1.0 / 3.0).abs() < 0.04,
        "round_robin sent {:.1}% to the slow server",
        rr * 100.0
    );
}

#[test]
fn hash_on_a_header_is_sticky_and_backup_takes_over() {
    let (a, b, c) = (Mock::named("a"), Mock::named("b"), Mock::named("backup"));
    let config = format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\naccess_log: off\nupstreams:\n  app:\n    balance: hash\n    hash_key: \"header:X-User\"\n    servers:\n      - addr: \"{}\"\n      - addr: \"{}\"\n      - addr: \"{}\"\n        backup: true\n",
        a.addr, b.addr, c.addr
    );
    let proxy = Proxy::start(&config);
    for user in ["alice", "bob", "carol", "dave", "erin"] {
        let first = support::request(proxy.addr, "GET", "/", &[("X-User", user)], b"").text();
        assert_ne!(first, "backup");
        for _ in 0..5 {
            let again = support::request(proxy.addr, "GET", "/", &[("X-User", user)], b"").text();
            assert_eq!(again, first, "user {user} moved");
        }
    }
}
