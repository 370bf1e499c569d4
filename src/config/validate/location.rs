//! Which requests a route takes (SPEC §3, §11): `host`, one of `path` / `exact` / `regex`,
//! `listeners` and `match`.

use super::Checker;
use crate::config::file::{FileMatch, FileRoute};
use crate::config::yaml::Seg;
use crate::config::{Conditions, HostMatch, Listener, PathMatch, ValueTest};
use http::{HeaderName, Method};

/// Largest regex accepted in a route (compiled size is bounded by the regex crate too).
pub(super) const MAX_REGEX: usize = 1000;

/// What a route's keys say about the requests it takes.
pub(super) struct Location {
    pub host: HostMatch,
    pub path: PathMatch,
    pub listeners: Vec<usize>,
    pub conditions: Option<Conditions>,
}

pub(super) fn location(
    c: &mut Checker<'_>,
    i: usize,
    r: &FileRoute,
    listeners: &[Listener],
) -> Location {
    let at = |k: &'static str| vec![Seg::Key("routes"), Seg::Index(i), Seg::Key(k)];
    let host = match r.host.as_deref() {
        None => HostMatch::Any,
        Some(h) => host_match(h).unwrap_or_else(|e| {
            c.err(&at("host"), e);
            HostMatch::Any
        }),
    };
    let path = path_match(c, r, &at);
    let mut indices = Vec::new();
    for (j, name) in r.listeners.iter().flatten().enumerate() {
        let p = [&at("listeners")[..], &[Seg::Index(j)]].concat();
        match listeners
            .iter()
            .position(|l| l.name.as_deref() == Some(name.trim()))
        {
            Some(k) if !indices.contains(&k) => indices.push(k),
            Some(_) => c.err(&p, format!("`{name}` is listed twice")),
            None => {
                let named: Vec<&str> = listeners.iter().filter_map(|l| l.name.as_deref()).collect();
                let known = if named.is_empty() {
                    "no listener has a `name`".to_string()
                } else {
                    format!("named listeners: {}", named.join(", "))
                };
                c.err(&p, format!("unknown listener `{name}` ({known})"));
            }
        }
    }
    if r.listeners.as_ref().is_some_and(Vec::is_empty) {
        c.err(
            &at("listeners"),
            "an empty list serves no listener; leave `listeners` out to serve all",
        );
    }
    let conditions = r
        .conditions
        .as_ref()
        .map(|m| conditions(c, m, &at("match")));
    Location {
        host,
        path,
        listeners: indices,
        conditions,
    }
}

fn path_match(
    c: &mut Checker<'_>,
    r: &FileRoute,
    at: &dyn Fn(&'static str) -> Vec<Seg<'static>>,
) -> PathMatch {
    let given: Vec<&str> = [
        ("path", r.path.is_some()),
        ("exact", r.exact.is_some()),
        ("regex", r.regex.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| *k)
    .collect();
    if given.len() > 1 {
        c.err(
            &at(given[1]),
            format!(
                "a route matches by one of `path`, `exact` or `regex`, not {}",
                given.join(" and ")
            ),
        );
    }
    if r.stop_regex.is_some() && (r.exact.is_some() || r.regex.is_some()) {
        c.err(
            &at("stop_regex"),
            "`stop_regex` goes with a `path` prefix (nginx's `^~`)",
        );
    }
    if r.case_insensitive.is_some() && r.regex.is_none() {
        c.err(
            &at("case_insensitive"),
            "`case_insensitive` goes with `regex`",
        );
    }
    if let Some(re) = &r.regex {
        let insensitive = r.case_insensitive.unwrap_or(false);
        return match compile(re, insensitive) {
            Ok(re) => PathMatch::Regex(re),
            Err(e) => {
                c.err(&at("regex"), e);
                PathMatch::Exact(String::new())
            }
        };
    }
    if let Some(exact) = &r.exact {
        if !exact.starts_with('/') {
            c.err(&at("exact"), format!("`{exact}` must start with /"));
        }
        return PathMatch::Exact(exact.clone());
    }
    let prefix = r.path.clone().unwrap_or_else(|| "/".to_string());
    if !prefix.starts_with('/') {
        c.err(&at("path"), format!("`{prefix}` must start with /"));
    }
    PathMatch::Prefix {
        prefix,
        stop_regex: r.stop_regex.unwrap_or(false),
    }
}

/// A regex from the config, bounded in size, with the regex crate's message on error.
pub(super) fn compile(text: &str, case_insensitive: bool) -> Result<regex::Regex, String> {
    if text.len() > MAX_REGEX {
        return Err(format!("longer than {MAX_REGEX} characters"));
    }
    regex::RegexBuilder::new(text)
        .case_insensitive(case_insensitive)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            let first = e.to_string();
            let last = first.lines().last().unwrap_or("invalid").trim();
            let msg = last.strip_prefix("error: ").unwrap_or(last);
            format!("not a valid regex: {msg}")
        })
}

