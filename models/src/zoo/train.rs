//! One step of local SGD on a zoo model.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;

use super::Model;

/// Mean cross-entropy of `logits` `[B, 10]` against class `labels` `[B]`,
/// as a one-element tensor.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    CrossEntropyLossConfig::new().init(&logits.device()).forward(logits, labels)
}

/// Plain SGD (no momentum, no weight decay yet) with a fixed learning rate.
///
/// The model and the batches must live on an autodiff device
/// (`Device::flex().autodiff()`); burn cannot take gradients otherwise.
pub struct SgdTrainer {
    optim: ModuleOptimizer,
    learning_rate: f64,
}

impl SgdTrainer {
    /// A trainer stepping with `learning_rate` (e.g. `0.1`).
    pub fn new(learning_rate: f64) -> Self {
        Self { optim: SgdConfig::new().init(), learning_rate }
    }

    /// One gradient step on the batch `inputs` `[B, 784]`, `labels` `[B]`.
    /// Returns the updated model and the batch's loss before the step.
    pub fn step(&mut self, model: Model, inputs: Tensor<2>, labels: Tensor<1, Int>) -> (Model, f32) {
        let loss = cross_entropy(model.forward(inputs), labels);
        let loss_value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (self.optim.step(self.learning_rate, model, grads), loss_value)
    }
}
