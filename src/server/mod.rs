//! switchyard as a library server: [`start`] builds the pingora server for a config file and
//! runs it on a thread of its own until it is stopped; the [`Handle`] stops it and waits for
//! it. Nothing is process-global: each server has its own state, writer, counters and tasks,
//! so several can run in one process (the integration tests do). `main.rs` is a thin shell: it
//! asks for the process's signals ([`Options::signals`]) and turns the result into an exit
//! code.
//!
//! What runs beside the proxy's worker services, and why:
//! - the `lifecycle` background service (its own runtime): the state's writer
//!   (`reload::Writer::run`), the config file watcher (`reload::Watching::run`) and the failure
//!   summary (`log_summary`), each a task that ends at shutdown;
//! - the health-check, DNS and outage-probe background services;
//! - with [`Options::signals`], one thread named `signals`: the `SIGHUP` and `SIGUSR1` streams
//!   must exist before the listeners serve (a `SIGHUP` delivered earlier would end the
//!   process), so they are registered on a runtime of their own before the server starts.

use crate::admin::Admin;
use crate::changes;
use crate::config::{self, Config};
mod tasks;

use crate::metrics::Metrics;
use crate::proxy::Switchyard;
use crate::proxy::conns;
use crate::proxy::front::{ConnLimit, FrontDoor};
use crate::reload;
use crate::services::dns::DnsService;
use crate::services::health::HealthChecker;
use crate::services::outage::OutageProber;
use crate::state::{self, Store};
use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use pingora::apps::HttpServerOptions;
use pingora::apps::http_app::HttpServer;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};
use pingora::services::listening::Service;
use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::io::IntoRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tasks::{Lifecycle, ShutdownSignals, handle_signals};
use tokio::sync::watch;

/// Connections open at once on the admin port.
const ADMIN_MAX_CONNECTIONS: u32 = 64;

pub struct Options<'a> {
    pub config_path: &'a Path,
    /// Take over the listening sockets of a running switchyard (pingora's `--upgrade`).
    pub upgrade: bool,
    /// Sockets already bound and listening: each serves the address of the config's (`listen`
    /// or `admin.listen`) it is bound to, instead of a socket bound at start. The tests bind
    /// port 0 and write the port they got into the config.
    pub listeners: Vec<TcpListener>,
    /// The process's signals: `SIGTERM` (graceful stop), `SIGINT` (fast), `SIGQUIT` (upgrade),
    /// `SIGHUP` (reload) and `SIGUSR1` (reopen the access log). Without, only
    /// [`Handle::stop`] stops the server (and one process may run several).
    pub signals: bool,
}

/// How to stop a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Stop accepting, finish the requests in flight (`shutdown_grace` at most): `SIGTERM`.
    Graceful,
    /// Stop now: `SIGINT`.
    Fast,
}

/// A running server.
pub struct Handle {
    stop: watch::Sender<Option<Stop>>,
    thread: Option<std::thread::JoinHandle<()>>,
    store: Store,
}

impl Handle {
    /// Ask the server to stop; [`wait`](Self::wait) for it.
    pub fn stop(&self, how: Stop) {
        self.stop.send_replace(Some(how));
    }

    /// Wait until the server has stopped (after [`stop`](Self::stop), or a signal).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// The live state.
    pub fn state(&self) -> Arc<crate::state::RuntimeState> {
        self.store.load_full()
    }
}

impl Drop for Handle {
    /// A server whose handle is dropped stops at once.
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop(Stop::Fast);
            let _ = t.join();
        }
    }
}

/// Start the server of the config file at `opts.config_path`, serving once this returns
/// `Ok`. A start-up error (the config, an address taken) is returned before anything serves.
pub fn start(opts: Options<'_>) -> anyhow::Result<Handle> {
    let prepared = prepare(opts)?;
    let store = Arc::clone(&prepared.store);
    let (stop, stop_rx) = watch::channel(None);
    let thread = std::thread::Builder::new()
        .name("switchyard".into())
        .spawn(move || prepared.run(stop_rx))
        .context("cannot start the server's thread")?;
    Ok(Handle {
        stop,
        thread: Some(thread),
        store,
    })
}

/// Run the server until it stops (the binary: `switchyard run`).
pub fn run(opts: Options<'_>) -> anyhow::Result<()> {
    start(opts)?.wait();
    Ok(())
}

