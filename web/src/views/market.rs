//! Views of the model marketplace: models promoted from finished tasks, their
//! versions and lineage, and what an inference call returns.

use serde::Serialize;
use starling_protocol::{ContentHash, PublicKey, Role, RoundNumber, TaskId};

/// One row of `GET /api/models`: a marketplace model and its latest version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// The model's id (stable; versions are numbered within it).
    pub id: u64,
    /// Its name, `{dataset}-{architecture}` of the tasks that produced it, e.g. `"mnist-cnn"`.
    pub name: String,
    /// The identity that created the tasks (a model is one creator's line of versions).
    pub creator: PublicKey,
    /// Architecture name from the model zoo, e.g. `"cnn"`.
    pub architecture: String,
    /// Dataset name, e.g. `"mnist"`.
    pub dataset: String,
    /// Shape of one input, e.g. `[1, 28, 28]`.
    pub input_shape: Vec<usize>,
    /// Number of classes a prediction chooses from.
    pub num_classes: u32,
    /// Number of versions.
    pub version_count: u32,
    /// The newest version.
    pub latest: VersionSummary,
}

/// A version's identity and metrics, without its lineage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionSummary {
    /// The version number, from 1.
    pub version: u32,
    /// BLAKE3 hash of the safetensors file.
    pub hash: ContentHash,
    /// Size of the file in bytes.
    pub size_bytes: u64,
    /// When it was promoted, seconds since the Unix epoch.
    pub promoted_at: u64,
    /// The task that produced it.
    pub task: TaskId,
    /// The round whose aggregate it is (the task's best by consensus).
    pub round: RoundNumber,
    /// The validators' consensus estimate of its accuracy, in `[0, 1]`.
    pub consensus_accuracy: f64,
    /// Its accuracy on the coordinator's held-out data, if measured.
    pub accuracy: Option<f64>,
    /// Its mean loss on the same data, if measured.
    pub loss: Option<f64>,
    /// What an inference call costs before any congestion bump.
    pub price: Price,
}

/// Inference price, in µSTAR: `base + per_item · n` for `n` inputs, then
/// ×1.005 for every request already queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Price {
    /// Per call.
    pub base: u64,
    /// Per input.
    pub per_item: u64,
}

/// `GET /api/models/{id}`: the summary's fields, and every version with its lineage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelDetail {
    /// The same fields as the list row.
    #[serde(flatten)]
    pub summary: ModelSummary,
    /// Every version, newest first.
    pub versions: Vec<VersionDetail>,
}

/// One version with its lineage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionDetail {
    /// Identity and metrics.
    #[serde(flatten)]
    pub summary: VersionSummary,
    /// Rounds the producing task ran.
    pub rounds: u32,
    /// Who earned rewards on the producing task, by amount earned (largest
    /// first); inference fees are shared among them by the same weights.
    pub contributors: Vec<Contributor>,
}

/// An identity that earned rewards on a model's task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contributor {
    /// The identity.
    pub key: PublicKey,
    /// The role it earned in.
    pub role: Role,
    /// Rewards it earned on the task, in µSTAR.
    pub earned: u64,
}

/// Who is asking for a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A verified signed request: uses the caller's free daily quota, then
    /// pays at most `max_fee`. `request` (the envelope's signature hash)
    /// makes the charge idempotent.
    Signed {
        /// The caller.
        key: PublicKey,
        /// The most it agreed to pay, in µSTAR.
        max_fee: u64,
        /// Identifies this request for the ledger's idempotency.
        request: ContentHash,
    },
    /// An unsigned caller: the free tier, never charged (the HTTP side
    /// limits its rate per address and its batch size).
    Anonymous,
}

/// What [`ReadModel::predict`](crate::ReadModel::predict) is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictCall {
    /// The model.
    pub model: u64,
    /// The version.
    pub version: u32,
    /// Who asks.
    pub caller: Caller,
    /// The inputs, each the model's input shape flattened row-major, values in `[0, 1]`.
    pub inputs: Vec<Vec<f32>>,
}

/// The answer to `POST /api/models/{id}/versions/{v}/predict`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// One per input, in order.
    pub predictions: Vec<ItemPrediction>,
    /// µSTAR taken from the caller's balance (0 within the free quota or tier).
    pub charged: u64,
    /// Inputs of this call covered by the free quota or tier.
    pub free_items: u32,
    /// Free inputs the caller has left today (`null` for unsigned callers).
    pub quota_left: Option<u64>,
}

/// The model's answer for one input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemPrediction {
    /// The most probable class.
    pub label: u32,
    /// Probability of each class (softmax of the logits), summing to 1.
    pub probabilities: Vec<f32>,
}
