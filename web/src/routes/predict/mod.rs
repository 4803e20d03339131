//! `POST /api/models/{id}/versions/{version}/predict`: runs a marketplace
//! model on the body's inputs.
//!
//! The body is JSON `{"inputs": [...]}` or one `image/png`. Unsigned calls
//! are the free tier: at most [`WebConfig::anonymous_max_inputs`] inputs and
//! a token bucket per client address. Paid calls carry a signed
//! `PredictRequest` in the `Starling-Envelope` header, which binds the model,
//! the version and the exact body, and have a token bucket per identity.
//!
//! Checks run cheapest first, and nothing reaches the read model before
//! every one has passed: path, media type, envelope (signature, freshness,
//! single use, model and version), rate limit, body size, body hash, inputs.
//!
//! The client address comes from axum's `ConnectInfo<SocketAddr>`, which
//! [`serve`](crate::serve()) provides. A router used without it (e.g. behind
//! a custom server that does not insert it) counts every unsigned caller as
//! one address, so they share one bucket; behind a reverse proxy the proxy
//! is the only address seen, with the same effect.
//!
//! The handler below runs the checks in that order: [`admission`] decides
//! who may call (the envelope and the rate limits), [`inputs`] reads the
//! body.
//!
//! [`WebConfig::anonymous_max_inputs`]: crate::WebConfig::anonymous_max_inputs

mod admission;
mod inputs;
#[cfg(test)]
mod tests;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, store_failed};
use crate::format;
use crate::params::model_version;
use crate::read_model::PredictError;
use crate::state::AppState;
use crate::views::{Caller, PredictCall};

/// The route's path, as [`crate::router::api_routes`] lists it.
pub(crate) const PATH: &str = "/api/models/{id}/versions/{version}/predict";

/// One prediction call.
pub(crate) async fn predict(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, ApiError> {
    let (id, version) = model_version(path)?;
    let media = inputs::media(request.headers())?;
    let signed = admission::admit(&state, &request, id, version)?;
    // The route's `DefaultBodyLimit` caps what is read.
    let body =
        Bytes::from_request(request, &state).await.map_err(|rejection| ApiError::from_status(rejection.status()))?;
    if let Some(call) = &signed {
        admission::check_body(call, &body)?;
    }
    let inputs = inputs::read(&state, media, &body, signed.is_some(), id, version).await?;
    let caller = match signed {
        Some(call) => Caller::Signed { key: call.signer, max_fee: call.message.max_fee, request: call.request },
        None => Caller::Anonymous,
    };
    let prediction = state
        .model
        .predict(PredictCall { model: id, version, caller, inputs })
        .await
        .map_err(|error| predict_failed(error, id, version))?;
    Ok(([(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], Json(prediction)).into_response())
}

/// The answer to a refused prediction. Nothing was charged in any case.
fn predict_failed(error: PredictError, id: u64, version: u32) -> ApiError {
    match error {
        PredictError::NotFound => ApiError::not_found(format!("model {id} has no version {version}")),
        PredictError::BadInput(message) => inputs::invalid_input(message),
        PredictError::PaymentRequired { fee, available, max_fee } => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment_required",
            format!(
                "payment required: the call costs {} beyond your free quota, your free balance is {} and your \
                 max_fee is {}; nothing was charged",
                format::star(fee),
                format::star(available),
                format::star(max_fee)
            ),
        ),
        PredictError::Replayed => ApiError::new(
            StatusCode::CONFLICT,
            "replayed",
            "this signed request was already used; sign a new one with a fresh nonce",
        ),
        PredictError::Busy => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "inference is busy; try again in a second")
                .with_retry_after(1)
        }
        PredictError::Failed(error) => store_failed("predict")(error),
    }
}
