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

/// What one client connection is counted at for the memory-derived default: one with a
/// request in flight at its largest, streaming a body (its request state, about 14 KB;
/// pingora's head buffer, 4 KiB, and body buffer, up to 64 KiB; its upstream connection's few
/// KiB). An idle one costs about 3.5 KiB (`benches/idle_memory.py`), and at the limit idle
/// ones are closed first.
pub const CONNECTION_MEMORY: u64 = 96 * 1024;

/// The default `limits.max_connections`: the smaller of two budgets, and at least 16.
///
/// - Files: 90 % of the open-file limit, less the upstream connections kept idle (all workers
///   together) and room for each worker's burst of accepts, halved so that every client
///   connection busy with a request still has a file for its upstream connection.
/// - Memory (when known, see [`memory_limit`]): half of it, at [`CONNECTION_MEMORY`] per
///   connection, so that even every connection busy at once stays within it.
pub fn default_max(
    open_file_limit: u64,
    upstream_idle: u64,
    workers: u64,
    memory: Option<u64>,
) -> u32 {
    let budget = open_file_limit.saturating_mul(9) / 10;
    let reserved = upstream_idle.saturating_add(ACCEPT_BURST_FILES.saturating_mul(workers.max(1)));
    let by_files = budget.saturating_sub(reserved) / 2;
    let by_memory = memory.map_or(u64::MAX, |m| m / 2 / CONNECTION_MEMORY);
    u32::try_from(by_files.min(by_memory).max(16)).unwrap_or(u32::MAX)
}

/// The memory this process may use: the smallest cgroup limit over its cgroup and their
/// parents (v2 `memory.max`, v1 `memory.limit_in_bytes`), and physical memory
/// (`/proc/meminfo`). `None` when none of them can be read.
pub fn memory_limit() -> Option<u64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let physical = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem_total(&m));
    let cgroup = cgroup_memory_limit(&cgroups, std::path::Path::new("/sys/fs/cgroup"));
    match (cgroup, physical) {
        (Some(c), Some(p)) => Some(c.min(p)),
        (c, p) => c.or(p),
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// The smallest memory limit set on the process's cgroup or any parent, from the contents of
/// `/proc/self/cgroup` and the cgroup file system mounted at `root`. "max" (v2) and v1's
/// "unlimited" (a number near `i64::MAX`) are no limit.
fn cgroup_memory_limit(proc_cgroup: &str, root: &std::path::Path) -> Option<u64> {
    let mut limit: Option<u64> = None;
    for line in proc_cgroup.lines() {
        // "hierarchy-id:controllers:path"; v2 is "0::path".
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (dir, file) = if id == "0" && controllers.is_empty() {
            (root.to_path_buf(), "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (root.join("memory"), "memory.limit_in_bytes")
        } else {
            continue;
        };
        let mut at = Some(std::path::Path::new(path.trim_start_matches('/')));
        while let Some(p) = at {
            let value = std::fs::read_to_string(dir.join(p).join(file)).ok();
            if let Some(n) = value.and_then(|v| v.trim().parse::<u64>().ok())
                && n < (1 << 62)
            {
                limit = Some(limit.map_or(n, |l| l.min(n)));
            }
            at = p.parent();
        }
    }
    limit
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
        assert_eq!(default_max(1024, 64, 1, None), 300);
        assert_eq!(default_max(1_048_576, 1000, 1, None), 471_231);
        assert_eq!(default_max(20, 100, 1, None), 16);
        // Two workers: twice the upstream idle connections and two accept bursts kept free.
        assert_eq!(default_max(1024, 128, 2, None), 140);
    }

    #[test]
    fn the_default_fits_in_half_the_memory() {
        const GIB: u64 = 1 << 30;
        // A systemd host's file limit (524 288) would allow 235 k connections; 1 GiB of
        // memory allows 5 461 of them at 96 KiB each within half of it.
        assert_eq!(default_max(524_288, 64, 1, Some(GIB)), 5461);
        assert_eq!(default_max(524_288, 64, 1, Some(16 * GIB)), 87_381);
        // Plenty of memory: the file budget decides.
        assert_eq!(default_max(1024, 64, 1, Some(16 * GIB)), 300);
        // Very little: still a floor.
        assert_eq!(default_max(524_288, 64, 1, Some(1 << 20)), 16);
    }

    #[test]
    fn memory_limits_come_from_the_cgroup_or_meminfo() {
        assert_eq!(
            mem_total("MemTotal:       24683664 kB\nMemFree: 1 kB\n"),
            Some(24_683_664 * 1024)
        );
        assert_eq!(mem_total("nothing"), None);

        let root = tempfile::tempdir().unwrap();
        // cgroup v2: the smallest limit on the way up counts; "max" is none.
        let v2 = root.path().join("system.slice/app.service");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.max"), "max\n").unwrap();
        std::fs::write(root.path().join("system.slice/memory.max"), "2147483648\n").unwrap();
        assert_eq!(
            cgroup_memory_limit("0::/system.slice/app.service\n", root.path()),
            Some(2 << 30)
        );
        std::fs::write(v2.join("memory.max"), "536870912\n").unwrap();
        assert_eq!(
            cgroup_memory_limit("0::/system.slice/app.service\n", root.path()),
            Some(512 << 20)
        );
        // cgroup v1: memory.limit_in_bytes under the memory controller; "unlimited" is none.
        let v1 = root.path().join("memory/docker/abc");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        let lines = "4:memory:/docker/abc\n1:cpu:/\n";
        assert_eq!(cgroup_memory_limit(lines, root.path()), None);
        std::fs::write(v1.join("memory.limit_in_bytes"), "1073741824\n").unwrap();
        assert_eq!(cgroup_memory_limit(lines, root.path()), Some(1 << 30));
        // Nothing readable: no limit.
        assert_eq!(cgroup_memory_limit("garbage", root.path()), None);
    }
}
