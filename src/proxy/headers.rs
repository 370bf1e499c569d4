//! Request and response header rules of SPEC §3.
//!
//! Upstream requests: hop-by-hop fields are removed first (RFC 9110 §7.6.1: `Connection` and
//! every field it names, plus `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Upgrade` and
//! `HTTP2-Settings`), and only then are `X-Forwarded-For`, `X-Real-IP`, `X-Forwarded-Proto`,
//! `X-Forwarded-Host` and `X-Request-Id` set, so a client can neither strip nor forge them
//! through `Connection`. A protocol upgrade (RFC 9110 §7.8: WebSocket, RFC 6455 §4.1, or any
//! other protocol) keeps `Upgrade` and `Connection: Upgrade`, except `h2c`, which is removed
//! (switchyard speaks HTTP/1.1 to upstreams). The client's `Host` is passed through untouched.
//!
//! pingora has its own upstream header policy; the proxy switches it to `preserve` and applies
//! these rules instead, because pingora rejects (rather than removes) some `Connection`
//! nominations and strips `Proxy-Authorization`, which nginx forwards.

use http::header::{self, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use std::net::IpAddr;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// Hop-by-hop fields that are never forwarded as they are.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    HTTP2_SETTINGS,
];

/// Fields a `Connection` nomination must not remove: message framing and the target host are
/// not the client's to drop at the proxy (dropping `Content-Length` would reframe the body).
fn protected_from_nomination(name: &HeaderName) -> bool {
    *name == header::HOST || *name == header::CONTENT_LENGTH || *name == header::TRANSFER_ENCODING
}

/// The protocols an HTTP/1.1 upgrade request asks for (RFC 9110 §7.8: `Upgrade` nominated by
/// `Connection`), without `h2c`: the value to forward, if any protocol is left.
pub fn upgrade_protocols(req: &RequestHeader) -> Option<HeaderValue> {
    if req.version != http::Version::HTTP_11
        || !connection_tokens(req.headers.get_all(header::CONNECTION))
            .any(|t| t.eq_ignore_ascii_case(b"upgrade"))
    {
        return None;
    }
    let kept: Vec<&[u8]> = connection_tokens(req.headers.get_all(header::UPGRADE))
        .filter(|p| {
            let name = p.split(|b| *b == b'/').next().unwrap_or(p);
            !name.trim_ascii().eq_ignore_ascii_case(b"h2c")
        })
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_bytes(&kept.join(&b", "[..])).ok()
}

fn connection_tokens<'a>(
    values: http::header::GetAll<'a, HeaderValue>,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    values
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// What the front door's head scanner renames the `Host` field of an absolute-form request
/// to (see `head.rs`); never forwarded.
const IGNORED_HOST: HeaderName = HeaderName::from_static(super::head::IGNORED_HOST);

/// Checks on a parsed request head that pingora does not make (RFC 9112). `Err` carries the
/// status to answer and why; the connection is closed after it.
pub fn check_request(req: &RequestHeader) -> Result<(), (u16, &'static str)> {
    // §3.2: every HTTP/1.1 request has exactly one Host (an absolute-form request's Host was
    // renamed by the front door, but was there).
    if req.version == http::Version::HTTP_11
        && !req.headers.contains_key(header::HOST)
        && !req.headers.contains_key(&IGNORED_HOST)
    {
        return Err((400, "HTTP/1.1 request without Host"));
    }
    let raw = req.raw_path();
    // §3.2: a request target never carries a fragment.
    if raw.contains(&b'#') {
        return Err((400, "fragment in the request target"));
    }
    // §3.2: origin form (`/…`), absolute form, or the asterisk form; §3.2.4: the asterisk form
    // is a lone `*`, and only for a server-wide OPTIONS (`OPTIONS */x` is not one).
    if raw == b"*" {
        if req.method != http::Method::OPTIONS {
            return Err((400, "the * request target is only for OPTIONS"));
        }
    } else if raw.first() != Some(&b'/') && absolute_target(req).is_none() {
        return Err((
            400,
            "request target is not in origin, absolute or asterisk form",
        ));
    }
    // §6.1: chunked is applied once and last (pingora checks "last"); other codings are not
    // decoded here (RFC 9112 §6.1: 501).
    let mut chunked = 0;
    let mut others = 0;
    for v in req.headers.get_all(header::TRANSFER_ENCODING) {
        for token in v.as_bytes().split(|b| *b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"chunked") {
                chunked += 1;
            } else {
                others += 1;
            }
        }
    }
    if chunked > 1 {
        return Err((400, "chunked transfer coding applied more than once"));
    }
    if others > 0 {
        return Err((501, "transfer coding other than chunked"));
    }
    Ok(())
}

