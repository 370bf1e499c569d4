//! One route: where it goes (an upstream or a redirect) and its policies (SPEC §8).

use super::Checker;
use crate::config::defaults;
use crate::config::error::did_you_mean;
use crate::config::file::{FileHeaderOps, FileRateLimit, FileRoute};
use crate::config::units::{parse_duration, parse_size};
use crate::config::yaml::Seg;
use crate::config::{
    Access, HeaderOps, HostMatch, RateKey, RateLimit, RedirectTo, Rewrite, Route, RoutePolicy,
};
use http::{HeaderName, HeaderValue};

/// Fields switchyard frames or manages itself: a route may not set or remove them.
const MANAGED: [&str; 6] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "keep-alive",
    "te",
];

/// Largest `rewrite.from` pattern accepted (compiled size is bounded by the regex crate too).
const MAX_REGEX: usize = 1000;

pub(super) fn route(
    c: &mut Checker<'_>,
    i: usize,
    r: &FileRoute,
    host: HostMatch,
    path: String,
    names: &[&str],
) -> Option<Route> {
    let base = [Seg::Key("routes"), Seg::Index(i)];
    let at = |k: &'static str| [&base[..], &[Seg::Key(k)]].concat();
    let errors_before = c.issues.len();

    let upstream = match (&r.upstream, &r.redirect) {
        (Some(_), Some(_)) => {
            c.err(
                &at("redirect"),
                "a route either goes to an `upstream` or answers a `redirect`, not both",
            );
            None
        }
        (None, None) => {
            c.err(&base, "`upstream` (or `redirect`) is required");
            None
        }
        (None, Some(_)) => None,
        (Some(u), None) => match names.iter().position(|n| n == u) {
            Some(idx) => Some(idx),
            None => {
                c.err(
                    &at("upstream"),
                    format!(
                        "unknown upstream `{u}`{}",
                        did_you_mean(u, names.iter().copied())
                    ),
                );
                None
            }
        },
    };

    let name = match r.name.as_deref().map(str::trim) {
        Some(n) if n.is_empty() || n.len() > 100 || n.chars().any(char::is_control) => {
            c.err(&at("name"), "a route name is 1 to 100 printable characters");
            String::new()
        }
        Some(n) => n.to_string(),
        None => match &host {
            HostMatch::Any => path.clone(),
            HostMatch::Exact(h) => format!("{h}{path}"),
            HostMatch::Wildcard(s) => format!("*{s}{path}"),
        },
    };

    let rewrite = r.rewrite.as_ref().and_then(|rw| {
        let (Some(from), Some(to)) = (&rw.from, &rw.to) else {
            c.err(&at("rewrite"), "`rewrite` needs `from` (a regex) and `to`");
            return None;
        };
        let p = [&at("rewrite")[..], &[Seg::Key("from")]].concat();
        if from.len() > MAX_REGEX {
            c.err(&p, format!("longer than {MAX_REGEX} characters"));
            return None;
        }
        let re = match regex::RegexBuilder::new(from).size_limit(1 << 20).build() {
            Ok(re) => re,
            Err(e) => {
                let first = e.to_string();
                let last = first.lines().last().unwrap_or("invalid").trim();
                let msg = last.strip_prefix("error: ").unwrap_or(last).to_string();
                c.err(&p, format!("not a valid regex: {msg}"));
                return None;
            }
        };
        let to_path = [&at("rewrite")[..], &[Seg::Key("to")]].concat();
        if !to.starts_with('/') && !to.starts_with('$') {
            c.err(
                &to_path,
                format!("`{to}` must start with / (it replaces the path)"),
            );
            return None;
        }
        if let Some(n) = highest_group(to)
            && n >= re.captures_len()
        {
            c.err(
                &to_path,
                format!(
                    "`${n}` refers to a group `from` does not have (it has {})",
                    re.captures_len() - 1
                ),
            );
            return None;
        }
        Some(Rewrite {
            from: re,
            to: to.clone(),
        })
    });

    let request_headers = header_ops(c, &r.request_headers, &at("request_headers"));
    let response_headers = header_ops(c, &r.response_headers, &at("response_headers"));
    let allow = cidrs(c, &r.allow, &at("allow"));
    let deny = cidrs(c, &r.deny, &at("deny"));
    let access = (!allow.is_empty() || !deny.is_empty()).then_some(Access { allow, deny });
    let rate_limit = r
        .rate_limit
        .as_ref()
        .and_then(|rl| rate_limit(c, rl, &at("rate_limit")));
    let max_body_bytes = r.max_body_bytes.as_ref().and_then(|t| match parse_size(t) {
        Ok(n) => Some(n),
        Err(e) => {
            c.err(&at("max_body_bytes"), e);
            None
        }
    });

    let redirect = r.redirect.as_ref().and_then(|rd| {
        let Some(to) = rd.to.as_deref().filter(|t| !t.trim().is_empty()) else {
            c.err(
                &at("redirect"),
                "`redirect` needs `to`: the URL to send clients to",
            );
            return None;
        };
        if to.chars().any(|ch| ch.is_control() || ch == ' ') {
            c.err(
                &[&at("redirect")[..], &[Seg::Key("to")]].concat(),
                "a URL without spaces or control characters",
            );
            return None;
        }
        let status = rd.status.unwrap_or(defaults::REDIRECT_STATUS);
        if ![301, 302, 307, 308].contains(&status) {
            c.err(
                &[&at("redirect")[..], &[Seg::Key("status")]].concat(),
                format!("{status} is not a redirect status: 301, 302, 307 or 308"),
            );
            return None;
        }
        Some(RedirectTo {
            to: to.to_string(),
            status,
        })
    });
    if r.redirect.is_some() {
        // What only makes sense for a request that is forwarded.
        for (key, set) in [
            ("strip_prefix", r.strip_prefix.is_some()),
            ("rewrite", r.rewrite.is_some()),
            ("request_headers", r.request_headers.is_some()),
            ("max_body_bytes", r.max_body_bytes.is_some()),
            ("compress", r.compress.is_some()),
        ] {
            if set {
                c.err(
                    &at(key),
                    format!("`{key}` does nothing on a `redirect` route (nothing is forwarded)"),
                );
            }
        }
    }

    if c.issues.len() > errors_before {
        return None;
    }
    Some(Route {
        name,
        host,
        path,
        upstream,
        policy: RoutePolicy {
            strip_prefix: r.strip_prefix.unwrap_or(false),
            rewrite,
            request_headers,
            response_headers,
            access,
            rate_limit,
            max_body_bytes,
            compress: r.compress.unwrap_or(false),
            redirect,
        },
    })
}

