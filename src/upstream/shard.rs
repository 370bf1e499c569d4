//! Per-thread slots for state that every request writes: each thread writes its own slot (its
//! own cache line), and a reader that needs the whole sums the slots. With one pingora service
//! per worker thread (see `run.rs`), a worker's requests stay on its thread, so its slot is
//! never written by another core.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Slots per sharded value. Threads beyond this share slots (still correct, only no longer
/// private); worker counts are bounded by cores, and the admin and background services add a
/// few threads.
pub const SLOTS: usize = 16;

/// This thread's slot, in `0..SLOTS`, assigned on first use in thread start order.
pub fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|s| *s)
}

/// A value on a cache line of its own (two adjacent slots never share one).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A count written by every request and read rarely (a scrape, a retry decision, a drain
/// check): one slot per thread, summed by the reader. Signed, so a slot may go below zero when
/// an increment and its decrement happen on different threads; the sum is what counts.
#[derive(Debug, Default)]
pub struct Count {
    slots: [Padded<std::sync::atomic::AtomicI64>; SLOTS],
}

impl Count {
    pub const fn new() -> Count {
        Count {
            slots: [const { Padded(std::sync::atomic::AtomicI64::new(0)) }; SLOTS],
        }
    }

    pub fn add(&self, n: i64) {
        self.slots[slot()].fetch_add(n, Ordering::Relaxed);
    }

    /// The sum over every thread (not a snapshot: slots written meanwhile may or may not be
    /// included).
    pub fn sum(&self) -> i64 {
        self.slots.iter().map(|s| s.load(Ordering::Relaxed)).sum()
    }
}
