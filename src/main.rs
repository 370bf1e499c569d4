//! The `switchyard` command line (SPEC §1): run, check, demo.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use switchyard::config::{self, Config, ListenerKind};
use switchyard::server::{self, Options};

const DEFAULT_CONFIG: &str = "/etc/switchyard/switchyard.yaml";

/// mimalloc instead of glibc malloc: a request allocates and frees a few dozen blocks, some of
/// them large (pingora's request futures), and glibc's malloc/free took about a quarter of the
/// proxy's user-space instructions under callgrind (see benches/results/).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A layer-7 HTTP reverse proxy and load balancer, configured by one YAML file",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    /// Check the configuration and exit (same as `switchyard check`)
    #[arg(short = 't', long = "test")]
    test: bool,
}

#[derive(Args, Clone)]
struct ConfigArg {
    /// Config file [default: $SWITCHYARD_CONFIG, else /etc/switchyard/switchyard.yaml]
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Take over the listening sockets of a running switchyard (send it SIGQUIT)
    #[arg(short = 'u', long)]
    upgrade: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default)
    Run(RunArgs),
    /// Parse and validate the configuration; bind nothing
    Check(ConfigArg),
    /// Start three demo app servers and the proxy in front of them
    Demo,
    /// Print the JSON Schema of the config file (for editors and CI)
    Schema,
    /// Translate an nginx config into a switchyard config (stdout, or -o FILE)
    ImportNginx {
        /// The nginx config (its includes are followed)
        file: PathBuf,
        /// Write the YAML here instead of stdout
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// A demo app server (used by `demo`)
    #[command(hide = true)]
    DemoApp {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        name: String,
    },
}

