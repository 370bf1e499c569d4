//! The config file exactly as written: serde structs mirroring the YAML of SPEC §2.
//!
//! Nothing here is used at runtime. Durations, sizes, addresses and policies stay text; every
//! field is optional so that [`super::de`] can keep reading after a bad value, and
//! [`super::validate`] decides defaults and turns all of it into the typed [`super::Config`].

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use std::fmt;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<Listens>,
    pub admin: Option<FileAdmin>,
    pub threads: Option<u32>,
    pub shutdown_grace: Option<String>,
    pub watch: Option<bool>,
    pub access_log: Option<String>,
    pub access_log_format: Option<LogFormat>,
    pub limits: Option<FileLimits>,
    pub upstreams: Option<Ordered<FileUpstream>>,
    pub routes: Option<Vec<FileRoute>>,
    pub dns: Option<FileDns>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDns {
    pub servers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAdmin {
    pub listen: Option<String>,
    pub token_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Combined,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub max_header_bytes: Option<String>,
    pub max_body_bytes: Option<String>,
    pub header_read_timeout: Option<String>,
    pub body_read_timeout: Option<String>,
    pub send_timeout: Option<String>,
    pub max_connections: Option<u32>,
    pub keepalive_timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceName {
    LeastConn,
    RoundRobin,
    Random,
    Hash,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUpstream {
    pub balance: Option<BalanceName>,
    pub hash_key: Option<String>,
    pub servers: Option<Vec<FileServer>>,
    pub timeouts: Option<FileTimeouts>,
    pub keepalive: Option<FileKeepalive>,
    pub retry: Option<FileRetry>,
    pub circuit_breaker: Option<FileBreaker>,
    pub health_check: Option<FileHealthCheck>,
    pub tls: Option<FileUpstreamTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUpstreamTls {
    pub sni: Option<String>,
    pub verify: Option<bool>,
    pub ca: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileServer {
    pub addr: Option<String>,
    pub srv: Option<String>,
    pub resolve: Option<String>,
    pub weight: Option<u32>,
    pub max_conns: Option<u32>,
    pub backup: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTimeouts {
    pub connect: Option<String>,
    pub read: Option<String>,
    pub write: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileKeepalive {
    pub idle: Option<u32>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRetry {
    pub on: Option<Vec<String>>,
    pub tries: Option<u32>,
    pub timeout: Option<String>,
    pub buffer: Option<String>,
    pub budget_percent: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBreaker {
    pub failures: Option<u32>,
    pub open_for: Option<String>,
    pub max_open_for: Option<String>,
    pub half_open_requests: Option<u32>,
    pub on: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHealthCheck {
    pub path: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub healthy_after: Option<u32>,
    pub unhealthy_after: Option<u32>,
    pub expect_status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    pub name: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub upstream: Option<String>,
    pub strip_prefix: Option<bool>,
    pub rewrite: Option<FileRewrite>,
    pub request_headers: Option<FileHeaderOps>,
    pub response_headers: Option<FileHeaderOps>,
    pub allow: Option<Vec<String>>,
    pub deny: Option<Vec<String>>,
    pub rate_limit: Option<FileRateLimit>,
    pub max_body_bytes: Option<String>,
    pub compress: Option<bool>,
    pub redirect: Option<FileRedirect>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRewrite {
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHeaderOps {
    pub set: Option<Ordered<String>>,
    pub remove: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRateLimit {
    pub requests: Option<u32>,
    pub per: Option<String>,
    pub burst: Option<u32>,
    pub key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRedirect {
    pub to: Option<String>,
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
    "tls",
    "http2",
    "hsts",
    "redirect_https",
    "https_port",
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileListener {
    pub addr: Option<String>,
    pub tls: Option<FileListenTls>,
    pub http2: Option<bool>,
    pub hsts: Option<String>,
    pub redirect_https: Option<bool>,
    pub https_port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileListenTls {
    pub certificates: Option<Vec<FileCertificate>>,
    pub min_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCertificate {
    pub cert: Option<String>,
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
