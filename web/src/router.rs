//! Wires the routes, the fallback and the layers into one [`Router`].

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, Uri, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::config::WebConfig;
use crate::error::{ApiError, normalize_errors};
use crate::html;
use crate::html::layout::HtmlError;
use crate::read_model::ReadModel;
use crate::routes::{accounts, market, model, openapi, ops, predict, tasks};
use crate::state::AppState;

/// The HTTP API and dashboard over `model` with [`WebConfig::default`] limits.
///
/// | route | answer |
/// |---|---|
/// | `GET /` | HTML: the tasks, paged by `?cursor=&limit=` |
/// | `GET /tasks/{id}` | HTML: the task, its accuracy and loss chart, leaderboard, submissions, payouts |
/// | `GET /accounts/{key}?cursor=&limit=` | HTML: balances, bonds, history, the CLI commands to stake or delegate |
/// | `GET /market?cursor=&limit=` | HTML: the marketplace's models with their latest version |
/// | `GET /market/{id}` | HTML: a model's versions, metrics, lineage, downloads, CLI commands and a box to try it |
/// | `GET /api/tasks?cursor=&limit=` | `Page<TaskSummary>` |
/// | `GET /api/tasks/{id}` | [`TaskDetail`](crate::TaskDetail) |
/// | `GET /api/tasks/{id}/model` | safetensors bytes, `ETag`, 304 on `If-None-Match` |
/// | `GET /api/accounts/{key}?cursor=&limit=` | [`AccountView`](crate::AccountView) |
/// | `GET /api/models?cursor=&limit=` | `Page<ModelSummary>` |
/// | `GET /api/models/{id}` | [`ModelDetail`](crate::ModelDetail) (its `versions` is the list) |
/// | `GET /api/models/{id}/versions/{version}/download` | safetensors bytes, `ETag`, 304 on `If-None-Match` |
/// | `POST /api/models/{id}/versions/{version}/predict` | [`Prediction`](crate::Prediction) for JSON or PNG inputs, unsigned (rate-limited per address) or signed with `Starling-Envelope` |
/// | `GET /api/openapi.json` | the OpenAPI 3.1 document of the routes below `/api`, `/healthz` and `/metrics` |
/// | `GET /healthz` | `200 ok` or 503 |
/// | `GET /metrics` | Prometheus text |
///
/// Every error of the JSON routes, including unknown routes (404), wrong
/// methods (405), oversized bodies (413) and panics (500), has the body
/// `{"error": {"code": …, "message": …}}`. Bodies are capped at
/// [`WebConfig::max_body_bytes`], the prediction route's at
/// [`WebConfig::max_predict_body_bytes`]. The HTML pages answer their own
/// errors (bad id or key 400, unknown task or account 404, store failures
/// 5xx) as HTML pages with the same status and message, and so does an
/// unknown path outside `/api/` when the client asks for `text/html`.
pub fn router(model: Arc<dyn ReadModel>) -> Router {
    router_with_config(model, WebConfig::default())
}

/// [`router`] with explicit limits.
pub fn router_with_config(model: Arc<dyn ReadModel>, config: WebConfig) -> Router {
    let (body_limit, predict_limit) = (config.max_body_bytes, config.max_predict_body_bytes);
    let state = AppState::new(model, config);
    let pages = Router::new()
        .route("/", get(html::tasks::list))
        .route("/tasks/{id}", get(html::task::detail))
        .route("/accounts/{key}", get(html::account::get))
        .route("/market", get(html::market::list))
        .route("/market/{id}", get(html::market_model::detail))
        .layer(RequestBodyLimitLayer::new(body_limit));
    api_routes()
        .into_iter()
        .fold(pages, |router, (path, handler)| {
            // Only the prediction route reads a body of any size; the limit
            // layers wrap each route so that its own limit applies.
            let limit = if path == predict::PATH { predict_limit } else { body_limit };
            router.route(
                path,
                handler.route_layer(DefaultBodyLimit::max(limit)).route_layer(RequestBodyLimitLayer::new(limit)),
            )
        })
        .fallback(no_route)
        .with_state(state)
        // Layers wrap what is above them: the last one added runs first, so
        // the error normaliser sees the responses of every other layer.
        .layer(CatchPanicLayer::new())
        .layer(map_response(normalize_errors))
}

/// The machine-readable routes, with their handlers: the one list the
/// router serves and the OpenAPI document must describe (its test checks
/// both ways), so a route is added here or nowhere.
pub(crate) fn api_routes() -> [(&'static str, MethodRouter<AppState>); 11] {
    [
        ("/api/tasks", get(tasks::list)),
        ("/api/tasks/{id}", get(tasks::detail)),
        ("/api/tasks/{id}/model", get(model::download)),
        ("/api/accounts/{key}", get(accounts::get)),
        ("/api/models", get(market::list)),
        ("/api/models/{id}", get(market::detail)),
        ("/api/models/{id}/versions/{version}/download", get(market::download)),
        (predict::PATH, post(predict::predict)),
        ("/api/openapi.json", get(openapi::get)),
        ("/healthz", get(ops::healthz)),
        ("/metrics", get(ops::metrics)),
    ]
}

/// The answer for a path no route matches: an HTML page for a browser
/// outside `/api/`, the JSON error otherwise.
async fn no_route(uri: Uri, headers: HeaderMap) -> Response {
    let wants_html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("text/html"));
    if wants_html && !uri.path().starts_with("/api/") {
        HtmlError(ApiError::not_found("no page at this address")).into_response()
    } else {
        ApiError::not_found("no such route").into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode, header};
    use serde_json::json;

    use crate::testing::{MemoryModel, get, send, send_html, send_json};

    #[tokio::test]
    async fn unknown_routes_are_json_404() {
        let model = MemoryModel::fixture();
        for uri in ["/nope", "/tasks", "/tasks/1/extra", "/api/tasks/1/model/extra", "/api/accounts"] {
            let (status, body) = send_json(&model, get(uri)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert_eq!(body, json!({"error": {"code": "not_found", "message": "no such route"}}), "{uri}");
        }
        // A browser gets a page outside /api/, and the JSON error inside it.
        let browser = |uri: &str| {
            Request::get(uri)
                .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
                .body(Default::default())
        };
        let (status, page) = send_html(&model, browser("/tasks/1/extra").unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(page.contains("<h1>404 Not Found</h1>") && page.contains("no page at this address"), "{page}");
        let (status, body) = send_json(&model, browser("/api/nope").unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["message"], "no such route");
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