fn conditions(c: &mut Checker<'_>, m: &FileMatch, base: &[Seg<'_>]) -> Conditions {
    let at = |k: &'static str| [base, &[Seg::Key(k)]].concat();
    let mut out = Conditions::default();
    for (j, text) in m.methods.iter().flatten().enumerate() {
        let p = [&at("methods")[..], &[Seg::Index(j)]].concat();
        let upper = text.trim().to_ascii_uppercase();
        match Method::from_bytes(upper.as_bytes()) {
            Ok(method) if !upper.is_empty() => out.methods.push(method),
            _ => c.err(&p, format!("`{text}` is not a request method")),
        }
    }
    for (name, test) in m.headers.iter().flat_map(|h| &h.0) {
        let p = [&at("headers")[..], &[Seg::Key(name)]].concat();
        let Ok(header) = HeaderName::from_bytes(name.trim().as_bytes()) else {
            c.err(&p, format!("`{name}` is not a header field name"));
            continue;
        };
        match value_test(test) {
            Ok(t) => out.headers.push((header, t)),
            Err(e) => c.err(&p, e),
        }
    }
    for (name, test) in m.cookies.iter().flat_map(|h| &h.0) {
        let p = [&at("cookies")[..], &[Seg::Key(name)]].concat();
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b"=;,".contains(&b)) {
            c.err(&p, format!("`{name}` is not a cookie name"));
            continue;
        }
        match value_test(test) {
            Ok(t) => out.cookies.push((name.clone(), t)),
            Err(e) => c.err(&p, e),
        }
    }
    out
}

fn value_test(text: &str) -> Result<ValueTest, String> {
    if let Some(re) = text.strip_prefix('~') {
        return compile(re, false).map(ValueTest::Search);
    }
    Ok(match text.strip_prefix('!') {
        Some(v) => ValueTest::IsNot(v.to_string()),
        None => ValueTest::Is(text.to_string()),
    })
}

pub(super) fn host_match(h: &str) -> Result<HostMatch, String> {
    if let Some(re) = h.trim().strip_prefix('~') {
        // nginx's `server_name ~^(www\.)?example\.com$`: hosts are compared lower-cased.
        return compile(re, true).map(HostMatch::Regex);
    }
    let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
    if h.is_empty() {
        return Err("an empty host; leave `host` out to match any host".into());
    }
    if h.contains(':') && !h.starts_with('[') {
        return Err(format!("`{h}`: write the host without a port"));
    }
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':')
            })
    };
    if let Some(rest) = h.strip_prefix("*.") {
        if !valid(rest) {
            return Err(format!("`{h}` is not a host name"));
        }
        return Ok(HostMatch::Wildcard(format!(".{rest}")));
    }
    if let Some(rest) = h.strip_suffix(".*") {
        if !valid(rest) {
            return Err(format!("`{h}` is not a host name"));
        }
        return Ok(HostMatch::Trailing(format!("{rest}.")));
    }
    if !valid(&h) || h.contains('*') {
        return Err(format!(
            "`{h}` is not a host name (wildcards are written *.example.com or www.example.*)"
        ));
    }
    Ok(HostMatch::Exact(h))
}