/// Fail early, with a clear message, when a listen address is taken (pingora would panic).
fn check_bindable(config: &Config) -> anyhow::Result<()> {
    for addr in config
        .listen_addrs()
        .chain(std::iter::once(config.admin_listen))
    {
        TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    }
    Ok(())
}

/// pingora's listen backlog (`LISTENER_BACKLOG`), for the sockets bound here too.
const LISTEN_BACKLOG: libc::c_int = 65535;

/// Bind every address of the config (`listen`, `admin.listen`) that `listeners` has no
/// socket for, and give every socket pingora's backlog.
fn bind_missing(
    config: &Config,
    listeners: &mut Vec<(SocketAddr, TcpListener)>,
) -> anyhow::Result<()> {
    for addr in config
        .listen_addrs()
        .chain(std::iter::once(config.admin_listen))
    {
        if listeners.iter().any(|(a, _)| *a == addr) {
            continue;
        }
        let l = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        listeners.push((addr, l));
    }
    for (_, l) in listeners.iter() {
        // SAFETY: `listen` on a socket this function's caller owns, already listening: it
        // only raises the backlog (std binds with a smaller one).
        unsafe {
            libc::listen(std::os::unix::io::AsRawFd::as_raw_fd(l), LISTEN_BACKLOG);
        }
    }
    Ok(())
}

/// Per-instance file names for pingora's pid file and upgrade socket, so that two switchyards
/// on one machine (with different listeners) never collide, and an upgrade finds its peer.
fn instance_id(config: &Config) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    config.listen_addrs().for_each(|a| a.hash(&mut h));
    format!("{:016x}", h.finish())
}

/// Idle upstream connections one worker keeps: the pools' `keepalive.idle`, summed.
fn upstream_idle_per_worker(config: &Config) -> usize {
    config
        .upstreams
        .iter()
        .map(|u| u.keepalive.idle)
        .sum::<usize>()
        .max(1)
}

pub fn server_conf(config: &Config) -> ServerConf {
    let mut conf = ServerConf {
        threads: config.worker_threads(),
        // pingora waits this long for in-flight requests after SIGTERM; switchyard exits
        // earlier when they are done (see lifecycle.rs). Rounded up to whole seconds.
        grace_period_seconds: Some(config.shutdown_grace.as_millis().div_ceil(1000) as u64),
        graceful_shutdown_timeout_seconds: Some(1),
        // Each worker's proxy keeps its own pool of idle upstream connections (see `run`),
        // holding the pools' `keepalive.idle` summed, as nginx's `keepalive N` is per worker.
        // With fewer, a proxy busy with many clients closes idle connections it is about to
        // need: at 200 clients on one thread, `idle: 64` measured 78 k requests in 5 s (p99
        // 28 ms) against 122 k (p99 11 ms) with 256.
        upstream_keepalive_pool_size: upstream_idle_per_worker(config),
        // Attempts per request are bounded by each pool's `retry.tries` (at most 100) plus one
        // replay after a stale keep-alive connection; this is only pingora's outer fuse.
        max_retries: 101,
        ..ServerConf::default()
    };
    let id = instance_id(config);
    let dir = std::env::temp_dir();
    conf.pid_file = dir
        .join(format!("switchyard-{id}.pid"))
        .display()
        .to_string();
    conf.upgrade_sock = dir
        .join(format!("switchyard-{id}.sock"))
        .display()
        .to_string();
    conf
}

/// Streams one HTTP/2 client connection may have open at once (nginx's
/// `http2_max_concurrent_streams` default).
const H2_MAX_CONCURRENT_STREAMS: u32 = 128;

/// The HTTP/2 server's limits (read at start): concurrent streams, and a decoded header list no
/// larger than an HTTP/1.1 head may be (`limits.max_header_bytes`).
/// A client-facing TCP listener. Its connections get no socket buffers of pingora's (a 64 KiB
/// read buffer and a 1.5 KiB write buffer each, held for the connection's whole life, idle or
/// not): the front door's guard reads each head itself, into what the head needs, and gathers
/// a response's small writes only while it is written (`proxy/guarded.rs`); pingora reads
/// bodies into its own buffers.
fn client_listener(addr: std::net::SocketAddr) -> ListenerConfig {
    ListenerConfig::tcp(addr.to_string()).l4_buffer(L4BufferSettings::unbuffered())
}