/// Checks on an upstream response head (RFC 9112 §6.1): `Transfer-Encoding` in an HTTP/1.0
/// response is faulty framing, and a transfer coding list other than a single `chunked` is one
/// the proxy cannot decode (pingora would otherwise read such a body until the connection
/// closes and pass the coding on). Either way the client gets 502.
pub fn check_response(resp: &ResponseHeader) -> Result<(), &'static str> {
    let mut codings = resp
        .headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii);
    let Some(first) = codings.next() else {
        return Ok(());
    };
    if resp.version == http::Version::HTTP_10 {
        return Err("Transfer-Encoding in an HTTP/1.0 response");
    }
    if !first.eq_ignore_ascii_case(b"chunked") || codings.next().is_some() {
        return Err("upstream transfer coding other than a single chunked");
    }
    Ok(())
}

/// The authority and the rest of an absolute-form request target (`http://host:port/path?q`):
/// pingora keeps such a target only as raw bytes.
pub fn absolute_target(req: &RequestHeader) -> Option<(&str, &str)> {
    let raw = req.raw_path();
    // The common case, origin form, at the cost of one comparison.
    if raw.first() == Some(&b'/') {
        return None;
    }
    let raw = std::str::from_utf8(raw).ok()?;
    let scheme_end = raw.find("://")?;
    if !raw[..scheme_end].eq_ignore_ascii_case("http")
        && !raw[..scheme_end].eq_ignore_ascii_case("https")
    {
        return None;
    }
    let rest = &raw[scheme_end + 3..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some((&rest[..end], &rest[end..]))
}

/// Send an absolute-form request to the upstream in origin form (RFC 9112 §3.2.1), with the
/// target's authority as `Host` (§3.2.2).
pub fn origin_form(req: &mut RequestHeader) -> pingora::Result<()> {
    let Some((authority, rest)) = absolute_target(req) else {
        return Ok(());
    };
    let authority = authority.to_string();
    let path = if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    };
    req.set_raw_path(path.as_bytes())?;
    req.insert_header(header::HOST, authority)?;
    Ok(())
}

/// Whether the client said it accepts trailers (`TE: trailers`, as every gRPC client does).
pub fn accepts_trailers(req: &RequestHeader) -> bool {
    connection_tokens(req.headers.get_all(header::TE)).any(|t| t.eq_ignore_ascii_case(b"trailers"))
}

/// Whether the client asked to close the connection (a `close` token in any `Connection`).
pub fn wants_close(req: &RequestHeader) -> bool {
    connection_tokens(req.headers.get_all(header::CONNECTION))
        .any(|t| t.eq_ignore_ascii_case(b"close"))
}

/// The fields named by `Connection` that are to be removed (all but framing and `Host`).
/// Empty, and so not allocated, in the common case.
fn nominated(headers: &http::HeaderMap) -> Vec<HeaderName> {
    connection_tokens(headers.get_all(header::CONNECTION))
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .filter(|n| !protected_from_nomination(n))
        .collect()
}

