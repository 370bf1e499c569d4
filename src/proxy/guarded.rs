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
//! fields, 414 and 431 limits), and a chunked body through [`ChunkScanner`].
//!
//! The stream follows the HTTP/1 message framing itself (RFC 9112 §6.3: `Content-Length`,
//! chunked, or no body) and never hands pingora a byte past the end of the current request:
//! what a read brings beyond it is kept and served to the next read. So pingora never holds a
//! pipelined head the scanner has not seen, and the stream always knows where the next head
//! starts without being told. After a request that may switch protocols (`Upgrade`,
//! `CONNECT`), reads wait until the response status goes out through this stream, as pingora
//! decides (RFC 9110 §15.2.2): a `101` makes the rest of the connection an unscanned tunnel,
//! any other final status means the next bytes are the next request head.

use super::chunk::ChunkScanner;
use super::conns::Slot;
use super::head::{Framing, HeadScanner, Reject, Verdict};
use super::respond;
use crate::config::Limits;
use crate::lifecycle::Tally;
use crate::log_summary::Failure;
use bytes::BytesMut;
use pingora::protocols::Stream;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// RFC 9113 §3.4: the client connection preface of HTTP/2.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Largest amount of a too-large head read and thrown away before answering `431`.
const DRAIN_LIMIT: usize = 256 * 1024;

/// A request body that broke the chunked framing. It is the cause of the read error pingora
/// reports, so the proxy can tell it apart and answer `400` ([`is_body_framing_error`]).
#[derive(Debug)]
pub struct BodyFramingError(pub &'static str);

impl std::fmt::Display for BodyFramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body refused: {}", self.0)
    }
}

impl std::error::Error for BodyFramingError {}

/// Whether a request failed because the front door refused its body's framing.
pub fn is_body_framing_error(e: &pingora::Error) -> bool {
    e.root_cause()
        .downcast_ref::<io::Error>()
        .and_then(io::Error::get_ref)
        .is_some_and(|inner| inner.is::<BodyFramingError>())
}

/// Where the connection is in its stream of HTTP/1 messages.
#[derive(Debug)]
enum Phase {
    /// Reading a request head; every byte is scanned.
    Head,
    /// In a body of known length: the bytes left.
    Length(u64),
    /// In a chunked body.
    Chunked(ChunkScanner),
    /// After a request that may switch protocols, until the response status is written.
    AwaitSwitch(Option<Waker>),
    /// After a `101`, or on an HTTP/2 connection: bytes pass unscanned.
    Opaque,
}

/// A client connection whose request heads are held to the size and time limits.
pub struct GuardedStream {
    inner: Stream,
    /// The server's counters (a refused head counts for the failure summary).
    tally: Arc<Tally>,
    /// Bytes read but not yet handed on (read ahead for the HTTP/2 preface, or past the end of
    /// a request), served before the socket.
    replay: BytesMut,
    /// A request head (and whatever of its body came with it) read ahead by
    /// [`GuardedStream::read_head`]: already through the guard, handed to pingora first.
    ready: BytesMut,
    /// A request head ended since [`GuardedStream::read_head`] began.
    head_done: bool,
    /// `deadline` is the keep-alive wait for the next head's first byte, not the head's own.
    keepalive_wait: bool,
    /// Small writes gathered until the next flush (`plumbing.rs`), and how much of them is sent.
    out: Vec<u8>,
    out_sent: usize,
    limits: Limits,
    phase: Phase,
    /// The current request may switch protocols and its response status is not written yet.
    awaiting_status: bool,
    head_bytes: usize,
    head_seen_bytes: bool,
    scan: HeadScanner,
    /// The timer of the head's deadline (or of the keep-alive wait), kept from request to
    /// request and reset; it counts only while `armed`.
    deadline: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// The head's first bytes came and its own clock is to start, which it does only if the
    /// head is not complete in the read that brought them (most are).
    head_clock_due: bool,
    /// The connection's place among the open connections: idle while a head is awaited, and
    /// closed by the tracker when room is needed (`conns.rs`).
    slot: Option<Arc<Slot>>,
}

impl std::fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStream")
            .field("inner", &self.inner)
            .field("phase", &self.phase)
            .finish()
    }
}

impl GuardedStream {
    /// A freshly accepted connection: its first head is due `header_read_timeout` from now.
    pub fn new(
        inner: Stream,
        limits: Limits,
        slot: Option<Arc<Slot>>,
        tally: Arc<Tally>,
    ) -> GuardedStream {
        GuardedStream {
            inner,
            tally,
            replay: BytesMut::new(),
            ready: BytesMut::new(),
            head_done: false,
            keepalive_wait: false,
            out: Vec::new(),
            out_sent: 0,
            limits,
            phase: Phase::Head,
            awaiting_status: false,
            head_bytes: 0,
            head_seen_bytes: false,
            scan: HeadScanner::new(limits.max_header_bytes),
            deadline: Some(Box::pin(tokio::time::sleep(limits.header_read_timeout))),
            armed: true,
            head_clock_due: false,
            slot,
        }
    }

