//! Per-request state: the snapshot of the configuration the request started with, the route,
//! and its attempts on the pool's servers ([`Attempts`], the one owner of the retry state).

use super::attempts::{Attempts, Failure, NoAttempt, Request};
use super::request::facts;
use crate::config::ErrorPage;
use crate::policy::{self, Rejection, RouteState};
use crate::state::RuntimeState;
use crate::upstream::Pool;
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::protocols::http::compression::ResponseCompressionCtx;
use pingora::protocols::tls::SslDigest;
use pingora::proxy::Session;
use std::sync::Arc;
use std::time::Instant;

/// Per-request state.
pub struct Ctx {
    /// The configuration this request started with.
    pub state: Arc<RuntimeState>,
    pub(super) started: Instant,
    /// The pool the request was routed to, as its index in `state.pools` (reached through the
    /// state this request holds: no reference count of the pool is touched per request).
    pub(super) pool: Option<usize>,
    /// The client connection's TLS facts; `None` on plain HTTP.
    pub(super) tls: Option<Arc<SslDigest>>,
    /// `Strict-Transport-Security` for the response (TLS listeners with `hsts`).
    pub(super) hsts: Option<HeaderValue>,
    /// The route taken (index into `state.routes`).
    pub(super) route: Option<usize>,
    /// Why the route refused the request, if it did.
    pub(super) rejected: Option<Rejection>,
    /// The response's compression, on `compress` routes.
    pub(super) compress: Option<Box<ResponseCompressionCtx>>,
    /// The request's attempts on its pool, once routed to one.
    pub(super) attempts: Option<Attempts>,
    pub(super) request_id: Option<HeaderValue>,
    /// The route's `respond` is 444: the connection is closed without an answer.
    pub(super) closed_unanswered: bool,
    /// The upstream's answer was replaced by its error page (`intercept_errors`).
    pub(super) intercepted: bool,
    /// A `static` route answered from disk (`upstream="static"` in metrics and the log).
    pub(super) served_static: bool,
    /// The client's address as determined (SPEC §13: the connection's peer, or what a trusted
    /// peer said under `real_ip`).
    pub(super) client: Option<std::net::SocketAddr>,
    /// The received `X-Forwarded-For` chain is kept and extended (no `real_ip`, or a trusted
    /// peer); otherwise it is started afresh.
    pub(super) keep_forwarded: bool,
    /// A gRPC answer whose `grpc-status` is still to come in its trailers: the attempt is
    /// judged then (SPEC §13).
    pub(super) grpc_pending: bool,
    /// The answer's body held by `buffering.response`.
    pub(super) held: Option<super::buffering::Held>,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.state.tally.end();
    }
}

