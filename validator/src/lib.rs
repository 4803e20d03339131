//! Starling's validator client.
//!
//! [`ValidatorClient::run_task`] joins a task as a validator and, whenever a
//! round is validating, fetches the submissions assigned to it, rebuilds each
//! candidate `w_global + Δ`, evaluates it on held-out data and signs a
//! [`Score`]: accuracy, loss, and improvement over the global model (whose
//! evaluation is computed once per model hash). Scored submissions are
//! journaled so a restart never scores twice.
//!
//! The transport, signing, retries, cache, journal and shutdown are the
//! client crate's ([`starling_client::Session`]); this crate adds scoring.
//! It does not depend on the trainer.

mod client;
mod score;

pub use client::{ScoredSubmission, ValidatorClient, ValidatorError, ValidatorOptions, ValidatorReport, assignments};
pub use score::{REJECTED_LOSS, Score};
