//! gRPC through `h2c` pools (SPEC §13): unary and server-streaming calls from an HTTP/2 client
//! (h2c with prior knowledge), an error status with its message, a `grpc_14` answer retried
//! on the next server and counted by its breaker, and an HTTP/1.1 client's request to an h2c
//! pool. The servers are gRPC over HTTP/2 written with the `h2` crate: length-prefixed
//! messages, `grpc-status` and `grpc-message` in trailers or in a trailers-only answer.

use crate::support::{self, Proxy, metric};

use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// One gRPC message: the 5-byte prefix (uncompressed, length) and its bytes.
fn frame(msg: &[u8]) -> Bytes {
    let mut out = vec![0u8];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(msg);
    out.into()
}

/// The messages in a gRPC body.
fn messages(mut body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let n = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        out.push(body[5..5 + n].to_vec());
        body = &body[5 + n..];
    }
    out
}

/// A gRPC server on 127.0.0.1 (h2c) named `name`:
/// - `/t.Echo/Unary` echoes the message prefixed with its name;
/// - `/t.Echo/Count` streams `n` messages, one per 50 ms, for a request message `n`;
/// - `/t.Echo/Fail` answers trailers-only `grpc-status: 5` (NOT_FOUND) with a message;
/// - `/t.Echo/Flaky` answers trailers-only `14` (UNAVAILABLE) when `flaky`, else echoes.
struct GrpcServer {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

impl GrpcServer {
    fn start(name: &'static str, flaky: bool) -> GrpcServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let calls = counted.clone();
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(tcp).await else {
                        return;
                    };
                    while let Some(Ok((req, respond))) = conn.accept().await {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(serve_call(name, flaky, req, respond));
                    }
                });
            }
        });
        GrpcServer {
            addr,
            calls,
            _rt: rt,
        }
    }
}

async fn serve_call(
    name: &str,
    flaky: bool,
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let path = req.uri().path().to_string();
    let te = req.headers().get("te").cloned();
    let mut body = req.into_body();
    let mut got = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        got.extend_from_slice(&chunk);
    }
    let input = messages(&got).into_iter().next().unwrap_or_default();
    let head = |status: Option<(&str, &str)>| {
        let mut b = http::Response::builder()
            .status(200)
            .header("content-type", "application/grpc");
        if let Some((code, msg)) = status {
            b = b.header("grpc-status", code).header("grpc-message", msg);
        }
        b.body(()).unwrap()
    };
    if te.as_ref().is_none_or(|v| v != "trailers") {
        let _ = respond.send_response(head(Some(("3", "te: trailers missing"))), true);
        return;
    }
    let trailers = |code: &str| {
        let mut t = http::HeaderMap::new();
        t.insert("grpc-status", code.parse().unwrap());
        t
    };
    match path.as_str() {
        "/t.Echo/Fail" => {
            let _ = respond.send_response(head(Some(("5", "no such thing"))), true);
        }
        "/t.Echo/Flaky" if flaky => {
            let _ = respond.send_response(head(Some(("14", "going away"))), true);
        }
        "/t.Echo/Count" => {
            let n: usize = String::from_utf8_lossy(&input).parse().unwrap_or(0);
            let Ok(mut send) = respond.send_response(head(None), false) else {
                return;
            };
            for i in 0..n {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if send
                    .send_data(frame(format!("{name} {i}").as_bytes()), false)
                    .is_err()
                {
                    return;
                }
            }
            let _ = send.send_trailers(trailers("0"));
        }
        _ => {
            let Ok(mut send) = respond.send_response(head(None), false) else {
                return;
            };
            let mut msg = format!("{name}: ").into_bytes();
            msg.extend_from_slice(&input);
            let _ = send.send_data(frame(&msg), false);
            let _ = send.send_trailers(trailers("0"));
        }
    }
}

/// What a gRPC client saw of one call.
#[derive(Debug)]
struct Call {
    status: u16,
    /// When each message arrived, after the call began.
    arrivals: Vec<Duration>,
    messages: Vec<String>,
    /// `grpc-status` and `grpc-message`, from the trailers or a trailers-only head.
    grpc_status: Option<String>,
    grpc_message: Option<String>,
}

async fn call(client: &mut h2::client::SendRequest<Bytes>, path: &str, msg: &str) -> Call {
    let req = http::Request::post(format!("http://grpc.test{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let started = std::time::Instant::now();
    let mut ready = client.clone().ready().await.unwrap();
    let (resp, mut send) = ready.send_request(req, false).unwrap();
    send.send_data(frame(msg.as_bytes()), true).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), resp)
        .await
        .expect("an answer in time")
        .unwrap();
    let status = resp.status().as_u16();
    let head_status = resp
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string());
    let head_message = resp
        .headers()
        .get("grpc-message")
        .map(|v| v.to_str().unwrap().to_string());
    let mut body = resp.into_body();
    let mut arrivals = Vec::new();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        arrivals.extend(std::iter::repeat_n(
            started.elapsed(),
            messages(&chunk).len(),
        ));
        bytes.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap();
    let from_trailers = |n: &str| {
        trailers
            .as_ref()
            .and_then(|t| t.get(n))
            .map(|v| v.to_str().unwrap().to_string())
    };
    Call {
        status,
        arrivals,
        messages: messages(&bytes)
            .into_iter()
            .map(|m| String::from_utf8(m).unwrap())
            .collect(),
        grpc_status: head_status.or_else(|| from_trailers("grpc-status")),
        grpc_message: head_message.or_else(|| from_trailers("grpc-message")),
    }
}

