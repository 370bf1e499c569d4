//! The admin listener (SPEC §4), loopback by default.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the proxy serves |
//! | `GET /metrics` | Prometheus text exposition |
//! | `GET /status` | the live state as JSON |
//! | `POST /reload` | reload from disk: `200 {"generation":N}` or `422 {"errors":[...]}` |
//! | `GET /` | the status page: the same data, readable at a glance, refreshing itself |

use crate::changes::{Change, Changes};
use crate::metrics::Metrics;
use crate::state::{RuntimeState, Store};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::json;
use std::fmt::Write as _;
use std::time::Instant;

pub struct Admin {
    store: Store,
    metrics: Metrics,
    changes: Changes,
}

impl Admin {
    pub fn new(store: Store, metrics: Metrics, changes: Changes) -> Admin {
        Admin {
            store,
            metrics,
            changes,
        }
    }
}

impl Admin {
    /// SPEC §9: with `admin.token_file`, everything but `GET /healthz` needs the bearer token
    /// (401); `POST /reload` from a browser context (an `Origin` header) is refused (403), so
    /// no web page can reload the proxy, whatever DNS rebinding makes it believe.
    /// The answer refusing this request, if it is refused.
    fn refusal(&self, req: &pingora::http::RequestHeader, read: bool) -> Option<Response<Vec<u8>>> {
        let path = req.uri.path();
        if let Some(token) = &self.store.load().config.admin_token
            && !(read && path == "/healthz")
        {
            let presented = req
                .headers
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes())
                .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "))
                .map(|v| v[7..].trim_ascii());
            if !presented.is_some_and(|t| token.matches(t)) {
                let mut r = text(
                    StatusCode::UNAUTHORIZED,
                    "401 Unauthorized: a bearer token is needed\n",
                );
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer realm=\"switchyard admin\""),
                );
                return Some(r);
            }
        }
        if path == "/reload" && req.headers.contains_key(http::header::ORIGIN) {
            return Some(text(
                StatusCode::FORBIDDEN,
                "403 Forbidden: /reload does not take requests from web pages\n",
            ));
        }
        None
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

fn json_reply(status: StatusCode, v: &impl Serialize) -> Response<Vec<u8>> {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
    body.push(b'\n');
    reply(status, "application/json", body)
}

/// What `/status` says and the status page shows: the live state at one moment.
#[derive(Debug, Serialize)]
pub struct StatusView {
    pub generation: u64,
    pub config: String,
    pub loaded_at: String,
    pub upstreams: Pools,
    /// Answers `static` routes made from disk (SPEC §12), once there are any.
    #[serde(rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_files: Option<StaticView>,
    /// Certificates served by TLS listeners and presented to upstreams (SPEC §6).
    pub certificates: Vec<CertView>,
}

/// `static` routes' answers: how many, by status.
#[derive(Debug, Serialize)]
pub struct StaticView {
    pub requests: u64,
    /// Status -> answers.
    pub statuses: std::collections::BTreeMap<u16, u64>,
}

#[derive(Debug, Serialize)]
pub struct CertView {
    /// The certificate file, as configured.
    pub cert: String,
    pub names: Vec<String>,
    /// RFC 3339, UTC.
    pub expires: String,
    pub days_left: i64,
}

/// Pools in config order, serialized as a JSON object keyed by pool name.
#[derive(Debug)]
pub struct Pools(pub Vec<(String, PoolView)>);

impl Serialize for Pools {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, pool) in &self.0 {
            map.serialize_entry(name, pool)?;
        }
        map.end()
    }
}

#[derive(Debug, Serialize)]
pub struct PoolView {
    pub balance: &'static str,
    pub servers: Vec<ServerView>,
}

