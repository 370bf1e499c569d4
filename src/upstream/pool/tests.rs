//! `Pool::choose` and `Pool::record` on a fake clock: no sockets, no pingora, no metrics.

use super::*;
use crate::config::load_str_offline;

/// A pool from the `servers:` and other keys of one upstream, written as YAML flow mappings.
fn pool(body: &str) -> Pool {
    let text = format!("listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {{{body}}}\n");
    let config = load_str_offline(&text).expect("valid test config");
    Pool::new(&config.upstreams[0], None, |_| None)
}

fn servers(weights: &[u32]) -> String {
    let list: Vec<String> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| format!("{{addr: \"127.0.0.1:{}\", weight: {w}}}", 3001 + i))
        .collect();
    format!("servers: [{}]", list.join(", "))
}

fn chosen(c: Choice) -> Attempt {
    match c {
        Choice::Server(a) => a,
        Choice::NoServer { retry_after } => panic!("no server (retry after {retry_after:?})"),
    }
}

fn pick(p: &Pool, now: Instant) -> Attempt {
    chosen(p.choose(now, None, &Tried::default()))
}

/// Fail `n` attempts in a row on whatever server is chosen.
fn fail_n(p: &Pool, now: Instant, n: usize) {
    for _ in 0..n {
        let mut a = pick(p, now);
        p.record(&mut a, Outcome::Error, now);
    }
}

#[test]
fn least_conn_sends_each_request_to_the_least_loaded_server() {
    let p = pool(&servers(&[1, 1, 2]));
    let t = Instant::now();
    // Held attempts: loads go 0/0/0 -> the pick always takes the least active/weight.
    let held: Vec<Attempt> = (0..8).map(|_| pick(&p, t)).collect();
    let active: Vec<u32> = p.servers.iter().map(|s| s.stats.in_flight()).collect();
    assert_eq!(active, vec![2, 2, 4]);
    drop(held);
    assert!(p.servers.iter().all(|s| s.stats.in_flight() == 0));
    // Sequential, released each time: the 1:1:2 weight ratio.
    let mut counts = [0; 3];
    for _ in 0..400 {
        counts[pick(&p, t).server()] += 1;
    }
    assert_eq!(counts, [100, 100, 200]);
}

#[test]
fn backup_servers_only_when_no_primary_is_eligible() {
    let p = pool(
        "servers: [{addr: \"127.0.0.1:3001\"}, {addr: \"127.0.0.1:3002\", backup: true}], circuit_breaker: {failures: 1}",
    );
    let t = Instant::now();
    for _ in 0..5 {
        assert_eq!(pick(&p, t).server(), 0);
    }
    // The primary's breaker opens after one failure: the backup takes over.
    fail_n(&p, t, 1);
    assert_eq!(p.servers[0].stats.breaker.state(t), BreakerState::Open);
    assert_eq!(pick(&p, t).server(), 1);
}

#[test]
fn max_conns_is_a_hard_limit() {
    let p = pool(
        "servers: [{addr: \"127.0.0.1:3001\", weight: 10, max_conns: 2}, {addr: \"127.0.0.1:3002\"}]",
    );
    let t = Instant::now();
    let held: Vec<Attempt> = (0..5).map(|_| pick(&p, t)).collect();
    assert_eq!(p.servers[0].stats.in_flight(), 2);
    assert_eq!(p.servers[1].stats.in_flight(), 3);
    drop(held);
}

#[test]
fn an_open_breaker_gets_nothing_then_half_opens_for_one_trial() {
    let p = pool(&format!(
        "{}, circuit_breaker: {{failures: 3, open_for: 10s, half_open_requests: 1}}",
        servers(&[1])
    ));
    let t = Instant::now();
    fail_n(&p, t, 3);
    let s = &p.servers[0].stats;
    assert_eq!(s.breaker.state(t), BreakerState::Open);
    assert_eq!(s.transitions(BreakerState::Open), 1);
    // Open: no server, and the answer says when to come back.
    match p.choose(t + Duration::from_secs(4), None, &Tried::default()) {
        Choice::NoServer { retry_after } => assert_eq!(retry_after, Duration::from_secs(6)),
        Choice::Server(_) => panic!("an open breaker let a request through"),
    }
    // After open_for: one trial at a time.
    let later = t + Duration::from_secs(10);
    let mut trial = pick(&p, later);
    assert_eq!(s.transitions(BreakerState::HalfOpen), 1);
    assert!(matches!(
        p.choose(later, None, &Tried::default()),
        Choice::NoServer { .. }
    ));
    // The trial succeeds: closed, and traffic flows again.
    assert!(p.record(&mut trial, Outcome::Success, later));
    assert!(
        !p.record(&mut trial, Outcome::Error, later),
        "recorded once"
    );
    assert_eq!(s.breaker.state(later), BreakerState::Closed);
    assert_eq!(s.transitions(BreakerState::Closed), 1);
    drop(trial);
    let _a = pick(&p, later);
    let _b = pick(&p, later);
}

