//! The front door: every client connection passes through here before pingora parses it.
//!
//! [`FrontDoor`] wraps each accepted connection in a [`GuardedStream`] (head deadline, size and
//! syntax limits), sets the body and send timeouts on each session, and serves the requests of
//! the connection one by one through a pingora HTTP application (keep-alive and pipelining
//! included): the proxy on the proxy port, the admin API on the admin port (SPEC §9: the admin
//! port has the proxy port's head limits).
//! HTTP/2 with prior knowledge (h2c) is recognised by its preface and handed to pingora's
//! HTTP/2 server. On a `proxy_protocol` listener the PROXY header is read first, before TLS
//! (`proxy_header.rs`), and names the connection's client.
//!
//! On a TLS listener the handshake comes first (within `limits.header_read_timeout`), then ALPN
//! decides: `h2` goes to pingora's HTTP/2 server (whose own limits apply: see `server.rs`), anything
//! else to the HTTP/1 guard as on a plain listener. A `redirect_https` listener's requests are
//! answered by [`Redirect`] without reaching the proxy.

use super::conns::{Conns, Slot};
use super::guarded::GuardedStream;
use super::redirect::Redirect;
use crate::config::Limits;
use crate::edge::{self, Serve};
use crate::lifecycle::ActiveRequest;
use crate::log_summary::Failure;
use crate::state::{RuntimeState, Store};
use crate::tls::acceptor::TlsAcceptor;
use async_trait::async_trait;
use pingora::apps::http_app::HttpServer;
use pingora::apps::http_app::ServeHttp;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::tls::ALPN;
use pingora::protocols::{Ssl, Stream};
use pingora::proxy::{HttpProxy, ProxyHttp};
use pingora::server::ShutdownWatch;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How long a connection accepted around shutdown gets to send its first request (or finish
/// its TLS handshake) before it is closed unanswered.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// Resolves once shutdown has begun (the watch's guard is not held past it).
async fn shutting_down(stop: &mut ShutdownWatch) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// Body and send timeouts of a client session (the head has its own deadline).
fn apply_timeouts(session: &mut ServerSession, limits: &Limits) {
    session.set_read_timeout(Some(limits.body_read_timeout));
    session.set_write_timeout(Some(limits.send_timeout));
}

/// How many connections a front door lets be open at once.
#[derive(Debug, Clone, Copy)]
pub enum ConnLimit {
    /// `limits.max_connections`, else this default (derived from the open-file limit).
    Configured { default: u32 },
    /// A fixed number (the admin port).
    Fixed(u32),
}

/// One request of a connection, boxed while it is in flight (and only then).
type RequestFuture<'a> = Pin<Box<dyn Future<Output = Option<ReusedHttpStream>> + Send + 'a>>;

/// Serves one request of a connection: pingora's [`HttpServerApp::process_new_http`].
pub trait ServeOne: HttpServerApp + Send + Sync + 'static {
    fn serve_one<'a>(
        self: &'a Arc<Self>,
        session: ServerSession,
        shutdown: &'a ShutdownWatch,
    ) -> RequestFuture<'a>;
}

/// The proxy: its request future (about 14 KB, every phase of pingora's state machine) is
/// boxed while the request is in flight only, so a connection between requests holds none of
/// it. pingora's own `async_trait` form moves it into its box through a copy on the stack
/// (vendor/README.md, patch 1).
impl<SV> ServeOne for HttpProxy<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    SV::CTX: Send + Sync,
{
    fn serve_one<'a>(
        self: &'a Arc<Self>,
        session: ServerSession,
        shutdown: &'a ShutdownWatch,
    ) -> RequestFuture<'a> {
        let mut slot = Box::new_uninit();
        // Built in its box: `Box::pin(future)` would build it on the stack and copy all of it
        // (`size_of` of the whole state machine, not of its first state) per request.
        write_in(&mut slot, || new_request(self, session, shutdown));
        // SAFETY: written just above.
        Box::into_pin(unsafe { slot.assume_init() })
    }
}

/// `make()`'s value written into `dst`. Out of line, `dst` is a reference the compiler knows
/// it may write whole, so it has `make` (itself out of line) return straight into it.
#[inline(never)]
fn write_in<F>(dst: &mut std::mem::MaybeUninit<F>, make: impl FnOnce() -> F) {
    // SAFETY: `dst` is valid for a write of `F` (a `&mut`); it was uninitialised, so
    // nothing is leaked by overwriting it.
    unsafe { dst.as_mut_ptr().write(make()) }
}

/// The proxy's request future (inlined into [`write_in`], so only its first state, the
/// arguments, is written).
#[inline(always)]
fn new_request<'a, SV>(
    proxy: &'a Arc<HttpProxy<SV>>,
    session: ServerSession,
    shutdown: &'a ShutdownWatch,
) -> impl Future<Output = Option<ReusedHttpStream>> + Send + 'a
where
    SV: ProxyHttp + Send + Sync + 'static,
    SV::CTX: Send + Sync,
{
    proxy.process_new_http_unboxed(session, shutdown)
}

