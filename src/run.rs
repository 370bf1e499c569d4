//! Build the pingora server from a validated config and run it until shutdown.

use crate::admin::Admin;
use crate::changes;
use crate::config::{self, Config};
use crate::lifecycle;
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
use std::path::Path;
use std::sync::Arc;

/// Connections open at once on the admin port.
const ADMIN_MAX_CONNECTIONS: u32 = 64;

pub struct RunOptions<'a> {
    pub config_path: &'a Path,
    /// Take over the listening sockets of a running switchyard (pingora's `--upgrade`).
    pub upgrade: bool,
}

/// Fail early, with a clear message, when a listen address is taken (pingora would panic).
fn check_bindable(config: &Config) -> anyhow::Result<()> {
    for addr in config
        .listen_addrs()
        .chain(std::iter::once(config.admin_listen))
    {
        std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
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

/// Run the proxy. Returns only on a start-up error; otherwise the process exits when done.
pub fn run(opts: RunOptions<'_>) -> anyhow::Result<()> {
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
    if !opts.upgrade {
        check_bindable(&config)?;
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
    {
        // Flush whichever access log is current at exit; loggers replaced by a reload were
        // flushed and closed when the last request using them ended.
        let store = Arc::clone(&store);
        lifecycle::on_exit(Arc::new(move || store.load().access_log.shutdown()));
    }

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
    // The one writer of the live state; everything below that changes it sends it a change.
    let (changes, inbox) = changes::channel();
    let writer = reload::Writer::new(Arc::clone(&store), path.to_path_buf(), &bytes);
    let reload_stats = writer.stats();
    writer
        .spawn(inbox)
        .context("cannot start the state's writer")?;
    lifecycle::handle_signals(changes.clone(), Arc::clone(&store))
        .context("cannot listen for SIGHUP and SIGUSR1")?;
    crate::log_summary::start().context("cannot start the log summary")?;
    // The watcher always runs; it reloads only while the running config says `watch: true`.
    if let Err(e) = reload::watch(path, Arc::clone(&store), changes.clone())
        && config.watch
    {
        tracing::warn!(
            "cannot watch {} for changes ({e}); reload with SIGHUP or POST /reload",
            path.display()
        );
    }

    let opt = Opt {
        upgrade: opts.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    lifecycle::exit_when_drained(server.watch_execution_phase());

    // One service per worker thread, nginx's worker model: each accepts from the listening
    // sockets (one socket per address, shared; vendor/README.md patch 3), keeps its connections
    // on its own thread and has its own pool of idle upstream connections, so neither a client
    // connection nor a pooled upstream socket moves between threads. The connection limit and
    // the balancing state (least_conn's in-flight counts) stay process-wide.
    let conns = Arc::new(conns::Conns::default());
    for w in 0..config.worker_threads() {
        let mut proxy =
            pingora::proxy::http_proxy(&server.configuration, Switchyard::new(Arc::clone(&store)));
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
                    default: default_max_connections,
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
                Metrics::new(Arc::clone(&store), reload_stats),
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
        DnsService::new(Arc::clone(&store), changes),
    );
    dns.threads = Some(1);
    server.add_service(dns);

    let mut outage = pingora::services::background::background_service(
        "outage probes",
        OutageProber::new(Arc::clone(&store)),
    );
    outage.threads = Some(1);
    server.add_service(outage);

    server.run(RunArgs::default());
    lifecycle::exit(0)
}
