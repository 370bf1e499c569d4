//! The request path: pingora's `ProxyHttp` hooks for switchyard.
//!
//! A request takes an `Arc` of the [`RuntimeState`](crate::state::RuntimeState) when its
//! context is created and uses that snapshot to the end: routing, the pool, its servers and
//! its policies. The per-request state lives in `ctx.rs`, a request's attempts and their retry
//! state in `attempts.rs`;
//! which server an attempt goes to is the pool's choice (`crate::upstream::Pool::choose`).
//!
//! pingora's retry loop calls `upstream_peer` again when a failed attempt's error is marked
//! retryable; `fail_to_connect` (nothing was sent) and `error_while_proxy` (something may have
//! been) make that call. A response status listed in `retry.on` fails its attempt in
//! `upstream_response_filter`, before any byte of it reaches the client.

mod attempts;
mod buffering;
pub mod chunk;
pub mod conns;
mod ctx;
mod files;
mod finish;
pub mod front;
mod grpc;
pub mod guarded;
pub mod head;
pub mod headers;
mod proxy_header;
pub mod redirect;
mod request;
pub mod respond;
pub mod retry;
mod route;

use crate::config::{HashKey, Outcome};
use crate::edge::{self, Serve};
use crate::policy::{self, Rejection};
use crate::state::Store;
use async_trait::async_trait;
use attempts::{Failure, NoAttempt};
use bytes::Bytes;
use ctx::Ctx;
use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, ProxyWarnLogContext, Session};
use pingora::upstreams::peer::HttpUpstreamRequestPolicy;
use pingora::{ErrorSource, ErrorType, RetryType};
use request::{cookie, facts, local_addr, status_for};
use std::time::{Duration, Instant};

/// The `ProxyHttp` implementation; one per process, shared by all worker threads.
pub struct Switchyard {
    store: Store,
}

impl Switchyard {
    pub fn new(store: Store) -> Self {
        Switchyard { store }
    }
}

#[async_trait]
impl ProxyHttp for Switchyard {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::new(self.store.load_full())
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        ctx.client = session.client_addr().and_then(|a| a.as_inet()).copied();
        if let (Some(real_ip), Some(peer)) = (&ctx.state.config.real_ip, ctx.client) {
            let client = policy::real_ip::client_of(real_ip, peer, &session.req_header().headers);
            ctx.client = Some(client.addr);
            ctx.keep_forwarded = client.trusted;
        }
        if let Some(digest) = session.digest() {
            ctx.tls = digest.ssl_digest.clone();
            if ctx.tls.is_some() {
                ctx.hsts = local_addr(session)
                    .and_then(|a| edge::find(&ctx.state.listeners, a))
                    .and_then(|l| match &l.serve {
                        Serve::Tls(t) => t.hsts.clone(),
                        _ => None,
                    });
            }
        }
        if session.is_http2() {
            // The front door sets this on HTTP/1 sessions; pingora's HTTP/2 streams have no
            // body read timeout (their connection's idle timeout and flow control apply).
            session.set_write_timeout(Some(ctx.state.config.limits.send_timeout));
        }
        if let Err((status, why)) = headers::check_request(session.req_header()) {
            session.set_keepalive(None);
            return Error::e_explain(ErrorType::HTTPStatus(status), why);
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

        let Some(route_index) = self.route_request(session, ctx).await? else {
            return Ok(true);
        };
        let route = &ctx.state.routes[route_index];
        let pool = if route.pool_map.is_some() {
            route.pool_for(&facts(session, ctx, None))
        } else {
            route.pool
        };
        let Some(pool) = pool else {
            return Ok(true);
        };
        let limit = route
            .policy
            .max_body_bytes
            .or(ctx.state.config.limits.max_body_bytes);
        ctx.enter_pool(pool);

        if let Some(limit) = limit {
            let declared = session
                .req_header()
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit) {
                // The body is not read: the connection cannot be reused after this answer.
                ctx.reject(Rejection::BodyTooLarge);
                ctx.send_error(session, 413, false, None).await?;
                return Ok(true);
            }
        }
        let ahead = ctx.state.pools[pool].config.buffering.request;
        if ahead > 0 && !session.as_mut().is_body_empty() {
            let whole = buffering::read_ahead(session, ahead).await?;
            ctx.state.pools[pool].stats.count_buffered(0, whole);
        }
        Ok(false)
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        ctx.end_attempt();
        let (Some(pool_index), Some(attempts)) = (ctx.pool, ctx.attempts.as_ref()) else {
            return Error::e_explain(ErrorType::HTTPStatus(404), "no route");
        };
        let now = Instant::now();
        let remaining = attempts.remaining(now);
        if remaining.is_some_and(|r| r.is_zero()) {
            return Error::e_explain(ErrorType::HTTPStatus(504), "retry.timeout spent");
        }

