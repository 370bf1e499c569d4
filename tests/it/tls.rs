//! TLS listeners, HTTP/2 by ALPN, certificate rotation, HTTPS redirects and TLS to upstreams
//! (SPEC §6), with certificates made in each test.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::tls::{
    Ca, TlsUpstream, both_versions, client_config, exchange, https_get, self_signed,
};
use support::{Action, Mock, Proxy, free_port, metric, request, wait_until};

/// A TLS listener on `{listen}` serving `certs` (`(cert, key)` paths), plus `extra` YAML.
fn tls_config(
    certs: &[(&std::path::Path, &std::path::Path)],
    listener_extra: &str,
    rest: &str,
) -> String {
    let list: String = certs
        .iter()
        .map(|(c, k)| {
            format!(
                "        - {{cert: \"{}\", key: \"{}\"}}\n",
                c.display(),
                k.display()
            )
        })
        .collect();
    format!(
        "listen:\n  - addr: \"{{listen}}\"\n    tls:\n      certificates:\n{list}{listener_extra}admin: {{listen: \"{{admin}}\"}}\n{rest}"
    )
}

#[test]
fn sni_picks_the_certificate_and_the_upstream_hears_https() {
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed(dir.path(), "a", &["a.example"]);
    let b = self_signed(dir.path(), "b", &["b.example", "*.b.example"]);
    let app = Mock::named("app");
    let p = Proxy::spawn(&tls_config(
        &[(&a.cert, &a.key), (&b.cert, &b.key)],
        "    hsts: 365d\n",
        &format!(
            "upstreams:\n  app: {{servers: [{{addr: \"{}\"}}]}}\n",
            app.addr
        ),
    ));
    let trusted = [a.der.clone(), b.der.clone()];

    let x = https_get(p.addr, &trusted, "b.example", "/hello").unwrap();
    assert_eq!(x.peer, b.der, "SNI b.example gets b's certificate");
    assert_eq!(x.response.status, 200);
    assert_eq!(x.response.text(), "app");
    assert_eq!(
        x.response.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    let x = https_get(p.addr, &trusted, "www.b.example", "/").unwrap();
    assert_eq!(x.peer, b.der, "the wildcard covers one label");
    let x = https_get(p.addr, &trusted, "a.example", "/").unwrap();
    assert_eq!(x.peer, a.der);
    // An unknown name gets the first certificate (and the client rejects it: wrong name).
    let err = https_get(p.addr, &trusted, "other.example", "/")
        .err()
        .unwrap();
    assert!(
        err.contains("NotValidForName") || err.contains("certificate"),
        "{err}"
    );

    let seen = app.seen();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|s| s.header("x-forwarded-proto") == Some("https"))
    );

    // The access log names the protocol and the TLS version.
    wait_until("access log lines", Duration::from_secs(5), || {
        p.stdout()
            .lines()
            .filter(|l| l.contains("\"tls\":\"TLSv1.3\""))
            .count()
            >= 3
    });
    let line = p
        .stdout()
        .lines()
        .find(|l| l.contains("/hello"))
        .unwrap()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["protocol"], "http/1.1");
    assert_eq!(v["tls"], "TLSv1.3");

    // Handshakes are counted (the failed one was the client's refusal of a wrong name).
    assert!(metric(&p, "switchyard_tls_handshakes_total{result=\"success\"}") >= 3.0);
    let expiry = metric(
        &p,
        &format!(
            "switchyard_tls_certificate_expiry_timestamp_seconds{{cert=\"{}\"}}",
            a.cert.display()
        ),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(expiry > now, "expiry {expiry} should be in the future");

    // /status lists the certificates with their names.
    let status = p.status_json();
    let certs = status["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[1]["names"][0], "b.example");
    assert!(certs[0]["days_left"].as_i64().unwrap() > 14);
}

/// A ClientHello offering TLS 1.1 only (no supported_versions extension).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]);
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    record.extend_from_slice(&hs);
    record
}

