//! The end of a request, whichever way it went: its attempt released, its counters, and its
//! access-log line.

use super::Ctx;
use crate::access_log::Entry;
use crate::config::Respond;
use crate::log_summary::Failure as Tallied;
use crate::policy::Rejection;
use http::HeaderValue;
use pingora::prelude::*;
use pingora::proxy::Session;
use std::time::SystemTime;

pub(super) fn finish(session: &Session, e: Option<&Error>, ctx: &mut Ctx) {
    if std::mem::take(&mut ctx.grpc_pending) && e.is_none() {
        // A gRPC answer that ended without trailers.
        ctx.attempt_succeeded();
    }
    // The request is over: release the server before anything else.
    ctx.end_attempt();
    let status = if ctx.closed_unanswered {
        Respond::CLOSE
    } else {
        session.response_written().map_or(0, |r| r.status.as_u16())
    };
    match status {
        0 => ctx.state.tally.failures.count(Tallied::ClientGone),
        503 if ctx.retry_after().is_some() => ctx.state.tally.failures.count(Tallied::NoServer),
        502 | 504 => ctx.state.tally.failures.count(Tallied::Upstream),
        400 | 403 | 408 | 413 | 414 | 429 | 431 => ctx.state.tally.failures.count(Tallied::Refused),
        _ => {}
    }
    ctx.state.edge.request(session.is_http2());
    let elapsed = ctx.started.elapsed();
    let pool = ctx.pool().filter(|_| !ctx.served_static);
    let stats = match pool {
        Some(p) => &p.stats,
        None if ctx.served_static => &ctx.state.static_files,
        None => &ctx.state.no_route,
    };
    stats.count_request(status, elapsed);

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
        .zip(ctx.attempts.as_ref().and_then(|a| a.server()))
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
        client: ctx.client_ip(),
        method: req.method.as_str(),
        path,
        version,
        status,
        bytes: session.body_bytes_sent(),
        upstream: match pool {
            Some(p) => p.name.as_str(),
            None if ctx.served_static => "static",
            None => "",
        },
        server,
        attempts: ctx.attempts.as_ref().map_or(0, |a| a.made()),
        duration: elapsed,
        request_id: ctx.request_id.as_ref().and_then(|v| v.to_str().ok()),
        referer: header(http::header::REFERER),
        user_agent: header(http::header::USER_AGENT),
        protocol: if session.is_http2() { "h2" } else { "http/1.1" },
        tls: ctx.tls.as_ref().map(|t| t.version.as_ref()),
        route: ctx.route().map(|r| r.name.as_str()),
        rejected: ctx.rejected.map(Rejection::as_str),
    });
}
