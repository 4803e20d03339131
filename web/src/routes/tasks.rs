//! `GET /api/tasks` and `GET /api/tasks/{id}`.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};

use crate::error::ApiError;
use crate::page::Page;
use crate::params::{PageQuery, page_request, task_id};
use crate::state::AppState;
use crate::views::{TaskDetail, TaskSummary};

/// One page of tasks.
pub(crate) async fn list(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page<TaskSummary>>, ApiError> {
    let page = page_request(query, &state.config)?;
    Ok(Json(state.tasks(page).await?))
}

/// One task in detail.
pub(crate) async fn detail(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TaskDetail>, ApiError> {
    Ok(Json(state.task(task_id(path)?).await?))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use crate::testing::{MemoryModel, get, send_json};

    #[tokio::test]
    async fn cursor_walks_every_task_once() {
        let model = MemoryModel::fixture();
        let mut seen = Vec::new();
        let mut uri = "/api/tasks?limit=2".to_owned();
        let mut pages = 0;
        loop {
            let (status, body) = send_json(&model, get(&uri)).await;
            assert_eq!(status, StatusCode::OK);
            let items = body["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(items.iter().map(|item| item["id"].as_u64().unwrap()));
            pages += 1;
            match body["next_cursor"].as_str() {
                Some(cursor) => uri = format!("/api/tasks?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen, model.task_ids());
        assert_eq!(pages, 3);
    }

    #[tokio::test]
    async fn list_rows_have_the_documented_shape() {
        let model = MemoryModel::fixture();
        let (status, body) = send_json(&model, get("/api/tasks?limit=1")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({
                "items": [MemoryModel::task_one_summary_json()],
                "next_cursor": "1",
            })
        );
    }

    #[tokio::test]
    async fn limit_is_defaulted_and_capped() {
        let model = MemoryModel::with_many_tasks(300);
        let (_, body) = send_json(&model, get("/api/tasks")).await;
        assert_eq!(body["items"].as_array().unwrap().len(), 50);
        let (_, body) = send_json(&model, get("/api/tasks?limit=100000000000")).await;
        assert_eq!(body["items"].as_array().unwrap().len(), 200);
        assert_eq!(body["next_cursor"], "200");
        assert_eq!(model.last_page_request().unwrap().limit, 200);
        let (_, body) = send_json(&model, get("/api/tasks?cursor=200&limit=")).await;
        assert_eq!(body["items"].as_array().unwrap().len(), 50);
    }

    #[tokio::test]
    async fn bad_cursor_and_limit_are_400() {
        let model = MemoryModel::fixture();
        for (uri, code) in [
            ("/api/tasks?cursor=abc", "invalid_cursor"),
            ("/api/tasks?cursor=-1", "invalid_cursor"),
            ("/api/tasks?cursor=99999999999999999999", "invalid_cursor"),
            ("/api/tasks?limit=0", "invalid_limit"),
            ("/api/tasks?limit=ten", "invalid_limit"),
            ("/api/tasks?limit=1&limit=2", "invalid_query"),
        ] {
            let (status, body) = send_json(&model, get(uri)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(body["error"]["code"], code, "{uri}");
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{uri}");
            assert_eq!(body.as_object().unwrap().len(), 1, "{uri}: only the error object");
        }
        let (_, body) = send_json(&model, get("/api/tasks?cursor=abc")).await;
        assert_eq!(body, json!({"error": {"code": "invalid_cursor", "message": "not a cursor returned by this API"}}));
    }

    #[tokio::test]
    async fn detail_has_the_documented_shape() {
        let model = MemoryModel::fixture();
        let (status, body) = send_json(&model, get("/api/tasks/1")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, MemoryModel::task_one_json());
    }

    #[tokio::test]
    async fn unknown_and_malformed_task_ids() {
        let model = MemoryModel::fixture();
        let (status, body) = send_json(&model, get("/api/tasks/4")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"error": {"code": "not_found", "message": "no task 4"}}));

        for uri in ["/api/tasks/abc", "/api/tasks/-1", "/api/tasks/+1", "/api/tasks/18446744073709551616"] {
            let (status, body) = send_json(&model, get(uri)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(
                body,
                json!({"error": {"code": "invalid_task_id", "message": "task id must be a decimal number below 2^64"}}),
                "{uri}"
            );
        }
    }

    #[tokio::test]
    async fn store_failures_hide_their_cause() {
        let model = MemoryModel::fixture();
        model.fail_with_unavailable("postgres at 10.0.0.7:5432 refused the connection");
        let (status, body) = send_json(&model, get("/api/tasks")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, json!({"error": {"code": "unavailable", "message": "service unavailable; try again later"}}));

        model.fail_with_internal("row 17 has a NULL phase");
        let (status, body) = send_json(&model, get("/api/tasks/1")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({"error": {"code": "internal", "message": "internal server error"}}));
    }
}
