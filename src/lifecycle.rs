//! Process lifecycle: signals, and draining in-flight requests on `SIGTERM`.
//!
//! pingora's graceful shutdown stops the listeners and then always sleeps the whole grace
//! period before stopping its runtimes (which cancels whatever is still running). switchyard
//! keeps the count of requests in flight and exits as soon as it reaches zero, so a `SIGTERM`
//! with nothing in flight exits at once, and one with a slow request exits when it completes,
//! or after `shutdown_grace` at the latest (pingora's own path then ends the process).

use async_trait::async_trait;
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Requests in flight in this process (from a parsed head to the end of the response).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Counts one request in flight while it lives.
#[derive(Debug)]
pub struct ActiveRequest(());

impl ActiveRequest {
    pub fn start() -> ActiveRequest {
        ACTIVE.fetch_add(1, Ordering::AcqRel);
        ActiveRequest(())
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

pub fn active_requests() -> usize {
    ACTIVE.load(Ordering::Acquire)
}

/// Work to do right before the process exits (flushing the access log).
pub type ExitHook = Arc<dyn Fn() + Send + Sync>;

static EXIT_HOOKS: Mutex<Vec<ExitHook>> = Mutex::new(Vec::new());

pub fn on_exit(hook: ExitHook) {
    EXIT_HOOKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(hook);
}

/// Run the exit hooks, then exit with `code`.
pub fn exit(code: i32) -> ! {
    let hooks: Vec<ExitHook> = EXIT_HOOKS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for hook in hooks {
        hook();
    }
    std::process::exit(code)
}

/// pingora's signal source, with the switchyard drain on `SIGTERM`.
pub struct Signals {
    /// How long to let pingora stop its listeners before counting in-flight requests.
    settle: Duration,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            settle: Duration::from_millis(100),
        }
    }
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut quit), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::quit()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers; shutting down");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = quit.recv() => {
                tracing::info!("SIGQUIT: handing the listeners over to the new process");
                ShutdownSignal::GracefulUpgrade
            }
            _ = term.recv() => {
                tracing::info!(in_flight = active_requests(), "SIGTERM: no new connections; finishing requests in flight");
                let settle = self.settle;
                std::thread::spawn(move || {
                    std::thread::sleep(settle);
                    while active_requests() > 0 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    tracing::info!("all requests finished; exiting");
                    exit(0);
                });
                ShutdownSignal::GracefulTerminate
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: fast shutdown");
                ShutdownSignal::FastShutdown
            }
        }
    }
}
