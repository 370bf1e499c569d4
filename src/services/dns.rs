//! The DNS discovery service (SPEC §7): the network loop of `crate::discovery`. It looks every
//! entry up on its interval, records the answers in the state's `Discovery`, and when a set
//! changed asks the state's writer to rebuild the pools (`Change::DnsAnswers`).

use crate::changes::{Change, Changes};
use crate::config::Config;
use crate::discovery::{Answer, Discovery, EntryKey, Finder, next_lookup};
use crate::state::Store;
use async_trait::async_trait;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The background service: looks every entry up on its interval and has the state rebuilt
/// when a set changed.
pub struct DnsService {
    /// Read on every round, so reloads are followed.
    store: Store,
    changes: Changes,
}

impl DnsService {
    pub fn new(store: Store, changes: Changes) -> DnsService {
        DnsService { store, changes }
    }

    /// Look up every entry of `config` once (at start, before serving), recording the answers.
    pub async fn resolve_all(discovery: &Discovery, config: &Config) -> Result<(), String> {
        if !config.upstreams.iter().any(|u| !u.dns.is_empty()) {
            return Ok(());
        }
        let finder = Finder::new(&config.dns_servers)?;
        for u in &config.upstreams {
            for e in &u.dns {
                let a = finder.lookup(&e.lookup).await;
                discovery.record(&(u.name.clone(), e.name.clone()), &a);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl pingora::services::background::BackgroundService for DnsService {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let mut due: HashMap<EntryKey, Instant> = HashMap::new();
        let mut finder: Option<(Vec<SocketAddr>, Finder)> = None;
        let mut finder_error: Option<String> = None;
        loop {
            let state = self.store.load_full();
            let config = &state.config;
            let now = Instant::now();
            let mut changed = false;
            if config.upstreams.iter().any(|u| !u.dns.is_empty()) {
                if finder
                    .as_ref()
                    .is_none_or(|(s, _)| *s != config.dns_servers)
                {
                    match Finder::new(&config.dns_servers) {
                        Ok(f) => finder = Some((config.dns_servers.clone(), f)),
                        // Logged once per distinct problem, not every round.
                        Err(e) if finder_error.as_ref() != Some(&e) => {
                            tracing::warn!("{e}");
                            finder_error = Some(e);
                        }
                        Err(_) => {}
                    }
                }
                if let Some((_, f)) = &finder {
                    for u in &config.upstreams {
                        for e in &u.dns {
                            let key = (u.name.clone(), e.name.clone());
                            if due.get(&key).is_some_and(|at| *at > now) {
                                continue;
                            }
                            let a = f.lookup(&e.lookup).await;
                            let ttl = match &a {
                                Answer::Found(_, ttl) => *ttl,
                                _ => None,
                            };
                            due.insert(key.clone(), next_lookup(Instant::now(), e.every, ttl));
                            changed |= state.discovery.record(&key, &a);
                        }
                    }
                }
            }
            if changed {
                self.changes.send(Change::DnsAnswers);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
