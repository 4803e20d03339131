//! Starling's aggregation engine: every rule that turns the updates of a
//! federated round into the next global model, over flat `f32` buffers.
//!
//! The crate knows nothing of burn, networking or storage. A model is a
//! [`Layout`] (named tensors in a fixed order); an update is an
//! [`UpdateView`] (one slice per tensor, borrowed from wherever it lives);
//! a round's updates are checked once into [`Inputs`], and a [`Rule`]
//! combines them with [`aggregate`]. FedAvg is also available as a
//! streaming accumulator, [`FedAvg`], whose memory is one model however
//! many updates it sees.
//!
//! Rules that need every update at once (median, trimmed mean, Krum,
//! Bulyan) work on blocks of coordinates, so their working memory is
//! O(clients × block) on top of the inputs themselves.

mod coordinate;
mod error;
mod fedavg;
mod inputs;
mod kernels;
mod krum;
mod layout;
mod network;
mod rule;
mod task_rule;

pub use coordinate::{median, trimmed_mean};
pub use error::{AggregationError, Result};
pub use fedavg::FedAvg;
pub use inputs::Inputs;
pub use krum::{Selection, bulyan, krum, multi_krum, pairwise_sq_distances};
pub use layout::{Layout, TensorInfo, UpdateView};
pub use rule::{Aggregate, Rule, aggregate, aggregate_into};
pub use task_rule::TaskRule;

pub mod codec;
pub mod dp;
pub mod server_opt;
