//! The request path: pingora's `ProxyHttp` hooks for switchyard.
//!
//! A request takes an `Arc` of the [`RuntimeState`] when its context is created and uses that
//! snapshot to the end: routing, the pool, its servers and its policies. Each attempt holds an
//! [`InFlightGuard`] on the chosen server (and, when its breaker is half-open, a trial slot),
//! released when the attempt is replaced or the context is dropped, whichever way the request
//! ends. Every attempt ends in exactly one outcome, which feeds the server's breaker, its
//! counters and metrics, and the retry decision (`retry.rs`).
//!
//! pingora's retry loop calls `upstream_peer` again when a failed attempt's error is marked
//! retryable; `fail_to_connect` (nothing was sent) and `error_while_proxy` (something may have
//! been) make that call. A response status listed in `retry.on` fails its attempt in
//! `upstream_response_filter`, before any byte of it reaches the client.

pub mod front;
pub mod head;
pub mod headers;
pub mod respond;
pub mod retry;

use crate::access_log::Entry;
use crate::config::{HashKey, Outcome};
use crate::lifecycle::ActiveRequest;
use crate::state::{Pool, RuntimeState, Store};
use crate::upstream::breaker::{Admission, BreakerState, Transition};
use crate::upstream::pool::InPool;
use crate::upstream::{InFlightGuard, PickInput, Server, Tried};
use async_trait::async_trait;
use bytes::Bytes;
use front::GuardedStream;
use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpUpstreamRequestPolicy;
use pingora::{ErrorSource, ErrorType, RetryType};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The `ProxyHttp` implementation; one per process, shared by all worker threads.
pub struct Switchyard {
    store: Store,
}

impl Switchyard {
    pub fn new(store: Store) -> Self {
        Switchyard { store }
    }
}

/// One attempt to one server.
struct Attempt {
    server: usize,
    _guard: InFlightGuard,
    admission: Admission,
    /// Its outcome has been recorded.
    done: bool,
}

/// Per-request state.
pub struct Ctx {
    /// The configuration this request started with.
    pub state: Arc<RuntimeState>,
    started: Instant,
    pool: Option<usize>,
    in_pool: Option<InPool>,
    /// End of the `retry.timeout` budget.
    deadline: Option<Instant>,
    attempt: Option<Attempt>,
    /// The server of the last attempt, kept for the log after the attempt ends.
    server: Option<usize>,
    tried: Tried,
    /// All attempts made (for the log).
    attempts: u32,
    /// Attempts that count against `retry.tries`.
    tries_used: u32,
    /// pingora may replay once on a stale keep-alive connection without counting a try.
    free_retry_used: bool,
    next_attempt_free: bool,
    last_failure: Option<Outcome>,
    /// The current attempt was failed by one of our filters, which already recorded its
    /// outcome and decided whether to retry.
    decided_retry: Option<bool>,
    request_id: Option<HeaderValue>,
    /// Request body bytes seen by the current attempt.
    body_bytes: u64,
    retry_after: Option<u64>,
    _active: ActiveRequest,
}

impl Ctx {
    fn pool(&self) -> Option<&Pool> {
        self.pool.and_then(|p| self.state.pools.get(p))
    }

    /// Record the outcome of the current attempt (once): breaker, counters, metrics.
    fn finish_attempt(&mut self, outcome: Outcome) {
        let state = Arc::clone(&self.state);
        let (Some(pool), Some(a)) = (
            self.pool.and_then(|p| state.pools.get(p)),
            self.attempt.as_mut(),
        ) else {
            return;
        };
        if a.done {
            return;
        }
        a.done = true;
        let server = &pool.servers[a.server];
        let stats = &server.stats;
        stats.metrics.count_attempt(outcome);
        if outcome != Outcome::Success {
            stats.record_failure();
            self.last_failure = Some(outcome);
        }
        let policy = &pool.config.breaker;
        let failed = policy.on.contains(outcome);
        if let Some(t) = stats
            .breaker
            .record(a.admission, failed, Instant::now(), policy)
        {
            report_transition(pool, server, t);
        }
    }

    /// End the current attempt; one without an outcome frees its breaker trial slot.
    fn end_attempt(&mut self) {
        if let Some(a) = self.attempt.take()
            && !a.done
            && let Some(pool) = self.pool()
        {
            pool.servers[a.server].stats.breaker.release(a.admission);
        }
    }

