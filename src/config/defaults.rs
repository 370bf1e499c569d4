//! Every default of the config file, in one table.
//!
//! The loader (`validate`) takes its defaults from the constants here; `switchyard schema`
//! writes [`TABLE`] into the JSON Schema (each key's `default`, and "(default …)" in its
//! description), and a test checks the README's table of defaults against [`TABLE`]. A default
//! is written once, as a typed constant, with the text a user would write for it beside it (a
//! test checks that the text parses to the constant), so the code, the schema and the README
//! cannot drift apart.

use std::time::Duration;

pub const THREADS: u32 = 0;
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
pub const WATCH: bool = true;
pub const ADMIN_LISTEN: &str = "127.0.0.1:9901";

pub const MAX_HEADER_BYTES: u64 = 32 * 1024;
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// nginx's `keepalive_timeout` default.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(75);

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Per worker, as nginx's `keepalive N` (see `server.rs` for why 64 and not fewer).
pub const KEEPALIVE_IDLE: u32 = 64;
pub const KEEPALIVE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const WEIGHT: u32 = 1;

pub const RETRY_ON: &[&str] = &["error", "timeout"];
pub const RETRY_TRIES: u32 = 3;
/// Also the most pingora keeps of a request body for replay.
pub const RETRY_BUFFER: u64 = 64 * 1024;
pub const RETRY_BUDGET_PERCENT: u32 = 20;

pub const BREAKER_FAILURES: u32 = 5;
pub const BREAKER_OPEN_FOR: Duration = Duration::from_secs(30);
pub const BREAKER_MAX_OPEN_FOR: Duration = Duration::from_secs(300);
pub const BREAKER_HALF_OPEN_REQUESTS: u32 = 1;
pub const BREAKER_ON: &[&str] = &["error", "timeout"];

pub const HEALTH_PATH: &str = "/";
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
pub const HEALTH_HEALTHY_AFTER: u32 = 2;
pub const HEALTH_UNHEALTHY_AFTER: u32 = 3;
pub const HEALTH_EXPECT_STATUS: &str = "200-399";

pub const ROUTE_PATH: &str = "/";
pub const RATE_PER: Duration = Duration::from_secs(1);
pub const RATE_BURST: u32 = 0;
pub const REDIRECT_STATUS: u16 = 302;

pub const UPSTREAM_TLS_VERIFY: bool = true;

pub const LISTENER_HTTP2: bool = true;
pub const LISTENER_HSTS: Duration = Duration::ZERO;

/// A default's value, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Duration(Duration),
    Size(u64),
    Number(u64),
    Flag(bool),
    Text(&'static str),
    List(&'static [&'static str]),
}

/// One row: the key as a path (`*` for any pool, route or list item), the text a user would
/// write for the value, and the value.
#[derive(Debug, Clone, Copy)]
pub struct Default {
    pub key: &'static str,
    pub text: &'static str,
    pub value: Value,
}

const fn row(key: &'static str, text: &'static str, value: Value) -> Default {
    Default { key, text, value }
}

use Value::{Duration as D, Flag, List, Number as N, Size, Text};

