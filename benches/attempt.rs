//! Per-attempt bookkeeping on the request path: breaker admission and outcome, retry budget,
//! in-flight guard, metric counters. Run with `cargo bench --bench attempt`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::config::{BreakerPolicy, Outcome, OutcomeSet};
use switchyard::upstream::ServerStats;
use switchyard::upstream::pool::PoolStats;

fn attempt(c: &mut Criterion) {
    let mut on = OutcomeSet::default();
    for n in ["error", "timeout", "http_502", "http_503", "http_504"] {
        on.insert_name(n).expect("known condition");
    }
    let policy = BreakerPolicy {
        failures: NonZeroU32::new(5).expect("non-zero"),
        open_for: Duration::from_secs(30),
        max_open_for: Duration::from_secs(300),
        half_open_requests: NonZeroU32::new(1).expect("non-zero"),
        on,
    };
    let server = Arc::new(ServerStats::new("bench", "10.0.0.1:80"));
    let pool = Arc::new(PoolStats::new("bench", &["error".to_string()]));
    c.bench_function("attempt/success: admit, count, record", |b| {
        b.iter(|| {
            let now = Instant::now();
            let _in_pool = pool.begin_request();
            let guard = server.try_acquire(None).expect("room");
            let (admission, _) = server.breaker.admit(now, &policy);
            server.metrics.count_attempt(Outcome::Success);
            let t = server
                .breaker
                .record(admission.expect("closed"), false, now, &policy);
            pool.metrics.count_request(200);
            black_box((guard, t))
        })
    });
    c.bench_function("attempt/retry budget check", |b| {
        b.iter(|| {
            let mut in_pool = pool.begin_request();
            black_box(in_pool.try_retry(20))
        })
    });
}

criterion_group!(benches, attempt);
criterion_main!(benches);
