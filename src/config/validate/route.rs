//! One route: where it goes (an upstream or a redirect) and its policies (SPEC §8).

use super::Checker;
use super::files;
use super::location::{Location, compile};
use super::vars::{error_pages, template};
use crate::config::defaults;
use crate::config::error::did_you_mean;
use crate::config::file::{FileHeaderOps, FileRateLimit, FileRoute};
use crate::config::units::{parse_duration, parse_size};
use crate::config::yaml::Seg;
use crate::config::{
    Access, FieldValue, HeaderOps, PathMatch, RateKey, RateLimit, RedirectTo, Respond, Rewrite,
    Route, RoutePolicy, UpstreamMap,
};
use crate::vars::{Map, Scope, Template};
use http::{HeaderName, HeaderValue};

/// What a route may name: pools and maps.
pub(super) struct Known<'a> {
    pub pools: &'a [&'a str],
    pub map_names: &'a [String],
    /// The maps that compiled.
    pub maps: &'a [Map],
}

impl Known<'_> {
    fn scope(&self, response: bool) -> Scope<'_> {
        Scope {
            maps: self.map_names,
            response,
            groups: 0,
        }
    }
}

/// Fields switchyard frames or manages itself: a route may not set or remove them.
const MANAGED: [&str; 6] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "keep-alive",
    "te",
];

