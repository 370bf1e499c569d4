//! Validation: defaults, every rejection reported at once, positions and suggestions.

use crate::config::{Balance, HashKey, HostMatch, load_str};
use std::path::PathBuf;

fn errors(text: &str) -> Vec<String> {
    match load_str(text, "t.yaml", PathBuf::from("t.yaml")) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

const MINIMAL: &str = "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app:\n    servers:\n      - addr: 127.0.0.1:3000\n";

#[test]
fn minimal_config_gets_spec_defaults() {
    let c = load_str(MINIMAL, "t.yaml", PathBuf::from("t.yaml")).unwrap();
    assert_eq!(c.admin_listen.to_string(), "127.0.0.1:9901");
    assert_eq!(c.shutdown_grace.as_secs(), 30);
    assert!(c.watch);
    assert_eq!(c.limits.max_header_bytes, 32 * 1024);
    assert_eq!(c.limits.max_body_bytes, None);
    assert_eq!(c.limits.header_read_timeout.as_secs(), 10);
    let u = &c.upstreams[0];
    assert_eq!(u.balance, Balance::LeastConn);
    assert_eq!(u.timeouts.connect.as_secs(), 5);
    assert_eq!(u.timeouts.read.as_secs(), 60);
    assert_eq!(u.keepalive.idle, 64);
    assert_eq!(u.retry.tries.get(), 3);
    assert_eq!(u.retry.buffer, 64 * 1024);
    assert_eq!(u.retry.budget_percent, 20);
    assert_eq!(u.breaker.failures.get(), 5);
    assert_eq!(u.breaker.open_for.as_secs(), 30);
    assert_eq!(u.breaker.max_open_for.as_secs(), 300);
    assert_eq!(u.servers[0].weight.get(), 1);
    assert!(c.routes.is_empty());
}

#[test]
fn spec_rejections_all_reported_at_once() {
    let text = r#"
listen: []
upstreams:
  a:
    balance: hash
    servers:
      - addr: 127.0.0.1:1
        weight: 0
      - addr: 127.0.0.1:1
      - addr: 127.0.0.1:2
        weight: 1001
    retry:
      tries: 0
    circuit_breaker:
      half_open_requests: 0
  b:
    servers: []
routes:
  - upstream: nope
"#;
    let errs = errors(text);
    let want = [
        "t.yaml:2:9: listen: at least one address",
        "t.yaml:5:14: upstreams.a.balance: `balance: hash` needs a `hash_key`",
        "t.yaml:8:17: upstreams.a.servers[0].weight: weight must be from 1 to 1000, found 0",
        "t.yaml:9:15: upstreams.a.servers[1].addr: `127.0.0.1:1` is already servers[0]",
        "t.yaml:11:17: upstreams.a.servers[2].weight: weight must be from 1 to 1000, found 1001",
        "t.yaml:13:14: upstreams.a.retry.tries: must be at least 1",
        "t.yaml:15:27: upstreams.a.circuit_breaker.half_open_requests: must be at least 1",
        "t.yaml:17:14: upstreams.b.servers: a pool needs at least one server",
        "t.yaml:19:15: routes[0].upstream: unknown upstream `nope`",
    ];
    assert_eq!(errs.len(), want.len(), "{errs:#?}");
    for (got, want) in errs.iter().zip(want) {
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
}

#[test]
fn routes_need_known_pools_and_are_required_with_two_pools() {
    let text = "listen: \":8080\"\nupstreams:\n  app: {servers: [{addr: \"127.0.0.1:1\"}]}\n  api: {servers: [{addr: \"127.0.0.1:2\"}]}\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("`routes` are required"), "{errs:?}");
    let text = format!(
        "{text}routes:\n  - host: \"*.Example.com\"\n    upstream: app\n  - path: /api/\n    upstream: appp\n"
    );
    let errs = errors(&text);
    assert_eq!(
        errs,
        vec!["t.yaml:9:15: routes[1].upstream: unknown upstream `appp`; did you mean `app`?"]
    );
}

#[test]
fn hash_keys_and_hosts() {
    let text = "listen: \":8080\"\nupstreams:\n  app:\n    balance: hash\n    hash_key: \"cookie:sid\"\n    servers: [{addr: \"127.0.0.1:1\"}]\nroutes:\n  - host: \"*.Example.com.\"\n    upstream: app\n";
    let c = load_str(text, "t.yaml", PathBuf::from("t.yaml")).unwrap();
    assert_eq!(
        c.upstreams[0].balance,
        Balance::Hash(HashKey::Cookie("sid".into()))
    );
    assert_eq!(c.routes[0].host, HostMatch::Wildcard(".example.com".into()));
    let bad = text.replace("cookie:sid", "cokie:sid");
    let errs = errors(&bad);
    assert!(errs[0].contains("unknown hash key"), "{errs:?}");
}

#[test]
fn durations_sizes_and_unknown_keys() {
    let text = "listen: \":8080\"\nshutdown_grace: 30\nlimits:\n  max_body_bytes: 1MiB\n  max_header_bytes: 10\nupstreams:\n  app:\n    servers: [{addr: \"127.0.0.1:1\", wieght: 2}]\n    timeouts: {connect: 5x}\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(
        errs[0].starts_with("t.yaml:2:17: shutdown_grace: `30` has no unit"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("t.yaml:5:21: limits.max_header_bytes: must be from 1KiB"),
        "{errs:?}"
    );
    assert!(
        errs[2].contains("unknown key `wieght`; did you mean `weight`?"),
        "{errs:?}"
    );
    assert!(
        errs[3].contains("timeouts.connect: `5x` is not a duration"),
        "{errs:?}"
    );
}

#[test]
fn a_huge_bad_value_is_quoted_not_echoed() {
    let addr = "a".repeat(1_000_000);
    let text = format!(
        "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {{servers: [{{addr: \"{addr}\"}}]}}\n"
    );
    let errors = crate::config::load_str_offline(&text).unwrap_err();
    let shown = errors.to_string();
    assert!(shown.contains("servers[0].addr"), "{shown}");
    assert!(
        shown.len() < 400,
        "{} bytes: {}",
        shown.len(),
        &shown[..400]
    );
}

#[test]
fn a_non_loopback_admin_needs_a_token_file() {
    let base =
        "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {servers: [{addr: \"127.0.0.1:1\"}]}\n";
    let open = format!("{base}admin: {{listen: \"0.0.0.0:9901\"}}\n");
    let errors = crate::config::load_str_offline(&open)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("admin.listen"), "{errors}");
    assert!(errors.contains("token_file"), "{errors}");
    // Loopback, v4 or v6, needs none.
    for listen in ["127.0.0.1:9901", "[::1]:9901"] {
        let text = format!("{base}admin: {{listen: \"{listen}\"}}\n");
        assert!(crate::config::load_str_offline(&text).is_ok(), "{listen}");
    }
    // A token file that is missing, or holds a short token, is an error at its key.
    let missing = open.replace("9901\"}", "9901\", token_file: /nonexistent/token}");
    let errors = crate::config::load_str_offline(&missing)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("admin.token_file"), "{errors}");
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("t");
    std::fs::write(&short, "abc\n").unwrap();
    let text = open.replace(
        "9901\"}",
        &format!("9901\", token_file: \"{}\"}}", short.display()),
    );
    let errors = crate::config::load_str_offline(&text)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("at least 16 characters"), "{errors}");
}

