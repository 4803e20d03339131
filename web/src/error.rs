//! The one error shape every failing API response has:
//! `{"error": {"code": "not_found", "message": "no task 7"}}`.
//!
//! Handlers return [`ApiError`]. Responses that other layers produce (axum's
//! 405, the body limit's 413, a caught panic's 500, a rate limiter's 429) are
//! rewritten into the same shape by [`normalize_errors`], so a client never
//! has to parse a second format, and a 5xx never carries internal detail.
//! The one exception is the dashboard: its HTML routes render the same
//! [`ApiError`] as a page for people, marked with [`keep_shape`].
//!
//! A failure of the read model becomes a bare 503 or 500 through
//! [`store_failed`], which logs its cause and sends none of it.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::read_model::ReadError;

/// An error answer: a status, a stable machine-readable `code` and a message
/// for people. Messages of 4xx say what the caller did wrong; messages of 5xx
/// are fixed texts that reveal nothing about the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A 400 with a specific `code` (e.g. `"invalid_cursor"`) and a message
    /// saying which input was wrong and why.
    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code: Cow::Borrowed(code), message: message.into(), retry_after: None }
    }

    /// Any status with its own `code` and a message: for the answers that
    /// have no shortcut (`401 invalid_signature`, `402 payment_required`,
    /// `409 replayed`, `503 busy`). Use it for 4xx and for 5xx whose
    /// message reveals nothing about the server.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self { status, code: Cow::Borrowed(code), message: message.into(), retry_after: None }
    }

    /// A 404 saying what was not found.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: Cow::Borrowed("not_found"),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The generic answer for `status`: code and message derived from the
    /// status alone. Used for every 5xx, so nothing internal can leak.
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message): (&str, &str) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
            StatusCode::NOT_FOUND => ("not_found", "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed on this resource"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body too large"),
            StatusCode::TOO_MANY_REQUESTS => ("too_many_requests", "too many requests; slow down"),
            StatusCode::INTERNAL_SERVER_ERROR => ("internal", "internal server error"),
            StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "service unavailable; try again later"),
            _ if status.is_server_error() => ("server_error", "server error"),
            _ => ("client_error", "the request was refused"),
        };
        Self { status, code: Cow::Borrowed(code), message: Cow::Borrowed(message), retry_after: None }
    }

    /// The 500 answer.
    pub fn internal() -> Self {
        Self::from_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The 503 answer.
    pub fn unavailable() -> Self {
        Self::from_status(StatusCode::SERVICE_UNAVAILABLE)
    }

    /// The 429 answer, for a rate limiter the embedding server adds.
    pub fn too_many_requests() -> Self {
        Self::from_status(StatusCode::TOO_MANY_REQUESTS)
    }

    /// The same answer with `Retry-After: seconds` (for a 429 or a 503 that
    /// knows when trying again makes sense).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Marks a response whose body already has the error shape, so
/// [`normalize_errors`] leaves it alone.
#[derive(Debug, Clone, Copy)]
struct Shaped;

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body { error: Detail { code: &self.code, message: &self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(Shaped);
        response
    }
}

/// Marks `response` as already in the shape its client reads, so
/// [`normalize_errors`] passes it through: for the dashboard's HTML error
/// pages, which a browser shows to a person.
pub(crate) fn keep_shape(mut response: Response) -> Response {
    response.extensions_mut().insert(Shaped);
    response
}

/// Middleware (for `axum::middleware::map_response`): gives every 4xx/5xx
/// response not built from an [`ApiError`] the standard body, keeping its
/// status and headers (`Allow` on a 405, `Retry-After` on a 429).
pub(crate) async fn normalize_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || response.extensions().get::<Shaped>().is_some() {
        return response;
    }
    let (mut parts, _foreign_body) = response.into_parts();
    let shaped = ApiError::from_status(status).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.extensions.insert(Shaped);
    Response::from_parts(parts, shaped.into_body())
}

/// Logs a read-model failure in full and answers with the bare status.
pub(crate) fn store_failed(operation: &'static str) -> impl FnOnce(ReadError) -> ApiError {
    move |error| {
        let cause = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
        match error {
            ReadError::Unavailable(_) => {
                tracing::warn!(operation, %cause, "read model unavailable");
                ApiError::unavailable()
            }
            ReadError::Internal(_) => {
                tracing::error!(operation, %cause, "read model failed");
                ApiError::internal()
            }
        }
    }
}

/// What a read of one thing answered: the thing, the 404 that says
/// `missing` when there is none, or the [`store_failed`] answer (logged as
/// `operation`) when the read model failed.
pub(crate) fn found<T>(
    read: Result<Option<T>, ReadError>,
    operation: &'static str,
    missing: impl FnOnce() -> String,
) -> Result<T, ApiError> {
    read.map_err(store_failed(operation))?.ok_or_else(|| ApiError::not_found(missing()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::json_body;

    #[tokio::test]
    async fn api_errors_have_the_standard_shape() {
        let response = ApiError::bad_request("invalid_cursor", "cursor: not a number").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            json_body(response).await,
            serde_json::json!({"error": {"code": "invalid_cursor", "message": "cursor: not a number"}})
        );
    }

    #[tokio::test]
    async fn retry_after_is_sent_when_given() {
        let response = ApiError::too_many_requests().with_retry_after(7).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let shaped = normalize_errors(response).await;
        assert_eq!(shaped.headers()[header::RETRY_AFTER], "7");
        assert_eq!(json_body(shaped).await["error"]["code"], "too_many_requests");
        assert!(ApiError::not_found("x").into_response().headers().get(header::RETRY_AFTER).is_none());
    }

    #[tokio::test]
    async fn handler_errors_keep_their_own_code_and_message() {
        // A 402 is not rewritten to the generic "client_error".
        let payment = ApiError::new(StatusCode::PAYMENT_REQUIRED, "payment_required", "the call costs 1 STAR");
        let response = normalize_errors(payment.into_response()).await;
        assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(
            json_body(response).await,
            serde_json::json!({"error": {"code": "payment_required", "message": "the call costs 1 STAR"}})
        );
    }

    #[tokio::test]
    async fn foreign_errors_are_reshaped_and_keep_their_headers() {
        let foreign = Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header(header::RETRY_AFTER, "3")
            .header(header::CONTENT_TYPE, "text/plain")
            .body(axum::body::Body::from("limiter internals: bucket 17 empty"))
            .unwrap();
        let response = normalize_errors(foreign).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            json_body(response).await,
            serde_json::json!({"error": {"code": "too_many_requests", "message": "too many requests; slow down"}})
        );
    }

    #[tokio::test]
    async fn successes_and_shaped_errors_pass_untouched() {
        let ok = normalize_errors((StatusCode::OK, "fine").into_response()).await;
        assert_eq!(ok.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        let shaped = normalize_errors(ApiError::not_found("no task 9").into_response()).await;
        assert_eq!(json_body(shaped).await["error"]["message"], "no task 9");
    }
}
