//! What a client reads off a task's spec: which zoo model, and how to train it.

use starling_models::train::TrainConfig;
use starling_models::zoo::ModelKind;
use starling_protocol::TaskSpec;
use thiserror::Error;

/// Why this client cannot take part in a task.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TaskSpecMismatch {
    /// The spec names a model this build's zoo does not have.
    #[error("the task trains model `{name}`, which this client does not know (it has logreg, 2nn and cnn)")]
    UnknownModel {
        /// The name in the spec.
        name: String,
    },
    /// The spec's tensor layout differs from the zoo model of that name.
    #[error("the task's tensors for `{model}` differ from this client's: {detail}")]
    Tensors {
        /// The model.
        model: ModelKind,
        /// The first difference.
        detail: String,
    },
}

/// The zoo model a task trains, checked against the spec's tensor layout.
///
/// The name is read by [`ModelKind::for_task_name`]: the zoo's (`logreg`,
/// `2nn`, `cnn`), or that after the dataset's name (`mnist-cnn` for a task
/// on `mnist`). The spec's tensors must be exactly the
/// model's [`ModelKind::tensor_specs`], in order: a client that would train a
/// different layout than the coordinator checks against refuses up front.
pub fn model_kind(spec: &TaskSpec) -> Result<ModelKind, TaskSpecMismatch> {
    let name = spec.model.name.as_str();
    let kind = ModelKind::for_task_name(name, &spec.data.dataset)
        .map_err(|_| TaskSpecMismatch::UnknownModel { name: name.to_owned() })?;
    let ours = kind.tensor_specs();
    if ours != spec.model.tensors {
        let detail = ours
            .iter()
            .zip(&spec.model.tensors)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("expected {} {:?}, the task has {} {:?}", a.name, a.shape, b.name, b.shape))
            .unwrap_or_else(|| format!("{} tensors expected, the task has {}", ours.len(), spec.model.tensors.len()));
        return Err(TaskSpecMismatch::Tensors { model: kind, detail });
    }
    Ok(kind)
}

/// Local training as the task prescribes: its epochs, batch size and
/// learning rate, plain SGD otherwise, batches drawn from `seed`.
pub fn train_config(spec: &TaskSpec, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: spec.local_epochs,
        batch_size: usize::try_from(spec.batch_size).unwrap_or(usize::MAX),
        learning_rate: spec.learning_rate,
        seed,
        ..TrainConfig::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use starling_protocol::{DataSpec, ModelSpec, TaskSpec, TensorSpec};

    /// A valid task training `kind` on MNIST.
    pub(crate) fn spec_for(kind: ModelKind) -> TaskSpec {
        let model = ModelSpec { name: kind.name().into(), tensors: kind.tensor_specs() };
        let data = DataSpec { dataset: "mnist".into(), input_shape: vec![1, 28, 28], num_classes: 10 };
        TaskSpec::builder(model, data).rounds(3).training(2, 20, 0.05).reward_pool(1_000_000).build().unwrap()
    }

    #[test]
    fn the_config_is_the_specs_schedule() {
        let config = train_config(&spec_for(ModelKind::LogReg), 9);
        assert_eq!((config.epochs, config.batch_size, config.learning_rate, config.seed), (2, 20, 0.05, 9));
        assert_eq!((config.momentum, config.weight_decay, config.prox_mu), (0.0, 0.0, 0.0));
        config.validate().unwrap();
    }

    #[test]
    fn zoo_names_and_layouts_are_accepted() {
        for kind in ModelKind::ALL {
            assert_eq!(model_kind(&spec_for(kind)), Ok(kind));
        }
        let mut prefixed = spec_for(ModelKind::Cnn);
        prefixed.model.name = "mnist-cnn".into();
        assert_eq!(model_kind(&prefixed), Ok(ModelKind::Cnn));
    }

    #[test]
    fn unknown_models_and_other_layouts_are_refused() {
        let mut unknown = spec_for(ModelKind::LogReg);
        unknown.model.name = "resnet".into();
        assert!(matches!(model_kind(&unknown), Err(TaskSpecMismatch::UnknownModel { .. })));

        let mut reshaped = spec_for(ModelKind::LogReg);
        reshaped.model.tensors[0] = TensorSpec::new("fc.weight", [10, 784]);
        let err = model_kind(&reshaped).unwrap_err();
        assert!(err.to_string().contains("fc.weight"), "{err}");

        let mut short = spec_for(ModelKind::TwoNn);
        short.model.tensors.pop();
        assert!(matches!(model_kind(&short), Err(TaskSpecMismatch::Tensors { .. })));
    }
}
