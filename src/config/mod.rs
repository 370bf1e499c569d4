//! Configuration: the YAML file (SPEC §2) read in two layers.
//!
//! `yaml` parses text into a positioned tree, `de` fills the serde structs of `file` from it,
//! `validate` turns those into the typed [`Config`] below, collecting every error with its
//! `file:line:col`. Nothing here touches the network or the running proxy: [`load`] is what
//! `switchyard check` runs, and what every reload runs before anything is swapped.

mod admin_token;
pub mod de;
pub mod defaults;
mod endpoint;
pub mod error;
pub mod file;
pub mod file_static;
pub mod file_transport;
mod files;
mod listen;
mod location;
mod route;
pub mod schema;
mod transport;
pub mod units;
pub mod validate;
pub mod yaml;

pub use admin_token::AdminToken;
pub use endpoint::{Endpoint, UNIX_PREFIX, UnixPath};
pub use error::{ConfigError, ConfigErrors};
pub use file::LogFormat;
pub use files::{Expires, Fallback, StaticFiles, TryFile};
pub use listen::{Listener, ListenerKind, TlsListener, UpstreamTls};
pub use location::{Conditions, HostMatch, PathMatch, ValueTest};
pub use route::{
    Access, ErrorPage, ErrorPages, FieldValue, HeaderOps, RateKey, RateLimit, RedirectTo, Respond,
    Rewrite, RoutePolicy,
};
pub use schema::json_schema;
pub use transport::{Buffering, Protocol, ProxyVersion, RealIp, RealIpSource, canonical};
pub use units::StatusRange;

use http::HeaderName;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest config file accepted. A real config, even with 10 000 servers, is a fraction of
/// this; the bound keeps a wrong file (a log, a dump) from being read into memory whole.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Read, parse and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_bytes(&read(path)?, path)
}

/// Read a config file, refusing one larger than [`MAX_FILE_BYTES`] without reading it whole.
pub fn read(path: &Path) -> Result<Vec<u8>, ConfigErrors> {
    use std::io::Read;
    let fail = |e: std::io::Error| file_error(path, format!("cannot read the config file: {e}"));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(file_error(
            path,
            format!(
                "the config file is larger than {} MiB; is it the right file?",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    Ok(bytes)
}

/// Parse and validate the content of the config file at `path` (already read).
pub fn load_bytes(bytes: &[u8], path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        file_error(
            path,
            format!(
                "the config file is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    load_str(text, &path.display().to_string(), path.to_path_buf())
}

fn file_error(path: &Path, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        file: path.display().to_string(),
        mark: None,
        path: String::new(),
        message,
    }])
}

/// Parse and validate config text; `shown` is the file name used in error messages.
pub fn load_str(text: &str, shown: &str, source: PathBuf) -> Result<Config, ConfigErrors> {
    load_str_with(text, shown, source, &units::resolve_addr)
}

/// [`load_str`] that never looks a name up: addresses must be literal (fuzzing, offline tools).
pub fn load_str_offline(text: &str) -> Result<Config, ConfigErrors> {
    load_str_with(
        text,
        "config",
        PathBuf::from("config"),
        &units::literal_addr,
    )
}

/// [`load_str`] with `resolve` deciding what a `host:port` is.
pub fn load_str_with(
    text: &str,
    shown: &str,
    source: PathBuf,
    resolve: validate::Resolve<'_>,
) -> Result<Config, ConfigErrors> {
    let root = yaml::parse(text).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: shown.to_string(),
            mark: Some(e.mark),
            path: String::new(),
            message: format!("invalid YAML: {}", e.message),
        }])
    })?;
    let mut issues = error::Issues::default();
    let parsed: Option<file::FileConfig> = de::from_node(&root, &mut issues);
    let file = parsed.unwrap_or_default();
    let config = validate::validate_with(&file, &root, &mut issues, source, resolve);
    match config {
        Some(c) if issues.is_empty() => Ok(c),
        _ => Err(issues.into_errors(shown)),
    }
}

