//! What changes the live state, and who asks for it.
//!
//! One writer owns the live [`Store`](crate::state::Store): the reload writer
//! (`reload::Writer`), a task of the server's. Every source of change sends it a [`Change`]:
//! `SIGHUP` and `POST /reload` ask for a reload, the file watcher says the config or a file it
//! reads was touched, DNS discovery says an entry's answer changed. The writer applies them one
//! at a time, in the order sent, through the one build path (`state::build`/`state::refresh`),
//! and answers whoever asked. Nothing else stores into the `Store`; the senders only read it.
//!
//! This module is a leaf (it names no other module of the crate), so the sources (`discovery`,
//! `admin`, `server`'s signal thread) and the writer (`reload`) depend on it and not on each other.

use tokio::sync::mpsc;

/// Why a reload did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadRejected {
    /// One line per problem; config errors carry `file:line:col`.
    pub errors: Vec<String>,
}

/// The result of a change: the generation now live, or why nothing changed.
pub type Outcome = Result<u64, ReloadRejected>;

/// A change to the live state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Read the config file again and rebuild (`SIGHUP`, `POST /reload`); `trigger` is logged.
    Reload { trigger: &'static str },
    /// The config file or a file it reads was touched (the watcher): reload if what they hold
    /// changed, only while the running config says `watch: true`.
    FilesTouched,
    /// DNS gave an entry a new set of servers: rebuild the pools with the same config.
    DnsAnswers,
}

type Reply = tokio::sync::oneshot::Sender<Outcome>;

/// The sending side, cloned by every source.
#[derive(Debug, Clone)]
pub struct Changes(mpsc::UnboundedSender<(Change, Option<Reply>)>);

/// The writer's side.
#[derive(Debug)]
pub struct Inbox(mpsc::UnboundedReceiver<(Change, Option<Reply>)>);

/// A new channel of changes.
pub fn channel() -> (Changes, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Changes(tx), Inbox(rx))
}

/// What a source gets when the writer is gone (the server is stopping).
fn stopped() -> ReloadRejected {
    ReloadRejected {
        errors: vec!["switchyard is stopping; nothing was reloaded".to_string()],
    }
}

impl Changes {
    /// Send `change` without waiting for it to be applied.
    pub fn send(&self, change: Change) {
        let _ = self.0.send((change, None));
    }

    /// Send `change` and wait until it is applied.
    pub async fn ask(&self, change: Change) -> Outcome {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.0.send((change, Some(tx))).is_err() {
            return Err(stopped());
        }
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }
}

impl Inbox {
    /// The next change, and who waits for its outcome; `None` once every sender is gone.
    pub async fn next(&mut self) -> Option<(Change, Answer)> {
        let (change, reply) = self.0.recv().await?;
        Some((change, Answer(reply)))
    }
}

/// Where the outcome of one change goes (nowhere when it was only sent).
#[derive(Debug)]
pub struct Answer(Option<Reply>);

impl Answer {
    pub fn give(self, outcome: Outcome) {
        if let Some(r) = self.0 {
            let _ = r.send(outcome);
        }
    }
}