/// Apply the upstream request rules to `req` (pingora's copy of the client request).
pub fn prepare_upstream_request(
    req: &mut RequestHeader,
    client: Option<IpAddr>,
    keep_forwarded: bool,
    request_id: &HeaderValue,
    https: bool,
) -> pingora::Result<()> {
    // Most requests carry none of these: one pass over the names instead of a hashed removal
    // of each.
    let has_hop_by_hop = req
        .headers
        .keys()
        .any(|k| HOP_BY_HOP.contains(k) || *k == IGNORED_HOST);
    let upgrade_value = if has_hop_by_hop {
        upgrade_protocols(req)
    } else {
        None
    };
    if has_hop_by_hop {
        for name in nominated(&req.headers) {
            req.remove_header(&name);
        }
        for name in &HOP_BY_HOP {
            req.remove_header(name);
        }
        req.remove_header(&IGNORED_HOST);
    }
    if let Some(upgrade) = upgrade_value {
        req.insert_header(header::CONNECTION, HeaderValue::from_static("Upgrade"))?;
        req.insert_header(header::UPGRADE, upgrade)?;
    }

    if let Some(ip) = client {
        let mut text = IpText::default();
        let ip_text = text.format(ip);
        let mut xff = Vec::new();
        // From a peer `real_ip` does not trust, the chain it sent is dropped (SPEC §13).
        let received = req.headers.get_all(&X_FORWARDED_FOR);
        for v in received.iter().filter(|_| keep_forwarded) {
            if let Ok(s) = v.to_str() {
                let s = s.trim();
                if !s.is_empty() {
                    xff.extend_from_slice(s.as_bytes());
                    xff.extend_from_slice(b", ");
                }
            }
        }
        let real_ip = HeaderValue::from_bytes(ip_text).map_err(invalid_value)?;
        let forwarded_for = if xff.is_empty() {
            real_ip.clone()
        } else {
            xff.extend_from_slice(ip_text);
            HeaderValue::from_bytes(&xff).map_err(invalid_value)?
        };
        req.insert_header(X_FORWARDED_FOR, forwarded_for)?;
        req.insert_header(X_REAL_IP, real_ip)?;
    }
    req.insert_header(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if https { "https" } else { "http" }),
    )?;
    match req.headers.get(header::HOST).cloned() {
        Some(host) => req.insert_header(X_FORWARDED_HOST, host)?,
        None => {
            req.remove_header(&X_FORWARDED_HOST);
        }
    }
    req.insert_header(X_REQUEST_ID, request_id.clone())?;
    Ok(())
}

fn invalid_value(_: http::header::InvalidHeaderValue) -> Box<pingora::Error> {
    pingora::Error::explain(
        pingora::ErrorType::InvalidHTTPHeader,
        "invalid forwarded address",
    )
}

/// A client address as text, without `fmt` and a `String` per request: IPv4 (the common case)
/// by hand, IPv6 through `Display` into the same buffer.
struct IpText {
    buf: [u8; 48],
}

impl Default for IpText {
    fn default() -> Self {
        IpText { buf: [0; 48] }
    }
}

impl IpText {
    fn format(&mut self, ip: IpAddr) -> &[u8] {
        let mut n = 0;
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.buf[n] = b'.';
                        n += 1;
                    }
                    if octet >= 100 {
                        self.buf[n] = b'0' + octet / 100;
                        n += 1;
                    }
                    if octet >= 10 {
                        self.buf[n] = b'0' + octet / 10 % 10;
                        n += 1;
                    }
                    self.buf[n] = b'0' + octet % 10;
                    n += 1;
                }
            }
            IpAddr::V6(v6) => {
                use std::io::Write;
                let mut cursor = std::io::Cursor::new(&mut self.buf[..]);
                // 45 bytes at most ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255").
                let _ = write!(cursor, "{v6}");
                n = cursor.position() as usize;
            }
        }
        &self.buf[..n]
    }
}

/// Remove hop-by-hop fields from an upstream response before it goes to the client; a `101`
/// keeps `Connection` and `Upgrade`, which complete the handshake.
pub fn prepare_downstream_response(resp: &mut ResponseHeader) {
    if resp.status == http::StatusCode::SWITCHING_PROTOCOLS
        || !resp.headers.keys().any(|k| HOP_BY_HOP.contains(k))
    {
        return;
    }
    for name in nominated(&resp.headers) {
        resp.remove_header(&name);
    }
    for name in &HOP_BY_HOP {
        resp.remove_header(name);
    }
}

/// A client-supplied request id is kept when it is a reasonable token; otherwise a new one.
pub fn acceptable_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 200 && b.iter().all(|c| c.is_ascii_graphic())
}

/// A new request id: 32 lowercase hex digits of randomness, like nginx's `$request_id`.
pub fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = fastrand::u128(..);
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((n >> (i * 4)) & 0xf) as usize];
    }
    // Hex digits are always a valid header value.
    HeaderValue::from_bytes(&out).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests;