/// The admin API and the HTTPS redirect: pingora's own path (small futures).
impl<T: ServeHttp + Send + Sync + 'static> ServeOne for HttpServer<T> {
    fn serve_one<'a>(
        self: &'a Arc<Self>,
        session: ServerSession,
        shutdown: &'a ShutdownWatch,
    ) -> RequestFuture<'a> {
        self.process_new_http(session, shutdown)
    }
}

/// What the front door does with one connection, decided by the listener it came in on.
enum Mode {
    Plain,
    Tls(TlsAcceptor),
    Redirect,
}

/// The listening service's application: guards each connection, then lets the HTTP
/// application (`app`) serve its requests one by one (keep-alive and pipelining included).
pub struct FrontDoor<A> {
    proxy: Arc<A>,
    /// The answer of `redirect_https` listeners (the proxy port only).
    redirect: Option<Arc<HttpServer<Redirect>>>,
    store: Store,
    conns: Arc<Conns>,
    limit: ConnLimit,
}

impl<A> FrontDoor<A> {
    /// A front door for plain HTTP listeners only (the admin port).
    pub fn new(conns: Arc<Conns>, app: A, store: Store, limit: ConnLimit) -> Self {
        FrontDoor {
            proxy: Arc::new(app),
            redirect: None,
            store,
            conns,
            limit,
        }
    }

    /// The front door of the proxy's listeners: plain, TLS and `redirect_https` ones.
    pub fn edge(app: A, store: Store, conns: Arc<Conns>, limit: ConnLimit) -> Self {
        let redirect = Arc::new(HttpServer::new_app(Redirect::new(Arc::clone(&store))));
        FrontDoor {
            redirect: Some(redirect),
            ..FrontDoor::new(conns, app, store, limit)
        }
    }

    /// What to do with a connection, and whether it starts with a PROXY header.
    fn mode(&self, state: &RuntimeState, stream: &Stream) -> (Mode, bool) {
        if self.redirect.is_none() || state.plain_only {
            return (Mode::Plain, false);
        }
        let local = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied());
        match local.and_then(|a| edge::find(&state.listeners, a)) {
            Some(l) => (
                match &l.serve {
                    Serve::Plain => Mode::Plain,
                    Serve::Tls(t) => Mode::Tls(t.acceptor.clone()),
                    Serve::RedirectHttps { .. } => Mode::Redirect,
                },
                l.proxy_protocol,
            ),
            None => (Mode::Plain, false),
        }
    }
}

#[async_trait]
impl<A> ServerApp for FrontDoor<A>
where
    A: ServeOne,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let (limits, (mode, proxy_header), edge_stats, tally, real_ip) = {
            let state = self.store.load();
            let (mode, proxy_header) = self.mode(&state, &stream);
            (
                state.config.limits,
                (mode, proxy_header),
                Arc::clone(&state.edge),
                Arc::clone(&state.tally),
                proxy_header.then(|| state.config.real_ip.clone()).flatten(),
            )
        };
        let max = match self.limit {
            ConnLimit::Configured { default } => {
                limits.max_connections.map_or(default, |m| m.get())
            }
            ConnLimit::Fixed(n) => n,
        };
        // Dropped when this connection ends, giving its place back.
        let Some(place) = self.conns.admit(max as usize) else {
            // Every open connection is busy with a request: this one is refused.
            tally.failures.count(Failure::Refused);
            return None;
        };
        // Until its first request is answered, a new connection counts as a request in flight:
        // a shutdown (or an upgrade's hand-over) then waits for it instead of exiting under it.
        let first_request = tally.start();
        let mut stop = shutdown.clone();
        let stream = if proxy_header {
            // Boxed: its buffer is freed once the header is read.
            let accepted = Box::pin(super::proxy_header::accept(
                stream,
                &limits,
                real_ip.as_ref(),
                &place.slot,
            ))
            .await;
            match accepted {
                Some(s) => s,
                None => {
                    tally.failures.count(Failure::Refused);
                    return None;
                }
            }
        } else {
            stream
        };
        let redirect = matches!(mode, Mode::Redirect);
        let (stream, tls) = match mode {
            Mode::Tls(acceptor) => {
                // Boxed: the handshake's state is freed once it is done.
                let accepted =
                    Box::pin(handshake(acceptor, stream, &limits, &place.slot, &mut stop)).await?;
                edge_stats.handshake(accepted.is_ok());
                let (conn, h2) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!("TLS handshake failed: {e}");
                        tally.failures.count(Failure::Refused);
                        return None;
                    }
                };
                if h2 {
                    // pingora's HTTP/2 server takes it from here; its streams are requests,
                    // so the connection is never "idle between requests" to the tracker.
                    place.slot.set_idle(false);
                    drop(first_request);
                    return ServerApp::process_new(&self.proxy, conn, shutdown).await;
                }
                (conn, true)
            }
            _ => (stream, false),
        };

        // Boxed once for the connection's life: pingora takes it as a `Stream` for each request
        // and hands it back.
        let mut guarded = Box::new(GuardedStream::new(
            stream,
            limits,
            Some(Arc::clone(&place.slot)),
            tally,
        ));
        let started = tokio::select! {
            biased;
            r = guarded.read_start() => r,
            _ = shutting_down(&mut stop) => {
                // Shutting down (or handing the sockets to a new process, which this one keeps
                // accepting for during pingora's hand-over): a new connection's first request is
                // on its way and is served if it comes soon; an idle one is closed. `read_start`
                // keeps what it read, so it resumes where the cancelled read stopped.
                match tokio::time::timeout(FIRST_REQUEST_GRACE, guarded.read_start()).await {
                    Ok(r) => r,
                    Err(_) => return None,
                }
            }
        };
        match started {
            Ok(true) => {}
            _ => return None,
        }
        if redirect && let Some(app) = &self.redirect {
            if guarded.is_h2_preface() {
                return None;
            }
            return serve_h1(app, guarded, &limits, shutdown, first_request).await;
        }
        if !tls && guarded.is_h2_preface() {
            guarded.end_head();
            drop(first_request);
            return ServerApp::process_new(&self.proxy, guarded, shutdown).await;
        }
        serve_h1(&self.proxy, guarded, &limits, shutdown, first_request).await
    }

    async fn cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}

