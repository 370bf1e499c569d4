//! Variables, maps and error pages (SPEC §11): templates in forwarded and answered header
//! fields, redirects, rewrites and `respond` bodies; `maps` and `upstream: $map`; `error_pages`
//! for the proxy's own answers and, with `intercept_errors`, for upstream answers; `check`
//! errors for unknown variables and maps that name no pool.

use crate::support;

use std::time::Duration;
use support::{Action, Mock, Proxy, check_errors, request, wait_until};

fn config(pools: &[(&str, &Mock)], extra: &str, routes: &str) -> String {
    let pools: String = pools
        .iter()
        .map(|(n, m)| format!("  {n}: {{servers: [{{addr: \"{}\"}}]}}\n", m.addr))
        .collect();
    format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\nupstreams:\n{pools}{extra}routes:\n{routes}"
    )
}

#[test]
fn templates_fill_forwarded_and_answered_fields_redirects_rewrites_and_bodies() {
    let app = Mock::named("app");
    let p = Proxy::start(&config(
        &[("app", &app)],
        "",
        r#"  - path: /api/
    upstream: app
    rewrite: {from: "^/api/(\\w+)", to: "/v2/$1/$arg_lang"}
    request_headers:
      set:
        X-Original: "$scheme://$host$request_uri"
        X-Who: "$remote_addr $http_user_agent"
        X-Chain: "$proxy_add_x_forwarded_for"
        X-Gone: "$http_x_absent"
    response_headers:
      set: {X-Answered-By: "$upstream_addr $status", X-Uri: "$uri"}
  - exact: /go
    redirect: {to: "https://$host/landing?from=$arg_src", status: 302}
  - exact: /hello
    respond: {status: 200, body: "hello $cookie_name from $remote_addr\n", headers: {X-M: "$request_method"}}
"#,
    ));
    let r = request(
        p.addr,
        "GET",
        "/api/users/%2e/x?lang=fr",
        &[
            ("Host", "Shop.Example:8080"),
            ("User-Agent", "ua/1"),
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Gone", "client value"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &app.seen()[0];
    assert_eq!(seen.target, "/v2/users/fr/%2e/x?lang=fr");
    assert_eq!(
        seen.header("x-original"),
        Some("http://shop.example/api/users/%2e/x?lang=fr")
    );
    assert_eq!(seen.header("x-who"), Some("127.0.0.1 ua/1"));
    assert_eq!(seen.header("x-chain"), Some("203.0.113.9, 127.0.0.1"));
    assert_eq!(
        seen.header("x-gone"),
        None,
        "an empty value removes the field"
    );
    assert_eq!(
        r.header("x-answered-by"),
        Some(format!("{} 200", app.addr).as_str())
    );
    assert_eq!(
        r.header("x-uri"),
        Some("/api/users/x"),
        "the normalized path"
    );

    let r = request(p.addr, "GET", "/go?src=mail", &[("Host", "a.example")], b"");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://a.example/landing?from=mail")
    );

    let r = request(
        p.addr,
        "POST",
        "/hello",
        &[
            ("Host", "x"),
            ("Cookie", "name=ann"),
            ("Content-Length", "0"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello ann from 127.0.0.1\n");
    assert_eq!(r.header("x-m"), Some("POST"));
}

#[test]
fn maps_choose_values_and_pools() {
    let (v1, v2) = (Mock::named("v1"), Mock::named("v2"));
    let p = Proxy::start(&config(
        &[("app-v1", &v1), ("app-v2", &v2)],
        r#"maps:
  connection_upgrade: {from: "$http_upgrade", values: {"": close}, default: upgrade}
  backend: {from: "$cookie_ver", values: {"~^v2": app-v2, "~*^BETA": app-v2}, default: app-v1}
"#,
        r#"  - path: /
    upstream: $backend
    request_headers: {set: {X-Conn: $connection_upgrade, X-Backend: $backend}}
"#,
    ));
    let ask = |cookie: &str, upgrade: Option<&str>| {
        let mut h = vec![("Host", "x"), ("Cookie", cookie)];
        if let Some(u) = upgrade {
            h.push(("Upgrade", u));
        }
        request(p.addr, "GET", "/", &h, b"").text()
    };
    assert_eq!(ask("ver=v2.3", None), "v2");
    assert_eq!(ask("ver=Beta-7", None), "v2", "~* ignores case");
    assert_eq!(ask("ver=v1", None), "v1");
    assert_eq!(ask("other=1", None), "v1", "no cookie: the default");
    let seen = v2.seen();
    assert_eq!(seen[0].header("x-conn"), Some("close"));
    assert_eq!(seen[0].header("x-backend"), Some("app-v2"));
    ask("ver=v2", Some("websocket"));
    assert_eq!(v2.seen()[2].header("x-conn"), Some("upgrade"));
}

#[test]
fn error_pages_replace_the_proxys_answers_and_intercepted_upstream_answers() {
    let pages = tempfile::tempdir().unwrap();
    let page = pages.path().join("50x.html");
    std::fs::write(&page, "<h1>We'll be right back</h1>\n").unwrap();
    let notfound = pages.path().join("404.html");
    std::fs::write(&notfound, "<h1>No such page</h1>\n").unwrap();
    let down = support::refused_addr();
    let app = Mock::start(|s| {
        if s.target.ends_with("/missing") {
            Action::status(404)
        } else {
            Action::status(500)
        }
    });
    let p = Proxy::start(&format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\nerror_pages: {{\"502 503 504\": \"{}\", \"404\": \"{}\"}}\nupstreams:\n  down: {{servers: [{{addr: \"{down}\"}}], retry: {{tries: 1}}}}\n  app: {{servers: [{{addr: \"{}\"}}], retry: {{on: []}}, circuit_breaker: {{failures: 1000}}}}\nroutes:\n  - {{path: /down/, upstream: down}}\n  - {{path: /app/, upstream: app, intercept_errors: true}}\n  - {{path: /plain/, upstream: app}}\n  - {{path: /own/, upstream: app, intercept_errors: true, error_pages: {{\"500\": \"{}\"}}}}\n",
        page.display(),
        notfound.display(),
        app.addr,
        notfound.display(),
    ));
    // The proxy's own 502 and 404.
    let r = request(p.addr, "GET", "/down/x", &[("Host", "x")], b"");
    assert_eq!(r.status, 502);
    assert_eq!(r.text(), "<h1>We'll be right back</h1>\n");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.header("x-request-id").is_some());
    let r = request(p.addr, "GET", "/nowhere", &[("Host", "x")], b"");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "<h1>No such page</h1>\n")
    );
    // An upstream 404 on an intercepting route gets the page; without a page for its status
    // (500), or without `intercept_errors`, the upstream's answer passes.
    let r = request(p.addr, "GET", "/app/missing", &[("Host", "x")], b"");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "<h1>No such page</h1>\n")
    );
    let r = request(p.addr, "GET", "/app/x", &[("Host", "x")], b"");
    assert_eq!((r.status, r.text().as_str()), (500, "status 500"));
    let r = request(p.addr, "GET", "/plain/missing", &[("Host", "x")], b"");
    assert_eq!((r.status, r.text().as_str()), (404, "status 404"));
    // A route's own pages replace the top level's.
    let r = request(p.addr, "GET", "/own/x", &[("Host", "x")], b"");
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "<h1>No such page</h1>\n")
    );
    let r = request(p.addr, "GET", "/own/missing", &[("Host", "x")], b"");
    assert_eq!((r.status, r.text().as_str()), (404, "status 404"));

    // The page is re-read when its file changes.
    std::fs::write(&page, "<h1>Back soon</h1>\n").unwrap();
    wait_until("the new page is served", Duration::from_secs(10), || {
        request(p.addr, "GET", "/down/x", &[("Host", "x")], b"").text() == "<h1>Back soon</h1>\n"
    });
}

#[test]
fn check_names_unknown_variables_and_maps_that_name_no_pool() {
    let err = check_errors(
        "vars.yaml",
        "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {servers: [{addr: \"127.0.0.1:1\"}]}\nmaps:\n  pick: {from: \"$cookie_v\", values: {a: app, b: nope}}\nroutes:\n  - path: /\n    upstream: $pick\n    request_headers: {set: {X-A: \"$hots\"}}\n  - path: /b/\n    upstream: $pik\n    request_headers: {set: {X-S: \"$status\"}}\n",
    );
    assert!(err.contains("vars.yaml:8:15"), "{err}");
    assert!(err.contains("`nope`, which is not a pool"), "{err}");
    assert!(err.contains("`` (the empty default"), "{err}");
    assert!(err.contains("vars.yaml:9:"), "{err}");
    assert!(
        err.contains("unknown variable `$hots` (did you mean `host`?)"),
        "{err}"
    );
    assert!(err.contains("no map `pik`"), "{err}");
    assert!(err.contains("known only once there is a response"), "{err}");
}
