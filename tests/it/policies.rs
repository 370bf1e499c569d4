//! Route policies (SPEC §8) through real sockets: prefix stripping, rewrites, header edits,
//! access lists, rate limits, per-route body limits, compression and redirect routes.

use crate::support;

use std::io::Read;
use std::time::Duration;
use support::{Action, Mock, Proxy, get, metric, refused_addr, request, wait_until};

fn config(routes: &str, upstreams: &str, extra: &str) -> String {
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\n{extra}upstreams:\n{upstreams}routes:\n{routes}"
    )
}

fn start(routes: &str, upstreams: &str, extra: &str) -> Proxy {
    Proxy::start(&config(routes, upstreams, extra))
}

/// [`start`] as a process of its own (its access log on stdout).
fn spawn(routes: &str, upstreams: &str, extra: &str) -> Proxy {
    Proxy::spawn(&config(routes, upstreams, extra))
}

fn pool(name: &str, mock: &Mock) -> String {
    format!(
        "  {name}: {{servers: [{{addr: \"{}\"}}], retry: {{tries: 1}}}}\n",
        mock.addr
    )
}

#[test]
fn prefixes_are_stripped_and_paths_rewritten_with_the_query_kept() {
    let app = Mock::named("app");
    let p = start(
        "  - {path: /api/, upstream: app, strip_prefix: true}\n  - {path: /v1/, upstream: app, rewrite: {from: \"^/v1/users/([0-9]+)/(\\\\w+)$\", to: \"/v2/$2/of/$1\"}}\n  - {path: /, upstream: app}\n",
        &pool("app", &app),
        "",
    );
    assert_eq!(get(p.addr, "/api/users?x=1&y=2").status, 200);
    assert_eq!(get(p.addr, "/api/").status, 200);
    assert_eq!(get(p.addr, "/v1/users/42/orders?page=3").status, 200);
    assert_eq!(get(p.addr, "/v1/other").status, 200);
    assert_eq!(get(p.addr, "/plain?q").status, 200);
    let targets: Vec<String> = app.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        vec![
            "/users?x=1&y=2",
            "/",
            "/v2/orders/of/42?page=3",
            "/v1/other",
            "/plain?q"
        ]
    );
}

#[test]
fn headers_are_set_and_removed_both_ways_errors_included() {
    let app = Mock::start(|_| Action::Respond {
        status: 200,
        headers: vec![
            ("Server".into(), "leaky/1.0".into()),
            ("X-Powered-By".into(), "PHP/5".into()),
        ],
        body: b"ok".to_vec(),
        delay: Duration::ZERO,
    });
    let upstreams = format!(
        "{}  gone: {{servers: [{{addr: \"{}\"}}], retry: {{tries: 1}}}}\n",
        pool("app", &app),
        refused_addr()
    );
    let policy = "request_headers: {set: {X-Env: prod, X-Forwarded-Proto: https}, remove: [X-Debug]}, response_headers: {set: {X-Frame-Options: DENY}, remove: [Server, X-Powered-By]}";
    let p = start(
        &format!(
            "  - {{path: /app/, upstream: app, {policy}}}\n  - {{path: /gone/, upstream: gone, {policy}}}\n  - {{path: /, upstream: app}}\n"
        ),
        &upstreams,
        "",
    );
    let r = request(
        p.addr,
        "GET",
        "/app/x",
        &[("X-Debug", "1"), ("X-Keep", "1")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("server"), None);
    assert_eq!(r.header("x-powered-by"), None);
    let seen = app.seen().pop().unwrap();
    assert_eq!(seen.header("x-debug"), None);
    assert_eq!(seen.header("x-keep"), Some("1"));
    assert_eq!(seen.header("x-env"), Some("prod"));
    // Set after switchyard's own headers: the route's value wins.
    assert_eq!(seen.headers_named("x-forwarded-proto"), vec!["https"]);

    // The route's own 502 carries its response headers too.
    let r = get(p.addr, "/gone/x");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));

    // Another route is untouched.
    let r = get(p.addr, "/other");
    assert_eq!(r.header("server"), Some("leaky/1.0"));
    assert_eq!(r.header("x-frame-options"), None);
}