#[derive(Debug, Serialize)]
pub struct ServerView {
    pub addr: String,
    pub weight: u32,
    pub backup: bool,
    pub active: u32,
    pub breaker: &'static str,
    pub healthy: bool,
    pub requests: u64,
    pub failures: u64,
    /// The DNS entry this server was found through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl StatusView {
    /// The state now; pools and servers in config order.
    pub fn of(state: &RuntimeState) -> StatusView {
        let now = Instant::now();
        let loaded_at: DateTime<Utc> = state.loaded_at.into();
        StatusView {
            generation: state.generation,
            config: state.config.source.display().to_string(),
            loaded_at: loaded_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            upstreams: Pools(
                state
                    .pools
                    .iter()
                    .map(|pool| {
                        let servers = pool
                            .servers
                            .iter()
                            .map(|s| ServerView {
                                addr: s.config.addr.clone(),
                                weight: s.weight(),
                                backup: s.config.backup,
                                active: s.stats.in_flight(),
                                breaker: s.stats.breaker.state(now).as_str(),
                                healthy: s.stats.is_healthy(),
                                requests: s.stats.requests(),
                                failures: s.stats.failures(),
                                from: s.config.from.clone(),
                            })
                            .collect();
                        let view = PoolView {
                            balance: pool.config.balance.name(),
                            servers,
                        };
                        (pool.name.clone(), view)
                    })
                    .collect(),
            ),
            static_files: {
                let statuses: std::collections::BTreeMap<u16, u64> =
                    state.static_files.statuses.nonzero().collect();
                (!statuses.is_empty()).then(|| StaticView {
                    requests: statuses.values().sum(),
                    statuses,
                })
            },
            certificates: {
                let now = std::time::SystemTime::now();
                let mut seen = std::collections::HashSet::new();
                state
                    .certificates()
                    .filter(|c| seen.insert(c.cert_path.clone()))
                    .map(|c| {
                        let expires: DateTime<Utc> = c.not_after.into();
                        let left = match c.not_after.duration_since(now) {
                            Ok(d) => (d.as_secs() / 86_400) as i64,
                            Err(e) => -((e.duration().as_secs() / 86_400) as i64) - 1,
                        };
                        CertView {
                            cert: c.cert_path.display().to_string(),
                            names: c.names.clone(),
                            expires: expires.to_rfc3339_opts(SecondsFormat::Secs, true),
                            days_left: left,
                        }
                    })
                    .collect()
            },
        }
    }

