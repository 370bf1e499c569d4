use super::*;
use crate::config::{Endpoint, ServerConfig, Weight};
use crate::upstream::server::ServerStats;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

fn pool(weights: &[u32]) -> Vec<Server> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| Server {
            config: ServerConfig {
                addr: format!("10.0.0.{}:80", i + 1),
                socket: Endpoint::Inet(format!("10.0.0.{}:80", i + 1).parse().unwrap()),
                weight: Weight::try_new(*w).unwrap(),
                max_conns: None,
                backup: false,
                from: None,
            },
            stats: Arc::new(ServerStats::new()),
        })
        .collect()
}

/// A first attempt's pick with every server eligible (no hash key).
fn first_pick(b: &Balancer, servers: &[Server]) -> (usize, InFlightGuard) {
    b.pick(servers, PickInput::default(), &Tried::default(), &|_| true)
        .unwrap()
}

/// Sequential picks (each released before the next): counts per server.
fn sequential(b: &Balancer, servers: &[Server], n: usize) -> Vec<usize> {
    let mut counts = vec![0; servers.len()];
    for _ in 0..n {
        let (i, g) = first_pick(b, servers);
        counts[i] += 1;
        drop(g);
    }
    counts
}

#[test]
fn least_conn_idle_servers_share_in_weight_ratio() {
    for weights in [
        &[3, 3, 2][..],
        &[1, 1, 1],
        &[5, 1],
        &[1, 2, 3, 4],
        &[1000, 1],
    ] {
        let servers = pool(weights);
        let b = Balancer::new(&Balance::LeastConn, &servers);
        let total: u32 = weights.iter().sum();
        let n = total as usize * 10;
        let counts = sequential(&b, &servers, n);
        let want: Vec<usize> = weights.iter().map(|w| *w as usize * 10).collect();
        assert_eq!(counts, want, "weights {weights:?}");
    }
}

