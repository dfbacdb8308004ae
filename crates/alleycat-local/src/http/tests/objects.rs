//! Presigned reads.

use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};

use super::*;

/// The path and query of a presigned URL.
fn local(url: &str) -> &str {
    url.strip_prefix("http://127.0.0.1:1").unwrap()
}

#[tokio::test]
async fn presigned_reads_answer_the_object() {
    let stack = stack(FakeApi::default());
    let etag = stack
        .bucket
        .write("class-3.json.gz", b"gzipped", None)
        .unwrap();
    stack.bucket.write("notes/raw", b"raw", None).unwrap();
    let url = stack
        .bucket
        .presign("class-3.json.gz", Duration::from_secs(60));

    let (status, headers, body) = stack.get(local(&url)).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"gzipped"[..]));
    assert_eq!(headers[header::ETAG], etag.as_str());
    assert_eq!(headers[header::CONTENT_TYPE], "application/gzip");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");

    let again = HttpRequest::get(local(&url))
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = stack.send(again).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(headers[header::ETAG], etag.as_str());
    assert!(body.is_empty());

    let nested = stack.bucket.presign("notes/raw", Duration::from_secs(60));
    let (status, headers, body) = stack.get(local(&nested)).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"raw"[..]));
    assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
}

#[tokio::test]
async fn bad_links_are_refused_as_s3_refuses_them() {
    let stack = stack(FakeApi::default());
    stack.bucket.write("class-3.json.gz", b"x", None).unwrap();
    let url = stack
        .bucket
        .presign("class-3.json.gz", Duration::from_secs(60));
    let mut tampered = url.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let other_key = url.replace("class-3", "class-4");
    let signature = url.split_once("signature=").unwrap().1;
    let expired = format!("/objects/history/class-3.json.gz?expires=1&signature={signature}");

    for (uri, code) in [
        (local(&tampered), "SignatureDoesNotMatch"),
        (local(&other_key), "SignatureDoesNotMatch"),
        (expired.as_str(), "AccessDenied"),
        ("/objects/history/class-3.json.gz", "AccessDenied"),
        (
            "/objects/history/class-3.json.gz?expires=soon&signature=x",
            "AccessDenied",
        ),
    ] {
        let (status, headers, body) = stack.get(uri).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(json_body(&body)["code"], code, "{uri}");
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }
}

#[tokio::test]
async fn missing_objects_and_buckets_are_not_found() {
    let stack = stack(FakeApi::default());
    let url = stack
        .bucket
        .presign("class-5.json.gz", Duration::from_secs(60));
    let (status, _, body) = stack.get(local(&url)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json_body(&body)["code"], "NoSuchKey");

    let elsewhere = url.replace("/objects/history/", "/objects/delivery/");
    let (status, _, body) = stack.get(local(&elsewhere)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json_body(&body)["code"], "NoSuchBucket");
}
