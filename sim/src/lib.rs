//! In-process federated learning: no network, no ledger, real training.
//!
//! [`simulate`] splits a training set across simulated clients, samples a
//! fraction of them each round, trains each locally with burn
//! ([`starling_models::train::train_local`]), lets chosen clients attack,
//! combines the updates with any rule a task may name
//! ([`starling_protocol::AggregationRule`], but `Best`), evaluates
//! the new global model on a test set and stops at a target accuracy. It is
//! how Starling's numbers are checked against the FedAvg paper, and how the
//! robust rules are compared under attack.

mod attack;
mod config;
mod error;
mod run;

pub use attack::Attack;
pub use config::{PartitionKind, SimConfig};
pub use error::SimError;
pub use run::{RoundResult, SimResult, simulate};