#[test]
fn a_trial_dropped_without_an_outcome_frees_its_slot() {
    let p = pool(&format!(
        "{}, circuit_breaker: {{failures: 1, open_for: 1s}}",
        servers(&[1])
    ));
    let t = Instant::now();
    fail_n(&p, t, 1);
    let later = t + Duration::from_secs(1);
    let trial = pick(&p, later);
    assert!(matches!(
        p.choose(later, None, &Tried::default()),
        Choice::NoServer { .. }
    ));
    drop(trial); // the client went away
    let _again = pick(&p, later);
}

#[test]
fn a_request_tries_every_server_once_before_any_twice() {
    let p = pool(&servers(&[5, 1, 1]));
    let t = Instant::now();
    let mut tried = Tried::default();
    let mut order = Vec::new();
    for _ in 0..3 {
        let a = chosen(p.choose(t, None, &tried));
        tried.insert(a.server());
        order.push(a.server());
    }
    order.sort_unstable();
    assert_eq!(order, vec![0, 1, 2]);
    // Every server tried: they are eligible again rather than failing the request.
    let _fourth = chosen(p.choose(t, None, &tried));
}

#[test]
fn outcomes_are_counted_per_server_and_class() {
    let p = pool(&servers(&[1]));
    let t = Instant::now();
    for o in [Outcome::Success, Outcome::Status(503), Outcome::Timeout] {
        let mut a = pick(&p, t);
        p.record(&mut a, o, t);
    }
    let s = &p.servers[0].stats;
    assert_eq!(s.outcomes(), [1, 0, 1, 0, 1, 0, 0]);
    assert_eq!((s.requests(), s.failures()), (3, 2));
}

#[test]
fn the_retry_budget_caps_retries_in_flight() {
    let stats = Arc::new(PoolStats::default());
    // 10 requests in flight at 20 %: the floor of 3 concurrent retries applies.
    let mut reqs: Vec<InPool> = (0..10).map(|_| stats.begin_request()).collect();
    let allowed = reqs
        .iter_mut()
        .filter_map(|r| r.try_retry(20, Outcome::Error).then_some(()))
        .count();
    assert_eq!(allowed, 3);
    assert_eq!(stats.retries.get(Outcome::Error), 3);
    assert_eq!(stats.retries_over_budget(), 7);
    // A retrying request keeps its place; when retries end, places free up.
    assert!(reqs[0].try_retry(20, Outcome::Error));
    reqs.truncate(1);
    let mut fresh = stats.begin_request();
    assert!(fresh.try_retry(20, Outcome::Timeout));
    assert_eq!(stats.requests_in_flight(), 2);
}

#[test]
fn budget_has_a_floor_of_three_and_scales_with_load() {
    assert!(budget_allows(20, 0, 0));
    assert!(budget_allows(20, 2, 1));
    assert!(!budget_allows(20, 3, 1));
    assert!(budget_allows(20, 19, 100));
    assert!(!budget_allows(20, 20, 100));
    assert!(!budget_allows(0, 3, 1000));
    assert!(budget_allows(100, 1_000_000, 1));
}

#[test]
fn a_reload_keeps_server_state_and_an_unchanged_balancer() {
    let text = "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {balance: hash, hash_key: path, servers: [{addr: \"127.0.0.1:1\"}, {addr: \"127.0.0.1:2\"}]}\n";
    let load = |t: &str| load_str_offline(t).expect("valid");
    let first_cfg = load(text);
    let first = Pool::new(&first_cfg.upstreams[0], None, |_| None);
    let carry = |old: &Pool| {
        let by_addr: std::collections::HashMap<String, Arc<ServerStats>> = old
            .servers
            .iter()
            .map(|s| (s.config.addr.clone(), Arc::clone(&s.stats)))
            .collect();
        move |addr: &str| by_addr.get(addr).cloned()
    };
    let same = Pool::new(&first_cfg.upstreams[0], Some(&first), carry(&first));
    assert!(Arc::ptr_eq(&first.balancer, &same.balancer));
    assert!(Arc::ptr_eq(&first.stats, &same.stats));
    assert!(Arc::ptr_eq(&first.servers[0].stats, &same.servers[0].stats));
    let reweighted_cfg = load(&text.replace("127.0.0.1:2\"}", "127.0.0.1:2\", weight: 2}"));
    let reweighted = Pool::new(&reweighted_cfg.upstreams[0], Some(&same), carry(&same));
    assert!(!Arc::ptr_eq(&same.balancer, &reweighted.balancer));
    assert!(Arc::ptr_eq(
        &same.servers[1].stats,
        &reweighted.servers[1].stats
    ));
}
