//! One trainer's local training run.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use starling_protocol::NamedTensor;

use super::evaluate::check_data;
use super::{Features, Progress, Stage, TrainConfig, TrainError};
use crate::zoo::{Model, ModelKind, cross_entropy};

/// What a trainer sends after training: the change it made and how much
/// data it made it from.
#[derive(Debug, Clone)]
pub struct LocalUpdate {
    /// `w_local − w_global`, tensor by tensor in the model's spec order.
    pub delta: Vec<NamedTensor>,
    /// Samples trained on per epoch: FedAvg's weight for this update.
    pub samples: usize,
    /// Mean training loss over the last epoch (before each step).
    pub loss: f32,
    /// Optimiser steps taken.
    pub steps: usize,
}

/// Trains a `kind` model that starts at `global` on `data` as `config`
/// says, on `device` (autodiff is added here), and returns the update.
///
/// Each epoch visits every sample once in an order drawn from
/// `config.seed` and the epoch number, in batches of `config.batch_size`
/// (the last one may be smaller). With `prox_mu > 0` the loss carries
/// FedProx's `μ/2 · ‖w − w_global‖²`.
pub fn train_local(
    kind: ModelKind,
    global: &[NamedTensor],
    data: &Features,
    config: &TrainConfig,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<LocalUpdate, TrainError> {
    config.validate()?;
    check_data(data)?;
    let device = device.clone().autodiff();
    let mut model = Model::from_tensors(kind, global, &device)?;
    // The global weights in spec order, flattened, as constants for the
    // proximal term (built only when it is used).
    let anchor: Vec<Tensor<1>> = if config.prox_mu > 0.0 {
        let by_spec = model.to_tensors()?;
        by_spec
            .iter()
            .map(|t| Tensor::from_data(TensorData::new(t.values.clone(), [t.values.len()]), &device))
            .collect()
    } else {
        Vec::new()
    };

    let mut sgd = SgdConfig::new();
    if config.momentum > 0.0 {
        sgd = sgd.with_momentum(Some(MomentumConfig { momentum: config.momentum, dampening: 0.0, nesterov: false }));
    }
    if config.weight_decay > 0.0 {
        sgd = sgd.with_weight_decay(Some(WeightDecayConfig { penalty: config.weight_decay as f32 }));
    }
    let mut optim = sgd.init();

    let mut order: Vec<usize> = (0..data.len()).collect();
    let (mut steps, mut epoch_loss) = (0, 0.0f32);
    for epoch in 1..=config.epochs {
        let stage = Stage::Epoch { epoch, of: config.epochs };
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ u64::from(epoch).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        order.shuffle(&mut rng);
        progress.start(stage, data.len() as u64);
        let mut loss_sum = 0.0f64;
        for (step, batch) in order.chunks(config.batch_size).enumerate() {
            let (inputs, labels) = data.gather(batch, &device);
            let loss = cross_entropy(model.forward(inputs), labels);
            let loss_value = loss.clone().into_scalar::<f32>();
            if !loss_value.is_finite() {
                return Err(TrainError::Diverged { epoch, step: step + 1, loss: loss_value });
            }
            let objective = if anchor.is_empty() {
                loss
            } else {
                let distance = model
                    .flat_parameters()
                    .into_iter()
                    .zip(&anchor)
                    .map(|(w, w0)| (w - w0.clone()).square().sum())
                    .reduce(|a, b| a + b)
                    .expect("every model has parameters");
                loss + distance.mul_scalar(config.prox_mu / 2.0)
            };
            let grads = GradientsParams::from_grads(objective.backward(), &model);
            model = optim.step(config.learning_rate, model, grads);
            loss_sum += f64::from(loss_value) * batch.len() as f64;
            steps += 1;
            progress.advance(batch.len() as u64, (loss_sum / ((step * config.batch_size + batch.len()) as f64)) as f32);
        }
        epoch_loss = (loss_sum / data.len() as f64) as f32;
        progress.finish(stage, epoch_loss, None);
    }

    let local = model.to_tensors()?;
    let delta = subtract(local, global)?;
    Ok(LocalUpdate { delta, samples: data.len(), loss: epoch_loss, steps })
}

/// `local − global`, matched by name; `local` is in spec order and
/// `global` was checked against the same specs when the model was built.
fn subtract(mut local: Vec<NamedTensor>, global: &[NamedTensor]) -> Result<Vec<NamedTensor>, TrainError> {
    for tensor in &mut local {
        let base = global.iter().find(|g| g.name == tensor.name).expect("the model was built from these tensors");
        for (w, w0) in tensor.values.iter_mut().zip(&base.values) {
            *w -= w0;
        }
        if let Some(index) = tensor.values.iter().position(|v| !v.is_finite()) {
            return Err(crate::zoo::ZooError::NonFinite { name: tensor.name.clone(), index }.into());
        }
    }
    Ok(local)
}
