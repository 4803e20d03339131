//! `GET /healthz` and `GET /metrics`: for load balancers and Prometheus.

use axum::extract::State;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, store_failed};
use crate::state::AppState;

/// The content type of Prometheus' text exposition format.
pub(crate) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `200 ok` when the coordinator can serve, else a bare 503 (the reason is
/// logged). Never cached: a stale "ok" would hide an outage.
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    match state.model.healthy().await {
        Ok(()) => (no_store, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], "ok")
            .into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "health check failed");
            (no_store, ApiError::unavailable()).into_response()
        }
    }
}

/// The coordinator's metrics, as it renders them.
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.model.metrics().await.map_err(store_failed("render metrics"))?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_TEXT)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    Ok((headers, text).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};
    use serde_json::json;

    use crate::testing::{MemoryModel, body_bytes, get, send, send_json};

    #[tokio::test]
    async fn healthz_says_ok() {
        let model = MemoryModel::fixture();
        let response = send(&model, get("/healthz")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(body_bytes(response).await, b"ok");
    }

    #[tokio::test]
    async fn unhealthy_is_503_without_the_reason() {
        let model = MemoryModel::fixture();
        model.set_unhealthy("sqlite: database is locked (/var/lib/starling/ledger.db)");
        let response = send(&model, get("/healthz")).await;
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let text = String::from_utf8(body_bytes(response).await).unwrap();
        assert!(!text.contains("sqlite") && !text.contains("/var/lib"), "{text}");
        let (status, body) = send_json(&model, get("/healthz")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, json!({"error": {"code": "unavailable", "message": "service unavailable; try again later"}}));
    }

    #[tokio::test]
    async fn metrics_are_prometheus_text() {
        let model = MemoryModel::fixture();
        let response = send(&model, get("/metrics")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain; version=0.0.4; charset=utf-8");
        assert_eq!(body_bytes(response).await, MemoryModel::METRICS.as_bytes());
    }
}
