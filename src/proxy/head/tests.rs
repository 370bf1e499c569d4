//! The head scanner on whole heads, split heads and every refusal.

use super::*;

fn scan(parts: &[&[u8]]) -> (Verdict, Vec<u8>) {
    let mut s = HeadScanner::new(MAX_REQUEST_LINE);
    let mut out = Vec::new();
    for p in parts {
        let mut chunk = p.to_vec();
        let v = s.feed(&mut chunk);
        out.extend_from_slice(&chunk);
        if v != Verdict::More {
            return (v, out);
        }
    }
    (Verdict::More, out)
}

fn verdict(bytes: &[u8]) -> Verdict {
    scan(&[bytes]).0
}

#[test]
fn finds_the_end_of_a_head_split_anywhere() {
    let full = b"GET / HTTP/1.1\r\nHost: a\r\nX-Y: z\r\n\r\n";
    assert_eq!(verdict(full), Verdict::End(full.len()));
    for cut in 1..full.len() {
        let (a, b) = full.split_at(cut);
        let mut s = HeadScanner::new(MAX_REQUEST_LINE);
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        assert_eq!(s.feed(&mut a), Verdict::More, "cut {cut}");
        assert_eq!(s.feed(&mut b), Verdict::End(b.len()), "cut {cut}");
    }
    assert_eq!(
        verdict(b"GET / HTTP/1.1\nHost: a\n\nBODY"),
        Verdict::End(24)
    );
    assert_eq!(
        verdict(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        Verdict::End(31)
    );
    assert_eq!(verdict(b"GET / HTTP/1.1\r\nHost: a\r\n"), Verdict::More);
}

#[test]
fn rejects_what_rfc_9112_forbids() {
    let bad = |b: &[u8]| matches!(verdict(b), Verdict::Reject(Reject::Bad(_)));
    assert!(
        bad(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
        "space before colon"
    );
    assert!(
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n"),
        "obs-fold"
    );
    assert!(
        bad(b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"),
        "bare CR in value"
    );
    assert!(
        bad(b"GET / HTTP/1.1\r\nHost: a\r\n\rX\r\n"),
        "bare CR at the end"
    );
    assert!(
        bad(b"GET / HTTP/1.1\rHost: a\r\n\r\n"),
        "bare CR in request line"
    );
    assert!(bad(b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n"), "NUL");
    assert!(bad(b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n"), "control");
    assert!(bad(b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n"), "DEL");
    assert!(bad(b"GET /\x00 HTTP/1.1\r\n\r\n"), "NUL in target");
    assert!(bad(b"GET / HTTP/1.1\r\n: a\r\n\r\n"), "empty name");
    assert!(bad(b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"), "fragment");
    assert!(bad(b"GET / HTTP/1.1\r\nX(y): a\r\n\r\n"), "non-token name");
    assert!(
        bad(b"POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n"),
        "two CL"
    );
    assert!(
        bad(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        "CL+TE"
    );
    assert!(
        bad(b"GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n"),
        "two Host"
    );
    // Allowed: tabs and obs-text in values, odd but valid tokens.
    assert!(matches!(
        verdict(b"GET / HTTP/1.1\r\nX-A!#: a\tb\xe9\r\n\r\n"),
        Verdict::End(_)
    ));
}

#[test]
fn limits_the_request_line_and_the_number_of_fields() {
    let long = [
        b"GET /".as_slice(),
        &vec![b'a'; MAX_REQUEST_LINE],
        b" HTTP/1.1\r\n\r\n",
    ]
    .concat();
    assert_eq!(verdict(&long), Verdict::Reject(Reject::UriTooLong));
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_FIELDS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(verdict(&many), Verdict::Reject(Reject::TooManyFields));
}

#[test]
fn renames_host_of_an_absolute_form_request() {
    let (v, out) = scan(&[b"GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\nX: 1\r\n\r\n"]);
    assert!(matches!(v, Verdict::End(_)));
    assert_eq!(
        out,
        b"GET http://a.example/x HTTP/1.1\r\nx-sy: b.example\r\nX: 1\r\n\r\n"
    );
    // Origin form: Host stays.
    let (_, out) = scan(&[b"GET /x HTTP/1.1\r\nHost: b\r\n\r\n"]);
    assert_eq!(out, b"GET /x HTTP/1.1\r\nHost: b\r\n\r\n");
    // Two Host fields are refused in either form.
    assert!(matches!(
        verdict(b"GET http://a/ HTTP/1.1\r\nHost: b\r\nHost: c\r\n\r\n"),
        Verdict::Reject(Reject::Bad(_))
    ));
}
