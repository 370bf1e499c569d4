//! The admin listener (SPEC §4), loopback by default.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the proxy serves |
//! | `GET /metrics` | Prometheus text exposition |
//! | `GET /status` | the live state as JSON |
//! | `POST /reload` | reload from disk: `200 {"generation":N}` or `422 {"errors":[...]}` |
//! | `GET /` | the status page: the same data, readable at a glance, refreshing itself |

use crate::metrics::metrics;
use crate::reload::Reloader;
use crate::state::{RuntimeState, Store};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::Encoder;
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

pub struct Admin {
    store: Store,
    reloader: Arc<Reloader>,
}

impl Admin {
    pub fn new(store: Store, reloader: Arc<Reloader>) -> Admin {
        Admin { store, reloader }
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

fn text(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    reply(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn json_reply(status: StatusCode, v: &Value) -> Response<Vec<u8>> {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
    body.push(b'\n');
    reply(status, "application/json", body)
}

/// `/status`: the live state as JSON; pools and servers in config order.
pub fn status_json(state: &RuntimeState) -> Value {
    let now = Instant::now();
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

/// `/metrics`: live gauges refreshed from the state, then every metric in text format.
pub fn metrics_text(state: &RuntimeState) -> Vec<u8> {
    let now = Instant::now();
    for pool in &state.pools {
        for s in &pool.servers {
            s.stats.refresh_gauges(now);
        }
    }
    let mut out = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(e) = encoder.encode(&metrics().registry.gather(), &mut out) {
        tracing::error!("cannot encode metrics: {e}");
    }
    out
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The table rows of the status page, rendered on the server so the page is complete even
/// before (or without) its script; the script re-renders the same markup from `/status`.
fn status_tables(status: &Value) -> String {
    let mut html = String::new();
    let Some(upstreams) = status["upstreams"].as_object() else {
        return html;
    };
    for (name, pool) in upstreams {
        let _ = write!(
            html,
            "<section><h2>{} <small>{}</small></h2><table><thead><tr><th>server</th><th>weight</th><th>in flight</th><th>breaker</th><th>health</th><th>requests</th><th>failures</th></tr></thead><tbody>",
            escape_html(name),
            escape_html(pool["balance"].as_str().unwrap_or_default())
        );
        for s in pool["servers"].as_array().into_iter().flatten() {
            let breaker = s["breaker"].as_str().unwrap_or("closed");
            let healthy = s["healthy"].as_bool().unwrap_or(true);
            let backup = if s["backup"].as_bool().unwrap_or(false) {
                " <span class=tag>backup</span>"
            } else {
                ""
            };
            let _ = write!(
                html,
                "<tr><td class=addr>{}{backup}</td><td>{}</td><td>{}</td><td><span class=\"badge {}\">{breaker}</span></td><td><span class=\"badge {}\">{}</span></td><td>{}</td><td>{}</td></tr>",
                escape_html(s["addr"].as_str().unwrap_or_default()),
                s["weight"],
                s["active"],
                breaker.replace('_', "-"),
                if healthy { "healthy" } else { "unhealthy" },
                if healthy { "healthy" } else { "unhealthy" },
                s["requests"],
                s["failures"],
            );
        }
        html.push_str("</tbody></table></section>");
    }
    html
}

const PAGE_STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;background:#fafafa}\
h1{font-size:20px;margin:0 0 .2em}h2{font-size:16px;margin:1.4em 0 .4em}h2 small{color:#777;font-weight:normal}\
.meta{color:#555}table{border-collapse:collapse;min-width:720px;background:#fff}\
th,td{padding:6px 12px;border-bottom:1px solid #e4e4e4;text-align:right}th{background:#f0f0f0;font-weight:600}\
td.addr,th:first-child{text-align:left;font-family:ui-monospace,monospace}\
.badge{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;font-weight:600;color:#fff}\
.closed,.healthy{background:#2e8b57}.open,.unhealthy{background:#c0392b}.half-open{background:#e69500}\
.tag{font-size:11px;color:#555;border:1px solid #bbb;border-radius:4px;padding:0 4px}";

const PAGE_SCRIPT: &str = r#"
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function render(st) {
  document.getElementById('meta').textContent =
    `generation ${st.generation} · loaded ${st.loaded_at} · ${st.config}`;
  let html = '';
  for (const [name, pool] of Object.entries(st.upstreams)) {
    html += `<section><h2>${esc(name)} <small>${esc(pool.balance)}</small></h2><table><thead><tr><th>server</th><th>weight</th><th>in flight</th><th>breaker</th><th>health</th><th>requests</th><th>failures</th></tr></thead><tbody>`;
    for (const s of pool.servers) {
      const h = s.healthy ? 'healthy' : 'unhealthy';
      html += `<tr><td class=addr>${esc(s.addr)}${s.backup ? ' <span class=tag>backup</span>' : ''}</td><td>${s.weight}</td><td>${s.active}</td>` +
        `<td><span class="badge ${s.breaker.replace('_','-')}">${esc(s.breaker)}</span></td><td><span class="badge ${h}">${h}</span></td>` +
        `<td>${s.requests}</td><td>${s.failures}</td></tr>`;
    }
    html += '</tbody></table></section>';
  }
  document.getElementById('pools').innerHTML = html;
  document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}
async function refresh() {
  try {
    const r = await fetch('/status', {cache: 'no-store'});
    if (r.ok) render(await r.json());
    else document.getElementById('updated').textContent = 'status: HTTP ' + r.status;
  } catch (e) {
    document.getElementById('updated').textContent = 'switchyard is not answering';
  }
}
setInterval(refresh, 2000);
"#;

/// `GET /`: the status page. Self-contained: no external assets.
pub fn status_page(state: &RuntimeState) -> String {
    let status = status_json(state);
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>switchyard</title>\
<meta name=viewport content=\"width=device-width\"><style>{PAGE_STYLE}</style></head><body>\
<h1>switchyard</h1><div class=meta id=meta>generation {} · loaded {} · {}</div>\
<div id=pools>{}</div><p class=meta id=updated></p><script>{PAGE_SCRIPT}</script></body></html>\n",
        status["generation"],
        escape_html(status["loaded_at"].as_str().unwrap_or_default()),
        escape_html(status["config"].as_str().unwrap_or_default()),
        status_tables(&status),
    )
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let method = req.method.clone();
        let read = method == Method::GET || method == Method::HEAD;
        match (req.uri.path(), read) {
            ("/healthz", true) => text(StatusCode::OK, "ok\n"),
            ("/status", true) => json_reply(StatusCode::OK, &status_json(&self.store.load())),
            ("/metrics", true) => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                metrics_text(&self.store.load()),
            ),
            ("/", true) => reply(
                StatusCode::OK,
                "text/html; charset=utf-8",
                status_page(&self.store.load()).into_bytes(),
            ),
            ("/reload", _) if method == Method::POST => {
                let reloader = Arc::clone(&self.reloader);
                // Loading resolves host names and reads the disk: off the async threads.
                let result =
                    tokio::task::spawn_blocking(move || reloader.reload("POST /reload")).await;
                match result {
                    Ok(Ok(generation)) => {
                        json_reply(StatusCode::OK, &json!({ "generation": generation }))
                    }
                    Ok(Err(rejected)) => json_reply(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &json!({ "errors": rejected.errors }),
                    ),
                    Err(e) => json_reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &json!({ "errors": [e.to_string()] }),
                    ),
                }
            }
            ("/healthz" | "/status" | "/metrics" | "/", false) | ("/reload", _) => {
                text(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed\n")
            }
            _ => text(StatusCode::NOT_FOUND, "404 Not Found\n"),
        }
    }
}
