//! Loss and accuracy of a model on labelled data.

use burn::module::Module;
use burn::prelude::*;

use super::{Features, Progress, Stage, TrainError};
use crate::zoo::{INPUT_FEATURES, Model, NUM_CLASSES, cross_entropy};

/// How well a model did on a dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy per sample (natural log).
    pub loss: f32,
    /// Share of samples whose highest logit is their label, in `[0, 1]`.
    pub accuracy: f32,
    /// Samples evaluated.
    pub samples: usize,
}

/// Evaluates `model` on every sample of `data`, `batch_size` at a time, on
/// the model's own device without recording gradients.
pub fn evaluate(
    model: &Model,
    data: &Features,
    batch_size: usize,
    progress: &mut dyn Progress,
) -> Result<Evaluation, TrainError> {
    check_data(data)?;
    let batch_size = batch_size.max(1);
    let model = model.valid();
    let device = model.devices().into_iter().next().unwrap_or_else(Device::flex);
    progress.start(Stage::Evaluate, data.len() as u64);
    let (mut loss_sum, mut correct) = (0.0f64, 0u64);
    let mut start = 0;
    while start < data.len() {
        let end = (start + batch_size).min(data.len());
        let (inputs, labels) = data.range(start, end, &device);
        let logits = model.forward(inputs);
        let n = end - start;
        let predicted = logits.clone().argmax(1).reshape([n]);
        correct += predicted.equal(labels.clone()).int().sum().into_scalar::<i64>() as u64;
        loss_sum += f64::from(cross_entropy(logits, labels).into_scalar::<f32>()) * n as f64;
        progress.advance(n as u64, (loss_sum / end as f64) as f32);
        start = end;
    }
    let samples = data.len();
    let evaluation =
        Evaluation { loss: (loss_sum / samples as f64) as f32, accuracy: correct as f32 / samples as f32, samples };
    progress.finish(Stage::Evaluate, evaluation.loss, Some(evaluation.accuracy));
    Ok(evaluation)
}

/// The zoo's models read 784 features and predict 10 classes.
pub(crate) fn check_data(data: &Features) -> Result<(), TrainError> {
    if data.is_empty() {
        return Err(TrainError::EmptyData);
    }
    if data.features() != INPUT_FEATURES {
        return Err(TrainError::FeatureCount { expected: INPUT_FEATURES, found: data.features() });
    }
    if data.classes() > NUM_CLASSES {
        return Err(TrainError::ClassCount { expected: NUM_CLASSES, found: data.classes() });
    }
    Ok(())
}
