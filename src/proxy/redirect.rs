//! `redirect_https` listeners (SPEC §6): every request is answered `308` to the same host and
//! target on `https://` (nginx: `return 301 https://$host$request_uri;`), without an upstream.
//! 308 rather than 301 keeps the method and body of a POST (RFC 9110 §15.4.9).

use super::headers::absolute_target;
use crate::edge::{self, Serve};
use crate::state::Store;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::http::RequestHeader;
use pingora::protocols::http::ServerSession;

pub struct Redirect {
    store: Store,
}

impl Redirect {
    pub fn new(store: Store) -> Redirect {
        Redirect { store }
    }
}

/// The `Location` of the HTTPS version of `req`, or `None` when the request names no host.
pub fn location(req: &RequestHeader, https_port: u16) -> Option<String> {
    let (authority, target) = match absolute_target(req) {
        Some((authority, rest)) => (authority, if rest.is_empty() { "/" } else { rest }),
        None => {
            let host = req.headers.get(http::header::HOST)?.to_str().ok()?;
            let target = std::str::from_utf8(req.raw_path()).ok()?;
            (host, target)
        }
    };
    // The host without its port: `[v6]:port`, `name:port`.
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            if h.starts_with('[') || !h.contains(':') {
                h
            } else {
                authority
            }
        }
        _ => authority,
    };
    let valid = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':')
        });
    if !valid {
        return None;
    }
    let target = if target.starts_with('/') { target } else { "/" };
    Some(if https_port == 443 {
        format!("https://{host}{target}")
    } else {
        format!("https://{host}:{https_port}{target}")
    })
}

fn answer(status: StatusCode, location: Option<&str>) -> Response<Vec<u8>> {
    let body: &[u8] = if location.is_some() {
        b""
    } else {
        b"a request to the HTTPS redirect needs a Host\n"
    };
    let mut b = Response::builder()
        .status(status)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if let Some(l) = location {
        b = b.header(http::header::LOCATION, l);
    }
    b.body(body.to_vec()).unwrap_or_default()
}

#[async_trait]
impl ServeHttp for Redirect {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let state = self.store.load();
        state.edge.request(false);
        let local = session
            .digest()
            .and_then(|d| d.socket_digest.as_ref())
            .and_then(|s| s.local_addr())
            .and_then(|a| a.as_inet())
            .copied();
        let https_port = match local.and_then(|a| edge::find(&state.listeners, a)) {
            Some(l) => match l.serve {
                Serve::RedirectHttps { https_port } => https_port,
                _ => 443,
            },
            None => 443,
        };
        match location(session.req_header(), https_port) {
            Some(l) => answer(StatusCode::PERMANENT_REDIRECT, Some(&l)),
            None => answer(StatusCode::BAD_REQUEST, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str, host: Option<&str>) -> RequestHeader {
        let mut r = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        if let Some(h) = host {
            r.insert_header("Host", h).unwrap();
        }
        r
    }

    #[test]
    fn locations() {
        let l = |t, h, p| location(&req(t, h), p);
        assert_eq!(
            l("/a/b?x=1", Some("example.com"), 443).as_deref(),
            Some("https://example.com/a/b?x=1")
        );
        assert_eq!(
            l("/", Some("example.com:8080"), 8443).as_deref(),
            Some("https://example.com:8443/")
        );
        assert_eq!(
            l("/p", Some("[::1]:80"), 443).as_deref(),
            Some("https://[::1]/p")
        );
        assert_eq!(
            l("http://other.example:80/q?z", None, 443).as_deref(),
            Some("https://other.example/q?z")
        );
        assert_eq!(l("/", None, 443), None, "no host: 400");
        assert_eq!(l("/", Some("evil\"host"), 443), None);
    }
}
