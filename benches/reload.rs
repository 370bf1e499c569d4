//! Cost of a reload: parse + validate a 10 000-server config, and build the runtime state
//! carrying every server's live state over. Run with `cargo bench --bench reload`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use switchyard::AccessLogger;
use switchyard::config::load_str_offline;
use switchyard::state::RuntimeState;

/// `pools` pools of `per_pool` servers each, literal addresses.
fn config_text(pools: usize, per_pool: usize, balance: &str) -> String {
    let mut s = String::from("listen: [\"127.0.0.1:8080\"]\naccess_log: off\nupstreams:\n");
    for p in 0..pools {
        s.push_str(&format!("  pool{p}:\n    balance: {balance}\n"));
        if balance == "hash" {
            s.push_str("    hash_key: client_ip\n");
        }
        s.push_str("    servers:\n");
        for i in 0..per_pool {
            let n = p * per_pool + i;
            s.push_str(&format!(
                "      - addr: \"10.{}.{}.{}:8080\"\n        weight: {}\n",
                (n >> 16) & 255,
                (n >> 8) & 255,
                n & 255,
                1 + n % 3
            ));
        }
    }
    if pools > 1 {
        s.push_str("routes:\n");
        for p in 0..pools {
            s.push_str(&format!("  - {{path: /p{p}/, upstream: pool{p}}}\n"));
        }
    }
    s
}

fn reload(c: &mut Criterion) {
    let log = Arc::new(AccessLogger::off());
    for (name, text) in [
        (
            "10000 servers, 1 pool, least_conn",
            config_text(1, 10_000, "least_conn"),
        ),
        (
            "10000 servers, 100 pools, least_conn",
            config_text(100, 100, "least_conn"),
        ),
        (
            "10000 servers, 1 pool, hash",
            config_text(1, 10_000, "hash"),
        ),
    ] {
        let first = RuntimeState::new(
            load_str_offline(&text).expect("valid"),
            1,
            None,
            Arc::clone(&log),
            Vec::new(),
        );
        c.bench_function(&format!("reload/{name}"), |b| {
            b.iter(|| {
                let config = load_str_offline(black_box(&text)).expect("valid");
                black_box(RuntimeState::new(
                    config,
                    2,
                    Some(&first),
                    Arc::clone(&log),
                    Vec::new(),
                ))
            })
        });
    }
    let text = config_text(1, 10_000, "least_conn");
    c.bench_function("parse+validate/10000 servers", |b| {
        b.iter(|| black_box(load_str_offline(black_box(&text)).expect("valid")))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = reload
}
criterion_main!(benches);