#[test]
fn location_mistakes_are_reported_with_their_position() {
    let text = "listen:\n  - {addr: \"127.0.0.1:8080\", name: public}\n  - {addr: \"127.0.0.1:8081\", name: public}\nupstreams:\n  app: {servers: [{addr: 127.0.0.1:3000}]}\nroutes:\n  - {path: /a/, regex: \"^/a\", upstream: app}\n  - {regex: \"([a-z\", upstream: app}\n  - {exact: /x, stop_regex: true, upstream: app}\n  - {path: /, upstream: app, listeners: [private]}\n  - {path: /, match: {methods: [\"G E T\"], headers: {X-A: \"~(\"}}, upstream: app}\n  - {path: /r, respond: {status: 99}}\n  - {path: /c, respond: {status: 444, body: no}}\n  - {path: /n, respond: {status: 204, body: x}}\n  - {regex: /x, strip_prefix: true, upstream: app}\n  - {path: /, upstream: app}\n  - {path: /, upstream: app}\n";
    let e = errors(text).join("\n");
    for want in [
        "t.yaml:3:36: listen[1].name: the listener name `public` is taken",
        "t.yaml:7:24: routes[0].regex: a route matches by one of `path`, `exact` or `regex`, not path and regex",
        "t.yaml:8:13: routes[1].regex: not a valid regex",
        "t.yaml:9:29: routes[2].stop_regex: `stop_regex` goes with a `path` prefix",
        "t.yaml:10:42: routes[3].listeners[0]: unknown listener `private` (named listeners: public)",
        "routes[4].match.methods[0]: `G E T` is not a request method",
        "routes[4].match.headers.X-A: not a valid regex",
        "routes[5].respond.status: 99 cannot be answered",
        "routes[6].respond: 444 closes the connection without an answer",
        "routes[7].respond.body: a 204 answer has no body",
        "routes[8].strip_prefix: a `regex` route has no prefix to strip",
        "routes[10]: the same host and path are routed twice",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
    // The guarded routes on `/` (listeners, match) leave room for the unguarded one after them.
    assert!(!e.contains("routes[9]: the same host"), "{e}");
}

#[test]
fn host_forms_are_parsed() {
    let c = load_str(
        "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {servers: [{addr: 127.0.0.1:3000}]}\nroutes:\n  - {host: \"www.Example.*\", upstream: app}\n  - {host: \"~^a+\\\\.b$\", upstream: app}\n",
        "t.yaml",
        PathBuf::from("t.yaml"),
    )
    .unwrap();
    assert_eq!(c.routes[0].host, HostMatch::Trailing("www.example.".into()));
    assert_eq!(c.routes[0].name, "www.example.*/");
    assert!(matches!(&c.routes[1].host, HostMatch::Regex(re) if re.is_match("AA.B")));
    assert!(errors("listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {servers: [{addr: 127.0.0.1:3000}]}\nroutes:\n  - {host: \"www.*.com\", upstream: app}\n")[0].contains("wildcards are written *.example.com or www.example.*"));
}
