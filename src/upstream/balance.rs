//! Server selection: `least_conn`, `round_robin`, `random` and consistent `hash`.
//!
//! Pure selection over a pool's servers and their live counters; the proxy supplies the
//! request's hash key and the set of servers it already tried. Rules (SPEC §3):
//!
//! - a server is *eligible* when the pool's eligibility test passes (healthy, breaker, ...),
//!   it has room under `max_conns`, and this request has not tried it yet;
//! - `backup` servers are used only when no primary server is eligible;
//! - when every server has been tried, tried servers become eligible again.
//!
//! **Weighted least-connections.** The load of a server is `active / weight`, compared by
//! cross-multiplication, where `active` counts requests in flight from every worker thread.
//! Servers of equal load share traffic by smooth weighted round-robin, so idle servers are
//! picked in weight ratio (3/3/2 weights give a 3:3:2 split to a sequential client). This is
//! nginx's `least_conn`; SPEC §3 writes the load as `(active + 1) / weight`, which would send
//! every request of a sequential client to the heaviest server and contradict its own "equal-load
//! servers still share traffic in weight ratio", so we compare `active / weight` and document it.
//!
//! **Pools of more than [`SCAN_LIMIT`] servers** use two random choices (nginx's `random two
//! least_conn`, Envoy's least-request): two distinct eligible servers are drawn with
//! probability proportional to weight (a binary search over cumulative weights) and the less
//! loaded one is taken, so a pick costs the same at 100 and at 10 000 servers. The most loaded
//! server is never chosen while another is eligible, and idle servers share traffic in weight
//! ratio on average. Up to [`SCAN_LIMIT`] servers the pick scans the whole pool (exact).
//!
//! No lock is shared between threads on this path: the in-flight counts are per-server
//! atomics read during the pick and incremented for the server chosen (a compare-and-swap when
//! `max_conns` is set, which is never overshot), and the round-robin state that breaks ties is
//! kept per thread ([`shard`]). Two threads picking at the same instant may both see a server
//! as least loaded and both choose it; the next picks see both requests.

use super::hash_ring::HashRing;
use super::server::{InFlightGuard, Server};
use super::shard::{self, Padded};
use super::tried::Tried;
use crate::config::{Balance, HashKey};
use std::sync::Mutex;

/// The per-pool selection state.
#[derive(Debug)]
pub enum Balancer {
    LeastConn(LeastConn),
    RoundRobin(Mutex<Vec<i64>>),
    Random,
    Hash(Box<HashRing>),
}

/// What a pick needs to know about the request.
#[derive(Debug, Default, Clone, Copy)]
pub struct PickInput<'a> {
    /// The bytes to hash for `balance: hash`; `None` when the key is absent from the request
    /// (then a weighted random server is used, as HAProxy falls back when a hash header is
    /// missing, instead of piling every such request onto one server).
    pub hash_key: Option<&'a [u8]>,
}

impl Balancer {
    pub fn new(balance: &Balance, servers: &[Server]) -> Balancer {
        match balance {
            Balance::LeastConn => Balancer::LeastConn(LeastConn::new(servers)),
            Balance::RoundRobin => Balancer::RoundRobin(Mutex::new(vec![0; servers.len()])),
            Balance::Random => Balancer::Random,
            Balance::Hash(key) => Balancer::Hash(Box::new(HashRing::new(key, servers))),
        }
    }

    pub fn hash_key(&self) -> Option<&HashKey> {
        match self {
            Balancer::Hash(r) => Some(&r.key),
            _ => None,
        }
    }

