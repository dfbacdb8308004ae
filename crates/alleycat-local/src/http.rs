//! The stack's HTTP server: what API Gateway, S3 presigned URLs, the Kinesis endpoint and the
//! frontend's hosting are on AWS, on one axum listener.
//!
//! | request | answered by | AWS counterpart |
//! |---|---|---|
//! | any method on `/api/…` | the `api` function | HTTP API, `$default` stage, payload v2 |
//! | `GET /objects/{bucket}/{key}?expires=&signature=` | a [`LocalBucket`] | S3 presigned GET |
//! | `POST /` with `X-Amz-Target: Kinesis_20131202.<Op>` | the [`LocalStream`] | Kinesis (awsJson1.1) |
//! | `GET /_local/status` | the stack's status (JSON) | — |
//! | `POST /_local/identity` | a new identity and its token ([`Identities`]) | Cognito `GetId` |
//! | any other `GET` | the built frontend, `index.html` for app routes | the site's bucket and CDN |
//!
//! **API.** A request under `/api` becomes the event an HTTP API's `$default` stage would send:
//! `rawPath` without the `/api` prefix, the raw and the decoded query string, lower-case headers
//! with repeated ones joined by commas, `Cookie` moved into `cookies`, `X-Forwarded-*` added, the
//! body as text or base64. The function is invoked through [`crate::sources::invoke`], exactly as
//! the event sources invoke theirs, and its response is mapped back as API Gateway maps it:
//! status, headers, `multiValueHeaders` (replacing a header's single value), `cookies` as
//! `Set-Cookie`, a base64 body decoded. A failed invocation is a 502, as on API Gateway. CORS is
//! the function's business: preflight `OPTIONS` requests reach it like any other, and every
//! method (`POST` and `DELETE` included) reaches it with its body.
//!
//! **Callers.** As API Gateway's IAM authorizer does with a Cognito identity's signature, an
//! `Authorization: Alleycat <identityId>:<token>` header is verified before the function runs: a
//! valid one puts the identity in `requestContext.authorizer.iam.cognitoIdentity`, anything else
//! in that header is a 403 `{"message":"Forbidden"}` and the function is not invoked. The header
//! itself is not passed on: the function trusts the authorizer, and the token stays here.
//!
//! **Objects.** Presigned URLs ([`LocalBucket::presign`]) carry an expiry and an HMAC signature
//! of bucket, key and expiry, checked here. Answers follow S3's: 403 `AccessDenied` for an
//! expired link, 403 `SignatureDoesNotMatch` for a wrong one, 404 `NoSuchBucket`/`NoSuchKey`,
//! 304 for a matching `If-None-Match`; errors are JSON `{"error": message, "code": S3's code}`.
//!
//! **Kinesis.** Enough of the Kinesis API for the AWS SDK to write to the stack (the
//! simulator's `--target kinesis` with `AWS_ENDPOINT_URL=http://127.0.0.1:PORT`): `PutRecords`,
//! `PutRecord`, `DescribeStreamSummary`, `DescribeStream`, `ListShards` (every shard on one page)
//! and `CreateStream` (of the stack's stream only: `ResourceInUseException`). Records are
//! appended in one transaction before the response goes out, so an acknowledged record is
//! durable. Requests are validated as Kinesis validates them and errors carry Kinesis's
//! `__type`s and messages: a stream ARN of another account is `AccessDeniedException`, of another
//! region `ResourceNotFoundException` (the stack is one account, `000000000000`, in one region,
//! `local`); an `ExplicitHashKey` that is not a decimal number is a `ValidationException`, one
//! beyond 2^128-1 an `InvalidArgumentException`. A valid `ExplicitHashKey` and
//! `SequenceNumberForOrdering` are otherwise ignored: a record's shard is always its partition
//! key's. **SigV4 signatures are not checked**: the
//! server is meant for the loopback interface, where nothing else is authenticated either.
//!
//! **Frontend.** Files of the built frontend (`frontend/dist`) with their content types, and
//! `index.html` for extension-less paths (the app's own routes). Paths are decoded and checked
//! segment by segment, and the file must resolve inside the directory: no `..`, no symlink
//! leads out. Without a built frontend, `/` explains how to build it and links the API.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alleycat_lambda::Function;
use aws_lambda_events::encodings::Body as LambdaBody;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::identity::{Identities, authorizer};
use crate::objects::LocalBucket;
use crate::sources::{Invocations, invoke};
use crate::stream::{LocalStream, sequence_string, shard_id};

/// Largest request body read (API Gateway's payload limit; also above Kinesis's 5 MiB
/// `PutRecords` limit once base64-encoded).
const MAX_BODY: usize = 10 * 1024 * 1024;

/// The account in API events, Kinesis ARNs and messages.
const ACCOUNT_ID: &str = "000000000000";

/// What the server answers from: the parts of the stack it fronts.
pub struct HttpState<F> {
    /// The function behind `/api/…`.
    pub api: Arc<F>,
    /// The buckets whose presigned URLs `/objects/…` serves.
    pub buckets: Vec<Arc<LocalBucket>>,
    /// The stream the Kinesis endpoint writes.
    pub stream: Arc<LocalStream>,
    /// Where the API's invocations are counted.
    pub invocations: Arc<Invocations>,
    /// The built frontend (`frontend/dist`), if any.
    pub frontend: Option<PathBuf>,
    /// Verifies callers' identities, and mints new ones at `/_local/identity`.
    pub identities: Identities,
    /// The stack's status, answered at `/_local/status`.
    pub status: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
}

/// A function that can serve `/api/…`: an HTTP API (payload v2) handler such as `api::Api`.
/// Every such [`Function`] is one; the trait only names the bounds.
pub trait ApiFunction:
    Function<Event = ApiGatewayV2httpRequest, Response = ApiGatewayV2httpResponse>
    + Send
    + Sync
    + 'static
{
}

impl<F> ApiFunction for F where
    F: Function<Event = ApiGatewayV2httpRequest, Response = ApiGatewayV2httpResponse>
        + Send
        + Sync
        + 'static
{
}

/// The handlers' shared state.
struct Server<F> {
    state: HttpState<F>,
    /// When the router was built: the stream's `StreamCreationTimestamp`.
    started_ms: u64,
}

type Shared<F> = State<Arc<Server<F>>>;

/// The server's routes (see the module's table), answering from `state`.
pub fn router<F: ApiFunction>(state: HttpState<F>) -> Router {
    let server = Arc::new(Server {
        state,
        started_ms: crate::now_ms(),
    });
    Router::new()
        .route("/api", any(api::<F>))
        .route("/api/", any(api::<F>))
        .route("/api/{*path}", any(api::<F>))
        .route("/objects/{bucket}/{*key}", get(object::<F>))
        .route("/_local/status", get(status::<F>))
        .route("/_local/identity", post(issue_identity::<F>))
        .route("/", post(kinesis::<F>).get(frontend::<F>))
        .fallback(frontend::<F>)
        .with_state(server)
}

/// How long a client has to send a request's headers, once connected or between two requests
/// of a kept-alive connection (hyper's header read timeout). A client that connects and stalls
/// then costs a socket and a small task for a few seconds, never a worker.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves [`router`]`(state)` on `listener` (HTTP/1.1) until `shutdown` resolves, then lets the
/// requests in progress finish. axum's own `serve` has no header read timeout, so connections
/// are served here with hyper directly: each by its own task, with [`HEADER_READ_TIMEOUT`].
pub async fn serve<F: ApiFunction>(
    listener: tokio::net::TcpListener,
    state: HttpState<F>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most often: retried shortly, not in a busy loop.
                    tracing::warn!(%error, "the HTTP server could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let service =
            app.clone()
                .map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.map(Body::new)
                });
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let connection = builder.serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            );
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stopping.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A JSON error `{"error": message}`, with S3's or API Gateway's `code` if given.
fn json_error(status: StatusCode, code: Option<&str>, message: &str) -> Response {
    let body = match code {
        Some(code) => json!({ "error": message, "code": code }),
        None => json!({ "error": message }),
    };
    (status, axum::Json(body)).into_response()
}

/// `n` random bytes.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    fastrand::fill(&mut bytes);
    bytes
}

