use super::*;
use crate::config::load_str_offline;
use std::time::Duration;

fn routes(yaml_routes: &str) -> Vec<RouteState> {
    let text = format!(
        "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {{servers: [{{addr: \"127.0.0.1:1\"}}]}}\nroutes:\n{yaml_routes}"
    );
    let config = load_str_offline(&text).unwrap_or_else(|e| panic!("{e}"));
    build(&config, &[])
}

fn target(r: &RouteState, raw: &str) -> Option<String> {
    let (m, h) = (http::Method::GET, http::HeaderMap::new());
    let mut f = Facts::of(&m, &h, raw);
    f.host = Some("Shop.Example:8080");
    upstream_target(r, raw, &f)
}

#[test]
fn strip_prefix_and_rewrite_keep_the_query() {
    let r = routes(
        "  - {path: /api/, upstream: app, strip_prefix: true}\n  - {path: /v1/, upstream: app, rewrite: {from: \"^/v1/(.*)$\", to: \"/v2/$1\"}}\n  - {path: /both/, upstream: app, strip_prefix: true, rewrite: {from: \"^/(\\\\w+)/(\\\\d+)$\", to: \"/items/$2/$1?x=1\"}}\n  - {path: /plain/, upstream: app}\n",
    );
    assert_eq!(
        target(&r[0], "/api/users?x=1").as_deref(),
        Some("/users?x=1")
    );
    assert_eq!(target(&r[0], "/api/").as_deref(), Some("/"));
    assert_eq!(target(&r[1], "/v1/a/b?q").as_deref(), Some("/v2/a/b?q"));
    assert_eq!(
        target(&r[1], "/v1x").as_deref(),
        Some("/v1x"),
        "no match: unchanged"
    );
    assert_eq!(
        target(&r[2], "/both/shoe/42?color=red").as_deref(),
        Some("/items/42/shoe?x=1&color=red")
    );
    assert_eq!(target(&r[3], "/plain/a"), None);
    assert!(r[3].plain && !r[0].plain);
}

#[test]
fn rewrites_fill_in_groups_and_variables() {
    let r = routes(
        "  - {path: /u/, upstream: app, rewrite: {from: \"^/u/(\\\\d+)\", to: \"/$host/users/$1/$arg_tab\"}}\n",
    );
    assert_eq!(
        target(&r[0], "/u/42/posts?tab=x").as_deref(),
        Some("/shop.example/users/42/x/posts?tab=x")
    );
}

#[test]
fn retry_after_rounds_up_to_whole_seconds() {
    assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
}

#[test]
fn access_lists_deny_wins_and_allow_excludes_the_rest() {
    let r = routes(
        "  - {path: /, upstream: app, allow: [\"10.0.0.0/8\", \"::1\"], deny: [\"10.9.0.0/16\"]}\n",
    );
    let a = r[0].policy.access.as_ref().unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(a.permits(ip("10.1.2.3")));
    assert!(!a.permits(ip("10.9.1.1")), "deny wins");
    assert!(!a.permits(ip("192.168.1.1")), "not on the allow list");
    assert!(a.permits(ip("::1")));
    assert!(
        a.permits(ip("::ffff:10.1.2.3")),
        "v4-mapped v6 is the v4 address"
    );
}

#[test]
fn buckets_and_counters_survive_a_reload_of_the_same_route() {
    let text = "  - {name: api, path: /, upstream: app, rate_limit: {requests: 5, per: 1s}}\n";
    let first = routes(text);
    let second = build(
        &load_str_offline(&format!(
            "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {{servers: [{{addr: \"127.0.0.1:1\"}}]}}\nroutes:\n{text}"
        ))
        .unwrap(),
        &first,
    );
    assert!(Arc::ptr_eq(
        first[0].limiter.as_ref().unwrap(),
        second[0].limiter.as_ref().unwrap()
    ));
    assert!(Arc::ptr_eq(&first[0].rejections, &second[0].rejections));
    let changed = build(
        &load_str_offline(&format!(
            "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {{servers: [{{addr: \"127.0.0.1:1\"}}]}}\nroutes:\n{}",
            text.replace("requests: 5", "requests: 9")
        ))
        .unwrap(),
        &first,
    );
    assert!(!Arc::ptr_eq(
        first[0].limiter.as_ref().unwrap(),
        changed[0].limiter.as_ref().unwrap()
    ));
}
