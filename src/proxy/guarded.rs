//! The guarded client connection: every request head is held to size, time and syntax limits
//! before pingora parses it.
//!
//! pingora bounds a request head only at 1 MiB (answered `400`) and times out single reads, not
//! the whole head, so a slowloris client sending one byte every few seconds is never cut off.
//! [`GuardedStream`] watches the bytes of every request head as pingora reads them:
//!
//! - the whole head must arrive within `limits.header_read_timeout` (from the accept for the
//!   first request, from its first byte for later keep-alive requests); past it the client gets
//!   `408` and the connection is closed (a connection that sent nothing is closed silently, as
//!   nginx does, so browsers' pre-opened connections never see an error page);
//! - a head larger than `limits.max_header_bytes` gets `431` and the connection is closed
//!   (RFC 6585 §5), after reading what the client already sent so the answer is not lost to a
//!   TCP reset.
//!
//! Every head byte also goes through the strict [`HeadScanner`] (RFC 9112 syntax, framing
//! fields, 414 and 431 limits), and a chunked body through [`ChunkScanner`]. The proxy marks
//! the head complete once pingora has parsed it, which covers heads pingora parsed from
//! pipelined bytes it already held.

use super::chunk::ChunkScanner;
use super::head::{HeadScanner, Reject, Verdict};
use crate::config::Limits;
use async_trait::async_trait;
use bytes::BytesMut;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType,
};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// RFC 9113 §3.4: the client connection preface of HTTP/2.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Largest amount of a too-large head read and thrown away before answering `431`.
const DRAIN_LIMIT: usize = 256 * 1024;

const RESPONSE_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\nConnection: close\r\n\r\n408 Request Timeout\n";
const RESPONSE_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n";
const RESPONSE_414: &[u8] = b"HTTP/1.1 414 URI Too Long\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 17\r\nConnection: close\r\n\r\n414 URI Too Long\n";
const RESPONSE_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 36\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large\n";

/// A client connection whose request heads are held to the size and time limits.
pub struct GuardedStream {
    inner: Stream,
    /// Bytes read ahead while looking for the HTTP/2 preface, served before the socket.
    replay: BytesMut,
    limits: Limits,
    in_head: bool,
    /// Set by the proxy (through `&self`) once pingora has parsed the head.
    head_parsed: AtomicBool,
    head_bytes: usize,
    head_seen_bytes: bool,
    scan: HeadScanner,
    /// Follows a chunked request body, to refuse framing pingora would let through.
    chunks: Option<ChunkScanner>,
    /// The request body broke the chunked framing (the proxy then answers 400).
    body_rejected: AtomicBool,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl std::fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStream")
            .field("inner", &self.inner)
            .field("in_head", &self.in_head)
            .finish()
    }
}

impl GuardedStream {
    /// A freshly accepted connection: its first head is due `header_read_timeout` from now.
    pub fn new(inner: Stream, limits: Limits) -> GuardedStream {
        GuardedStream {
            inner,
            replay: BytesMut::new(),
            limits,
            in_head: true,
            head_parsed: AtomicBool::new(false),
            head_bytes: 0,
            head_seen_bytes: false,
            scan: HeadScanner::new(limits.max_header_bytes),
            chunks: None,
            body_rejected: AtomicBool::new(false),
            deadline: Some(Box::pin(tokio::time::sleep(limits.header_read_timeout))),
        }
    }

    /// The previous request is done; the next head's clock starts at its first byte.
    pub fn next_request(&mut self) {
        self.in_head = true;
        self.head_parsed.store(false, Ordering::Relaxed);
        self.head_bytes = 0;
        self.head_seen_bytes = false;
        self.scan = HeadScanner::new(self.limits.max_header_bytes);
        self.chunks = None;
        self.body_rejected.store(false, Ordering::Relaxed);
        self.deadline = None;
    }

    /// Whether the request body was cut off for broken chunked framing.
    pub fn body_rejected(&self) -> bool {
        self.body_rejected.load(Ordering::Relaxed)
    }

    /// Follow the body bytes just read through a chunked body.
    fn check_body(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        let Some(chunks) = self.chunks.as_mut() else {
            return Ok(());
        };
        let result = chunks.feed(bytes);
        if result.is_err() || chunks.done() {
            self.chunks = None;
        }
        result
    }

    /// Called by the proxy once pingora has parsed this request's head.
    pub fn mark_head_parsed(&self) {
        self.head_parsed.store(true, Ordering::Relaxed);
    }

    pub(crate) fn end_head(&mut self) {
        self.in_head = false;
        self.deadline = None;
    }