// ---------------------------------------------------------------------------------------------
// API Gateway: /api/… → the api function

/// `apigw-requestid`: the header API Gateway names each request with.
const REQUEST_ID: HeaderName = HeaderName::from_static("apigw-requestid");

/// Invokes the function with the request as an HTTP API event, and answers its response.
///
/// `HEAD` is answered as the `GET` of the same URL without its body (headers, `Content-Length`
/// included, as they are): the `api` function routes `GET` only, and a `HEAD` wherever a `GET`
/// works is what HTTP asks of a server (and what CloudFront in front of an API does).
async fn api<F: ApiFunction>(State(server): Shared<F>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let head = parts.method == Method::HEAD;
    if head {
        parts.method = Method::GET;
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            "Request Entity Too Large",
        );
    };
    let source = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let state = &server.state;
    let authorization = parts.headers.get(header::AUTHORIZATION);
    let Ok(caller) = state
        .identities
        .caller(authorization.map(HeaderValue::as_bytes))
    else {
        let body = json!({ "message": "Forbidden" });
        return (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    };
    // Eleven random bytes in base64, as API Gateway's own ids look ("BcNk5gWoIAMEJxw=").
    let request_id = BASE64.encode(random_bytes(11));
    let mut event = http_api_event(&parts, &body, source, &request_id, crate::now_ms());
    event.headers.remove(header::AUTHORIZATION);
    event.request_context.authorizer = caller.as_deref().map(authorizer);
    let answer =
        invoke::<F, _, ApiGatewayV2httpResponse>(&*state.api, &event, &state.invocations).await;
    let mut response = match answer {
        Ok(answer) => http_response(answer),
        Err(error) => {
            tracing::error!(%error, path = parts.uri.path(), "api invocation failed");
            bad_gateway(&error.to_string())
        }
    };
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    if head {
        return without_body(response).await;
    }
    response
}

/// `response` as the answer to a `HEAD`: its status and headers, with the length of the body it
/// leaves out.
async fn without_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    if let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    }
    Response::from_parts(parts, Body::empty())
}

/// What API Gateway answers when the integration fails.
fn bad_gateway(detail: &str) -> Response {
    let body = json!({ "error": "Internal Server Error", "detail": detail });
    (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response()
}

/// The payload v2 event an HTTP API's `$default` stage sends for a request to `/api/…`, received
/// from `source` at `now_ms`.
fn http_api_event(
    parts: &Parts,
    body: &[u8],
    source: Option<IpAddr>,
    request_id: &str,
    now_ms: u64,
) -> ApiGatewayV2httpRequest {
    let path = match parts.uri.path().strip_prefix("/api") {
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        _ => "/".to_owned(),
    };
    let source = source.map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string());
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let (headers, cookies) = event_headers(&parts.headers, &source, &host, now_ms);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some("$default".to_owned());
    event.raw_path = Some(path.clone());
    event.raw_query_string = Some(parts.uri.query().unwrap_or_default().to_owned());
    event.query_string_parameters = query_parameters(&parts.uri).into();
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    (event.body, event.is_base64_encoded) = event_body(&headers, body);
    event.headers = headers;
    set_legacy_method(&mut event, &parts.method);

    let context = &mut event.request_context;
    context.route_key = Some("$default".to_owned());
    context.stage = Some("$default".to_owned());
    context.account_id = Some(ACCOUNT_ID.to_owned());
    context.apiid = Some("local".to_owned());
    context.request_id = Some(request_id.to_owned());
    context.domain_prefix = host.split(['.', ':']).next().map(str::to_owned);
    context.domain_name = Some(host);
    context.time_epoch = i64::try_from(now_ms).unwrap_or(i64::MAX);
    context.time = chrono::DateTime::from_timestamp_millis(context.time_epoch)
        .map(|t| t.format("%d/%b/%Y:%H:%M:%S %z").to_string());
    context.http.method = parts.method.clone();
    context.http.path = Some(path);
    context.http.protocol = Some(format!("{:?}", parts.version));
    context.http.source_ip = Some(source);
    context.http.user_agent = user_agent;
    event
}

/// The event's top-level `httpMethod` belongs to v1 authorizer payloads and is deprecated, but
/// the type still serializes it (defaulting to GET): keep it truthful.
#[allow(deprecated)]
fn set_legacy_method(event: &mut ApiGatewayV2httpRequest, method: &Method) {
    event.http_method = method.clone();
}

/// The event's headers and cookies: one value per header, repeated ones joined by commas;
/// `Cookie` split into its cookies; the `X-Forwarded-*` and trace headers API Gateway adds.
fn event_headers(
    request: &HeaderMap,
    source: &str,
    host: &str,
    now_ms: u64,
) -> (HeaderMap, Vec<String>) {
    let mut headers = HeaderMap::new();
    let mut cookies = Vec::new();
    for name in request.keys() {
        let values = request.get_all(name);
        if name == header::COOKIE {
            let text = values.iter().filter_map(|v| v.to_str().ok());
            cookies.extend(
                text.flat_map(|v| v.split(';'))
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
            continue;
        }
        let joined = values
            .iter()
            .map(HeaderValue::as_bytes)
            .collect::<Vec<_>>()
            .join(&b","[..]);
        if let Ok(value) = HeaderValue::from_bytes(&joined) {
            headers.insert(name, value);
        }
    }
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {source}"),
        None => source.to_owned(),
    };
    let port = host
        .rsplit_once(':')
        .map(|(_, port)| port)
        .filter(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("80");
    let trace = format!(
        "Root=1-{:08x}-{}",
        now_ms / 1000,
        hex::encode(random_bytes(12))
    );
    for (name, value) in [
        ("x-forwarded-for", forwarded_for.as_str()),
        ("x-forwarded-port", port),
        ("x-forwarded-proto", "http"),
        ("x-amzn-trace-id", trace.as_str()),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    (headers, cookies)
}

/// The decoded query string, repeated keys kept (the event joins them with commas).
fn query_parameters(uri: &Uri) -> HashMap<String, Vec<String>> {
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|Query(pairs)| pairs)
        .unwrap_or_default();
    let mut parameters: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in pairs {
        parameters.entry(key).or_default().push(value);
    }
    parameters
}

/// Content types, besides `text/*`, whose bodies an event carries as text.
const TEXTUAL: &[&str] = &[
    "json",
    "xml",
    "javascript",
    "x-www-form-urlencoded",
    "graphql",
];

/// The event's body and `isBase64Encoded`: none for an empty body, text for UTF-8 of a textual
/// content type (or none), base64 otherwise.
fn event_body(headers: &HeaderMap, body: &[u8]) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let textual = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|kind| {
            let kind = kind.to_ascii_lowercase();
            kind.starts_with("text/") || TEXTUAL.iter().any(|t| kind.contains(t))
        });
    match std::str::from_utf8(body) {
        Ok(text) if textual => (Some(text.to_owned()), false),
        _ => (Some(BASE64.encode(body)), true),
    }
}

/// The HTTP response of a function's answer, as API Gateway builds it.
fn http_response(answer: ApiGatewayV2httpResponse) -> Response {
    let Some(status) = u16::try_from(answer.status_code)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
    else {
        return bad_gateway(&format!("invalid status code {}", answer.status_code));
    };
    let body = match answer.body {
        None | Some(LambdaBody::Empty) => Vec::new(),
        Some(LambdaBody::Text(text)) if answer.is_base64_encoded => {
            match BASE64.decode(text.as_bytes()) {
                Ok(bytes) => bytes,
                Err(error) => return bad_gateway(&format!("the body is not base64: {error}")),
            }
        }
        Some(LambdaBody::Text(text)) => text.into_bytes(),
        Some(LambdaBody::Binary(bytes)) => bytes,
        Some(other) => return bad_gateway(&format!("unsupported body {other:?}")),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in &answer.headers {
        headers.append(name, value.clone());
    }
    for name in answer.multi_value_headers.keys() {
        headers.remove(name);
        for value in answer.multi_value_headers.get_all(name) {
            headers.append(name, value.clone());
        }
    }
    for cookie in &answer.cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

// ---------------------------------------------------------------------------------------------
// S3 presigned reads: GET /objects/{bucket}/{key}?expires=&signature=

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

// ---------------------------------------------------------------------------------------------
// Kinesis: POST / with X-Amz-Target: Kinesis_20131202.<Op>

/// The `X-Amz-Target` prefix of Kinesis operations.
const KINESIS_TARGET: &str = "Kinesis_20131202.";
/// The content type of awsJson1.1 requests and responses.
const AMZ_JSON: &str = "application/x-amz-json-1.1";
/// The region in ARNs.
const REGION: &str = "local";
/// Most records in one `PutRecords`.
const MAX_RECORDS: usize = 500;
/// Largest record data (Kinesis's default `MaxRecordSizeInKiB`).
const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Largest `PutRecords` request, data and partition keys.
const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;
/// The hours the stream is described as keeping records.
const RETENTION_HOURS: u32 = 24;

/// A Kinesis error: its status, `__type` and message.
#[derive(Debug)]
struct KinesisError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl KinesisError {
    /// A client error (400).
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidArgumentException", message)
    }

    fn not_found(stream: &str) -> Self {
        Self::new(
            "ResourceNotFoundException",
            format!("Stream {stream} under account {ACCOUNT_ID} not found."),
        )
    }

    /// The service failed (500: the SDK retries).
    fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "InternalFailure",
            message: message.into(),
        }
    }
}