/// Every default, in the order of the README's table.
pub const TABLE: &[Default] = &[
    row("threads", "0", N(THREADS as u64)),
    row("shutdown_grace", "30s", D(SHUTDOWN_GRACE)),
    row("watch", "true", Flag(WATCH)),
    row("access_log", "stdout", Text("stdout")),
    row("access_log_format", "json", Text("json")),
    row("admin.listen", ADMIN_LISTEN, Text(ADMIN_LISTEN)),
    row("limits.max_header_bytes", "32KiB", Size(MAX_HEADER_BYTES)),
    row("limits.header_read_timeout", "10s", D(HEADER_READ_TIMEOUT)),
    row("limits.body_read_timeout", "60s", D(BODY_READ_TIMEOUT)),
    row("limits.send_timeout", "60s", D(SEND_TIMEOUT)),
    row("limits.keepalive_timeout", "75s", D(KEEPALIVE_TIMEOUT)),
    row("listen.*.http2", "true", Flag(LISTENER_HTTP2)),
    row("listen.*.hsts", "0s", D(LISTENER_HSTS)),
    row("listen.*.tls.min_version", "1.2", Text("1.2")),
    row("upstreams.*.balance", "least_conn", Text("least_conn")),
    row("upstreams.*.servers.*.weight", "1", N(WEIGHT as u64)),
    row("upstreams.*.timeouts.connect", "5s", D(CONNECT_TIMEOUT)),
    row("upstreams.*.timeouts.read", "60s", D(READ_TIMEOUT)),
    row("upstreams.*.timeouts.write", "60s", D(WRITE_TIMEOUT)),
    row("upstreams.*.keepalive.idle", "64", N(KEEPALIVE_IDLE as u64)),
    row(
        "upstreams.*.keepalive.timeout",
        "60s",
        D(KEEPALIVE_IDLE_TIMEOUT),
    ),
    row("upstreams.*.retry.on", "[error, timeout]", List(RETRY_ON)),
    row("upstreams.*.retry.tries", "3", N(RETRY_TRIES as u64)),
    row("upstreams.*.retry.buffer", "64KiB", Size(RETRY_BUFFER)),
    row(
        "upstreams.*.retry.budget_percent",
        "20",
        N(RETRY_BUDGET_PERCENT as u64),
    ),
    row(
        "upstreams.*.circuit_breaker.failures",
        "5",
        N(BREAKER_FAILURES as u64),
    ),
    row(
        "upstreams.*.circuit_breaker.open_for",
        "30s",
        D(BREAKER_OPEN_FOR),
    ),
    row(
        "upstreams.*.circuit_breaker.max_open_for",
        "5m",
        D(BREAKER_MAX_OPEN_FOR),
    ),
    row(
        "upstreams.*.circuit_breaker.half_open_requests",
        "1",
        N(BREAKER_HALF_OPEN_REQUESTS as u64),
    ),
    row(
        "upstreams.*.circuit_breaker.on",
        "[error, timeout]",
        List(BREAKER_ON),
    ),
    row("upstreams.*.health_check.path", "/", Text(HEALTH_PATH)),
    row(
        "upstreams.*.health_check.interval",
        "5s",
        D(HEALTH_INTERVAL),
    ),
    row("upstreams.*.health_check.timeout", "2s", D(HEALTH_TIMEOUT)),
    row(
        "upstreams.*.health_check.healthy_after",
        "2",
        N(HEALTH_HEALTHY_AFTER as u64),
    ),
    row(
        "upstreams.*.health_check.unhealthy_after",
        "3",
        N(HEALTH_UNHEALTHY_AFTER as u64),
    ),
    row(
        "upstreams.*.health_check.expect_status",
        HEALTH_EXPECT_STATUS,
        Text(HEALTH_EXPECT_STATUS),
    ),
    row("upstreams.*.tls.verify", "true", Flag(UPSTREAM_TLS_VERIFY)),
    row("routes.*.path", "/", Text(ROUTE_PATH)),
    row("routes.*.strip_prefix", "false", Flag(false)),
    row("routes.*.compress", "false", Flag(false)),
    row("routes.*.rate_limit.per", "1s", D(RATE_PER)),
    row("routes.*.rate_limit.burst", "0", N(RATE_BURST as u64)),
    row("routes.*.rate_limit.key", "client_ip", Text("client_ip")),
    row("routes.*.redirect.status", "302", N(REDIRECT_STATUS as u64)),
];

/// The default of `key`, if it has one.
pub fn of(key: &str) -> Option<&'static Default> {
    TABLE.iter().find(|d| d.key == key)
}

/// The README's table of defaults, as a Markdown table (a test keeps the README's copy equal).
pub fn markdown() -> String {
    let mut out = String::from("| key | default |\n|---|---|\n");
    for d in TABLE {
        out += &format!("| `{}` | `{}` |\n", d.key, d.text);
    }
    out
}

/// The value as JSON, for the schema's `default`.
pub fn json(d: &Default) -> serde_json::Value {
    match d.value {
        Value::Number(n) => n.into(),
        Value::Flag(b) => b.into(),
        Value::List(items) => items.iter().map(|s| serde_json::Value::from(*s)).collect(),
        Value::Duration(_) | Value::Size(_) | Value::Text(_) => d.text.into(),
    }
}

/// `static.open_file_cache`: how long a served file is kept open.
pub const OPEN_FILE_CACHE: std::time::Duration = std::time::Duration::from_secs(1);
/// Files kept open per `static` block.
pub const OPEN_FILES_MAX: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::{parse_duration, parse_size};

    #[test]
    fn the_readme_lists_every_default() {
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&markdown()),
            "README.md's table of defaults differs from config/defaults.rs; it should read:\n{}",
            markdown()
        );
    }

    #[test]
    fn each_text_is_what_the_value_is_and_the_schema_says_it() {
        for d in TABLE {
            match d.value {
                Value::Duration(v) => assert_eq!(parse_duration(d.text), Ok(v), "{}", d.key),
                Value::Size(v) => assert_eq!(parse_size(d.text), Ok(v), "{}", d.key),
                Value::Number(v) => assert_eq!(d.text.parse::<u64>(), Ok(v), "{}", d.key),
                Value::Flag(v) => assert_eq!(d.text.parse::<bool>(), Ok(v), "{}", d.key),
                Value::Text(v) => assert_eq!(d.text, v, "{}", d.key),
                Value::List(v) => assert_eq!(d.text, format!("[{}]", v.join(", ")), "{}", d.key),
            }
        }
        let schema: serde_json::Value =
            serde_json::from_str(&crate::config::schema::json_schema()).unwrap();
        for d in TABLE {
            let keys: Vec<&str> = d.key.split('.').collect();
            let at = crate::config::schema::locate(&schema, "", &keys);
            let at = at.unwrap_or_else(|| panic!("{} is not in the schema", d.key));
            assert_eq!(
                schema.pointer(&at).unwrap()["default"],
                json(d),
                "{}",
                d.key
            );
        }
        let mut keys: Vec<_> = TABLE.iter().map(|d| d.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), TABLE.len(), "a key is in the table twice");
    }
}
