use super::*;
use crate::config::load_str;
use std::path::PathBuf;

fn config(routes: &str) -> Config {
    let text = format!(
        "listen:\n  - {{addr: \":8080\", name: public}}\n  - {{addr: \":8081\", name: internal}}\nupstreams:\n  web: {{servers: [{{addr: \"127.0.0.1:1\"}}]}}\n  api: {{servers: [{{addr: \"127.0.0.1:2\"}}]}}\n  wild: {{servers: [{{addr: \"127.0.0.1:3\"}}]}}\n  deep: {{servers: [{{addr: \"127.0.0.1:4\"}}]}}\nroutes:\n{routes}"
    );
    load_str(&text, "t", PathBuf::from("t")).unwrap()
}

/// A request's route, named by `name` or else by its upstream.
struct Ask<'c> {
    c: &'c Config,
    r: Router,
}

impl Ask<'_> {
    fn with(
        &self,
        host: Option<&str>,
        path: &str,
        listener: Option<usize>,
        headers: &[(&str, &str)],
        method: &str,
    ) -> Option<String> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let path = normalize_path(path).unwrap();
        let req = Request {
            host,
            path: &path,
            listener,
            method: &method,
            headers: &map,
        };
        self.r.route(&req).map(|i| {
            let route = &self.c.routes[i];
            if route.name.starts_with('#') {
                route.name[1..].to_string()
            } else {
                route
                    .upstream
                    .map_or_else(|| route.name.clone(), |u| self.c.upstreams[u].name.clone())
            }
        })
    }

    fn get(&self, host: Option<&str>, path: &str) -> Option<String> {
        self.with(host, path, None, &[], "GET")
    }
}

fn ask(c: &Config) -> Ask<'_> {
    Ask {
        c,
        r: Router::new(c),
    }
}

#[test]
fn most_specific_host_then_longest_path() {
    let c = config(
        "  - {upstream: web}\n  - {host: api.example.com, path: /v1/, upstream: api}\n  - {host: \"*.example.com\", upstream: wild}\n  - {host: \"*.eu.example.com\", upstream: deep}\n  - {path: /v1/admin/, upstream: api}\n",
    );
    let a = ask(&c);
    let name = |h: Option<&str>, p: &str| a.get(h, p);
    assert_eq!(
        name(Some("api.example.com"), "/v1/users").as_deref(),
        Some("api")
    );
    assert_eq!(
        name(Some("API.Example.com:8080"), "/v1/users").as_deref(),
        Some("api")
    );
    // Exact host has no route for this path: falls through to the wildcard.
    assert_eq!(
        name(Some("api.example.com"), "/other").as_deref(),
        Some("wild")
    );
    assert_eq!(name(Some("x.eu.example.com"), "/").as_deref(), Some("deep"));
    assert_eq!(name(Some("x.example.com"), "/").as_deref(), Some("wild"));
    // The wildcard does not match the bare domain.
    assert_eq!(name(Some("example.com"), "/").as_deref(), Some("web"));
    assert_eq!(name(None, "/v1/admin/x").as_deref(), Some("api"));
    assert_eq!(name(Some("other.org"), "/anything").as_deref(), Some("web"));
}

#[test]
fn no_match_is_none() {
    let c = config("  - {host: a.example.com, upstream: web}\n  - {path: /api/, upstream: api}\n");
    let a = ask(&c);
    assert_eq!(a.get(Some("b.example.com"), "/"), None);
    assert_eq!(a.get(None, "/ap"), None);
    assert_eq!(
        a.get(Some("b.example.com"), "/api/x").as_deref(),
        Some("api")
    );
}

#[test]
fn ipv6_hosts_keep_their_brackets() {
    assert_eq!(normalize_host("[::1]:8080"), "[::1]");
    assert_eq!(normalize_host("Example.COM."), "example.com");
}