    /// Whether the failed attempt is tried again; counts the retry or the refusal by budget.
    fn should_retry(&mut self, session: &Session, outcome: Outcome, request_sent: bool) -> bool {
        let state = Arc::clone(&self.state);
        let Some(pool) = self.pool.and_then(|p| state.pools.get(p)) else {
            return false;
        };
        let policy = &pool.config.retry;
        let facts = retry::Attempted {
            outcome,
            tries_used: self.tries_used,
            request_sent,
            idempotent: session.req_header().method.is_idempotent(),
            body_replayable: !session.as_ref().retry_buffer_truncated()
                && self.body_bytes <= policy.buffer as u64,
            response_started: session.response_written().is_some(),
            deadline_passed: self.deadline.is_some_and(|d| Instant::now() >= d),
        };
        if retry::decide(policy, &facts) != retry::Verdict::Retry {
            return false;
        }
        // The budget guards servers against load multiplied by retries. A request whose
        // connection failed reached no server, so sending it to another adds no load anywhere:
        // such retries are not capped (a dead server would otherwise turn the first burst of
        // refused connections into errors, before its breaker opens).
        let within_budget = !request_sent
            || self
                .in_pool
                .as_mut()
                .is_some_and(|p| p.try_retry(policy.budget_percent));
        match within_budget {
            true => {
                pool.stats.metrics.count_retry(outcome);
                true
            }
            false => {
                pool.stats.metrics.retries_over_budget.inc();
                tracing::debug!(upstream = %pool.name, "retry not made: the retry budget is spent");
                false
            }
        }
    }
}

/// Log and count a breaker transition (SPEC §3: `warn` on open).
fn report_transition(pool: &Pool, server: &Server, t: Transition) {
    let (name, addr) = (pool.name.as_str(), server.config.addr.as_str());
    match (t.to, t.open_for) {
        (BreakerState::Open, Some(d)) => {
            tracing::warn!(upstream = name, server = addr, open_for = ?d, "circuit breaker opened");
        }
        (to, _) => tracing::info!(
            upstream = name,
            server = addr,
            state = to.as_str(),
            "circuit breaker changed state"
        ),
    }
    crate::metrics::metrics()
        .breaker_transitions
        .with_label_values(&[name, addr, t.to.as_str()])
        .inc();
    server.stats.metrics.set_breaker(t.to);
}

/// Seconds a client should wait before a pool has a server again (`Retry-After`): until the
/// earliest breaker half-opens; else a health-check interval; else one second.
fn retry_after_secs(pool: &Pool, now: Instant) -> u64 {
    let reopen = pool
        .servers
        .iter()
        .filter_map(|s| s.stats.breaker.reopens_in(now))
        .min();
    let wait = reopen
        .or_else(|| pool.config.health_check.as_ref().map(|h| h.interval))
        .unwrap_or(Duration::from_secs(1));
    wait.as_millis().div_ceil(1000).max(1) as u64
}

fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The host a request is for: the absolute-form authority wins over `Host` (RFC 9112 §3.2.2).
fn request_host(req: &RequestHeader) -> Option<&str> {
    headers::absolute_target(req)
        .map(|(authority, _)| authority)
        .or_else(|| {
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
            in_pool: None,
            deadline: None,
            attempt: None,
            server: None,
            tried: Tried::default(),
            attempts: 0,
            tries_used: 0,
            free_retry_used: false,
            next_attempt_free: false,
            last_failure: None,
            decided_retry: None,
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

        let host = request_host(req);
        let path = match headers::absolute_target(req) {
            Some((_, rest)) => rest
                .split('?')
                .next()
                .filter(|p| !p.is_empty())
                .unwrap_or("/"),
            None => req.uri.path(),
        };
        ctx.pool = ctx.state.router.route(host, path);
        let state = Arc::clone(&ctx.state);
        let Some(pool) = ctx.pool.and_then(|p| state.pools.get(p)) else {
            respond::send_error(session, 404, ctx.request_id.as_ref(), None, true).await?;
            return Ok(true);
        };
        ctx.in_pool = Some(pool.stats.begin_request());
        ctx.deadline = pool.config.retry.timeout.map(|t| ctx.started + t);

        if let Some(limit) = state.config.limits.max_body_bytes {
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
        ctx.end_attempt();
        ctx.body_bytes = 0;
        ctx.decided_retry = None;
        let state = Arc::clone(&ctx.state);
        let Some(pool) = ctx.pool.and_then(|p| state.pools.get(p)) else {
            return Error::e_explain(ErrorType::HTTPStatus(404), "no route");
        };
        let now = Instant::now();
        let remaining = ctx.deadline.map(|d| d.saturating_duration_since(now));
        if remaining.is_some_and(|r| r.is_zero()) {
            return Error::e_explain(ErrorType::HTTPStatus(504), "retry.timeout spent");
        }

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
        let breaker_policy = &pool.config.breaker;
        // Servers whose breaker refused the request between the pick and the admission.
        let mut refused: Vec<usize> = Vec::new();
        let chosen = loop {
            let eligible = |i: usize| {
                let st = &servers[i].stats;
                st.is_healthy()
                    && st.breaker.available(now, breaker_policy)
                    && !refused.contains(&i)
            };
            let Some((i, guard)) =
                pool.balancer
                    .pick(servers, PickInput { hash_key }, &ctx.tried, &eligible)
            else {
                break None;
            };
            let (admission, transition) = servers[i].stats.breaker.admit(now, breaker_policy);
            if let Some(t) = transition {
                report_transition(pool, &servers[i], t);
            }
            match admission {
                Some(admission) => break Some((i, guard, admission)),
                None => refused.push(i),
            }
        };
        let Some((i, guard, admission)) = chosen else {
            if ctx.attempts == 0 {
                pool.stats.metrics.no_server.inc();
                ctx.retry_after = Some(retry_after_secs(pool, now));
                return Error::e_explain(
                    ErrorType::HTTPStatus(503),
                    "no eligible server in the pool",
                );
            }
            // A retry found nothing: the answer reflects the last real failure.
            let code = if ctx.last_failure == Some(Outcome::Timeout) {
                504
            } else {
                502
            };
            return Error::e_explain(ErrorType::HTTPStatus(code), "no server left to retry on");
        };
        ctx.tried.insert(i);
        ctx.server = Some(i);
        ctx.attempt = Some(Attempt {
            server: i,
            _guard: guard,
            admission,
            done: false,
        });
        ctx.attempts += 1;
        if std::mem::take(&mut ctx.next_attempt_free) {
            // A replay after a stale keep-alive connection does not count as a try.
        } else {
            ctx.tries_used += 1;
        }

        let server = &servers[i];
        let cfg = &pool.config;
        let cap = |d: Duration| remaining.map_or(d, |r| d.min(r));
        let mut peer = HttpPeer::new(server.config.socket, false, String::new());
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
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let outcome = retry::classify(&e);
        ctx.finish_attempt(outcome);
        // Nothing of the request was sent: any method may go to the next server.
        let again = ctx.should_retry(session, outcome, false);
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
        if let Some(again) = ctx.decided_retry.take() {
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
        let idempotent = session.req_header().method.is_idempotent();
        if client_reused
            && matches!(e.retry, RetryType::ReusedOnly)
            && !ctx.free_retry_used
            && idempotent
            && !session.as_ref().retry_buffer_truncated()
            && session.response_written().is_none()
        {
            // A pooled connection the server had already closed: replay once, not counted
            // against the server or the tries.
            ctx.free_retry_used = true;
            ctx.next_attempt_free = true;
            ctx.end_attempt();
            e.set_retry(true);
            return e;
        }
        let outcome = retry::classify(&e);
        ctx.finish_attempt(outcome);
        let again = ctx.should_retry(session, outcome, true);
        e.set_retry(again);
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
        headers::origin_form(upstream_request)?;
        headers::prepare_upstream_request(upstream_request, client_ip(session), &id)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(chunk) = body.as_ref() {
            ctx.body_bytes += chunk.len() as u64;
            if ctx
                .state
                .config
                .limits
                .max_body_bytes
                .is_some_and(|limit| ctx.body_bytes > limit)
            {
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
            ctx.finish_attempt(Outcome::InvalidHeader);
            ctx.decided_retry = Some(ctx.should_retry(session, Outcome::InvalidHeader, true));
            let mut e = Error::explain(ErrorType::InvalidHTTPHeader, why);
            e.as_up();
            return Err(e);
        }
        let status = upstream_response.status.as_u16();
        let outcome = retry::status_outcome(status);
        ctx.finish_attempt(outcome);
        if outcome != Outcome::Success && ctx.should_retry(session, outcome, true) {
            ctx.decided_retry = Some(true);
            let mut e = Error::explain(
                ErrorType::HTTPStatus(status),
                "status listed in retry.on; trying the next server",
            );
            e.as_up();
            return Err(e);
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
        let mut code = status_for(e);
        if code == 0
            && session
                .as_downstream()
                .stream()
                .and_then(|s| s.as_any().downcast_ref::<GuardedStream>())
                .is_some_and(GuardedStream::body_rejected)
        {
            // The front door cut off a request body with broken chunked framing.
            code = 400;
        }
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
        // The request is over: release the server before anything else.
        ctx.end_attempt();
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        let pool = ctx.pool();
        let pool_metrics: &crate::metrics::PoolMetrics = match pool {
            Some(p) => &p.stats.metrics,
            None => crate::metrics::no_route(),
        };
        pool_metrics.count_request(status);
        pool_metrics.duration.observe(elapsed.as_secs_f64());

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
            status,
            bytes: session.body_bytes_sent(),
            upstream: pool.map_or("", |p| p.name.as_str()),
            server,
            attempts: ctx.attempts,
            duration: elapsed,
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
