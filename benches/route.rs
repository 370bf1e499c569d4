//! Cost of choosing a route (SPEC §3, §11): 100 prefix routes, and 100 routes of which 20 are
//! regexes (nginx's algorithm: exact, longest prefix, then regexes in order). A config without
//! regex routes must route as fast as before regex routes existed. Run with
//! `cargo bench --bench route`.

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Method};
use std::hint::black_box;
use switchyard::config::load_str_offline;
use switchyard::router::{Request, Router};

fn router(routes: &str) -> Router {
    let text = format!(
        "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app: {{servers: [{{addr: \"10.0.0.1:80\"}}]}}\nroutes:\n{routes}"
    );
    let config = load_str_offline(&text).expect("valid bench config");
    Router::new(&config)
}

/// 100 prefixes: `/svc0/` .. `/svc98/` and `/`.
fn prefixes() -> String {
    let mut r: String = (0..99)
        .map(|i| format!("  - {{path: /svc{i}/, upstream: app}}\n"))
        .collect();
    r.push_str("  - {path: /, upstream: app}\n");
    r
}

/// 80 prefixes and 20 regexes on file extensions.
fn with_regexes() -> String {
    let mut r: String = (0..79)
        .map(|i| format!("  - {{path: /svc{i}/, upstream: app}}\n"))
        .collect();
    r.push_str("  - {path: /, upstream: app}\n");
    for i in 0..20 {
        r.push_str(&format!(
            "  - {{regex: \"\\\\.(ext{i}|e{i}x)$\", case_insensitive: true, upstream: app}}\n"
        ));
    }
    r
}

fn lookups(c: &mut Criterion) {
    let headers = HeaderMap::new();
    let method = Method::GET;
    let req = |path: &'static str| Request {
        host: Some("shop.example.com"),
        path,
        listener: None,
        method: &method,
        headers: &headers,
    };
    let plain = router(&prefixes());
    c.bench_function("route/100 prefixes, /svc57/users/42", |b| {
        let r = req("/svc57/users/42");
        b.iter(|| black_box(plain.route(black_box(&r))))
    });
    c.bench_function("route/100 prefixes, / (no longer prefix)", |b| {
        let r = req("/index.html");
        b.iter(|| black_box(plain.route(black_box(&r))))
    });
    let regex = router(&with_regexes());
    c.bench_function("route/80 prefixes + 20 regexes, no regex matches", |b| {
        let r = req("/svc57/users/42");
        b.iter(|| black_box(regex.route(black_box(&r))))
    });
    c.bench_function(
        "route/80 prefixes + 20 regexes, the last regex matches",
        |b| {
            let r = req("/svc57/file.EXT19");
            b.iter(|| black_box(regex.route(black_box(&r))))
        },
    );
}

criterion_group!(benches, lookups);
criterion_main!(benches);