#[test]
fn tls_1_1_is_refused_1_2_and_1_3_are_accepted_and_min_version_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed(dir.path(), "a", &["a.example"]);
    let app = Mock::named("app");
    let rest = format!(
        "upstreams:\n  app: {{servers: [{{addr: \"{}\"}}]}}\n",
        app.addr
    );
    let p = Proxy::start(&tls_config(&[(&a.cert, &a.key)], "", &rest));

    // TLS 1.1: an alert (or a close), never a ServerHello.
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&tls11_client_hello()).unwrap();
    let mut first = [0u8; 1];
    if let Ok(1) = s.read(&mut first) {
        assert_eq!(first[0], 0x15, "expected a TLS alert record");
    }
    wait_until(
        "the failed handshake counted",
        Duration::from_secs(5),
        || metric(&p, "switchyard_tls_handshakes_total{result=\"failure\"}") >= 1.0,
    );

    let req = b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n";
    for (versions, expect) in [
        (
            &[&rustls::version::TLS12][..],
            rustls::ProtocolVersion::TLSv1_2,
        ),
        (
            &[&rustls::version::TLS13][..],
            rustls::ProtocolVersion::TLSv1_3,
        ),
    ] {
        let x = exchange(
            p.addr,
            client_config(std::slice::from_ref(&a.der), versions, &[]),
            "a.example",
            req,
        )
        .unwrap();
        assert_eq!(x.version, Some(expect));
        assert_eq!(x.response.status, 200);
    }

    // min_version 1.3 by reload: a TLS 1.2 client is refused, a 1.3 one still served.
    let text = std::fs::read_to_string(&p.config_path).unwrap();
    let text = text.replace("    tls:\n", "    tls:\n      min_version: \"1.3\"\n");
    std::fs::write(&p.config_path, text).unwrap();
    assert_eq!(request(p.admin, "POST", "/reload", &[], b"").status, 200);
    let tls12 = client_config(
        std::slice::from_ref(&a.der),
        &[&rustls::version::TLS12],
        &[],
    );
    assert!(exchange(p.addr, tls12, "a.example", req).is_err());
    let tls13 = client_config(
        std::slice::from_ref(&a.der),
        &[&rustls::version::TLS13],
        &[],
    );
    assert_eq!(
        exchange(p.addr, tls13, "a.example", req)
            .unwrap()
            .response
            .status,
        200
    );
}

#[test]
fn http2_by_alpn_serves_concurrent_streams_with_the_same_routing() {
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed(dir.path(), "a", &["a.example", "api.example"]);
    let web = Mock::start(|_| Action::slow("web", Duration::from_millis(300)));
    let api = Mock::named("api");
    let rest = format!(
        "upstreams:\n  web: {{servers: [{{addr: \"{}\"}}]}}\n  api: {{servers: [{{addr: \"{}\"}}]}}\nroutes:\n  - {{host: api.example, upstream: api}}\n  - {{path: /, upstream: web}}\n",
        web.addr, api.addr
    );
    let p = Proxy::spawn(&tls_config(&[(&a.cert, &a.key)], "", &rest));
    let config = client_config(
        std::slice::from_ref(&a.der),
        both_versions(),
        &[b"h2", b"http/1.1"],
    );
    let addr = p.addr;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (statuses, elapsed, api_answer) = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("a.example").unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (client, conn) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.unwrap();
        let started = Instant::now();
        let mut pending = Vec::new();
        for i in 0..20 {
            let req = http::Request::get(format!("https://a.example/page/{i}"))
                .body(())
                .unwrap();
            let (resp, _) = client.send_request(req, true).unwrap();
            pending.push(resp);
            client = client.ready().await.unwrap();
        }
        let mut statuses = Vec::new();
        for resp in pending {
            let resp = tokio::time::timeout(Duration::from_secs(10), resp)
                .await
                .unwrap()
                .unwrap();
            statuses.push(resp.status().as_u16());
            let mut body = resp.into_body();
            while let Some(chunk) = body.data().await {
                let _ = chunk.unwrap();
            }
        }
        let elapsed = started.elapsed();
        // The host routes an HTTP/2 request as it does an HTTP/1.1 one (`:authority`).
        let req = http::Request::get("https://api.example/x")
            .body(())
            .unwrap();
        let (resp, _) = client.send_request(req, true).unwrap();
        let resp = resp.await.unwrap();
        let mut body = resp.into_body();
        let mut text = Vec::new();
        while let Some(chunk) = body.data().await {
            text.extend_from_slice(&chunk.unwrap());
        }
        (statuses, elapsed, String::from_utf8(text).unwrap())
    });
    assert_eq!(statuses, vec![200; 20]);
    // Twenty 300 ms answers one after another would take 6 s.
    assert!(
        elapsed < Duration::from_secs(4),
        "streams were not concurrent: {elapsed:?}"
    );
    assert_eq!(api_answer, "api");
    assert_eq!(web.hits(), 20);
    let seen = web.seen();
    assert!(
        seen.iter().all(|s| s.version == "HTTP/1.1"),
        "upstreams hear HTTP/1.1"
    );
    assert!(
        seen.iter()
            .all(|s| s.header("x-forwarded-proto") == Some("https"))
    );
    assert!(seen.iter().all(|s| s.header("host") == Some("a.example")));
    wait_until(
        "requests counted by protocol",
        Duration::from_secs(5),
        || metric(&p, "switchyard_downstream_requests_total{protocol=\"h2\"}") >= 21.0,
    );
    let log = p.stdout();
    assert!(log.contains("\"protocol\":\"h2\""), "{log}");
}