#[test]
fn denied_clients_get_403_and_reach_nothing() {
    let app = Mock::named("app");
    let p = spawn(
        "  - {name: internal, path: /internal/, upstream: app, allow: [\"10.0.0.0/8\"]}\n  - {name: blocked, path: /blocked/, upstream: app, allow: [\"127.0.0.0/8\"], deny: [\"127.0.0.1/32\"]}\n  - {name: open, path: /, upstream: app, allow: [\"127.0.0.1\"]}\n",
        &pool("app", &app),
        "",
    );
    assert_eq!(get(p.addr, "/internal/x").status, 403);
    assert_eq!(
        get(p.addr, "/blocked/x").status,
        403,
        "deny wins over allow"
    );
    assert_eq!(app.hits(), 0);
    assert_eq!(get(p.addr, "/x").status, 200);
    assert_eq!(app.hits(), 1);
    assert_eq!(
        metric(
            &p,
            "switchyard_route_rejections_total{reason=\"denied\",route=\"internal\"}"
        ),
        1.0
    );
    wait_until(
        "the access log names the route and the reason",
        Duration::from_secs(5),
        || {
            p.stdout().lines().any(|l| {
                l.contains("\"route\":\"blocked\"") && l.contains("\"rejected\":\"denied\"")
            })
        },
    );
}

#[test]
fn a_rate_limit_is_shared_by_all_worker_threads() {
    let app = Mock::named("app");
    let p = start(
        "  - {name: limited, path: /, upstream: app, rate_limit: {requests: 5, per: 1s}}\n",
        &pool("app", &app),
        "threads: 2\n",
    );
    // Each request on its own connection: pingora spreads connections over its threads.
    let answers: Vec<_> = (0..12).map(|_| get(p.addr, "/")).collect();
    let passed = answers.iter().filter(|r| r.status == 200).count();
    assert!(
        (5..=7).contains(&passed),
        "{passed} of 12 passed at 5/s (per-thread buckets would let about 10 through)"
    );
    for r in answers.iter().filter(|r| r.status != 200) {
        assert_eq!(r.status, 429);
        let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&after), "Retry-After {after}");
    }
    assert_eq!(app.hits(), passed);
    assert_eq!(
        metric(
            &p,
            "switchyard_route_rejections_total{reason=\"rate_limited\",route=\"limited\"}"
        ),
        (12 - passed) as f64
    );
    // A key refills: after a second, requests pass again.
    wait_until("a token is back", Duration::from_secs(3), || {
        get(p.addr, "/").status == 200
    });
}