/// Constraint violations, reported together as AWS's `ValidationException` does.
#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    /// A violation by `shown` (a quoted value, `null`, or empty for values AWS does not show)
    /// at `member`.
    fn add(&mut self, shown: &str, member: &str, constraint: &str) {
        let value = if shown.is_empty() {
            "Value".to_owned()
        } else {
            format!("Value {shown}")
        };
        self.0.push(format!(
            "{value} at '{member}' failed to satisfy constraint: {constraint}"
        ));
    }

    /// Checks that `length` is within `min..=max`.
    fn length(&mut self, shown: &str, member: &str, length: usize, min: usize, max: usize) {
        if length < min {
            let constraint = format!("Member must have length greater than or equal to {min}");
            self.add(shown, member, &constraint);
        } else if length > max {
            let constraint = format!("Member must have length less than or equal to {max}");
            self.add(shown, member, &constraint);
        }
    }

    fn finish(self) -> Result<(), KinesisError> {
        let detected = match self.0.len() {
            0 => return Ok(()),
            1 => "1 validation error detected".to_owned(),
            n => format!("{n} validation errors detected"),
        };
        Err(KinesisError::new(
            "ValidationException",
            format!("{detected}: {}", self.0.join("; ")),
        ))
    }
}

/// The stream an operation names.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamInput {
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
}

/// One record to put.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordInput {
    data: Option<String>,
    partition_key: Option<String>,
    explicit_hash_key: Option<String>,
}

/// `PutRecords`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsInput {
    #[serde(flatten)]
    stream: StreamInput,
    records: Option<Vec<RecordInput>>,
}

/// `PutRecord`.
#[derive(Debug, Deserialize)]
struct PutRecordInput {
    #[serde(flatten)]
    stream: StreamInput,
    #[serde(flatten)]
    record: RecordInput,
}

/// Answers one Kinesis request.
async fn kinesis<F>(State(server): Shared<F>, request: Request) -> Response {
    let request_id = uuid();
    let (status, body) = match kinesis_call(&server.state.stream, server.started_ms, request).await
    {
        Ok(body) => (StatusCode::OK, body),
        Err(error) => {
            if error.status.is_server_error() {
                tracing::error!(kind = error.kind, message = %error.message, "Kinesis request failed");
            } else {
                tracing::info!(kind = error.kind, message = %error.message, "Kinesis request refused");
            }
            let body = json!({ "__type": error.kind, "message": error.message });
            (error.status, body)
        }
    };
    let headers = [
        (header::CONTENT_TYPE, AMZ_JSON.to_owned()),
        (HeaderName::from_static("x-amzn-requestid"), request_id),
    ];
    (status, headers, body.to_string()).into_response()
}

/// A random id shaped as AWS request ids are (a UUID).
fn uuid() -> String {
    let hex = hex::encode(random_bytes(16));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Runs the operation `request` names on `stream`, created at `created_ms`.
async fn kinesis_call(
    stream: &Arc<LocalStream>,
    created_ms: u64,
    request: Request,
) -> Result<Value, KinesisError> {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .unwrap_or_default();
    let Some(operation) = target.strip_prefix(KINESIS_TARGET) else {
        return Err(KinesisError::new(
            "UnknownOperationException",
            format!("not a Kinesis operation: X-Amz-Target {target:?}"),
        ));
    };
    let operation = operation.to_owned();
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| KinesisError::invalid(format!("the request exceeds {MAX_BODY} bytes")))?;
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| KinesisError::new("SerializationException", error.to_string()))?
    };
    let kinesis = Kinesis {
        stream,
        created_ms,
        operation: &operation,
    };
    match operation.as_str() {
        "PutRecords" => kinesis.put_records(parse(input)?).await,
        "PutRecord" => kinesis.put_record(parse(input)?).await,
        "DescribeStreamSummary" => kinesis.describe_summary(&parse(input)?),
        "DescribeStream" => kinesis.describe(&parse(input)?),
        "ListShards" => kinesis.list_shards(&parse(input)?),
        "CreateStream" => kinesis.create(&parse(input)?),
        _ => Err(KinesisError::new(
            "UnknownOperationException",
            format!("the embedded stack does not implement Kinesis {operation}"),
        )),
    }
}

/// Reads an operation's input.
fn parse<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, KinesisError> {
    serde_json::from_value(input)
        .map_err(|error| KinesisError::new("SerializationException", error.to_string()))
}

/// The stack's stream as the Kinesis API shows it.
struct Kinesis<'s> {
    stream: &'s Arc<LocalStream>,
    created_ms: u64,
    /// The operation called (`PutRecords`…), for messages.
    operation: &'s str,
}