/// The validated configuration. Immutable; a reload builds a new one.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was loaded from.
    pub source: PathBuf,
    /// Client-facing listeners in file order (SPEC §6).
    pub listeners: Vec<Listener>,
    pub admin_listen: SocketAddr,
    /// `admin.token_file`'s token: when set, admin requests other than `GET /healthz` need it.
    pub admin_token: Option<AdminToken>,
    /// Worker threads as configured; 0 means one per CPU core (see [`Config::worker_threads`]).
    pub threads: usize,
    pub shutdown_grace: Duration,
    pub watch: bool,
    pub access_log: AccessLog,
    pub access_log_format: LogFormat,
    pub limits: Limits,
    /// Pools in file order.
    pub upstreams: Vec<Upstream>,
    /// Routes in file order; empty means "everything to the only pool".
    pub routes: Vec<Route>,
    /// `maps`, in file order (templates refer to them by index).
    pub maps: std::sync::Arc<[crate::vars::Map]>,
    /// The top-level `error_pages`.
    pub error_pages: std::sync::Arc<ErrorPages>,
    /// What is allowed but deserves attention (a certificate about to expire, `verify: false`):
    /// printed by `check` and logged at every load.
    pub warnings: Vec<ConfigError>,
    /// `real_ip`: whose word the client address is taken on (SPEC §13).
    pub real_ip: Option<RealIp>,
    /// `dns.servers`: the resolvers to ask; empty means the system's configuration.
    pub dns_servers: Vec<SocketAddr>,
    /// Every other file this config reads (certificates, keys, CA files, the admin token), as
    /// opened: the watcher reloads when one of them changes.
    pub files: Vec<PathBuf>,
}

impl Config {
    /// The listeners' addresses, in file order.
    pub fn listen_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.listeners.iter().map(|l| l.addr)
    }

    /// The number of proxy worker threads to run.
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    Off,
    Stdout,
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_header_bytes: usize,
    /// `None` = unlimited.
    pub max_body_bytes: Option<u64>,
    pub header_read_timeout: Duration,
    /// Longest wait between two reads of a request body (nginx `client_body_timeout`).
    pub body_read_timeout: Duration,
    /// Longest wait for the client to take more of the response (nginx `send_timeout`).
    pub send_timeout: Duration,
    /// Client connections open at once; `None`: derived from the open-file and memory limits at start.
    pub max_connections: Option<NonZeroU32>,
    /// How long an idle keep-alive client connection is kept (nginx `keepalive_timeout`).
    pub keepalive_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub name: String,
    pub balance: Balance,
    pub servers: Vec<ServerConfig>,
    pub timeouts: Timeouts,
    pub keepalive: Keepalive,
    pub retry: RetryPolicy,
    pub breaker: BreakerPolicy,
    pub health_check: Option<HealthCheck>,
    pub tls: Option<UpstreamTls>,
    /// Server entries followed in DNS; their servers join `servers` in the running state.
    pub dns: Vec<DnsEntry>,
    /// HTTP/1.1, h2c or h2 to the servers (SPEC §13).
    pub protocol: Protocol,
    /// A PROXY protocol header first on each connection.
    pub send_proxy_protocol: Option<ProxyVersion>,
    pub buffering: Buffering,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    LeastConn,
    RoundRobin,
    Random,
    Hash(HashKey),
}

impl Balance {
    pub fn name(&self) -> &'static str {
        match self {
            Balance::LeastConn => "least_conn",
            Balance::RoundRobin => "round_robin",
            Balance::Random => "random",
            Balance::Hash(_) => "hash",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    ClientIp,
    Header(HeaderName),
    Cookie(String),
    Path,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The address as configured; it names the server in metrics, logs and `/status`.
    pub addr: String,
    /// The address it resolved to at load time, or its Unix socket.
    pub socket: Endpoint,
    pub weight: Weight,
    /// `None` = unlimited.
    pub max_conns: Option<NonZeroU32>,
    pub backup: bool,
    /// The configured name this server was resolved from (`resolve` / `srv` entries).
    pub from: Option<String>,
}

/// A server entry followed in DNS (SPEC §7): every address it resolves to is a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    /// As configured (`addr` or `srv`): it names the entry in `/status`, logs and metrics.
    pub name: String,
    pub lookup: Lookup,
    /// How often it is looked up again.
    pub every: Duration,
    pub weight: Weight,
    pub max_conns: Option<NonZeroU32>,
    pub backup: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// A and AAAA records of `host`, each address with `port`.
    Host { host: String, port: u16 },
    /// SRV records: target, port and weight from the records.
    Srv(String),
}