impl Ctx {
    /// The client's IP address as determined.
    pub(super) fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.client.map(|a| a.ip())
    }

    /// The route taken, once routed.
    pub(super) fn route(&self) -> Option<&RouteState> {
        self.route.map(|i| &self.state.routes[i])
    }

    /// Refuse the request for `why`: counted for the route and logged.
    pub(super) fn reject(&mut self, why: Rejection) {
        if self.rejected.is_none() {
            self.rejected = Some(why);
            if let Some(r) = self.route() {
                r.rejections.count(why);
            }
        }
    }

    /// What every response to the client carries, the proxy's own answers included: the
    /// request id, `Strict-Transport-Security` on TLS listeners with `hsts`, and the route's
    /// `response_headers`.
    pub(super) fn decorate(
        &self,
        session: &Session,
        resp: &mut ResponseHeader,
    ) -> pingora::Result<()> {
        if let Some(id) = &self.request_id {
            resp.insert_header(super::headers::X_REQUEST_ID, id.clone())?;
        }
        if let Some(hsts) = &self.hsts {
            resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone())?;
        }
        if let Some(r) = self
            .route()
            .filter(|r| !r.plain && !r.policy.response_headers.is_empty())
        {
            let facts = facts(session, self, Some(resp.status.as_u16()));
            policy::apply_to_response(&r.policy.response_headers, resp, &facts)?;
        }
        Ok(())
    }

    /// The error page for `status`: the route's `error_pages` when it has them, else the
    /// top level's.
    pub(super) fn error_page(&self, status: u16) -> Option<&ErrorPage> {
        let pages = match self.route().and_then(|r| r.policy.error_pages.as_ref()) {
            Some(route_pages) => route_pages,
            None => &self.state.config.error_pages,
        };
        pages.get(status)
    }

    /// Answer `status` with the proxy's own body or its error page, the fields every answer
    /// carries and `extra` (`Retry-After`, `Location`).
    pub(super) async fn send_error(
        &self,
        session: &mut Session,
        status: u16,
        keepalive: bool,
        extra: Option<(http::HeaderName, HeaderValue)>,
    ) -> pingora::Result<()> {
        super::respond::send_error(
            session,
            status,
            keepalive,
            self.error_page(status),
            |s, r| {
                if let Some((name, value)) = extra {
                    r.insert_header(name, value)?;
                }
                self.decorate(s, r)
            },
        )
        .await
    }

    /// A request's state, with the configuration it starts with.
    /// A request in flight from now until the `Ctx` is dropped (counted in the server's
    /// `Tally`, which a graceful shutdown waits on).
    pub(super) fn new(state: Arc<RuntimeState>) -> Ctx {
        state.tally.begin();
        Ctx {
            state,
            started: Instant::now(),
            pool: None,
            tls: None,
            hsts: None,
            route: None,
            rejected: None,
            compress: None,
            attempts: None,
            request_id: None,
            closed_unanswered: false,
            intercepted: false,
            served_static: false,
            client: None,
            keep_forwarded: true,
            grpc_pending: false,
            held: None,
        }
    }

    /// Route the request to pool `index`: it counts among the pool's requests in flight from now.
    pub(super) fn enter_pool(&mut self, index: usize) {
        self.attempts = Some(Attempts::new(&self.state.pools[index].pool, self.started));
        self.pool = Some(index);
    }

    /// The pool the request was routed to.
    pub(super) fn pool(&self) -> Option<&Pool> {
        self.pool.map(|i| &*self.state.pools[i])
    }

    /// The pool and the request's attempts on it, once routed.
    fn on_pool(&mut self) -> Option<(&Pool, &mut Attempts)> {
        let pool = &*self.state.pools[self.pool?];
        Some((pool, self.attempts.as_mut()?))
    }

    /// Start the next attempt on a server the pool chooses.
    pub(super) fn start_attempt(
        &mut self,
        now: Instant,
        hash_key: Option<&[u8]>,
    ) -> Result<usize, NoAttempt> {
        let (pool, attempts) = self.on_pool().ok_or(NoAttempt::NoServer)?;
        attempts.start(pool, now, hash_key)
    }

    /// The current attempt's answer is not a failure.
    pub(super) fn attempt_succeeded(&mut self) {
        if let Some((pool, attempts)) = self.on_pool() {
            attempts.succeeded(pool);
        }
    }

    /// The current attempt failed: recorded against its server, and whether the request is
    /// tried again (see [`Attempts::failed`]).
    pub(super) fn attempt_failed(&mut self, session: &Session, failure: Failure) -> bool {
        let req = Request {
            idempotent: session.req_header().method.is_idempotent(),
            buffer_truncated: session.as_ref().retry_buffer_truncated(),
            response_started: session.response_written().is_some(),
        };
        self.on_pool()
            .is_some_and(|(pool, attempts)| attempts.failed(pool, req, failure))
    }

    /// End the current attempt, if any; one without an outcome frees its breaker trial slot.
    pub(super) fn end_attempt(&mut self) {
        if let Some(a) = self.attempts.as_mut() {
            a.end();
        }
    }

    /// `Retry-After` seconds for a 503 when no server was eligible.
    pub(super) fn retry_after(&self) -> Option<u64> {
        self.attempts.as_ref().and_then(Attempts::retry_after)
    }
}