fn config_path(arg: &ConfigArg) -> PathBuf {
    arg.config
        .clone()
        .or_else(|| std::env::var_os("SWITCHYARD_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
}

fn init_logging() {
    // pingora's own per-request error lines are off unless RUST_LOG asks for them: switchyard
    // logs state changes and a periodic summary of failed requests instead (log_summary.rs).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,pingora_proxy=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The one-screen summary printed by `check`.
fn summary(path: &std::path::Path, c: &Config) -> String {
    let mut out = format!("{}: configuration is valid\n", path.display());
    let listen: Vec<String> = c
        .listeners
        .iter()
        .map(|l| {
            let text = listener_text(l);
            if l.proxy_protocol {
                format!("{text} (PROXY protocol)")
            } else {
                text
            }
        })
        .collect();
    out += &format!("  listen     {}\n", listen.join(", "));
    if let Some(r) = &c.real_ip {
        out += &format!(
            "  real_ip    {:?} from {}{}\n",
            r.source,
            r.from
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if r.recursive { ", recursive" } else { "" }
        );
    }
    summary_rest(c, out)
}

fn listener_text(l: &switchyard::config::Listener) -> String {
    match &l.kind {
        ListenerKind::Plain => l.addr.to_string(),
        ListenerKind::Tls(t) => format!(
            "{} (TLS, {} certificate{}{})",
            l.addr,
            t.certs.certs().len(),
            if t.certs.certs().len() == 1 { "" } else { "s" },
            if t.http2 { ", HTTP/2" } else { "" }
        ),
        ListenerKind::RedirectHttps { https_port } => {
            format!("{} (redirect to HTTPS port {https_port})", l.addr)
        }
    }
}

fn summary_rest(c: &Config, mut out: String) -> String {
    out += &format!("  admin      {}\n", c.admin_listen);
    for l in &c.listeners {
        if let ListenerKind::Tls(t) = &l.kind {
            for cert in t.certs.certs() {
                let expires: chrono::DateTime<chrono::Utc> = cert.not_after.into();
                out += &format!(
                    "    {} {}: {} (expires {})\n",
                    l.addr,
                    cert.cert_path.display(),
                    cert.names.join(", "),
                    expires.format("%Y-%m-%d")
                );
            }
        }
    }
    let threads = if c.threads == 0 {
        format!("auto ({} on this machine)", c.worker_threads())
    } else {
        c.threads.to_string()
    };
    out += &format!("  threads    {threads}\n");
    out += &format!("  upstreams  {}\n", c.upstreams.len());
    for u in &c.upstreams {
        let balance = match &u.balance {
            config::Balance::Hash(key) => format!(
                "hash on {}",
                match key {
                    config::HashKey::ClientIp => "client_ip".to_string(),
                    config::HashKey::Path => "path".to_string(),
                    config::HashKey::Header(h) => format!("header:{h}"),
                    config::HashKey::Cookie(c) => format!("cookie:{c}"),
                }
            ),
            other => other.name().to_string(),
        };
        let n = u.servers.len();
        let dns = match u.dns.len() {
            0 => String::new(),
            1 => ", 1 DNS entry".to_string(),
            m => format!(", {m} DNS entries"),
        };
        let health = match &u.health_check {
            Some(h) => format!(", health check {} every {:?}", h.path, h.interval),
            None => String::new(),
        };
        let tls = match &u.tls {
            Some(t) => format!(
                ", TLS{}{}{}",
                t.sni
                    .as_deref()
                    .map_or(String::new(), |s| format!(" to {s}")),
                if t.verify { "" } else { " NOT VERIFIED" },
                if t.client.is_some() {
                    " with a client certificate"
                } else {
                    ""
                }
            ),
            None => String::new(),
        };
        let mut transport = String::new();
        if u.protocol.is_h2() {
            transport += &format!(", {}", u.protocol.name());
        }
        if let Some(v) = u.send_proxy_protocol {
            transport += &format!(", PROXY {v:?} header sent");
        }
        for (what, n) in [
            ("requests", u.buffering.request),
            ("answers", u.buffering.response),
        ] {
            if n > 0 {
                transport += &format!(", {what} buffered up to {n} bytes");
            }
        }
        out += &format!(
            "    {} ({balance}, {n} server{}{dns}{health}{tls}{transport})\n",
            u.name,
            if n == 1 { "" } else { "s" }
        );
        for s in &u.servers {
            let mut extra = String::new();
            if s.backup {
                extra += ", backup";
            }
            if let Some(m) = s.max_conns {
                extra += &format!(", max_conns {m}");
            }
            let resolved = if s.addr == s.socket.to_string() {
                String::new()
            } else {
                format!(" -> {}", s.socket)
            };
            out += &format!(
                "      {}{resolved} (weight {}{extra})\n",
                s.addr,
                s.weight.get()
            );
        }
        for e in &u.dns {
            let weight = match e.lookup {
                config::Lookup::Srv(_) => "weights from SRV".to_string(),
                config::Lookup::Host { .. } => format!("weight {}", e.weight.get()),
            };
            let backup = if e.backup { ", backup" } else { "" };
            out += &format!(
                "      {} (followed in DNS every {:?}, {weight}{backup})\n",
                e.name, e.every
            );
        }
    }
    if !c.maps.is_empty() {
        let names: Vec<&str> = c.maps.iter().map(|m| m.name.as_str()).collect();
        out += &format!("  maps       {}\n", names.join(", "));
    }
    for (status, page) in &c.error_pages.0 {
        out += &format!("  error page {status}: {}\n", page.path.display());
    }
    if c.routes.is_empty() {
        let only = c.upstreams.first().map_or("-", |u| u.name.as_str());
        out += &format!("  routes     none: all traffic goes to {only}\n");
    } else {
        out += &format!("  routes     {}\n", c.routes.len());
        for r in &c.routes {
            let host = match &r.host {
                config::HostMatch::Any => "*".to_string(),
                h => h.label(),
            };
            let to = match (&r.upstream, &r.policy.redirect, &r.policy.respond) {
                (Some(u), _, _) => c.upstreams[*u].name.clone(),
                (None, None, None) if r.upstream_map.is_some() => {
                    let m = r.upstream_map.as_ref().map_or(0, |m| m.map);
                    let mut pools: Vec<&str> = r
                        .upstream_map
                        .iter()
                        .flat_map(|m| &m.pools)
                        .map(|&p| c.upstreams[p].name.as_str())
                        .collect();
                    pools.sort_unstable();
                    pools.dedup();
                    let name = c.maps.get(m).map_or("?", |m| m.name.as_str());
                    format!("${name} ({})", pools.join(" | "))
                }
                (None, Some(rd), _) => format!("{} {}", rd.status, rd.to),
                (None, None, Some(rs)) => format!("respond {}", rs.status),
                (None, None, None) => "-".to_string(),
            };
            let mut what = Vec::new();
            let p = &r.policy;
            for (on, label) in [
                (p.strip_prefix, "strip_prefix"),
                (p.rewrite.is_some(), "rewrite"),
                (!p.request_headers.is_empty(), "request_headers"),
                (!p.response_headers.is_empty(), "response_headers"),
                (p.access.is_some(), "allow/deny"),
                (p.rate_limit.is_some(), "rate_limit"),
                (p.max_body_bytes.is_some(), "max_body_bytes"),
                (p.compress, "compress"),
                (p.error_pages.is_some(), "error_pages"),
                (p.intercept_errors, "intercept_errors"),
                (!r.listeners.is_empty(), "listeners"),
                (r.conditions.is_some(), "match"),
            ] {
                if on {
                    what.push(label);
                }
            }
            let what = if what.is_empty() {
                String::new()
            } else {
                format!(" [{}]", what.join(", "))
            };
            out += &format!("    {} = {host}{} -> {to}{what}\n", r.name, r.path.label());
        }
    }
    out
}

/// `import-nginx`: exit 0 when everything was translated, 2 when something was skipped (the
/// YAML is still written), 1 when the nginx file cannot be parsed or the YAML written, 3 when
/// the translation would not pass `check` (an importer bug: nothing is written).
fn import_nginx(file: &std::path::Path, output: Option<&std::path::Path>) -> ExitCode {
    let imported = match switchyard::import_nginx::import(file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    for n in &imported.notes {
        eprintln!("{n}");
    }
    let skipped = imported.notes.iter().filter(|n| n.skipped).count();
    eprintln!(
        "import-nginx: {skipped} directive(s) not carried over, {} note(s)",
        imported.notes.len() - skipped
    );
    if imported.empty {
        eprintln!(
            "import-nginx: no upstream server could be translated and no files are served, so there is nothing to do; nothing was written"
        );
        return ExitCode::from(2);
    }
    if !imported.invalid.is_empty() {
        eprintln!(
            "import-nginx: the translation would not pass `switchyard check` (an importer bug; nothing was written):"
        );
        for e in &imported.invalid {
            eprintln!("  {e}");
        }
        return ExitCode::from(3);
    }
    match output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &imported.yaml) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::from(1);
            }
        }
        None => print!("{}", imported.yaml),
    }
    if imported.skipped() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn check(arg: &ConfigArg) -> ExitCode {
    let path = config_path(arg);
    match config::load(&path) {
        Ok(c) => {
            print!("{}", summary(&path, &c));
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            eprintln!(
                "{} error(s); the configuration was not accepted",
                errors.0.len()
            );
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Check(arg)) => return check(&arg),
        Some(Command::ImportNginx { file, output }) => {
            return import_nginx(&file, output.as_deref());
        }
        Some(Command::Schema) => {
            print!("{}", config::json_schema());
            return ExitCode::SUCCESS;
        }
        None if cli.test => return check(&cli.run.config),
        Some(Command::DemoApp { listen, name }) => switchyard::demo::run_demo_app(&listen, &name),
        Some(Command::Demo) => {
            init_logging();
            switchyard::demo::run_demo()
        }
        Some(Command::Run(args)) => run_proxy(&args),
        None => run_proxy(&cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_proxy(args: &RunArgs) -> anyhow::Result<()> {
    init_logging();
    let path = config_path(&args.config);
    server::run(Options {
        config_path: &path,
        upgrade: args.upgrade,
        listeners: Vec::new(),
        signals: true,
    })
}