    /// The status page. Self-contained (no external assets); its script refreshes the
    /// generated parts every 2 s by fetching this same page, so it is rendered only here.
    pub fn page(&self) -> String {
        let mut pools = String::new();
        for (name, pool) in &self.upstreams.0 {
            let _ = write!(
                pools,
                "<section><h2>{} <small>{}</small></h2><table><thead><tr><th>server</th><th>weight</th><th>in flight</th><th>breaker</th><th>health</th><th>requests</th><th>failures</th></tr></thead><tbody>",
                escape_html(name),
                pool.balance
            );
            for s in &pool.servers {
                let mut backup = if s.backup {
                    " <span class=tag>backup</span>".to_string()
                } else {
                    String::new()
                };
                if let Some(from) = &s.from {
                    let _ = write!(backup, " <span class=tag>from {}</span>", escape_html(from));
                }
                let health = if s.healthy { "healthy" } else { "unhealthy" };
                let _ = write!(
                    pools,
                    "<tr><td class=addr>{}{backup}</td><td>{}</td><td>{}</td><td><span class=\"badge {}\">{}</span></td><td><span class=\"badge {health}\">{health}</span></td><td>{}</td><td>{}</td></tr>",
                    escape_html(&s.addr),
                    s.weight,
                    s.active,
                    s.breaker.replace('_', "-"),
                    s.breaker,
                    s.requests,
                    s.failures,
                );
            }
            pools.push_str("</tbody></table></section>");
        }
        if let Some(st) = &self.static_files {
            pools.push_str("<section><h2>static <small>files served from disk</small></h2><table><thead><tr><th>status</th><th>answers</th></tr></thead><tbody>");
            for (status, n) in &st.statuses {
                let _ = write!(pools, "<tr><td class=addr>{status}</td><td>{n}</td></tr>");
            }
            let _ = write!(
                pools,
                "<tr><td class=addr>all</td><td>{}</td></tr></tbody></table></section>",
                st.requests
            );
        }
        if !self.certificates.is_empty() {
            pools.push_str("<section><h2>certificates</h2><table><thead><tr><th>file</th><th>names</th><th>expires</th><th>days left</th></tr></thead><tbody>");
            for c in &self.certificates {
                let class = if c.days_left < 14 { "open" } else { "closed" };
                let _ = write!(
                    pools,
                    "<tr><td class=addr>{}</td><td class=addr>{}</td><td>{}</td><td><span class=\"badge {class}\">{}</span></td></tr>",
                    escape_html(&c.cert),
                    escape_html(&c.names.join(", ")),
                    escape_html(&c.expires),
                    c.days_left,
                );
            }
            pools.push_str("</tbody></table></section>");
        }
        format!(
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>switchyard</title>\
<meta name=viewport content=\"width=device-width\"><style>{PAGE_STYLE}</style></head><body>\
<h1>switchyard</h1><div class=meta id=meta>generation {} · loaded {} · {}</div>\
<div id=pools>{pools}</div><p class=meta id=updated></p><script>{PAGE_SCRIPT}</script></body></html>\n",
            self.generation,
            escape_html(&self.loaded_at),
            escape_html(&self.config),
        )
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PAGE_STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;background:#fafafa}\
h1{font-size:20px;margin:0 0 .2em}h2{font-size:16px;margin:1.4em 0 .4em}h2 small{color:#777;font-weight:normal}\
.meta{color:#555}table{border-collapse:collapse;min-width:720px;background:#fff}\
th,td{padding:6px 12px;border-bottom:1px solid #e4e4e4;text-align:right}th{background:#f0f0f0;font-weight:600}\
td.addr,th:first-child{text-align:left;font-family:ui-monospace,monospace}\
.badge{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;font-weight:600;color:#fff}\
.closed,.healthy{background:#2e8b57}.open,.unhealthy{background:#c0392b}.half-open{background:#e69500}\
.tag{font-size:11px;color:#555;border:1px solid #bbb;border-radius:4px;padding:0 4px}";

/// Refresh: fetch this page again and swap in its generated parts (no rendering in JS).
const PAGE_SCRIPT: &str = r#"
async function refresh() {
  const updated = document.getElementById('updated');
  try {
    const r = await fetch(location.pathname, {cache: 'no-store'});
    if (!r.ok) { updated.textContent = 'status: HTTP ' + r.status; return; }
    const fresh = new DOMParser().parseFromString(await r.text(), 'text/html');
    for (const id of ['meta', 'pools']) {
      document.getElementById(id).innerHTML = fresh.getElementById(id).innerHTML;
    }
    updated.textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    updated.textContent = 'switchyard is not answering';
  }
}
setInterval(refresh, 2000);
"#;

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let method = req.method.clone();
        let read = method == Method::GET || method == Method::HEAD;
        if let Some(refused) = self.refusal(req, read) {
            return refused;
        }
        match (req.uri.path(), read) {
            ("/healthz", true) => text(StatusCode::OK, "ok\n"),
            ("/status", true) => json_reply(StatusCode::OK, &StatusView::of(&self.store.load())),
            ("/metrics", true) => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            ),
            ("/", true) => reply(
                StatusCode::OK,
                "text/html; charset=utf-8",
                StatusView::of(&self.store.load()).page().into_bytes(),
            ),
            ("/reload", _) if method == Method::POST => {
                // The state's writer loads on its own thread; this task only waits.
                let reload = Change::Reload {
                    trigger: "POST /reload",
                };
                match self.changes.ask(reload).await {
                    Ok(generation) => {
                        json_reply(StatusCode::OK, &json!({ "generation": generation }))
                    }
                    Err(rejected) => json_reply(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &json!({ "errors": rejected.errors }),
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
