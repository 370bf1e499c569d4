//! The config file exactly as written: serde structs mirroring the YAML of SPEC §2.
//!
//! Nothing here is used at runtime. Durations, sizes, addresses and policies stay text; every
//! field is optional so that [`super::de`] can keep reading after a bad value, and
//! [`super::validate`] decides defaults and turns all of it into the typed [`super::Config`].

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A switchyard configuration file (YAML). Durations need a unit (`250ms`, `5s`, `1m`);
/// sizes are `64KiB`, `1MiB`, nginx's `k`/`m`/`g`, or a number of bytes.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "switchyard configuration")]
pub struct FileConfig {
    /// Where clients connect: `host:port`, `8080` / `:8080` (every IPv4 address), a mapping for TLS or an HTTPS redirect, or a list of these.
    pub listen: Option<Listens>,
    /// The admin API: /healthz, /metrics, /status, /reload and the status page.
    pub admin: Option<FileAdmin>,
    /// Worker threads; 0 is one per CPU core.
    pub threads: Option<u32>,
    /// How long SIGTERM waits for requests in flight.
    pub shutdown_grace: Option<String>,
    /// Reload when the config file (or a file it names) changes.
    pub watch: Option<bool>,
    /// `stdout`, `off`, or a file path (reopened on SIGUSR1 and reload).
    pub access_log: Option<String>,
    /// `json` or nginx `combined`.
    pub access_log_format: Option<LogFormat>,
    /// Limits on client connections, heads and bodies.
    pub limits: Option<FileLimits>,
    /// Named pools of servers.
    pub upstreams: Option<Ordered<FileUpstream>>,
    /// Which pool a request goes to, by host and path prefix, with optional policies; needed with more than one pool.
    pub routes: Option<Vec<FileRoute>>,
    /// DNS resolvers for server entries with `resolve`.
    pub dns: Option<FileDns>,
    /// Variables whose value is chosen by another variable's value (nginx `map`): usable as
    /// `$NAME` in templates and as a route's `upstream: $NAME`.
    pub maps: Option<Ordered<FileMap>>,
    /// Statuses -> a file answered instead of the proxy's own error body (nginx `error_page`):
    /// `"502 503 504": /srv/errors/50x.html`. A route's `error_pages` replace these.
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    pub error_pages: Option<Ordered<String>>,
    /// Take the client address from trusted peers' `X-Forwarded-For`, `X-Real-IP` or PROXY
    /// protocol header (nginx `set_real_ip_from` / `real_ip_header`).
    pub real_ip: Option<super::file_transport::FileRealIp>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileMap {
    /// The template whose value is looked up, e.g. `$http_upgrade` or `$cookie_ver`.
    pub from: Option<String>,
    /// Key -> value. A key is exact (compared ignoring case), or `~REGEX` / `~*REGEX`
    /// (case-insensitive), tried in order after the exact keys; `\~` starts an exact key with `~`.
    #[schemars(with = "Option<std::collections::BTreeMap<String, Scalar>>")]
    pub values: Option<Ordered<String>>,
    /// The value when no key matches (default: empty).
    #[schemars(with = "Option<Scalar>")]
    pub default: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileDns {
    /// Resolvers to ask (IP or IP:port); default: the system's configuration.
    pub servers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileAdmin {
    /// The admin address; a non-loopback address needs `token_file`.
    pub listen: Option<String>,
    /// A file holding the bearer token admin requests need (except GET /healthz).
    pub token_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Combined,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    /// Largest request head (431 beyond).
    #[schemars(with = "Option<Scalar>")]
    pub max_header_bytes: Option<String>,
    /// Largest request body (default unlimited; 413 beyond).
    #[schemars(with = "Option<Scalar>")]
    pub max_body_bytes: Option<String>,
    /// Time to receive a whole request head, and a TLS handshake (408 beyond).
    pub header_read_timeout: Option<String>,
    /// Longest wait between two reads of a request body.
    pub body_read_timeout: Option<String>,
    /// Longest wait for the client to take more of a response.
    pub send_timeout: Option<String>,
    /// Client connections open at once (default: derived from the open-file and memory limits).
    pub max_connections: Option<u32>,
    /// How long an idle keep-alive client connection is kept.
    pub keepalive_timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BalanceName {
    LeastConn,
    RoundRobin,
    Random,
    Hash,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileUpstream {
    /// `least_conn`, `round_robin`, `random` or `hash`.
    pub balance: Option<BalanceName>,
    /// With `balance: hash`: `client_ip`, `header:NAME`, `cookie:NAME` or `path`.
    pub hash_key: Option<String>,
    /// The pool's servers: `addr` entries, or entries followed in DNS (`resolve`, `srv`).
    pub servers: Option<Vec<FileServer>>,
    /// Connect, read and write timeouts to the servers.
    pub timeouts: Option<FileTimeouts>,
    /// Idle upstream connections kept for reuse.
    pub keepalive: Option<FileKeepalive>,
    /// Which failures are retried on another server, and the budgets.
    pub retry: Option<FileRetry>,
    /// When a server is taken out after failures, and for how long.
    pub circuit_breaker: Option<FileBreaker>,
    /// Active health checks (off when absent).
    pub health_check: Option<FileHealthCheck>,
    /// TLS to the servers (absent: plain HTTP/1.1).
    pub tls: Option<FileUpstreamTls>,
    /// `http1` (default), `h2c` (HTTP/2 without TLS) or `h2` (HTTP/2 over `tls`); gRPC needs h2c or h2.
    pub protocol: Option<super::file_transport::ProtocolName>,
    /// Send the client's address first on each connection: `v1` or `v2` (PROXY protocol).
    pub send_proxy_protocol: Option<super::file_transport::ProxyVersionName>,
    /// Hold request bodies and answers in memory up to a size (default: stream both).
    pub buffering: Option<super::file_transport::FileBuffering>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileUpstreamTls {
    /// Server name sent and verified (default: the host part of each addr).
    pub sni: Option<String>,
    /// Verify the servers' certificates (false is logged as a warning).
    pub verify: Option<bool>,
    /// CA certificates (PEM) to verify against (default: the system trust store).
    pub ca: Option<String>,
    /// A client certificate (PEM chain) for mTLS, with `client_key`.
    pub client_cert: Option<String>,
    /// The client certificate's private key (PEM).
    pub client_key: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileServer {
    /// `host:port`; a host name is resolved at load, or followed with `resolve`.
    pub addr: Option<String>,
    /// An SRV name followed in DNS (needs `resolve`): targets, ports and weights from the records.
    pub srv: Option<String>,
    /// Look the name up again this often (at least 500ms); every address is a server.
    pub resolve: Option<String>,
    /// 1 to 1000.
    pub weight: Option<u32>,
    /// Requests in flight to this server at most (default unlimited).
    pub max_conns: Option<u32>,
    /// Only used when no other server is available.
    pub backup: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileTimeouts {
    /// Time to wait for a connection.
    pub connect: Option<String>,
    /// Time to wait for the response head and between body reads.
    pub read: Option<String>,
    /// Time to wait for the server to take more of the request.
    pub write: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileKeepalive {
    /// Idle connections kept per worker (0 disables reuse).
    pub idle: Option<u32>,
    /// How long an idle connection is kept.
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRetry {
    /// Failures retried: error, timeout, invalid_header, http_500, http_502, http_503, http_504, http_429, and non_idempotent to allow POST retries.
    pub on: Option<Vec<String>>,
    /// Attempts per request at most, the first included.
    pub tries: Option<u32>,
    /// Total time for all attempts (default: none).
    pub timeout: Option<String>,
    /// Request body kept for replay (64KiB at most).
    #[schemars(with = "Option<Scalar>")]
    pub buffer: Option<String>,
    /// Retries at most this percent of requests.
    pub budget_percent: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileBreaker {
    /// Consecutive failures that open the breaker.
    pub failures: Option<u32>,
    /// How long it stays open at first (doubles while trials fail).
    pub open_for: Option<String>,
    /// The longest open period.
    pub max_open_for: Option<String>,
    /// Trial requests let through when half-open.
    pub half_open_requests: Option<u32>,
    /// Outcomes that count as failures.
    pub on: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileHealthCheck {
    /// The path requested.
    pub path: Option<String>,
    /// Time between two probes of a server.
    pub interval: Option<String>,
    /// Time a probe waits for its answer.
    pub timeout: Option<String>,
    /// Passes in a row before a server is healthy again.
    pub healthy_after: Option<u32>,
    /// Failures in a row before it is unhealthy.
    pub unhealthy_after: Option<u32>,
    /// Statuses that pass, e.g. `200-399`.
    #[schemars(with = "Option<Scalar>")]
    pub expect_status: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    /// The route's label in metrics and the access log (default: host + path).
    pub name: Option<String>,
    /// `example.com`, `*.example.com`, `www.example.*` or `~REGEX`; absent: any host.
    pub host: Option<String>,
    /// Path prefix; the longest match wins (nginx `location /prefix`).
    pub path: Option<String>,
    /// With `path`: when this is the longest prefix, regex routes are not tried (nginx `^~`).
    pub stop_regex: Option<bool>,
    /// The whole path, exactly (nginx `location =`); wins over everything else.
    pub exact: Option<String>,
    /// A regex searched in the path (nginx `location ~`); regex routes are tried in file order.
    pub regex: Option<String>,
    /// With `regex`: match regardless of case (nginx `location ~*`).
    pub case_insensitive: Option<bool>,
    /// Only for requests that arrived on the listeners with these names (default: all).
    pub listeners: Option<Vec<String>>,
    /// Further conditions on the request, all of which must hold (nginx `if`).
    #[serde(rename = "match")]
    pub conditions: Option<FileMatch>,
    /// Answer directly with this status, body and headers (nginx `return`); 444 closes the
    /// connection without an answer.
    pub respond: Option<FileRespond>,
    /// The pool to send to (or use `redirect`), or `$MAP`: the pool a map names.
    pub upstream: Option<String>,
    /// Statuses -> a file, as the top-level `error_pages`; replaces them for this route.
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    pub error_pages: Option<Ordered<String>>,
    /// Upstream answers whose status has an error page get the page instead (nginx
    /// `proxy_intercept_errors on`).
    pub intercept_errors: Option<bool>,
    /// Send the path without the route's prefix (nginx `proxy_pass http://app/;`).
    pub strip_prefix: Option<bool>,
    /// A regex replacement on the path, after strip_prefix.
    pub rewrite: Option<FileRewrite>,
    /// Header fields set or removed before forwarding.
    pub request_headers: Option<FileHeaderOps>,
    /// Header fields set or removed on every response, errors included.
    pub response_headers: Option<FileHeaderOps>,
    /// Client addresses or CIDR blocks allowed; others get 403.
    pub allow: Option<Vec<String>>,
    /// Client addresses or CIDR blocks answered 403 (deny wins).
    pub deny: Option<Vec<String>>,
    /// A token bucket per key, shared by all worker threads (429 with Retry-After).
    pub rate_limit: Option<FileRateLimit>,
    /// Overrides limits.max_body_bytes for this route.
    #[schemars(with = "Option<Scalar>")]
    pub max_body_bytes: Option<String>,
    /// gzip or br by Accept-Encoding, for text types of 1 KiB or more.
    pub compress: Option<bool>,
    /// Answer with a redirect instead of forwarding.
    pub redirect: Option<FileRedirect>,
    /// Serve files from disk (SPEC §12); with `upstream`, the upstream is the fallback for
    /// what is not found.
    #[serde(rename = "static")]
    pub static_files: Option<super::file_static::FileStatic>,
    /// Only reachable by an internal redirect (a `try_files` fallback); a client asking for it
    /// directly gets 404 (nginx `internal`).
    pub internal: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileMatch {
    /// Request methods, e.g. [GET, HEAD].
    pub methods: Option<Vec<String>>,
    /// Header name -> `VALUE` (exactly), `!VALUE` (absent or different) or `~REGEX` (searched).
    #[schemars(with = "Option<std::collections::BTreeMap<String, Scalar>>")]
    pub headers: Option<Ordered<String>>,
    /// Cookie name -> `VALUE`, `!VALUE` or `~REGEX`, as for headers.
    #[schemars(with = "Option<std::collections::BTreeMap<String, Scalar>>")]
    pub cookies: Option<Ordered<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRespond {
    /// The status to answer: 100..=599, or 444 to close the connection without an answer.
    pub status: Option<u16>,
    /// The body (default: none).
    pub body: Option<String>,
    /// Header fields of the answer.
    #[schemars(with = "Option<std::collections::BTreeMap<String, Scalar>>")]
    pub headers: Option<Ordered<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRewrite {
    /// A regex on the path.
    pub from: Option<String>,
    /// The new path; `$1`.. are the regex's groups.
    pub to: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileHeaderOps {
    /// Fields to set (replacing any of the same name).
    #[schemars(with = "Option<std::collections::BTreeMap<String, Scalar>>")]
    pub set: Option<Ordered<String>>,
    /// Fields to remove.
    pub remove: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRateLimit {
    /// Tokens added per `per`.
    pub requests: Option<u32>,
    /// The time in which `requests` tokens are added.
    pub per: Option<String>,
    /// Extra tokens a key may hold.
    pub burst: Option<u32>,
    /// `client_ip` or `header:NAME`.
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRedirect {
    /// The Location, a template: `https://$host$request_uri`.
    pub to: Option<String>,
    /// 301, 302, 307 or 308.
    pub status: Option<u16>,
}

/// `listen: "a:1"`, `listen: ["a:1", {addr: "b:2", tls: …}]` or a single mapping.
#[derive(Debug, Default)]
pub struct Listens(pub Vec<FileListen>);

impl<'de> Deserialize<'de> for Listens {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Listens;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address or a list of addresses")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Listens, E> {
                Ok(Listens(vec![FileListen::Addr(s.to_string())]))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Listens, E> {
                Ok(Listens(vec![FileListen::Addr(n.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Listens, A::Error> {
                let mut out = Vec::new();
                while let Some(l) = seq.next_element::<FileListen>()? {
                    out.push(l);
                }
                Ok(Listens(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Listens, A::Error> {
                let one = FileListener::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Listens(vec![FileListen::Full(one)]))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `listen` entry: an address (plain HTTP/1.1) or a mapping (SPEC §6).
#[derive(Debug)]
pub enum FileListen {
    Addr(String),
    Full(FileListener),
}

/// The keys of a `listen` mapping, for "did you mean" on unknown keys: keep in step with
/// [`FileListener`] (a unit test reads every one of them).
pub const LISTENER_FIELDS: &[&str] = &[
    "addr",
    "name",
    "tls",
    "http2",
    "hsts",
    "redirect_https",
    "https_port",
    "proxy_protocol",
];

impl<'de> Deserialize<'de> for FileListen {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FileListen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address or a mapping with `addr`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FileListen, E> {
                Ok(FileListen::Addr(s.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FileListen, A::Error> {
                FileListener::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(FileListen::Full)
            }
        }
        d.deserialize_struct(SCALAR_OR_MAPPING, LISTENER_FIELDS, V)
    }
}

/// The struct name that tells [`super::de`] a scalar is welcome where a mapping is expected.
pub const SCALAR_OR_MAPPING: &str = "$switchyard::ScalarOrMapping";

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileListener {
    /// `host:port` to listen on.
    pub addr: Option<String>,
    /// A name routes can refer to in `listeners`.
    pub name: Option<String>,
    /// Serve TLS with these certificates.
    pub tls: Option<FileListenTls>,
    /// Offer HTTP/2 by ALPN (on TLS listeners).
    pub http2: Option<bool>,
    /// Strict-Transport-Security max-age on responses (0s: none).
    pub hsts: Option<String>,
    /// Answer every request 308 to https://host/path.
    pub redirect_https: Option<bool>,
    /// The port put in the redirect when not 443.
    pub https_port: Option<u16>,
    /// Every connection starts with a PROXY protocol header (v1 or v2): its source is the client.
    pub proxy_protocol: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileListenTls {
    /// One or more; picked by SNI, the first is the default.
    pub certificates: Option<Vec<FileCertificate>>,
    /// "1.2" or "1.3".
    #[schemars(with = "Option<Scalar>")]
    pub min_version: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileCertificate {
    /// PEM chain, leaf first (relative to the config file).
    pub cert: Option<String>,
    /// PEM private key: PKCS#8, PKCS#1 or SEC1.
    pub key: Option<String>,
}

/// A mapping whose entries keep their file order (pools are shown in the order written).
#[derive(Debug)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<T>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A YAML scalar the loader reads as text: a string, or a number or boolean written plainly
/// (`max_body_bytes: 1024`, `min_version: 1.2`).
pub struct Scalar;

impl JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

impl JsonSchema for Listens {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Listen".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let entry = g.subschema_for::<FileListen>();
        schemars::json_schema!({
            "anyOf": [
                { "type": ["string", "integer"] },
                entry,
                { "type": "array", "items": entry }
            ]
        })
    }
}

impl JsonSchema for FileListen {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ListenEntry".into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mapping = g.subschema_for::<FileListener>();
        schemars::json_schema!({
            "description": "An address (plain HTTP/1.1), or a mapping for a TLS or redirect listener.",
            "anyOf": [{ "type": ["string", "integer"] }, mapping]
        })
    }
}

impl<T: JsonSchema> JsonSchema for Ordered<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }

    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let value = g.subschema_for::<T>();
        schemars::json_schema!({ "type": "object", "additionalProperties": value })
    }
}
