//! Service discovery (SPEC §7): server entries with `resolve` followed in DNS.
//!
//! [`Discovery`] holds what each entry last resolved to (shared by every state, so a reload
//! keeps it) and the per-entry counters; [`Finder`] looks entries up with hickory's resolver
//! (the system configuration, or `dns.servers`); the DNS service (`services/dns.rs`)
//! re-resolves each entry on its interval in the background and, when a set changed, asks the
//! state's writer to rebuild it through the same path as a reload (`Change::DnsAnswers`), so
//! servers that stay keep their breaker, health and in-flight count (pool + resolved
//! `ip:port`), and removed ones finish what they have.
//!
//! Failure rules: a failed lookup (timeout, SERVFAIL, no resolver) keeps the last good set; an
//! authoritative empty answer (NXDOMAIN, or no records of the type) empties the entry. hickory
//! reports both as "no records found", with the response code telling them apart. Each change
//! of an entry's condition is logged once.
//!
//! Timing: an entry is looked up again after its `resolve` interval, shortened to the answer's
//! TTL when that is lower (never below 1 s), with ±10 % jitter so many entries do not move in
//! step.

use crate::config::{DnsEntry, Lookup, ServerConfig, Weight};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One address an entry resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Found {
    pub addr: SocketAddr,
    /// From SRV records; `None` for A/AAAA (the entry's weight applies).
    pub weight: Option<u32>,
    /// SRV records of a priority after the lowest: backups.
    pub backup: bool,
}

/// What one lookup said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Addresses (sorted, without duplicates), and the lowest TTL among the records.
    Found(Vec<Found>, Option<Duration>),
    /// The name does not exist, or has no records of the type: an authoritative "none".
    Empty,
    /// No answer to trust (timeout, SERVFAIL, unreachable resolver): keep the last set.
    Failed(String),
}

/// An entry, named by its pool and its configured name.
pub type EntryKey = (String, String);

/// What an entry is known to resolve to, and its counters.
#[derive(Debug, Default)]
pub struct EntryState {
    /// `None` until the first answer that is not a failure.
    pub found: Option<Vec<Found>>,
    pub success: AtomicU64,
    pub failure: AtomicU64,
    pub empty: AtomicU64,
    /// The last condition logged ("ok", "failed", "empty"), so each change is logged once.
    logged: Mutex<&'static str>,
}

/// What every entry resolved to; shared by all states.
#[derive(Debug, Default)]
pub struct Discovery {
    entries: Mutex<HashMap<EntryKey, Arc<Mutex<EntryState>>>>,
}

impl Discovery {
    fn entry(&self, key: &EntryKey) -> Arc<Mutex<EntryState>> {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(map.entry(key.clone()).or_default())
    }

    /// The servers of `pool`'s DNS entries as they are known now.
    pub fn servers(&self, pool: &str, entries: &[DnsEntry]) -> Vec<ServerConfig> {
        let mut out = Vec::new();
        for e in entries {
            let state = self.entry(&(pool.to_string(), e.name.clone()));
            let state = state.lock().unwrap_or_else(|p| p.into_inner());
            for f in state.found.iter().flatten() {
                let weight = f.weight.map_or(e.weight, |w| {
                    Weight::try_new(w.clamp(1, Weight::MAX)).unwrap_or(e.weight)
                });
                if out.iter().any(|s: &ServerConfig| s.socket == f.addr.into()) {
                    continue;
                }
                out.push(ServerConfig {
                    addr: f.addr.to_string(),
                    socket: f.addr.into(),
                    weight,
                    max_conns: e.max_conns,
                    backup: e.backup || f.backup,
                    from: Some(e.name.clone()),
                });
            }
        }
        out
    }

