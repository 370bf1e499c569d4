//! The request path: pingora's `ProxyHttp` hooks for switchyard.
//!
//! A request takes an `Arc` of the [`RuntimeState`] when its context is created and uses that
//! snapshot to the end: routing, the pool, its servers and its policies. Each attempt holds an
//! [`InFlightGuard`] on the chosen server, released when the attempt is replaced or the context
//! is dropped, whichever way the request ends.

pub mod front;
pub mod headers;
pub mod respond;

use crate::access_log::Entry;
use crate::config::HashKey;
use crate::lifecycle::ActiveRequest;
use crate::state::{RuntimeState, Store};
use crate::upstream::{InFlightGuard, PickInput, Tried};
use async_trait::async_trait;
use bytes::Bytes;
use front::GuardedStream;
use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpUpstreamRequestPolicy;
use pingora::{ErrorSource, ErrorType};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The `ProxyHttp` implementation; one per process, shared by all worker threads.
pub struct Switchyard {
    store: Store,
}

impl Switchyard {
    pub fn new(store: Store) -> Self {
        Switchyard { store }
    }
}

/// Per-request state.
pub struct Ctx {
    /// The configuration this request started with.
    pub state: Arc<RuntimeState>,
    started: Instant,
    pool: Option<usize>,
    /// The server of the current (last) attempt.
    server: Option<usize>,
    attempt: Option<InFlightGuard>,
    tried: Tried,
    attempts: u32,
    request_id: Option<HeaderValue>,
    body_bytes: u64,
    retry_after: Option<u64>,
    _active: ActiveRequest,
}

impl Ctx {
    fn pool(&self) -> Option<&crate::state::Pool> {
        self.pool.and_then(|p| self.state.pools.get(p))
    }
}

fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The host a request is for: the absolute-form authority wins over `Host` (RFC 9112 §3.2.2).
fn request_host(req: &RequestHeader) -> Option<&str> {
    req.uri.host().or_else(|| {
        req.headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    })
}

/// The value of cookie `name` in the request's `Cookie` fields.
fn cookie<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a [u8]> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            (&pair[..eq] == name.as_bytes()).then(|| &pair[eq + 1..])
        })
}

/// HTTP status for an error that ended a request, per SPEC §3.
fn status_for(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        etype => match e.esource() {
            ErrorSource::Upstream => match etype {
                ErrorType::ConnectTimedout
                | ErrorType::ReadTimedout
                | ErrorType::WriteTimedout
                | ErrorType::TLSHandshakeTimedout => 504,
                _ => 502,
            },
            ErrorSource::Downstream => match etype {
                ErrorType::ReadTimedout => 408,
                // The client is gone or stopped reading: nobody to answer.
                ErrorType::WriteError
                | ErrorType::ReadError
                | ErrorType::ConnectionClosed
                | ErrorType::WriteTimedout => 0,
                _ => 400,
            },
            _ => 500,
        },
    }
}

