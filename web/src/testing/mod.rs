//! A fixed in-memory [`ReadModel`](crate::ReadModel) and request helpers
//! for the route tests: the double ([`memory`]), the data it holds
//! ([`fixture`]), the JSON the routes must answer for it ([`expected`]), and
//! below, the helpers that send requests through a router.

mod expected;
mod fixture;
mod memory;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::router::router;
pub(crate) use memory::{Chunks, MemoryModel, PredictFailure};

/// A GET request for `uri`.
pub(crate) fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// Sends `request` through a fresh router over `model`.
pub(crate) async fn send(model: &Arc<MemoryModel>, request: Request<Body>) -> Response {
    router(model.clone()).oneshot(request).await.unwrap()
}

/// Sends `request` through `app`, which keeps its state (rate limits, spent
/// nonces) from one request to the next.
pub(crate) async fn send_to(app: &axum::Router, request: Request<Body>) -> Response {
    app.clone().oneshot(request).await.unwrap()
}

/// Sends `request` and reads the answer as JSON, checking its content type.
pub(crate) async fn send_json(model: &Arc<MemoryModel>, request: Request<Body>) -> (StatusCode, Value) {
    let response = send(model, request).await;
    let status = response.status();
    assert_eq!(response.headers()[axum::http::header::CONTENT_TYPE], "application/json", "{status}");
    (status, json_body(response).await)
}

/// Sends `request` and reads the answer as an HTML page, checking its
/// content type.
pub(crate) async fn send_html(model: &Arc<MemoryModel>, request: Request<Body>) -> (StatusCode, String) {
    let response = send(model, request).await;
    let status = response.status();
    assert_eq!(response.headers()[axum::http::header::CONTENT_TYPE], "text/html; charset=utf-8", "{status}");
    (status, String::from_utf8(body_bytes(response).await).unwrap())
}

/// The whole body.
pub(crate) async fn body_bytes(response: Response) -> Vec<u8> {
    response.into_body().collect().await.unwrap().to_bytes().to_vec()
}

/// The whole body, as JSON.
pub(crate) async fn json_body(response: Response) -> Value {
    serde_json::from_slice(&body_bytes(response).await).unwrap()
}
