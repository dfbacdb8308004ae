//! Identities over HTTP: `POST /_local/identity` mints one, and under `/api` its
//! `Authorization` header is verified as API Gateway's IAM authorizer verifies a signature: the
//! function sees the identity in `requestContext.authorizer.iam.cognitoIdentity`, and a request
//! with a bad header never reaches it.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use alleycat_lambda::{Function, Metrics};
use alleycat_local::Stack;
use alleycat_local::config::StackArgs;
use alleycat_local::db::Db;
use alleycat_local::http::{HttpState, router};
use alleycat_local::identity::{Identities, Identity};
use alleycat_local::objects::LocalBucket;
use alleycat_local::sources::Invocations;
use alleycat_local::stream::LocalStream;
use alleycat_local::testing::{free_port, http};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// An `api` function that keeps the events it is given and answers 204.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<ApiGatewayV2httpRequest>>,
}

impl Function for Recorder {
    const NAME: &'static str = "api";
    type Event = ApiGatewayV2httpRequest;
    type Response = ApiGatewayV2httpResponse;
    type Error = Infallible;

    async fn handle(
        &self,
        event: ApiGatewayV2httpRequest,
        _metrics: &mut Metrics,
    ) -> Result<ApiGatewayV2httpResponse, Infallible> {
        self.events.lock().unwrap().push(event);
        let mut answer = ApiGatewayV2httpResponse::default();
        answer.status_code = 204;
        Ok(answer)
    }
}

/// The HTTP server's routes in front of a [`Recorder`], with identities signed by `key`.
struct Server {
    _dir: tempfile::TempDir,
    api: Arc<Recorder>,
    state: Box<dyn Fn() -> HttpState<Recorder>>,
}

impl Server {
    fn new(identities: Identities) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let dir = tempfile::tempdir()?;
        let db = Arc::new(Db::open(&dir.path().join("stack.db"))?);
        let stream = Arc::new(LocalStream::open(db, "alleycat", 1)?);
        let bucket = Arc::new(LocalBucket::open(
            "history",
            dir.path().join("history"),
            "http://127.0.0.1:1",
        )?);
        let api = Arc::new(Recorder::default());
        let recorder = Arc::clone(&api);
        let invocations = Arc::new(Invocations::default());
        let state = move || HttpState {
            api: Arc::clone(&recorder),
            buckets: vec![Arc::clone(&bucket)],
            stream: Arc::clone(&stream),
            invocations: Arc::clone(&invocations),
            frontend: None,
            identities: identities.clone(),
            status: Arc::new(|| json!({})),
        };
        Ok(Self {
            _dir: dir,
            api,
            state: Box::new(state),
        })
    }

    /// Sends `method uri` with `authorization` (if any) and a JSON `body`: the status and body.
    async fn send(
        &self,
        method: Method,
        uri: &str,
        authorization: Option<&str>,
        body: &str,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        let response = router((self.state)()).oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.to_vec())
    }

    fn events(&self) -> Vec<Value> {
        self.api
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|event| serde_json::to_value(event).unwrap())
            .collect()
    }
}

fn header_of(identity: &Identity) -> String {
    format!("Alleycat {}:{}", identity.identity_id, identity.token)
}

#[tokio::test]
async fn a_valid_identity_fills_the_authorizer_and_a_bad_one_is_forbidden() -> TestResult {
    let identities = Identities::with_key([42; 32]);
    let server = Server::new(identities.clone())?;
    let (status, body) = server
        .send(Method::POST, "/_local/identity", None, "")
        .await;
    assert_eq!(status, StatusCode::OK);
    let identity: Value = serde_json::from_slice(&body)?;
    let identity = Identity {
        identity_id: identity["identityId"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        token: identity["token"].as_str().unwrap_or_default().to_owned(),
    };
    assert!(identity.identity_id.starts_with("local:"));
    assert_eq!(identity.identity_id.len(), "local:".len() + 32);
    assert_eq!(identity.token.len(), 64);

    // POST and DELETE reach the function with their bodies, and the caller's identity.
    let authorization = header_of(&identity);
    for method in [Method::POST, Method::DELETE] {
        let (status, _) = server
            .send(
                method.clone(),
                "/api/racers/42/claim",
                Some(&authorization),
                r#"{"n":1}"#,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{method}");
    }
    let events = server.events();
    assert_eq!(events.len(), 2);
    for (event, method) in events.iter().zip(["POST", "DELETE"]) {
        let context = &event["requestContext"];
        assert_eq!(context["http"]["method"], method);
        assert_eq!(event["rawPath"], "/racers/42/claim");
        assert_eq!(event["body"], r#"{"n":1}"#);
        let cognito = &context["authorizer"]["iam"]["cognitoIdentity"];
        assert_eq!(cognito["identityId"], identity.identity_id.as_str());
        assert_eq!(cognito["identityPoolId"], "local");
        assert!(
            event["headers"].get("authorization").is_none(),
            "the token stays out"
        );
    }

    // No header: no authorizer at all.
    server
        .send(Method::GET, "/api/racers/42/claim", None, "")
        .await;
    let events = server.events();
    assert!(
        events[2]["requestContext"].get("authorizer").is_none(),
        "{}",
        events[2]
    );

    // Anything wrong in the header: 403, and the function is not invoked.
    let mut tampered = identity.token.clone();
    tampered.replace_range(63..64, if tampered.ends_with('0') { "1" } else { "0" });
    let other = Identities::with_key([43; 32]).issue()?;
    for bad in [
        format!("Alleycat {}:{tampered}", identity.identity_id),
        header_of(&other),
        format!("Alleycat {}", identity.identity_id),
        format!("Bearer {}", identity.token),
        format!("Alleycat local:{}:{}", "0".repeat(32), identity.token),
        "Alleycat".to_owned(),
    ] {
        let (status, body) = server
            .send(Method::POST, "/api/racers/42/claim", Some(&bad), "")
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{bad}");
        assert_eq!(
            serde_json::from_slice::<Value>(&body)?,
            json!({"message": "Forbidden"})
        );
    }
    assert_eq!(
        server.events().len(),
        3,
        "no invocation for a forbidden request"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_stack_mints_identities_and_forbids_tampered_tokens() -> TestResult {
    let dir = tempfile::tempdir()?;
    let args = StackArgs {
        data_dir: dir.path().join("data"),
        http_port: free_port(),
        mqtt_port: free_port(),
        ws_port: free_port(),
        ..StackArgs::default()
    };
    let stack = Stack::start(args.config()).await?;
    let url = stack.url().to_owned();
    let (minted, forbidden) = tokio::task::spawn_blocking(move || {
        let (status, body) = http("POST", &format!("{url}/_local/identity"), &[], &[])?;
        assert_eq!(status, 200);
        let minted: Value = serde_json::from_slice(&body)?;
        let tampered = format!(
            "Alleycat {}:{}",
            minted["identityId"].as_str().unwrap_or(""),
            "ab".repeat(32)
        );
        let (forbidden, _) = http(
            "GET",
            &format!("{url}/api/leaderboard?classId=1"),
            &[("Authorization", &tampered)],
            &[],
        )?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((minted, forbidden))
    })
    .await??;
    assert_eq!(forbidden, 403);
    let identity_id = minted["identityId"].as_str().unwrap_or_default();
    let token = minted["token"].as_str().unwrap_or_default();
    assert!(stack.identities().verify(identity_id, token));
    stack.shutdown().await;
    Ok(())
}
