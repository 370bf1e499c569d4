//! Which route serves a request (SPEC §3, §11): nginx's `server_name` precedence for the host,
//! nginx's `location` algorithm for the path, then a route's `listeners` and `match`.

#[cfg(test)]
mod tests;

pub use crate::vars::uri::{InvalidPath, cookie, normalize_host, normalize_path};

use crate::config::{Conditions, Config, HostMatch, PathMatch};
use http::{HeaderMap, Method};
use std::collections::HashMap;

/// What a request offers the router.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// As sent (any case, maybe with a port).
    pub host: Option<&'a str>,
    /// Normalized ([`normalize_path`]), without the query.
    pub path: &'a str,
    /// The index of the listener the request came on, when [`Router::needs_listener`].
    pub listener: Option<usize>,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
}

/// Routes grouped by host form. Hosts are tried most specific first (exact, the longest
/// leading wildcard, the longest trailing wildcard, host regexes in file order, then routes
/// with no `host`); within a group, nginx's location algorithm picks the route. Unlike nginx's
/// server blocks, a request that no route of its most specific host group takes falls through
/// to the next group, so a catch-all route catches it.
#[derive(Debug, Default)]
pub struct Router {
    exact: HashMap<String, Locations>,
    /// Longest suffix first; each suffix starts with a dot (`*.example.com` -> `.example.com`).
    leading: Vec<(String, Locations)>,
    /// Longest prefix first; each ends with a dot (`www.example.*` -> `www.example.`).
    trailing: Vec<(String, Locations)>,
    /// File order.
    regex: Vec<(regex::Regex, Locations)>,
    any: Locations,
    /// Per route: what must hold besides host and path (`None`: nothing).
    guards: Vec<Option<Guard>>,
    needs_listener: bool,
    /// No routes configured: everything takes route 0, to the only pool.
    single: Option<usize>,
}

/// A route's `listeners` and `match`.
#[derive(Debug)]
struct Guard {
    listeners: Vec<usize>,
    conditions: Option<Conditions>,
}

impl Guard {
    fn holds(&self, req: &Request<'_>) -> bool {
        if !self.listeners.is_empty() && !req.listener.is_some_and(|l| self.listeners.contains(&l))
        {
            return false;
        }
        let Some(c) = &self.conditions else {
            return true;
        };
        (c.methods.is_empty() || c.methods.contains(req.method))
            && c.headers.iter().all(|(name, test)| {
                test.holds(req.headers.get(name).map(http::HeaderValue::as_bytes))
            })
            && c.cookies
                .iter()
                .all(|(name, test)| test.holds(cookie(req.headers, name)))
    }
}

/// One route that a path form leads to.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    route: usize,
    /// It has a [`Guard`].
    guarded: bool,
    /// nginx's `^~`.
    stop_regex: bool,
}

/// The routes of one host group, by path form (nginx's locations of one `server`). Where
/// several routes share a path, they are kept in file order: the first whose guard holds wins.
#[derive(Debug, Default)]
struct Locations {
    exact: HashMap<String, Vec<Candidate>>,
    /// Longest first.
    prefixes: Vec<(String, Vec<Candidate>)>,
    /// With many prefixes: their distinct lengths, longest first, each with the prefixes of
    /// that length (index into `prefixes`), so the longest match is a few hash lookups (one
    /// per length) instead of a walk over all of them.
    by_len: Vec<(usize, HashMap<Box<str>, usize>)>,
    /// File order.
    regexes: Vec<(regex::Regex, Candidate)>,
}

/// Below this many prefixes, walking them is as fast as hashing.
const WALK_PREFIXES: usize = 8;

impl Locations {
    fn add(&mut self, path: &PathMatch, c: Candidate) {
        match path {
            PathMatch::Exact(p) => self.exact.entry(p.clone()).or_default().push(c),
            PathMatch::Regex(re) => self.regexes.push((re.clone(), c)),
            PathMatch::Prefix { prefix, .. } => {
                match self.prefixes.iter_mut().find(|(p, _)| p == prefix) {
                    Some((_, list)) => list.push(c),
                    None => {
                        self.prefixes.push((prefix.clone(), vec![c]));
                        // Stable: equal lengths keep file order.
                        self.prefixes.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
                        self.index_prefixes();
                    }
                }
            }
        }
    }

    fn index_prefixes(&mut self) {
        self.by_len.clear();
        if self.prefixes.len() <= WALK_PREFIXES {
            return;
        }
        for (i, (p, _)) in self.prefixes.iter().enumerate() {
            if self.by_len.last().is_none_or(|(len, _)| *len != p.len()) {
                self.by_len.push((p.len(), HashMap::new()));
            }
            if let Some((_, map)) = self.by_len.last_mut() {
                map.insert(p.as_str().into(), i);
            }
        }
    }

