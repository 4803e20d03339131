//! Wires the routes, the fallback and the layers into one [`Router`].

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::map_response;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::config::WebConfig;
use crate::error::{ApiError, normalize_errors};
use crate::read_model::ReadModel;
use crate::routes::{accounts, model, ops, tasks};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) model: Arc<dyn ReadModel>,
    pub(crate) config: Arc<WebConfig>,
}

/// The HTTP API over `model` with [`WebConfig::default`] limits.
///
/// | route | answer |
/// |---|---|
/// | `GET /api/tasks?cursor=&limit=` | `Page<TaskSummary>` |
/// | `GET /api/tasks/{id}` | [`TaskDetail`](crate::TaskDetail) |
/// | `GET /api/tasks/{id}/model` | safetensors bytes, `ETag`, 304 on `If-None-Match` |
/// | `GET /api/accounts/{key}?cursor=&limit=` | [`AccountView`](crate::AccountView) |
/// | `GET /healthz` | `200 ok` or 503 |
/// | `GET /metrics` | Prometheus text |
///
/// Every error, including unknown routes (404), wrong methods (405),
/// oversized bodies (413) and panics (500), has the body
/// `{"error": {"code": …, "message": …}}`.
pub fn router(model: Arc<dyn ReadModel>) -> Router {
    router_with_config(model, WebConfig::default())
}

/// [`router`] with explicit limits.
pub fn router_with_config(model: Arc<dyn ReadModel>, config: WebConfig) -> Router {
    let body_limit = config.max_body_bytes;
    let state = AppState { model, config: Arc::new(config) };
    Router::new()
        .route("/api/tasks", get(tasks::list))
        .route("/api/tasks/{id}", get(tasks::detail))
        .route("/api/tasks/{id}/model", get(model::download))
        .route("/api/accounts/{key}", get(accounts::get))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .fallback(no_route)
        .with_state(state)
        // Layers wrap what is above them: the last one added runs first, so
        // the error normaliser sees the responses of every other layer.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(CatchPanicLayer::new())
        .layer(map_response(normalize_errors))
}

/// The answer for a path no route matches.
async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode, header};
    use serde_json::json;

    use crate::testing::{MemoryModel, get, send, send_json};

    #[tokio::test]
    async fn unknown_routes_are_json_404() {
        let model = MemoryModel::fixture();
        for uri in ["/", "/nope", "/api/tasks/1/model/extra", "/api/accounts"] {
            let (status, body) = send_json(&model, get(uri)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(body, json!({"error": {"code": "not_found", "message": "no such route"}}), "{uri}");
        }
    }

    #[tokio::test]
    async fn wrong_method_is_json_405_with_allow() {
        let model = MemoryModel::fixture();
        let request = Request::post("/api/tasks").body(Default::default()).unwrap();
        let response = send(&model, request).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let allow = response.headers()[header::ALLOW].to_str().unwrap().to_owned();
        assert!(allow.contains("GET"), "{allow}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let (_, body) = send_json(&model, Request::delete("/healthz").body(Default::default()).unwrap()).await;
        assert_eq!(
            body,
            json!({"error": {"code": "method_not_allowed", "message": "method not allowed on this resource"}})
        );
    }

    #[tokio::test]
    async fn oversized_bodies_are_json_413() {
        let model = MemoryModel::fixture();
        let big = vec![b'x'; 64 * 1024 + 1];
        let request = Request::get("/api/tasks").header(header::CONTENT_LENGTH, big.len()).body(big.into()).unwrap();
        let (status, body) = send_json(&model, request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body, json!({"error": {"code": "payload_too_large", "message": "request body too large"}}));
    }

    #[tokio::test]
    async fn panics_are_json_500_without_detail() {
        let model = MemoryModel::fixture();
        model.panic_on_metrics();
        let (status, body) = send_json(&model, get("/metrics")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({"error": {"code": "internal", "message": "internal server error"}}));
    }

    #[tokio::test]
    async fn head_is_answered_like_get_without_body() {
        let model = MemoryModel::fixture();
        let request = Request::head("/api/tasks/1/model").body(Default::default()).unwrap();
        let response = send(&model, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().contains_key(header::ETAG));
    }
}
