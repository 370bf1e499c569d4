//! Responses the proxy makes itself (SPEC §3): short `text/plain` bodies with the right status,
//! defined once here for the proxy hooks and the front door alike.

use crate::config::ErrorPage;
use bytes::Bytes;
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::Session;

/// The body for a status: its code and reason, one line.
pub fn body_for(status: u16) -> &'static str {
    match status {
        400 => "400 Bad Request\n",
        403 => "403 Forbidden\n",
        404 => "404 Not Found: no route for this host and path\n",
        405 => "405 Method Not Allowed\n",
        412 => "412 Precondition Failed\n",
        416 => "416 Range Not Satisfiable\n",
        408 => "408 Request Timeout\n",
        413 => "413 Content Too Large\n",
        414 => "414 URI Too Long\n",
        429 => "429 Too Many Requests\n",
        431 => "431 Request Header Fields Too Large\n",
        500 => "500 Internal Server Error\n",
        502 => "502 Bad Gateway\n",
        503 => "503 Service Unavailable: no server available\n",
        504 => "504 Gateway Timeout\n",
        301 | 302 | 307 | 308 => "redirecting\n",
        _ => "error\n",
    }
}

/// The whole HTTP/1.1 response for `status`, closing the connection: what the front door
/// writes on a connection pingora has not parsed a head from.
pub fn raw_closing(status: u16) -> Vec<u8> {
    let body = body_for(status);
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Write a complete answer of the proxy's own: `status`, its short body (or the error `page`
/// configured for it), and the fields `decorate` adds (request id, `Retry-After`, `Location`,
/// the route's response headers). `keepalive: false` closes the connection after it.
pub async fn send_error(
    session: &mut Session,
    status: u16,
    keepalive: bool,
    page: Option<&ErrorPage>,
    decorate: impl FnOnce(&Session, &mut ResponseHeader) -> Result<()>,
) -> Result<()> {
    let (body, content_type) = match page {
        Some(p) => (p.body.clone(), p.content_type.clone()),
        None => (
            Bytes::from_static(body_for(status).as_bytes()),
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ),
    };
    let mut resp = ResponseHeader::build(status, Some(5))?;
    resp.insert_header(http::header::CONTENT_TYPE, content_type)?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    decorate(session, &mut resp)?;
    if !keepalive {
        session.set_keepalive(None);
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Write a route's `respond`: `status`, its `headers` (a `Content-Type` of text when it names
/// none and there is a body), `body`, and what `decorate` adds. The connection stays open.
pub async fn send_answer(
    session: &mut Session,
    status: u16,
    headers: Vec<(http::HeaderName, HeaderValue)>,
    body: Bytes,
    decorate: impl FnOnce(&Session, &mut ResponseHeader) -> Result<()>,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 2))?;
    for (name, value) in headers {
        resp.append_header(name, value)?;
    }
    // 204 and 304 have no body and say nothing of one (RFC 9110 §8.6).
    let bodiless = status == 204 || status == 304;
    if !bodiless {
        if !body.is_empty() && resp.headers.get(http::header::CONTENT_TYPE).is_none() {
            resp.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
        }
        resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    }
    decorate(session, &mut resp)?;
    let head_only = bodiless || session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_answers_are_complete_responses() {
        assert_eq!(
            raw_closing(408),
            b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\nConnection: close\r\n\r\n408 Request Timeout\n"
        );
        let r = String::from_utf8(raw_closing(431)).unwrap();
        assert!(
            r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{r}"
        );
        assert!(
            r.ends_with("\r\n\r\n431 Request Header Fields Too Large\n"),
            "{r}"
        );
    }
}