#[test]
fn certificates_rotate_without_a_restart_and_a_bad_key_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = self_signed(dir.path(), "site", &["a.example"]);
    let app = Mock::named("app");
    let rest = format!(
        "upstreams:\n  app: {{servers: [{{addr: \"{}\"}}]}}\n",
        app.addr
    );
    let mut p = Proxy::spawn(&tls_config(&[(&first.cert, &first.key)], "", &rest));
    let pid = p.pid();
    let served = |p: &Proxy, trusted: &[rustls::pki_types::CertificateDer<'static>]| {
        https_get(p.addr, trusted, "a.example", "/").map(|x| x.peer)
    };
    // A connection opened before the rotation keeps working after it.
    let before = client_config(std::slice::from_ref(&first.der), both_versions(), &[]);
    let name = rustls::pki_types::ServerName::try_from("a.example").unwrap();
    let conn = rustls::ClientConnection::new(before, name).unwrap();
    let mut open = rustls::StreamOwned::new(conn, TcpStream::connect(p.addr).unwrap());
    open.sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    open.write_all(b"GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    assert!(open.read(&mut buf).unwrap() > 0);

    // Renewal: the same files rewritten (certbot, cert-manager).
    let renewed_dir = tempfile::tempdir().unwrap();
    let second = self_signed(renewed_dir.path(), "site", &["a.example"]);
    std::fs::copy(&second.key, &first.key).unwrap();
    std::fs::copy(&second.cert, &first.cert).unwrap();
    let trusted = [first.der.clone(), second.der.clone()];
    wait_until(
        "new handshakes get the new certificate",
        Duration::from_secs(10),
        || served(&p, &trusted).ok() == Some(second.der.clone()),
    );
    assert_eq!(p.pid(), pid);
    assert!(p.child().try_wait().unwrap().is_none(), "same process");
    open.write_all(b"GET /2 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest_of = Vec::new();
    let _ = open.read_to_end(&mut rest_of);
    assert!(
        String::from_utf8_lossy(&rest_of).starts_with("HTTP/1.1 200 "),
        "the connection from before the rotation still answers: {:?}",
        String::from_utf8_lossy(&rest_of)
    );

    // A key that does not match its certificate: the reload fails, the certificate stays.
    let other = self_signed(renewed_dir.path(), "other", &["a.example"]);
    std::fs::copy(&other.key, &first.key).unwrap();
    let r = request(p.admin, "POST", "/reload", &[], b"");
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("does not match"), "{}", r.text());
    assert_eq!(served(&p, &trusted).unwrap(), second.der);
    assert!(p.wait_exit(Duration::from_millis(10)).is_none());
}

#[test]
fn a_redirect_listener_sends_clients_to_https() {
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed(dir.path(), "a", &["a.example"]);
    let app = Mock::named("app");
    let redirect_port = free_port();
    let p = Proxy::start(&format!(
        "listen:\n  - addr: \"{{listen}}\"\n    tls: {{certificates: [{{cert: \"{}\", key: \"{}\"}}]}}\n    hsts: 2h\n  - addr: \"127.0.0.1:{redirect_port}\"\n    redirect_https: true\n    https_port: 8443\nadmin: {{listen: \"{{admin}}\"}}\nupstreams:\n  app: {{servers: [{{addr: \"{}\"}}]}}\n",
        a.cert.display(),
        a.key.display(),
        app.addr
    ));
    let plain: std::net::SocketAddr = format!("127.0.0.1:{redirect_port}").parse().unwrap();
    let r = request(
        plain,
        "POST",
        "/login?next=%2Fhome",
        &[("Host", "shop.example:80")],
        b"x=1",
    );
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://shop.example:8443/login?next=%2Fhome")
    );
    assert_eq!(app.hits(), 0, "a redirect never reaches an upstream");
    let x = https_get(p.addr, std::slice::from_ref(&a.der), "a.example", "/").unwrap();
    assert_eq!(
        x.response.header("strict-transport-security"),
        Some("max-age=7200")
    );
}