#[async_trait]
impl ProxyHttp for Switchyard {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            state: self.store.load_full(),
            started: Instant::now(),
            pool: None,
            server: None,
            attempt: None,
            tried: Tried::default(),
            attempts: 0,
            request_id: None,
            body_bytes: 0,
            retry_after: None,
            _active: ActiveRequest::start(),
        }
    }

    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Ctx) -> Result<()> {
        // The head is parsed: from here on the connection's reads are body, not head.
        if let Some(g) = session
            .as_downstream()
            .stream()
            .and_then(|s| s.as_any().downcast_ref::<GuardedStream>())
        {
            g.mark_head_parsed();
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        // RFC 9112 §9.6: a `close` option anywhere in `Connection` closes the connection after
        // the response (pingora only looks at the first `Connection` field).
        if headers::wants_close(session.req_header()) {
            session.set_keepalive(None);
        }
        let req = session.req_header();
        ctx.request_id = Some(match req.headers.get(headers::X_REQUEST_ID) {
            Some(v) if headers::acceptable_request_id(v) => v.clone(),
            _ => headers::new_request_id(),
        });

        let host = request_host(req);
        ctx.pool = ctx.state.router.route(host, req.uri.path());
        let Some(pool) = ctx.pool() else {
            respond::send_error(session, 404, ctx.request_id.as_ref(), None, true).await?;
            return Ok(true);
        };
        let _ = pool;

        if let Some(limit) = ctx.state.config.limits.max_body_bytes {
            let declared = session
                .req_header()
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit) {
                // The body is not read: the connection cannot be reused after this answer.
                respond::send_error(session, 413, ctx.request_id.as_ref(), None, false).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let state = Arc::clone(&ctx.state);
        let Some(pool) = ctx.pool.and_then(|p| state.pools.get(p)) else {
            return Error::e_explain(ErrorType::HTTPStatus(404), "no route");
        };
        let client = client_ip(session);
        let ip_text;
        let req = session.req_header();
        let hash_key: Option<&[u8]> = match pool.balancer.hash_key() {
            None => None,
            Some(HashKey::ClientIp) => {
                ip_text = client.map(|ip| ip.to_string());
                ip_text.as_deref().map(str::as_bytes)
            }
            Some(HashKey::Header(name)) => req.headers.get(name).map(HeaderValue::as_bytes),
            Some(HashKey::Cookie(name)) => cookie(req, name),
            Some(HashKey::Path) => Some(req.uri.path().as_bytes()),
        };
        let servers = &pool.servers;
        let eligible = |i: usize| servers[i].stats.is_healthy();
        let picked = pool
            .balancer
            .pick(servers, PickInput { hash_key }, &ctx.tried, &eligible);
        let Some((i, guard)) = picked else {
            ctx.retry_after = Some(1);
            return Error::e_explain(ErrorType::HTTPStatus(503), "no eligible server in the pool");
        };
        ctx.tried.insert(i);
        ctx.server = Some(i);
        // Replacing the guard releases the previous attempt's server.
        ctx.attempt = Some(guard);
        ctx.attempts += 1;

        let server = &servers[i];
        let cfg = &pool.config;
        let mut peer = HttpPeer::new(server.config.socket, false, String::new());
        peer.options.connection_timeout = Some(cfg.timeouts.connect);
        peer.options.read_timeout = Some(cfg.timeouts.read);
        peer.options.write_timeout = Some(cfg.timeouts.write);
        peer.options.idle_timeout = Some(if cfg.keepalive.idle == 0 {
            std::time::Duration::ZERO
        } else {
            cfg.keepalive.timeout
        });
        peer.options.http_upstream_request_policy = HttpUpstreamRequestPolicy::preserve();
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // One attempt per request: retries on other servers are a separate feature.
        if let Some(g) = &ctx.attempt {
            g.stats().record_failure();
        }
        e.set_retry(false);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        if *e.esource() == ErrorSource::Upstream
            && let Some(g) = &ctx.attempt
        {
            g.stats().record_failure();
        }
        // pingora's default policy: only an idempotent request whose body is still fully
        // buffered may be retried, and only after a failure on a reused connection.
        let mut e = e.more_context(format!("Peer: {peer}"));
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let id = ctx
            .request_id
            .get_or_insert_with(headers::new_request_id)
            .clone();
        upstream_request.set_version(http::Version::HTTP_11);
        headers::prepare_upstream_request(upstream_request, client_ip(session), &id)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let (Some(limit), Some(chunk)) = (ctx.state.config.limits.max_body_bytes, body.as_ref())
        {
            ctx.body_bytes += chunk.len() as u64;
            if ctx.body_bytes > limit {
                return Error::e_explain(
                    ErrorType::HTTPStatus(413),
                    "request body larger than max_body_bytes",
                );
            }
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if upstream_response.status.is_server_error()
            && let Some(g) = &ctx.attempt
        {
            g.stats().record_failure();
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        headers::prepare_downstream_response(upstream_response);
        if let Some(id) = &ctx.request_id {
            upstream_response.insert_header(headers::X_REQUEST_ID, id.clone())?;
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let code = status_for(e);
        if code > 0 && session.response_written().is_none() {
            let retry_after = if code == 503 { ctx.retry_after } else { None };
            if let Err(write_err) =
                respond::send_error(session, code, ctx.request_id.as_ref(), retry_after, false)
                    .await
            {
                tracing::debug!("could not send the {code} answer: {write_err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        // The attempt is over: release the server before the log line is written.
        ctx.attempt = None;
        let log = &ctx.state.access_log;
        if !log.is_on() {
            return;
        }
        let req = session.req_header();
        let header = |name| {
            req.headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let pool = ctx.pool();
        let server = pool
            .zip(ctx.server)
            .map(|(p, i)| p.servers[i].config.addr.as_str());
        let path = req
            .uri
            .path_and_query()
            .map_or_else(|| req.uri.path(), |pq| pq.as_str());
        let version = match req.version {
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        };
        log.log(&Entry {
            time: SystemTime::now(),
            client: client_ip(session),
            method: req.method.as_str(),
            path,
            version,
            status: session.response_written().map_or(0, |r| r.status.as_u16()),
            bytes: session.body_bytes_sent(),
            upstream: pool.map_or("", |p| p.name.as_str()),
            server,
            attempts: ctx.attempts,
            duration: ctx.started.elapsed(),
            request_id: ctx.request_id.as_ref().and_then(|v| v.to_str().ok()),
            referer: header(http::header::REFERER),
            user_agent: header(http::header::USER_AGENT),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_lookup() {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        r.append_header("Cookie", "a=1; sid=xyz; b=2").unwrap();
        assert_eq!(cookie(&r, "sid"), Some(&b"xyz"[..]));
        assert_eq!(cookie(&r, "si"), None);
        assert_eq!(cookie(&r, "b"), Some(&b"2"[..]));
    }

    #[test]
    fn error_statuses() {
        let up = |t: ErrorType| {
            let mut e = Error::new(t);
            e.as_up();
            e
        };
        assert_eq!(status_for(&up(ErrorType::ConnectRefused)), 502);
        assert_eq!(status_for(&up(ErrorType::ConnectTimedout)), 504);
        assert_eq!(status_for(&up(ErrorType::ReadTimedout)), 504);
        assert_eq!(status_for(&up(ErrorType::ConnectionClosed)), 502);
        assert_eq!(status_for(&Error::new(ErrorType::HTTPStatus(503))), 503);
        let mut down = Error::new(ErrorType::ReadTimedout);
        down.as_down();
        assert_eq!(status_for(&down), 408);
    }
}