/// nginx's own example from the `location` documentation, configurations A to E.
#[test]
fn locations_are_chosen_by_nginxs_algorithm() {
    let c = config(
        "  - {name: \"#A\", exact: /, upstream: web}\n  - {name: \"#B\", path: /, upstream: web}\n  - {name: \"#C\", path: /documents/, upstream: web}\n  - {name: \"#D\", path: /images/, stop_regex: true, upstream: web}\n  - {name: \"#E\", regex: \"\\\\.(gif|jpg|jpeg)$\", case_insensitive: true, upstream: web}\n",
    );
    let a = ask(&c);
    for (path, want) in [
        ("/", "A"),
        ("/index.html", "B"),
        ("/documents/document.html", "C"),
        ("/images/1.gif", "D"),
        ("/documents/1.jpg", "E"),
        ("/documents/1.JPG", "E"),
        ("/x/1.jpg", "E"),
    ] {
        assert_eq!(a.get(None, path).as_deref(), Some(want), "{path}");
    }
}

#[test]
fn regexes_are_tried_in_file_order_and_case_sensitively_by_default() {
    let c = config(
        "  - {name: \"#first\", regex: \"^/api/v[0-9]+/\", upstream: api}\n  - {name: \"#second\", regex: \"^/api/\", upstream: api}\n  - {name: \"#upper\", regex: \"\\\\.PHP$\", upstream: web}\n  - {name: \"#prefix\", path: /api/, upstream: web}\n",
    );
    let a = ask(&c);
    assert_eq!(a.get(None, "/api/v2/x").as_deref(), Some("first"));
    assert_eq!(a.get(None, "/api/x").as_deref(), Some("second"));
    assert_eq!(a.get(None, "/x.PHP").as_deref(), Some("upper"));
    assert_eq!(a.get(None, "/x.php"), None);
    // The routed path is nginx's $uri: decoded and resolved.
    assert_eq!(a.get(None, "/x/../api/v1/").as_deref(), Some("first"));
}

#[test]
fn host_forms_take_nginxs_server_name_precedence() {
    let c = config(
        "  - {name: \"#exact\", host: www.example.com, upstream: web}\n  - {name: \"#regex\", host: \"~^w+\\\\.example\\\\.(com|org)$\", upstream: web}\n  - {name: \"#leading\", host: \"*.example.com\", upstream: web}\n  - {name: \"#trailing\", host: \"www.example.*\", upstream: web}\n  - {name: \"#any\", upstream: web}\n",
    );
    let a = ask(&c);
    assert_eq!(
        a.get(Some("www.example.com"), "/").as_deref(),
        Some("exact")
    );
    // A leading wildcard beats a trailing one, which beats a regex.
    assert_eq!(
        a.get(Some("ww.example.com"), "/").as_deref(),
        Some("leading")
    );
    assert_eq!(
        a.get(Some("www.example.org"), "/").as_deref(),
        Some("trailing")
    );
    assert_eq!(a.get(Some("WW.Example.ORG"), "/").as_deref(), Some("regex"));
    assert_eq!(a.get(Some("other.net"), "/").as_deref(), Some("any"));
    assert_eq!(a.get(None, "/").as_deref(), Some("any"));
}

