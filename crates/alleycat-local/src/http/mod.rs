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
//! Each row is a router of its own, in a file of its own (`api`, `objects`, `kinesis`, `local`,
//! `site`); [`router`] joins them. Every handler answers from the same [`HttpState`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alleycat_lambda::Function;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower::ServiceExt as _;

use crate::identity::Identities;
use crate::objects::LocalBucket;
use crate::sources::Invocations;
use crate::stream::LocalStream;

mod api;
mod kinesis;
mod local;
mod objects;
mod site;
#[cfg(test)]
mod tests;

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
        .merge(api::router())
        .merge(objects::router())
        .nest("/_local", local::router())
        .merge(kinesis::router())
        .merge(site::router())
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
