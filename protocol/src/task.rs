//! `TaskSpec`: everything a task creator fixes up front, and the checks that
//! keep nonsense out of the registry (one job: its tests take it past 600
//! lines). [`TaskSpec::builder`](crate::TaskSpecBuilder) writes one with
//! defaults.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::aggregation_spec::{AggregationSpec, AggregationSpecError};
use crate::payload;
use crate::tensor::TensorSpec;

/// Longest tensor name accepted, in bytes.
pub const MAX_TENSOR_NAME_LEN: usize = 256;
/// Most dimensions a tensor may have.
pub const MAX_TENSOR_RANK: usize = 8;
/// Most tensors a model may have.
pub const MAX_TENSORS: usize = 16_384;
/// Most rounds a task may have: the coordinator keeps (and saves) each
/// task's round history, so this bounds what one task can make it hold.
pub const MAX_ROUNDS: u32 = 10_000;
/// The least L2 norm an update may have: below it the update changes
/// nothing a model would notice, and sending one back is a free ride on the
/// other trainers' work, refused and slashed like any invalid update
/// ([`ErrorCode::EmptyUpdate`](crate::ErrorCode::EmptyUpdate)). Training with
/// any learning rate on any data moves weights by far more than this; it
/// catches the empty and the all-but-empty update, not a copycat that adds
/// noise (that one the validators' scores must catch).
pub const MIN_UPDATE_NORM: f64 = 1e-6;
/// safetensors reserves this key for free-form metadata; no tensor may use it.
pub const RESERVED_TENSOR_NAME: &str = "__metadata__";

/// A federated task: the model, the data it expects, the training schedule,
/// the aggregation rule and the economics.
///
/// Build it with [`TaskSpec::builder`] (defaults for all but the model and
/// data, checked) or field by field, then call [`TaskSpec::validate`] before
/// trusting it. Amounts are integers in µSTAR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The model's architecture name and tensor layout.
    pub model: ModelSpec,
    /// The data every trainer and validator must hold.
    pub data: DataSpec,
    /// Number of rounds, `≥ 1`.
    pub rounds: u32,
    /// Fraction `C` of eligible trainers sampled per round, in `(0, 1]`.
    pub fraction: f64,
    /// Local epochs `E` per round, `≥ 1`.
    pub local_epochs: u32,
    /// Local mini-batch size `B`, `≥ 1`.
    pub batch_size: u32,
    /// Local (client) learning rate, finite and `> 0`.
    pub learning_rate: f64,
    /// How accepted updates are combined.
    pub aggregation: AggregationSpec,
    /// Total reward escrowed from the task's creator, in µSTAR.
    pub reward_pool: u64,
    /// Least effective stake a trainer needs to be sampled, in µSTAR.
    pub min_trainer_stake: u64,
    /// Least effective stake a validator needs to be assigned work, in µSTAR.
    pub min_validator_stake: u64,
    /// Largest update payload accepted, in bytes; at least
    /// [`TaskSpec::encoded_payload_len`].
    pub payload_limit: u64,
    /// How long each waiting phase of a round may last.
    pub deadlines: RoundDeadlines,
    /// If set, an update whose L2 norm exceeds this is invalid: refused before
    /// it is stored, and its trainer slashed like for any invalid payload.
    /// Must be finite and `> 0`. (Unlike the aggregation's `norm_clip`, which
    /// scales a large update down, this rejects it.)
    pub max_update_norm: Option<f64>,
}

/// The model a task trains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Architecture name from the model zoo, e.g. `"mnist-cnn"`.
    pub name: String,
    /// Every tensor of the model, each name unique.
    pub tensors: Vec<TensorSpec>,
}

/// The data a task's model consumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Dataset name, e.g. `"mnist"`.
    pub dataset: String,
    /// Shape of one input example, e.g. `[1, 28, 28]`; no zero dimensions.
    pub input_shape: Vec<usize>,
    /// Number of classes, `≥ 2`.
    pub num_classes: u32,
}