    /// Choose a server and count the request in flight to it.
    ///
    /// `eligible(i)` is the pool's own test (health, breaker); room under `max_conns`, the
    /// tried set and the backup rule are applied here.
    pub fn pick(
        &self,
        servers: &[Server],
        input: PickInput<'_>,
        tried: &Tried,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<(usize, InFlightGuard)> {
        let passes: &[bool] = if tried.is_empty() {
            &[false]
        } else {
            &[false, true]
        };
        for &allow_tried in passes {
            for backup in [false, true] {
                let ok = |i: usize| {
                    let s = &servers[i];
                    s.config.backup == backup
                        && (allow_tried || !tried.contains(i))
                        && s.stats.has_room(s.config.max_conns)
                        && eligible(i)
                };
                // A lost race for the last `max_conns` slot makes the server ineligible; try
                // again a few times rather than fail the request.
                for _ in 0..4 {
                    let picked = match self {
                        Balancer::LeastConn(lc) => {
                            lc.pick(servers, &ok).and_then(|i| acquire(servers, i))
                        }
                        Balancer::RoundRobin(state) => {
                            let mut cur = lock(state);
                            smooth_wrr(servers, &mut cur, &ok).and_then(|i| acquire(servers, i))
                        }
                        Balancer::Random => {
                            weighted_random(servers, &ok).and_then(|i| acquire(servers, i))
                        }
                        Balancer::Hash(ring) => match input.hash_key {
                            Some(key) => ring
                                .lookup(key, backup, servers.len(), &ok)
                                .and_then(|i| acquire(servers, i)),
                            None => weighted_random(servers, &ok).and_then(|i| acquire(servers, i)),
                        },
                    };
                    match picked {
                        Some(p) => return Some(p),
                        None if (0..servers.len()).any(&ok) => continue,
                        None => break,
                    }
                }
            }
        }
        None
    }
}

/// Pools up to this size are scanned whole for the least loaded server (nginx's exact
/// `least_conn`); larger ones use two random choices. Measured (`benches/balance.rs`): a scan
/// costs 56 ns at 3 servers and 116 ns at 16, two choices 42 ns at 17 servers, 49 ns at 100
/// and 92 ns at 10 000 (the draws' binary search grows with the pool).
pub const SCAN_LIMIT: usize = 16;

/// How many draws two random choices make for each of its two servers before it falls back to
/// a scan (most servers ineligible: down, open, tried, or backups).
const DRAWS: usize = 8;

/// Weighted least-connections state of one pool.
#[derive(Debug)]
pub enum LeastConn {
    /// Up to [`SCAN_LIMIT`] servers: per-thread smooth round-robin weights breaking ties.
    Scan(Box<[Padded<Mutex<Vec<i64>>>]>),
    /// Larger pools: cumulative weights, for drawing servers in weight ratio.
    TwoChoices(Box<[u64]>),
}

impl LeastConn {
    fn new(servers: &[Server]) -> LeastConn {
        if servers.len() <= SCAN_LIMIT {
            return LeastConn::Scan(
                (0..shard::SLOTS)
                    .map(|_| Padded(Mutex::new(vec![0; servers.len()])))
                    .collect(),
            );
        }
        let mut total = 0u64;
        LeastConn::TwoChoices(
            servers
                .iter()
                .map(|s| {
                    total += u64::from(s.weight());
                    total
                })
                .collect(),
        )
    }

