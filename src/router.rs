//! Host and path routing (SPEC §3): which route a request takes.

use crate::config::{Config, HostMatch};
use std::collections::HashMap;

/// Host and path routing (SPEC §3): among the routes whose host and path both match, the most
/// specific host wins (exact, then the longest wildcard, then any host), then the longest path
/// prefix. Unlike nginx's server blocks, a request whose path matches no route of its exact
/// host falls through to the wildcard and any-host routes, so a catch-all route catches it.
#[derive(Debug, Default)]
pub struct Router {
    exact: HashMap<String, PathTable>,
    /// Longest suffix first; each suffix starts with a dot (`*.example.com` -> `.example.com`).
    wildcard: Vec<(String, PathTable)>,
    any: PathTable,
    /// No routes configured: everything takes route 0, to the only pool.
    single: Option<usize>,
}

/// Path prefixes of one host group, longest first.
#[derive(Debug, Default)]
struct PathTable(Vec<(String, usize)>);

impl PathTable {
    fn add(&mut self, prefix: &str, route: usize) {
        self.0.push((prefix.to_string(), route));
        self.0.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    }

    fn find(&self, path: &str) -> Option<usize> {
        self.0
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, route)| *route)
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
            match &route.host {
                HostMatch::Any => r.any.add(&route.path, i),
                HostMatch::Exact(h) => r.exact.entry(h.clone()).or_default().add(&route.path, i),
                HostMatch::Wildcard(suffix) => {
                    match r.wildcard.iter_mut().find(|(s, _)| s == suffix) {
                        Some((_, t)) => t.add(&route.path, i),
                        None => {
                            let mut t = PathTable::default();
                            t.add(&route.path, i);
                            r.wildcard.push((suffix.clone(), t));
                        }
                    }
                }
            }
        }
        r.wildcard.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        r
    }

    /// The route for a request (an index into the state's routes; with no routes configured,
    /// route 0 is the one to the only pool). `host` is the request's host as sent (any case, maybe with a
    /// port); `path` is the request path without the query.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<usize> {
        if let Some(single) = self.single {
            return Some(single);
        }
        // `OPTIONS *` (RFC 9112 §3.2.4) is about the server as a whole: route it as `/`.
        let path = if path == "*" { "/" } else { path };
        if let Some(host) = host.map(normalize_host).filter(|h| !h.is_empty()) {
            if let Some(route) = self.exact.get(host.as_ref()).and_then(|t| t.find(path)) {
                return Some(route);
            }
            for (suffix, table) in &self.wildcard {
                if host.len() > suffix.len()
                    && host.ends_with(suffix.as_str())
                    && let Some(route) = table.find(path)
                {
                    return Some(route);
                }
            }
        }
        self.any.find(path)
    }
}

/// Lower-case, without port or trailing dot. Borrows unless the host has upper-case letters.
fn normalize_host(host: &str) -> std::borrow::Cow<'_, str> {
    let without_port = if host.starts_with('[') {
        // IPv6 literal: keep up to the closing bracket.
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let h = without_port.trim_end_matches('.');
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(h.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::PathBuf;

    fn config(routes: &str) -> Config {
        let text = format!(
            "listen: [\":8080\"]\nupstreams:\n  web: {{servers: [{{addr: \"127.0.0.1:1\"}}]}}\n  api: {{servers: [{{addr: \"127.0.0.1:2\"}}]}}\n  wild: {{servers: [{{addr: \"127.0.0.1:3\"}}]}}\n  deep: {{servers: [{{addr: \"127.0.0.1:4\"}}]}}\nroutes:\n{routes}"
        );
        load_str(&text, "t", PathBuf::from("t")).unwrap()
    }

    #[test]
    fn most_specific_host_then_longest_path() {
        let c = config(
            "  - {upstream: web}\n  - {host: api.example.com, path: /v1/, upstream: api}\n  - {host: \"*.example.com\", upstream: wild}\n  - {host: \"*.eu.example.com\", upstream: deep}\n  - {path: /v1/admin/, upstream: api}\n",
        );
        let r = Router::new(&c);
        let name = |h: Option<&str>, p: &str| {
            r.route(h, p)
                .and_then(|i| c.routes[i].upstream)
                .map(|u| c.upstreams[u].name.as_str())
        };
        assert_eq!(name(Some("api.example.com"), "/v1/users"), Some("api"));
        assert_eq!(name(Some("API.Example.com:8080"), "/v1/users"), Some("api"));
        // Exact host has no route for this path: falls through to the wildcard.
        assert_eq!(name(Some("api.example.com"), "/other"), Some("wild"));
        assert_eq!(name(Some("x.eu.example.com"), "/"), Some("deep"));
        assert_eq!(name(Some("x.example.com"), "/"), Some("wild"));
        // The wildcard does not match the bare domain.
        assert_eq!(name(Some("example.com"), "/"), Some("web"));
        assert_eq!(name(None, "/v1/admin/x"), Some("api"));
        assert_eq!(name(Some("other.org"), "/anything"), Some("web"));
    }

    #[test]
    fn no_match_is_none() {
        let c =
            config("  - {host: a.example.com, upstream: web}\n  - {path: /api/, upstream: api}\n");
        let r = Router::new(&c);
        assert_eq!(r.route(Some("b.example.com"), "/"), None);
        assert_eq!(r.route(None, "/ap"), None);
        assert_eq!(r.route(Some("b.example.com"), "/api/x"), Some(1));
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        assert_eq!(normalize_host("[::1]:8080"), "[::1]");
        assert_eq!(normalize_host("Example.COM."), "example.com");
    }
}
