//! [`serve`] on a loopback listener, spoken to in raw HTTP/1.1.

use std::time::Duration;

use axum::http::Method;

use super::*;

#[tokio::test]
async fn serve_answers_on_a_listener_until_shutdown() {
    let stack = stack(FakeApi::answering(json_answer()));
    let (addr, stop, server) = stack.listen().await;
    let response = exchange(
        addr,
        b"GET /api/config HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(response.ends_with(r#"{"ok":true}"#), "{response}");
    let event = stack.api.last();
    assert_eq!(
        event.request_context.http.source_ip.as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(event.headers["x-forwarded-for"], "127.0.0.1");

    stopped(stop, server).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// One request on a fresh connection, and everything answered until the server closes it (the
/// shared raw client, [`crate::testing::exchange`], on a blocking thread).
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let request = request.to_vec();
    let response = tokio::task::spawn_blocking(move || {
        crate::testing::exchange(addr, &request, Duration::from_secs(20))
    })
    .await
    .unwrap()
    .expect("the server closes the connection");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_unfinished_headers_is_dropped_and_others_are_served() {
    let stack = stack(FakeApi::answering(json_answer()));
    let (addr, stop, server) = stack.listen().await;
    // Headers that never end: the connection is closed (with a 408 at most), never served.
    let stalled = tokio::spawn(exchange(addr, b"GET /api/config HTTP/1.1\r\nHost: x\r\n"));
    let served = exchange(
        addr,
        b"GET /_local/status HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(served.await.starts_with("HTTP/1.1 200"));
    let stalled = stalled.await.unwrap();
    assert!(
        stalled.is_empty() || stalled.starts_with("HTTP/1.1 408"),
        "{stalled}"
    );
    assert!(stack.api.events.lock().unwrap().is_empty());
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn head_is_answered_wherever_get_is() {
    let stack = stack(FakeApi::answering(json_answer()));
    let (addr, stop, server) = stack.listen().await;
    let object = stack
        .bucket
        .presign("class-1.json.gz", Duration::from_secs(60));
    stack
        .bucket
        .write("class-1.json.gz", b"history", None)
        .unwrap();
    let object_path = object.trim_start_matches("http://127.0.0.1:1");
    for path in ["/api/config", "/_local/status", "/", object_path] {
        let get = exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        let head = exchange(
            addr,
            format!("HEAD {path} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        let status = |answer: &str| answer.lines().next().unwrap_or_default().to_owned();
        assert_eq!(status(&head), status(&get), "HEAD {path}: {head}");
        assert!(status(&get).starts_with("HTTP/1.1 20"), "GET {path}: {get}");
        assert!(head.ends_with("\r\n\r\n"), "HEAD {path} has a body: {head}");
    }
    // The function saw a GET for the HEAD.
    assert_eq!(stack.api.last().request_context.http.method, Method::GET);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
