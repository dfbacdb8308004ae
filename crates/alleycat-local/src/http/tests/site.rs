//! The stack's status and the frontend.

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::json;

use super::*;

#[tokio::test]
async fn status_is_the_stacks_json() {
    let (status, headers, body) = stack(FakeApi::default()).get("/_local/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(json_body(&body), json!({ "stack": "up" }));
}

/// A stack with a built frontend, and a secret beside it.
fn with_frontend() -> Stack {
    let mut stack = stack(FakeApi::default());
    let dist = stack.dir.path().join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(dist.join("index.html"), "<html>app</html>").unwrap();
    std::fs::write(dist.join("assets/index-Ab12.js"), "console.log(1)").unwrap();
    std::fs::write(dist.join("favicon.ico"), [0u8, 0, 1, 0]).unwrap();
    std::fs::write(stack.dir.path().join("secret.txt"), "secret").unwrap();
    stack.frontend = Some(dist);
    stack
}

#[tokio::test]
async fn frontend_files_are_served_and_app_routes_fall_back_to_the_index() {
    let stack = with_frontend();
    for (uri, kind, body) in [
        ("/", "text/html; charset=utf-8", &b"<html>app</html>"[..]),
        (
            "/index.html",
            "text/html; charset=utf-8",
            b"<html>app</html>",
        ),
        (
            "/assets/index-Ab12.js",
            "text/javascript; charset=utf-8",
            b"console.log(1)",
        ),
        ("/favicon.ico", "image/x-icon", &[0, 0, 1, 0]),
        ("/races/3", "text/html; charset=utf-8", b"<html>app</html>"),
        ("/assets", "text/html; charset=utf-8", b"<html>app</html>"),
    ] {
        let (status, headers, got) = stack.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(headers[header::CONTENT_TYPE], kind, "{uri}");
        assert_eq!(got, body, "{uri}");
    }
    let (_, headers, _) = stack.get("/assets/index-Ab12.js").await;
    assert!(
        headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let (status, _, _) = stack.get("/missing.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = stack
        .send(
            HttpRequest::delete("/index.html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn paths_never_leave_the_frontend() {
    let stack = with_frontend();
    for uri in [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%zz",
    ] {
        let (status, _, body) = stack.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_ne!(body, b"secret", "{uri}");
    }
    #[cfg(unix)]
    {
        let dist = stack.frontend.as_deref().unwrap();
        std::os::unix::fs::symlink(stack.dir.path().join("secret.txt"), dist.join("leak.txt"))
            .unwrap();
        let (status, _, body) = stack.get("/leak.txt").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_ne!(body, b"secret");
    }
}

#[tokio::test]
async fn without_a_frontend_the_root_says_how_to_build_it_and_links_the_api() {
    let stack = stack(FakeApi::default());
    let request = HttpRequest::get("/")
        .header(header::HOST, "127.0.0.1:8080")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = stack.send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let page = String::from_utf8(body).unwrap();
    for expected in [
        "npm ci &amp;&amp; npm run build",
        "--frontend-dir",
        "href=\"/api/config\"",
        "href=\"/api/races?classId=1\"",
        "href=\"/api/leaderboard?classId=1\"",
        "AWS_ENDPOINT_URL=http://127.0.0.1:8080",
    ] {
        assert!(page.contains(expected), "{expected} in {page}");
    }
    let (status, _, _) = stack.get("/races/3").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A frontend directory that is not built yet is named.
    let mut unbuilt = stack;
    unbuilt.frontend = Some(unbuilt.dir.path().join("dist"));
    let (status, _, body) = unbuilt.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("has no <code>index.html</code>")
    );
}

#[tokio::test]
async fn paths_no_router_claims_fall_back_to_the_frontend_whatever_their_prefix() {
    let stack = with_frontend();
    for uri in [
        "/_local",
        "/_local/",
        "/_local/other",
        "/objects",
        "/objects/history",
    ] {
        let (status, headers, body) = stack.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{uri}"
        );
        assert_eq!(body, b"<html>app</html>", "{uri}");
    }
    for (method, uri) in [("POST", "/_local/status"), ("DELETE", "/")] {
        let request = HttpRequest::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = stack.send(request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
    }
}