/// The highest `$N` / `${N}` in a replacement.
fn highest_group(to: &str) -> Option<usize> {
    let re = regex::Regex::new(r"\$\{?([0-9]+)\}?").ok()?;
    re.captures_iter(to)
        .filter_map(|c| c.get(1)?.as_str().parse().ok())
        .max()
}

fn header_ops(c: &mut Checker<'_>, ops: &Option<FileHeaderOps>, base: &[Seg<'_>]) -> HeaderOps {
    let mut out = HeaderOps::default();
    let Some(ops) = ops else {
        return out;
    };
    let name_of = |c: &mut Checker<'_>, text: &str, path: &[Seg<'_>]| -> Option<HeaderName> {
        match HeaderName::from_bytes(text.trim().as_bytes()) {
            Ok(n) if MANAGED.contains(&n.as_str()) => {
                c.err(
                    path,
                    format!("`{text}` frames the message; switchyard manages it"),
                );
                None
            }
            Ok(n) => Some(n),
            Err(_) => {
                c.err(path, format!("`{text}` is not a header field name"));
                None
            }
        }
    };
    if let Some(set) = &ops.set {
        let set_path = [base, &[Seg::Key("set")]].concat();
        for (name, value) in &set.0 {
            let p = [&set_path[..], &[Seg::Key(name)]].concat();
            let Some(n) = name_of(c, name, &p) else {
                continue;
            };
            match HeaderValue::from_str(value) {
                Ok(v) => out.set.push((n, v)),
                Err(_) => c.err(&p, "not a valid header value (no control characters)"),
            }
        }
    }
    if let Some(remove) = &ops.remove {
        for (j, name) in remove.iter().enumerate() {
            let p = [base, &[Seg::Key("remove"), Seg::Index(j)]].concat();
            if let Some(n) = name_of(c, name, &p) {
                out.remove.push(n);
            }
        }
    }
    out
}

fn cidrs(c: &mut Checker<'_>, list: &Option<Vec<String>>, base: &[Seg<'_>]) -> Vec<ipnet::IpNet> {
    let mut out = Vec::new();
    for (j, text) in list.iter().flatten().enumerate() {
        let t = text.trim();
        let parsed = t
            .parse::<ipnet::IpNet>()
            .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(n) => out.push(n.trunc()),
            Err(_) => c.err(
                &[base, &[Seg::Index(j)]].concat(),
                format!("`{t}` is not an address or CIDR block (10.0.0.0/8, 2001:db8::/32)"),
            ),
        }
    }
    out
}

fn rate_limit(c: &mut Checker<'_>, rl: &FileRateLimit, base: &[Seg<'_>]) -> Option<RateLimit> {
    let at = |k: &'static str| [base, &[Seg::Key(k)]].concat();
    let errors_before = c.issues.len();
    let requests = match rl.requests {
        None => {
            c.err(base, "`requests` is required: tokens added per `per`");
            1
        }
        Some(0) => {
            c.err(&at("requests"), "must be at least 1");
            1
        }
        Some(n) => n,
    };
    let per = match rl.per.as_deref().map(parse_duration) {
        None => defaults::RATE_PER,
        Some(Ok(d)) if d.is_zero() => {
            c.err(&at("per"), "must be more than 0");
            defaults::RATE_PER
        }
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            c.err(&at("per"), e);
            defaults::RATE_PER
        }
    };
    let key = match rl.key.as_deref().map(str::trim) {
        None | Some("client_ip") => RateKey::ClientIp,
        Some(k) => match k.strip_prefix("header:") {
            Some(h) => match HeaderName::from_bytes(h.trim().as_bytes()) {
                Ok(n) => RateKey::Header(n),
                Err(_) => {
                    c.err(&at("key"), format!("`{h}` is not a header field name"));
                    RateKey::ClientIp
                }
            },
            None => {
                c.err(
                    &at("key"),
                    format!("unknown key `{k}`: client_ip or header:NAME"),
                );
                RateKey::ClientIp
            }
        },
    };
    (c.issues.len() == errors_before).then_some(RateLimit {
        requests,
        per,
        burst: rl.burst.unwrap_or(defaults::RATE_BURST),
        key,
    })
}
