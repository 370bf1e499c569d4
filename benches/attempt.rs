//! Per-attempt bookkeeping on the request path: the pool's choice (pick, breaker admission,
//! in-flight guard), the outcome's record (counters, breaker), the request's counters, and the
//! retry budget. Run with `cargo bench --bench attempt`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::config::{Outcome, load_str_offline};
use switchyard::upstream::{Choice, Pool, PoolStats, Tried};

fn attempt(c: &mut Criterion) {
    let config = load_str_offline(
        "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app:\n    servers:\n      - {addr: \"10.0.0.1:80\", weight: 3}\n      - {addr: \"10.0.0.2:80\", weight: 3}\n      - {addr: \"10.0.0.3:80\", weight: 2}\n",
    )
    .expect("valid bench config");
    let pool = Pool::new(&config.upstreams[0], None, |_| None);
    c.bench_function("attempt/success: choose, record, count", |b| {
        b.iter(|| {
            let now = Instant::now();
            let _in_pool = pool.stats.begin_request();
            let Choice::Server(mut a) = pool.choose(now, None, &Tried::default()) else {
                panic!("a server is always eligible here");
            };
            pool.record(&mut a, Outcome::Success, now);
            pool.stats.count_request(200, Duration::from_micros(300));
            black_box(a)
        })
    });
    let stats = Arc::new(PoolStats::default());
    c.bench_function("attempt/retry budget check", |b| {
        b.iter(|| {
            let mut in_pool = stats.begin_request();
            black_box(in_pool.try_retry(20, Outcome::Error))
        })
    });
}

criterion_group!(benches, attempt);
criterion_main!(benches);
