//! `GET /api/models`, `GET /api/models/{id}` and
//! `GET /api/models/{id}/versions/{version}/download`: the marketplace's
//! models, one with every version and its lineage, and a version's file.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::error::{ApiError, found};
use crate::page::Page;
use crate::params::{PageQuery, model_id, model_version, page_request};
use crate::routes::model::blob_response;
use crate::state::AppState;
use crate::views::{ModelDetail, ModelSummary};

/// One page of models.
pub(crate) async fn list(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page<ModelSummary>>, ApiError> {
    let page = page_request(query, &state.config)?;
    Ok(Json(state.models(page).await?))
}

/// One model with every version.
pub(crate) async fn detail(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ModelDetail>, ApiError> {
    Ok(Json(state.market_model(model_id(path)?).await?))
}

/// A version's safetensors file, named `model-{id}-v{version}.safetensors`.
pub(crate) async fn download(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (id, version) = model_version(path)?;
    let blob = found(state.model.model_version_file(id, version).await, "read model version file", || {
        format!("model {id} has no version {version}")
    })?;
    let name = format!("model-{id}-v{version}.safetensors");
    Ok(blob_response(blob, &headers, &name, format!("model {id} version {version}")))
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode, header};
    use serde_json::json;
    use starling_protocol::ContentHash;

    use crate::testing::{MemoryModel, body_bytes, get, send, send_json};

    #[tokio::test]
    async fn cursor_walks_every_model_once() {
        let model = MemoryModel::fixture();
        let (status, body) = send_json(&model, get("/api/models?limit=1")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["items"].as_array().unwrap().len(), 1);
        assert_eq!(body["items"][0]["id"], 1);
        assert_eq!(body["next_cursor"], "1");
        let (_, body) = send_json(&model, get("/api/models?limit=1&cursor=1")).await;
        assert_eq!(body["items"][0]["id"], 4);
        assert_eq!(body["next_cursor"], json!(null));
        let (_, body) = send_json(&model, get("/api/models")).await;
        let ids: Vec<u64> = body["items"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, [1, 4]);
        assert_eq!(model.last_page_request().unwrap().limit, 50);
    }

    #[tokio::test]
    async fn list_rows_have_the_documented_shape() {
        let model = MemoryModel::fixture();
        let (_, body) = send_json(&model, get("/api/models?limit=1")).await;
        assert_eq!(body["items"][0], MemoryModel::model_one_summary_json());
    }

    #[tokio::test]
    async fn bad_paging_is_400() {
        let model = MemoryModel::fixture();
        for (uri, code) in [("/api/models?cursor=x", "invalid_cursor"), ("/api/models?limit=0", "invalid_limit")] {
            let (status, body) = send_json(&model, get(uri)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(body["error"]["code"], code, "{uri}");
        }
    }

    #[tokio::test]
    async fn detail_lists_versions_newest_first_with_lineage() {
        let model = MemoryModel::fixture();
        let response = send(&model, get("/api/models/1")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = String::from_utf8(body_bytes(response).await).unwrap();
        assert_eq!(text.matches("\"versions\"").count(), 1, "one `versions` key: {text}");
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body, MemoryModel::model_one_detail_json());
    }

    #[tokio::test]
    async fn unknown_and_malformed_models() {
        let model = MemoryModel::fixture();
        let (status, body) = send_json(&model, get("/api/models/2")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"error": {"code": "not_found", "message": "no model 2"}}));
        for uri in ["/api/models/x", "/api/models/-1", "/api/models/18446744073709551616"] {
            let (status, body) = send_json(&model, get(uri)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(
                body,
                json!({"error": {"code": "invalid_model_id", "message": "model id must be a decimal number below 2^64"}})
            );
        }
        model.fail_with_unavailable("postgres at 10.0.0.7 refused");
        let (status, body) = send_json(&model, get("/api/models/1")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.to_string().contains("postgres"), "{body}");
        let (status, _) = send_json(&model, get("/api/models")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn download_serves_the_version_with_etag_and_name() {
        let model = MemoryModel::fixture();
        for (version, bytes) in [(1, MemoryModel::MODEL_ONE_V1), (2, MemoryModel::MODEL_ONE_V2)] {
            let response = send(&model, get(&format!("/api/models/1/versions/{version}/download"))).await;
            assert_eq!(response.status(), StatusCode::OK);
            let headers = response.headers().clone();
            assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
            assert_eq!(headers[header::ETAG], format!("\"{}\"", ContentHash::of(bytes)));
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
            assert_eq!(
                headers[header::CONTENT_DISPOSITION],
                format!("attachment; filename=\"model-1-v{version}.safetensors\"")
            );
            assert_eq!(body_bytes(response).await, bytes);
        }
        // Model 4's file streams.
        let response = send(&model, get("/api/models/4/versions/1/download")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_bytes(response).await, MemoryModel::MODEL_FOUR_V1);
    }

    #[tokio::test]
    async fn download_revalidates_with_304() {
        let model = MemoryModel::fixture();
        let etag = format!("\"{}\"", ContentHash::of(MemoryModel::MODEL_ONE_V2));
        let request = Request::get("/api/models/1/versions/2/download")
            .header(header::IF_NONE_MATCH, &etag)
            .body(Default::default())
            .unwrap();
        let response = send(&model, request).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], etag);
        assert!(body_bytes(response).await.is_empty());
        // Version 1's tag does not match version 2.
        let request = Request::get("/api/models/1/versions/1/download")
            .header(header::IF_NONE_MATCH, &etag)
            .body(Default::default())
            .unwrap();
        assert_eq!(send(&model, request).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn download_errors() {
        let model = MemoryModel::fixture();
        let (status, body) = send_json(&model, get("/api/models/1/versions/3/download")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"error": {"code": "not_found", "message": "model 1 has no version 3"}}));
        let (status, body) = send_json(&model, get("/api/models/x/versions/1/download")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_model_id");
        for version in ["x", "-1", "4294967296"] {
            let (status, body) = send_json(&model, get(&format!("/api/models/1/versions/{version}/download"))).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{version}");
            assert_eq!(
                body,
                json!({"error": {"code": "invalid_version", "message": "version must be a decimal number below 2^32"}})
            );
        }
        model.fail_with_internal("artifact store lost object 17");
        let (status, body) = send_json(&model, get("/api/models/1/versions/1/download")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("object 17"), "{body}");
    }
}
