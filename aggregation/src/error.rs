//! The one error type of the aggregation engine.

use thiserror::Error;

/// Why an aggregation could not be computed.
///
/// Every variant names what the caller got wrong, so that a coordinator can
/// tell a trainer exactly which tensor of which update it refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AggregationError {
    /// An update has a tensor the model does not have, or lacks one it has.
    #[error("update {client}: {problem} tensor `{tensor}`")]
    TensorName {
        /// Index of the offending update in the order it was given.
        client: usize,
        /// The tensor name that is unknown or missing.
        tensor: String,
        /// `"unknown"` or `"missing"`.
        problem: &'static str,
    },
    /// An update's tensor has a different shape (or length) than the model's.
    #[error("update {client}: tensor `{tensor}` has shape {got:?}, expected {expected:?}")]
    Shape {
        /// Index of the offending update.
        client: usize,
        /// Tensor name.
        tensor: String,
        /// The model's shape for that tensor.
        expected: Vec<usize>,
        /// What the update carried.
        got: Vec<usize>,
    },
    /// An update holds NaN or ±Inf.
    #[error("update {client}: tensor `{tensor}` holds a non-finite value at index {index}")]
    NonFinite {
        /// Index of the offending update.
        client: usize,
        /// Tensor name.
        tensor: String,
        /// Flat index of the first non-finite value inside that tensor.
        index: usize,
    },
    /// A weight is negative, NaN or infinite.
    #[error("update {client}: weight {weight} is not a finite non-negative number")]
    BadWeight {
        /// Index of the offending update.
        client: usize,
        /// The weight given.
        weight: f64,
    },
    /// All weights are zero (or no update was given), so no average exists.
    #[error("the total weight of the updates is zero")]
    ZeroTotalWeight,
    /// The rule needs more updates than it was given.
    #[error("{rule} needs at least {needed} updates, got {got}")]
    TooFewClients {
        /// The rule's name.
        rule: &'static str,
        /// The smallest number of updates the rule accepts with these parameters.
        needed: usize,
        /// How many it was given.
        got: usize,
    },
    /// A rule or codec parameter is out of its documented range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Encoded update bytes could not be decoded.
    #[error("malformed encoded tensor: {0}")]
    Malformed(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = AggregationError> = std::result::Result<T, E>;