/// Deadlines of the phases in which the coordinator waits on others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundDeadlines {
    /// Seconds trainers have, from the round's opening, to submit.
    pub training_secs: u32,
    /// Seconds validators have, from their assignment, to return scores.
    pub validation_secs: u32,
}

impl TaskSpec {
    /// Total number of `f32` parameters of the model.
    pub fn parameter_count(&self) -> Result<usize, TaskSpecError> {
        self.model.tensors.iter().try_fold(0usize, |total, tensor| {
            tensor.element_count().and_then(|n| total.checked_add(n)).ok_or(TaskSpecError::ModelTooLarge)
        })
    }

    /// Size of the model's raw `f32` data, in bytes (4 per parameter).
    pub fn f32_size(&self) -> Result<usize, TaskSpecError> {
        self.parameter_count()?.checked_mul(4).ok_or(TaskSpecError::ModelTooLarge)
    }

    /// Exact size, in bytes, of an update payload for this model as
    /// [`crate::UpdatePayload::encode`] writes it (safetensors header included).
    pub fn encoded_payload_len(&self) -> Result<usize, TaskSpecError> {
        payload::encoded_len(&self.model.tensors).map_err(|_| TaskSpecError::ModelTooLarge)
    }

    /// [`TaskSpec::payload_limit`] as a `usize`, saturating on 32-bit targets.
    pub fn payload_limit_bytes(&self) -> usize {
        usize::try_from(self.payload_limit).unwrap_or(usize::MAX)
    }

    /// Checks every field for nonsense, returning the first problem found.
    pub fn validate(&self) -> Result<(), TaskSpecError> {
        self.model.validate()?;
        self.data.validate()?;
        if self.rounds == 0 {
            return Err(TaskSpecError::ZeroRounds);
        }
        if self.rounds > MAX_ROUNDS {
            return Err(TaskSpecError::TooManyRounds { rounds: self.rounds, max: MAX_ROUNDS });
        }
        // A task costs its creator something: every round pays at least 1 µSTAR.
        if self.reward_pool < u64::from(self.rounds) {
            return Err(TaskSpecError::PoolTooSmall { pool: self.reward_pool, rounds: self.rounds });
        }
        // Written so that NaN fails too.
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return Err(TaskSpecError::FractionOutOfRange { fraction: self.fraction });
        }
        if self.local_epochs == 0 {
            return Err(TaskSpecError::ZeroLocalEpochs);
        }
        if self.batch_size == 0 {
            return Err(TaskSpecError::ZeroBatchSize);
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(TaskSpecError::LearningRate { learning_rate: self.learning_rate });
        }
        self.aggregation.validate()?;
        let required = self.encoded_payload_len()?;
        if u64::try_from(required).map_or(true, |required| self.payload_limit < required) {
            return Err(TaskSpecError::PayloadLimitTooSmall { limit: self.payload_limit, required });
        }
        if let Some(norm) = self.max_update_norm
            && !(norm.is_finite() && norm > 0.0)
        {
            return Err(TaskSpecError::MaxUpdateNorm { norm });
        }
        self.deadlines.validate()
    }
}

