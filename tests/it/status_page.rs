//! The status page as a browser renders it: headless Chromium (Debian's `chromium`).
//!
//! `.ci/run` installs Chromium and sets `SWITCHYARD_REQUIRE_CHROMIUM=1`, so there this test
//! always runs. Elsewhere, without Chromium, it says so and checks nothing.

use crate::support;

use std::process::Command;
use support::{Action, Mock, Proxy, get};

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn the_status_page_shows_servers_and_breaker_states_in_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("SWITCHYARD_REQUIRE_CHROMIUM").is_none(),
            "SWITCHYARD_REQUIRE_CHROMIUM is set but no chromium was found"
        );
        eprintln!("SKIPPED: no chromium on this machine (apt-get install chromium)");
        return;
    };
    let good = Mock::named("good");
    let bad = Mock::start(|_| Action::status(503));
    let p = Proxy::start(&format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\naccess_log: off\nupstreams:\n  app:\n    servers:\n      - addr: \"{}\"\n        weight: 3\n      - addr: \"{}\"\n    circuit_breaker: {{failures: 1, open_for: 60s}}\n",
        good.addr, bad.addr
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while bad.hits() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the failing server got no request"
        );
        get(p.addr, "/");
    }
    let profile = tempfile::tempdir().unwrap();
    // --virtual-time-budget lets the page's script fetch /status and re-render before the DOM
    // is dumped, so this checks the script's output, not only the server-rendered table.
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("http://{}/", p.admin))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<table>"),
        "no table rendered:\n{dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.contains(&good.addr.to_string()), "{dom}");
    assert!(dom.contains(&bad.addr.to_string()), "{dom}");
    assert!(
        dom.contains(r#"class="badge open">open<"#),
        "the open breaker is not shown:\n{dom}"
    );
    assert!(dom.contains(r#"class="badge closed">closed<"#), "{dom}");
    // The script ran and refreshed the page.
    assert!(
        dom.contains("updated "),
        "the page's script did not refresh it:\n{dom}"
    );
}