    /// Read the first bytes of the connection into the replay buffer: enough to tell an HTTP/2
    /// preface from HTTP/1. `Ok(false)` when the client closed or sent nothing in time.
    pub(crate) async fn read_start(&mut self) -> io::Result<bool> {
        let deadline = Instant::now() + self.limits.header_read_timeout;
        loop {
            let n = match tokio::time::timeout_at(deadline, self.inner.read_buf(&mut self.replay))
                .await
            {
                Ok(r) => r?,
                Err(_) => {
                    if !self.replay.is_empty() {
                        let _ = tokio::io::AsyncWriteExt::write_all(&mut self.inner, RESPONSE_408)
                            .await;
                    }
                    return Ok(false);
                }
            };
            if n == 0 {
                return Ok(!self.replay.is_empty());
            }
            let have = self.replay.len().min(H2_PREFACE.len());
            if self.replay[..have] != H2_PREFACE[..have] || self.replay.len() >= H2_PREFACE.len() {
                return Ok(true);
            }
        }
    }

    pub(crate) fn is_h2_preface(&self) -> bool {
        self.replay.starts_with(H2_PREFACE)
    }

    /// Answer and fail the read: the connection is closed after this.
    fn reject(
        &mut self,
        cx: &mut Context<'_>,
        response: &[u8],
        kind: io::ErrorKind,
        why: &str,
    ) -> Poll<io::Result<()>> {
        if response != RESPONSE_408 {
            // Read what the client already sent, so closing does not reset the connection
            // before it reads our answer.
            let mut scratch = [0u8; 8192];
            let mut drained = 0;
            while drained < DRAIN_LIMIT {
                let mut rb = ReadBuf::new(&mut scratch);
                match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) if !rb.filled().is_empty() => drained += rb.filled().len(),
                    _ => break,
                }
            }
        }
        // Best effort: a fresh socket's send buffer takes this at once; if not, the client
        // sees the connection close, which is what it would get anyway.
        let _ = Pin::new(&mut self.inner).poll_write(cx, response);
        self.deadline = None;
        tracing::info!(client = ?self.inner.get_socket_digest().and_then(|d| d.peer_addr().cloned()), "{why}");
        Poll::Ready(Err(io::Error::new(kind, why.to_string())))
    }
}

impl GuardedStream {
    /// Read into `buf`: the bytes read ahead first, then the socket.
    fn fill(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.replay.is_empty() {
            let n = self.replay.len().min(buf.remaining());
            buf.put_slice(&self.replay.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.in_head && this.head_parsed.load(Ordering::Relaxed) {
            this.end_head();
        }
        if !this.in_head {
            let before = buf.filled().len();
            match this.fill(cx, buf) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
            // A body error after the head went to pingora: the proxy answers 400 (the upstream
            // may already have part of the request).
            return Poll::Ready(this.check_body(&buf.filled()[before..]).map_err(|why| {
                this.body_rejected.store(true, Ordering::Relaxed);
                tracing::info!("request body refused: {why}");
                io::Error::new(io::ErrorKind::InvalidData, why)
            }));
        }

        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            if !this.head_seen_bytes {
                this.deadline = None;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle connection",
                )));
            }
            return this.reject(
                cx,
                RESPONSE_408,
                io::ErrorKind::TimedOut,
                "request head not received within header_read_timeout: 408",
            );
        }

        let before = buf.filled().len();
        match this.fill(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let new = &mut buf.filled_mut()[before..];
        if new.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if !this.head_seen_bytes {
            this.head_seen_bytes = true;
            if this.deadline.is_none() {
                this.deadline = Some(Box::pin(tokio::time::sleep(
                    this.limits.header_read_timeout,
                )));
            }
        }
        let verdict = this.scan.feed(new);
        let end = match verdict {
            Verdict::More => None,
            Verdict::End(n) => Some(n),
            Verdict::Reject(Reject::Bad(why)) => {
                return this.reject(cx, RESPONSE_400, io::ErrorKind::InvalidData, why);
            }
            Verdict::Reject(Reject::UriTooLong) => {
                return this.reject(
                    cx,
                    RESPONSE_414,
                    io::ErrorKind::InvalidData,
                    "request line too long: 414",
                );
            }
            Verdict::Reject(Reject::TooManyFields) => {
                return this.reject(
                    cx,
                    RESPONSE_431,
                    io::ErrorKind::InvalidData,
                    "too many header fields: 431",
                );
            }
        };
        this.head_bytes += end.unwrap_or(new.len());
        if this.head_bytes > this.limits.max_header_bytes {
            return this.reject(
                cx,
                RESPONSE_431,
                io::ErrorKind::InvalidData,
                "request head larger than max_header_bytes: 431",
            );
        }
        if let Some(n) = end {
            this.end_head();
            if this.scan.chunked_body() {
                this.chunks = Some(ChunkScanner::new(this.limits.max_header_bytes));
                let body = buf.filled()[before + n..].to_vec();
                if let Err(why) = this.check_body(&body) {
                    // In the same read as the head: refuse the whole request right here.
                    return this.reject(cx, RESPONSE_400, io::ErrorKind::InvalidData, why);
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, d: SocketDigest) {
        self.inner.set_socket_digest(d)
    }
}

#[async_trait]
impl Peek for GuardedStream {
    /// Serves pingora's HTTP/2 preface check from the bytes already read.
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        if self.replay.len() < buf.len() {
            return Ok(false);
        }
        buf.copy_from_slice(&self.replay[..buf.len()]);
        Ok(true)
    }
}
