//! Facts read from a client request: its address, host, cookies, and the status its error
//! earns.

use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::Session;
use pingora::{ErrorSource, ErrorType};
use std::net::SocketAddr;

use super::{Ctx, headers, retry};
use crate::config::Outcome;
use crate::vars::Facts;

/// The host and path a request is routed by. An absolute-form target's authority wins over
/// `Host` (RFC 9112 §3.2.2), and its path is the part before any query (`/` when empty). An
/// HTTP/2 request names its host in `:authority` (RFC 9113 §8.3.1), which wins over `Host`.
pub(super) fn route_target(req: &RequestHeader) -> (Option<&str>, &str) {
    if let Some(host) = req.uri.host() {
        return (Some(host), req.uri.path());
    }
    match headers::absolute_target(req) {
        Some((authority, rest)) => {
            let path = rest
                .split('?')
                .next()
                .filter(|p| !p.is_empty())
                .unwrap_or("/");
            (Some(authority), path)
        }
        None => {
            let host = req
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok());
            (host, req.uri.path())
        }
    }
}

/// The request target as received, in origin form (`$request_uri`).
pub(super) fn request_uri(req: &RequestHeader) -> &str {
    if req.uri.authority().is_some() {
        return req.uri.path_and_query().map_or("/", |pq| pq.as_str());
    }
    std::str::from_utf8(req.raw_path()).unwrap_or_else(|_| req.uri.path())
}

/// What the request's variables are made of (SPEC §11); `status` once a response exists.
pub(super) fn facts<'a>(session: &'a Session, ctx: &'a Ctx, status: Option<u16>) -> Facts<'a> {
    let req = session.req_header();
    let pool = ctx.pool();
    Facts {
        method: &req.method,
        headers: &req.headers,
        target: request_uri(req),
        host: route_target(req).0,
        client: ctx.client,
        server: local_addr(session),
        tls: ctx.tls.is_some(),
        request_id: ctx.request_id.as_ref().and_then(|v| v.to_str().ok()),
        upstream_addr: pool
            .zip(ctx.attempts.as_ref().and_then(|a| a.server()))
            .map(|(p, i)| p.servers[i].config.addr.as_str()),
        status,
        maps: &ctx.state.config.maps,
    }
}

/// The value of cookie `name` in the request's `Cookie` fields.
pub(super) fn cookie<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a [u8]> {
    crate::router::cookie(&req.headers, name)
}

/// The address the client connection was accepted at.
pub(super) fn local_addr(session: &Session) -> Option<SocketAddr> {
    session
        .digest()?
        .socket_digest
        .as_ref()?
        .local_addr()?
        .as_inet()
        .copied()
}

/// HTTP status for an error that ended a request, per SPEC §3.
pub(super) fn status_for(e: &Error) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        etype => match e.esource() {
            // One classification of upstream failures: the retry logic's.
            ErrorSource::Upstream if retry::classify(e) == Outcome::Timeout => 504,
            ErrorSource::Upstream => 502,
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
