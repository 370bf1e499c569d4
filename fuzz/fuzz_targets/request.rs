//! Mutated request bytes thrown at a running switchyard on loopback. The proxy (in this
//! process, with an upstream that answers every request) must never panic and must keep
//! answering a well-formed request. A panic on any thread aborts the process, which libFuzzer
//! reports as a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static PROXY: OnceLock<SocketAddr> = OnceLock::new();
static RUNS: AtomicU64 = AtomicU64::new(0);

/// An upstream that answers each request head with a short 200 and closes.
fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = listener.local_addr().expect("upstream address");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 1 << 20 {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    addr
}

fn proxy() -> SocketAddr {
    *PROXY.get_or_init(|| {
        // As the switchyard binary does (Rust's runtime, before `main`): a write to a
        // connection the peer already closed is an error, not a fatal SIGPIPE. libFuzzer's own
        // `main` leaves SIGPIPE fatal, and pingora writes with `writev`, which cannot ask for
        // MSG_NOSIGNAL, so a fuzz input closing early could otherwise kill the whole run.
        // SAFETY: setting a signal's disposition to "ignore" before any thread of ours starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        std::panic::set_hook(Box::new(|info| {
            eprintln!("panic: {info}");
            std::process::abort();
        }));
        let up = upstream();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let listen: SocketAddr = listener.local_addr().expect("address");
        let admin_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let admin = admin_listener.local_addr().expect("address");
        let dir = std::env::temp_dir().join(format!("switchyard-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("switchyard.yaml");
        std::fs::write(
            &path,
            format!(
                "listen: [\"{listen}\"]\nadmin: {{listen: \"{admin}\"}}\nthreads: 1\naccess_log: off\nwatch: false\nlimits: {{header_read_timeout: 1s, body_read_timeout: 1s}}\nupstreams:\n  app:\n    servers: [{{addr: \"{up}\"}}]\n"
            ),
        )
        .expect("write config");
        let server = switchyard::server::start(switchyard::server::Options {
            config_path: &path,
            upgrade: false,
            listeners: vec![listener, admin_listener],
            signals: false,
        })
        .expect("switchyard starts");
        // Serves for the whole fuzzing run: never stopped.
        std::mem::forget(server);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(listen).is_err() {
            assert!(Instant::now() < deadline, "switchyard did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        listen
    })
}

/// Send `data`; `half_close` then signals the end of input (pingora treats a client that
/// half-closes as gone, so the liveness probe keeps its side open).
fn exchange(addr: SocketAddr, data: &[u8], timeout: Duration, half_close: bool) -> Vec<u8> {
    let Ok(mut s) = TcpStream::connect(addr) else {
        panic!("switchyard stopped accepting connections");
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.write_all(data);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while out.len() < 1 << 16 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let addr = proxy();
    let _ = exchange(addr, data, Duration::from_millis(300), true);
    // Now and then, make sure it still serves.
    if RUNS.fetch_add(1, Ordering::Relaxed) % 64 == 0 {
        let out = exchange(
            addr,
            b"GET / HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
            false,
        );
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "a good request failed: {:?}",
            String::from_utf8_lossy(&out)
        );
    }
});