        let ip_text;
        let req = session.req_header();
        let hash_key: Option<&[u8]> = match ctx.state.pools[pool_index].balancer.hash_key() {
            None => None,
            Some(HashKey::ClientIp) => {
                ip_text = ctx.client_ip().map(|ip| ip.to_string());
                ip_text.as_deref().map(str::as_bytes)
            }
            Some(HashKey::Header(name)) => req.headers.get(name).map(HeaderValue::as_bytes),
            Some(HashKey::Cookie(name)) => cookie(req, name),
            Some(HashKey::Path) => Some(req.uri.path().as_bytes()),
        };
        let server_index = match ctx.start_attempt(now, hash_key) {
            Ok(i) => i,
            Err(NoAttempt::NoServer) => {
                return Error::e_explain(
                    ErrorType::HTTPStatus(503),
                    "no eligible server in the pool",
                );
            }
            Err(NoAttempt::NoneLeft(code)) => {
                return Error::e_explain(ErrorType::HTTPStatus(code), "no server left to retry on");
            }
        };

        let pool = &ctx.state.pools[pool_index];
        let server = &pool.servers[server_index];
        let cfg = &pool.config;
        let cap = |d: Duration| remaining.map_or(d, |r| d.min(r));
        let mut peer = pool.peer(server);
        peer.options.connection_timeout = Some(cap(cfg.timeouts.connect));
        peer.options.total_connection_timeout = Some(cap(cfg.timeouts.connect));
        peer.options.read_timeout = Some(cap(cfg.timeouts.read));
        peer.options.write_timeout = Some(cap(cfg.timeouts.write));
        peer.options.idle_timeout = Some(if cfg.keepalive.idle == 0 {
            Duration::ZERO
        } else {
            cfg.keepalive.timeout
        });
        peer.options.http_upstream_request_policy = HttpUpstreamRequestPolicy::preserve();
        if let Some(version) = cfg.send_proxy_protocol {
            proxy_header::send_client_header(&mut peer, version, session, ctx.client);
        }
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing of the request was sent: any method may go to the next server.
        let again = ctx.attempt_failed(
            session,
            Failure {
                outcome: retry::classify(&e),
                request_sent: false,
                stale_connection: false,
            },
        );
        e.set_retry(again);
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
        let mut e = e.more_context(format!("Peer: {peer}"));
        if let Some(again) = ctx.attempts.as_mut().and_then(|a| a.take_decision()) {
            // upstream_response_filter failed this attempt and decided already.
            e.set_retry(again);
            return e;
        }
        if *e.esource() != ErrorSource::Upstream {
            // The client went away or sent garbage: not the server's fault, nothing to retry.
            ctx.end_attempt();
            e.set_retry(false);
            return e;
        }
        let again = ctx.attempt_failed(
            session,
            Failure {
                outcome: retry::classify(&e),
                request_sent: true,
                // A pooled connection the server had already closed: replayed once, counted
                // neither against the server nor the tries (retry::decide's FreeReplay).
                stale_connection: client_reused && matches!(e.retry, RetryType::ReusedOnly),
            },
        );
        e.set_retry(again);
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let client = ctx.client_ip();
        let h2 = ctx.pool().is_some_and(|p| p.config.protocol.is_h2());
        let id = ctx.request_id.get_or_insert_with(headers::new_request_id);
        if !h2 {
            // pingora made it HTTP/2 for an h2c / h2 pool, and must find it so.
            upstream_request.set_version(http::Version::HTTP_11);
        }
        headers::origin_form(upstream_request)?;
        headers::prepare_upstream_request(
            upstream_request,
            client,
            ctx.keep_forwarded,
            id,
            ctx.tls.is_some(),
        )?;
        if h2 && headers::accepts_trailers(session.req_header()) {
            // gRPC's `TE: trailers` is the one TE HTTP/2 allows (RFC 9113 §8.2.2).
            upstream_request.insert_header(http::header::TE, "trailers")?;
        }
        if let Some(route) = ctx.route().filter(|r| !r.plain) {
            let facts = facts(session, ctx, None);
            let target = std::str::from_utf8(upstream_request.raw_path())
                .ok()
                .and_then(|raw| policy::upstream_target(route, raw, &facts));
            if let Some(target) = target {
                upstream_request.set_raw_path(target.as_bytes())?;
            }
            policy::apply_to_request(&route.policy.request_headers, upstream_request, &facts)?;
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(chunk) = body.as_ref() {
            let sent = ctx
                .attempts
                .as_mut()
                .map_or(chunk.len() as u64, |a| a.count_body(chunk.len()));
            let limit = ctx.route().and_then(|r| r.policy.max_body_bytes).or(ctx
                .state
                .config
                .limits
                .max_body_bytes);
            if limit.is_some_and(|limit| sent > limit) {
                ctx.reject(Rejection::BodyTooLarge);
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
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if upstream_response.status.is_informational() {
            return Ok(());
        }
        if let Err(why) = headers::check_response(upstream_response) {
            // Broken framing: never forwarded, and the connection is not reused (an error).
            let again = ctx.attempt_failed(session, Failure::sent(Outcome::InvalidHeader));
            if let Some(a) = ctx.attempts.as_mut() {
                a.decide_now(again);
            }
            let mut e = Error::explain(ErrorType::InvalidHTTPHeader, why);
            e.as_up();
            return Err(e);
        }
        let status = upstream_response.status.as_u16();
        let mut outcome = retry::status_outcome(status);
        if let Some(pool) = ctx.pool().filter(|p| grpc::watched(&p.config)) {
            match grpc::judge_head(&pool.config, upstream_response) {
                grpc::Head::Judged(o) => outcome = o,
                // Judged by its trailers (or as a success when the answer ends without).
                grpc::Head::InTrailers => ctx.grpc_pending = true,
                grpc::Head::NotGrpc => {}
            }
        }
        if outcome == Outcome::Success {
            if !ctx.grpc_pending {
                ctx.attempt_succeeded();
            }
        } else if ctx.attempt_failed(session, Failure::sent(outcome)) {
            if let Some(a) = ctx.attempts.as_mut() {
                a.decide_now(true);
            }
            let mut e = Error::explain(
                ErrorType::HTTPStatus(status),
                "status listed in retry.on; trying the next server",
            );
            e.as_up();
            return Err(e);
        }
        if ctx.route().is_some_and(|r| r.policy.intercept_errors)
            && ctx.error_page(status).is_some()
        {
            // `intercept_errors`: the client gets the error page instead (sent by
            // fail_to_proxy); the upstream's body is not read, so its connection is not reused.
            ctx.intercepted = true;
            if let Some(a) = ctx.attempts.as_mut() {
                a.decide_now(false);
            }
            let mut e = Error::explain(
                ErrorType::HTTPStatus(status),
                "intercept_errors: answered with the error page",
            );
            e.as_up();
            return Err(e);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        headers::prepare_downstream_response(upstream_response);
        if upstream_response.version == http::Version::HTTP_10 {
            // The client hears switchyard, an HTTP/1.1 server (RFC 9110 §2.5), whatever the
            // upstream spoke; an HTTP/1.0 status line over a chunked body would be invalid.
            upstream_response.set_version(http::Version::HTTP_11);
        }
        ctx.decorate(session, upstream_response)?;
        if let Some(limit) = ctx.pool().map(|p| p.config.buffering.response)
            && limit > 0
            && buffering::wanted(session, upstream_response)
        {
            ctx.held = Some(buffering::Held::new(limit));
        }
        if ctx.route().is_some_and(|r| r.policy.compress)
            && !upstream_response.status.is_informational()
        {
            let head = session.req_header().method == http::Method::HEAD;
            if policy::compressible(upstream_response, head) {
                let mut c = policy::compression_ctx(session.req_header());
                c.response_header_filter(upstream_response, false);
                ctx.compress = Some(Box::new(c));
            }
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        if let Some(c) = ctx.compress.as_mut()
            && let Some(out) = c.response_body_filter(body.as_ref(), end_of_stream)
        {
            *body = Some(out);
        }
        if let Some(held) = ctx.held.as_mut() {
            let whole = match held.filter(body, end_of_stream) {
                buffering::Kept::Whole => true,
                buffering::Kept::Overflowed => false,
                buffering::Kept::Holding | buffering::Kept::Streaming => return Ok(None),
            };
            if let Some(pool) = ctx.pool() {
                pool.stats.count_buffered(1, whole);
            }
        }
        Ok(None)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let mut code = status_for(e);
        if code == 0 && guarded::is_body_framing_error(e) {
            // The front door cut off a request body with broken chunked framing.
            code = 400;
        }
        if ctx.closed_unanswered {
            // `respond: {status: 444}`: no answer at all; the connection is dropped.
            code = 0;
        } else if code > 0 && session.response_written().is_none() {
            let retry_after = if code == 503 { ctx.retry_after() } else { None };
            if code == 413 && ctx.route.is_some() {
                ctx.reject(Rejection::BodyTooLarge);
            }
            let extra =
                retry_after.map(|secs| (http::header::RETRY_AFTER, HeaderValue::from(secs)));
            // An intercepted answer leaves the client connection as usable as any answer.
            let keepalive = ctx.intercepted && session.is_body_done();
            let sent = ctx.send_error(session, code, keepalive, extra).await;
            if let Err(write_err) = sent {
                tracing::debug!("could not send the {code} answer: {write_err}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: ctx.intercepted && session.is_body_done(),
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, _error: &Error) -> bool {
        // Per-request failures go to the access log, the metrics and the periodic summary
        // (`log_summary`), not one error line each.
        true
    }

    fn suppress_proxy_warn_log(
        &self,
        _session: &Session,
        _ctx: &Ctx,
        _error: &Error,
        _context: ProxyWarnLogContext,
    ) -> bool {
        // Retries are counted in `switchyard_retries_total` and the access log's `attempts`.
        true
    }

    fn upstream_response_trailer_filter(
        &self,
        session: &mut Session,
        trailers: &mut http::HeaderMap,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if std::mem::take(&mut ctx.grpc_pending) {
            let outcome = match (ctx.pool(), grpc::status(trailers)) {
                (Some(pool), Some(code)) => grpc::outcome(&pool.config, code),
                _ => Outcome::Success,
            };
            if outcome == Outcome::Success {
                ctx.attempt_succeeded();
            } else {
                // The answer has begun: counted against the server, never retried.
                ctx.attempt_failed(session, Failure::sent(outcome));
            }
        }
        Ok(())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        finish::finish(session, e, ctx);
    }
}