impl ModelSpec {
    /// Checks the model's name and tensor layout.
    pub fn validate(&self) -> Result<(), TaskSpecError> {
        if self.name.trim().is_empty() {
            return Err(TaskSpecError::EmptyModelName);
        }
        if self.tensors.is_empty() {
            return Err(TaskSpecError::NoTensors);
        }
        if self.tensors.len() > MAX_TENSORS {
            return Err(TaskSpecError::TooManyTensors { count: self.tensors.len(), max: MAX_TENSORS });
        }
        let mut seen = HashSet::with_capacity(self.tensors.len());
        let mut total = 0usize;
        for (index, tensor) in self.tensors.iter().enumerate() {
            validate_tensor_name(index, &tensor.name)?;
            if !seen.insert(tensor.name.as_str()) {
                return Err(TaskSpecError::DuplicateTensor { name: tensor.name.clone() });
            }
            if tensor.shape.len() > MAX_TENSOR_RANK {
                return Err(TaskSpecError::RankTooHigh {
                    name: tensor.name.clone(),
                    rank: tensor.shape.len(),
                    max: MAX_TENSOR_RANK,
                });
            }
            if let Some(axis) = tensor.shape.iter().position(|&d| d == 0) {
                return Err(TaskSpecError::ZeroDimension { name: tensor.name.clone(), axis });
            }
            total = tensor
                .element_count()
                .and_then(|n| n.checked_mul(4))
                .and_then(|bytes| total.checked_add(bytes))
                .ok_or(TaskSpecError::ModelTooLarge)?;
        }
        Ok(())
    }
}

fn validate_tensor_name(index: usize, name: &str) -> Result<(), TaskSpecError> {
    if name.is_empty() {
        return Err(TaskSpecError::EmptyTensorName { index });
    }
    if name.len() > MAX_TENSOR_NAME_LEN {
        return Err(TaskSpecError::TensorNameTooLong { index, len: name.len(), max: MAX_TENSOR_NAME_LEN });
    }
    if name == RESERVED_TENSOR_NAME {
        return Err(TaskSpecError::ReservedTensorName { index });
    }
    if name.chars().any(char::is_control) {
        return Err(TaskSpecError::ControlCharInTensorName { index });
    }
    Ok(())
}

impl DataSpec {
    /// Checks the dataset name, input shape and class count.
    pub fn validate(&self) -> Result<(), TaskSpecError> {
        if self.dataset.trim().is_empty() {
            return Err(TaskSpecError::EmptyDatasetName);
        }
        if self.input_shape.is_empty() {
            return Err(TaskSpecError::EmptyInputShape);
        }
        if let Some(axis) = self.input_shape.iter().position(|&d| d == 0) {
            return Err(TaskSpecError::ZeroInputDimension { axis });
        }
        if self.num_classes < 2 {
            return Err(TaskSpecError::TooFewClasses { num_classes: self.num_classes });
        }
        Ok(())
    }
}

impl RoundDeadlines {
    /// Checks that every deadline is at least one second.
    pub fn validate(&self) -> Result<(), TaskSpecError> {
        if self.training_secs == 0 {
            return Err(TaskSpecError::ZeroDeadline { phase: "training" });
        }
        if self.validation_secs == 0 {
            return Err(TaskSpecError::ZeroDeadline { phase: "validation" });
        }
        Ok(())
    }
}