#[test]
fn upstream_tls_verifies_against_a_private_ca_and_a_wrong_ca_is_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.issue(dir.path(), "upstream", &["upstream.test"]);
    let client = ca.issue(dir.path(), "client", &["switchyard.test"]);
    let other_ca = Ca::new(dir.path(), "other-ca");
    let up = TlsUpstream::start(&server, None);
    let mtls = TlsUpstream::start(&server, Some(&ca.files.der));
    let listen_cert = self_signed(dir.path(), "edge", &["edge.example"]);
    let rest = format!(
        r#"upstreams:
  good:
    servers: [{{addr: "{up}"}}]
    tls: {{sni: upstream.test, ca: "{ca}"}}
  mtls:
    servers: [{{addr: "{mtls}"}}]
    tls: {{sni: upstream.test, ca: "{ca}", client_cert: "{cc}", client_key: "{ck}"}}
  wrong:
    servers: [{{addr: "{up}"}}]
    retry: {{tries: 1}}
    tls: {{sni: upstream.test, ca: "{other}"}}
  unverified:
    servers: [{{addr: "{up}"}}]
    tls: {{sni: upstream.test, verify: false}}
routes:
  - {{path: /good, upstream: good}}
  - {{path: /mtls, upstream: mtls}}
  - {{path: /wrong, upstream: wrong}}
  - {{path: /unverified, upstream: unverified}}
"#,
        up = up.addr,
        mtls = mtls.addr,
        ca = ca.files.cert.display(),
        other = other_ca.files.cert.display(),
        cc = client.cert.display(),
        ck = client.key.display(),
    );
    let p = Proxy::spawn(&tls_config(
        &[(&listen_cert.cert, &listen_cert.key)],
        "",
        &rest,
    ));
    let trusted = [listen_cert.der.clone()];
    let get = |path: &str| {
        https_get(p.addr, &trusted, "edge.example", path)
            .unwrap()
            .response
    };

    let r = get("/good");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "sni=upstream.test client_cert=no")
    );
    let r = get("/mtls");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "sni=upstream.test client_cert=yes")
    );

    let served_before = *up.served.lock().unwrap();
    let r = get("/wrong");
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        *up.served.lock().unwrap(),
        served_before,
        "no request went to an unverified server"
    );
    let status = p.status_json();
    let wrong = &status["upstreams"]["wrong"]["servers"][0];
    assert!(wrong["failures"].as_u64().unwrap() >= 1, "{wrong}");
    assert!(
        metric(
            &p,
            &format!(
                "switchyard_upstream_attempts_total{{outcome=\"error\",server=\"{}\",upstream=\"wrong\"}}",
                up.addr
            )
        ) >= 1.0
    );

    let r = get("/unverified");
    assert_eq!(r.status, 200);
    assert!(p.stderr().contains("verify: false"), "{}", p.stderr());
}

#[test]
fn health_checks_speak_the_pools_tls_with_its_sni_ca_and_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.issue(dir.path(), "upstream", &["upstream.test"]);
    let client = ca.issue(dir.path(), "client", &["switchyard.test"]);
    // The server requires a client certificate signed by the CA: only a probe over the pool's
    // TLS, verifying against its CA and presenting its certificate, gets a request through.
    let up = TlsUpstream::start(&server, Some(&ca.files.der));
    let p = Proxy::start(&format!(
        r#"listen: ["{{listen}}"]
admin: {{listen: "{{admin}}"}}
upstreams:
  app:
    servers: [{{addr: "{up}"}}]
    tls: {{sni: upstream.test, ca: "{ca}", client_cert: "{cc}", client_key: "{ck}"}}
    health_check: {{path: /healthz, interval: 100ms, timeout: 1s, unhealthy_after: 1, healthy_after: 1}}
"#,
        up = up.addr,
        ca = ca.files.cert.display(),
        cc = client.cert.display(),
        ck = client.key.display(),
    ));
    let probes = || {
        up.heads
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.starts_with("GET /healthz "))
            .cloned()
            .collect::<Vec<_>>()
    };
    wait_until(
        "three health checks over TLS",
        Duration::from_secs(10),
        || probes().len() >= 3,
    );
    let probe = probes()[0].to_ascii_lowercase();
    assert!(probe.contains("\r\nhost: upstream.test\r\n"), "{probe}");
    let healthy = &p.status_json()["upstreams"]["app"]["servers"][0]["healthy"];
    assert_eq!(healthy, true);
    let r = request(p.addr, "GET", "/x", &[], b"");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "sni=upstream.test client_cert=yes")
    );
}

