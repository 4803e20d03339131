//! Why a simulation could not run.

use starling_aggregation::AggregationError;
use starling_models::data::DataError;
use starling_models::train::TrainError;

/// An error from [`simulate`](super::simulate).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A [`SimConfig`](super::SimConfig) field is out of range.
    #[error("simulation setting `{field}` {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The data could not be split across the clients.
    #[error("cannot partition the training data: {0}")]
    Partition(#[from] DataError),
    /// A client's local training failed.
    #[error("round {round}, client {client}: local training failed")]
    Train {
        /// The round, from 1.
        round: u32,
        /// The client's index.
        client: usize,
        /// What went wrong.
        source: TrainError,
    },
    /// Evaluating the global model failed.
    #[error("round {round}: evaluating the global model failed")]
    Evaluate {
        /// The round, from 0 (the initial model).
        round: u32,
        /// What went wrong.
        source: TrainError,
    },
    /// The aggregation rule refused the round's updates.
    #[error("round {round}: aggregation failed")]
    Aggregate {
        /// The round, from 1.
        round: u32,
        /// What went wrong.
        source: AggregationError,
    },
}
