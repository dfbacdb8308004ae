//! API Gateway: requests become HTTP API events, answers become responses.

use std::net::IpAddr;

use aws_lambda_events::encodings::Body as LambdaBody;
use aws_lambda_events::event::apigw::ApiGatewayV2httpResponse;
use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::*;
use crate::http::api::{REQUEST_ID, http_api_event};

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
        serde_json::from_str(include_str!("../../../../../fixtures/events/http-api.json")).unwrap();
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