/// A server weight, 1 to 1000 (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(NonZeroU32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("weight must be from 1 to {max}, found {0}", max = Weight::MAX)]
pub struct WeightError(pub u32);

impl Weight {
    pub const MAX: u32 = 1000;

    pub fn try_new(n: u32) -> Result<Weight, WeightError> {
        match NonZeroU32::new(n) {
            Some(w) if n <= Self::MAX => Ok(Weight(w)),
            _ => Err(WeightError(n)),
        }
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl Default for Weight {
    fn default() -> Self {
        Weight(NonZeroU32::MIN)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub write: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle upstream connections kept for this pool; 0 disables upstream keepalive.
    pub idle: usize,
    pub timeout: Duration,
}

/// What can happen to one attempt, as far as retries and breakers care (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response head arrived and its status is not listed as a failure.
    Success,
    /// Connect refused/reset, or the connection closed before a full response head.
    Error,
    /// Connect or read timeout before the response head.
    Timeout,
    /// A malformed response head.
    InvalidHeader,
    /// A response with this status.
    Status(u16),
    /// A gRPC answer whose `grpc-status` is this code (0..=16), listed as a failure (`grpc_N`).
    Grpc(u8),
}

/// A set of outcomes: `error`, `timeout`, `invalid_header`, `http_NNN` (429, 500..=599) and
/// `grpc_N` (0..=16, SPEC §13).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeSet {
    flags: u8,
    statuses: [u64; 4],
    /// Bit N: `grpc_N`.
    grpc: u32,
}

/// The highest gRPC status code (`UNAUTHENTICATED`).
pub const GRPC_MAX_STATUS: u8 = 16;

impl OutcomeSet {
    const ERROR: u8 = 1;
    const TIMEOUT: u8 = 2;
    const INVALID_HEADER: u8 = 4;

    /// Parse one `on:` entry; `Err` is the message for the user.
    pub fn insert_name(&mut self, name: &str) -> Result<(), String> {
        match name {
            "error" => self.flags |= Self::ERROR,
            "timeout" => self.flags |= Self::TIMEOUT,
            "invalid_header" => self.flags |= Self::INVALID_HEADER,
            _ if name.starts_with("grpc_") => {
                let code = name["grpc_".len()..]
                    .parse::<u8>()
                    .ok()
                    .filter(|c| *c <= GRPC_MAX_STATUS)
                    .ok_or_else(|| {
                        format!("unknown condition `{name}` (gRPC: grpc_0 to grpc_16)")
                    })?;
                self.grpc |= 1 << code;
            }
            _ => {
                // Statuses that mean "the server could not serve it": 429 and 5xx.
                let code = name
                    .strip_prefix("http_")
                    .and_then(|c| c.parse::<u16>().ok())
                    .filter(|c| *c == 429 || (500..=599).contains(c))
                    .ok_or_else(|| {
                        format!(
                            "unknown condition `{name}` (statuses: http_429, http_500 to http_599)"
                        )
                    })?;
                let i = usize::from(code - 400);
                self.statuses[i / 64] |= 1 << (i % 64);
            }
        }
        Ok(())
    }

    pub fn contains(&self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Success => false,
            Outcome::Error => self.flags & Self::ERROR != 0,
            Outcome::Timeout => self.flags & Self::TIMEOUT != 0,
            Outcome::InvalidHeader => self.flags & Self::INVALID_HEADER != 0,
            Outcome::Status(code) => {
                if !(400..=599).contains(&code) {
                    return false;
                }
                let i = usize::from(code - 400);
                self.statuses[i / 64] & (1 << (i % 64)) != 0
            }
            Outcome::Grpc(code) => code <= GRPC_MAX_STATUS && self.grpc & (1 << code) != 0,
        }
    }

    /// Whether `grpc_N` is listed for this gRPC status.
    pub fn has_grpc(&self, code: u8) -> bool {
        self.contains(Outcome::Grpc(code))
    }

