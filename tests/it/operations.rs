//! Operations: hot reload by file change, SIGHUP and POST /reload, state kept across reloads,
//! and the metrics a dashboard reads.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use support::{Action, Mock, Proxy, get, request};

fn config(servers: &[(&Mock, u32)], extra: &str) -> String {
    let list: String = servers
        .iter()
        .map(|(m, w)| format!("      - addr: \"{}\"\n        weight: {w}\n", m.addr))
        .collect();
    format!(
        "listen: [\"LISTEN\"]\nadmin: {{listen: \"ADMIN\"}}\nthreads: 2\naccess_log: off\nupstreams:\n  app:\n    servers:\n{list}{extra}"
    )
}

/// Start with `text`, where `LISTEN`/`ADMIN` become the proxy's addresses.
fn start(text: &str) -> Proxy {
    Proxy::start(
        &text
            .replace("LISTEN", "{listen}")
            .replace("ADMIN", "{admin}"),
    )
}

/// [`start`] as a process of its own (signals, its files).
fn spawn(text: &str) -> Proxy {
    Proxy::spawn(
        &text
            .replace("LISTEN", "{listen}")
            .replace("ADMIN", "{admin}"),
    )
}

/// Rewrite the running proxy's config file (the same addresses), as an editor would: write a
/// new file and rename it over the old one.
fn rewrite(p: &Proxy, text: &str) {
    let text = text
        .replace("LISTEN", &p.addr.to_string())
        .replace("ADMIN", &p.admin.to_string());
    let tmp = p.config_path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &p.config_path).unwrap();
}

fn generation(p: &Proxy) -> u64 {
    p.status_json()["generation"].as_u64().unwrap()
}

