//! [`TaskSpecBuilder`]: a [`TaskSpec`] from its model and data, with
//! defaults for the rest, so a task is written once per difference rather
//! than field by field.

use crate::aggregation_spec::{AggregationRule, AggregationSpec};
use crate::task::{DataSpec, ModelSpec, RoundDeadlines, TaskSpec, TaskSpecError};

/// Builds a [`TaskSpec`]; start with [`TaskSpec::builder`].
///
/// Unless set, a task runs one round with every eligible trainer (`C = 1`),
/// one local epoch of batches of 10 at learning rate 0.1, FedAvg, a pool of
/// 1 STAR, no minimum stakes, 60 s for each of training and validation, no
/// norm bound, and a payload limit of exactly the model's encoded update
/// ([`TaskSpec::encoded_payload_len`]).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct TaskSpecBuilder {
    spec: TaskSpec,
    /// Set by [`TaskSpecBuilder::payload_limit`]; else the model's own size.
    payload_limit: Option<u64>,
}

impl TaskSpec {
    /// A builder for a task training `model` on `data`.
    pub fn builder(model: ModelSpec, data: DataSpec) -> TaskSpecBuilder {
        TaskSpecBuilder {
            spec: TaskSpec {
                model,
                data,
                rounds: 1,
                fraction: 1.0,
                local_epochs: 1,
                batch_size: 10,
                learning_rate: 0.1,
                aggregation: AggregationSpec::plain(AggregationRule::FedAvg),
                reward_pool: 1_000_000,
                min_trainer_stake: 0,
                min_validator_stake: 0,
                payload_limit: 0,
                deadlines: RoundDeadlines { training_secs: 60, validation_secs: 60 },
                max_update_norm: None,
            },
            payload_limit: None,
        }
    }
}

impl TaskSpecBuilder {
    /// Number of rounds, `≥ 1`.
    pub fn rounds(mut self, rounds: u32) -> Self {
        self.spec.rounds = rounds;
        self
    }

    /// Fraction `C` of eligible trainers sampled per round, in `(0, 1]`.
    pub fn fraction(mut self, fraction: f64) -> Self {
        self.spec.fraction = fraction;
        self
    }

    /// Local epochs `E`, batch size `B` and learning rate of each round's
    /// local training.
    pub fn training(mut self, local_epochs: u32, batch_size: u32, learning_rate: f64) -> Self {
        self.spec.local_epochs = local_epochs;
        self.spec.batch_size = batch_size;
        self.spec.learning_rate = learning_rate;
        self
    }

    /// How accepted updates are combined.
    pub fn aggregation(mut self, aggregation: AggregationSpec) -> Self {
        self.spec.aggregation = aggregation;
        self
    }

    /// The rule, with no clipping and no server optimizer.
    pub fn rule(self, rule: AggregationRule) -> Self {
        self.aggregation(AggregationSpec::plain(rule))
    }

    /// The reward pool escrowed from the creator, in µSTAR.
    pub fn reward_pool(mut self, micro: u64) -> Self {
        self.spec.reward_pool = micro;
        self
    }

    /// Least effective stakes, in µSTAR, of a trainer to be sampled and of a
    /// validator to be assigned work.
    pub fn min_stakes(mut self, trainer: u64, validator: u64) -> Self {
        self.spec.min_trainer_stake = trainer;
        self.spec.min_validator_stake = validator;
        self
    }

    /// Seconds for training (from a round's opening) and for validation
    /// (from the assignment).
    pub fn deadlines(mut self, training_secs: u32, validation_secs: u32) -> Self {
        self.spec.deadlines = RoundDeadlines { training_secs, validation_secs };
        self
    }

    /// The largest L2 norm an update may have, or none.
    pub fn max_update_norm(mut self, bound: Option<f64>) -> Self {
        self.spec.max_update_norm = bound;
        self
    }

    /// The largest update payload accepted, in bytes, instead of the model's
    /// own encoded size.
    pub fn payload_limit(mut self, bytes: u64) -> Self {
        self.payload_limit = Some(bytes);
        self
    }

    /// The spec, checked by [`TaskSpec::validate`].
    pub fn build(self) -> Result<TaskSpec, TaskSpecError> {
        let mut spec = self.spec;
        spec.payload_limit = match self.payload_limit {
            Some(limit) => limit,
            None => spec.encoded_payload_len()? as u64,
        };
        spec.validate()?;
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::TensorSpec;

    fn tiny() -> (ModelSpec, DataSpec) {
        (
            ModelSpec { name: "tiny".into(), tensors: vec![TensorSpec::new("w", [4, 3]), TensorSpec::new("b", [3])] },
            DataSpec { dataset: "toy".into(), input_shape: vec![4], num_classes: 3 },
        )
    }

    #[test]
    fn defaults_make_a_valid_task_whose_payload_limit_is_the_models_size() {
        let (model, data) = tiny();
        let spec = TaskSpec::builder(model, data).build().unwrap();
        assert_eq!(spec.payload_limit, spec.encoded_payload_len().unwrap() as u64);
        assert_eq!((spec.rounds, spec.fraction, spec.reward_pool), (1, 1.0, 1_000_000));
        assert_eq!(spec.aggregation, AggregationSpec::plain(AggregationRule::FedAvg));
    }

    #[test]
    fn every_setter_lands_in_its_field() {
        let (model, data) = tiny();
        let spec = TaskSpec::builder(model, data)
            .rounds(5)
            .fraction(0.5)
            .training(2, 20, 0.05)
            .rule(AggregationRule::Median)
            .reward_pool(7)
            .min_stakes(10, 20)
            .deadlines(30, 40)
            .max_update_norm(Some(3.0))
            .payload_limit(1 << 20)
            .build()
            .unwrap();
        assert_eq!((spec.rounds, spec.fraction), (5, 0.5));
        assert_eq!((spec.local_epochs, spec.batch_size, spec.learning_rate), (2, 20, 0.05));
        assert_eq!(spec.aggregation.rule, AggregationRule::Median);
        assert_eq!((spec.reward_pool, spec.min_trainer_stake, spec.min_validator_stake), (7, 10, 20));
        assert_eq!(spec.deadlines, RoundDeadlines { training_secs: 30, validation_secs: 40 });
        assert_eq!((spec.max_update_norm, spec.payload_limit), (Some(3.0), 1 << 20));
    }

    #[test]
    fn a_spec_that_fails_its_checks_is_not_built() {
        let (model, data) = tiny();
        assert!(matches!(
            TaskSpec::builder(model.clone(), data.clone()).rounds(0).build(),
            Err(TaskSpecError::ZeroRounds)
        ));
        assert!(TaskSpec::builder(model, data).payload_limit(1).build().is_err(), "below the model's own size");
    }
}
