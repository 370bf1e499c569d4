//! Client connections open at once (SPEC §9 `limits.max_connections`).
//!
//! Every accepted connection takes a place here for its whole life. A connection is *idle*
//! while it has no request in progress: from the accept until its first head is complete,
//! and between keep-alive requests. When a new connection would exceed the limit, the oldest
//! idle connections are closed to make room (like HAProxy's idle-connection killing; nginx
//! instead stops accepting at `worker_connections`). Only when nothing is idle is the new
//! connection refused, so a flood of idle or slow clients can never lock out real requests,
//! and the process never reaches its open-file limit through client connections.
//!
//! Closing is cooperative: the tracker marks the connection and wakes its reader; the
//! [`GuardedStream`](super::guarded::GuardedStream) then ends the read as if the client had
//! closed. The lock is held for map updates only (an accept or a close), never across `.await`.

use atomic_waker::AtomicWaker;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Context;

/// One connection's place, shared by the tracker and the connection's stream.
#[derive(Debug, Default)]
pub struct Slot {
    idle: AtomicBool,
    closing: AtomicBool,
    waker: AtomicWaker,
}

impl Slot {
    pub fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// Whether the tracker asked this connection to close.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// [`Slot::is_closing`], registering the reader to be woken when it is asked to close.
    pub fn closing(&self, cx: &mut Context<'_>) -> bool {
        if self.closing.load(Ordering::Acquire) {
            return true;
        }
        self.waker.register(cx.waker());
        // Asked between the check and the registration: seen now.
        self.closing.load(Ordering::Acquire)
    }

    /// Resolves when the tracker asks this connection to close.
    pub async fn closed(&self) {
        std::future::poll_fn(|cx| {
            if self.closing(cx) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await
    }
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    /// Live connections by age (accept order), oldest first.
    open: BTreeMap<u64, Arc<Slot>>,
}

/// The connections of one listening service.
#[derive(Debug, Default)]
pub struct Conns {
    inner: Mutex<Inner>,
}

/// A connection's place; given back when dropped.
#[derive(Debug)]
pub struct Place {
    conns: Arc<Conns>,
    id: u64,
    pub slot: Arc<Slot>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.conns.lock().open.remove(&self.id);
    }
}

impl Conns {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A map of live connections, valid whatever a panicking holder left.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// A place for a newly accepted connection within `max`, closing the oldest idle
    /// connections to make room; `None` when every connection is busy (refuse this one).
    pub fn admit(self: &Arc<Self>, max: usize) -> Option<Place> {
        let mut inner = self.lock();
        let max = max.max(1);
        if inner.open.len() >= max {
            let need = inner.open.len() + 1 - max;
            let victims: Vec<u64> = inner
                .open
                .iter()
                .filter(|(_, s)| s.idle.load(Ordering::Relaxed))
                .map(|(id, _)| *id)
                .take(need)
                .collect();
            if victims.len() < need {
                return None;
            }
            for id in victims {
                if let Some(slot) = inner.open.remove(&id) {
                    slot.closing.store(true, Ordering::Release);
                    slot.waker.wake();
                }
            }
        }
        let id = inner.next;
        inner.next += 1;
        let slot = Arc::new(Slot {
            idle: AtomicBool::new(true),
            ..Slot::default()
        });
        inner.open.insert(id, Arc::clone(&slot));
        Some(Place {
            conns: Arc::clone(self),
            id,
            slot,
        })
    }
}

/// Files kept free for a burst of accepts, per worker: each worker's accept loop takes up to
/// tokio's cooperative budget (128) of queued connections before their tasks run, and a
/// connection closed to make room keeps its file until its own task runs, so a flood can
/// briefly hold two bursts more per worker.
const ACCEPT_BURST_FILES: u64 = 256;

/// The default `limits.max_connections`: 90 % of the open-file limit, less the upstream
/// connections kept idle (all workers together) and room for each worker's burst of accepts,
/// halved so that every client connection busy with a request still has a file for its
/// upstream connection.
pub fn default_max(open_file_limit: u64, upstream_idle: u64, workers: u64) -> u32 {
    let budget = open_file_limit.saturating_mul(9) / 10;
    let reserved = upstream_idle.saturating_add(ACCEPT_BURST_FILES.saturating_mul(workers.max(1)));
    let clients = budget.saturating_sub(reserved) / 2;
    u32::try_from(clients.max(16)).unwrap_or(u32::MAX)
}

/// Raise the soft open-file limit to the hard limit (nginx's `worker_rlimit_nofile`, done for
/// the user); returns the soft limit in force afterwards.
pub fn raise_open_file_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(p: &Place) {
        p.slot.set_idle(false);
    }

    #[test]
    fn the_oldest_idle_connections_make_room() {
        let c = Arc::new(Conns::default());
        let a = c.admit(3).unwrap();
        let b = c.admit(3).unwrap();
        let d = c.admit(3).unwrap();
        busy(&a);
        // Full: the oldest idle one (b) is closed for the newcomer.
        let e = c.admit(3).unwrap();
        assert!(b.slot.closing.load(Ordering::Acquire));
        assert!(!a.slot.closing.load(Ordering::Acquire));
        assert_eq!(c.open(), 3);
        // Dropping a closed connection's place later changes nothing.
        drop(b);
        assert_eq!(c.open(), 3);
        // Everything busy: refused.
        busy(&d);
        busy(&e);
        assert!(c.admit(3).is_none());
        drop(a);
        assert!(c.admit(3).is_some());
    }

    #[test]
    fn the_default_leaves_room_for_upstream_connections() {
        assert_eq!(default_max(1024, 64, 1), 300);
        assert_eq!(default_max(1_048_576, 1000, 1), 471_231);
        assert_eq!(default_max(20, 100, 1), 16);
        // Two workers: twice the upstream idle connections and two accept bursts kept free.
        assert_eq!(default_max(1024, 128, 2), 140);
    }
}
