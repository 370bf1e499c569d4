//! Upstream transports and the client's identity as written in the file (SPEC §13):
//! `real_ip`, a pool's `protocol`, `send_proxy_protocol` and `buffering`. Validated in
//! `validate/transport.rs`.

use super::file::Scalar;
use schemars::JsonSchema;
use serde::Deserialize;

/// Whose word the client address is taken on (nginx `set_real_ip_from` / `real_ip_header` /
/// `real_ip_recursive`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileRealIp {
    /// Addresses or CIDR blocks trusted to tell the client address; from any other peer the
    /// header is ignored.
    pub from: Option<Vec<String>>,
    /// `X-Forwarded-For` (default), `X-Real-IP`, or `proxy_protocol` (the address a
    /// `proxy_protocol` listener read).
    pub header: Option<String>,
    /// Skip trusted addresses from the right of `X-Forwarded-For` (default false: the last
    /// address is the client).
    pub recursive: Option<bool>,
}

/// The protocol spoken to a pool's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProtocolName {
    Http1,
    H2c,
    H2,
}

/// The PROXY protocol version sent to a pool's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProxyVersionName {
    V1,
    V2,
}

/// How much of a request or an answer is held in memory (nginx `proxy_request_buffering`,
/// `proxy_buffering`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileBuffering {
    /// Read a request body up to this size before connecting (default 0: stream).
    #[schemars(with = "Option<Scalar>")]
    pub request: Option<String>,
    /// Read an answer up to this size at once, so the server is free while a slow client
    /// drains it (default 0: stream).
    #[schemars(with = "Option<Scalar>")]
    pub response: Option<String>,
}
