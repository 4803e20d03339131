//! Starling's trainer client.
//!
//! [`TrainerClient::run_task`] joins a task and, for every round the
//! trainer is sampled for, downloads the global model (cached on disk by
//! hash), trains on local data, and uploads the signed update
//! `Δ = w_local − w_global`. Submitted rounds are journaled so a restart
//! never submits twice.
//!
//! The transport, signing, retries, cache, journal and shutdown are the
//! client crate's ([`starling_client`]); this crate adds training.

mod client;

pub use client::{TrainerClient, TrainerError, TrainerOptions, TrainerReport};