    fn set_idle(&self, idle: bool) {
        if let Some(s) = &self.slot {
            s.set_idle(idle);
        }
    }

    /// pingora is done with a request and offers the connection for the next one. `false`:
    /// the stream is not at the start of a request head (it cannot be after a complete
    /// exchange, as pingora drains bodies first), so the connection is closed.
    /// The wait for the next head's first byte is `limits.keepalive_timeout`.
    pub fn next_request(&mut self) -> bool {
        let ready = matches!(self.phase, Phase::Head);
        self.set_idle(ready);
        if ready && !self.head_seen_bytes {
            self.arm(Instant::now() + self.limits.keepalive_timeout);
            self.keepalive_wait = true;
        }
        ready
    }

    /// Set the deadline, reusing its timer when there is one.
    fn arm(&mut self, at: Instant) {
        match &mut self.deadline {
            Some(d) => d.as_mut().reset(at),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        self.armed = true;
    }

    /// No deadline (the timer is kept for the next one).
    fn disarm(&mut self) {
        self.armed = false;
        self.head_clock_due = false;
    }

    /// Start the clock of a head that did not come whole in its first read, and have its
    /// timer wake this reader.
    fn start_head_clock(&mut self, cx: &mut Context<'_>) {
        self.arm(Instant::now() + self.limits.header_read_timeout);
        self.head_clock_due = false;
        if let Some(d) = self.deadline.as_mut() {
            // Just set in the future: pending, and now registered.
            let _ = d.as_mut().poll(cx);
        }
    }

    /// The next request head starts here; its clock starts at its first byte.
    fn start_head(&mut self) {
        self.phase = Phase::Head;
        self.awaiting_status = false;
        self.head_bytes = 0;
        self.head_seen_bytes = false;
        self.scan = HeadScanner::new(self.limits.max_header_bytes);
        self.disarm();
    }

    /// The head just ended: follow its body.
    fn after_head(&mut self) {
        self.disarm();
        self.head_done = true;
        self.set_idle(false);
        self.awaiting_status = self.scan.may_switch_protocols();
        match self.scan.framing() {
            Framing::None => self.after_message(),
            Framing::Length(n) => self.phase = Phase::Length(n),
            Framing::Chunked => {
                self.phase = Phase::Chunked(ChunkScanner::new(self.limits.max_header_bytes))
            }
        }
    }

    fn after_message(&mut self) {
        if self.awaiting_status {
            self.phase = Phase::AwaitSwitch(None);
        } else {
            self.start_head();
        }
    }

    /// Bytes written to the client while a switching request waits for its status: the start
    /// of the response head says whether the connection switched protocols.
    fn saw_response(&mut self, bytes: &[u8]) {
        if !self.awaiting_status || bytes.len() < 12 || !bytes.starts_with(b"HTTP/1.") {
            return;
        }
        let status = std::str::from_utf8(&bytes[9..12])
            .ok()
            .and_then(|s| s.parse::<u16>().ok());
        let next = match status {
            Some(101) => Phase::Opaque,
            // 100 Continue and other interim answers: the final status is still to come.
            Some(100..=199) => return,
            _ => Phase::Head,
        };
        self.awaiting_status = false;
        let waiting = match std::mem::replace(&mut self.phase, Phase::Head) {
            Phase::AwaitSwitch(waker) => {
                self.start_head();
                waker
            }
            // A 101 while the body is still read: pingora passes the rest through too.
            other => {
                self.phase = other;
                None
            }
        };
        if matches!(next, Phase::Opaque) {
            self.phase = Phase::Opaque;
        }
        if let Some(w) = waiting {
            w.wake();
        }
    }

    /// How many of `bytes` (read in a body or opaque phase) belong to the current message.
    fn take_body(&mut self, bytes: &[u8]) -> Result<usize, &'static str> {
        let (used, done) = match &mut self.phase {
            Phase::Length(left) => {
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                *left -= n as u64;
                (n, *left == 0)
            }
            Phase::Chunked(c) => {
                let n = c.feed(bytes)?;
                (n, c.done())
            }
            Phase::Opaque => return Ok(bytes.len()),
            Phase::Head | Phase::AwaitSwitch(_) => return Ok(0),
        };
        if done {
            self.after_message();
        }
        Ok(used)
    }

    /// Keep `bytes` for the next read, ahead of anything already kept.
    fn unread(&mut self, bytes: &[u8]) {
        let mut kept = BytesMut::with_capacity(bytes.len() + self.replay.len());
        kept.extend_from_slice(bytes);
        kept.extend_from_slice(&self.replay);
        self.replay = kept;
    }

