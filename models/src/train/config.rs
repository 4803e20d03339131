//! Settings of one local training run.

use super::TrainError;

/// How a trainer trains on its data in one round.
///
/// The defaults are the FedAvg paper's MNIST setting for one client: one
/// epoch of batch 10 at learning rate 0.1, plain SGD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// Local epochs `E`: full passes over the trainer's data. At least 1.
    pub epochs: u32,
    /// Batch size `B`; the last batch of an epoch may be smaller. At least 1.
    pub batch_size: usize,
    /// SGD learning rate, finite and positive.
    pub learning_rate: f64,
    /// Heavy-ball momentum in `[0, 1)`; `0` is plain SGD. No dampening, as
    /// in PyTorch's default, so results compare.
    pub momentum: f64,
    /// L2 penalty added to the gradient (`grad + λ·w`), `≥ 0`.
    pub weight_decay: f64,
    /// FedProx proximal weight `μ ≥ 0` (Li et al. 2020): the loss gains
    /// `μ/2 · ‖w − w_global‖²`, which keeps non-IID trainers near the
    /// global model. `0` is plain FedAvg local training.
    pub prox_mu: f64,
    /// Seeds the order batches are drawn in; the same seed, data and model
    /// give the same update.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self { epochs: 1, batch_size: 10, learning_rate: 0.1, momentum: 0.0, weight_decay: 0.0, prox_mu: 0.0, seed: 0 }
    }
}

impl TrainConfig {
    /// Checks every field's range; a config that passes trains without
    /// panicking on any non-empty dataset.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &'static str, reason: String| Err(TrainError::Config { field, reason });
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", format!("must be finite and positive, got {}", self.learning_rate));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", format!("must be in [0, 1), got {}", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay", format!("must be finite and ≥ 0, got {}", self.weight_decay));
        }
        if !(self.prox_mu.is_finite() && self.prox_mu >= 0.0) {
            return bad("prox_mu", format!("must be finite and ≥ 0, got {}", self.prox_mu));
        }
        Ok(())
    }
}