#[test]
fn body_limits_are_per_route() {
    let app = Mock::named("app");
    let p = start(
        "  - {name: small, path: /small/, upstream: app, max_body_bytes: 10}\n  - {path: /, upstream: app}\n",
        &pool("app", &app),
        "",
    );
    let body = vec![b'x'; 100];
    assert_eq!(request(p.addr, "POST", "/small/up", &[], &body).status, 413);
    assert_eq!(request(p.addr, "POST", "/big/up", &[], &body).status, 200);
    // A chunked body over the limit is cut off as it arrives.
    let chunked = b"POST /small/up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n64\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n0\r\n\r\n";
    let raw = support::raw(p.addr, chunked, Duration::from_secs(5));
    assert!(
        raw.starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(
        metric(
            &p,
            "switchyard_route_rejections_total{reason=\"body_too_large\",route=\"small\"}"
        ) >= 2.0
    );
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn compression_is_streamed_and_never_doubled() {
    let big: String = (0..400)
        .map(|i| format!("line {i} of a compressible body\n"))
        .collect();
    let body = big.clone();
    let app = Mock::start(move |s| {
        let (ct, content, extra): (&str, Vec<u8>, Vec<(String, String)>) = match s.target.as_str() {
            "/small" => ("text/plain", b"tiny".to_vec(), vec![]),
            "/encoded" => (
                "text/plain",
                body.as_bytes().to_vec(),
                vec![("Content-Encoding".into(), "br".into())],
            ),
            "/image" => ("image/png", body.as_bytes().to_vec(), vec![]),
            _ => ("text/html; charset=utf-8", body.as_bytes().to_vec(), vec![]),
        };
        let mut headers = vec![("Content-Type".to_string(), ct.to_string())];
        headers.extend(extra);
        Action::Respond {
            status: 200,
            headers,
            body: content,
            delay: Duration::ZERO,
        }
    });
    let p = start(
        "  - {path: /, upstream: app, compress: true}\n",
        &pool("app", &app),
        "",
    );
    let gz = [("Accept-Encoding", "gzip, deflate")];
    let r = request(p.addr, "GET", "/page", &gz, b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(
        r.header("vary")
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")
    );
    assert!(r.body.len() < big.len() / 3, "{} bytes", r.body.len());
    assert_eq!(gunzip(&r.body), big.as_bytes());

    let r = request(p.addr, "GET", "/page", &[("Accept-Encoding", "br")], b"");
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert!(r.body.len() < big.len() / 3);

    // Under 1 KiB, already encoded, not asked for, or not a text type: left alone.
    let r = request(p.addr, "GET", "/small", &gz, b"");
    assert_eq!(
        (r.header("content-encoding"), r.text().as_str()),
        (None, "tiny")
    );
    let r = request(p.addr, "GET", "/encoded", &gz, b"");
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(r.body, big.as_bytes(), "never encoded twice");
    let r = get(p.addr, "/page");
    assert_eq!(
        (r.header("content-encoding"), r.body.len()),
        (None, big.len())
    );
    let r = request(p.addr, "GET", "/image", &gz, b"");
    assert_eq!(r.header("content-encoding"), None);
}

#[test]
fn redirect_routes_answer_without_an_upstream() {
    let app = Mock::named("app");
    let p = start(
        "  - {path: /old/, redirect: {to: \"https://example.com/new/\", status: 301}}\n  - {path: /moved/, redirect: {to: \"https://$host$request_uri\", status: 308}}\n  - {path: /, upstream: app}\n",
        &pool("app", &app),
        "",
    );
    let r = get(p.addr, "/old/page");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://example.com/new/"));
    let r = request(
        p.addr,
        "POST",
        "/moved/a?b=1",
        &[("Host", "shop.example:8080")],
        b"x",
    );
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://shop.example/moved/a?b=1")
    );
    assert_eq!(app.hits(), 0, "a redirect never reaches an upstream");
}

#[test]
fn bad_policies_fail_check_with_their_position() {
    let err = support::check_errors(
        "bad.yaml",
        "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {servers: [{addr: \"127.0.0.1:1\"}]}\nroutes:\n  - path: /a/\n    upstream: app\n    rewrite: {from: \"^/(unclosed\", to: \"/$1\"}\n  - path: /b/\n    upstream: app\n    allow: [\"10.0.0.0/33\"]\n  - path: /c/\n    upstream: app\n    redirect: {to: \"https://x/\"}\n  - path: /d/\n    upstream: app\n    rate_limit: {requests: 0, key: cookie}\n    response_headers: {set: {Content-Length: \"5\"}}\n",
    );
    for expected in [
        "bad.yaml:7:21: routes[0].rewrite.from: not a valid regex: unclosed group",
        "bad.yaml:10:13: routes[1].allow[0]: `10.0.0.0/33` is not an address or CIDR block",
        "bad.yaml:13:15: routes[2].redirect: a route either goes to an `upstream` or answers a `redirect`",
        "routes[3].rate_limit.requests: must be at least 1",
        "routes[3].rate_limit.key: unknown key `cookie`",
        "routes[3].response_headers.set.Content-Length: `Content-Length` frames the message",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}
