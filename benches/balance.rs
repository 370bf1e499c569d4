//! Cost of choosing a server (and counting it in flight) for pools of 3 to 10 000 servers,
//! under each `balance`. Run with `cargo bench --bench balance`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use switchyard::config::{Balance, HashKey, ServerConfig, Weight};
use switchyard::upstream::{Balancer, PickInput, Server, ServerStats, Tried};

fn pool(n: usize) -> Vec<Server> {
    (0..n)
        .map(|i| {
            let addr = format!("10.{}.{}.{}:8080", (i >> 16) & 255, (i >> 8) & 255, i & 255);
            let stats = Arc::new(ServerStats::new());
            Server {
                config: ServerConfig {
                    socket: switchyard::config::Endpoint::Inet(
                        addr.parse().expect("valid address"),
                    ),
                    addr,
                    weight: Weight::try_new(1 + (i % 3) as u32).expect("valid weight"),
                    max_conns: None,
                    backup: false,
                    from: None,
                },
                stats,
            }
        })
        .collect()
}

fn picks(c: &mut Criterion) {
    let balances = [
        ("least_conn", Balance::LeastConn),
        ("round_robin", Balance::RoundRobin),
        ("random", Balance::Random),
        ("hash", Balance::Hash(HashKey::ClientIp)),
    ];
    for (name, balance) in balances {
        let mut group = c.benchmark_group(format!("pick/{name}"));
        for n in [3usize, 16, 17, 100, 1_000, 10_000] {
            let servers = pool(n);
            let balancer = Balancer::new(&balance, &servers);
            let tried = Tried::default();
            let input = PickInput {
                hash_key: Some(b"203.0.113.42"),
            };
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| {
                    let picked = balancer.pick(&servers, black_box(input), &tried, &|_| true);
                    black_box(picked.map(|(i, _guard)| i))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, picks);
criterion_main!(benches);
