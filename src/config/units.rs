//! Durations, sizes, addresses and status ranges as written in the config file.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// `250ms`, `5s`, `1m`, `1h30m` (humantime syntax). A bare number is an error: SPEC §2 asks
/// for a unit, because `timeout: 5` means seconds to nginx and milliseconds to others.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("a duration is required here, for example 5s".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "`{t}` has no unit; write it as {t}s or {t}ms (units: ms, s, m, h)"
        ));
    }
    humantime::parse_duration(t)
        .map_err(|_| format!("`{t}` is not a duration; write for example 250ms, 5s or 1m"))
}

/// `64KiB`, `1MiB`, `512B`, or a plain number of bytes (the keys holding sizes are named
/// `..._bytes`, and nginx reads a bare number as bytes too). Suffixes: `B`; binary `KiB`, `MiB`,
/// `GiB`; nginx-style `k`/`K`, `m`/`M`, `g`/`G` (also 1024-based, as in nginx); decimal `KB`,
/// `MB`, `GB`. Written by hand: the size crates disagree with nginx on what `1m` means.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let unit = unit.trim();
    if digits.is_empty() {
        return Err(format!(
            "`{t}` is not a size; write for example 64KiB or 1MiB"
        ));
    }
    let n: u64 = digits.parse().map_err(|_| format!("`{t}` is too large"))?;
    let mult: u64 = match unit {
        "" | "B" | "b" => 1,
        "KiB" | "k" | "K" => 1 << 10,
        "MiB" | "m" | "M" => 1 << 20,
        "GiB" | "g" | "G" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => {
            return Err(format!(
                "`{t}` has an unknown unit `{unit}`; use B, KiB, MiB or GiB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{t}` is too large"))
}

/// `host:port` -> a socket address, resolving a host name now (SPEC §2: at load time).
/// `[::1]:80` for IPv6. The first address the resolver returns is used.
pub fn resolve_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = t.rsplit_once(':') else {
        return Err(format!("`{t}` is not host:port"));
    };
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return Err(format!("`{t}` is not host:port (write IPv6 as [::1]:80)"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{t}`: `{port}` is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("`{host}` resolves to no address"))
}

/// Only literal addresses (`1.2.3.4:80`, `[::1]:80`): no name lookups. For fuzzing and for
/// tools that must not touch the network.
pub fn literal_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "`{}` is not an IP address and port (names are not resolved here)",
            text.trim()
        )
    })
}

/// A listen address: `host:port`, or nginx-style `8080` / `:8080` for every IPv4 address.
pub fn parse_listen(
    text: &str,
    resolve: &dyn Fn(&str) -> Result<SocketAddr, String>,
) -> Result<SocketAddr, String> {
    let t = text.trim();
    let port_only = t.strip_prefix(':').unwrap_or(t);
    if !port_only.is_empty() && port_only.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = port_only
            .parse()
            .map_err(|_| format!("`{t}` is not a port number"))?;
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    resolve(t)
}

/// An inclusive range of HTTP status codes; `expect_status: "200-399"` or `"200"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub lo: u16,
    pub hi: u16,
}

impl StatusRange {
    pub fn contains(&self, status: u16) -> bool {
        (self.lo..=self.hi).contains(&status)
    }
}

pub fn parse_status_range(text: &str) -> Result<StatusRange, String> {
    let t = text.trim();
    let parse = |s: &str| -> Result<u16, String> {
        let n: u16 = s
            .trim()
            .parse()
            .map_err(|_| format!("`{t}` is not a status or a range like 200-399"))?;
        if !(100..=599).contains(&n) {
            return Err(format!("`{n}` is not an HTTP status (100-599)"));
        }
        Ok(n)
    };
    let (lo, hi) = match t.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let n = parse(t)?;
            (n, n)
        }
    };
    if lo > hi {
        return Err(format!("`{t}`: the range is empty"));
    }
    Ok(StatusRange { lo, hi })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("0").unwrap_err().contains("no unit"));
        assert!(parse_duration("5x").unwrap_err().contains("not a duration"));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512 B"), Ok(512));
        assert!(parse_size("KiB").is_err());
        assert!(
            parse_size("5 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            resolve_addr("127.0.0.1:3000"),
            Ok("127.0.0.1:3000".parse().unwrap())
        );
        assert_eq!(resolve_addr("[::1]:80"), Ok("[::1]:80".parse().unwrap()));
        assert!(resolve_addr("localhost:3000").unwrap().ip().is_loopback());
        assert!(resolve_addr("3000").is_err());
        assert!(resolve_addr("host:notaport").unwrap_err().contains("port"));
        assert!(
            resolve_addr("no-such-host.invalid:80")
                .unwrap_err()
                .contains("cannot resolve")
        );
        assert_eq!(
            parse_listen(":8080", &resolve_addr),
            Ok("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            parse_listen("8080", &resolve_addr),
            Ok("0.0.0.0:8080".parse().unwrap())
        );
    }

    #[test]
    fn status_ranges() {
        let r = parse_status_range("200-399").unwrap();
        assert!(r.contains(200) && r.contains(399) && !r.contains(400));
        assert_eq!(
            parse_status_range("204"),
            Ok(StatusRange { lo: 204, hi: 204 })
        );
        assert!(parse_status_range("399-200").is_err());
        assert!(parse_status_range("abc").is_err());
        assert!(parse_status_range("700").is_err());
    }
}
