//! Test support: mock upstream servers, a raw HTTP/1.1 client, and a switchyard process.
//!
//! Everything binds to 127.0.0.1 port 0 (or ports just found free), runs in bounded time and
//! stops by itself: mocks stop when dropped, the proxy process is killed when dropped.

#![allow(dead_code)]

pub mod dns;
pub mod tls;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Mock upstreams

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub version: String,
    /// Header names lower-cased, in order, repeated names kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// 1 for the first request on its connection, 2 for the next, …
    pub on_connection: usize,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What a mock does with a request.
pub enum Action {
    /// Answer with this status, extra headers and body, after an optional delay.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        delay: Duration,
    },
    /// Read the request, then say nothing for this long, then close.
    Hang(Duration),
    /// Close the connection without answering.
    Close,
    /// Answer `101 Switching Protocols` and echo every byte back afterwards.
    UpgradeEcho,
    /// Write these bytes as they are, then close.
    Raw(Vec<u8>),
}

impl Action {
    pub fn ok(body: &str) -> Action {
        Action::Respond {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16) -> Action {
        Action::Respond {
            status,
            headers: vec![],
            body: format!("status {status}").into_bytes(),
            delay: Duration::ZERO,
        }
    }

    pub fn slow(body: &str, delay: Duration) -> Action {
        Action::Respond {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
            delay,
        }
    }
}

type Handler = dyn Fn(&Seen) -> Action + Send + Sync;

/// A mock upstream HTTP/1.1 server on 127.0.0.1, one thread per connection, keep-alive.
pub struct Mock {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    /// Every accepted connection, so `kill` can close them all.
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Mock {
    /// A server that answers 200 with its name as the body.
    pub fn named(name: &str) -> Mock {
        let name = name.to_string();
        Mock::start(move |_| Action::ok(&name))
    }

    pub fn start(handler: impl Fn(&Seen) -> Action + Send + Sync + 'static) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock");
        Mock::serve(listener, Arc::new(handler))
    }

    /// Start on a specific address (to bring a "killed" server back on its port).
    pub fn start_on(
        addr: SocketAddr,
        handler: impl Fn(&Seen) -> Action + Send + Sync + 'static,
    ) -> Mock {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match TcpListener::bind(addr) {
                Ok(l) => return Mock::serve(l, Arc::new(handler)),
                Err(e) if Instant::now() > deadline => panic!("cannot bind {addr}: {e}"),
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn serve(listener: TcpListener, handler: Arc<Handler>) -> Mock {
        let addr = listener.local_addr().expect("mock addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (seen2, stop2, conns2, open2) = (
            seen.clone(),
            stop.clone(),
            connections.clone(),
            open.clone(),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                {
                    // Checked under the same lock `kill` takes, so no connection accepted
                    // around a kill escapes being closed.
                    let mut open = open2.lock().unwrap();
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(c) = conn.try_clone() {
                        open.push(c);
                    }
                }
                conns2.fetch_add(1, Ordering::SeqCst);
                let (seen, handler, stop) = (seen2.clone(), handler.clone(), stop2.clone());
                thread::spawn(move || serve_conn(conn, &seen, &*handler, &stop));
            }
        });
        Mock {
            addr,
            seen,
            connections,
            stop,
            open,
        }
    }

    /// Die like a killed process: stop listening and close every connection.
    pub fn kill(&self) {
        {
            let mut open = self.open.lock().unwrap();
            self.stop.store(true, Ordering::SeqCst);
            for c in open.drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
        // Wake the accept loop so it sees the flag and closes the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }

    /// Requests seen whose target starts with `prefix`.
    pub fn hits_on(&self, prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.target.starts_with(prefix))
            .count()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Read one request (head and body) from a buffered reader; `None` at a clean end of stream.
pub fn read_request(r: &mut impl BufRead) -> Option<Seen> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let version = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut seen = Seen {
        method,
        target,
        version,
        headers,
        body: Vec::new(),
        on_connection: 0,
    };
    if seen
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            seen.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = seen
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        let mut body = vec![0; n];
        r.read_exact(&mut body).ok()?;
        seen.body = body;
    }
    Some(seen)
}

fn serve_conn(conn: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut w = write_half;
    let mut r = BufReader::new(conn);
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let Some(mut req) = read_request(&mut r) else {
            return;
        };
        n += 1;
        req.on_connection = n;
        seen.lock().unwrap().push(req.clone());
        match handler(&req) {
            Action::Respond {
                status,
                headers,
                body,
                delay,
            } => {
                thread::sleep(delay);
                let mut resp = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in headers {
                    resp.push_str(&format!("{k}: {v}\r\n"));
                }
                resp.push_str("\r\n");
                let mut bytes = resp.into_bytes();
                if req.method != "HEAD" {
                    bytes.extend_from_slice(&body);
                }
                if w.write_all(&bytes).is_err() {
                    return;
                }
            }
            Action::Hang(d) => {
                thread::sleep(d);
                return;
            }
            Action::Close => {
                let _ = w.shutdown(Shutdown::Both);
                return;
            }
            Action::Raw(bytes) => {
                let _ = w.write_all(&bytes);
                let _ = w.shutdown(Shutdown::Write);
                thread::sleep(Duration::from_millis(50));
                return;
            }
            Action::UpgradeEcho => {
                let protocol = req.header("upgrade").unwrap_or("websocket").to_string();
                let _ = w.write_all(
                    format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\n\r\n")
                        .as_bytes(),
                );
                let mut buf = [0u8; 1024];
                loop {
                    match r.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if w.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An address on which nothing listens (connections are refused).
pub fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

// ---------------------------------------------------------------------------------------------
// Client

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parse a complete response (the connection was closed after it).
pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(
                std::str::from_utf8(&rest[..pos])
                    .ok()?
                    .split(';')
                    .next()?
                    .trim(),
                16,
            )
            .ok()?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(rest.get(pos + 2..pos + 2 + n)?);
            rest = rest.get(pos + 4 + n..)?;
        }
        body = out;
    } else if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(n);
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

/// Read for up to 3 s: the first response's status, whether the peer closed, and the bytes.
pub fn read_answer(s: &mut impl Read) -> (Option<u16>, bool, Vec<u8>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let mut closed = false;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    let status = std::str::from_utf8(&out)
        .ok()
        .and_then(|t| t.strip_prefix("HTTP/1.1 "))
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok());
    (status, closed, out)
}

/// Send raw bytes and read until the server closes or `timeout` passes.
pub fn raw(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect to proxy");
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(bytes).expect("send");
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// One request on its own connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str("Host: test.local\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let raw = raw(addr, &bytes, Duration::from_secs(20));
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "no parsable response to {method} {path}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// One request on a kept-alive connection; reads its answer (which must have a
/// `Content-Length`) and leaves the connection open.
pub fn request_on(
    s: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test.local\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&bytes).expect("send");
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n")
            && let Some(r) = parse_response(&out)
        {
            let len = r
                .header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .expect("a Content-Length");
            if out.len() >= end + 4 + len {
                return r;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => panic!("connection ended: {:?}", String::from_utf8_lossy(&out)),
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

// ---------------------------------------------------------------------------------------------
// The proxy under test

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A switchyard under test: in this process (`Proxy::start`, a `switchyard::server` on
/// listeners bound here to port 0), or a process of its own (`Proxy::spawn`) where a test needs
/// what only a process has: signals, its exit, its stderr and stdout, its memory and files.
pub struct Proxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The address of `{listen2}`, when the config has one (in-process only).
    pub addr2: Option<SocketAddr>,
    run: Run,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

enum Run {
    Process(Child),
    InProcess(Option<switchyard::server::Handle>),
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_switchyard")
}

fn bind_loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

impl Proxy {
    /// Start switchyard in this process with `config`, in which `{listen}` and `{admin}` are
    /// replaced by loopback addresses bound here (port 0, so no other test can take them).
    /// Without an `access_log` line the access log is off (stdout is the test runner's).
    pub fn start(config: &str) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let (listen, admin) = (bind_loopback(), bind_loopback());
        let (addr, admin_addr) = (listen.local_addr().unwrap(), admin.local_addr().unwrap());
        let mut listeners = vec![listen, admin];
        let mut addr2 = None;
        let mut text = config
            .replace("{listen}", &addr.to_string())
            .replace("{admin}", &admin_addr.to_string());
        if text.contains("{listen2}") {
            let second = bind_loopback();
            let a = second.local_addr().unwrap();
            text = text.replace("{listen2}", &a.to_string());
            listeners.push(second);
            addr2 = Some(a);
        }
        if !text.contains("access_log") {
            text.push_str("\naccess_log: off\n");
        }
        let config_path = dir.path().join("switchyard.yaml");
        std::fs::write(&config_path, text).unwrap();
        let handle = switchyard::server::start(switchyard::server::Options {
            config_path: &config_path,
            upgrade: false,
            listeners,
            signals: false,
        })
        .unwrap_or_else(|e| panic!("switchyard did not start: {e:#}"));
        let p = Proxy {
            addr,
            admin: admin_addr,
            addr2,
            run: Run::InProcess(Some(handle)),
            dir,
            config_path,
        };
        // The sockets accept at once; wait until the services serve them.
        wait_until("the admin port answers", Duration::from_secs(15), || {
            request_within(p.admin, "/healthz", Duration::from_secs(1))
                .is_some_and(|r| r.status == 200)
        });
        p
    }

    /// The in-process server's handle (`None` for a process, or once stopped).
    pub fn handle(&self) -> Option<&switchyard::server::Handle> {
        match &self.run {
            Run::InProcess(h) => h.as_ref(),
            Run::Process(_) => None,
        }
    }

    /// Stop the in-process server gracefully and wait until it has stopped; `false` if that
    /// took longer than `timeout`.
    pub fn stop_gracefully(&mut self, timeout: Duration) -> bool {
        let Run::InProcess(h) = &mut self.run else {
            panic!("stop_gracefully is for in-process servers; signal a spawned one");
        };
        let Some(handle) = h.take() else { return true };
        handle.stop(switchyard::server::Stop::Graceful);
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            handle.wait();
            let _ = tx.send(());
        });
        rx.recv_timeout(timeout).is_ok()
    }

    /// Start switchyard as a process of its own with `config`, in which `{listen}` and
    /// `{admin}` are replaced by free loopback addresses. Waits until both listeners answer.
    pub fn spawn(config: &str) -> Proxy {
        Proxy::start_with_open_files(config, None)
    }

    /// [`Proxy::spawn`] with the process's open-file limit (soft and hard) set to `limit`.
    pub fn start_with_open_files(config: &str, limit: Option<u64>) -> Proxy {
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let listen = format!("127.0.0.1:{}", free_port());
            let admin = format!("127.0.0.1:{}", free_port());
            let text = config
                .replace("{listen}", &listen)
                .replace("{admin}", &admin);
            let config_path = dir.path().join("switchyard.yaml");
            std::fs::write(&config_path, text).unwrap();
            let stdout = std::fs::File::create(dir.path().join("stdout.log")).unwrap();
            let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
            let mut cmd = Command::new(binary());
            cmd.arg("-c")
                .arg(&config_path)
                // The default log filter, whatever the environment running the tests has.
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr);
            if let Some(n) = limit {
                use std::os::unix::process::CommandExt;
                // SAFETY: setrlimit is async-signal-safe and touches only this struct.
                unsafe {
                    cmd.pre_exec(move || {
                        let lim = libc::rlimit {
                            rlim_cur: n,
                            rlim_max: n,
                        };
                        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            let child = cmd.spawn().expect("start switchyard");
            let mut p = Proxy {
                addr: listen.parse().unwrap(),
                admin: admin.parse().unwrap(),
                addr2: None,
                run: Run::Process(child),
                dir,
                config_path,
            };
            if p.wait_ready(Duration::from_secs(15)) {
                return p;
            }
            eprintln!("switchyard did not start, retrying:\n{}", p.stderr());
        }
        panic!("switchyard did not start");
    }

    /// The process of a spawned switchyard.
    pub fn child(&mut self) -> &mut Child {
        match &mut self.run {
            Run::Process(c) => c,
            Run::InProcess(_) => panic!("an in-process server has no process: use Proxy::spawn"),
        }
    }

    pub fn pid(&self) -> u32 {
        match &self.run {
            Run::Process(c) => c.id(),
            Run::InProcess(_) => panic!("an in-process server has no process: use Proxy::spawn"),
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child().try_wait() {
                return false;
            }
            let admin_ok =
                TcpStream::connect_timeout(&self.admin, Duration::from_millis(200)).is_ok();
            let proxy_ok =
                TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok();
            if admin_ok && proxy_ok {
                return true;
            }
            thread::sleep(Duration::from_millis(30));
        }
        false
    }

    /// A spawned switchyard's stderr so far (an in-process one logs nowhere).
    pub fn stderr(&self) -> String {
        if let Run::InProcess(_) = self.run {
            return "(an in-process server: no stderr; use Proxy::spawn)".to_string();
        }
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// A spawned switchyard's stdout so far.
    pub fn stdout(&self) -> String {
        self.pid();
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for the process to exit; `None` if it did not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child().try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn status_json(&self) -> serde_json::Value {
        let r = get(self.admin, "/status");
        assert_eq!(r.status, 200);
        serde_json::from_slice(&r.body).expect("status is JSON")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        match &mut self.run {
            Run::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            // Dropping the handle stops the server and waits for it.
            Run::InProcess(handle) => drop(handle.take()),
        }
    }
}

/// Count bodies: how many responses said each thing.
pub fn tally(bodies: impl IntoIterator<Item = String>) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for b in bodies {
        *m.entry(b).or_insert(0) += 1;
    }
    m
}

/// Poll `cond` until it holds; fail the test naming `what` if it does not within `within`.
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// `GET path` on its own connection, answered within `timeout`; `None` when no parsable
/// answer came (refused, reset, or too late).
pub fn request_within(addr: SocketAddr, path: &str, timeout: Duration) -> Option<Response> {
    let mut s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out)
}

/// Raise this test process's soft open-file limit to its hard limit; returns the limit.
pub fn raise_own_open_file_limit() -> u64 {
    switchyard::raise_open_file_limit()
}

/// The value of the first `/metrics` line starting with `series` (0 when absent).
pub fn metric(p: &Proxy, series: &str) -> f64 {
    get(p.admin, "/metrics")
        .text()
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .map(|v| v.trim().parse().unwrap_or(-1.0))
        })
        .unwrap_or(0.0)
}

/// `switchyard check` of a config file: whether it passed, and what it printed on stderr.
pub fn check_file(path: &std::path::Path) -> (bool, String) {
    let out = Command::new(binary())
        .args(["check", "-c"])
        .arg(path)
        .output()
        .expect("run switchyard check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `switchyard check` of `text` written as `name` in a scratch directory: the errors printed
/// (the check must fail).
pub fn check_errors(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().expect("scratch dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write config");
    let (ok, err) = check_file(&path);
    assert!(!ok, "{name} passed check");
    err
}
