//! The live configuration: one [`RuntimeState`], built completely by [`build`] and then
//! published through the single [`Store`] (`ArcSwap`).
//!
//! [`build`] is the one way a state is made, at start-up and at every reload: from the bytes
//! of the config file (read once by the caller), through parsing and validation, to pools whose
//! per-server live state is carried over from the running state by pool name + `addr`. The
//! state owns its access logger: a logger whose target did not change is shared with the
//! previous state; one that changed is opened here, and the old one is flushed and closed when
//! the last request using the old state ends.
//!
//! Each request takes an `Arc` of the state when it starts and keeps it to the end, so a reload
//! never changes the rules under a request in flight.

use crate::access_log::AccessLogger;
use crate::config::{self, Config, ListenerKind};
use crate::discovery::Discovery;
use crate::edge::{self, EdgeStats, ListenerState, Serve};
use crate::lifecycle::Tally;
use crate::policy::{self, RouteState};
use crate::router::Router;
use crate::tls::certs::LoadedCert;
use crate::tls::upstream::PeerTls;
use crate::upstream::{Pool, PoolStats, Server, ServerKey, ServerStats};
use arc_swap::ArcSwap;
use pingora::upstreams::peer::HttpPeer;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// The one place the live state is published.
pub type Store = Arc<ArcSwap<RuntimeState>>;

#[derive(Debug)]
pub struct RuntimeState {
    /// 1 for the config loaded at start, +1 per successful reload.
    pub generation: u64,
    pub config: Arc<Config>,
    pub loaded_at: SystemTime,
    /// The pools, in `config.upstreams` order; each with how its servers are reached.
    pub pools: Vec<LivePool>,
    pub router: Router,
    pub access_log: Arc<AccessLogger>,
    /// Counters of requests that matched no route (`upstream=""`), kept across reloads.
    pub no_route: Arc<PoolStats>,
    /// Counters of answers `static` routes made from disk (`upstream="static"`), kept across
    /// reloads.
    pub static_files: Arc<PoolStats>,
    /// What each client-facing listener does, in `config.listeners` order.
    pub listeners: Vec<ListenerState>,
    /// Whether every listener is plain HTTP (the front door then skips the listener lookup).
    pub plain_only: bool,
    /// Handshakes and requests by protocol, kept across reloads.
    pub edge: Arc<EdgeStats>,
    /// The server's requests in flight and failure counts, kept across reloads.
    pub tally: Arc<Tally>,
    /// Routes with their policies and live state, in `router` order.
    pub routes: Vec<RouteState>,
    /// What DNS entries resolved to (shared by every state).
    pub discovery: Arc<Discovery>,
}

