//! The server's routes answered in process (`oneshot`), and [`serve`] on a loopback listener,
//! in front of a fake `api` function and a stream and bucket in a temporary directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use alleycat_lambda::Function;
use aws_lambda_events::encodings::Body as LambdaBody;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use axum::body::Body;
use axum::http::Request as HttpRequest;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::kinesis::AMZ_JSON;
use super::{HttpState, router, serve};
use crate::db::Db;
use crate::objects::LocalBucket;
use crate::sources::Invocations;
use crate::stream::LocalStream;

mod api;
mod kinesis;
mod objects;
mod serve;
mod site;
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

/// Triggers the shutdown of a server [`Stack::listen`] started, and waits for it to stop
/// (within 10 s, or the test fails).
async fn stopped(
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
) {
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server stops on shutdown")
        .unwrap()
        .unwrap();
}

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}
