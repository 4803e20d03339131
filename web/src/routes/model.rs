//! `GET /api/tasks/{id}/model`: the task's current global model as
//! safetensors bytes, cacheable by content hash; [`blob_response`] serves
//! marketplace versions the same way.
//!
//! The URL's content changes every round, so responses are `no-cache`
//! (always revalidate) with a strong `ETag` of the BLAKE3 hash; a client
//! holding the current model sends `If-None-Match` and gets a bodiless 304.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_core::Stream;
use starling_protocol::{ContentHash, TaskId};

use crate::error::{ApiError, found};
use crate::params::task_id;
use crate::read_model::{BoxError, ByteStream, ModelBlob, ModelBody};
use crate::state::AppState;

/// The model download.
pub(crate) async fn download(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = task_id(path)?;
    let blob = found(state.model.model(id).await, "read model", || format!("task {id} has no global model"))?;
    let name = file_name(id, &blob.hash);
    Ok(blob_response(blob, &headers, &name, format!("task {id}")))
}

/// A model file as the answer to a GET with `headers`: `200` with the bytes
/// (an attachment named `file_name`) or a bodiless `304` when
/// `If-None-Match` names its hash. Both carry the `ETag` and `no-cache`.
/// `what` names the model in the log if its stream fails.
pub(crate) fn blob_response(blob: ModelBlob, headers: &HeaderMap, file_name: &str, what: String) -> Response {
    let etag = etag(&blob.hash);
    let cache = [(header::ETAG, etag.clone()), (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))];
    if none_match(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let body = match blob.body {
        ModelBody::Bytes(bytes) => Body::from(bytes),
        ModelBody::Stream(stream) => Body::from_stream(Logged { inner: stream, what }),
    };
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    // File names here are ours (digits, hex, ASCII punctuation); one that is
    // not valid header text is left out rather than failing the download.
    match HeaderValue::try_from(format!("attachment; filename=\"{file_name}\"")) {
        Ok(disposition) => (cache, [content_type, (header::CONTENT_DISPOSITION, disposition)], body).into_response(),
        Err(_) => (cache, [content_type], body).into_response(),
    }
}

/// The strong entity tag of a model: its hash, quoted.
fn etag(hash: &ContentHash) -> HeaderValue {
    HeaderValue::try_from(format!("\"{hash}\"")).expect("hex is valid header text")
}

/// `task-7-af1349b9f5f9a1a6.safetensors`: the task and the hash's first 16
/// hex digits, so two rounds' downloads do not overwrite each other.
fn file_name(task: TaskId, hash: &ContentHash) -> String {
    let hex = hash.to_string();
    format!("task-{task}-{}.safetensors", &hex[..16])
}

/// Whether `If-None-Match` names `etag` (or is `*`). Weak comparison, as
/// RFC 9110 §13.1.2 prescribes for this header: a `W/` prefix is ignored.
fn none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else { return false };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Passes the artifact stream through, logging an error that aborts it (the
/// client only sees a cut connection).
struct Logged {
    inner: ByteStream,
    what: String,
}

impl Stream for Logged {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Err(error))) = &polled {
            tracing::error!(model = %self.what, %error, "model download aborted");
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode, header};
    use serde_json::json;

    use crate::testing::{MemoryModel, body_bytes, get, send, send_json};
    use starling_protocol::ContentHash;

    #[tokio::test]
    async fn serves_bytes_with_etag_and_file_name() {
        let model = MemoryModel::fixture();
        let hash = ContentHash::of(MemoryModel::MODEL_ONE);
        let response = send(&model, get("/api/tasks/1/model")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
        assert_eq!(headers[header::ETAG], format!("\"{hash}\""));
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert_eq!(
            headers[header::CONTENT_DISPOSITION],
            format!("attachment; filename=\"task-1-{}.safetensors\"", &hash.to_string()[..16])
        );
        assert_eq!(headers[header::CONTENT_LENGTH], MemoryModel::MODEL_ONE.len().to_string());
        assert_eq!(body_bytes(response).await, MemoryModel::MODEL_ONE);
    }

    #[tokio::test]
    async fn streams_chunks_in_order() {
        let model = MemoryModel::fixture();
        let response = send(&model, get("/api/tasks/2/model")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::ETAG], format!("\"{}\"", ContentHash::of(b"chunk one|chunk two")));
        assert_eq!(body_bytes(response).await, b"chunk one|chunk two");
    }

    #[tokio::test]
    async fn matching_if_none_match_is_304_without_body() {
        let model = MemoryModel::fixture();
        let etag = format!("\"{}\"", ContentHash::of(MemoryModel::MODEL_ONE));
        for value in [etag.clone(), format!("W/{etag}"), format!("\"stale\", {etag}"), "*".to_owned()] {
            let request =
                Request::get("/api/tasks/1/model").header(header::IF_NONE_MATCH, &value).body(Default::default());
            let response = send(&model, request.unwrap()).await;
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{value}");
            assert_eq!(response.headers()[header::ETAG], etag);
            assert!(response.headers().get(header::CONTENT_TYPE).is_none());
            assert!(body_bytes(response).await.is_empty());
        }
        let request =
            Request::get("/api/tasks/1/model").header(header::IF_NONE_MATCH, "\"stale\"").body(Default::default());
        let response = send(&model, request.unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_bytes(response).await, MemoryModel::MODEL_ONE);
    }

    #[tokio::test]
    async fn missing_model_and_bad_id() {
        let model = MemoryModel::fixture();
        let (status, body) = send_json(&model, get("/api/tasks/3/model")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body, json!({"error": {"code": "not_found", "message": "task 3 has no global model"}}));
        let (status, body) = send_json(&model, get("/api/tasks/x/model")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_task_id");
    }
}
