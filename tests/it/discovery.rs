//! Service discovery (SPEC §7) against a DNS server on loopback started by each test: pools
//! follow A and SRV answers, keep server state across changes, survive a resolver going away,
//! and empty on NXDOMAIN.

use crate::support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use support::dns::DnsServer;
use support::{Mock, Proxy, get, metric, wait_until};

/// A port free on both 127.0.0.2 and 127.0.0.3, and a mock named after its address on each.
fn two_mocks() -> (u16, Mock, Mock) {
    for _ in 0..20 {
        let port = TcpListener::bind("127.0.0.2:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if TcpListener::bind(("127.0.0.3", port)).is_ok() {
            let a: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
            let b: SocketAddr = format!("127.0.0.3:{port}").parse().unwrap();
            let ma = Mock::start_on(a, |_| support::Action::ok("two"));
            let mb = Mock::start_on(b, |_| support::Action::ok("three"));
            return (port, ma, mb);
        }
    }
    panic!("no port free on both addresses");
}

fn servers(p: &Proxy, pool: &str) -> Vec<serde_json::Value> {
    p.status_json()["upstreams"][pool]["servers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn addrs(p: &Proxy, pool: &str) -> Vec<String> {
    let mut a: Vec<String> = servers(p, pool)
        .iter()
        .map(|s| s["addr"].as_str().unwrap().to_string())
        .collect();
    a.sort();
    a
}

fn config(dns: &DnsServer, entry: &str, extra: &str) -> String {
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\ndns: {{servers: [\"{}\"]}}\nupstreams:\n  app:\n    servers:\n      - {entry}\n{extra}",
        dns.addr
    )
}

#[test]
fn a_pool_follows_its_name_and_servers_that_stay_keep_their_state() {
    let dns = DnsServer::start();
    let (port, two, three) = two_mocks();
    dns.set_a("app.test", &["127.0.0.2"]);
    let p = Proxy::spawn(&config(
        &dns,
        &format!("{{addr: \"app.test:{port}\", resolve: 500ms, weight: 2}}"),
        "",
    ));
    assert_eq!(addrs(&p, "app"), vec![format!("127.0.0.2:{port}")]);
    let s = &servers(&p, "app")[0];
    assert_eq!(s["from"], format!("app.test:{port}"));
    assert_eq!(s["weight"], 2);
    for _ in 0..5 {
        assert_eq!(get(p.addr, "/").text(), "two");
    }

    // Scale out: followed within two intervals.
    dns.set_a("app.test", &["127.0.0.2", "127.0.0.3"]);
    wait_until("the second address joins", Duration::from_secs(3), || {
        addrs(&p, "app").len() == 2
    });
    let kept = servers(&p, "app")
        .into_iter()
        .find(|s| s["addr"] == format!("127.0.0.2:{port}"))
        .unwrap();
    assert!(
        kept["requests"].as_u64().unwrap() >= 5,
        "the server that stayed kept its counters: {kept}"
    );
    let bodies: Vec<String> = (0..20).map(|_| get(p.addr, "/").text()).collect();
    assert!(bodies.contains(&"two".to_string()) && bodies.contains(&"three".to_string()));
    assert_eq!(
        metric(&p, "switchyard_upstream_servers{upstream=\"app\"}"),
        2.0
    );

    // The resolver goes away: the last good set stays and keeps serving.
    dns.set_silent(true);
    wait_until("failed lookups are counted", Duration::from_secs(8), || {
        metric(
            &p,
            &format!(
                "switchyard_dns_resolutions_total{{name=\"app.test:{port}\",result=\"failure\",upstream=\"app\"}}"
            ),
        ) >= 1.0
    });
    assert_eq!(addrs(&p, "app").len(), 2);
    assert_eq!(get(p.addr, "/").status, 200);
    assert!(
        p.stderr().contains("keeping the last good set"),
        "{}",
        p.stderr()
    );

    // NXDOMAIN: the entry empties, requests get 503 until the name is back.
    dns.set_silent(false);
    dns.remove("app.test");
    wait_until("the entry empties", Duration::from_secs(5), || {
        addrs(&p, "app").is_empty()
    });
    assert_eq!(get(p.addr, "/").status, 503);
    dns.set_a("app.test", &["127.0.0.3"]);
    wait_until("the name is back", Duration::from_secs(5), || {
        get(p.addr, "/").status == 200
    });
    assert_eq!(get(p.addr, "/").text(), "three");
    drop((two, three));
}

#[test]
fn srv_records_give_targets_ports_and_weights() {
    let dns = DnsServer::start();
    let (port, two, three) = two_mocks();
    dns.set_a("a.test", &["127.0.0.2"]);
    dns.set_a("b.test", &["127.0.0.3"]);
    dns.set_srv(
        "_http._tcp.app.test",
        &[(10, 3, port, "a.test"), (10, 1, port, "b.test")],
    );
    let p = Proxy::start(&config(
        &dns,
        "{srv: \"_http._tcp.app.test\", resolve: 1s}",
        "    balance: round_robin\n",
    ));
    let mut by_addr: Vec<(String, u64)> = servers(&p, "app")
        .iter()
        .map(|s| {
            (
                s["addr"].as_str().unwrap().to_string(),
                s["weight"].as_u64().unwrap(),
            )
        })
        .collect();
    by_addr.sort();
    assert_eq!(
        by_addr,
        vec![
            (format!("127.0.0.2:{port}"), 3),
            (format!("127.0.0.3:{port}"), 1)
        ]
    );
    let bodies: Vec<String> = (0..40).map(|_| get(p.addr, "/").text()).collect();
    let two_hits = bodies.iter().filter(|b| *b == "two").count();
    assert_eq!(two_hits, 30, "weights 3:1 over 40 round-robin requests");
    drop((two, three));
}

#[test]
fn a_name_that_does_not_resolve_at_start_is_served_once_it_does() {
    let dns = DnsServer::start();
    let (port, two, three) = two_mocks();
    let p = Proxy::start(&config(
        &dns,
        &format!("{{addr: \"later.test:{port}\", resolve: 500ms}}"),
        "",
    ));
    assert!(addrs(&p, "app").is_empty());
    assert_eq!(get(p.addr, "/").status, 503);
    dns.set_a("later.test", &["127.0.0.2"]);
    wait_until("the name resolves", Duration::from_secs(5), || {
        get(p.addr, "/").status == 200
    });
    let empty = format!(
        "switchyard_dns_resolutions_total{{name=\"later.test:{port}\",result=\"empty\",upstream=\"app\"}}"
    );
    assert!(metric(&p, &empty) >= 1.0, "NXDOMAIN counted as empty");
    drop((two, three));
}

#[test]
fn an_empty_pool_answers_503_with_every_balancer() {
    let dns = DnsServer::start();
    for balance in [
        "least_conn",
        "round_robin",
        "random",
        "hash\n    hash_key: client_ip",
    ] {
        let p = Proxy::start(&config(
            &dns,
            "{addr: \"nothing.test:80\", resolve: 1s}",
            &format!("    balance: {balance}\n"),
        ));
        assert_eq!(get(p.addr, "/").status, 503, "{balance}");
        assert_eq!(
            get(p.admin, "/healthz").status,
            200,
            "{balance}: still serving"
        );
    }
}

#[test]
fn dns_entries_are_checked_at_load() {
    let err = support::check_errors(
        "dns.yaml",
        "listen: [\"127.0.0.1:8080\"]\ndns: {servers: [\"not-an-ip\"]}\nupstreams:\n  app:\n    servers:\n      - {srv: \"_http._tcp.app\"}\n      - {addr: \"a:1\", srv: \"_x._tcp.b\", resolve: 1s}\n      - {srv: \"_y._tcp.c\", resolve: 1s, weight: 3}\n      - {addr: \"d\", resolve: 1s}\n      - {addr: \"e:80\", resolve: 10ms}\n",
    );
    for expected in [
        "dns.servers[0]: `not-an-ip` is not an IP address",
        "servers[0].srv: `srv` entries need `resolve`",
        "servers[1].srv: a server entry has `addr` or `srv`, not both",
        "servers[2].weight: an `srv` entry's weights come from its records",
        "servers[3].addr: `d` is not host:port",
        "servers[4].resolve: at least 500ms",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}
