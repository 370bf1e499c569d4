//! The admin listener (SPEC §4), loopback by default: `/healthz` and `/status`.

use crate::state::{RuntimeState, Store};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{Map, Value, json};

pub struct Admin {
    store: Store,
}

impl Admin {
    pub fn new(store: Store) -> Admin {
        Admin { store }
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_default()
}

/// `/status`: the live state as JSON; pools and servers in config order.
pub fn status_json(state: &RuntimeState) -> Value {
    let now = std::time::Instant::now();
    let mut upstreams = Map::new();
    for pool in &state.pools {
        let servers: Vec<Value> = pool
            .servers
            .iter()
            .map(|s| {
                json!({
                    "addr": s.config.addr,
                    "weight": s.weight(),
                    "backup": s.config.backup,
                    "active": s.stats.in_flight(),
                    "breaker": s.stats.breaker.state(now).as_str(),
                    "healthy": s.stats.is_healthy(),
                    "requests": s.stats.requests(),
                    "failures": s.stats.failures(),
                })
            })
            .collect();
        upstreams.insert(
            pool.name.clone(),
            json!({ "balance": pool.config.balance.name(), "servers": servers }),
        );
    }
    let loaded_at: DateTime<Utc> = state.loaded_at.into();
    json!({
        "generation": state.generation,
        "config": state.config.source.display().to_string(),
        "loaded_at": loaded_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "upstreams": upstreams,
    })
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let get = req.method == http::Method::GET || req.method == http::Method::HEAD;
        match req.uri.path() {
            "/healthz" if get => reply(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                b"ok\n".to_vec(),
            ),
            "/status" if get => {
                let state = self.store.load();
                let mut body = serde_json::to_vec_pretty(&status_json(&state)).unwrap_or_default();
                body.push(b'\n');
                reply(StatusCode::OK, "application/json", body)
            }
            "/healthz" | "/status" => reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                b"405 Method Not Allowed\n".to_vec(),
            ),
            _ => reply(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                b"404 Not Found\n".to_vec(),
            ),
        }
    }
}