/// Why a [`TaskSpec`] was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TaskSpecError {
    /// The model has no architecture name.
    #[error("model name is empty")]
    EmptyModelName,
    /// The model declares no tensors.
    #[error("model declares no tensors")]
    NoTensors,
    /// The model declares more tensors than [`MAX_TENSORS`].
    #[error("model declares {count} tensors, at most {max} are allowed")]
    TooManyTensors {
        /// Tensors declared.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A tensor's name is empty.
    #[error("tensor #{index} has an empty name")]
    EmptyTensorName {
        /// Position of the tensor in the model's list.
        index: usize,
    },
    /// A tensor's name is longer than [`MAX_TENSOR_NAME_LEN`].
    #[error("tensor #{index} has a {len}-byte name, at most {max} are allowed")]
    TensorNameTooLong {
        /// Position of the tensor in the model's list.
        index: usize,
        /// Length of the name in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A tensor is named [`RESERVED_TENSOR_NAME`], which safetensors reserves.
    #[error("tensor #{index} uses the reserved name `{RESERVED_TENSOR_NAME}`")]
    ReservedTensorName {
        /// Position of the tensor in the model's list.
        index: usize,
    },
    /// A tensor's name contains a control character.
    #[error("tensor #{index} has a control character in its name")]
    ControlCharInTensorName {
        /// Position of the tensor in the model's list.
        index: usize,
    },
    /// Two tensors share a name.
    #[error("tensor `{name}` is declared twice")]
    DuplicateTensor {
        /// The repeated name.
        name: String,
    },
    /// A tensor has more than [`MAX_TENSOR_RANK`] dimensions.
    #[error("tensor `{name}` has {rank} dimensions, at most {max} are allowed")]
    RankTooHigh {
        /// The tensor.
        name: String,
        /// Its number of dimensions.
        rank: usize,
        /// The limit.
        max: usize,
    },
    /// A tensor has a zero-sized dimension, so it holds nothing.
    #[error("tensor `{name}` has size 0 along axis {axis}")]
    ZeroDimension {
        /// The tensor.
        name: String,
        /// The zero axis.
        axis: usize,
    },
    /// The model's size in bytes does not fit in `usize`.
    #[error("model is too large to address")]
    ModelTooLarge,
    /// The dataset has no name.
    #[error("dataset name is empty")]
    EmptyDatasetName,
    /// The input shape has no dimensions.
    #[error("input shape is empty")]
    EmptyInputShape,
    /// The input shape has a zero-sized dimension.
    #[error("input shape has size 0 along axis {axis}")]
    ZeroInputDimension {
        /// The zero axis.
        axis: usize,
    },
    /// A classifier needs at least two classes.
    #[error("need at least 2 classes, got {num_classes}")]
    TooFewClasses {
        /// The rejected class count.
        num_classes: u32,
    },
    /// A task must run at least one round.
    #[error("a task needs at least one round")]
    ZeroRounds,
    /// The per-round trainer fraction `C` must lie in `(0, 1]`.
    #[error("trainer fraction must be in (0, 1], got {fraction}")]
    FractionOutOfRange {
        /// The rejected fraction.
        fraction: f64,
    },
    /// Trainers must run at least one local epoch.
    #[error("local epochs must be at least 1")]
    ZeroLocalEpochs,
    /// Mini-batches must hold at least one example.
    #[error("batch size must be at least 1")]
    ZeroBatchSize,
    /// More rounds than [`MAX_ROUNDS`].
    #[error("{rounds} rounds is more than the {max} a task may have")]
    TooManyRounds {
        /// The rounds asked for.
        rounds: u32,
        /// The most allowed.
        max: u32,
    },
    /// The reward pool cannot pay every round at least 1 µSTAR.
    #[error("a reward pool of {pool} µSTAR cannot pay {rounds} round(s): give at least 1 µSTAR per round")]
    PoolTooSmall {
        /// The pool, in µSTAR.
        pool: u64,
        /// The rounds it must pay.
        rounds: u32,
    },
    /// The update norm bound must be finite and positive.
    #[error("max update norm must be finite and > 0, got {norm}")]
    MaxUpdateNorm {
        /// The rejected bound.
        norm: f64,
    },
    /// The client learning rate must be finite and positive.
    #[error("learning rate must be finite and > 0, got {learning_rate}")]
    LearningRate {
        /// The rejected rate.
        learning_rate: f64,
    },
    /// An aggregation parameter is out of range.
    #[error("aggregation: {0}")]
    Aggregation(#[from] AggregationSpecError),
    /// The payload limit cannot hold even one encoded update of the model.
    #[error("payload limit of {limit} bytes is below the {required} bytes one update of this model takes")]
    PayloadLimitTooSmall {
        /// The task's limit.
        limit: u64,
        /// Size of one encoded update.
        required: usize,
    },
    /// A phase deadline of zero seconds could never be met.
    #[error("the {phase} deadline must be at least one second")]
    ZeroDeadline {
        /// Which deadline.
        phase: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::aggregation_spec::{AggregationRule, ServerOptimizer};

    fn mnist_2nn() -> TaskSpec {
        let tensors = vec![
            TensorSpec::new("fc1.weight", [200, 784]),
            TensorSpec::new("fc1.bias", [200]),
            TensorSpec::new("fc2.weight", [200, 200]),
            TensorSpec::new("fc2.bias", [200]),
            TensorSpec::new("fc3.weight", [10, 200]),
            TensorSpec::new("fc3.bias", [10]),
        ];
        TaskSpec {
            model: ModelSpec { name: "mnist-2nn".into(), tensors },
            data: DataSpec { dataset: "mnist".into(), input_shape: vec![1, 28, 28], num_classes: 10 },
            rounds: 50,
            fraction: 0.1,
            local_epochs: 5,
            batch_size: 10,
            learning_rate: 0.1,
            aggregation: AggregationSpec::plain(AggregationRule::FedAvg),
            reward_pool: 1_000 * 1_000_000,
            min_trainer_stake: 10 * 1_000_000,
            min_validator_stake: 100 * 1_000_000,
            payload_limit: 1 << 20,
            deadlines: RoundDeadlines { training_secs: 600, validation_secs: 300 },
            max_update_norm: None,
        }
    }

    #[test]
    fn a_sensible_spec_passes() {
        let spec = mnist_2nn();
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(spec.parameter_count(), Ok(199_210));
        assert_eq!(spec.f32_size(), Ok(796_840));
        let encoded = spec.encoded_payload_len().unwrap();
        assert!(encoded > 796_840 && encoded < 796_840 + 1024, "{encoded}");
    }

    fn refused(edit: impl FnOnce(&mut TaskSpec)) -> TaskSpecError {
        let mut spec = mnist_2nn();
        edit(&mut spec);
        spec.validate().unwrap_err()
    }

    #[test]
    fn model_nonsense_is_refused() {
        assert_eq!(refused(|s| s.model.name = " ".into()), TaskSpecError::EmptyModelName);
        assert_eq!(refused(|s| s.model.tensors.clear()), TaskSpecError::NoTensors);
        assert_eq!(refused(|s| s.model.tensors[2].name.clear()), TaskSpecError::EmptyTensorName { index: 2 });
        assert_eq!(
            refused(|s| s.model.tensors[1].name = "x".repeat(300)),
            TaskSpecError::TensorNameTooLong { index: 1, len: 300, max: MAX_TENSOR_NAME_LEN }
        );
        assert_eq!(
            refused(|s| s.model.tensors[0].name = RESERVED_TENSOR_NAME.into()),
            TaskSpecError::ReservedTensorName { index: 0 }
        );
        assert_eq!(
            refused(|s| s.model.tensors[0].name = "a\nb".into()),
            TaskSpecError::ControlCharInTensorName { index: 0 }
        );
        assert_eq!(
            refused(|s| s.model.tensors[3].name = "fc1.bias".into()),
            TaskSpecError::DuplicateTensor { name: "fc1.bias".into() }
        );
        assert_eq!(
            refused(|s| s.model.tensors[0].shape = vec![200, 0]),
            TaskSpecError::ZeroDimension { name: "fc1.weight".into(), axis: 1 }
        );
        assert_eq!(
            refused(|s| s.model.tensors[0].shape = vec![1; 9]),
            TaskSpecError::RankTooHigh { name: "fc1.weight".into(), rank: 9, max: MAX_TENSOR_RANK }
        );
        assert_eq!(refused(|s| s.model.tensors[0].shape = vec![usize::MAX / 2, 3]), TaskSpecError::ModelTooLarge);
        assert!(matches!(
            refused(|s| s.model.tensors = (0..=MAX_TENSORS).map(|i| TensorSpec::new(i.to_string(), [1])).collect()),
            TaskSpecError::TooManyTensors { .. }
        ));
    }

    #[test]
    fn data_nonsense_is_refused() {
        assert_eq!(refused(|s| s.data.dataset.clear()), TaskSpecError::EmptyDatasetName);
        assert_eq!(refused(|s| s.data.input_shape.clear()), TaskSpecError::EmptyInputShape);
        assert_eq!(refused(|s| s.data.input_shape[2] = 0), TaskSpecError::ZeroInputDimension { axis: 2 });
        assert_eq!(refused(|s| s.data.num_classes = 1), TaskSpecError::TooFewClasses { num_classes: 1 });
    }

    #[test]
    fn schedule_nonsense_is_refused() {
        assert_eq!(refused(|s| s.rounds = 0), TaskSpecError::ZeroRounds);
        assert_eq!(
            refused(|s| s.rounds = MAX_ROUNDS + 1),
            TaskSpecError::TooManyRounds { rounds: MAX_ROUNDS + 1, max: MAX_ROUNDS }
        );
        let mut longest = mnist_2nn();
        longest.rounds = MAX_ROUNDS;
        assert_eq!(longest.validate(), Ok(()));
        assert_eq!(
            refused(|s| {
                s.rounds = 10;
                s.reward_pool = 9;
            }),
            TaskSpecError::PoolTooSmall { pool: 9, rounds: 10 }
        );
        assert_eq!(refused(|s| s.reward_pool = 0), TaskSpecError::PoolTooSmall { pool: 0, rounds: 50 });
        for fraction in [0.0, -0.5, 1.0001, f64::NAN] {
            assert!(matches!(refused(|s| s.fraction = fraction), TaskSpecError::FractionOutOfRange { .. }));
        }
        assert_eq!(refused(|s| s.local_epochs = 0), TaskSpecError::ZeroLocalEpochs);
        assert_eq!(refused(|s| s.batch_size = 0), TaskSpecError::ZeroBatchSize);
        for norm in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            let error = refused(|s| s.max_update_norm = Some(norm));
            assert!(matches!(error, TaskSpecError::MaxUpdateNorm { .. }), "{error}");
        }
        for rate in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            assert!(matches!(refused(|s| s.learning_rate = rate), TaskSpecError::LearningRate { .. }));
        }
        assert_eq!(refused(|s| s.deadlines.training_secs = 0), TaskSpecError::ZeroDeadline { phase: "training" });
        assert_eq!(refused(|s| s.deadlines.validation_secs = 0), TaskSpecError::ZeroDeadline { phase: "validation" });
        let mut full = mnist_2nn();
        full.fraction = 1.0;
        assert_eq!(full.validate(), Ok(()));
    }

    #[test]
    fn aggregation_nonsense_is_refused() {
        assert_eq!(
            refused(|s| s.aggregation.rule = AggregationRule::TrimmedMean { beta: 0.5 }),
            TaskSpecError::Aggregation(AggregationSpecError::TrimmedMeanBeta { beta: 0.5 })
        );
        assert!(matches!(
            refused(
                |s| s.aggregation.server_optimizer = Some(ServerOptimizer::FedAdagrad { server_lr: 0.1, tau: -1.0 })
            ),
            TaskSpecError::Aggregation(AggregationSpecError::OptimizerParameter { parameter: "tau", .. })
        ));
    }

    #[test]
    fn json_round_trip() {
        // The web API speaks JSON; postcard is covered by the property test below.
        let mut spec = mnist_2nn();
        spec.aggregation.server_optimizer = Some(ServerOptimizer::FedAvgM { server_lr: 1.0, momentum: 0.5 });
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<TaskSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn payload_limit_must_hold_one_update() {
        let spec = mnist_2nn();
        let required = spec.encoded_payload_len().unwrap();
        assert_eq!(
            refused(|s| s.payload_limit = 796_840),
            TaskSpecError::PayloadLimitTooSmall { limit: 796_840, required }
        );
        let mut exact = spec;
        exact.payload_limit = required as u64;
        assert_eq!(exact.validate(), Ok(()));
    }

    fn arb_rule() -> impl Strategy<Value = AggregationRule> {
        prop_oneof![
            Just(AggregationRule::FedAvg),
            Just(AggregationRule::Median),
            (0.0..0.5f64).prop_map(|beta| AggregationRule::TrimmedMean { beta }),
            any::<u32>().prop_map(|byzantine| AggregationRule::Krum { byzantine }),
            (any::<u32>(), 1..100u32).prop_map(|(byzantine, select)| AggregationRule::MultiKrum { byzantine, select }),
            any::<u32>().prop_map(|byzantine| AggregationRule::Bulyan { byzantine }),
            Just(AggregationRule::Best),
        ]
    }

    fn arb_optimizer() -> impl Strategy<Value = Option<ServerOptimizer>> {
        let lr = 1e-4..10.0f64;
        let decay = 0.0..1.0f64;
        prop_oneof![
            Just(None),
            (lr.clone(), decay.clone())
                .prop_map(|(server_lr, momentum)| Some(ServerOptimizer::FedAvgM { server_lr, momentum })),
            (lr.clone(), 1e-9..1.0f64)
                .prop_map(|(server_lr, tau)| Some(ServerOptimizer::FedAdagrad { server_lr, tau })),
            (lr.clone(), decay.clone(), decay.clone(), 1e-9..1.0f64).prop_map(|(server_lr, beta1, beta2, tau)| Some(
                ServerOptimizer::FedAdam { server_lr, beta1, beta2, tau }
            )),
            (lr, decay.clone(), decay, 1e-9..1.0f64).prop_map(|(server_lr, beta1, beta2, tau)| Some(
                ServerOptimizer::FedYogi { server_lr, beta1, beta2, tau }
            )),
        ]
    }

    fn arb_spec() -> impl Strategy<Value = TaskSpec> {
        let tensors =
            proptest::collection::btree_map("[a-z][a-z0-9._]{0,20}", proptest::collection::vec(1..64usize, 0..4), 1..6)
                .prop_map(|m| m.into_iter().map(|(name, shape)| TensorSpec { name, shape }).collect::<Vec<_>>());
        let data = ("[a-z]{1,10}", proptest::collection::vec(1..64usize, 1..4), 2..1000u32)
            .prop_map(|(dataset, input_shape, num_classes)| DataSpec { dataset, input_shape, num_classes });
        let schedule = (1..1000u32, 0.001..=1.0f64, 1..20u32, 1..512u32, 1e-5..1.0f64);
        let aggregation = (arb_rule(), proptest::option::of(0.01..100.0f64), arb_optimizer())
            .prop_map(|(rule, norm_clip, server_optimizer)| AggregationSpec { rule, norm_clip, server_optimizer });
        let money = (1_000..u64::MAX, any::<u64>(), any::<u64>());
        let deadlines = (1..u32::MAX, 1..u32::MAX)
            .prop_map(|(training_secs, validation_secs)| RoundDeadlines { training_secs, validation_secs });
        ("[a-z0-9-]{1,16}", tensors, data, schedule, aggregation, money, deadlines).prop_map(
            |(
                name,
                tensors,
                data,
                (rounds, fraction, local_epochs, batch_size, learning_rate),
                aggregation,
                money,
                deadlines,
            )| {
                let mut spec = TaskSpec {
                    model: ModelSpec { name, tensors },
                    data,
                    rounds,
                    fraction,
                    local_epochs,
                    batch_size,
                    learning_rate,
                    aggregation,
                    reward_pool: money.0,
                    min_trainer_stake: money.1,
                    min_validator_stake: money.2,
                    payload_limit: 0,
                    deadlines,
                    max_update_norm: None,
                };
                spec.payload_limit = spec.encoded_payload_len().map_or(u64::MAX, |n| n as u64);
                spec
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn generated_specs_are_valid_and_round_trip(spec in arb_spec()) {
            prop_assert_eq!(spec.validate(), Ok(()));
            let wire = postcard::to_allocvec(&spec).unwrap();
            prop_assert_eq!(&postcard::from_bytes::<TaskSpec>(&wire).unwrap(), &spec);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = postcard::from_bytes::<TaskSpec>(&bytes);
        }
    }
}