#[test]
fn check_refuses_bad_certificates_and_warns_before_expiry() {
    let dir = tempfile::tempdir().unwrap();
    self_signed(dir.path(), "a", &["a.example"]);
    let b = self_signed(dir.path(), "b", &["b.example"]);
    // Expiring in 5 days.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["soon.example".to_string()]).unwrap();
    let soon = chrono::Utc::now() + chrono::Duration::days(5);
    {
        use chrono::Datelike;
        params.not_after = rcgen::date_time_ymd(soon.year(), soon.month() as u8, soon.day() as u8);
    }
    let c = params.self_signed(&key).unwrap();
    std::fs::write(dir.path().join("soon.pem"), c.pem()).unwrap();
    std::fs::write(dir.path().join("soon.key"), key.serialize_pem()).unwrap();

    let write = |name: &str, certs: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("listen:\n  - addr: \"127.0.0.1:8443\"\n    tls:\n      certificates:\n{certs}upstreams:\n  app: {{servers: [{{addr: \"127.0.0.1:9\"}}]}}\n"),
        )
        .unwrap();
        path
    };
    let run = |path: &std::path::Path| {
        std::process::Command::new(support::binary())
            .arg("check")
            .arg("-c")
            .arg(path)
            .output()
            .unwrap()
    };
    // Relative to the config file's directory.
    let ok = write(
        "ok.yaml",
        "        - {cert: a.pem, key: a.key}\n        - {cert: soon.pem, key: soon.key}\n",
    );
    let out = run(&ok);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("soon.pem expires on"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ok.yaml:6:"),
        "the warning names the line: {stderr}"
    );

    let bad = write(
        "bad.yaml",
        &format!("        - {{cert: a.pem, key: \"{}\"}}\n", b.key.display()),
    );
    let out = run(&bad);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:5:"), "{stderr}");
    assert!(
        stderr.contains("listen[0].tls.certificates[0].cert"),
        "{stderr}"
    );
    assert!(stderr.contains("does not match"), "{stderr}");
}

#[test]
fn static_files_over_http2_with_ranges_validators_and_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed(dir.path(), "a", &["a.example", "b.example"]);
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), b"shell").unwrap();
    let big: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(site.join("big.bin"), &big).unwrap();
    // The fallback routes the request again: on HTTP/2 it must keep routing by `:authority`.
    let rest = format!(
        "routes:\n  - {{host: b.example, path: /, respond: {{status: 200, body: other}}}}\n  - {{host: a.example, path: /, static: {{root: \"{}\", try_files: [\"$uri\", \"/index.html\"]}}}}\n",
        site.display()
    );
    let p = Proxy::start(&tls_config(&[(&a.cert, &a.key)], "", &rest));
    let config = client_config(
        std::slice::from_ref(&a.der),
        both_versions(),
        &[b"h2", b"http/1.1"],
    );
    let addr = p.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answers = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("a.example").unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (client, conn) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client.ready().await.unwrap();
        let mut answers = Vec::new();
        for (path, header) in [
            ("/big.bin", None),
            ("/big.bin", Some(("range", "bytes=131000-140000"))),
            ("/deep/client/route", None),
            ("/index.html", Some(("if-none-match", "*"))),
        ] {
            let mut req = http::Request::get(format!("https://a.example{path}"));
            if let Some((n, v)) = header {
                req = req.header(n, v);
            }
            let (resp, _) = client.send_request(req.body(()).unwrap(), true).unwrap();
            let resp = tokio::time::timeout(Duration::from_secs(10), resp)
                .await
                .unwrap()
                .unwrap();
            let status = resp.status().as_u16();
            let mut body = resp.into_body();
            let mut bytes = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            answers.push((status, bytes));
            client = client.ready().await.unwrap();
        }
        answers
    });
    assert_eq!(answers[0].0, 200);
    assert!(
        answers[0].1 == big,
        "the whole file, {} bytes",
        answers[0].1.len()
    );
    assert_eq!(answers[1].0, 206);
    assert!(answers[1].1 == big[131_000..=140_000]);
    assert_eq!(
        answers[2],
        (200, b"shell".to_vec()),
        "the fallback kept the host"
    );
    assert_eq!(answers[3], (304, Vec::new()));
}