    /// Whether any `grpc_N` is listed (answers' `grpc-status` is then looked at).
    pub fn has_grpc_statuses(&self) -> bool {
        self.grpc != 0
    }

    /// The names of the listed outcomes, as written in the config (`error`, `http_503`, ...).
    pub fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (flag, name) in [
            (Self::ERROR, "error"),
            (Self::TIMEOUT, "timeout"),
            (Self::INVALID_HEADER, "invalid_header"),
        ] {
            if self.flags & flag != 0 {
                out.push(name.to_string());
            }
        }
        for i in 0..200usize {
            if self.statuses[i / 64] & (1 << (i % 64)) != 0 {
                out.push(format!("http_{}", 400 + i));
            }
        }
        for code in 0..=GRPC_MAX_STATUS {
            if self.grpc & (1 << code) != 0 {
                out.push(format!("grpc_{code}"));
            }
        }
        out
    }

    /// Whether any `http_NNN` is listed (the proxy then has to look at statuses at all).
    pub fn has_statuses(&self) -> bool {
        self.statuses.iter().any(|w| *w != 0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub on: OutcomeSet,
    /// `non_idempotent` listed: replay POST & co. even after they were sent.
    pub non_idempotent: bool,
    /// Total attempts including the first.
    pub tries: NonZeroU32,
    /// Budget for all attempts together; `None` = no limit.
    pub timeout: Option<Duration>,
    /// Request bodies up to this size are kept for replay.
    pub buffer: usize,
    /// Retries in flight may not exceed this percentage of requests in flight (floor of 3).
    pub budget_percent: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    pub failures: NonZeroU32,
    pub open_for: Duration,
    pub max_open_for: Duration,
    pub half_open_requests: NonZeroU32,
    pub on: OutcomeSet,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_after: NonZeroU32,
    pub unhealthy_after: NonZeroU32,
    pub expect_status: StatusRange,
}

#[derive(Debug, Clone)]
pub struct Route {
    /// `name`, else host + path: the label in metrics and the access log.
    pub name: String,
    pub host: HostMatch,
    pub path: PathMatch,
    /// Indices into [`Config::listeners`] the route serves; empty: all of them.
    pub listeners: Vec<usize>,
    /// `match`: conditions on the request that must all hold.
    pub conditions: Option<Conditions>,
    /// Index into [`Config::upstreams`]; `None` for a `redirect` or `respond` route, or one
    /// whose pool a map chooses.
    pub upstream: Option<usize>,
    /// `upstream: $MAP`: the map, and the pool of each of its values.
    pub upstream_map: Option<UpstreamMap>,
    pub policy: RoutePolicy,
}

/// `upstream: $MAP`: the pool is the one named by the map's value for the request.
#[derive(Debug, Clone)]
pub struct UpstreamMap {
    /// Index into [`Config::maps`].
    pub map: usize,
    /// Index into [`Config::upstreams`] for each of the map's values (default last).
    pub pools: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_bounds() {
        assert!(Weight::try_new(0).is_err());
        assert_eq!(Weight::try_new(1).unwrap().get(), 1);
        assert_eq!(Weight::try_new(1000).unwrap().get(), 1000);
        assert_eq!(
            Weight::try_new(1001).unwrap_err().to_string(),
            "weight must be from 1 to 1000, found 1001"
        );
    }

    #[test]
    fn outcome_sets() {
        let mut s = OutcomeSet::default();
        s.insert_name("error").unwrap();
        s.insert_name("http_503").unwrap();
        assert!(s.contains(Outcome::Error));
        assert!(!s.contains(Outcome::Timeout));
        assert!(s.contains(Outcome::Status(503)));
        assert!(!s.contains(Outcome::Status(502)));
        assert!(!s.contains(Outcome::Status(200)));
        assert!(s.has_statuses());
        assert_eq!(s.names(), vec!["error", "http_503"]);
        assert!(s.insert_name("http_200").is_err());
        assert!(s.insert_name("http_404").is_err());
        assert!(s.insert_name("http_429").is_ok());
        assert!(s.insert_name("bogus").is_err());
    }
}
