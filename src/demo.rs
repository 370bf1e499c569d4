//! `switchyard demo`: three demo app servers, the proxy in front of them, and what to try.
//!
//! The app servers are child processes (`switchyard demo-app`, hidden), so each answers with
//! its own pid, like a Node.js cluster. They read their stdin and exit when it closes, so
//! they go away with the demo however it ends.

use crate::server::{self, Options};
use anyhow::{Context, bail};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const DEMO_APPS: [(&str, &str, u32); 3] = [
    ("app-1", "127.0.0.1:3001", 3),
    ("app-2", "127.0.0.1:3002", 3),
    ("app-3", "127.0.0.1:3003", 2),
];

/// The built-in demo configuration (also a readable example of the format).
pub fn demo_config() -> String {
    let servers: String = DEMO_APPS
        .iter()
        .map(|(_, addr, w)| format!("      - addr: \"{addr}\"\n        weight: {w}\n"))
        .collect();
    format!(
        r#"# switchyard demo configuration (written by `switchyard demo`)
listen: ["127.0.0.1:8080"]
admin:
  listen: "127.0.0.1:9901"
threads: 2
shutdown_grace: 5s
access_log: stdout
access_log_format: combined
upstreams:
  app:
    balance: least_conn
    servers:
{servers}    timeouts:
      connect: 5s
"#
    )
}

fn wait_for_port(addr: SocketAddr, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("demo app server on {addr} exited ({status}); is the port in use?");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("demo app server on {addr} did not start")
}

pub fn run_demo() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the switchyard executable")?;
    let mut children = Vec::new();
    for (name, addr, _) in DEMO_APPS {
        let child = Command::new(&exe)
            .args(["demo-app", "--listen", addr, "--name", name])
            .stdin(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start demo app {name}"))?;
        children.push(child);
    }
    for ((_, addr, _), child) in DEMO_APPS.iter().zip(children.iter_mut()) {
        let addr: SocketAddr = addr.parse()?;
        if let Err(e) = wait_for_port(addr, child) {
            for c in &mut children {
                let _ = c.kill();
            }
            return Err(e);
        }
    }

    let path = std::env::temp_dir().join(format!("switchyard-demo-{}.yaml", std::process::id()));
    std::fs::write(&path, demo_config()).context("cannot write the demo config")?;
    let apps: Vec<String> = DEMO_APPS
        .iter()
        .map(|(n, a, w)| format!("{n} on {a} (weight {w})"))
        .collect();
    eprintln!(
        r#"
switchyard demo
  app servers: {}
  proxy:       http://127.0.0.1:8080  (least_conn over the three)
  admin:       http://127.0.0.1:9901/status
  config:      {}

Try:
  curl -s http://127.0.0.1:8080/
  for i in $(seq 8); do curl -s http://127.0.0.1:8080/; echo; done
  curl -s http://127.0.0.1:9901/status
  switchyard check -c {}

Access log lines follow on stdout. Ctrl-C stops everything.
"#,
        apps.join(", "),
        path.display(),
        path.display()
    );
    // The children stay alive as long as this process: their stdin closes when it exits.
    let result = server::run(Options {
        config_path: &path,
        upgrade: false,
        listeners: Vec::new(),
        signals: true,
    });
    for c in &mut children {
        let _ = c.kill();
    }
    result
}

/// A demo app server: answers every request with `{"message","server","pid"}`.
///
/// A deliberately tiny HTTP/1.1 responder written by hand: it stands in for the user's app and
/// is not part of the proxy, so it carries no HTTP framework. It reads each request head,
/// skips a `Content-Length` body, and keeps the connection alive unless asked not to.
pub fn run_demo_app(listen: &str, name: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(listen))
        .with_context(|| format!("cannot listen on {listen}"))?;
    // Return (and exit) when the parent goes away: our stdin closes.
    let (gone, parent_gone) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        let _ = gone.send(());
    });
    let body = format!(
        "{{\"message\":\"Hello from {name}\",\"server\":\"{name}\",\"pid\":{}}}",
        std::process::id()
    );
    rt.block_on(async move {
        let serve = async {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let body = body.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(conn, body.as_bytes()).await;
                });
            }
        };
        tokio::select! {
            () = serve => {}
            _ = parent_gone => {}
        }
    });
    Ok(())
}

async fn serve_connection(mut conn: tokio::net::TcpStream, body: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        // Read one head.
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if buf.len() > 64 * 1024 {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(60), conn.read(&mut chunk))
                .await
                .map_err(|_| std::io::ErrorKind::TimedOut)??;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let content_length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let http10 = head
            .lines()
            .next()
            .is_some_and(|l| l.trim_end().ends_with("http/1.0"));
        let close = head.contains("\r\nconnection: close")
            || (http10 && !head.contains("\r\nconnection: keep-alive"));
        let head_only = head.starts_with("head ");
        // Skip the body.
        while buf.len() < head_end + content_length {
            let mut chunk = [0u8; 4096];
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..head_end + content_length);
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes();
        if !head_only {
            resp.extend_from_slice(body);
        }
        conn.write_all(&resp).await?;
        if close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_is_valid_and_matches_the_spec() {
        let c = crate::config::load_str(&demo_config(), "demo", "demo".into()).unwrap();
        assert_eq!(c.listeners[0].addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.admin_listen.to_string(), "127.0.0.1:9901");
        let weights: Vec<u32> = c.upstreams[0]
            .servers
            .iter()
            .map(|s| s.weight.get())
            .collect();
        assert_eq!(weights, vec![3, 3, 2]);
    }
}