impl Kinesis<'_> {
    fn arn(&self) -> String {
        format!(
            "arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{}",
            self.stream.name()
        )
    }

    /// Checks that `input` names this stream, by name or ARN: first the members' constraints,
    /// reported together with the operation's own `violations`, then the name itself.
    fn check(&self, input: &StreamInput, mut violations: Violations) -> Result<(), KinesisError> {
        let name = input.stream_name.as_deref();
        if let Some(name) = name {
            let shown = format!("'{name}'");
            violations.length(&shown, "streamName", name.chars().count(), 1, 128);
            let valid = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                violations.add(
                    &shown,
                    "streamName",
                    "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
                );
            }
        }
        let mut foreign = None;
        let from_arn = input.stream_arn.as_deref().and_then(|arn| {
            let Some(parsed) = parse_stream_arn(arn) else {
                violations.add(
                    &format!("'{arn}'"),
                    "streamARN",
                    "Member must satisfy regular expression pattern: \
                     arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
                );
                return None;
            };
            if parsed.account != ACCOUNT_ID {
                foreign = Some(KinesisError::new(
                    "AccessDeniedException",
                    format!(
                        "User: arn:aws:iam::{ACCOUNT_ID}:root is not authorized to perform: \
                         kinesis:{} on resource: {arn} because no resource-based policy allows \
                         the kinesis:{} action",
                        self.operation, self.operation
                    ),
                ));
            } else if parsed.region != REGION {
                foreign = Some(KinesisError::new(
                    "ResourceNotFoundException",
                    format!(
                        "Stream {} under account {ACCOUNT_ID} not found in region {REGION}.",
                        parsed.name
                    ),
                ));
            }
            Some(parsed.name)
        });
        violations.finish()?;
        if let Some(refused) = foreign {
            return Err(refused);
        }
        let named = match (name, from_arn) {
            (None, None) => {
                return Err(KinesisError::invalid(
                    "Either StreamName or StreamARN should be provided.",
                ));
            }
            (Some(name), Some(from_arn)) if name != from_arn => {
                return Err(KinesisError::invalid(format!(
                    "StreamName {name} and StreamARN {} name different streams.",
                    input.stream_arn.as_deref().unwrap_or_default()
                )));
            }
            (Some(named), _) | (None, Some(named)) => named,
        };
        if named == self.stream.name() {
            Ok(())
        } else {
            Err(KinesisError::not_found(named))
        }
    }

    /// Validates the records (`member(i)` prefixes the members of the `i`th, from 1, in
    /// messages), checks the stream, and appends the records in one transaction.
    async fn append(
        &self,
        stream: &StreamInput,
        records: Option<Vec<RecordInput>>,
        member: impl Fn(usize) -> String,
    ) -> Result<Vec<Value>, KinesisError> {
        let mut violations = Violations::default();
        let mut out_of_range = None;
        let mut batch = Vec::new();
        match &records {
            None => violations.add("null", "records", "Member must not be null"),
            Some(records) => {
                let shown = if records.is_empty() { "'[]'" } else { "" };
                violations.length(shown, "records", records.len(), 1, MAX_RECORDS);
            }
        }
        for (index, record) in records.into_iter().flatten().enumerate() {
            let member = member(index + 1);
            let key = match record.partition_key {
                None => {
                    violations.add(
                        "null",
                        &format!("{member}partitionKey"),
                        "Member must not be null",
                    );
                    String::new()
                }
                Some(key) => {
                    let shown = format!("'{key}'");
                    let length = key.chars().count();
                    violations.length(&shown, &format!("{member}partitionKey"), length, 1, 256);
                    key
                }
            };
            if let Some(key) = &record.explicit_hash_key {
                let error = check_hash_key(key, &member, &mut violations);
                out_of_range = out_of_range.or(error);
            }
            let data = match record.data.as_deref().map(|d| BASE64.decode(d)) {
                None => {
                    violations.add("null", &format!("{member}data"), "Member must not be null");
                    Vec::new()
                }
                Some(Err(error)) => {
                    return Err(KinesisError::new(
                        "SerializationException",
                        format!("{member}data is not base64: {error}"),
                    ));
                }
                Some(Ok(data)) => {
                    let member = format!("{member}data");
                    violations.length("", &member, data.len(), 0, MAX_RECORD_BYTES);
                    data
                }
            };
            batch.push((key, data));
        }
        self.check(stream, violations)?;
        if let Some(error) = out_of_range {
            return Err(error);
        }
        let size: usize = batch.iter().map(|(key, data)| key.len() + data.len()).sum();
        if size > MAX_PUT_RECORDS_BYTES {
            return Err(KinesisError::invalid("Records size exceeds 5 MB limit"));
        }
        let stream = Arc::clone(self.stream);
        let appended = tokio::task::spawn_blocking(move || stream.append(&batch, crate::now_ms()))
            .await
            .map_err(|error| KinesisError::internal(error.to_string()))?
            .map_err(|error| KinesisError::internal(error.to_string()))?;
        Ok(appended
            .into_iter()
            .map(|a| {
                json!({
                    "SequenceNumber": sequence_string(a.sequence),
                    "ShardId": shard_id(a.shard),
                })
            })
            .collect())
    }

    async fn put_records(&self, input: PutRecordsInput) -> Result<Value, KinesisError> {
        let results = self
            .append(&input.stream, input.records, |i| {
                format!("records.{i}.member.")
            })
            .await?;
        Ok(json!({
            "FailedRecordCount": 0,
            "Records": results,
            "EncryptionType": "NONE",
        }))
    }

    async fn put_record(&self, input: PutRecordInput) -> Result<Value, KinesisError> {
        let mut results = self
            .append(&input.stream, Some(vec![input.record]), |_| String::new())
            .await?;
        let mut result = results.pop().unwrap_or_default();
        result["EncryptionType"] = json!("NONE");
        Ok(result)
    }

    /// Checks that `input` names this stream.
    fn resolve(&self, input: &StreamInput) -> Result<(), KinesisError> {
        self.check(input, Violations::default())
    }

    /// `StreamCreationTimestamp`: epoch seconds, as awsJson1.1 writes timestamps.
    fn created(&self) -> f64 {
        Duration::from_millis(self.created_ms).as_secs_f64()
    }

    fn describe_summary(&self, input: &StreamInput) -> Result<Value, KinesisError> {
        self.resolve(input)?;
        Ok(json!({
            "StreamDescriptionSummary": {
                "StreamName": self.stream.name(),
                "StreamARN": self.arn(),
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": { "StreamMode": "PROVISIONED" },
                "RetentionPeriodHours": RETENTION_HOURS,
                "StreamCreationTimestamp": self.created(),
                "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
                "EncryptionType": "NONE",
                "OpenShardCount": self.stream.shards(),
                "ConsumerCount": 0,
            }
        }))
    }

    fn describe(&self, input: &StreamInput) -> Result<Value, KinesisError> {
        self.resolve(input)?;
        Ok(json!({
            "StreamDescription": {
                "StreamName": self.stream.name(),
                "StreamARN": self.arn(),
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": { "StreamMode": "PROVISIONED" },
                "Shards": self.shards(),
                "HasMoreShards": false,
                "RetentionPeriodHours": RETENTION_HOURS,
                "StreamCreationTimestamp": self.created(),
                "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
                "EncryptionType": "NONE",
            }
        }))
    }

    fn list_shards(&self, input: &StreamInput) -> Result<Value, KinesisError> {
        self.resolve(input)?;
        Ok(json!({ "Shards": self.shards() }))
    }

    fn create(&self, input: &StreamInput) -> Result<Value, KinesisError> {
        let name = input.stream_name.as_deref().unwrap_or_default();
        if name == self.stream.name() {
            return Err(KinesisError::new(
                "ResourceInUseException",
                format!("Stream {name} under account {ACCOUNT_ID} already exists."),
            ));
        }
        Err(KinesisError::invalid(format!(
            "the embedded stack has one stream, {}, and cannot create {name:?}",
            self.stream.name()
        )))
    }

    /// The shards, each with its slice of the hash key range as [`crate::stream::shard_for`]
    /// places keys: equal slices, the last one taking the remainder.
    fn shards(&self) -> Vec<Value> {
        let count = self.stream.shards();
        let slice = u128::MAX / u128::from(count);
        (0..count)
            .map(|shard| {
                let start = u128::from(shard) * slice;
                let end = if shard + 1 == count {
                    u128::MAX
                } else {
                    start + slice - 1
                };
                json!({
                    "ShardId": shard_id(shard),
                    "HashKeyRange": {
                        "StartingHashKey": start.to_string(),
                        "EndingHashKey": end.to_string(),
                    },
                    "SequenceNumberRange": { "StartingSequenceNumber": sequence_string(1) },
                })
            })
            .collect()
    }
}

/// The parts of a Kinesis stream ARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`).
#[derive(Debug, PartialEq, Eq)]
struct StreamArn<'a> {
    region: &'a str,
    account: &'a str,
    name: &'a str,
}

/// Reads a Kinesis stream ARN; `None` if it is not one.
fn parse_stream_arn(arn: &str) -> Option<StreamArn<'_>> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("kinesis"), Some(region), Some(account), Some(res)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let name = res.strip_prefix("stream/")?;
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let name_ok = !name.is_empty() && !name.contains(char::is_whitespace);
    (partition.starts_with("aws") && account_ok && name_ok).then_some(StreamArn {
        region,
        account,
        name,
    })
}