fn h2_options(limits: &config::Limits) -> pingora::protocols::http::v2::server::H2Options {
    let mut o = pingora::protocols::http::v2::server::default_h2_options();
    o.max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS);
    o.max_header_list_size(limits.max_header_bytes.min(u32::MAX as usize) as u32);
    o
}

/// A server checked and ready to run: everything that can fail at start has.
struct Prepared {
    store: Store,
    path: std::path::PathBuf,
    /// The bytes the first state was built from.
    bytes: Vec<u8>,
    conf: ServerConf,
    upgrade: bool,
    signals: bool,
    listeners: Vec<(SocketAddr, TcpListener)>,
    default_max_connections: u32,
}

/// Load and check the config, look DNS entries up once, size the limits.
fn prepare(opts: Options<'_>) -> anyhow::Result<Prepared> {
    let path = opts.config_path;
    let bytes = config::read(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let initial = match state::build(path, &bytes, None) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            bail!("{} error(s) in {}", errors.len(), path.display())
        }
    };
    let config = Arc::clone(&initial.config);
    let mut listeners = opts
        .listeners
        .into_iter()
        .map(|l| Ok((l.local_addr()?, l)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("a listener given has no address")?;
    if opts.upgrade {
        // The running process's sockets are taken over.
    } else if listeners.is_empty() {
        // The binary: pingora binds (with its socket options), after this check that makes a
        // taken address a clear error (pingora would panic).
        check_bindable(&config)?;
    } else {
        // A library caller that bound some sockets: the others are bound here too, so every
        // one listens from the moment `start` returns.
        bind_missing(&config, &mut listeners)?;
    }
    // Servers followed in DNS are looked up once before serving; a name that does not resolve
    // yet leaves its entry empty (a warning), and the discovery service keeps asking.
    let initial = if config.upstreams.iter().any(|u| !u.dns.is_empty()) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the first DNS lookups")?;
        if let Err(e) = rt.block_on(DnsService::resolve_all(&initial.discovery, &config)) {
            tracing::warn!("{e}");
        }
        state::refresh(&initial).map_err(|e| anyhow::anyhow!(e.join("; ")))?
    } else {
        initial
    };
    let store: Store = Arc::new(ArcSwap::from_pointee(initial));

    let conf = server_conf(&config);
    // Room for connections (nginx's worker_rlimit_nofile), then the default for
    // limits.max_connections within it.
    let open_files = conns::raise_open_file_limit();
    let memory = conns::memory_limit();
    let default_max_connections = conns::default_max(
        open_files,
        (conf.upstream_keepalive_pool_size * config.worker_threads()) as u64,
        config.worker_threads() as u64,
        memory,
    );
    tracing::info!(
        open_file_limit = open_files,
        memory_limit_mib = memory.map(|m| m >> 20),
        max_connections = config
            .limits
            .max_connections
            .map_or(default_max_connections, |m| m.get()),
        "connection limits"
    );
    tracing::info!(
        config = %path.display(),
        listen = ?config.listen_addrs().collect::<Vec<_>>(),
        admin = %config.admin_listen,
        threads = conf.threads,
        upstreams = config.upstreams.len(),
        "starting switchyard"
    );
    Ok(Prepared {
        store,
        path: path.to_path_buf(),
        bytes,
        conf,
        upgrade: opts.upgrade,
        signals: opts.signals,
        listeners,
        default_max_connections,
    })
}

