//! The prediction call's inputs, read from its body: a JSON batch, or one
//! PNG resized to the model's input.

use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap};

use crate::error::ApiError;
use crate::predict::json::InputError;
use crate::predict::{image, json};
use crate::state::AppState;

/// The media types the body may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    Json,
    Png,
}

/// The body's media type: JSON or PNG, parameters (`; charset=utf-8`) ignored.
pub(crate) fn media(headers: &HeaderMap) -> Result<Media, ApiError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    match essence {
        Some(kind) if kind.eq_ignore_ascii_case("application/json") => Ok(Media::Json),
        Some(kind) if kind.eq_ignore_ascii_case("image/png") => Ok(Media::Png),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the inputs as application/json ({\"inputs\": [...]}) or as one image/png",
        )),
    }
}

/// The inputs in `body`, sent as `media` to model `id` at `version`. An
/// unsigned call may send at most the configured number of inputs; a signed
/// one as many as the read model accepts, which checks them itself.
pub(crate) async fn read(
    state: &AppState,
    media: Media,
    body: &[u8],
    signed: bool,
    id: u64,
    version: u32,
) -> Result<Vec<Vec<f32>>, ApiError> {
    let max_inputs = if signed { usize::MAX } else { state.config.anonymous_max_inputs as usize };
    match media {
        Media::Json => json::inputs(body, max_inputs).map_err(|error| match error {
            InputError::Invalid(message) => invalid_input(message),
            InputError::TooMany { count, max } => {
                invalid_input(format!("{count} inputs: unsigned calls take at most {max}; sign the call to send more"))
            }
        }),
        Media::Png => Ok(vec![png_input(state, body, id, version).await?]),
    }
}

/// The model's input for a PNG body: the image as grayscale, at the size of
/// the model's input (the last two dimensions of its input shape).
async fn png_input(state: &AppState, body: &[u8], id: u64, version: u32) -> Result<Vec<f32>, ApiError> {
    let model = state.market_model(id).await?;
    if !model.versions.iter().any(|v| v.summary.version == version) {
        return Err(ApiError::not_found(format!("model {id} has no version {version}")));
    }
    let shape = &model.summary.input_shape;
    let (height, width) = match shape.as_slice() {
        [.., height, width] if *height > 0 && *width > 0 => (*height, *width),
        _ => return Err(invalid_input(format!("model {id} takes inputs of shape {shape:?}, not images; send JSON"))),
    };
    if height.saturating_mul(width) as u64 > image::MAX_PIXELS {
        return Err(invalid_input(format!("model {id} takes inputs too large to send as a PNG; send JSON")));
    }
    image::grayscale(body, height, width).map_err(|error| invalid_input(error.to_string()))
}

/// A 400 about the inputs.
pub(crate) fn invalid_input(message: String) -> ApiError {
    ApiError::bad_request("invalid_input", message)
}
