//! Process lifecycle: draining requests in flight on shutdown, `SIGHUP`, exit hooks.
//!
//! pingora handles `SIGTERM` (graceful), `SIGINT` (fast) and `SIGQUIT` (upgrade). After a
//! graceful stop of the listeners it always sleeps the whole grace period before stopping its
//! runtimes (which cancels whatever still runs). switchyard keeps the count of requests in
//! flight and exits as soon as it reaches zero, so a `SIGTERM` with nothing in flight exits at
//! once and one with a slow request exits when that completes, or after `shutdown_grace` at the
//! latest (pingora's own path then ends the process).

use crate::changes::{Change, Changes};
use crate::upstream::shard::Count;
use pingora::server::ExecutionPhase;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Requests in flight in this process (from a parsed head to the end of the response), counted
/// per thread (every request writes it; the drain check reads it).
static ACTIVE: Count = Count::new();

/// Counts one request in flight while it lives.
#[derive(Debug)]
pub struct ActiveRequest(());

impl ActiveRequest {
    pub fn start() -> ActiveRequest {
        ACTIVE.add(1);
        ActiveRequest(())
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        ACTIVE.add(-1);
    }
}

pub fn active_requests() -> usize {
    usize::try_from(ACTIVE.sum()).unwrap_or(0)
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

/// After a graceful shutdown (`SIGTERM`) or upgrade (`SIGQUIT`) has stopped the listeners,
/// exit as soon as no request is in flight instead of sleeping out the grace period.
pub fn exit_when_drained(mut phases: tokio::sync::broadcast::Receiver<ExecutionPhase>) {
    std::thread::Builder::new()
        .name("drain".into())
        .spawn(move || {
            loop {
                match phases.blocking_recv() {
                    Ok(ExecutionPhase::ShutdownGracePeriod) => break,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
            tracing::info!(
                in_flight = active_requests(),
                "listeners closed; finishing the requests in flight"
            );
            // The count is summed over per-thread slots, so one read can miss a request that
            // starts on one thread while another ends on a second; two zero reads 20 ms apart
            // cannot both miss it.
            loop {
                std::thread::sleep(Duration::from_millis(20));
                if active_requests() == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                    if active_requests() == 0 {
                        break;
                    }
                }
            }
            tracing::info!("all requests finished; exiting");
            exit(0);
        })
        .ok();
}

/// `SIGHUP`: ask the state's writer for a reload; `SIGUSR1`: reopen the access log (nginx's
/// `-s reopen`, for logrotate). One thread, `signals`, with a runtime of its own, so the signal
/// streams exist before the proxy's runtimes start and a reopen never waits on a busy worker.
pub fn handle_signals(changes: Changes, store: crate::state::Store) -> std::io::Result<()> {
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
                        else => return,
                    }
                }
            })
        })?;
    Ok(())
}
