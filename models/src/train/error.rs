//! Why local training or evaluation could not run.

use crate::zoo::ZooError;

/// An error from [`train_local`](super::train_local) or
/// [`evaluate`](super::evaluate). Nothing is half-done on error: the caller's
/// model and data are untouched.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A [`TrainConfig`](super::TrainConfig) field is out of range.
    #[error("training setting `{field}` {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// There is nothing to train or evaluate on.
    #[error("the dataset is empty")]
    EmptyData,
    /// The data's images are not what the model reads.
    #[error("the model reads {expected} features per sample but the data has {found}")]
    FeatureCount {
        /// Features the model takes.
        expected: usize,
        /// Features per sample in the data.
        found: usize,
    },
    /// The data has more classes than the model predicts.
    #[error("the data has {found} classes but the model predicts {expected}")]
    ClassCount {
        /// Classes the model predicts.
        expected: usize,
        /// Classes in the data.
        found: usize,
    },
    /// Training diverged: the loss stopped being a finite number.
    #[error("the loss became {loss} at epoch {epoch}, step {step}; lower the learning rate")]
    Diverged {
        /// Epoch (from 1).
        epoch: u32,
        /// Step within the epoch (from 1).
        step: usize,
        /// The loss value.
        loss: f32,
    },
    /// The model could not be built from, or read back into, weights.
    #[error(transparent)]
    Model(#[from] ZooError),
}
