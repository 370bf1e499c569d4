//! The graceful upgrade: a second process started with `--upgrade` takes over the listening
//! sockets when the first gets `SIGQUIT`; clients see no error.

use crate::support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use support::{Mock, Proxy, get};

#[test]
fn requests_in_a_loop_see_no_error_during_an_upgrade() {
    let mock = Mock::named("ok");
    let mut old = Proxy::spawn(&format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\naccess_log: off\nshutdown_grace: 10s\nupstreams:\n  app: {{servers: [{{addr: \"{}\"}}]}}\n",
        mock.addr
    ));
    let addr = old.addr;
    let done = Arc::new(AtomicBool::new(false));
    let d = Arc::clone(&done);
    let client = thread::spawn(move || {
        let mut statuses = Vec::new();
        while !d.load(Ordering::SeqCst) {
            statuses.push(get(addr, "/").status);
        }
        statuses
    });

    // The new process waits for the sockets on the upgrade socket...
    let new_err = old.dir.path().join("new-stderr.log");
    let mut new = Command::new(support::binary())
        .args(["-c"])
        .arg(&old.config_path)
        .arg("--upgrade")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&new_err).unwrap())
        .spawn()
        .unwrap();
    // ...which the old one sends on SIGQUIT, then stops accepting and drains. pingora's old
    // process retries the hand-over for 5 s until the new one listens, so no wait is needed.
    old.signal("QUIT");
    let exited = old.wait_exit(Duration::from_secs(15));
    let served_after = {
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_millis(500) {
            assert_eq!(get(addr, "/").status, 200, "the new process does not serve");
            n += 1;
        }
        n
    };
    done.store(true, Ordering::SeqCst);
    let statuses = client.join().unwrap();
    let _ = new.kill();
    let _ = new.wait();

    let status = exited.expect("the old process did not exit");
    assert_eq!(status.code(), Some(0));
    assert!(served_after > 0);
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert!(statuses.len() > 100, "only {} requests", statuses.len());
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during the upgrade",
        statuses.len()
    );
    let log = std::fs::read_to_string(&new_err).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}