#[test]
fn grpc_calls_pass_through_an_h2c_pool() {
    let flaky = GrpcServer::start("a", true);
    let good = GrpcServer::start("b", false);
    let p = Proxy::start(&format!(
        "listen: [\"{{listen}}\"]\nadmin: {{listen: \"{{admin}}\"}}\nthreads: 1\nupstreams:\n  grpc:\n    protocol: h2c\n    balance: round_robin\n    retry: {{on: [error, timeout, grpc_14]}}\n    circuit_breaker: {{on: [error, grpc_14], failures: 100}}\n    health_check: {{path: /t.Echo/Unary, interval: 100ms}}\n    servers: [{{addr: \"{}\"}}, {{addr: \"{}\"}}]\n",
        flaky.addr, good.addr
    ));
    // Health checks speak HTTP/2 to an h2c pool: the servers answer them, and stay healthy.
    support::wait_until(
        "both servers answered health checks",
        Duration::from_secs(5),
        || flaky.calls.load(Ordering::SeqCst) >= 3 && good.calls.load(Ordering::SeqCst) >= 3,
    );
    for server in [flaky.addr, good.addr] {
        let healthy = metric(
            &p,
            &format!("switchyard_upstream_healthy{{server=\"{server}\",upstream=\"grpc\"}}"),
        );
        assert_eq!(healthy, 1.0, "{server}");
    }
    let addr = p.addr;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (unary, stream, fail, flaky_calls) = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut client = client;
        let mut unary = Vec::new();
        for i in 0..2 {
            unary.push(call(&mut client, "/t.Echo/Unary", &format!("hello {i}")).await);
        }
        let stream = call(&mut client, "/t.Echo/Count", "4").await;
        let fail = call(&mut client, "/t.Echo/Fail", "x").await;
        let mut flaky_calls = Vec::new();
        for _ in 0..4 {
            flaky_calls.push(call(&mut client, "/t.Echo/Flaky", "again").await);
        }
        (unary, stream, fail, flaky_calls)
    });

    // Unary: each answer with its trailers, from both servers in turn.
    let mut texts: Vec<String> = unary.iter().flat_map(|c| c.messages.clone()).collect();
    texts.sort();
    assert_eq!(texts, ["a: hello 0", "b: hello 1"], "{unary:?}");
    assert!(
        unary
            .iter()
            .all(|c| c.status == 200 && c.grpc_status.as_deref() == Some("0"))
    );

    // Server streaming: four messages, passed on as they come (not gathered to the end).
    assert_eq!(stream.messages.len(), 4, "{stream:?}");
    assert_eq!(stream.grpc_status.as_deref(), Some("0"));
    let spread = stream.arrivals[3] - stream.arrivals[0];
    assert!(
        spread >= Duration::from_millis(100),
        "messages arrived together: {stream:?}"
    );

    // An error status and its message reach the client; NOT_FOUND is not a server failure.
    assert_eq!(fail.grpc_status.as_deref(), Some("5"));
    assert_eq!(fail.grpc_message.as_deref(), Some("no such thing"));

    // UNAVAILABLE from `a` is listed in retry.on: every call is answered by `b`.
    for c in &flaky_calls {
        assert_eq!(c.grpc_status.as_deref(), Some("0"), "{c:?}");
        assert_eq!(c.messages, ["b: again"]);
    }
    let grpc_errors = metric(
        &p,
        &format!(
            "switchyard_upstream_attempts_total{{outcome=\"grpc_error\",server=\"{}\",upstream=\"grpc\"}}",
            flaky.addr
        ),
    );
    assert!(
        grpc_errors >= 1.0,
        "grpc_14 counted against the server: {grpc_errors}"
    );
    let retries = metric(
        &p,
        "switchyard_retries_total{reason=\"grpc_14\",upstream=\"grpc\"}",
    );
    assert!(retries >= 1.0, "retries by grpc_14: {retries}");

    // An HTTP/1.1 client reaches the same h2c pool (the server checks `te: trailers`, which
    // an HTTP/1.1 client sends too).
    let r = support::request(
        p.addr,
        "POST",
        "/t.Echo/Unary",
        &[("Content-Type", "application/grpc"), ("TE", "trailers")],
        &frame(b"one"),
    );
    assert_eq!(r.status, 200);
    let got = messages(&r.body);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].ends_with(b": one"),
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
}