fn wait_generation(p: &Proxy, want: u64, within: Duration) -> Duration {
    let start = Instant::now();
    while generation(p) < want {
        assert!(
            start.elapsed() < within,
            "generation {want} not reached within {within:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn post_reload(p: &Proxy) -> support::Response {
    request(p.admin, "POST", "/reload", &[], b"")
}

#[test]
fn a_changed_file_sighup_and_post_reload_each_apply_a_new_config() {
    let (a, b, c) = (Mock::named("a"), Mock::named("b"), Mock::named("c"));
    let p = spawn(&config(&[(&a, 1)], ""));
    assert_eq!(generation(&p), 1);
    assert_eq!(get(p.addr, "/").text(), "a");

    rewrite(&p, &config(&[(&b, 1)], ""));
    let took = wait_generation(&p, 2, Duration::from_secs(1));
    eprintln!("file change picked up in {took:?}");
    assert_eq!(get(p.addr, "/").text(), "b");

    // SIGHUP reloads the file on disk (written in place this time, watcher off).
    let before_write = generation(&p);
    std::fs::write(
        &p.config_path,
        config(&[(&c, 1)], "")
            .replace("LISTEN", &p.addr.to_string())
            .replace("ADMIN", &p.admin.to_string())
            .replace("access_log: off", "access_log: off\nwatch: false"),
    )
    .unwrap();
    // The running config still has `watch: true`, so the watcher applies this change (with
    // `watch: false` in it); then SIGHUP must bring the generation up by one more.
    wait_generation(&p, before_write + 1, Duration::from_secs(2));
    let before = generation(&p);
    p.signal("HUP");
    wait_generation(&p, before + 1, Duration::from_secs(1));
    assert_eq!(get(p.addr, "/").text(), "c");

    let r = post_reload(&p);
    assert_eq!(r.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["generation"].as_u64(), Some(generation(&p)));
}

#[test]
fn an_invalid_file_is_refused_and_traffic_goes_on() {
    let a = Mock::named("a");
    let p = start(&config(&[(&a, 1)], "watch: false\n"));
    let failures = || metric(&p, "switchyard_config_reloads_total{result=\"failure\"}");
    assert_eq!(failures(), 0.0);
    rewrite(
        &p,
        &config(&[(&a, 1)], "watch: false\n").replace("weight: 1", "weight: 0"),
    );
    let r = post_reload(&p);
    assert_eq!(r.status, 422);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let errors = body["errors"].as_array().unwrap();
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .contains("weight must be from 1 to 1000"),
        "{errors:?}"
    );
    assert!(errors[0].as_str().unwrap().contains(":9:17:"), "{errors:?}");
    assert_eq!(failures(), 1.0);
    assert_eq!(generation(&p), 1);
    assert_eq!(get(p.addr, "/").text(), "a");

    // A change of `listen` cannot be applied in place.
    rewrite(&p, &config(&[(&a, 1)], "watch: false\n"));
    let moved = std::fs::read_to_string(&p.config_path).unwrap().replace(
        &p.addr.to_string(),
        &format!("127.0.0.1:{}", support::free_port()),
    );
    std::fs::write(&p.config_path, moved).unwrap();
    let r = post_reload(&p);
    assert_eq!(r.status, 422);
    assert!(r.text().contains("`listen` changed"), "{}", r.text());
    assert!(r.text().contains("--upgrade"), "{}", r.text());
    assert_eq!(failures(), 2.0);
    assert_eq!(get(p.addr, "/").text(), "a");
}

#[test]
fn an_open_breaker_stays_open_when_its_weight_changes() {
    let bad = Mock::start(|_| Action::status(503));
    let good = Mock::named("good");
    let breaker = "    circuit_breaker: {failures: 2, open_for: 30s}\nwatch: false\n";
    let p = start(&config(&[(&bad, 1), (&good, 1)], breaker));
    support::wait_until(
        "two requests at the failing server",
        Duration::from_secs(10),
        || {
            get(p.addr, "/");
            bad.hits() >= 2
        },
    );
    let state = |p: &Proxy| p.status_json()["upstreams"]["app"]["servers"][0]["breaker"].clone();
    assert_eq!(state(&p), "open");
    rewrite(&p, &config(&[(&bad, 5), (&good, 1)], breaker));
    assert_eq!(post_reload(&p).status, 200);
    let s = p.status_json();
    assert_eq!(s["upstreams"]["app"]["servers"][0]["weight"], 5);
    assert_eq!(state(&p), "open");
    for _ in 0..10 {
        assert_eq!(get(p.addr, "/").text(), "good");
    }
    assert_eq!(bad.hits(), 2);
}

#[test]
fn a_slow_request_started_before_a_reload_completes_on_its_server() {
    let slow = Mock::start(|_| Action::slow("old", Duration::from_millis(1500)));
    let new = Mock::named("new");
    let p = Arc::new(start(&config(&[(&slow, 1)], "watch: false\n")));
    let p2 = Arc::clone(&p);
    let inflight = thread::spawn(move || get(p2.addr, "/slow"));
    support::wait_until(
        "the slow request at its server",
        Duration::from_secs(5),
        || slow.hits() > 0,
    );
    rewrite(&p, &config(&[(&new, 1)], "watch: false\n"));
    assert_eq!(post_reload(&p).status, 200);
    assert_eq!(get(p.addr, "/").text(), "new");
    let r = inflight.join().unwrap();
    assert_eq!((r.status, r.text()), (200, "old".to_string()));
    // The old server's in-flight count went back to zero (it left the config, so it is no
    // longer listed; the new one shows nothing stuck either).
    assert_eq!(
        p.status_json()["upstreams"]["app"]["servers"][0]["active"],
        0
    );
}

#[test]
fn twenty_reloads_under_load_fail_no_request() {
    let mocks: Vec<Mock> = (0..4).map(|i| Mock::named(&format!("m{i}"))).collect();
    let set_a = config(&[(&mocks[0], 1), (&mocks[1], 2)], "watch: false\n");
    let set_b = config(&[(&mocks[2], 3), (&mocks[3], 1)], "watch: false\n");
    let p = Arc::new(start(&set_a));
    let done = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (p, done, answered) = (Arc::clone(&p), Arc::clone(&done), Arc::clone(&answered));
            thread::spawn(move || {
                let mut statuses = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    statuses.push(get(p.addr, "/").status);
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                statuses
            })
        })
        .collect();
    for i in 0..22 {
        rewrite(&p, if i % 2 == 0 { &set_b } else { &set_a });
        assert_eq!(post_reload(&p).status, 200, "reload {i}");
        // Let every client get requests through on this config before the next reload.
        let (from, deadline) = (
            answered.load(Ordering::SeqCst),
            Instant::now() + Duration::from_secs(5),
        );
        while answered.load(Ordering::SeqCst) < from + 12 {
            assert!(Instant::now() < deadline, "no traffic after reload {i}");
            thread::sleep(Duration::from_millis(5));
        }
    }
    done.store(true, Ordering::SeqCst);
    let statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let failed = statuses.iter().filter(|s| **s != 200).count();
    assert!(statuses.len() > 200, "only {} requests", statuses.len());
    assert_eq!(failed, 0, "{failed} of {} failed", statuses.len());
    assert_eq!(generation(&p), 23);
    assert!(
        mocks.iter().all(|m| m.hits() > 0),
        "every server set served traffic"
    );
}

