//! API Gateway: any method on `/api/…` → the `api` function (HTTP API, `$default` stage,
//! payload v2).
//!
//! A request under `/api` becomes the event an HTTP API's `$default` stage would send:
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

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use aws_lambda_events::encodings::Body as LambdaBody;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;

use super::{ACCOUNT_ID, ApiFunction, MAX_BODY, Server, Shared, json_error, random_bytes};
use crate::identity::authorizer;
use crate::sources::invoke;

/// `/api`, `/api/` and everything under it.
pub(super) fn router<F: ApiFunction>() -> Router<Arc<Server<F>>> {
    Router::new()
        .route("/api", any(api::<F>))
        .route("/api/", any(api::<F>))
        .route("/api/{*path}", any(api::<F>))
}

/// `apigw-requestid`: the header API Gateway names each request with.
pub(super) const REQUEST_ID: HeaderName = HeaderName::from_static("apigw-requestid");

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
pub(super) fn http_api_event(
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
