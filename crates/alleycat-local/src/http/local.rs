//! The stack's own endpoints, under `/_local`: its status, and new identities.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{Server, Shared, json_error};

/// `GET /status` and `POST /identity`, for nesting under `/_local`.
pub(super) fn router<F: Send + Sync + 'static>() -> Router<Arc<Server<F>>> {
    Router::new()
        .route("/status", get(status::<F>))
        .route("/identity", post(issue_identity::<F>))
}

/// `POST /_local/identity`: a new identity, `{"identityId": …, "token": …}` (the local stand-in
/// for Cognito's `GetId` of a guest).
async fn issue_identity<F>(State(server): Shared<F>) -> Response {
    match server.state.identities.issue() {
        Ok(identity) => axum::Json(identity).into_response(),
        Err(error) => json_error(StatusCode::INTERNAL_SERVER_ERROR, None, &error.to_string()),
    }
}

/// `GET /_local/status`: what the stack's status closure says now (never cached).
async fn status<F>(State(server): Shared<F>) -> Response {
    let status = Arc::clone(&server.state.status);
    match tokio::task::spawn_blocking(move || status()).await {
        Ok(status) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(status)).into_response(),
        Err(error) => json_error(StatusCode::INTERNAL_SERVER_ERROR, None, &error.to_string()),
    }
}
