//! The front door: every client connection passes through here before pingora parses it.
//!
//! [`FrontDoor`] wraps each accepted connection in a [`GuardedStream`] (head deadline, size and
//! syntax limits), sets the body and send timeouts on each session, and serves the requests of
//! the connection one by one through a pingora HTTP application (keep-alive and pipelining
//! included): the proxy on the proxy port, the admin API on the admin port (SPEC §9: the admin
//! port has the proxy port's head limits).
//! HTTP/2 with prior knowledge (h2c) is recognised by its preface and handed to pingora's
//! HTTP/2 server.

use super::conns::Conns;
use super::guarded::GuardedStream;
use crate::config::Limits;
use crate::log_summary::{self, Failure};
use crate::state::Store;
use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::Stream;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use std::sync::Arc;

/// Body and send timeouts of a client session (the head has its own deadline).
fn apply_timeouts(session: &mut ServerSession, limits: &Limits) {
    session.set_read_timeout(Some(limits.body_read_timeout));
    session.set_write_timeout(Some(limits.send_timeout));
}

/// `limits.keepalive_timeout` in pingora's unit (whole seconds, at least one).
fn keepalive_secs(limits: &Limits) -> u64 {
    (limits.keepalive_timeout.as_millis().div_ceil(1000) as u64).max(1)
}

/// How many connections a front door lets be open at once.
#[derive(Debug, Clone, Copy)]
pub enum ConnLimit {
    /// `limits.max_connections`, else this default (derived from the open-file limit).
    Configured { default: u32 },
    /// A fixed number (the admin port).
    Fixed(u32),
}

/// The listening service's application: guards each connection, then lets the HTTP
/// application (`app`) serve its requests one by one (keep-alive and pipelining included).
pub struct FrontDoor<A> {
    proxy: Arc<A>,
    store: Store,
    conns: Arc<Conns>,
    limit: ConnLimit,
}

impl<A> FrontDoor<A> {
    pub fn new(app: A, store: Store, limit: ConnLimit) -> Self {
        FrontDoor {
            proxy: Arc::new(app),
            store,
            conns: Arc::default(),
            limit,
        }
    }
}

#[async_trait]
impl<A> ServerApp for FrontDoor<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let limits = self.store.load().config.limits;
        let max = match self.limit {
            ConnLimit::Configured { default } => {
                limits.max_connections.map_or(default, |m| m.get())
            }
            ConnLimit::Fixed(n) => n,
        };
        // Dropped when this connection ends, giving its place back.
        let Some(place) = self.conns.admit(max as usize) else {
            // Every open connection is busy with a request: this one is refused.
            log_summary::count(Failure::Refused);
            return None;
        };
        let mut guarded = GuardedStream::new(stream, limits, Some(Arc::clone(&place.slot)));

        let mut stop = shutdown.clone();
        let started = tokio::select! {
            biased;
            r = guarded.read_start() => r,
            _ = stop.wait_for(|s| *s) => return None,
        };
        match started {
            Ok(true) => {}
            _ => return None,
        }
        if guarded.is_h2_preface() {
            guarded.end_head();
            return ServerApp::process_new(&self.proxy, Box::new(guarded), shutdown).await;
        }

        let mut session = ServerSession::new_http1(Box::new(guarded));
        apply_timeouts(&mut session, &limits);
        session.set_keepalive(if *shutdown.borrow() {
            None
        } else {
            Some(keepalive_secs(&limits))
        });
        session.set_pipelining_enabled(true);
        let mut result = self.proxy.process_new_http(session, shutdown).await;
        while let Some((stream, settings)) = result.map(|r| r.consume()) {
            // Only GuardedStreams are handed to the proxy above.
            let Ok(guarded) = stream.into_any().downcast::<GuardedStream>() else {
                return None;
            };
            if !guarded.next_request() {
                // Unscanned bytes went through (a refused upgrade followed by more data).
                return None;
            }
            let stream: Stream = guarded;
            let mut session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
            apply_timeouts(&mut session, &limits);
            // pingora makes every HTTP/1.1 connection keep-alive without a timeout once it has
            // parsed a head; the wait for the next head gets limits.keepalive_timeout here.
            session.set_keepalive(if *shutdown.borrow() {
                None
            } else {
                Some(keepalive_secs(&limits))
            });
            result = self.proxy.process_new_http(session, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}
