//! The access log: one line per request, `json` or nginx `combined`, to stdout or a file.
//!
//! Lines are formatted on the worker thread into a thread-local buffer and handed to a
//! `tracing-appender` non-blocking writer, whose own thread does the (possibly slow) write, so a
//! slow disk or pipe never stalls request handling. Lines are not dropped when that thread falls
//! behind: the worker then waits, like nginx does on a full disk.
//!
//! A log file can be reopened ([`AccessLogger::reopen`]: `SIGUSR1`, and every reload), as
//! nginx's `-s reopen`, so logrotate can move it away without `copytruncate`: the writer
//! thread reopens the path before its next write.

use crate::config::{AccessLog, LogFormat};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::cell::RefCell;
use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

/// What one access log line says about a request.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    #[serde(skip)]
    pub time: SystemTime,
    pub client: Option<IpAddr>,
    pub method: &'a str,
    pub path: &'a str,
    #[serde(skip)]
    pub version: &'a str,
    pub status: u16,
    /// Bytes of response body sent to the client.
    pub bytes: usize,
    /// The pool that served it; empty when no route matched.
    pub upstream: &'a str,
    /// The server (configured `addr`) of the last attempt, if any.
    pub server: Option<&'a str>,
    pub attempts: u32,
    #[serde(skip)]
    pub duration: Duration,
    pub request_id: Option<&'a str>,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// The client's protocol: `http/1.1` (HTTP/1.0 included) or `h2`.
    pub protocol: &'a str,
    /// The TLS version of the client connection (`TLSv1.3`); `None` on plain HTTP.
    pub tls: Option<&'a str>,
    /// The route taken (its name); `None` when no route matched.
    pub route: Option<&'a str>,
    /// Why the route refused the request: `denied`, `rate_limited`, `body_too_large`.
    pub rejected: Option<&'a str>,
}

/// Fields that need formatting before serialization in the JSON format.
#[derive(Serialize)]
struct JsonLine<'a> {
    time: String,
    #[serde(flatten)]
    entry: &'a Entry<'a>,
    duration_ms: f64,
}

pub struct AccessLogger {
    target: AccessLog,
    format: LogFormat,
    writer: Option<NonBlocking>,
    /// Bumped to ask the writer thread to reopen the file.
    reopen: Arc<AtomicU64>,
    /// Dropping the guard flushes the writer thread; taken by [`AccessLogger::shutdown`].
    guard: Mutex<Option<WorkerGuard>>,
}

impl std::fmt::Debug for AccessLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLogger")
            .field("target", &self.target)
            .field("format", &self.format)
            .finish()
    }
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

impl AccessLogger {
    /// Open the log. A file is opened for appending (created if missing).
    pub fn open(target: &AccessLog, format: LogFormat) -> std::io::Result<AccessLogger> {
        let reopen = Arc::new(AtomicU64::new(0));
        let builder = || {
            NonBlockingBuilder::default()
                .lossy(false)
                .thread_name("access-log")
        };
        let (writer, guard) = match target {
            AccessLog::Off => (None, None),
            AccessLog::Stdout => {
                let (w, g) = builder().finish(std::io::stdout());
                (Some(w), Some(g))
            }
            AccessLog::File(path) => {
                let file = LogFile::open(path, Arc::clone(&reopen))?;
                let (w, g) = builder().finish(file);
                (Some(w), Some(g))
            }
        };
        Ok(AccessLogger {
            target: target.clone(),
            format,
            writer,
            reopen,
            guard: Mutex::new(guard),
        })
    }

    pub fn off() -> AccessLogger {
        AccessLogger {
            target: AccessLog::Off,
            format: LogFormat::Json,
            writer: None,
            reopen: Arc::default(),
            guard: Mutex::new(None),
        }
    }

    /// Reopen the log file (after logrotate moved it): the next line goes to a file at the
    /// configured path, created if missing. Nothing to do for stdout or `off`.
    pub fn reopen(&self) {
        self.reopen.fetch_add(1, Ordering::Relaxed);
    }

    pub fn is_on(&self) -> bool {
        self.writer.is_some()
    }

    /// Whether this logger already writes `target` in `format` (a reload then keeps it).
    pub fn matches(&self, target: &AccessLog, format: LogFormat) -> bool {
        &self.target == target && self.format == format
    }

    pub fn log(&self, e: &Entry<'_>) {
        let Some(writer) = &self.writer else {
            return;
        };
        LINE.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            match self.format {
                LogFormat::Json => format_json(&mut buf, e),
                LogFormat::Combined => format_combined(&mut buf, e),
            }
            buf.push(b'\n');
            // The writer clones cheaply (a channel sender); errors mean the log thread is gone
            // (shutting down), and a log line is not worth failing a request for.
            let _ = writer.clone().write_all(&buf);
        });
    }

    /// Flush what is queued and stop the writer thread (before the process exits).
    pub fn shutdown(&self) {
        let guard = self.guard.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(guard);
    }
}

