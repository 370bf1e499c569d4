//! Per-key token buckets for `rate_limit` (SPEC §8), shared by all worker threads.
//!
//! Written by hand rather than with `governor`: the limit must hold a bounded number of keys
//! with a defined behaviour at the bound, and governor's keyed store can only be asked its
//! total size (a pass over every shard) and has no "table full" policy. Here a key's bucket
//! lives in one of [`SHARDS`] mutex-guarded maps (so threads rarely meet on one lock); a full
//! shard first forgets its idle keys (a bucket that has refilled completely is the same as a
//! new one), and when every key is active, new keys share one overflow bucket per shard: a
//! flood of distinct keys is limited as one client instead of growing memory or slipping
//! through.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

/// Keys remembered per route at most (about 40 bytes each).
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// Nanoseconds since the limiter's epoch.
    at: u64,
}

#[derive(Debug, Default)]
struct Shard {
    buckets: HashMap<u64, Bucket>,
    overflow: Option<Bucket>,
    /// When idle keys were last looked for (ns since the epoch): at most once per
    /// [`SWEEP_EVERY`], so a flood of new keys against a full table costs no pass per request.
    swept_at: Option<u64>,
}

const SWEEP_EVERY: u64 = 1_000_000_000;

#[derive(Debug)]
pub struct RateLimiter {
    /// Tokens per nanosecond.
    rate: f64,
    /// `requests + burst`: what a key may spend at once.
    capacity: f64,
    per_shard: usize,
    epoch: Instant,
    hasher: RandomState,
    shards: [Mutex<Shard>; SHARDS],
}

impl RateLimiter {
    /// `requests` tokens per `per`, up to `requests + burst` held, at most `max_keys` keys.
    pub fn new(requests: u32, per: Duration, burst: u32, max_keys: usize) -> RateLimiter {
        RateLimiter {
            rate: f64::from(requests) / per.as_nanos().max(1) as f64,
            capacity: f64::from(requests) + f64::from(burst),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            epoch: Instant::now(),
            hasher: RandomState::new(),
            shards: Default::default(),
        }
    }

    /// Take a token for `key` at `now`: `Ok`, or `Err(wait)` until one is free.
    pub fn check(&self, key: &[u8], now: Instant) -> Result<(), Duration> {
        let hash = self.hasher.hash_one(key);
        let at = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let mut shard = self.shards[(hash as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let full = Bucket {
            tokens: self.capacity,
            at,
        };
        if !shard.buckets.contains_key(&hash)
            && shard.buckets.len() >= self.per_shard
            && shard
                .swept_at
                .is_none_or(|s| at.saturating_sub(s) >= SWEEP_EVERY)
        {
            // Forget keys whose buckets have refilled: they are as good as new.
            shard.swept_at = Some(at);
            let (rate, capacity) = (self.rate, self.capacity);
            shard
                .buckets
                .retain(|_, b| b.tokens + at.saturating_sub(b.at) as f64 * rate < capacity);
        }
        let bucket = if shard.buckets.len() < self.per_shard || shard.buckets.contains_key(&hash) {
            shard.buckets.entry(hash).or_insert(full)
        } else {
            shard.overflow.get_or_insert(full)
        };
        let elapsed = at.saturating_sub(bucket.at) as f64;
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.capacity);
        bucket.at = bucket.at.max(at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_ns = (1.0 - bucket.tokens) / self.rate;
            Err(Duration::from_nanos(wait_ns.ceil() as u64))
        }
    }

    /// Keys remembered now (for tests and `/status`).
    pub fn keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.buckets.len()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_requests_plus_burst_and_refills_at_the_rate() {
        let l = RateLimiter::new(5, Duration::from_secs(1), 2, 1000);
        let t0 = Instant::now();
        let passed = (0..10).filter(|_| l.check(b"a", t0).is_ok()).count();
        assert_eq!(passed, 7, "5 per second plus a burst of 2");
        let wait = l.check(b"a", t0).unwrap_err();
        assert!(wait <= Duration::from_millis(200) && wait > Duration::from_millis(190));
        // Another key has its own bucket.
        assert!(l.check(b"b", t0).is_ok());
        // One token back after 200 ms, not two.
        let t1 = t0 + Duration::from_millis(200);
        assert!(l.check(b"a", t1).is_ok());
        assert!(l.check(b"a", t1).is_err());
        // Full again after long enough, never more than the capacity.
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| l.check(b"a", t2).is_ok()).count(), 7);
    }

    #[test]
    fn keys_are_bounded_idle_ones_are_forgotten_and_the_rest_share_a_bucket() {
        let l = RateLimiter::new(1, Duration::from_secs(10), 0, 64);
        let t0 = Instant::now();
        for i in 0..2000u32 {
            let _ = l.check(&i.to_be_bytes(), t0);
        }
        assert!(l.keys() <= 64, "{} keys remembered", l.keys());
        // Every key is active (its token spent): newcomers share an overflow bucket, so a
        // flood of new keys is limited instead of passing.
        let newcomers = (10_000..10_100u32)
            .filter(|i| l.check(&i.to_be_bytes(), t0).is_ok())
            .count();
        assert!(newcomers <= SHARDS, "{newcomers} of 100 new keys passed");
        // Once the buckets have refilled, their keys are forgotten to make room.
        let later = t0 + Duration::from_secs(11);
        assert!(l.check(b"fresh", later).is_ok());
        assert!(l.keys() <= 64);
    }
}
