//! The coordinator's own measure of each new global model, for the round
//! records and the dashboard's accuracy curve. It decides nothing: rewards
//! and slashes come from the validators' consensus.

use burn::prelude::Device;
use starling_models::data::Dataset;
use starling_models::train::{Features, Quiet, evaluate};
use starling_models::zoo::{Model, ModelKind};
use starling_protocol::TaskSpec;

/// Measures a global model on held-out data.
pub trait Evaluator: Send + Sync {
    /// `model`'s accuracy and mean loss (payload bytes of a model for
    /// `spec`), or `None` if this evaluator has no data for the task (another
    /// dataset, or a model it does not know).
    fn evaluate(&self, spec: &TaskSpec, model: &[u8]) -> Result<Option<(f64, f64)>, String>;
}

/// An [`Evaluator`] for the zoo's models on one labelled dataset, on the CPU.
pub struct ModelEvaluator {
    dataset: String,
    data: Features,
    device: Device,
}

impl ModelEvaluator {
    /// Evaluates tasks whose spec names `dataset` (e.g. `mnist`) on `data`.
    pub fn new(dataset: impl Into<String>, data: &Dataset) -> Self {
        Self { dataset: dataset.into(), data: Features::new(data), device: Device::flex() }
    }
}

impl Evaluator for ModelEvaluator {
    fn evaluate(&self, spec: &TaskSpec, model: &[u8]) -> Result<Option<(f64, f64)>, String> {
        if spec.data.dataset != self.dataset {
            return Ok(None);
        }
        let Ok(kind) = ModelKind::for_task_name(&spec.model.name, &spec.data.dataset) else {
            return Ok(None);
        };
        let model = Model::from_payload(kind, model, &self.device).map_err(|e| e.to_string())?;
        let measured = evaluate(&model, &self.data, 1_000, &mut Quiet).map_err(|e| e.to_string())?;
        Ok(Some((f64::from(measured.accuracy), f64::from(measured.loss))))
    }
}