    /// The longest prefix of `path` with a candidate that `ok` accepts.
    fn longest_prefix<'a>(
        &'a self,
        path: &str,
        ok: impl Fn(&&'a Candidate) -> bool,
    ) -> Option<&'a Candidate> {
        if self.by_len.is_empty() {
            return self
                .prefixes
                .iter()
                .filter(|(p, _)| path.starts_with(p.as_str()))
                .find_map(|(_, list)| list.iter().find(&ok));
        }
        self.by_len
            .iter()
            .filter(|(len, _)| path.is_char_boundary(*len))
            .filter_map(|(len, map)| map.get(&path[..*len]))
            .find_map(|&i| self.prefixes[i].1.iter().find(&ok))
    }

    /// nginx's algorithm: an exact match wins at once; else the longest prefix is remembered
    /// and wins if it stops regexes; else the first regex in file order; else the prefix.
    fn find(&self, req: &Request<'_>, guards: &[Option<Guard>]) -> Option<usize> {
        let ok =
            |c: &&Candidate| !c.guarded || guards[c.route].as_ref().is_none_or(|g| g.holds(req));
        let path = req.path;
        if !self.exact.is_empty()
            && let Some(c) = self.exact.get(path).and_then(|l| l.iter().find(ok))
        {
            return Some(c.route);
        }
        let prefix = self.longest_prefix(path, ok);
        if let Some(c) = prefix
            && c.stop_regex
        {
            return Some(c.route);
        }
        self.regexes
            .iter()
            .find(|(re, c)| re.is_match(path) && ok(&c))
            .map(|(_, c)| c)
            .or(prefix)
            .map(|c| c.route)
    }
}

impl Router {
    pub fn new(config: &Config) -> Router {
        let mut r = Router::default();
        if config.routes.is_empty() {
            r.single = (!config.upstreams.is_empty()).then_some(0);
            return r;
        }
        for (i, route) in config.routes.iter().enumerate() {
            let guarded = !route.listeners.is_empty() || route.conditions.is_some();
            r.needs_listener |= !route.listeners.is_empty();
            r.guards.push(guarded.then(|| Guard {
                listeners: route.listeners.clone(),
                conditions: route.conditions.clone(),
            }));
            let c = Candidate {
                route: i,
                guarded,
                stop_regex: matches!(
                    route.path,
                    PathMatch::Prefix {
                        stop_regex: true,
                        ..
                    }
                ),
            };
            let group = match &route.host {
                HostMatch::Any => &mut r.any,
                HostMatch::Exact(h) => r.exact.entry(h.clone()).or_default(),
                HostMatch::Wildcard(s) => group(&mut r.leading, s),
                HostMatch::Trailing(p) => group(&mut r.trailing, p),
                HostMatch::Regex(re) => {
                    match r.regex.iter().position(|(o, _)| o.as_str() == re.as_str()) {
                        Some(k) => &mut r.regex[k].1,
                        None => {
                            r.regex.push((re.clone(), Locations::default()));
                            &mut r.regex.last_mut().expect("just pushed").1
                        }
                    }
                }
            };
            group.add(&route.path, c);
        }
        r.leading.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        r.trailing.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        r
    }

    /// Whether some route has `listeners`, so [`Request::listener`] must be filled in.
    pub fn needs_listener(&self) -> bool {
        self.needs_listener
    }

    /// The route for a request: an index into the state's routes (with no routes configured,
    /// route 0 is the one to the only pool). `None`: 404.
    pub fn route(&self, req: &Request<'_>) -> Option<usize> {
        if let Some(single) = self.single {
            return Some(single);
        }
        // `OPTIONS *` (RFC 9112 §3.2.4) is about the server as a whole: route it as `/`.
        let root;
        let req = if req.path == "*" {
            root = Request { path: "/", ..*req };
            &root
        } else {
            req
        };
        let guards = &self.guards[..];
        if let Some(host) = req.host.map(normalize_host).filter(|h| !h.is_empty()) {
            let host = host.as_ref();
            if !self.exact.is_empty()
                && let Some(route) = self.exact.get(host).and_then(|l| l.find(req, guards))
            {
                return Some(route);
            }
            let longer = |affix: &String| host.len() > affix.len();
            for (suffix, l) in &self.leading {
                if longer(suffix)
                    && host.ends_with(suffix.as_str())
                    && let Some(route) = l.find(req, guards)
                {
                    return Some(route);
                }
            }
            for (prefix, l) in &self.trailing {
                if longer(prefix)
                    && host.starts_with(prefix.as_str())
                    && let Some(route) = l.find(req, guards)
                {
                    return Some(route);
                }
            }
            for (re, l) in &self.regex {
                if re.is_match(host)
                    && let Some(route) = l.find(req, guards)
                {
                    return Some(route);
                }
            }
        }
        self.any.find(req, guards)
    }
}

/// The group of one wildcard form, created at the end of `groups` if new.
fn group<'a>(groups: &'a mut Vec<(String, Locations)>, affix: &str) -> &'a mut Locations {
    let k = match groups.iter().position(|(a, _)| a == affix) {
        Some(k) => k,
        None => {
            groups.push((affix.to_string(), Locations::default()));
            groups.len() - 1
        }
    };
    &mut groups[k].1
}
