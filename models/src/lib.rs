//! Starling's models and data.
//!
//! [`data`]: IDX and CSV readers, MNIST with checksum verification, seeded
//! partitioners. [`zoo`]: the FedAvg paper's models (`logreg`, `2nn`, `cnn`)
//! on burn, with seeded initial weights, conversion to and from named `f32`
//! tensors and safetensors payloads, and a local SGD step.

pub mod data;
pub mod zoo;
