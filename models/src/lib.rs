//! Starling's models and data.
//!
//! [`data`]: IDX and CSV readers, MNIST with checksum verification, seeded
//! partitioners. [`zoo`]: the FedAvg paper's models (`logreg`, `2nn`, `cnn`)
//! on burn, with seeded initial weights, conversion to and from named `f32`
//! tensors and safetensors payloads. [`train`]: local training (SGD with
//! momentum, weight decay, FedProx; epochs and batches) and evaluation.
//! [`device`]: the CPU `flex` backend, or `wgpu` with the `wgpu` feature.

pub mod data;
pub mod device;
pub mod train;
pub mod zoo;
