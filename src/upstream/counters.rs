//! Plain atomic counters kept by the upstream core. The request path only adds to them;
//! `metrics.rs` reads them when `/metrics` is scraped and turns them into Prometheus series, so
//! nothing here knows about labels, registries or text formats.

use super::shard::{self, Padded};
use crate::config::Outcome;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The outcome classes an attempt is counted under (SPEC §5 `outcome` label), in index order.
pub const OUTCOMES: [&str; 7] = [
    "success",
    "error",
    "timeout",
    "invalid_header",
    "http_5xx",
    "http_429",
    "grpc_error",
];

/// The index of an outcome in [`OUTCOMES`].
pub fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Success => 0,
        Outcome::Error => 1,
        Outcome::Timeout => 2,
        Outcome::InvalidHeader => 3,
        Outcome::Status(429) => 5,
        Outcome::Status(_) => 4,
        Outcome::Grpc(_) => 6,
    }
}

/// Histogram bucket bounds for request durations, in seconds: 100 µs to 10 s.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A fixed-bucket histogram of durations: one add to a bucket and one to the sum per
/// observation, in this thread's slot (every request observes; a scrape sums the slots).
#[derive(Debug, Default)]
pub struct Histogram {
    slots: [Padded<HistogramSlot>; shard::SLOTS],
}

#[derive(Debug, Default)]
struct HistogramSlot {
    /// Observations per bucket (not cumulative); the last slot is "above every bound".
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// What a histogram holds at one moment, in the shape Prometheus wants.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Cumulative counts, one per bound of [`DURATION_BUCKETS`].
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(DURATION_BUCKETS.len());
        let slot = &self.slots[shard::slot()];
        slot.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        slot.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let bucket = |i: usize| -> u64 {
            self.slots
                .iter()
                .map(|s| s.buckets[i].load(Ordering::Relaxed))
                .sum()
        };
        let mut total = 0;
        let mut cumulative = Vec::with_capacity(DURATION_BUCKETS.len());
        for i in 0..DURATION_BUCKETS.len() {
            total += bucket(i);
            cumulative.push(total);
        }
        total += bucket(DURATION_BUCKETS.len());
        let sum_nanos: u64 = self
            .slots
            .iter()
            .map(|s| s.sum_nanos.load(Ordering::Relaxed))
            .sum();
        HistogramSnapshot {
            cumulative,
            count: total,
            sum_seconds: sum_nanos as f64 / 1e9,
        }
    }
}

/// Counts by HTTP status (0 for "nothing could be sent"; 0..=999), per thread: a thread's
/// table of 1 000 counters is allocated on its first count, so a pool costs 8 KB per thread
/// that answers its requests (the workers), not per possible thread.
#[derive(Debug, Default)]
pub struct StatusCounts {
    slots: [Padded<std::sync::OnceLock<Box<[AtomicU64]>>>; shard::SLOTS],
}

const STATUSES: usize = 1000;

impl StatusCounts {
    pub fn add(&self, status: u16) {
        let i = usize::from(status).min(STATUSES - 1);
        let table = self.slots[shard::slot()]
            .get_or_init(|| (0..STATUSES).map(|_| AtomicU64::new(0)).collect());
        table[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Every status counted at least once, with its count, in ascending order.
    pub fn nonzero(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        (0..STATUSES).filter_map(|i| {
            let n: u64 = self
                .slots
                .iter()
                .filter_map(|s| s.get())
                .map(|t| t[i].load(Ordering::Relaxed))
                .sum();
            (n > 0).then_some((i as u16, n))
        })
    }
}

/// Retries by the failure that caused them: `error`, `timeout`, `invalid_header`, `http_429`
/// `http_500`..`http_599` and `grpc_0`..`grpc_16` (the outcomes `retry.on` accepts).
#[derive(Debug)]
pub struct RetryReasons([AtomicU64; 122]);

impl Default for RetryReasons {
    fn default() -> Self {
        RetryReasons(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl RetryReasons {
    fn index(o: Outcome) -> Option<usize> {
        match o {
            Outcome::Success => None,
            Outcome::Error => Some(0),
            Outcome::Timeout => Some(1),
            Outcome::InvalidHeader => Some(2),
            Outcome::Status(429) => Some(3),
            Outcome::Status(c @ 500..=599) => Some(4 + usize::from(c - 500)),
            Outcome::Status(_) => None,
            Outcome::Grpc(c @ 0..=16) => Some(105 + usize::from(c)),
            Outcome::Grpc(_) => None,
        }
    }

    /// The label of a reason, as written in `retry.on`.
    pub fn label(o: Outcome) -> String {
        match o {
            Outcome::Status(code) => format!("http_{code}"),
            Outcome::Grpc(code) => format!("grpc_{code}"),
            Outcome::Error => "error".into(),
            Outcome::Timeout => "timeout".into(),
            Outcome::InvalidHeader => "invalid_header".into(),
            Outcome::Success => "success".into(),
        }
    }

    pub fn add(&self, o: Outcome) {
        if let Some(i) = Self::index(o) {
            self.0[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn get(&self, o: Outcome) -> u64 {
        Self::index(o).map_or(0, |i| self.0[i].load(Ordering::Relaxed))
    }

    /// Every reason counted at least once.
    pub fn nonzero(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        let reasons = [Outcome::Error, Outcome::Timeout, Outcome::InvalidHeader]
            .into_iter()
            .chain(std::iter::once(Outcome::Status(429)))
            .chain((500..=599).map(Outcome::Status))
            .chain((0..=16).map(Outcome::Grpc));
        reasons.filter_map(|o| {
            let n = self.get(o);
            (n > 0).then_some((o, n))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.cumulative[0], 1); // <= 100 µs
        assert_eq!(s.cumulative[4], 1); // <= 2.5 ms
        assert_eq!(s.cumulative[5], 2); // <= 5 ms
        assert_eq!(*s.cumulative.last().unwrap(), 2); // 60 s is above every bound
        assert!((s.sum_seconds - 60.00305).abs() < 1e-9);
    }

    #[test]
    fn retry_reasons_keep_their_status() {
        let r = RetryReasons::default();
        r.add(Outcome::Status(503));
        r.add(Outcome::Status(503));
        r.add(Outcome::Timeout);
        r.add(Outcome::Status(404)); // not a retry reason: ignored
        let got: Vec<_> = r.nonzero().collect();
        assert_eq!(got, vec![(Outcome::Timeout, 1), (Outcome::Status(503), 2)]);
        assert_eq!(RetryReasons::label(Outcome::Status(503)), "http_503");
    }

    #[test]
    fn status_counts_list_what_was_seen() {
        let s = StatusCounts::default();
        s.add(200);
        s.add(200);
        s.add(0);
        assert_eq!(s.nonzero().collect::<Vec<_>>(), vec![(0, 1), (200, 2)]);
    }
}
