//! What runs beside the proxy's services (see the notes of `server`): the shutdown signals
//! pingora waits on, the `lifecycle` background service's tasks, and the `signals` thread.

use super::Stop;
use crate::changes::{Change, Changes, Inbox};
use crate::lifecycle::Tally;
use crate::reload;
use crate::state::Store;
use async_trait::async_trait;
use pingora::server::{
    ShutdownSignal, ShutdownSignalWatch, ShutdownWatch, UnixShutdownSignalWatch,
};
use pingora::services::background::BackgroundService;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What the process's signals and [`Handle::stop`] ask of pingora, and the end of its grace
/// period as soon as no request is in flight (vendor patch 9).
pub(super) struct ShutdownSignals {
    pub(super) process: bool,
    pub(super) stop: watch::Receiver<Option<Stop>>,
    pub(super) tally: Arc<Tally>,
}

#[async_trait]
impl ShutdownSignalWatch for ShutdownSignals {
    async fn recv(&self) -> ShutdownSignal {
        let mut stop = self.stop.clone();
        let asked = async move {
            loop {
                if let Some(how) = *stop.borrow_and_update() {
                    return how;
                }
                if stop.changed().await.is_err() {
                    // The handle is gone without a word: only a signal stops it now.
                    std::future::pending::<()>().await;
                }
            }
        };
        let how = if self.process {
            tokio::select! {
                signal = UnixShutdownSignalWatch.recv() => return signal,
                how = asked => how,
            }
        } else {
            asked.await
        };
        match how {
            Stop::Graceful => ShutdownSignal::GracefulTerminate,
            Stop::Fast => ShutdownSignal::FastShutdown,
        }
    }

    fn grace_period(
        &self,
        grace: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        let tally = Arc::clone(&self.tally);
        Box::pin(async move {
            tally.drained(grace).await;
        })
    }
}

/// The server's own tasks (see the module's notes), on the `lifecycle` service's runtime.
pub(super) struct Lifecycle {
    pub(super) parts: Mutex<Option<(reload::Writer, Inbox, Option<reload::Watching>)>>,
    pub(super) tally: Arc<Tally>,
}

#[async_trait]
impl BackgroundService for Lifecycle {
    async fn start(&self, shutdown: ShutdownWatch) {
        let parts = self.parts.lock().map(|mut p| p.take()).ok().flatten();
        let Some((writer, inbox, watching)) = parts else {
            return;
        };
        let watch = async {
            if let Some(w) = watching {
                w.run(shutdown.clone()).await;
            }
        };
        tokio::join!(
            writer.run(inbox, shutdown.clone()),
            watch,
            self.tally.failures.write_every_interval(shutdown.clone()),
        );
    }
}

/// `SIGHUP`: ask the state's writer for a reload; `SIGUSR1`: reopen the access log (nginx's
/// `-s reopen`, for logrotate). On the thread `signals`, with a runtime of its own, so the
/// streams exist before the listeners serve; it ends when the server is asked to stop.
pub(super) fn handle_signals(
    changes: Changes,
    store: Store,
    mut stop: watch::Receiver<Option<Stop>>,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (mut hup, mut usr1) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::hangup())?,
            signal(SignalKind::user_defined1())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    tokio::select! {
                        Some(()) = hup.recv() => changes.send(Change::Reload { trigger: "SIGHUP" }),
                        Some(()) = usr1.recv() => {
                            tracing::info!("SIGUSR1: reopening the access log");
                            store.load().access_log.reopen();
                        }
                        _ = stop.changed() => return,
                        else => return,
                    }
                }
            })
        })?;
    Ok(())
}
