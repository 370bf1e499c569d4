//! `switchyard check` as a user runs it.

use crate::support;

use std::path::Path;
use std::process::Command;

fn check(path: &Path) -> (i32, String, String) {
    let out = Command::new(support::binary())
        .args(["check", "-c"])
        .arg(path)
        .output()
        .expect("run switchyard check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_shipped_config_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut files = vec![root.join("switchyard.yaml")];
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = e.unwrap().path();
        // Examples may come with files they name (a token file, say).
        if path.extension().is_some_and(|x| x == "yaml") {
            files.push(path);
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let (code, stdout, stderr) = check(&f);
        assert_eq!(code, 0, "{}: {stderr}", f.display());
        assert!(stdout.contains("configuration is valid"), "{stdout}");
    }
}

#[test]
fn check_reports_every_error_with_its_line_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        r#"listen: ["127.0.0.1:8080"]
upstreams:
  app:
    servers:
      - addr: "127.0.0.1:3001"
        wieght: 3
    timeouts:
      connect: 5
  api:
    servers: [{addr: "127.0.0.1:4001"}]
routes:
  - path: /
    upstream: ap
"#,
    )
    .unwrap();
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 1, "{stdout}");
    let shown = path.display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    let expect = [
        format!(
            "{shown}:6:9: upstreams.app.servers[0].wieght: unknown key `wieght`; did you mean `weight`?"
        ),
        format!("{shown}:8:16: upstreams.app.timeouts.connect: `5` has no unit"),
        format!("{shown}:13:15: routes[0].upstream: unknown upstream `ap`; did you mean `app`?"),
    ];
    for e in &expect {
        assert!(
            lines.iter().any(|l| l.starts_with(e.as_str())),
            "missing {e:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("3 error(s)"), "{stderr}");
}

#[test]
fn dash_t_and_the_environment_variable_work_like_check() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/switchyard.yaml");
    let out = Command::new(support::binary())
        .arg("-t")
        .env("SWITCHYARD_CONFIG", &good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
    let out = Command::new(support::binary())
        .args(["check", "-c", "/nonexistent/switchyard.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config file"));
}
