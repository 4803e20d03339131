//! The burn model zoo: the FedAvg paper's models (McMahan et al. 2017) under
//! stable names, seeded initial weights, conversion to and from named `f32`
//! tensors and safetensors payloads, and a local SGD step.

mod error;
mod kind;
mod model;
mod nets;
mod train;

pub use error::ZooError;
pub use kind::{INPUT_FEATURES, ModelKind, NUM_CLASSES};
pub use model::Model;
pub use nets::{Cnn, LogReg, TwoNn};
pub use train::{SgdTrainer, cross_entropy};

#[cfg(test)]
mod tests;
