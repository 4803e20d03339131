//! Local training and evaluation: what a trainer runs on its own data each
//! round, and what a validator or the simulator runs to score a model.
//!
//! The loop is SGD with momentum, weight decay and an optional FedProx
//! proximal term over `E` epochs of shuffled batches of `B`; it returns the
//! update `w_local − w_global` with the sample count, never the data.
//! Progress is reported through [`Progress`] so a terminal front end can draw
//! bars while libraries and tests stay quiet.

mod batches;
mod config;
mod error;
mod evaluate;
mod local;
mod progress;

pub use batches::Features;
pub use config::TrainConfig;
pub use error::TrainError;
pub use evaluate::{Evaluation, evaluate};
pub use local::{LocalUpdate, train_local};
pub use progress::{Progress, Quiet, Stage};

#[cfg(test)]
mod tests;
