//! S3 presigned reads: `GET /objects/{bucket}/{key}?expires=&signature=`, answered from a
//! [`LocalBucket`].
//!
//! Presigned URLs ([`LocalBucket::presign`]) carry an expiry and an HMAC signature of bucket, key
//! and expiry, checked here. Answers follow S3's: 403 `AccessDenied` for an expired link, 403
//! `SignatureDoesNotMatch` for a wrong one, 404 `NoSuchBucket`/`NoSuchKey`, 304 for a matching
//! `If-None-Match`; errors are JSON `{"error": message, "code": S3's code}`.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{Server, Shared, json_error};
use crate::objects::LocalBucket;

/// `GET /objects/{bucket}/{key}` (a key may hold slashes).
pub(super) fn router<F: Send + Sync + 'static>() -> Router<Arc<Server<F>>> {
    Router::new().route("/objects/{bucket}/{*key}", get(object::<F>))
}

/// The query of a presigned URL.
#[derive(Debug, Deserialize)]
struct Presigned {
    expires: Option<String>,
    signature: Option<String>,
}

/// A presigned read: checks the link, then answers the object.
async fn object<F>(
    State(server): Shared<F>,
    UrlPath((bucket, key)): UrlPath<(String, String)>,
    Query(presigned): Query<Presigned>,
    request: HeaderMap,
) -> Response {
    let mut response = object_response(&server.state.buckets, &bucket, key, &presigned, &request)
        .await
        .unwrap_or_else(|(status, code, message)| json_error(status, Some(code), &message));
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// S3's answer to a presigned GET, or its status, error code and message.
async fn object_response(
    buckets: &[Arc<LocalBucket>],
    bucket: &str,
    key: String,
    presigned: &Presigned,
    request: &HeaderMap,
) -> Result<Response, (StatusCode, &'static str, String)> {
    let Some(bucket) = buckets.iter().find(|b| b.name() == bucket) else {
        return Err((
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            format!("The specified bucket does not exist: {bucket}"),
        ));
    };
    let denied = |code, message: &str| Err((StatusCode::FORBIDDEN, code, message.to_owned()));
    let (Some(expires), Some(signature)) = (
        presigned.expires.as_deref().and_then(|e| e.parse().ok()),
        presigned.signature.as_deref(),
    ) else {
        return denied(
            "AccessDenied",
            "Query-string authentication requires the expires and signature parameters",
        );
    };
    if expires < crate::now_ms() / 1000 {
        return denied("AccessDenied", "Request has expired");
    }
    if !bucket.verify(&key, expires, signature) {
        return denied(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let reader = Arc::clone(bucket);
    let read = tokio::task::spawn_blocking(move || {
        let object = reader.read(&key);
        (key, object)
    })
    .await;
    let internal = |message: String| (StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message);
    let (key, object) = read.map_err(|error| internal(error.to_string()))?;
    let object = object.map_err(|error| internal(error.to_string()))?;
    let Some(object) = object else {
        return Err((
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.".to_owned(),
        ));
    };
    let etag = HeaderValue::from_str(&object.etag)
        .map_err(|error| internal(format!("ETag {}: {error}", object.etag)))?;
    if etag_matches(request, &object.etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let content_type = if Path::new(&key)
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gz"))
    {
        "application/gzip"
    } else {
        "application/octet-stream"
    };
    let headers = [
        (header::ETAG, etag),
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
    ];
    Ok((headers, object.bytes).into_response())
}

/// Whether the request's `If-None-Match` names `etag` (or is `*`); weak tags compare equal.
fn etag_matches(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}