    /// Hand on only the first `keep` new bytes of `buf` (from `from`); keep the rest.
    fn cut(&mut self, buf: &mut ReadBuf<'_>, from: usize, keep: usize) {
        let end = from + keep;
        if end < buf.filled().len() {
            let rest = buf.filled()[end..].to_vec();
            self.unread(&rest);
            buf.set_filled(end);
        }
    }

    /// An HTTP/2 connection: nothing more to scan.
    pub(crate) fn end_head(&mut self) {
        self.set_idle(false);
        self.phase = Phase::Opaque;
        self.disarm();
    }

    /// Read the first bytes of the connection into the replay buffer: enough to tell an HTTP/2
    /// preface from HTTP/1. `Ok(false)` when the client closed or sent nothing in time.
    pub(crate) async fn read_start(&mut self) -> io::Result<bool> {
        let deadline = Instant::now() + self.limits.header_read_timeout;
        let slot = self.slot.clone();
        let closed = async {
            match &slot {
                Some(s) => s.closed().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(closed);
        loop {
            let read = tokio::time::timeout_at(deadline, self.inner.read_buf(&mut self.replay));
            let n = match tokio::select! {
                r = read => r,
                // Closed to make room while it had sent nothing (or too little to tell).
                _ = &mut closed => return Ok(false),
            } {
                Ok(r) => r?,
                Err(_) => {
                    if !self.replay.is_empty() {
                        let _ = tokio::io::AsyncWriteExt::write_all(
                            &mut self.inner,
                            &respond::raw_closing(408),
                        )
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

    /// Whether the client has sent any of the next request head.
    pub(crate) fn head_started(&self) -> bool {
        self.head_seen_bytes || !self.replay.is_empty() || !self.ready.is_empty()
    }

    pub(crate) fn is_h2_preface(&self) -> bool {
        self.replay.starts_with(H2_PREFACE)
    }

    /// Answer `status` and fail the read: the connection is closed after this.
    fn reject(
        &mut self,
        cx: &mut Context<'_>,
        status: u16,
        kind: io::ErrorKind,
        why: &str,
    ) -> Poll<io::Result<()>> {
        if status != 408 {
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
        let _ = Pin::new(&mut self.inner).poll_write(cx, &respond::raw_closing(status));
        self.disarm();
        // Per connection: counted for the periodic summary, not a log line of its own.
        self.tally.failures.count(Failure::Refused);
        tracing::debug!(client = ?self.inner.get_socket_digest().and_then(|d| d.peer_addr().cloned()), "{why}");
        Poll::Ready(Err(io::Error::new(kind, why.to_string())))
    }

    /// Read into `buf`: the bytes kept first, then the socket.
    fn fill(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.replay.is_empty() {
            drain_into(&mut self.replay, buf);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }

    /// Read the next request head whole, through the guard, before pingora is given the
    /// connection: an idle keep-alive connection, or one still sending its head, then holds no
    /// request state (no parse buffer, no request future), only this stream and the bytes the
    /// client sent. `Ok(true)`: the head is complete and waits in `ready` for pingora.
    /// `Ok(false)` or an error: the client closed, stayed idle past its deadline, was closed to
    /// make room, or was refused (and answered); the connection ends.
    pub(crate) async fn read_head(&mut self) -> io::Result<bool> {
        self.head_done = false;
        std::future::poll_fn(|cx| self.poll_head(cx)).await
    }

    /// The head [`GuardedStream::read_head`] read, for pingora to parse in place (its
    /// "pipelined prefix"): no copy through a read, no parse buffer of its own.
    pub(crate) fn take_head(&mut self) -> BytesMut {
        std::mem::take(&mut self.ready)
    }

    fn poll_head(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        // On the thread's stack for the call only: nothing is kept between polls but what the
        // client sent.
        let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        while !self.head_done {
            let mut buf = ReadBuf::uninit(&mut scratch);
            match self.poll_guarded(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(false)),
                Poll::Ready(Ok(())) => self.ready.extend_from_slice(buf.filled()),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(true))
    }

    /// A read in a body or opaque phase.
    fn read_body(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Phase::AwaitSwitch(waker) = &mut self.phase {
            *waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let before = buf.filled().len();
        match self.fill(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        if buf.filled().len() == before {
            return Poll::Ready(Ok(()));
        }
        match self.take_body(&buf.filled()[before..]) {
            Ok(used) => {
                self.cut(buf, before, used);
                if used == 0 {
                    // Nothing of this read belonged to the message (cannot happen in a body
                    // phase, which needs at least a byte): read again rather than signal EOF.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(Ok(()))
            }
            // After the head went to pingora: the proxy answers 400 (the upstream may already
            // have part of the request).
            Err(why) => {
                tracing::debug!("request body refused: {why}");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    BodyFramingError(why),
                )))
            }
        }
    }
}

/// Move as much of `from` as fits into `buf`; an emptied buffer gives its memory back.
fn drain_into(from: &mut BytesMut, buf: &mut ReadBuf<'_>) {
    if from.len() <= buf.remaining() {
        buf.put_slice(&std::mem::take(from));
    } else {
        buf.put_slice(&from.split_to(buf.remaining()));
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ready.is_empty() {
            drain_into(&mut this.ready, buf);
            return Poll::Ready(Ok(()));
        }
        if matches!(this.phase, Phase::Head) {
            return this.poll_idle_probe(cx);
        }
        this.poll_guarded(cx, buf)
    }
}

impl GuardedStream {
    /// pingora reads between the end of a request and the end of its exchange (its heads come
    /// whole from [`GuardedStream::read_head`], never through a read) to notice a client
    /// that closes. It learns of a close; bytes of a next request are kept, unscanned, for
    /// the next `read_head`, which scans them after this exchange is answered, so that an
    /// answer to them (a `400`) cannot overtake this one.
    fn poll_idle_probe(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.replay.is_empty() {
            // The next request has begun: nothing more to learn until this one is done (the
            // exchange's other work wakes pingora).
            return Poll::Pending;
        }
        let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); 1024];
        let mut probe = ReadBuf::uninit(&mut scratch);
        match Pin::new(&mut self.inner).poll_read(cx, &mut probe) {
            Poll::Ready(Ok(())) if probe.filled().is_empty() => Poll::Ready(Ok(())),
            Poll::Ready(Ok(())) => {
                self.replay.extend_from_slice(probe.filled());
                Poll::Pending
            }
            other => other,
        }
    }
}

impl GuardedStream {
    /// A read through the guard: heads scanned and timed, bodies framed.
    fn poll_guarded(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self;
        if !matches!(this.phase, Phase::Head) {
            return this.read_body(cx, buf);
        }
        if this.slot.as_ref().is_some_and(|s| s.is_closing()) {
            // Closed to make room for a new connection while idle: end as if the client had.
            return Poll::Ready(Ok(()));
        }

        if this.armed
            && let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            if !this.head_seen_bytes {
                this.disarm();
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "idle connection",
                )));
            }
            return this.reject(
                cx,
                408,
                io::ErrorKind::TimedOut,
                "request head not received within header_read_timeout: 408",
            );
        }

        let before = buf.filled().len();
        match this.fill(cx, buf) {
            Poll::Ready(Ok(())) => {}
            Poll::Pending => {
                // Waiting for the client: only now can the tracker need to wake this read to
                // close it (registering on every read would cost an atomic swap per request).
                if this.slot.as_ref().is_some_and(|s| s.closing(cx)) {
                    return Poll::Ready(Ok(()));
                }
                if this.head_clock_due {
                    this.start_head_clock(cx);
                }
                return Poll::Pending;
            }
            other => return other,
        }
        let new = &mut buf.filled_mut()[before..];
        if new.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if !this.head_seen_bytes {
            this.head_seen_bytes = true;
            if !this.armed || this.keepalive_wait {
                this.keepalive_wait = false;
                this.armed = false;
                this.head_clock_due = true;
            }
        }
        let end = match this.scan.feed(new) {
            Verdict::More => None,
            Verdict::End(n) => Some(n),
            Verdict::Reject(Reject::Bad(why)) => {
                return this.reject(cx, 400, io::ErrorKind::InvalidData, why);
            }
            Verdict::Reject(Reject::UriTooLong) => {
                return this.reject(
                    cx,
                    414,
                    io::ErrorKind::InvalidData,
                    "request line too long: 414",
                );
            }
            Verdict::Reject(Reject::TooManyFields) => {
                return this.reject(
                    cx,
                    431,
                    io::ErrorKind::InvalidData,
                    "too many header fields: 431",
                );
            }
        };
        let new_len = new.len();
        this.head_bytes += end.unwrap_or(new_len);
        if this.head_bytes > this.limits.max_header_bytes {
            return this.reject(
                cx,
                431,
                io::ErrorKind::InvalidData,
                "request head larger than max_header_bytes: 431",
            );
        }
        if let Some(n) = end {
            this.after_head();
            let rest = before + n;
            if matches!(this.phase, Phase::Head) {
                // No body: what follows is the next request's, scanned by the next read.
                this.cut(buf, rest, 0);
            } else if rest < buf.filled().len() {
                let body = buf.filled()[rest..].to_vec();
                match this.take_body(&body) {
                    Ok(used) => this.cut(buf, rest, used),
                    // In the same read as the head: refuse the whole request right here.
                    Err(why) => return this.reject(cx, 400, io::ErrorKind::InvalidData, why),
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

// The write side and pingora's stream traits: plain delegation to the socket.
mod plumbing;