#[test]
fn smooth_wrr_interleaves() {
    let servers = pool(&[5, 1, 1]);
    let b = Balancer::new(&Balance::RoundRobin, &servers);
    let mut seq = Vec::new();
    for _ in 0..7 {
        let (i, _g) = first_pick(&b, &servers);
        seq.push(i);
    }
    // nginx's documented sequence for weights 5,1,1: a a b a c a a
    assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn least_conn_prefers_the_less_loaded_relative_to_weight() {
    let servers = pool(&[2, 1]);
    let b = Balancer::new(&Balance::LeastConn, &servers);
    // Hold 3 on the weight-2 server and 1 on the weight-1 server: loads 1.5 and 1.0.
    let _held: Vec<_> = (0..3)
        .map(|_| servers[0].stats.try_acquire(None).unwrap())
        .chain(std::iter::once(servers[1].stats.try_acquire(None).unwrap()))
        .collect();
    let (i, _g) = first_pick(&b, &servers);
    assert_eq!(i, 1);
}

#[test]
fn ties_are_broken_between_equally_loaded_servers() {
    let servers = pool(&[1, 1, 1]);
    let b = Balancer::new(&Balance::LeastConn, &servers);
    // Concurrent picks without release: each new request goes to a least-loaded server,
    // so after 9 picks every server holds exactly 3.
    let guards: Vec<_> = (0..9).map(|_| first_pick(&b, &servers)).collect();
    assert!(servers.iter().all(|s| s.stats.in_flight() == 3));
    drop(guards);
    assert!(servers.iter().all(|s| s.stats.in_flight() == 0));
}

#[test]
fn large_pools_never_pick_the_most_loaded_server() {
    let servers = pool(&[1; 100]);
    let b = Balancer::new(&Balance::LeastConn, &servers);
    // Server 7 has 5 requests in flight; every other server has none or one.
    let held: Vec<_> = (0..5)
        .map(|_| servers[7].stats.try_acquire(None).unwrap())
        .collect();
    let mut in_flight = Vec::new();
    for _ in 0..2000 {
        let (i, g) = first_pick(&b, &servers);
        assert_ne!(i, 7, "the most loaded server was picked");
        in_flight.push(g);
        if in_flight.len() == 50 {
            in_flight.clear();
        }
    }
    drop(held);
}

#[test]
fn large_pools_share_idle_traffic_in_weight_ratio() {
    // 40 servers, weights 1 and 3 alternating: the weight-3 half carries 3/4 of the load.
    let weights: Vec<u32> = (0..40).map(|i| if i % 2 == 0 { 1 } else { 3 }).collect();
    let servers = pool(&weights);
    let b = Balancer::new(&Balance::LeastConn, &servers);
    let counts = sequential(&b, &servers, 40_000);
    let heavy: usize = counts.iter().skip(1).step_by(2).sum();
    let share = heavy as f64 / 40_000.0;
    assert!((share - 0.75).abs() < 0.03, "weight-3 share {share:.3}");
    assert!(
        counts.iter().all(|&c| c > 0),
        "a server got nothing: {counts:?}"
    );
}

#[test]
fn large_pools_find_the_only_eligible_server() {
    let servers = pool(&[1; 100]);
    let b = Balancer::new(&Balance::LeastConn, &servers);
    for _ in 0..100 {
        let (i, _g) = b
            .pick(&servers, PickInput::default(), &Tried::default(), &|i| {
                i == 57
            })
            .unwrap();
        assert_eq!(i, 57);
    }
}

#[test]
fn backups_only_when_no_primary_is_eligible() {
    let mut servers = pool(&[1, 1, 1]);
    servers[2].config.backup = true;
    for balance in [
        Balance::LeastConn,
        Balance::RoundRobin,
        Balance::Random,
        Balance::Hash(HashKey::Path),
    ] {
        let b = Balancer::new(&balance, &servers);
        let input = PickInput {
            hash_key: Some(b"/x"),
        };
        for _ in 0..20 {
            let (i, _) = b
                .pick(&servers, input, &Tried::default(), &|_| true)
                .unwrap();
            assert_ne!(i, 2, "{balance:?}");
        }
        let (i, _) = b
            .pick(&servers, input, &Tried::default(), &|i| i == 2)
            .unwrap();
        assert_eq!(i, 2, "{balance:?}");
        // Nothing eligible at all.
        assert!(
            b.pick(&servers, input, &Tried::default(), &|_| false)
                .is_none()
        );
    }
}

#[test]
fn max_conns_skips_full_servers() {
    let mut servers = pool(&[10, 1]);
    servers[0].config.max_conns = NonZeroU32::new(2);
    let b = Balancer::new(&Balance::LeastConn, &servers);
    let held: Vec<_> = (0..6).map(|_| first_pick(&b, &servers)).collect();
    assert_eq!(servers[0].stats.in_flight(), 2);
    assert_eq!(servers[1].stats.in_flight(), 4);
    drop(held);
}

#[test]
fn tried_servers_are_skipped_until_all_were_tried() {
    let servers = pool(&[1, 1, 1]);
    for balance in [
        Balance::LeastConn,
        Balance::RoundRobin,
        Balance::Random,
        Balance::Hash(HashKey::Path),
    ] {
        let b = Balancer::new(&balance, &servers);
        let input = PickInput {
            hash_key: Some(b"k"),
        };
        let mut tried = Tried::default();
        for _ in 0..3 {
            let (i, _) = b.pick(&servers, input, &tried, &|_| true).unwrap();
            assert!(!tried.contains(i), "{balance:?}");
            tried.insert(i);
        }
        assert_eq!(tried.len(), 3);
        assert!(
            b.pick(&servers, input, &tried, &|_| true).is_some(),
            "{balance:?}"
        );
    }
}

#[test]
fn random_follows_weights() {
    let servers = pool(&[3, 1]);
    let b = Balancer::new(&Balance::Random, &servers);
    let counts = sequential(&b, &servers, 40_000);
    let share = counts[0] as f64 / 40_000.0;
    assert!((0.72..0.78).contains(&share), "{counts:?}");
}

/// The server `balance: hash` picks for `key` on a first attempt.
fn hashed(b: &Balancer, servers: &[Server], key: &str, ok: &dyn Fn(usize) -> bool) -> SocketAddr {
    let input = PickInput {
        hash_key: Some(key.as_bytes()),
    };
    let (i, _) = b.pick(servers, input, &Tried::default(), ok).unwrap();
    servers[i].config.socket.ring_addr()
}

#[test]
fn consistent_hash_moves_only_the_removed_servers_keys() {
    let servers = pool(&[1, 1, 1, 1, 1]);
    let b = Balancer::new(&Balance::Hash(HashKey::ClientIp), &servers);
    let keys: Vec<String> = (0..2000)
        .map(|i| format!("192.168.{}.{}", i / 250, i % 250))
        .collect();
    let before: Vec<SocketAddr> = keys
        .iter()
        .map(|k| hashed(&b, &servers, k, &|_| true))
        .collect();
    // Same key, same server, every time.
    let again = hashed(&b, &servers, &keys[7], &|_| true);
    assert_eq!(again, before[7]);
    // Each server gets a fair share.
    for s in &servers {
        let n = before
            .iter()
            .filter(|a| **a == s.config.socket.ring_addr())
            .count();
        assert!(
            (250..=550).contains(&n),
            "{} got {n} of 2000",
            s.config.addr
        );
    }
    // Remove server 2 (a new pool without it, as a reload builds).
    let removed = servers[2].config.socket.ring_addr();
    let fewer: Vec<Server> = servers
        .iter()
        .filter(|s| s.config.socket.ring_addr() != removed)
        .cloned()
        .collect();
    let b2 = Balancer::new(&Balance::Hash(HashKey::ClientIp), &fewer);
    for (k, old) in keys.iter().zip(&before) {
        let new = hashed(&b2, &fewer, k, &|_| true);
        if *old != removed {
            assert_eq!(new, *old, "key {k} moved although its server stayed");
        }
    }
    // Marking a server ineligible (not removing it) behaves the same way.
    for (k, old) in keys.iter().zip(&before) {
        let now = hashed(&b, &servers, k, &|i| i != 2);
        if *old != removed {
            assert_eq!(now, *old);
        }
    }
}
