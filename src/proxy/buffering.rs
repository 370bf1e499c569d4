//! `buffering` (SPEC §13, nginx's `proxy_request_buffering` and `proxy_buffering`).
//!
//! - **Request**: before a server is chosen, the body is read up to `buffering.request` bytes
//!   into pingora's retry buffer, which the first attempt sends before reading on. A slow
//!   upload then holds no server: the connection is made once the body is in (or once the
//!   buffer is full: the rest streams).
//! - **Response**: an answer's body is held, up to `buffering.response` bytes, and written to
//!   the client once it has all arrived, so the server (a synchronous gunicorn or unicorn
//!   worker) is free while a slow client drains it. An answer that outgrows the buffer is
//!   written as it stands and the rest streams; never more than the bound is held.
//!
//! Both are in memory: nginx spills to temporary files, switchyard does not (a disk write per
//! large answer is the cost nginx pays for unbounded buffering; here the bound is explicit and
//! beyond it the answer streams, as nginx does with `proxy_max_temp_file_size 0`).

use bytes::{Bytes, BytesMut};
use pingora::prelude::*;
use pingora::proxy::Session;

/// Room in the retry buffer beyond `buffering.request` for the piece that crosses it (an
/// HTTP/1 read is at most 64 KiB, an HTTP/2 DATA frame at most 16 MiB): the buffer only
/// allocates what it holds.
const PIECE: usize = 16 << 20;

/// Read the request body ahead, up to `limit` bytes. `true`: the whole body is in.
pub(super) async fn read_ahead(session: &mut Session, limit: u64) -> Result<bool> {
    if session.as_mut().is_body_empty() || session.as_mut().is_body_done() {
        return Ok(true);
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    session
        .as_mut()
        .enable_retry_buffering_with(limit.saturating_add(PIECE));
    let mut read = 0usize;
    while read < limit {
        match session.read_request_body().await? {
            Some(piece) => read += piece.len(),
            None => return Ok(true),
        }
    }
    Ok(session.as_mut().is_body_done())
}

/// Whether an answer is held: not an upgrade, a bodiless answer, a gRPC stream, or one the
/// server asked not to buffer (`X-Accel-Buffering: no`, as nginx honours it).
pub(super) fn wanted(session: &Session, resp: &pingora::http::ResponseHeader) -> bool {
    let status = resp.status.as_u16();
    if resp.status.is_informational()
        || status == 204
        || status == 304
        || session.req_header().method == http::Method::HEAD
    {
        return false;
    }
    let header = |n: &str| resp.headers.get(n).and_then(|v| v.to_str().ok());
    if header("x-accel-buffering").is_some_and(|v| v.trim().eq_ignore_ascii_case("no")) {
        return false;
    }
    !header("content-type").is_some_and(|t| t.starts_with("application/grpc"))
}

/// An answer's body held back, up to its bound.
#[derive(Debug)]
pub(super) struct Held {
    limit: usize,
    buf: BytesMut,
    /// The bound was reached: the rest streams.
    overflowed: bool,
}

/// What became of an answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kept {
    /// Still being held.
    Holding,
    /// Held whole and written at once.
    Whole,
    /// Larger than the bound: written as it stood, the rest streamed.
    Overflowed,
    /// Streaming after an overflow.
    Streaming,
}

impl Held {
    pub(super) fn new(limit: u64) -> Held {
        Held {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            buf: BytesMut::new(),
            overflowed: false,
        }
    }

    /// Take `body` (a piece of the answer) into the buffer, or let it through with what was
    /// held before it.
    pub(super) fn filter(&mut self, body: &mut Option<Bytes>, end_of_stream: bool) -> Kept {
        if self.overflowed {
            return Kept::Streaming;
        }
        let piece = body.take().unwrap_or_default();
        if self.buf.len() + piece.len() > self.limit {
            self.overflowed = true;
            let mut out = std::mem::take(&mut self.buf);
            out.extend_from_slice(&piece);
            *body = Some(out.freeze());
            return Kept::Overflowed;
        }
        self.buf.extend_from_slice(&piece);
        if end_of_stream {
            *body = Some(std::mem::take(&mut self.buf).freeze());
            return Kept::Whole;
        }
        Kept::Holding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_held_whole_or_let_go_at_the_bound() {
        let mut h = Held::new(10);
        let mut b = Some(Bytes::from_static(b"abcd"));
        assert_eq!(h.filter(&mut b, false), Kept::Holding);
        assert!(b.is_none());
        let mut b = Some(Bytes::from_static(b"efg"));
        assert_eq!(h.filter(&mut b, false), Kept::Holding);
        let mut b = None;
        assert_eq!(h.filter(&mut b, true), Kept::Whole);
        assert_eq!(b.as_deref(), Some(&b"abcdefg"[..]));

        let mut h = Held::new(10);
        let mut b = Some(Bytes::from_static(b"abcdefgh"));
        assert_eq!(h.filter(&mut b, false), Kept::Holding);
        let mut b = Some(Bytes::from_static(b"ijk"));
        assert_eq!(h.filter(&mut b, false), Kept::Overflowed);
        assert_eq!(b.as_deref(), Some(&b"abcdefghijk"[..]));
        let mut b = Some(Bytes::from_static(b"l"));
        assert_eq!(h.filter(&mut b, true), Kept::Streaming);
        assert_eq!(b.as_deref(), Some(&b"l"[..]));
    }
}