#[test]
fn a_configmap_style_symlink_swap_is_picked_up() {
    let (a, b) = (Mock::named("a"), Mock::named("b"));
    // /dir/switchyard.yaml -> ..data/switchyard.yaml, ..data -> ..v1 (as Kubernetes mounts it).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let listen = format!("127.0.0.1:{}", support::free_port());
    let admin = format!("127.0.0.1:{}", support::free_port());
    let text = |m: &Mock| {
        config(&[(m, 1)], "")
            .replace("LISTEN", &listen)
            .replace("ADMIN", &admin)
    };
    std::fs::create_dir(d.join("..v1")).unwrap();
    std::fs::write(d.join("..v1/switchyard.yaml"), text(&a)).unwrap();
    std::os::unix::fs::symlink("..v1", d.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/switchyard.yaml", d.join("switchyard.yaml")).unwrap();
    let mut child = std::process::Command::new(support::binary())
        .arg("-c")
        .arg(d.join("switchyard.yaml"))
        .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let admin_addr = admin.parse().unwrap();
    let listen_addr = listen.parse().unwrap();
    let up = Instant::now();
    while std::net::TcpStream::connect(admin_addr).is_err()
        || std::net::TcpStream::connect(listen_addr).is_err()
    {
        assert!(up.elapsed() < Duration::from_secs(10), "did not start");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(listen_addr, "/").text(), "a");

    // The update: a new versioned directory, a new ..data link renamed over the old one.
    std::fs::create_dir(d.join("..v2")).unwrap();
    std::fs::write(d.join("..v2/switchyard.yaml"), text(&b)).unwrap();
    std::os::unix::fs::symlink("..v2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    std::fs::remove_dir_all(d.join("..v1")).unwrap();

    let start = Instant::now();
    let status = |a| serde_json::from_slice::<serde_json::Value>(&get(a, "/status").body).unwrap();
    while status(admin_addr)["generation"] != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "symlink swap not picked up: {}",
            std::fs::read_to_string(d.join("stderr.log")).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(listen_addr, "/").text(), "b");
    let _ = child.kill();
    let _ = child.wait();
}

/// The value of one exposition line, e.g. `switchyard_config_generation`.
fn metric(p: &Proxy, series: &str) -> f64 {
    let body = get(p.admin, "/metrics").text();
    body.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[test]
fn metrics_count_exactly_what_happened() {
    let good = Mock::named("good");
    let bad = Mock::start(|_| Action::status(503));
    let refused = support::refused_addr();
    let text = format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 2\naccess_log: off\nwatch: false\nupstreams:\n  app:\n    balance: round_robin\n    servers:\n      - addr: \"{}\"\n      - addr: \"{}\"\n    retry: {{on: [error, timeout, http_503], tries: 2}}\n    circuit_breaker: {{failures: 3, open_for: 60s}}\n  down:\n    servers: [{{addr: \"{}\"}}]\n    retry: {{tries: 1}}\n    circuit_breaker: {{failures: 1, open_for: 60s}}\nroutes:\n  - {{path: /down, upstream: down}}\n  - {{path: /, upstream: app}}\n",
        good.addr, bad.addr, refused
    );
    let p = Proxy::start(&text);
    let (g, b, r) = (
        good.addr.to_string(),
        bad.addr.to_string(),
        refused.to_string(),
    );

    // Before any traffic: per-server series exist; the reload counters start at 0.
    assert_eq!(
        metric(
            &p,
            &format!("switchyard_upstream_in_flight{{server=\"{g}\",upstream=\"app\"}}")
        ),
        0.0
    );
    assert_eq!(
        metric(
            &p,
            &format!("switchyard_upstream_healthy{{server=\"{b}\",upstream=\"app\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &p,
            &format!(
                "switchyard_circuit_breaker_state{{server=\"{b}\",state=\"closed\",upstream=\"app\"}}"
            )
        ),
        1.0
    );
    assert_eq!(
        metric(&p, "switchyard_config_reloads_total{result=\"failure\"}"),
        0.0
    );
    assert_eq!(
        metric(&p, "switchyard_config_reloads_total{result=\"success\"}"),
        0.0
    );
    assert_eq!(metric(&p, "switchyard_config_generation"), 1.0);
    assert!(
        metric(
            &p,
            "switchyard_config_last_reload_success_timestamp_seconds"
        ) > 1.7e9
    );

    // 6 requests, round robin over good/bad: bad answers 503 and is retried on good, so all 6
    // succeed; bad fails 3 times and its breaker opens.
    for _ in 0..6 {
        assert_eq!(get(p.addr, "/").status, 200);
    }
    // One request to the refused pool: 502; its breaker opens; the next one is 503.
    assert_eq!(get(p.addr, "/down").status, 502);
    assert_eq!(get(p.addr, "/down").status, 503);
    assert_eq!(get(p.admin, "/nothing").status, 404); // the admin port is not counted

    let m = |s: String| metric(&p, &s);
    assert_eq!(
        m("switchyard_requests_total{code=\"200\",upstream=\"app\"}".into()),
        6.0
    );
    assert_eq!(
        m("switchyard_requests_total{code=\"502\",upstream=\"down\"}".into()),
        1.0
    );
    assert_eq!(
        m("switchyard_requests_total{code=\"503\",upstream=\"down\"}".into()),
        1.0
    );
    assert_eq!(
        m(format!(
            "switchyard_upstream_attempts_total{{outcome=\"success\",server=\"{g}\",upstream=\"app\"}}"
        )),
        6.0
    );
    assert_eq!(
        m(format!(
            "switchyard_upstream_attempts_total{{outcome=\"http_5xx\",server=\"{b}\",upstream=\"app\"}}"
        )),
        3.0
    );
    assert_eq!(
        m(format!(
            "switchyard_upstream_attempts_total{{outcome=\"error\",server=\"{r}\",upstream=\"down\"}}"
        )),
        1.0
    );
    assert_eq!(
        m("switchyard_retries_total{reason=\"http_503\",upstream=\"app\"}".into()),
        3.0
    );
    assert_eq!(
        m("switchyard_retries_over_budget_total{upstream=\"app\"}".into()),
        0.0
    );
    assert_eq!(
        m("switchyard_no_server_total{upstream=\"down\"}".into()),
        1.0
    );
    assert_eq!(
        m(format!(
            "switchyard_circuit_breaker_state{{server=\"{b}\",state=\"open\",upstream=\"app\"}}"
        )),
        1.0
    );
    assert_eq!(
        m(format!(
            "switchyard_circuit_breaker_state{{server=\"{b}\",state=\"closed\",upstream=\"app\"}}"
        )),
        0.0
    );
    assert_eq!(
        m(format!(
            "switchyard_circuit_breaker_transitions_total{{server=\"{b}\",to=\"open\",upstream=\"app\"}}"
        )),
        1.0
    );
    assert_eq!(
        m(format!(
            "switchyard_circuit_breaker_transitions_total{{server=\"{r}\",to=\"open\",upstream=\"down\"}}"
        )),
        1.0
    );
    assert_eq!(
        m("switchyard_request_duration_seconds_count{upstream=\"app\"}".into()),
        6.0
    );
    assert_eq!(bad.hits(), 3);

    // A reload that drops the bad server drops its series, and bumps the generation.
    let without_bad = std::fs::read_to_string(&p.config_path)
        .unwrap()
        .replace(&format!("      - addr: \"{b}\"\n"), "");
    std::fs::write(&p.config_path, without_bad).unwrap();
    assert_eq!(post_reload(&p).status, 200);
    assert_eq!(m("switchyard_config_generation".into()), 2.0);
    assert_eq!(
        m("switchyard_config_reloads_total{result=\"success\"}".into()),
        1.0
    );
    let body = get(p.admin, "/metrics").text();
    assert!(
        !body.contains(&b),
        "series of a removed server are still exported"
    );
    assert!(body.contains(&g));
}

#[test]
fn the_status_page_is_self_contained_html() {
    let a = Mock::named("a");
    let p = start(&config(&[(&a, 3)], ""));
    let r = get(p.admin, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.text();
    assert!(html.contains(&a.addr.to_string()));
    assert!(html.contains("badge closed"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external assets"
    );
    assert!(Path::new(support::binary()).exists());
}

/// The Grafana dashboard and the alert rules only use metric names that switchyard exports.
#[test]
fn deploy_dashboards_use_only_exported_metric_names() {
    let a = Mock::named("a");
    // A TLS listener and a DNS entry (an address: no lookup), so that the certificate and
    // discovery families are exported too.
    let certs = tempfile::tempdir().unwrap();
    let cert = support::tls::self_signed(certs.path(), "edge", &["edge.example"]);
    let p = Proxy::start(&format!(
        "listen:\n  - addr: \"{{listen}}\"\n    tls: {{certificates: [{{cert: \"{}\", key: \"{}\"}}]}}\nadmin: {{listen: \"{{admin}}\"}}\nupstreams:\n  app: {{servers: [{{addr: \"{}\", resolve: 1s}}]}}\n",
        cert.cert.display(),
        cert.key.display(),
        a.addr
    ));
    let r = support::tls::https_get(p.addr, std::slice::from_ref(&cert.der), "edge.example", "/");
    assert_eq!(r.unwrap().response.status, 200);
    let exported: std::collections::HashSet<String> = get(p.admin, "/metrics")
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(String::from)
        .collect();
    assert_eq!(exported.len(), 20, "{exported:?}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    for file in [
        "grafana/switchyard-dashboard.json",
        "prometheus/switchyard-alerts.yml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut used = 0;
        for (i, _) in text.match_indices("switchyard_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            if name == "switchyard_" || base == "switchyard" {
                continue;
            }
            assert!(
                exported.contains(base),
                "{file} uses {name}, which is not exported"
            );
            used += 1;
        }
        assert!(used > 0, "{file} uses no metric");
    }
}

#[test]
fn after_a_reload_moves_the_access_log_every_line_reaches_the_new_file() {
    let mock = Mock::named("ok");
    let logs = tempfile::tempdir().unwrap();
    let (first, second) = (
        logs.path().join("first.log"),
        logs.path().join("second.log"),
    );
    let with_log = |path: &Path| {
        config(&[(&mock, 1)], "watch: false\n").replace(
            "access_log: off",
            &format!("access_log: \"{}\"", path.display()),
        )
    };
    let p = spawn(&with_log(&first));
    for i in 0..5 {
        assert_eq!(get(p.addr, &format!("/first/{i}")).status, 200);
    }
    rewrite(&p, &with_log(&second));
    assert_eq!(post_reload(&p).status, 200);
    // Many lines, then SIGTERM at once: whatever is still queued must be written at exit.
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let addr = p.addr;
            thread::spawn(move || {
                for i in 0..250 {
                    assert_eq!(get(addr, &format!("/second/{c}/{i}")).status, 200);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // The first log is closed once no request uses the configuration that had it.
    let open_files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(format!("/proc/{}/fd", p.pid()))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_link(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    support::wait_until(
        "the first access log closed",
        Duration::from_secs(5),
        || !open_files().contains(&first),
    );
    assert!(open_files().contains(&second));
    let mut p = p;
    p.signal("TERM");
    let status = p.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(0));
    let lines = |path: &Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (lines(&first), lines(&second));
    assert_eq!(a.len(), 5, "first log: {a:?}");
    assert!(a.iter().all(|l| l.contains("\"/first/")), "{a:?}");
    assert_eq!(b.len(), 1000, "lines written to the second log");
    assert!(b.iter().all(|l| l.contains("\"/second/")));
}

#[test]
fn sigusr1_and_a_reload_reopen_a_rotated_access_log() {
    let mock = Mock::named("ok");
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("access.log");
    let p = spawn(&config(&[(&mock, 1)], "watch: false\n").replace(
        "access_log: off",
        &format!("access_log: \"{}\"", log.display()),
    ));
    let lines = |path: &Path| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count()
    };
    for _ in 0..3 {
        get(p.addr, "/before");
    }
    support::wait_until("3 lines logged", Duration::from_secs(5), || {
        lines(&log) == 3
    });

    // logrotate: move the file away, then signal.
    let rotated = logs.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    p.signal("USR1");
    // The signal is handled on its own thread: wait until a request's line lands in a new file.
    support::wait_until("a new access.log", Duration::from_secs(5), || {
        get(p.addr, "/after-usr1");
        lines(&log) > 0
    });
    let in_rotated = lines(&rotated);
    assert!(in_rotated >= 3, "the rotated file lost lines");
    // At most the requests sent before the signal was handled went to the old file.
    assert!(
        std::fs::read_to_string(&rotated)
            .unwrap()
            .contains("/before"),
        "rotated file"
    );

    // A reload reopens it too.
    let rotated2 = logs.path().join("access.log.2");
    std::fs::rename(&log, &rotated2).unwrap();
    assert_eq!(post_reload(&p).status, 200);
    get(p.addr, "/after-reload");
    support::wait_until(
        "a line in the reopened file",
        Duration::from_secs(5),
        || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("/after-reload")),
    );
    assert!(
        !std::fs::read_to_string(&rotated2)
            .unwrap()
            .contains("/after-reload")
    );
}