/// Build the state for the config file at `path` whose content is `bytes`. `previous` is the
/// running state on a reload (`None` at start-up). Every problem is one line in `Err`; config
/// errors carry `file:line:col`.
pub fn build(
    path: &Path,
    bytes: &[u8],
    previous: Option<&RuntimeState>,
) -> Result<RuntimeState, Vec<String>> {
    let config = config::load_bytes(bytes, path)
        .map_err(|errs| errs.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    if let Some(p) = previous {
        let fixed = fixed_settings_changed(&p.config, &config);
        if !fixed.is_empty() {
            return Err(fixed);
        }
    }
    let access_log = match previous {
        Some(p)
            if p.access_log
                .matches(&config.access_log, config.access_log_format) =>
        {
            // The same log: reopened, so a reload also picks up a rotated file.
            p.access_log.reopen();
            Arc::clone(&p.access_log)
        }
        _ => Arc::new(
            AccessLogger::open(&config.access_log, config.access_log_format).map_err(|e| {
                vec![format!(
                    "cannot open the access log {:?}: {e}",
                    config.access_log
                )]
            })?,
        ),
    };
    let listeners = edge::build(
        &config.listeners,
        previous.map_or(&[][..], |p| &p.listeners),
    )
    .map_err(|e| vec![e])?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let generation = previous.map_or(1, |p| p.generation + 1);
    Ok(RuntimeState::new(
        config, generation, previous, access_log, listeners,
    ))
}

/// The running state again, with the servers DNS now gives (SPEC §7): the same config,
/// generation, listeners and log; pools rebuilt, carrying per-server state as a reload does.
pub fn refresh(current: &RuntimeState) -> Result<RuntimeState, Vec<String>> {
    let listeners =
        edge::build(&current.config.listeners, &current.listeners).map_err(|e| vec![e])?;
    let mut state = RuntimeState::new(
        (*current.config).clone(),
        current.generation,
        Some(current),
        Arc::clone(&current.access_log),
        listeners,
    );
    state.loaded_at = current.loaded_at;
    Ok(state)
}

/// Concurrent streams per HTTP/2 upstream connection.
const H2_STREAMS: usize = 100;

/// One pool of the live state: its servers with their live state (`upstream::Pool`, pure), and
/// how they are reached (`upstreams.NAME.tls`). Requests and health checks both get their
/// peers here, so a probe speaks the pool's transport.
#[derive(Debug)]
pub struct LivePool {
    pub pool: Arc<Pool>,
    /// TLS to the pool's servers, built once per loaded state.
    pub tls: Option<PeerTls>,
}

impl std::ops::Deref for LivePool {
    type Target = Pool;
    fn deref(&self) -> &Pool {
        &self.pool
    }
}

impl LivePool {
    /// A peer for `server`, one of this pool's: TLS with the pool's SNI, CA and client
    /// certificate when it has `tls:`, plain otherwise; HTTP/2 only for `h2c` / `h2` pools
    /// (SPEC §13). On a `send_proxy_protocol` pool its connections start with a header naming
    /// no client (a health check's); the request path replaces it with its client's.
    /// Timeouts are the caller's.
    pub fn peer(&self, server: &Server) -> HttpPeer {
        let config = &server.config;
        let mut peer = match &self.tls {
            Some(tls) => tls.secure(config.socket.peer(true, String::new()), &config.addr),
            None => config.socket.peer(false, String::new()),
        };
        if self.config.protocol.is_h2() {
            peer.options.alpn = pingora::protocols::ALPN::H2;
            // Streams of one connection shared by concurrent requests (gRPC's model); the
            // server's own SETTINGS may lower it.
            peer.options.max_h2_streams = H2_STREAMS;
        }
        if let Some(version) = self.config.send_proxy_protocol {
            peer.options.custom_l4 = Some(Arc::new(crate::proxy_protocol::SendHeader {
                header: crate::proxy_protocol::local(version),
            }));
            // Never pooled with the connections of clients.
            peer.group_key = u64::MAX;
        }
        peer
    }

    /// The `Host` a request of switchyard's own (a health check) sends to `server`: the
    /// pool's `tls.sni` when set, else the server's `addr` as configured (`localhost` for a Unix
    /// socket, as nginx sends).
    pub fn own_host<'a>(&'a self, server: &'a Server) -> &'a str {
        let addr = match server.config.socket {
            // nginx's `Host` for a Unix socket.
            config::Endpoint::Unix(_) => "localhost",
            config::Endpoint::Inet(_) => server.config.addr.as_str(),
        };
        self.tls.as_ref().and_then(PeerTls::sni).unwrap_or(addr)
    }
}

/// What cannot change without restarting the listeners or runtimes (SPEC §3): a reload that
/// changes it is refused with the reason.
pub fn fixed_settings_changed(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let sockets = |c: &Config| -> Vec<String> {
        c.listeners
            .iter()
            .map(|l| format!("{} {}", l.kind.name(), l.addr))
            .collect()
    };
    let (before, after) = (sockets(old), sockets(new));
    if before != after {
        out.push(format!(
            "`listen` changed ({} -> {}); listeners cannot change in a reload (their certificates, `hsts`, `http2` and `min_version` can): restart, or start a new process with --upgrade and send SIGQUIT to this one",
            before.join(", "),
            after.join(", ")
        ));
    }
    if old.admin_listen != new.admin_listen {
        out.push(format!(
            "`admin.listen` changed ({} -> {}); it cannot change in a reload: restart, or use the SIGQUIT upgrade",
            old.admin_listen, new.admin_listen
        ));
    }
    if old.worker_threads() != new.worker_threads() {
        out.push(format!(
            "`threads` changed ({} -> {}); worker threads cannot change in a reload: restart, or use the SIGQUIT upgrade",
            old.threads, new.threads
        ));
    }
    out
}

impl RuntimeState {
    /// The state for a validated `config`, carrying over per-server state from `previous` for
    /// every server that stays (same pool, same `addr`), whatever else changed about it.
    pub fn new(
        config: Config,
        generation: u64,
        previous: Option<&RuntimeState>,
        access_log: Arc<AccessLogger>,
        listeners: Vec<ListenerState>,
    ) -> RuntimeState {
        let mut carried: HashMap<ServerKey, Arc<ServerStats>> = previous
            .map(|p| p.server_stats().collect())
            .unwrap_or_default();
        let old_pools: HashMap<&str, &Pool> = previous
            .map(|p| {
                p.pools
                    .iter()
                    .map(|live| (live.name.as_str(), &*live.pool))
                    .collect()
            })
            .unwrap_or_default();
        let discovery: Arc<Discovery> =
            previous.map_or_else(Default::default, |p| Arc::clone(&p.discovery));
        let pools = config
            .upstreams
            .iter()
            .map(|u| {
                // Servers followed in DNS join the configured ones.
                let with_dns;
                let u = if u.dns.is_empty() {
                    u
                } else {
                    let mut all = u.clone();
                    all.servers.extend(discovery.servers(&u.name, &u.dns));
                    with_dns = all;
                    &with_dns
                };
                LivePool {
                    pool: Arc::new(Pool::new(
                        u,
                        old_pools.get(u.name.as_str()).copied(),
                        |addr| {
                            carried.remove(&ServerKey {
                                pool: u.name.clone(),
                                addr: addr.to_string(),
                            })
                        },
                    )),
                    tls: u.tls.as_ref().map(PeerTls::new),
                }
            })
            .collect();
        let router = Router::new(&config);
        let routes = policy::build(&config, previous.map_or(&[][..], |p| &p.routes));
        RuntimeState {
            generation,
            config: Arc::new(config),
            loaded_at: SystemTime::now(),
            pools,
            router,
            access_log,
            no_route: previous.map_or_else(Default::default, |p| Arc::clone(&p.no_route)),
            static_files: previous.map_or_else(Default::default, |p| Arc::clone(&p.static_files)),
            plain_only: listeners
                .iter()
                .all(|l| matches!(l.serve, Serve::Plain) && !l.proxy_protocol),
            listeners,
            edge: previous.map_or_else(Default::default, |p| Arc::clone(&p.edge)),
            tally: previous.map_or_else(Default::default, |p| Arc::clone(&p.tally)),
            routes,
            discovery,
        }
    }

    /// Every certificate served or presented: TLS listeners' ones, then upstream client
    /// certificates, in file order.
    pub fn certificates(&self) -> impl Iterator<Item = &LoadedCert> + '_ {
        let served = self.config.listeners.iter().flat_map(|l| match &l.kind {
            ListenerKind::Tls(t) => t.certs.certs(),
            _ => &[],
        });
        let clients = self
            .config
            .upstreams
            .iter()
            .filter_map(|u| u.tls.as_ref()?.client.as_ref())
            .map(|c| &c.cert);
        served.chain(clients)
    }

    /// Every server's key and live state.
    pub fn server_stats(&self) -> impl Iterator<Item = (ServerKey, Arc<ServerStats>)> + '_ {
        self.pools.iter().flat_map(|p| {
            p.servers.iter().map(|s| {
                (
                    ServerKey {
                        pool: p.name.clone(),
                        addr: s.config.addr.clone(),
                    },
                    Arc::clone(&s.stats),
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::PathBuf;

    fn cfg(text: &str) -> Config {
        load_str(text, "t", PathBuf::from("t")).unwrap()
    }

    #[test]
    fn listen_admin_and_threads_are_fixed() {
        let base = "listen: [\"127.0.0.1:8080\"]\nthreads: 2\nupstreams:\n  app: {servers: [{addr: \"127.0.0.1:1\"}]}\n";
        let a = cfg(base);
        assert!(
            fixed_settings_changed(&a, &cfg(&base.replace("127.0.0.1:1", "127.0.0.1:2")))
                .is_empty()
        );
        let moved = fixed_settings_changed(&a, &cfg(&base.replace("8080", "8081")));
        assert_eq!(moved.len(), 1);
        assert!(moved[0].contains("`listen` changed"), "{moved:?}");
        assert!(moved[0].contains("--upgrade"), "{moved:?}");
        let threads = fixed_settings_changed(&a, &cfg(&base.replace("threads: 2", "threads: 4")));
        assert!(threads[0].contains("`threads` changed"), "{threads:?}");
        let admin = fixed_settings_changed(
            &a,
            &cfg(&format!("{base}admin: {{listen: \"127.0.0.1:9999\"}}\n")),
        );
        assert!(admin[0].contains("`admin.listen` changed"), "{admin:?}");
    }

    #[test]
    fn a_rebuild_carries_servers_pools_and_the_access_log() {
        let text = b"listen: [\"127.0.0.1:8080\"]\naccess_log: off\nupstreams:\n  app: {servers: [{addr: \"127.0.0.1:1\"}, {addr: \"127.0.0.1:2\"}]}\n";
        let path = Path::new("t.yaml");
        let first = build(path, text, None).unwrap();
        assert_eq!(first.generation, 1);
        let second = build(path, text, Some(&first)).unwrap();
        assert_eq!(second.generation, 2);
        assert!(Arc::ptr_eq(&first.access_log, &second.access_log));
        assert!(Arc::ptr_eq(&first.pools[0].stats, &second.pools[0].stats));
        assert!(Arc::ptr_eq(
            &first.pools[0].servers[1].stats,
            &second.pools[0].servers[1].stats
        ));
        let refused = build(
            path,
            &String::from_utf8_lossy(text)
                .replace("8080", "8081")
                .into_bytes(),
            Some(&second),
        )
        .unwrap_err();
        assert!(refused[0].contains("`listen` changed"), "{refused:?}");
        let bad = build(
            path,
            b"listen: [\"127.0.0.1:8080\"]\nupstreams: {}\nbogus: 1\n",
            None,
        )
        .unwrap_err();
        assert!(bad.iter().any(|e| e.starts_with("t.yaml:3:")), "{bad:?}");
    }
}
