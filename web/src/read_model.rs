//! The read model: everything the HTTP side asks the coordinator, as one
//! object-safe trait.
//!
//! # Why boxed futures
//!
//! The router holds the model as `Arc<dyn ReadModel>`, so it is built and
//! compiled once rather than once per store type, and the coordinator can
//! hand it any implementation (SQLite, PostgreSQL, a test double) chosen at
//! run time. `async fn` in traits is not object-safe, so each method returns
//! a [`BoxFuture`]; one allocation per request is nothing next to the query
//! behind it. Implement a method as `Box::pin(async move { … })`; `tests/serve.rs`
//! holds a complete (if empty) implementation.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;
use starling_protocol::{ContentHash, PublicKey, TaskId};
use thiserror::Error;

use crate::page::{Page, PageRequest};
use crate::views::{AccountView, ModelDetail, ModelSummary, PredictCall, Prediction, TaskDetail, TaskSummary};

/// A boxed, sendable future: what every [`ReadModel`] method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Any error, boxed; the cause carried by a [`ReadError`].
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A boxed stream of model bytes. An `Err` item aborts the download (the
/// client sees a truncated body and must not trust it; it can check the hash).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// Why the read model could not answer. The HTTP client is only ever told
/// the status (503 or 500); the cause is logged.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The store cannot answer now but may soon (database unreachable, pool
    /// exhausted, timeout). Answered `503 Service Unavailable`.
    #[error("read model unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else (corrupt row, bug). Answered `500 Internal Server Error`.
    #[error("read model failed")]
    Internal(#[source] BoxError),
}

impl ReadError {
    /// Wraps `cause` as [`ReadError::Unavailable`].
    pub fn unavailable(cause: impl Into<BoxError>) -> Self {
        Self::Unavailable(cause.into())
    }

    /// Wraps `cause` as [`ReadError::Internal`].
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self::Internal(cause.into())
    }
}

/// Why a prediction was not made. Nothing is charged in any of these cases.
#[derive(Debug, Error)]
pub enum PredictError {
    /// No such model or version (answered 404).
    #[error("no such model version")]
    NotFound,
    /// The inputs do not fit the model: wrong count of values, values outside
    /// `[0, 1]` or not finite, too many inputs (answered 400 with the message).
    #[error("{0}")]
    BadInput(String),
    /// The call costs more than the caller's free quota and balance cover,
    /// or more than its `max_fee` (answered 402 with the amounts).
    #[error(
        "payment required: the call costs {fee} µSTAR, the caller has {available} µSTAR free and agreed to at most {max_fee}"
    )]
    PaymentRequired {
        /// What the call would cost after the free quota, in µSTAR.
        fee: u64,
        /// The caller's free balance, in µSTAR.
        available: u64,
        /// The caller's `max_fee`.
        max_fee: u64,
    },
    /// This signed request was already answered (answered 409): its nonce is spent.
    #[error("this signed request was already used")]
    Replayed,
    /// Too many requests are queued for inference (answered 503 with `Retry-After`).
    #[error("inference is busy; try again shortly")]
    Busy,
    /// The store or the model failed (answered 5xx like any [`ReadError`]).
    #[error(transparent)]
    Failed(#[from] ReadError),
}

/// The bytes of a model file.
pub enum ModelBody {
    /// Already in memory.
    Bytes(Bytes),
    /// Streamed from the artifact store. Should be lazy (open the object on
    /// first poll): a `304 Not Modified` drops it unread.
    Stream(ByteStream),
}

impl std::fmt::Debug for ModelBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(bytes) => f.debug_tuple("Bytes").field(&bytes.len()).finish(),
            Self::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// A model file as safetensors bytes: a task's current global model, or a
/// marketplace version.
#[derive(Debug)]
pub struct ModelBlob {
    /// BLAKE3 hash of the bytes; served as the `ETag`, so it must be the
    /// hash of exactly what [`ModelBlob::body`] yields.
    pub hash: ContentHash,
    /// The bytes.
    pub body: ModelBody,
}

/// What the HTTP side reads. The coordinator implements it over its task
/// registry, the ledger store and the artifact store; answers are snapshots
/// and need not be consistent with each other.
///
/// Methods return `Ok(None)` for things that do not exist (answered 404) and
/// `Err` only when the store failed.
pub trait ReadModel: Send + Sync + 'static {
    /// One page of tasks, in a stable order (ascending id is the natural
    /// one). `page.after` is a cursor this method returned before (or any
    /// other value a client made up: continue after it all the same); return
    /// at most `page.limit` items and a `next` cursor only if more follow.
    fn list_tasks(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<TaskSummary>, ReadError>>;

    /// The task `id`, or `None` if there is no such task.
    fn task(&self, id: TaskId) -> BoxFuture<'_, Result<Option<TaskDetail>, ReadError>>;

    /// The current global model of task `id`, or `None` if the task does not
    /// exist or has no model yet.
    fn model(&self, id: TaskId) -> BoxFuture<'_, Result<Option<ModelBlob>, ReadError>>;

    /// The account of `key` with one page of its history (newest first, same
    /// cursor contract as [`ReadModel::list_tasks`]), or `None` if the ledger
    /// has never seen the key.
    fn account(&self, key: PublicKey, history: PageRequest) -> BoxFuture<'_, Result<Option<AccountView>, ReadError>>;

    /// One page of marketplace models in ascending id (same cursor contract
    /// as [`ReadModel::list_tasks`]).
    fn list_models(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<ModelSummary>, ReadError>>;

    /// The marketplace model `id` with all its versions, or `None`.
    fn market_model(&self, id: u64) -> BoxFuture<'_, Result<Option<ModelDetail>, ReadError>>;

    /// The safetensors file of version `version` of model `id`, or `None`.
    fn model_version_file(&self, id: u64, version: u32) -> BoxFuture<'_, Result<Option<ModelBlob>, ReadError>>;

    /// Runs the model on `call.inputs` and charges the caller as the
    /// marketplace's pricing says. The HTTP side has already verified a
    /// signed caller's envelope (signature, freshness, replay, body hash) and
    /// limited unsigned callers' rate and batch size; this method checks the
    /// inputs against the model and charges at most once per `request`.
    fn predict(&self, call: PredictCall) -> BoxFuture<'_, Result<Prediction, PredictError>>;

    /// Prometheus text exposition format (version 0.0.4), rendered by the
    /// coordinator from its own registry.
    fn metrics(&self) -> BoxFuture<'_, Result<String, ReadError>>;

    /// `Ok` when the coordinator can serve (store reachable, state machine
    /// running); otherwise why not. The reason is logged, never sent.
    fn healthy(&self) -> BoxFuture<'_, Result<(), String>>;
}
