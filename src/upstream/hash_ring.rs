//! The consistent-hash ring of `balance: hash`.

use super::server::Server;
use crate::config::HashKey;
use pingora_ketama::{Bucket, Continuum};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Consistent hashing over the primary servers, and separately over the backups; nginx's
/// ketama ring (160 points per weight unit), so a server leaving moves only its own keys.
pub struct HashRing {
    pub key: HashKey,
    primaries: Continuum,
    backups: Continuum,
    index_of: HashMap<SocketAddr, usize>,
}

impl std::fmt::Debug for HashRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashRing")
            .field("key", &self.key)
            .field("servers", &self.index_of.len())
            .finish()
    }
}

impl HashRing {
    pub fn new(key: &HashKey, servers: &[Server]) -> HashRing {
        let ring = |backup: bool| {
            let buckets: Vec<Bucket> = servers
                .iter()
                .filter(|s| s.config.backup == backup)
                .map(|s| Bucket::new(s.config.socket.ring_addr(), s.weight()))
                .collect();
            Continuum::new(&buckets)
        };
        HashRing {
            key: key.clone(),
            primaries: ring(false),
            backups: ring(true),
            index_of: servers
                .iter()
                .enumerate()
                .map(|(i, s)| (s.config.socket.ring_addr(), i))
                .collect(),
        }
    }

    /// Walk the ring from the key's point to the first eligible server.
    pub fn lookup(
        &self,
        key: &[u8],
        backup: bool,
        n_servers: usize,
        ok: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        if !(0..n_servers).any(ok) {
            return None;
        }
        let ring = if backup {
            &self.backups
        } else {
            &self.primaries
        };
        ring.node_iter(key)
            .take(ring_len_hint(n_servers))
            .filter_map(|addr| self.index_of.get(addr).copied())
            .find(|&i| ok(i))
    }
}

/// Points to walk before giving up: every server has at least 160 points, so this many steps
/// find any eligible server with overwhelming probability while bounding the worst case.
fn ring_len_hint(n_servers: usize) -> usize {
    n_servers.saturating_mul(160 * 8).max(1024)
}
