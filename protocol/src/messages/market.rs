//! The marketplace's one signed request: paid inference over HTTP.
//!
//! `POST /api/models/{id}/versions/{v}/predict` carries its inputs as the
//! body (JSON or a PNG) and, when the caller pays, a [`PredictRequest`] in a
//! [`SignedEnvelope`](crate::SignedEnvelope) as the `Starling-Envelope`
//! header (the envelope's postcard bytes in lower-case hex). The message
//! binds the body by hash and names the model, so a signature cannot be
//! moved to other inputs or another model, and the envelope's nonce makes
//! every paid call single-use.

use serde::{Deserialize, Serialize};

use crate::envelope::Message;
use crate::ids::ContentHash;

/// HTTP header holding a signed [`PredictRequest`] envelope, hex-encoded.
pub const PREDICT_ENVELOPE_HEADER: &str = "starling-envelope";

/// A signed, paid inference request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictRequest {
    /// The marketplace model.
    pub model: u64,
    /// Its version.
    pub version: u32,
    /// BLAKE3 hash of the exact request body.
    pub body_hash: ContentHash,
    /// The most the caller agrees to pay, in µSTAR; a call that would cost
    /// more (the price rises while requests queue) is refused uncharged.
    pub max_fee: u64,
}

impl Message for PredictRequest {
    const KIND: &'static str = "starling/predict-request";
}