    /// Record an answer for an entry; `true` when its set of servers changed.
    pub fn record(&self, key: &EntryKey, answer: &Answer) -> bool {
        let state = self.entry(key);
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        let (condition, changed) = match answer {
            Answer::Found(found, _) => {
                st.success.fetch_add(1, Relaxed);
                let changed = st.found.as_ref() != Some(found);
                if changed {
                    tracing::info!(
                        upstream = %key.0,
                        name = %key.1,
                        servers = found.len(),
                        "DNS: {}",
                        found.iter().map(|f| f.addr.to_string()).collect::<Vec<_>>().join(", ")
                    );
                }
                st.found = Some(found.clone());
                ("ok", changed)
            }
            Answer::Empty => {
                st.empty.fetch_add(1, Relaxed);
                let changed = st.found.as_ref().is_none_or(|f| !f.is_empty());
                st.found = Some(Vec::new());
                ("empty", changed)
            }
            Answer::Failed(_) => {
                st.failure.fetch_add(1, Relaxed);
                ("failed", false)
            }
        };
        let mut logged = st.logged.lock().unwrap_or_else(|p| p.into_inner());
        if *logged != condition {
            match answer {
                Answer::Empty => tracing::warn!(
                    upstream = %key.0, name = %key.1,
                    "DNS: the name has no addresses (NXDOMAIN or no records): the entry has no servers"
                ),
                Answer::Failed(why) => tracing::warn!(
                    upstream = %key.0, name = %key.1,
                    "DNS lookup failed ({why}); keeping the last good set"
                ),
                Answer::Found(..) if !logged.is_empty() => tracing::info!(
                    upstream = %key.0, name = %key.1, "DNS lookups answer again"
                ),
                Answer::Found(..) => {}
            }
            *logged = condition;
        }
        changed
    }

