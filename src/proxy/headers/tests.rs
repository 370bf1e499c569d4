use super::*;

fn req(headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build("GET", b"/", None).unwrap();
    for (k, v) in headers {
        r.append_header(k.to_string(), *v).unwrap();
    }
    r
}

fn get<'a>(r: &'a RequestHeader, k: &str) -> Vec<&'a str> {
    r.headers
        .get_all(k)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[test]
fn client_addresses_are_written_as_display_writes_them() {
    let cases = [
        "0.0.0.0",
        "1.2.3.4",
        "10.0.99.100",
        "127.0.0.1",
        "255.255.255.255",
        "::1",
        "2001:db8::8a2e:370:7334",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "::ffff:255.255.255.255",
    ];
    for c in cases {
        let ip: IpAddr = c.parse().unwrap();
        let mut text = IpText::default();
        assert_eq!(text.format(ip), ip.to_string().as_bytes(), "{c}");
    }
    let mut r = req(&[("X-Forwarded-For", "203.0.113.9")]);
    prepare_upstream_request(
        &mut r,
        Some("192.0.2.10".parse().unwrap()),
        true,
        &HeaderValue::from_static("id"),
        false,
    )
    .unwrap();
    assert_eq!(get(&r, "x-forwarded-for"), ["203.0.113.9, 192.0.2.10"]);
    assert_eq!(get(&r, "x-real-ip"), ["192.0.2.10"]);
}

#[test]
fn hop_by_hop_removed_before_forwarded_headers_are_set() {
    let mut r = req(&[
        ("Host", "example.com"),
        (
            "Connection",
            "keep-alive, X-Forwarded-For, X-Secret, Content-Length",
        ),
        ("X-Secret", "s"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("HTTP2-Settings", "AAA"),
        ("X-Forwarded-For", "1.1.1.1"),
        ("Content-Length", "0"),
    ]);
    let id = HeaderValue::from_static("rid");
    prepare_upstream_request(&mut r, Some("10.0.0.9".parse().unwrap()), true, &id, false).unwrap();
    for gone in [
        "connection",
        "x-secret",
        "keep-alive",
        "te",
        "upgrade",
        "http2-settings",
    ] {
        assert!(get(&r, gone).is_empty(), "{gone} still there");
    }
    // Nominated X-Forwarded-For was removed, then ours set: the client's value is gone.
    assert_eq!(get(&r, "x-forwarded-for"), vec!["10.0.0.9"]);
    assert_eq!(get(&r, "content-length"), vec!["0"]);
    assert_eq!(get(&r, "host"), vec!["example.com"]);
    assert_eq!(get(&r, "x-forwarded-host"), vec!["example.com"]);
    assert_eq!(get(&r, "x-real-ip"), vec!["10.0.0.9"]);
    assert_eq!(get(&r, "x-forwarded-proto"), vec!["http"]);
    assert_eq!(get(&r, "x-request-id"), vec!["rid"]);
}

#[test]
fn forwarded_for_is_appended() {
    let mut r = req(&[
        ("X-Forwarded-For", "1.1.1.1"),
        ("X-Forwarded-For", "2.2.2.2"),
    ]);
    let id = HeaderValue::from_static("rid");
    prepare_upstream_request(&mut r, Some("::1".parse().unwrap()), true, &id, true).unwrap();
    assert_eq!(get(&r, "x-forwarded-for"), vec!["1.1.1.1, 2.2.2.2, ::1"]);
}

#[test]
fn websocket_upgrade_is_kept() {
    let mut r = req(&[
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Key", "k"),
    ]);
    assert!(upgrade_protocols(&r).is_some());
    let id = HeaderValue::from_static("rid");
    prepare_upstream_request(&mut r, None, true, &id, false).unwrap();
    assert_eq!(get(&r, "upgrade"), vec!["websocket"]);
    assert_eq!(get(&r, "connection"), vec!["Upgrade"]);
    assert_eq!(get(&r, "sec-websocket-key"), vec!["k"]);
}

#[test]
fn any_upgrade_but_h2c_is_kept() {
    let upgrade = |v: &str| {
        let mut r = req(&[("Upgrade", v), ("Connection", "Upgrade")]);
        prepare_upstream_request(&mut r, None, true, &HeaderValue::from_static("rid"), false)
            .unwrap();
        (
            get(&r, "upgrade").join("|"),
            get(&r, "connection").join("|"),
        )
    };
    assert_eq!(
        upgrade("custom_protocol"),
        ("custom_protocol".into(), "Upgrade".into())
    );
    assert_eq!(upgrade("h2c, foo/2"), ("foo/2".into(), "Upgrade".into()));
    assert_eq!(upgrade("h2c"), (String::new(), String::new()));
    // Without `Connection: upgrade` it is not an upgrade request.
    let mut r = req(&[("Upgrade", "custom_protocol")]);
    assert!(upgrade_protocols(&r).is_none());
    prepare_upstream_request(&mut r, None, true, &HeaderValue::from_static("rid"), false).unwrap();
    assert!(get(&r, "upgrade").is_empty());
}

#[test]
fn response_hop_by_hop_removed_except_for_101() {
    let mut resp = ResponseHeader::build(200, None).unwrap();
    resp.append_header("Connection", "close, X-Internal")
        .unwrap();
    resp.append_header("X-Internal", "1").unwrap();
    resp.append_header("Keep-Alive", "timeout=5").unwrap();
    resp.append_header("Content-Type", "text/plain").unwrap();
    prepare_downstream_response(&mut resp);
    assert!(resp.headers.get("connection").is_none());
    assert!(resp.headers.get("x-internal").is_none());
    assert!(resp.headers.get("keep-alive").is_none());
    assert!(resp.headers.get("content-type").is_some());
    let mut up = ResponseHeader::build(101, None).unwrap();
    up.append_header("Connection", "Upgrade").unwrap();
    up.append_header("Upgrade", "websocket").unwrap();
    prepare_downstream_response(&mut up);
    assert!(up.headers.get("upgrade").is_some());
}

#[test]
fn absolute_form_becomes_origin_form_with_the_target_host() {
    let mut r = RequestHeader::build("GET", b"http://t.example:8080/a?b=1", None).unwrap();
    r.append_header(crate::proxy::head::IGNORED_HOST, "other.example")
        .unwrap();
    assert_eq!(absolute_target(&r), Some(("t.example:8080", "/a?b=1")));
    origin_form(&mut r).unwrap();
    assert_eq!(r.raw_path(), b"/a?b=1");
    assert_eq!(get(&r, "host"), vec!["t.example:8080"]);
    let mut q = RequestHeader::build("GET", b"HTTP://t.example?x", None).unwrap();
    origin_form(&mut q).unwrap();
    assert_eq!(q.raw_path(), b"/?x");
    let plain = RequestHeader::build("GET", b"/http://x", None).unwrap();
    assert_eq!(absolute_target(&plain), None);
}

#[test]
fn request_ids() {
    let a = new_request_id();
    let b = new_request_id();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert!(acceptable_request_id(&a));
    assert!(!acceptable_request_id(&HeaderValue::from_static(
        "has space"
    )));
    assert!(!acceptable_request_id(&HeaderValue::from_static("")));
}