impl Prepared {
    /// Build the pingora server and run it until it stops (on the server's thread).
    fn run(self, stop: watch::Receiver<Option<Stop>>) {
        let store = Arc::clone(&self.store);
        // Taken out of a state, never kept: a state held here would live (with its access
        // log) as long as the server.
        let (config, tally) = {
            let state = store.load();
            (Arc::clone(&state.config), Arc::clone(&state.tally))
        };
        // The one writer of the live state; everything below that changes it sends it a
        // change.
        let (changes, inbox) = changes::channel();
        let writer = reload::Writer::new(Arc::clone(&store), self.path.clone(), &self.bytes);
        let signals = if self.signals {
            match handle_signals(changes.clone(), Arc::clone(&store), stop.clone()) {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!("cannot listen for SIGHUP and SIGUSR1: {e}");
                    true
                }
            }
        } else {
            false
        };
        // The watcher always runs; it asks for reloads only while the running config says
        // `watch: true`.
        let watching = match reload::watch(&self.path, Arc::clone(&store), changes.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                if config.watch {
                    tracing::warn!(
                        "cannot watch {} for changes ({e}); reload with SIGHUP or POST /reload",
                        self.path.display()
                    );
                }
                None
            }
        };

        let opt = Opt {
            upgrade: self.upgrade,
            ..Opt::default()
        };
        let mut server = Server::new_with_opt_and_conf(opt, self.conf);
        for (addr, listener) in self.listeners {
            // pingora's listeners are tokio's, which need a non-blocking socket.
            if let Err(e) = listener.set_nonblocking(true) {
                tracing::error!("cannot use the socket given for {addr}: {e}");
                continue;
            }
            server.add_listen_fd(addr.to_string(), listener.into_raw_fd());
        }
        server.bootstrap();

        // One service per worker thread, nginx's worker model: each accepts from the listening
        // sockets (one socket per address, shared; vendor/README.md patch 3), keeps its connections
        // on its own thread and has its own pool of idle upstream connections, so neither a client
        // connection nor a pooled upstream socket moves between threads. The connection limit and
        // the balancing state (least_conn's in-flight counts) stay process-wide.
        let conns = Arc::new(conns::Conns::default());
        for w in 0..config.worker_threads() {
            let mut proxy = pingora::proxy::http_proxy(
                &server.configuration,
                Switchyard::new(Arc::clone(&store)),
            );
            let mut server_options = HttpServerOptions::default();
            server_options.h2c = true;
            // An HTTP/2 connection without a stream open is closed after limits.keepalive_timeout,
            // as an idle HTTP/1.1 one (read at start).
            server_options.h2_idle_timeout = Some(config.limits.keepalive_timeout);
            proxy.server_options = Some(server_options);
            proxy.h2_options = Some(h2_options(&config.limits));
            let mut service = Service::new(
                format!("switchyard-{w}"),
                FrontDoor::edge(
                    proxy,
                    Arc::clone(&store),
                    Arc::clone(&conns),
                    ConnLimit::Configured {
                        default: self.default_max_connections,
                    },
                ),
            );
            for addr in config.listen_addrs() {
                service.add_listener(client_listener(addr));
            }
            service.threads = Some(1);
            server.add_service(service);
        }

        let mut admin = Service::new(
            "admin".to_string(),
            // The same front door as the proxy port: head size, time and syntax limits.
            FrontDoor::new(
                Arc::default(),
                HttpServer::new_app(Admin::new(
                    Arc::clone(&store),
                    Metrics::new(Arc::clone(&store), writer.stats()),
                    changes.clone(),
                )),
                Arc::clone(&store),
                // Scrapers, probes and an operator: a few connections; a flood of idle ones
                // must not take files from the proxy port.
                ConnLimit::Fixed(ADMIN_MAX_CONNECTIONS),
            ),
        );
        admin.add_listener(client_listener(config.admin_listen));
        admin.threads = Some(1);
        server.add_service(admin);

        let mut health = pingora::services::background::background_service(
            "health checks",
            HealthChecker::new(Arc::clone(&store)),
        );
        health.threads = Some(1);
        server.add_service(health);

        let mut dns = pingora::services::background::background_service(
            "dns discovery",
            DnsService::new(Arc::clone(&store), changes.clone()),
        );
        dns.threads = Some(1);
        server.add_service(dns);

        let mut outage = pingora::services::background::background_service(
            "outage probes",
            OutageProber::new(Arc::clone(&store)),
        );
        outage.threads = Some(1);
        server.add_service(outage);

        let mut lifecycle = pingora::services::background::background_service(
            "lifecycle",
            Lifecycle {
                parts: Mutex::new(Some((writer, inbox, watching))),
                tally: Arc::clone(&tally),
            },
        );
        lifecycle.threads = Some(1);
        server.add_service(lifecycle);

        server.run(RunArgs {
            shutdown_signal: Box::new(ShutdownSignals {
                process: signals,
                stop,
                tally,
            }),
        });
        // Flush whichever access log is current; loggers replaced by a reload were flushed and
        // closed when the last request using them ended.
        store.load().access_log.shutdown();
        tracing::info!("switchyard stopped");
    }
}