/// The log file as the writer thread holds it: reopened at its path before the next write
/// whenever [`AccessLogger::reopen`] was called.
struct LogFile {
    path: PathBuf,
    file: File,
    reopen: Arc<AtomicU64>,
    opened_at: u64,
}

impl LogFile {
    fn open(path: &Path, reopen: Arc<AtomicU64>) -> std::io::Result<LogFile> {
        Ok(LogFile {
            path: path.to_path_buf(),
            file: append(path)?,
            opened_at: reopen.load(Ordering::Relaxed),
            reopen,
        })
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let wanted = self.reopen.load(Ordering::Relaxed);
        if wanted != self.opened_at {
            self.opened_at = wanted;
            match append(&self.path) {
                Ok(f) => self.file = f,
                // Keep writing to the old file rather than lose lines; say so once.
                Err(e) => tracing::error!(
                    path = %self.path.display(),
                    "cannot reopen the access log ({e}); still writing to the old file"
                ),
            }
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

fn format_json(buf: &mut Vec<u8>, e: &Entry<'_>) {
    let time: DateTime<Utc> = e.time.into();
    let line = JsonLine {
        time: time.to_rfc3339_opts(SecondsFormat::Millis, true),
        entry: e,
        duration_ms: (e.duration.as_secs_f64() * 1e6).round() / 1e3,
    };
    // Serializing plain strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &line);
}

/// nginx `combined`, then the proxy's own fields as `key=value`:
/// `client - - [time] "METHOD path VERSION" status bytes "referer" "user-agent" upstream=.. server=.. attempts=.. duration_ms=.. request_id=.. protocol=.. tls=.. route=.. rejected=..`
fn format_combined(buf: &mut Vec<u8>, e: &Entry<'_>) {
    let time: DateTime<Utc> = e.time.into();
    let client = e.client.map_or_else(|| "-".to_string(), |c| c.to_string());
    let _ = write!(
        buf,
        "{client} - - [{}] \"{} ",
        time.format("%d/%b/%Y:%H:%M:%S %z"),
        e.method
    );
    escape_into(buf, e.path);
    let _ = write!(buf, " {}\" {} {} \"", e.version, e.status, e.bytes);
    escape_into(buf, e.referer.unwrap_or("-"));
    buf.extend_from_slice(b"\" \"");
    escape_into(buf, e.user_agent.unwrap_or("-"));
    let _ = write!(
        buf,
        "\" upstream={} server={} attempts={} duration_ms={:.3} request_id=",
        if e.upstream.is_empty() {
            "-"
        } else {
            e.upstream
        },
        e.server.unwrap_or("-"),
        e.attempts,
        e.duration.as_secs_f64() * 1e3,
    );
    escape_into(buf, e.request_id.unwrap_or("-"));
    let _ = write!(
        buf,
        " protocol={} tls={} route=",
        e.protocol,
        e.tls.unwrap_or("-")
    );
    escape_into(buf, e.route.unwrap_or("-"));
    let _ = write!(buf, " rejected={}", e.rejected.unwrap_or("-"));
}

/// Like nginx: `"`, `\` and bytes outside printable ASCII become `\xHH`.
fn escape_into(buf: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(buf, "\\x{b:02X}");
        } else {
            buf.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            client: Some("10.1.2.3".parse().unwrap()),
            method: "GET",
            path: "/a \"b\"?q=1",
            version: "HTTP/1.1",
            status: 200,
            bytes: 42,
            upstream: "app",
            server: Some("127.0.0.1:3001"),
            attempts: 1,
            duration: Duration::from_micros(1500),
            request_id: Some("abc"),
            referer: None,
            user_agent: Some("curl/8"),
            protocol: "http/1.1",
            tls: None,
            route: Some("api"),
            rejected: None,
        }
    }

    #[test]
    fn json_line_has_every_field() {
        let mut buf = Vec::new();
        format_json(&mut buf, &entry());
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["time"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["client"], "10.1.2.3");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/a \"b\"?q=1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["upstream"], "app");
        assert_eq!(v["server"], "127.0.0.1:3001");
        assert_eq!(v["attempts"], 1);
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["request_id"], "abc");
        assert_eq!(v["protocol"], "http/1.1");
        assert_eq!(v["tls"], serde_json::Value::Null);
        assert_eq!(v["route"], "api");
        assert_eq!(v["rejected"], serde_json::Value::Null);
    }

    #[test]
    fn combined_line_is_nginx_compatible_and_escaped() {
        let mut buf = Vec::new();
        format_combined(&mut buf, &entry());
        let line = String::from_utf8(buf).unwrap();
        assert_eq!(
            line,
            "10.1.2.3 - - [14/Nov/2023:22:13:20 +0000] \"GET /a \\x22b\\x22?q=1 HTTP/1.1\" 200 42 \"-\" \"curl/8\" upstream=app server=127.0.0.1:3001 attempts=1 duration_ms=1.500 request_id=abc protocol=http/1.1 tls=- route=api rejected=-"
        );
    }
}