    /// Every entry's counters: (pool, name, success, failure, empty).
    pub fn counts(&self) -> Vec<(String, String, u64, u64, u64)> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = map
            .iter()
            .map(|((pool, name), st)| {
                let st = st.lock().unwrap_or_else(|p| p.into_inner());
                (
                    pool.clone(),
                    name.clone(),
                    st.success.load(Relaxed),
                    st.failure.load(Relaxed),
                    st.empty.load(Relaxed),
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// Looks entries up.
pub struct Finder {
    resolver: TokioResolver,
}

/// How long one lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

impl Finder {
    /// A resolver for `servers`, or the system's configuration when empty.
    pub fn new(servers: &[SocketAddr]) -> Result<Finder, String> {
        let provider = TokioConnectionProvider::default();
        let mut builder = if servers.is_empty() {
            TokioResolver::builder(provider)
                .map_err(|e| format!("cannot read the system DNS configuration: {e}"))?
        } else {
            let mut config = ResolverConfig::new();
            for s in servers {
                config.add_name_server(NameServerConfig::new(*s, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(*s, Protocol::Tcp));
            }
            TokioResolver::builder_with_config(config, provider)
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        // Our own intervals decide when to ask again: no answer is served from a cache.
        opts.cache_size = 0;
        opts.timeout = Duration::from_millis(800);
        opts.attempts = 1;
        opts.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
        Ok(Finder {
            resolver: builder.build(),
        })
    }

    pub async fn lookup(&self, lookup: &Lookup) -> Answer {
        match tokio::time::timeout(LOOKUP_TIMEOUT, self.lookup_inner(lookup)).await {
            Ok(a) => a,
            Err(_) => Answer::Failed("timed out".into()),
        }
    }

    async fn lookup_inner(&self, lookup: &Lookup) -> Answer {
        match lookup {
            Lookup::Host { host, port } => {
                if let Ok(ip) = host.parse::<IpAddr>() {
                    return Answer::Found(
                        vec![Found {
                            addr: SocketAddr::new(ip, *port),
                            weight: None,
                            backup: false,
                        }],
                        None,
                    );
                }
                match self.resolver.lookup_ip(fqdn(host)).await {
                    Ok(ips) => {
                        let ttl = min_ttl(ips.as_lookup());
                        let found = ips
                            .iter()
                            .map(|ip| Found {
                                addr: SocketAddr::new(ip, *port),
                                weight: None,
                                backup: false,
                            })
                            .collect();
                        answer(found, ttl)
                    }
                    Err(e) => classify(&e),
                }
            }
            Lookup::Srv(name) => match self.resolver.srv_lookup(fqdn(name)).await {
                Ok(srv) => {
                    let ttl = min_ttl(srv.as_lookup());
                    let records: Vec<_> = srv.iter().cloned().collect();
                    let Some(first) = records.iter().map(|r| r.priority()).min() else {
                        return Answer::Empty;
                    };
                    let mut found = Vec::new();
                    for r in &records {
                        let target = r.target().to_utf8();
                        let ips: Vec<IpAddr> = match target.trim_end_matches('.').parse::<IpAddr>()
                        {
                            Ok(ip) => vec![ip],
                            Err(_) => match self.resolver.lookup_ip(r.target().clone()).await {
                                Ok(ips) => ips.iter().collect(),
                                // A target that does not resolve contributes nothing.
                                Err(e) if matches!(classify(&e), Answer::Empty) => Vec::new(),
                                Err(e) => return classify(&e),
                            },
                        };
                        for ip in ips {
                            found.push(Found {
                                addr: SocketAddr::new(ip, r.port()),
                                weight: Some(u32::from(r.weight()).max(1)),
                                backup: r.priority() > first,
                            });
                        }
                    }
                    answer(found, ttl)
                }
                Err(e) => classify(&e),
            },
        }
    }
}

/// The lowest TTL among an answer's records.
fn min_ttl(lookup: &hickory_resolver::lookup::Lookup) -> Option<Duration> {
    lookup
        .records()
        .iter()
        .map(|r| r.ttl())
        .min()
        .map(|t| Duration::from_secs(u64::from(t)))
}

/// Names are absolute: the system's search domains do not apply to configured names.
fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn answer(mut found: Vec<Found>, ttl: Option<Duration>) -> Answer {
    found.sort();
    found.dedup_by_key(|f| f.addr);
    if found.is_empty() {
        Answer::Empty
    } else {
        Answer::Found(found, ttl)
    }
}

/// An error is an authoritative "none" only with NXDOMAIN or NOERROR as the response code;
/// anything else (SERVFAIL, REFUSED, timeouts, I/O) is a failure.
fn classify(e: &hickory_resolver::ResolveError) -> Answer {
    if let Some(proto) = e.proto()
        && let ProtoErrorKind::NoRecordsFound { response_code, .. } = proto.kind()
        && matches!(
            *response_code,
            ResponseCode::NXDomain | ResponseCode::NoError
        )
    {
        return Answer::Empty;
    }
    Answer::Failed(e.to_string())
}

/// When an entry is looked up next: its interval, or the answer's TTL when lower (at least
/// 1 s), with ±10 % jitter.
pub fn next_lookup(now: Instant, every: Duration, ttl: Option<Duration>) -> Instant {
    let base = match ttl {
        Some(t) if t < every => t.max(Duration::from_secs(1)).min(every),
        _ => every,
    };
    let jitter = 0.9 + fastrand::f64() * 0.2;
    now + base.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(addr: &str) -> Found {
        Found {
            addr: addr.parse().unwrap(),
            weight: None,
            backup: false,
        }
    }

    #[test]
    fn answers_change_the_set_failures_keep_it() {
        let d = Discovery::default();
        let key = ("app".to_string(), "app.svc:80".to_string());
        let entry = DnsEntry {
            name: "app.svc:80".into(),
            lookup: Lookup::Host {
                host: "app.svc".into(),
                port: 80,
            },
            every: Duration::from_secs(5),
            weight: Weight::try_new(2).unwrap(),
            max_conns: None,
            backup: false,
        };
        let servers = |d: &Discovery| -> Vec<String> {
            d.servers("app", std::slice::from_ref(&entry))
                .into_iter()
                .map(|s| s.addr)
                .collect()
        };
        assert!(servers(&d).is_empty(), "nothing known yet");
        assert!(d.record(&key, &Answer::Found(vec![found("10.0.0.1:80")], None)));
        assert!(!d.record(&key, &Answer::Found(vec![found("10.0.0.1:80")], None)));
        assert!(!d.record(&key, &Answer::Failed("timeout".into())));
        assert_eq!(servers(&d), vec!["10.0.0.1:80"], "a failure keeps the set");
        assert!(d.record(
            &key,
            &Answer::Found(vec![found("10.0.0.1:80"), found("10.0.0.2:80")], None)
        ));
        let s = d.servers("app", std::slice::from_ref(&entry));
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].weight.get(), 2, "the entry's weight");
        assert_eq!(s[1].from.as_deref(), Some("app.svc:80"));
        assert!(d.record(&key, &Answer::Empty));
        assert!(
            servers(&d).is_empty(),
            "an authoritative empty answer empties it"
        );
        let (_, _, ok, failed, empty) = d.counts()[0].clone();
        assert_eq!((ok, failed, empty), (3, 1, 1));
    }

    #[test]
    fn ttl_shortens_the_interval_within_bounds() {
        let now = Instant::now();
        let every = Duration::from_secs(30);
        for _ in 0..50 {
            let plain = next_lookup(now, every, None) - now;
            assert!(plain >= Duration::from_secs(27) && plain <= Duration::from_secs(33));
            let short = next_lookup(now, every, Some(Duration::from_secs(5))) - now;
            assert!(short >= Duration::from_millis(4500) && short <= Duration::from_millis(5500));
            let tiny = next_lookup(now, every, Some(Duration::ZERO)) - now;
            assert!(
                tiny >= Duration::from_millis(900),
                "never below 1 s (less jitter)"
            );
        }
    }
}