/// The TLS handshake of a new connection, with the head's deadline (nginx:
/// client_header_timeout): the decrypted stream, and whether ALPN chose HTTP/2. `None`: closed
/// to make room, or shutting down and not done within [`FIRST_REQUEST_GRACE`].
async fn handshake(
    acceptor: TlsAcceptor,
    stream: Stream,
    limits: &Limits,
    slot: &Slot,
    stop: &mut ShutdownWatch,
) -> Option<std::io::Result<(Stream, bool)>> {
    let accept = acceptor.accept(stream, limits.header_read_timeout);
    tokio::pin!(accept);
    let accepted = tokio::select! {
        biased;
        r = &mut accept => r,
        _ = slot.closed() => return None,
        _ = shutting_down(stop) => {
            match tokio::time::timeout(FIRST_REQUEST_GRACE, &mut accept).await {
                Ok(r) => r,
                Err(_) => return None,
            }
        }
    };
    Some(accepted.map(|conn| {
        let h2 = matches!(conn.selected_alpn_proto(), Some(ALPN::H2));
        (Box::new(conn) as Stream, h2)
    }))
}

/// Serve the HTTP/1.x requests of a guarded connection one by one through `app`. Each head is
/// read whole by the guard before `app` sees it, so between requests (and while a head is
/// still coming) the connection holds only its stream: no pingora session, no request future.
async fn serve_h1<B: ServeOne>(
    app: &Arc<B>,
    mut guarded: Box<GuardedStream>,
    limits: &Limits,
    shutdown: &ShutdownWatch,
    first_request: ActiveRequest,
) -> Option<Stream> {
    let mut stop = shutdown.clone();
    let mut first_request = Some(first_request);
    let mut settings = None;
    loop {
        if !next_head(&mut guarded, &mut stop).await {
            return None;
        }
        let request = start_request(app, guarded, settings.take(), limits, shutdown);
        let result = request.await;
        drop(first_request.take());
        let (stream, next) = result?.consume();
        settings = next;
        // Only GuardedStreams are handed to the application above.
        guarded = stream.into_any().downcast::<GuardedStream>().ok()?;
        if !guarded.next_request() {
            // Unscanned bytes went through (a refused upgrade followed by more data).
            return None;
        }
    }
}

/// A pingora session for a head the guard has read, and its request's future.
fn start_request<'a, B: ServeOne>(
    app: &'a Arc<B>,
    mut guarded: Box<GuardedStream>,
    settings: Option<HttpPersistentSettings>,
    limits: &Limits,
    shutdown: &'a ShutdownWatch,
) -> RequestFuture<'a> {
    let head = guarded.take_head();
    let mut session = ServerSession::new_http1(guarded);
    session.set_pipelined_prefix(head);
    if let Some(settings) = settings {
        settings.apply_to_session(&mut session);
    }
    apply_timeouts(&mut session, limits);
    // The head is already read (the guard timed it, and the wait before it): pingora's own
    // keep-alive timer would only be set and cancelled, so it gets none (`0`).
    session.set_keepalive(if *shutdown.borrow() { None } else { Some(0) });
    session.set_pipelining_enabled(true);
    app.serve_one(session, shutdown)
}

/// Wait for the next request head, whole. Shutting down (or handing the sockets to a new
/// process), a head already begun gets [`FIRST_REQUEST_GRACE`] to arrive; an idle connection is
/// closed at once.
async fn next_head(guarded: &mut GuardedStream, stop: &mut ShutdownWatch) -> bool {
    let read = tokio::select! {
        biased;
        r = guarded.read_head() => r,
        _ = shutting_down(stop) => {
            if !guarded.head_started() {
                return false;
            }
            match tokio::time::timeout(FIRST_REQUEST_GRACE, guarded.read_head()).await {
                Ok(r) => r,
                Err(_) => return false,
            }
        }
    };
    matches!(read, Ok(true))
}