pub(super) fn route(
    c: &mut Checker<'_>,
    i: usize,
    r: &FileRoute,
    at_: Location,
    known: &Known<'_>,
    earlier: &[Route],
) -> Option<Route> {
    let Location {
        host,
        path,
        listeners,
        conditions,
    } = at_;
    let base = [Seg::Key("routes"), Seg::Index(i)];
    let at = |k: &'static str| [&base[..], &[Seg::Key(k)]].concat();
    let errors_before = c.issues.len();

    let answers: Vec<&str> = [
        ("upstream", r.upstream.is_some()),
        ("redirect", r.redirect.is_some()),
        ("respond", r.respond.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| *k)
    .collect();
    if answers.len() > 1 {
        c.err(
            &at(answers[1]),
            format!(
                "a route either goes to an `upstream` or answers a `redirect` or `respond`s itself, one of them: found {}",
                answers.join(" and ")
            ),
        );
    } else if answers.is_empty() && r.static_files.is_none() {
        c.err(
            &base,
            "`upstream` (or `static`, `redirect` or `respond`) is required",
        );
    }
    if r.static_files.is_some() && (r.redirect.is_some() || r.respond.is_some()) {
        c.err(
            &at("static"),
            "a route that answers a `redirect` or `respond` serves no files",
        );
    }
    let names = known.pools;
    let mut upstream_map = None;
    let mut upstream = match &r.upstream {
        None => None,
        Some(u) if u.starts_with('$') => {
            upstream_map = pool_map(c, &u[1..], known, &at("upstream"));
            None
        }
        Some(u) => match names.iter().position(|n| n == u) {
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
    if r.strip_prefix.is_some() && matches!(path, PathMatch::Regex(_)) {
        c.err(
            &at("strip_prefix"),
            "a `regex` route has no prefix to strip; use `rewrite`",
        );
    }

    let name = match r.name.as_deref().map(str::trim) {
        Some(n) if n.is_empty() || n.len() > 100 || n.chars().any(char::is_control) => {
            c.err(&at("name"), "a route name is 1 to 100 printable characters");
            String::new()
        }
        Some(n) => n.to_string(),
        None => {
            // host + path as written; a later route on the same host and path (with other
            // `listeners` or `match`) gets its position added, so labels stay apart.
            let label = format!("{}{}", host.label(), path.label());
            if earlier.iter().any(|o| o.name == label) {
                format!("{label}#{i}")
            } else {
                label
            }
        }
    };

    let rewrite = r.rewrite.as_ref().and_then(|rw| {
        let (Some(from), Some(to)) = (&rw.from, &rw.to) else {
            c.err(&at("rewrite"), "`rewrite` needs `from` (a regex) and `to`");
            return None;
        };
        let p = [&at("rewrite")[..], &[Seg::Key("from")]].concat();
        let re = match compile(from, false) {
            Ok(re) => re,
            Err(e) => {
                c.err(&p, e);
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
        let to = template(
            c,
            to,
            &to_path,
            Scope {
                groups: re.captures_len(),
                ..known.scope(false)
            },
        )?;
        Some(Rewrite { from: re, to })
    });

    let request_headers = header_ops(
        c,
        &r.request_headers,
        &at("request_headers"),
        known.scope(false),
    );
    let response_headers = header_ops(
        c,
        &r.response_headers,
        &at("response_headers"),
        known.scope(true),
    );
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
        let to = template(
            c,
            to,
            &[&at("redirect")[..], &[Seg::Key("to")]].concat(),
            known.scope(false),
        )?;
        Some(RedirectTo { to, status })
    });
    let respond = r
        .respond
        .as_ref()
        .and_then(|rs| respond(c, rs, &at("respond"), known.scope(false)));
    let error_pages = error_pages(c, &r.error_pages, &at("error_pages"));
    let static_files = r.static_files.as_ref().and_then(|s| {
        let (files, pool) = files::static_files(
            c,
            s,
            &at("static"),
            &path,
            r.upstream.as_deref(),
            known.pools,
            known.scope(false),
        )?;
        if upstream.is_none() && upstream_map.is_none() {
            upstream = pool;
        }
        Some(std::sync::Arc::new(files))
    });
    let serves_only_files = static_files.as_ref().is_some_and(|f| !f.tries_upstream());
    if r.redirect.is_some() || r.respond.is_some() || serves_only_files {
        // What only makes sense for a request that is forwarded.
        for (key, set) in [
            ("strip_prefix", r.strip_prefix.is_some()),
            ("rewrite", r.rewrite.is_some()),
            ("request_headers", r.request_headers.is_some()),
            ("max_body_bytes", r.max_body_bytes.is_some()),
            ("compress", r.compress.is_some() && !serves_only_files),
            ("intercept_errors", r.intercept_errors.is_some()),
        ] {
            if set {
                c.err(
                    &at(key),
                    format!(
                        "`{key}` does nothing on a route that answers itself (nothing is forwarded)"
                    ),
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
        listeners,
        conditions,
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
            respond,
            error_pages,
            intercept_errors: r.intercept_errors.unwrap_or(false),
            static_files,
            internal: r.internal.unwrap_or(false),
        },
        upstream_map,
    })
}

/// `upstream: $NAME`: every value of map NAME (its default included) must name a pool.
fn pool_map(
    c: &mut Checker<'_>,
    name: &str,
    known: &Known<'_>,
    at: &[Seg<'_>],
) -> Option<UpstreamMap> {
    let Some(index) = known.map_names.iter().position(|n| n == name) else {
        c.err(
            at,
            format!(
                "no map `{name}` under `maps`{}",
                did_you_mean(name, known.map_names.iter().map(String::as_str))
            ),
        );
        return None;
    };
    // A map that failed to compile has its own error already.
    let map = known.maps.iter().find(|m| m.name == name)?;
    let mut pools = Vec::new();
    let mut all_pools = true;
    for value in map.values() {
        match known.pools.iter().position(|p| p == value) {
            Some(p) => pools.push(p),
            None => {
                all_pools = false;
                let shown = if value.is_empty() {
                    "`` (the empty default: give the map a `default`)".to_string()
                } else {
                    format!("`{value}`")
                };
                c.err(
                    at,
                    format!(
                        "map `{name}` can give {shown}, which is not a pool{}",
                        did_you_mean(value, known.pools.iter().copied())
                    ),
                );
            }
        }
    }
    all_pools.then_some(UpstreamMap { map: index, pools })
}

fn respond(
    c: &mut Checker<'_>,
    rs: &crate::config::file::FileRespond,
    base: &[Seg<'_>],
    scope: Scope<'_>,
) -> Option<Respond> {
    let at = |k: &'static str| [base, &[Seg::Key(k)]].concat();
    let errors_before = c.issues.len();
    let status = match rs.status {
        None => {
            c.err(
                base,
                "`status` is required: the status to answer (444: close)",
            );
            0
        }
        Some(s) if (200..=599).contains(&s) && s != 444 || s == Respond::CLOSE => s,
        Some(s) => {
            c.err(
                &at("status"),
                format!("{s} cannot be answered: 200 to 599, or 444 to close the connection"),
            );
            0
        }
    };
    let mut headers = Vec::new();
    for (name, value) in rs.headers.iter().flat_map(|h| &h.0) {
        let p = [&at("headers")[..], &[Seg::Key(name)]].concat();
        match HeaderName::from_bytes(name.trim().as_bytes()) {
            Ok(n) if MANAGED.contains(&n.as_str()) => c.err(
                &p,
                format!("`{name}` frames the message; switchyard manages it"),
            ),
            Ok(n) => {
                if let Some(v) = field_value(c, value, &p, scope) {
                    headers.push((n, v));
                }
            }
            Err(_) => c.err(&p, format!("`{name}` is not a header field name")),
        }
    }
    let body_template = rs
        .body
        .as_deref()
        .and_then(|b| template(c, b, &at("body"), scope))
        .filter(|t| t.literal().is_none());
    if (status == 204 || status == 304) && rs.body.as_ref().is_some_and(|b| !b.is_empty()) {
        c.err(&at("body"), format!("a {status} answer has no body"));
    }
    if status == Respond::CLOSE && (rs.body.is_some() || !headers.is_empty()) {
        c.err(
            base,
            "444 closes the connection without an answer: it has no body or headers",
        );
    }
    let body = match (&body_template, rs.body.as_deref()) {
        (None, Some(b)) => Template::compile(b, scope)
            .ok()
            .and_then(|t| t.literal().map(|s| bytes::Bytes::from(s.to_string())))
            .unwrap_or_default(),
        _ => bytes::Bytes::new(),
    };
    (c.issues.len() == errors_before).then(|| Respond {
        status,
        body,
        body_template,
        headers,
    })
}

/// A header value: fixed when it has no variables, else its template.
fn field_value(
    c: &mut Checker<'_>,
    value: &str,
    at: &[Seg<'_>],
    scope: Scope<'_>,
) -> Option<FieldValue> {
    let t = template(c, value, at, scope)?;
    match t.literal() {
        Some(text) => match HeaderValue::from_str(text) {
            Ok(v) => Some(FieldValue::Fixed(v)),
            Err(_) => {
                c.err(at, "not a valid header value (no control characters)");
                None
            }
        },
        None => Some(FieldValue::Template(t)),
    }
}

fn header_ops(
    c: &mut Checker<'_>,
    ops: &Option<FileHeaderOps>,
    base: &[Seg<'_>],
    scope: Scope<'_>,
) -> HeaderOps {
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
            if let Some(v) = field_value(c, value, &p, scope) {
                out.set.push((n, v));
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

pub(super) fn cidrs(
    c: &mut Checker<'_>,
    list: &Option<Vec<String>>,
    base: &[Seg<'_>],
) -> Vec<ipnet::IpNet> {
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