#[test]
fn listeners_and_match_skip_a_route_as_if_it_were_absent() {
    let c = config(
        "  - {name: \"#canary\", path: /, upstream: api, match: {headers: {X-Canary: \"1\"}}}\n  - {name: \"#beta\", path: /, upstream: api, match: {cookies: {beta: \"~^(yes|1)$\"}, methods: [get, HEAD]}}\n  - {name: \"#not-bot\", path: /, upstream: api, match: {headers: {User-Agent: \"!bot\"}}, listeners: [internal]}\n  - {name: \"#admin\", exact: /admin, upstream: api, listeners: [internal]}\n  - {name: \"#main\", path: /, upstream: web}\n",
    );
    let a = ask(&c);
    assert_eq!(
        a.with(None, "/x", Some(0), &[("x-canary", "1")], "POST")
            .as_deref(),
        Some("canary")
    );
    assert_eq!(
        a.with(None, "/x", Some(0), &[("x-canary", "2")], "GET")
            .as_deref(),
        Some("main")
    );
    assert_eq!(
        a.with(None, "/x", Some(0), &[("cookie", "a=b; beta=yes")], "GET")
            .as_deref(),
        Some("beta")
    );
    assert_eq!(
        a.with(None, "/x", Some(0), &[("cookie", "beta=yes")], "POST")
            .as_deref(),
        Some("main")
    );
    assert_eq!(
        a.with(None, "/x", Some(1), &[], "GET").as_deref(),
        Some("not-bot")
    );
    assert_eq!(
        a.with(None, "/x", Some(1), &[("user-agent", "bot")], "GET")
            .as_deref(),
        Some("main")
    );
    // The exact route exists only on `internal`: elsewhere the prefix takes the request.
    assert_eq!(
        a.with(None, "/admin", Some(1), &[("user-agent", "bot")], "GET")
            .as_deref(),
        Some("admin")
    );
    assert_eq!(
        a.with(None, "/admin", Some(0), &[], "GET").as_deref(),
        Some("main")
    );
    assert!(a.r.needs_listener());
}

#[test]
fn a_guarded_longest_prefix_that_does_not_hold_leaves_the_next_longest() {
    let c = config(
        "  - {name: \"#deep\", path: /a/b/, stop_regex: true, upstream: web, match: {methods: [POST]}}\n  - {name: \"#mid\", path: /a/, upstream: web}\n  - {name: \"#re\", regex: \"/b/\", upstream: web}\n",
    );
    let a = ask(&c);
    assert_eq!(
        a.with(None, "/a/b/c", None, &[], "POST").as_deref(),
        Some("deep")
    );
    // Not POST: `deep` is absent, so `mid` is the prefix and the regex is tried.
    assert_eq!(a.get(None, "/a/b/c").as_deref(), Some("re"));
    assert!(!a.r.needs_listener());
}

#[test]
fn many_prefixes_choose_as_the_walk_does() {
    // Over WALK_PREFIXES prefixes, the longest match is found by length; the answers must be
    // the walk's: longest first, guarded routes skipped when their guard fails, `^~` kept.
    let mut routes: String = (0..12)
        .map(|i| format!("  - {{path: /s{i}/, upstream: web, name: \"#s{i}\"}}\n"))
        .collect();
    routes.push_str("  - {path: /s1, upstream: web, name: \"#s1-bare\"}\n");
    routes.push_str("  - {path: /s1/deep/, upstream: web, name: \"#deep-beta\", match: {headers: {X-Beta: \"1\"}}}\n");
    routes.push_str("  - {path: /s1/deep/, stop_regex: true, upstream: web, name: \"#deep\"}\n");
    routes.push_str("  - {regex: \"\\\\.png$\", upstream: web, name: \"#png\"}\n");
    routes.push_str("  - {path: /, upstream: web, name: \"#root\"}\n");
    let c = config(&routes);
    let a = ask(&c);
    assert!(a.r.any.by_len.len() >= 3, "indexed by length");
    for (path, want) in [
        ("/s7/x", "s7"),
        ("/s11/x", "s11"),
        ("/s1/x", "s1"),
        ("/s1x", "s1-bare"),
        ("/s1", "s1-bare"),
        ("/s1/deep/a.png", "deep"),
        ("/s2/a.png", "png"),
        ("/nothing", "root"),
        ("/é/s1/", "root"),
    ] {
        assert_eq!(a.get(None, path).as_deref(), Some(want), "{path}");
    }
    let beta = a.with(None, "/s1/deep/a", None, &[("X-Beta", "1")], "GET");
    assert_eq!(beta.as_deref(), Some("deep-beta"));
}