/// Checks an `ExplicitHashKey` as Kinesis does: the pattern `0|([1-9]\d{0,38})` (a violation,
/// reported with the others as a `ValidationException`), then the range of the 128-bit hash key
/// space (an `InvalidArgumentException`, once the request is otherwise valid).
fn check_hash_key(key: &str, member: &str, violations: &mut Violations) -> Option<KinesisError> {
    let digits = key.bytes().all(|b| b.is_ascii_digit());
    let pattern = key == "0" || (digits && (1..=39).contains(&key.len()) && !key.starts_with('0'));
    if !pattern {
        violations.add(
            &format!("'{key}'"),
            &format!("{member}explicitHashKey"),
            "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
        );
        return None;
    }
    key.parse::<u128>().is_err().then(|| {
        KinesisError::invalid(format!(
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. \
             Specified value was {key}"
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// The stack's status: GET /_local/status

/// What the stack's status closure says now (never cached).
/// `POST /_local/identity`: a new identity, `{"identityId": …, "token": …}` (the local stand-in
/// for Cognito's `GetId` of a guest).
async fn issue_identity<F>(State(server): Shared<F>) -> Response {
    match server.state.identities.issue() {
        Ok(identity) => axum::Json(identity).into_response(),
        Err(error) => json_error(StatusCode::INTERNAL_SERVER_ERROR, None, &error.to_string()),
    }
}

async fn status<F>(State(server): Shared<F>) -> Response {
    let status = Arc::clone(&server.state.status);
    match tokio::task::spawn_blocking(move || status()).await {
        Ok(status) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(status)).into_response(),
        Err(error) => json_error(StatusCode::INTERNAL_SERVER_ERROR, None, &error.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// The frontend: every other GET

/// A file of the frontend, `index.html` for the app's routes, or the not-built page.
async fn frontend<F>(
    State(server): Shared<F>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let allow = [(header::ALLOW, "GET, HEAD")];
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            allow,
            "method not allowed\n",
        )
            .into_response();
    }
    let Some(relative) = site_path(uri.path()) else {
        return (StatusCode::BAD_REQUEST, "invalid path\n").into_response();
    };
    let dir = server.state.frontend.as_deref();
    let built = match dir {
        Some(dir) => tokio::fs::metadata(dir.join("index.html"))
            .await
            .is_ok_and(|m| m.is_file()),
        None => false,
    };
    match dir {
        Some(dir) if built => site_file(dir, &relative).await,
        _ if relative.as_os_str().is_empty() || relative == Path::new("index.html") => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1:8080");
            let page = not_built_page(dir, host);
            (
                [(header::CACHE_CONTROL, "no-cache")],
                axum::response::Html(page),
            )
                .into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            "not found: the frontend is not built (see /)\n",
        )
            .into_response(),
    }
}

/// The relative file path of a URL path: percent-decoded, each segment a plain name; `None` for
/// anything that could leave the directory (`..`, `.`, backslashes, drive letters, NUL).
fn site_path(path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(path)?;
    let mut relative = PathBuf::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        let unsafe_segment =
            segment == "." || segment == ".." || segment.contains(['\\', ':', '\0']);
        if unsafe_segment {
            return None;
        }
        relative.push(segment);
    }
    Some(relative)
}

/// `%XX` escapes decoded; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            decoded.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// Answers `relative` from the built frontend in `root`: the file, else `index.html` for a path
/// without an extension (an app route), else 404.
async fn site_file(root: &Path, relative: &Path) -> Response {
    let wanted = if relative.as_os_str().is_empty() {
        Path::new("index.html")
    } else {
        relative
    };
    if let Some(bytes) = read_inside(root, wanted).await {
        return file_response(wanted, bytes);
    }
    if wanted.extension().is_none()
        && let Some(bytes) = read_inside(root, Path::new("index.html")).await
    {
        return file_response(Path::new("index.html"), bytes);
    }
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// The bytes of file `relative` under `root`, if it is a file that resolves (symlinks followed)
/// inside `root`.
async fn read_inside(root: &Path, relative: &Path) -> Option<Vec<u8>> {
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let file = tokio::fs::canonicalize(root.join(relative)).await.ok()?;
    if !file.starts_with(&root) || !tokio::fs::metadata(&file).await.ok()?.is_file() {
        return None;
    }
    tokio::fs::read(&file).await.ok()
}

/// A frontend file's response: its content type, and caching fit for a Vite build (hashed
/// `assets/` forever, everything else revalidated).
fn file_response(path: &Path, bytes: Vec<u8>) -> Response {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let content_type = match extension.as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let cache = if path.starts_with("assets") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, cache),
    ];
    (headers, bytes).into_response()
}

/// The page at `/` while there is no built frontend: how to build it, and the API's links.
fn not_built_page(dir: Option<&Path>, host: &str) -> String {
    let why = match dir {
        Some(dir) => format!(
            "The frontend is not built yet: <code>{}</code> has no <code>index.html</code>. \
             Build it, then reload this page:",
            escape(&dir.display().to_string())
        ),
        None => "The stack was started without a frontend: none was given with \
                 <code>--frontend-dir</code> and <code>frontend/dist</code> (relative to where it \
                 was started) is not built. Build it, then restart the stack from the repository \
                 root:"
            .to_owned(),
    };
    let mut links = String::new();
    for (href, what) in [
        ("/api/config", "client configuration"),
        ("/api/races?classId=1", "latest races of class 1"),
        (
            "/api/leaderboard?classId=1",
            "all-time leaderboard of class 1",
        ),
        ("/_local/status", "the embedded stack's status"),
    ] {
        let _ = writeln!(
            links,
            "<li><a href=\"{href}\"><code>{}</code></a> — {what}</li>",
            escape(href)
        );
    }
    let host = escape(host);
    format!(
        "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>Alleycat — embedded stack</title>
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
pre,code{{background:#f3f3f3;border-radius:3px;padding:0 .2em}}pre{{padding:.6em}}</style></head>
<body>
<h1>Alleycat — embedded stack</h1>
<p>{why}</p>
<pre>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<h2>API</h2>
<ul>
{links}</ul>
<p>Other endpoints: <code>/api/races/{{raceId}}?classId=</code>,
<code>/api/races/{{raceId}}/finals?classId=</code>, <code>/api/racers/{{racerId}}/bests?classId=</code>,
<code>/api/racers/{{racerId}}/races/{{raceId}}?classId=</code>, <code>/api/history/{{classId}}</code>.</p>
<h2>Feeding it</h2>
<p>The Kinesis API answers at <code>POST /</code>: point the AWS SDK (the simulator's
<code>--target kinesis</code>) at it with <code>AWS_ENDPOINT_URL=http://{host}</code>.</p>
</body>
</html>
"
    )
}

/// `text` escaped for HTML.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use axum::http::Request as HttpRequest;
    use tower::ServiceExt as _;

    use super::*;
    use crate::db::Db;
    use crate::stream::shard_for;

    #[derive(Debug, thiserror::Error)]
    #[error("the fake api failed")]
    struct FakeError;

    /// An `api` function that keeps the events it is given and answers `answer` (or fails).
    #[derive(Default)]
    struct FakeApi {
        events: Mutex<Vec<ApiGatewayV2httpRequest>>,
        answer: ApiGatewayV2httpResponse,
        fail: bool,
    }

    impl Function for FakeApi {
        const NAME: &'static str = "api";
        type Event = ApiGatewayV2httpRequest;
        type Response = ApiGatewayV2httpResponse;
        type Error = FakeError;

        async fn handle(
            &self,
            event: ApiGatewayV2httpRequest,
            _metrics: &mut alleycat_lambda::Metrics,
        ) -> Result<ApiGatewayV2httpResponse, FakeError> {
            self.events.lock().unwrap().push(event);
            if self.fail {
                Err(FakeError)
            } else {
                Ok(self.answer.clone())
            }
        }
    }

    impl FakeApi {
        fn answering(answer: ApiGatewayV2httpResponse) -> Self {
            Self {
                answer,
                ..Self::default()
            }
        }

        fn last(&self) -> ApiGatewayV2httpRequest {
            self.events
                .lock()
                .unwrap()
                .last()
                .cloned()
                .expect("an event")
        }
    }

    /// A JSON answer with single and multi-value headers and a cookie.
    fn json_answer() -> ApiGatewayV2httpResponse {
        let mut answer = ApiGatewayV2httpResponse::default();
        answer.status_code = 201;
        answer.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        answer
            .headers
            .insert("x-one", HeaderValue::from_static("1"));
        answer
            .multi_value_headers
            .append("x-many", HeaderValue::from_static("a"));
        answer
            .multi_value_headers
            .append("x-many", HeaderValue::from_static("b"));
        answer.cookies = vec!["session=1; Path=/".to_owned()];
        answer.body = Some(LambdaBody::Text(r#"{"ok":true}"#.to_owned()));
        answer
    }

    /// The parts the server fronts, in a temporary directory.
    struct Stack {
        dir: tempfile::TempDir,
        api: Arc<FakeApi>,
        stream: Arc<LocalStream>,
        bucket: Arc<LocalBucket>,
        invocations: Arc<Invocations>,
        frontend: Option<PathBuf>,
    }

    type Answer = (StatusCode, HeaderMap, Vec<u8>);

    fn stack(api: FakeApi) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("stack.db")).unwrap());
        let stream = Arc::new(LocalStream::open(db, "alleycat", 2).unwrap());
        let bucket = LocalBucket::open("history", dir.path().join("history"), "http://127.0.0.1:1");
        Stack {
            api: Arc::new(api),
            stream,
            bucket: Arc::new(bucket.unwrap()),
            invocations: Arc::default(),
            frontend: None,
            dir,
        }
    }

    impl Stack {
        fn state(&self) -> HttpState<FakeApi> {
            HttpState {
                api: Arc::clone(&self.api),
                buckets: vec![Arc::clone(&self.bucket)],
                stream: Arc::clone(&self.stream),
                invocations: Arc::clone(&self.invocations),
                frontend: self.frontend.clone(),
                identities: crate::identity::Identities::with_key([7; 32]),
                status: Arc::new(|| json!({ "stack": "up" })),
            }
        }

        async fn send(&self, request: HttpRequest<Body>) -> Answer {
            let response = router(self.state()).oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            (parts.status, parts.headers, body.to_vec())
        }

        async fn get(&self, uri: &str) -> Answer {
            self.send(HttpRequest::get(uri).body(Body::empty()).unwrap())
                .await
        }

        /// Calls Kinesis `operation` with `input`: the status and the JSON answer.
        async fn kinesis(&self, operation: &str, input: &Value) -> (StatusCode, Value) {
            let request = HttpRequest::post("/")
                .header("x-amz-target", format!("Kinesis_20131202.{operation}"))
                .header(header::CONTENT_TYPE, AMZ_JSON)
                .body(Body::from(input.to_string()))
                .unwrap();
            let (status, headers, body) = self.send(request).await;
            assert_eq!(headers[header::CONTENT_TYPE], AMZ_JSON);
            assert!(headers.contains_key("x-amzn-requestid"));
            (status, serde_json::from_slice(&body).unwrap())
        }

        /// Serves on a loopback port: its address, the shutdown trigger, the server task.
        async fn listen(
            &self,
        ) -> (
            SocketAddr,
            tokio::sync::oneshot::Sender<()>,
            tokio::task::JoinHandle<std::io::Result<()>>,
        ) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let shutdown = async {
                let _ = stopped.await;
            };
            let server = tokio::spawn(serve(listener, self.state(), shutdown));
            (addr, stop, server)
        }
    }

    fn json_body(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    // --- API -----------------------------------------------------------------------------------

    #[tokio::test]
    async fn api_requests_become_http_api_events_and_answers_responses() {
        let stack = stack(FakeApi::answering(json_answer()));
        let request = HttpRequest::get("/api/races?classId=3&limit=10&name=a%20b&tag=x&tag=y")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::USER_AGENT, "test-agent")
            .header("x-test", "1")
            .header(header::ACCEPT, "text/html")
            .header(header::ACCEPT, "application/json")
            .header(header::COOKIE, "a=1; b=2")
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = stack.send(request).await;

        let event = stack.api.last();
        assert_eq!(event.version.as_deref(), Some("2.0"));
        assert_eq!(event.route_key.as_deref(), Some("$default"));
        assert_eq!(event.raw_path.as_deref(), Some("/races"));
        assert_eq!(
            event.raw_query_string.as_deref(),
            Some("classId=3&limit=10&name=a%20b&tag=x&tag=y")
        );
        let query = &event.query_string_parameters;
        assert_eq!(query.first("classId"), Some("3"));
        assert_eq!(query.first("limit"), Some("10"));
        assert_eq!(query.first("name"), Some("a b"));
        assert_eq!(query.all("tag"), Some(vec!["x", "y"]));
        assert_eq!(event.headers["x-test"], "1");
        assert_eq!(event.headers[header::ACCEPT], "text/html,application/json");
        assert_eq!(event.headers["x-forwarded-proto"], "http");
        assert_eq!(event.headers["x-forwarded-port"], "8080");
        assert!(event.headers.get(header::COOKIE).is_none());
        assert_eq!(
            event.cookies,
            Some(vec!["a=1".to_owned(), "b=2".to_owned()])
        );
        assert_eq!((event.body, event.is_base64_encoded), (None, false));
        let context = &event.request_context;
        assert_eq!(context.http.method, Method::GET);
        assert_eq!(context.http.path.as_deref(), Some("/races"));
        assert_eq!(context.http.protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(context.http.user_agent.as_deref(), Some("test-agent"));
        assert_eq!(context.stage.as_deref(), Some("$default"));
        assert_eq!(context.route_key.as_deref(), Some("$default"));
        assert_eq!(context.domain_name.as_deref(), Some("127.0.0.1:8080"));
        assert!(
            context.time_epoch > 1_700_000_000_000,
            "{}",
            context.time_epoch
        );
        assert!(
            context
                .time
                .as_deref()
                .is_some_and(|t| t.ends_with(" +0000"))
        );
        assert_eq!(
            context.request_id.as_deref(),
            headers[&REQUEST_ID].to_str().ok()
        );
        assert_eq!(stack.invocations.snapshot()["api"].invocations, 1);

        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(headers["x-one"], "1");
        let many: Vec<_> = headers.get_all("x-many").iter().collect();
        assert_eq!(many, ["a", "b"]);
        assert_eq!(headers[header::SET_COOKIE], "session=1; Path=/");
        assert_eq!(json_body(&body), json!({ "ok": true }));
    }

    #[test]
    fn events_carry_every_field_of_a_genuine_payload() {
        fn missing(genuine: &Value, ours: &Value, at: &str, out: &mut Vec<String>) {
            let (Value::Object(genuine), Value::Object(ours)) = (genuine, ours) else {
                return;
            };
            for (key, value) in genuine {
                let path = format!("{at}.{key}");
                match ours.get(key) {
                    None => out.push(path),
                    // Header and parameter values depend on the request.
                    Some(_) if key == "headers" || key == "queryStringParameters" => {}
                    Some(mine) => missing(value, mine, &path, out),
                }
            }
        }
        let genuine: Value =
            serde_json::from_str(include_str!("../../../fixtures/events/http-api.json")).unwrap();
        let (parts, ()) = HttpRequest::get("/api/leaderboard?classId=3&limit=10")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::USER_AGENT, "Mozilla/5.0")
            .body(())
            .unwrap()
            .into_parts();
        let ip = Some(IpAddr::from([203, 0, 113, 7]));
        let event = http_api_event(&parts, b"", ip, "BcNk5gWoIAMEJxw=", 1_795_255_507_123);
        let ours = serde_json::to_value(&event).unwrap();
        let mut absent = Vec::new();
        missing(&genuine, &ours, "", &mut absent);
        assert!(absent.is_empty(), "missing {absent:?} in {ours:#}");
        for pointer in [
            "/rawPath",
            "/rawQueryString",
            "/queryStringParameters",
            "/requestContext/http/path",
        ] {
            assert_eq!(ours.pointer(pointer), genuine.pointer(pointer), "{pointer}");
        }
        for pointer in [
            "/requestContext/time",
            "/requestContext/timeEpoch",
            "/requestContext/http/sourceIp",
        ] {
            assert_eq!(ours.pointer(pointer), genuine.pointer(pointer), "{pointer}");
        }
        assert_eq!(ours["headers"]["x-forwarded-for"], "203.0.113.7");
    }

    #[tokio::test]
    async fn bodies_methods_and_the_bare_prefix_reach_the_function() {
        let stack = stack(FakeApi::answering(json_answer()));

        let json = HttpRequest::post("/api/races")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"a":1}"#))
            .unwrap();
        stack.send(json).await;
        let event = stack.api.last();
        assert_eq!(event.request_context.http.method, Method::POST);
        assert_eq!(event.body.as_deref(), Some(r#"{"a":1}"#));
        assert!(!event.is_base64_encoded);

        let bytes = [0u8, 159, 255, 1];
        let binary = HttpRequest::put("/api/races")
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Body::from(bytes.to_vec()))
            .unwrap();
        stack.send(binary).await;
        let event = stack.api.last();
        assert_eq!(event.body, Some(BASE64.encode(bytes)));
        assert!(event.is_base64_encoded);

        let preflight = HttpRequest::options("/api/races")
            .header(header::ORIGIN, "http://localhost:5173")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .body(Body::empty())
            .unwrap();
        let (status, _, _) = stack.send(preflight).await;
        assert_eq!(status, StatusCode::CREATED, "the function's answer");
        assert_eq!(
            stack.api.last().request_context.http.method,
            Method::OPTIONS
        );

        for (uri, path) in [("/api", "/"), ("/api/", "/"), ("/api/config/", "/config/")] {
            stack.get(uri).await;
            assert_eq!(stack.api.last().raw_path.as_deref(), Some(path), "{uri}");
        }
        assert_eq!(stack.invocations.snapshot()["api"].invocations, 6);
    }

    #[tokio::test]
    async fn base64_answers_are_decoded() {
        let bytes = vec![0x1f, 0x8b, 0, 255];
        let mut answer = ApiGatewayV2httpResponse::default();
        answer.status_code = 200;
        answer.is_base64_encoded = true;
        answer.body = Some(LambdaBody::Text(BASE64.encode(&bytes)));
        let stack = stack(FakeApi::answering(answer));
        let (status, _, body) = stack.get("/api/history/3").await;
        assert_eq!((status, body), (StatusCode::OK, bytes));
    }

    #[tokio::test]
    async fn failed_invocations_and_invalid_answers_are_bad_gateways() {
        let failing = stack(FakeApi {
            fail: true,
            ..FakeApi::default()
        });
        let (status, headers, body) = failing.get("/api/races?classId=1").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert!(headers.contains_key(&REQUEST_ID));
        let body = json_body(&body);
        assert_eq!(body["error"], "Internal Server Error");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("the fake api failed"),
            "{body}"
        );
        assert_eq!(failing.invocations.snapshot()["api"].errors, 1);

        let mut answer = ApiGatewayV2httpResponse::default();
        answer.status_code = 42;
        let (status, _, _) = stack(FakeApi::answering(answer)).get("/api/config").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
    }

    // --- Objects -------------------------------------------------------------------------------

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

    // --- Kinesis -------------------------------------------------------------------------------

    fn record(key: &str, data: &[u8]) -> Value {
        json!({ "PartitionKey": key, "Data": BASE64.encode(data) })
    }

    #[tokio::test]
    async fn put_records_appends_durably_and_answers_sequence_numbers() {
        let stack = stack(FakeApi::default());
        let records = [("8", b"one"), ("11", b"two"), ("8", b"thr")];
        let input = json!({
            "StreamName": "alleycat",
            "Records": records.iter().map(|(k, d)| record(k, *d)).collect::<Vec<_>>(),
        });
        let (status, answer) = stack.kinesis("PutRecords", &input).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["FailedRecordCount"], 0);
        assert_eq!(answer["EncryptionType"], "NONE");
        let results = answer["Records"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        // Keys "8" and "11" fall in different halves of the hash key range.
        let (eight, eleven) = (shard_for("8", 2), shard_for("11", 2));
        assert_ne!(eight, eleven);
        let expected = [(eight, 1), (eleven, 1), (eight, 2)];
        for (result, (shard, sequence)) in results.iter().zip(expected) {
            assert_eq!(result["ShardId"], shard_id(shard));
            assert_eq!(result["SequenceNumber"], sequence_string(sequence));
        }

        // Durable as the response went out: readable, in order, with their keys.
        let stored = stack.stream.read(eight, None, 10).unwrap();
        let stored: Vec<_> = stored
            .iter()
            .map(|r| (r.partition_key.as_str(), r.data.as_slice()))
            .collect();
        assert_eq!(stored, [("8", &b"one"[..]), ("8", &b"thr"[..])]);
        assert_eq!(stack.stream.count().unwrap(), 3);

        let by_arn = json!({
            "StreamARN": "arn:aws:kinesis:local:000000000000:stream/alleycat",
            "PartitionKey": "11",
            "Data": BASE64.encode(b"four"),
        });
        let (status, answer) = stack.kinesis("PutRecord", &by_arn).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["ShardId"], shard_id(eleven));
        assert_eq!(answer["SequenceNumber"], sequence_string(2));
    }

    #[tokio::test]
    async fn other_streams_are_not_found() {
        let stack = stack(FakeApi::default());
        let message = "Stream other under account 000000000000 not found.";
        for stream in [
            json!({ "StreamName": "other" }),
            json!({ "StreamARN": "arn:aws:kinesis:local:000000000000:stream/other" }),
        ] {
            let mut input = stream.clone();
            input["Records"] = json!([record("1", b"x")]);
            for (operation, input) in [("PutRecords", &input), ("DescribeStreamSummary", &stream)] {
                let (status, answer) = stack.kinesis(operation, input).await;
                assert_eq!(status, StatusCode::BAD_REQUEST);
                assert_eq!(
                    answer,
                    json!({ "__type": "ResourceNotFoundException", "message": message }),
                    "{operation} {input}"
                );
            }
        }
        assert_eq!(stack.stream.count().unwrap(), 0);
    }

    #[tokio::test]
    async fn foreign_arns_and_hash_keys_out_of_range_are_refused_as_kinesis_refuses_them() {
        let stack = stack(FakeApi::default());
        let put = |arn: &str, hash_key: &str| {
            json!({
                "StreamARN": arn,
                "Records": [{ "Data": BASE64.encode(b"x"), "PartitionKey": "1", "ExplicitHashKey": hash_key }],
            })
        };
        let ours = "arn:aws:kinesis:local:000000000000:stream/alleycat";
        let refusals = [
            (
                put("arn:aws:kinesis:local:111111111111:stream/alleycat", "0"),
                "AccessDeniedException",
                "User: arn:aws:iam::000000000000:root is not authorized to perform: \
                 kinesis:PutRecords on resource: arn:aws:kinesis:local:111111111111:stream/alleycat \
                 because no resource-based policy allows the kinesis:PutRecords action",
            ),
            (
                put(
                    "arn:aws:kinesis:us-east-1:000000000000:stream/alleycat",
                    "0",
                ),
                "ResourceNotFoundException",
                "Stream alleycat under account 000000000000 not found in region local.",
            ),
            (
                put(ours, "340282366920938463463374607431768211456"),
                "InvalidArgumentException",
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. \
                 Specified value was 340282366920938463463374607431768211456",
            ),
            (
                put(ours, "-1"),
                "ValidationException",
                "1 validation error detected: Value '-1' at 'records.1.member.explicitHashKey' \
                 failed to satisfy constraint: Member must satisfy regular expression pattern: \
                 0|([1-9]\\d{0,38})",
            ),
            (
                put(ours, "0123"),
                "ValidationException",
                "1 validation error detected: Value '0123' at 'records.1.member.explicitHashKey' \
                 failed to satisfy constraint: Member must satisfy regular expression pattern: \
                 0|([1-9]\\d{0,38})",
            ),
        ];
        for (input, kind, message) in refusals {
            let (status, answer) = stack.kinesis("PutRecords", &input).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{input}");
            assert_eq!(
                answer,
                json!({ "__type": kind, "message": message }),
                "{input}"
            );
        }
        assert_eq!(stack.stream.count().unwrap(), 0);
        // The largest hash key, and our own ARN, are fine.
        let (status, answer) = stack
            .kinesis("PutRecords", &put(ours, &u128::MAX.to_string()))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(stack.stream.count().unwrap(), 1);
    }

    #[tokio::test]
    async fn invalid_requests_are_refused_as_kinesis_refuses_them() {
        let stack = stack(FakeApi::default());
        let refused = |answer: &Value, kind: &str| {
            assert_eq!(answer["__type"], kind, "{answer}");
            answer["message"].as_str().unwrap().to_owned()
        };

        let input = json!({ "StreamName": "alleycat", "Records": [record("", b"x")] });
        let (status, answer) = stack.kinesis("PutRecords", &input).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            refused(&answer, "ValidationException"),
            "1 validation error detected: Value '' at 'records.1.member.partitionKey' failed to \
             satisfy constraint: Member must have length greater than or equal to 1"
        );

        let too_many: Vec<_> = (0..501).map(|i| record(&i.to_string(), b"x")).collect();
        let input = json!({ "StreamName": "bad name", "Records": too_many });
        let (_, answer) = stack.kinesis("PutRecords", &input).await;
        let message = refused(&answer, "ValidationException");
        assert!(
            message.starts_with("2 validation errors detected: "),
            "{message}"
        );
        assert!(message.contains("less than or equal to 500"), "{message}");
        assert!(message.contains("'bad name' at 'streamName'"), "{message}");

        let input = json!({ "StreamName": "alleycat", "Records": [{ "PartitionKey": "1" }] });
        let (_, answer) = stack.kinesis("PutRecords", &input).await;
        let message = refused(&answer, "ValidationException");
        assert!(
            message.contains("Value null at 'records.1.member.data'"),
            "{message}"
        );

        let (_, answer) = stack
            .kinesis("PutRecords", &json!({ "Records": [record("1", b"x")] }))
            .await;
        refused(&answer, "InvalidArgumentException");

        let (_, answer) = stack.kinesis("PutRecords", &json!({ "Records": 7 })).await;
        refused(&answer, "SerializationException");

        let (_, answer) = stack
            .kinesis("CreateStream", &json!({ "StreamName": "alleycat" }))
            .await;
        assert_eq!(
            refused(&answer, "ResourceInUseException"),
            "Stream alleycat under account 000000000000 already exists."
        );

        let (_, answer) = stack.kinesis("GetRecords", &json!({})).await;
        refused(&answer, "UnknownOperationException");

        let (status, _, body) = stack
            .send(HttpRequest::post("/").body(Body::from("{}")).unwrap())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json_body(&body)["__type"], "UnknownOperationException");

        assert_eq!(
            stack.stream.count().unwrap(),
            0,
            "nothing refused was stored"
        );
    }

    #[tokio::test]
    async fn the_stream_describes_itself_and_its_shards() {
        let stack = stack(FakeApi::default());
        let input = json!({ "StreamName": "alleycat" });

        let (status, answer) = stack.kinesis("DescribeStreamSummary", &input).await;
        assert_eq!(status, StatusCode::OK);
        let summary = &answer["StreamDescriptionSummary"];
        assert_eq!(summary["StreamName"], "alleycat");
        assert_eq!(
            summary["StreamARN"],
            "arn:aws:kinesis:local:000000000000:stream/alleycat"
        );
        assert_eq!(summary["StreamStatus"], "ACTIVE");
        assert_eq!(summary["OpenShardCount"], 2);
        assert_eq!(summary["StreamModeDetails"]["StreamMode"], "PROVISIONED");
        assert!(summary["StreamCreationTimestamp"].as_f64().unwrap() > 1.7e9);

        let (_, listed) = stack.kinesis("ListShards", &input).await;
        let (_, described) = stack.kinesis("DescribeStream", &input).await;
        assert_eq!(described["StreamDescription"]["Shards"], listed["Shards"]);
        assert_eq!(described["StreamDescription"]["HasMoreShards"], false);
        let shards = listed["Shards"].as_array().unwrap();
        let range = |i: usize, end: &str| {
            shards[i]["HashKeyRange"][end]
                .as_str()
                .unwrap()
                .parse::<u128>()
                .unwrap()
        };
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[1]["ShardId"], "shardId-000000000001");
        assert_eq!(range(0, "StartingHashKey"), 0);
        assert_eq!(range(0, "EndingHashKey") + 1, range(1, "StartingHashKey"));
        assert_eq!(range(1, "EndingHashKey"), u128::MAX);
        // The ranges place keys where the stream does.
        let hash = |key: &str| {
            use md5::Digest as _;
            u128::from_be_bytes(md5::Md5::digest(key.as_bytes()).into())
        };
        for key in ["8", "11", "42", "1000"] {
            let shard = usize::try_from(shard_for(key, 2)).unwrap();
            assert!(range(shard, "StartingHashKey") <= hash(key), "{key}");
            assert!(hash(key) <= range(shard, "EndingHashKey"), "{key}");
        }
    }

    /// A real AWS SDK client of the server at `addr`.
    fn sdk_client(addr: SocketAddr) -> aws_sdk_kinesis::Client {
        use aws_sdk_kinesis::config::retry::RetryConfig;
        use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};

        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDLOCAL", "secret", None, None, "test"))
            .endpoint_url(format!("http://{addr}"))
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_kinesis::Client::from_conf(config)
    }

    fn sdk_entry(key: &str, data: &str) -> aws_sdk_kinesis::types::PutRecordsRequestEntry {
        aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
            .partition_key(key)
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .build()
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_aws_sdk_writes_to_the_stack() {
        use aws_sdk_kinesis::error::ProvideErrorMetadata as _;
        use aws_sdk_kinesis::primitives::Blob;
        use aws_sdk_kinesis::types::StreamStatus;

        let stack = stack(FakeApi::default());
        let (addr, stop, server) = stack.listen().await;
        let client = sdk_client(addr);

        // What the simulator's `ensure_stream` does.
        let create = client
            .create_stream()
            .stream_name("alleycat")
            .shard_count(2);
        let error = create.send().await.unwrap_err();
        assert_eq!(error.code(), Some("ResourceInUseException"), "{error:?}");
        let describe = client.describe_stream_summary().stream_name("alleycat");
        let summary = describe.send().await.unwrap();
        let summary = summary.stream_description_summary().unwrap();
        assert_eq!(summary.stream_status(), &StreamStatus::Active);
        assert_eq!(summary.open_shard_count(), 2);
        assert!(summary.stream_creation_timestamp().secs() > 1_700_000_000);

        let records = (0..3)
            .map(|i| sdk_entry(&i.to_string(), &format!("record {i}")))
            .collect();
        let put = client.put_records().stream_name("alleycat");
        let output = put.set_records(Some(records)).send().await.unwrap();
        assert_eq!(output.failed_record_count(), Some(0));
        assert_eq!(output.records().len(), 3);
        assert!(output.records().iter().all(|r| r.error_code().is_none()
            && r.sequence_number().is_some()
            && r.shard_id().is_some_and(|s| s.starts_with("shardId-"))));

        let output = client
            .put_record()
            .stream_arn("arn:aws:kinesis:local:000000000000:stream/alleycat")
            .partition_key("3")
            .data(Blob::new("record 3"))
            .send()
            .await
            .unwrap();
        assert_eq!(output.shard_id(), shard_id(shard_for("3", 2)));

        let shards = client.list_shards().stream_name("alleycat").send().await;
        assert_eq!(shards.unwrap().shards().len(), 2);
        let described = client
            .describe_stream()
            .stream_name("alleycat")
            .send()
            .await;
        let described = described.unwrap();
        assert_eq!(described.stream_description().unwrap().shards().len(), 2);

        let elsewhere = client.put_records().stream_name("elsewhere");
        let error = elsewhere.records(sdk_entry("1", "lost")).send().await;
        let error = error.unwrap_err();
        assert_eq!(error.code(), Some("ResourceNotFoundException"), "{error:?}");
        assert_eq!(
            error.message(),
            Some("Stream elsewhere under account 000000000000 not found.")
        );

        let mut stored: Vec<String> = (0..2)
            .flat_map(|shard| stack.stream.read(shard, None, 100).unwrap())
            .map(|r| String::from_utf8(r.data).unwrap())
            .collect();
        stored.sort();
        assert_eq!(stored, ["record 0", "record 1", "record 2", "record 3"]);

        drop(client);
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops on shutdown")
            .unwrap()
            .unwrap();
    }

    // --- Status, frontend, serving -------------------------------------------------------------

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
    async fn serve_answers_on_a_listener_until_shutdown() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let stack = stack(FakeApi::answering(json_answer()));
        let (addr, stop, server) = stack.listen().await;
        let mut connection = tokio::net::TcpStream::connect(addr).await.unwrap();
        connection
            .write_all(b"GET /api/config HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        connection.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 201"), "{response}");
        assert!(response.ends_with(r#"{"ok":true}"#), "{response}");
        let event = stack.api.last();
        assert_eq!(
            event.request_context.http.source_ip.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(event.headers["x-forwarded-for"], "127.0.0.1");

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops on shutdown")
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    /// One request on a fresh connection, and everything answered until the server closes it.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut connection = tokio::net::TcpStream::connect(addr).await.unwrap();
        connection.write_all(request).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            connection.read_to_end(&mut response),
        )
        .await
        .expect("the server closes the connection")
        .unwrap();
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
}
