//! What each route policy (SPEC §8) costs a request, on top of a route without policies:
//! the access-list check, a rate-limit token, the target rewrite, header edits, and gzip of a
//! 4 KiB body. Run with `cargo bench --bench policy`.

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use pingora::http::{RequestHeader, ResponseHeader};
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use switchyard::config::load_str_offline;
use switchyard::policy::{self, rate::RateLimiter};
use switchyard::vars::Facts;

fn routes() -> Vec<policy::RouteState> {
    let config = load_str_offline(
        "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {servers: [{addr: \"10.0.0.1:80\"}]}\nroutes:\n  - path: /api/\n    upstream: app\n    strip_prefix: true\n    rewrite: {from: \"^/v1/(.*)$\", to: \"/v2/$1\"}\n    request_headers: {set: {X-Env: prod, X-Team: web}, remove: [X-Debug]}\n    response_headers: {set: {X-Frame-Options: DENY}, remove: [Server, X-Powered-By]}\n    allow: [\"10.0.0.0/8\", \"172.16.0.0/12\", \"192.168.0.0/16\", \"127.0.0.0/8\", \"::1\"]\n    deny: [\"10.9.0.0/16\", \"10.10.0.0/16\"]\n  - path: /t/\n    upstream: app\n    request_headers: {set: {X-Host: $host, X-Chain: $proxy_add_x_forwarded_for}}\n",
    )
    .expect("valid bench config");
    policy::build(&config, &[])
}

fn policies(c: &mut Criterion) {
    let routes = routes();
    let route = &routes[0];
    let access = route.policy.access.as_ref().expect("access lists");
    let client: IpAddr = "192.168.3.4".parse().expect("ip");
    c.bench_function("policy/allow+deny (7 CIDRs)", |b| {
        b.iter(|| black_box(access.permits(black_box(client))))
    });

    let limiter = RateLimiter::new(
        1_000_000_000,
        Duration::from_secs(1),
        0,
        policy::rate::MAX_KEYS,
    );
    let key = [192u8, 168, 3, 4];
    c.bench_function("policy/rate limit, one key", |b| {
        b.iter(|| black_box(limiter.check(black_box(&key), Instant::now())))
    });
    let keys: Vec<[u8; 4]> = (0..10_000u32).map(|i| i.to_be_bytes()).collect();
    let mut i = 0;
    c.bench_function("policy/rate limit, 10 000 keys", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(limiter.check(&keys[i], Instant::now()))
        })
    });

    let mut req = RequestHeader::build("GET", b"/api/v1/users", None).expect("request");
    req.insert_header("X-Debug", "1").expect("header");
    req.insert_header("Host", "shop.example.com")
        .expect("header");
    req.insert_header("X-Forwarded-For", "198.51.100.1")
        .expect("header");
    let mut facts = Facts::of(&req.method, &req.headers, "/api/v1/users/42?page=2");
    facts.host = Some("shop.example.com");
    facts.client = Some("192.168.3.4:40000".parse().expect("addr"));

    c.bench_function("policy/strip_prefix + rewrite", |b| {
        b.iter(|| {
            black_box(policy::upstream_target(
                route,
                black_box("/api/v1/users/42?page=2"),
                &facts,
            ))
        })
    });

    c.bench_function("policy/request headers (set 2, remove 1)", |b| {
        b.iter(|| {
            let mut r = req.clone();
            policy::apply_to_request(&route.policy.request_headers, &mut r, &facts).expect("apply");
            black_box(r)
        })
    });

    // The same two fields, from templates: nginx's `proxy_set_header Host $host;` and
    // `X-Forwarded-For $proxy_add_x_forwarded_for;`.
    let templated = &routes[1];
    c.bench_function("policy/request headers (2 templates)", |b| {
        b.iter(|| {
            let mut r = req.clone();
            policy::apply_to_request(&templated.policy.request_headers, &mut r, &facts)
                .expect("apply");
            black_box(r)
        })
    });
    c.bench_function("policy/(baseline) clone of the request head", |b| {
        b.iter(|| black_box(req.clone()))
    });

    let body: Bytes = (0..120)
        .map(|i| format!("line {i} of a compressible body\n"))
        .collect::<String>()
        .into();
    let mut gz_req = RequestHeader::build("GET", b"/", None).expect("request");
    gz_req
        .insert_header("Accept-Encoding", "gzip")
        .expect("header");
    let mut resp = ResponseHeader::build(200, None).expect("response");
    resp.insert_header("Content-Type", "text/html")
        .expect("header");
    resp.insert_header("Content-Length", body.len())
        .expect("header");
    c.bench_function(&format!("policy/gzip a {} byte body", body.len()), |b| {
        b.iter(|| {
            let mut r = resp.clone();
            let mut ctx = policy::compression_ctx(&gz_req);
            ctx.response_header_filter(&mut r, false);
            black_box(ctx.response_body_filter(Some(&body), true))
        })
    });
}

criterion_group!(benches, policies);
criterion_main!(benches);