    fn pick(&self, servers: &[Server], ok: &dyn Fn(usize) -> bool) -> Option<usize> {
        match self {
            LeastConn::Scan(ties) => least_conn(servers, &mut lock(&ties[shard::slot()]), ok),
            // Too few eligible servers to draw two: a scan, ties drawn in weight ratio.
            LeastConn::TwoChoices(cumulative) => {
                two_choices(servers, cumulative, ok).or_else(|| {
                    let (_, ba, bw) = least_load(servers, ok)?;
                    weighted_random(servers, &|i| ok(i) && has_load(&servers[i], ba, bw))
                })
            }
        }
    }
}

/// Two distinct eligible servers drawn in weight ratio; the less loaded one (a coin toss
/// between equals). `None` when two could not be drawn in a few tries.
fn two_choices(
    servers: &[Server],
    cumulative: &[u64],
    ok: &dyn Fn(usize) -> bool,
) -> Option<usize> {
    let total = *cumulative.last()?;
    let draw = |not: Option<usize>| {
        (0..DRAWS).find_map(|_| {
            let r = fastrand::u64(0..total);
            let i = cumulative.partition_point(|&c| c <= r);
            (Some(i) != not && ok(i)).then_some(i)
        })
    };
    let a = draw(None)?;
    let b = draw(Some(a))?;
    let load = |i: usize| {
        let s = &servers[i];
        (u64::from(s.stats.in_flight()), u64::from(s.weight()))
    };
    let ((la, wa), (lb, wb)) = (load(a), load(b));
    Some(match (la * wb).cmp(&(lb * wa)) {
        std::cmp::Ordering::Less => a,
        std::cmp::Ordering::Greater => b,
        std::cmp::Ordering::Equal if fastrand::bool() => a,
        std::cmp::Ordering::Equal => b,
    })
}

fn lock(m: &Mutex<Vec<i64>>) -> std::sync::MutexGuard<'_, Vec<i64>> {
    // The state is a vector of integers that is valid whatever a panicking holder left in it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn acquire(servers: &[Server], i: usize) -> Option<(usize, InFlightGuard)> {
    let s = &servers[i];
    s.stats.try_acquire(s.config.max_conns).map(|g| (i, g))
}

/// Least `active / weight`; ties by smooth weighted round-robin over the tied servers.
fn least_conn(servers: &[Server], cur: &mut [i64], ok: &dyn Fn(usize) -> bool) -> Option<usize> {
    let (first, ba, bw) = least_load(servers, ok)?;
    // Smooth WRR among the servers at that load. Another thread may have started or finished a
    // request in between; then the first least-loaded server found is still a correct answer.
    smooth_wrr(servers, cur, &|i| ok(i) && has_load(&servers[i], ba, bw)).or(Some(first))
}

/// The first eligible server of least load, with that load as (active, weight), compared by
/// cross-multiplication.
fn least_load(servers: &[Server], ok: &dyn Fn(usize) -> bool) -> Option<(usize, u64, u64)> {
    let mut best: Option<(usize, u64, u64)> = None;
    for (i, s) in servers.iter().enumerate() {
        if !ok(i) {
            continue;
        }
        let (a, w) = (u64::from(s.stats.in_flight()), u64::from(s.weight()));
        match best {
            Some((_, ba, bw)) if a * bw >= ba * w => {}
            _ => best = Some((i, a, w)),
        }
    }
    best
}

/// Whether `s` carries the load `active / weight` = `ba / bw`.
fn has_load(s: &Server, ba: u64, bw: u64) -> bool {
    u64::from(s.stats.in_flight()) * bw == ba * u64::from(s.weight())
}

/// nginx's smooth weighted round-robin over the eligible servers.
fn smooth_wrr(servers: &[Server], cur: &mut [i64], ok: &dyn Fn(usize) -> bool) -> Option<usize> {
    let mut total = 0i64;
    let mut pick: Option<usize> = None;
    for (i, s) in servers.iter().enumerate() {
        if !ok(i) {
            continue;
        }
        let w = i64::from(s.weight());
        cur[i] += w;
        total += w;
        if pick.is_none_or(|p| cur[i] > cur[p]) {
            pick = Some(i);
        }
    }
    let p = pick?;
    cur[p] -= total;
    Some(p)
}

/// One pass of weighted reservoir sampling: each eligible server is kept with probability
/// `weight / weight so far`, which picks it with probability `weight / total`.
fn weighted_random(servers: &[Server], ok: &dyn Fn(usize) -> bool) -> Option<usize> {
    let mut total = 0u64;
    let mut pick = None;
    for (i, s) in servers.iter().enumerate() {
        if !ok(i) {
            continue;
        }
        let w = u64::from(s.weight());
        total += w;
        if fastrand::u64(0..total) < w {
            pick = Some(i);
        }
    }
    pick
}

#[cfg(test)]
mod tests;
