//! Starling's trainer client, and the pieces every client shares.
//!
//! [`TrainerClient::run_task`] joins a task and, for every round the
//! trainer is sampled for, downloads the global model (cached on disk by
//! hash, [`BlobCache`]), trains on local data, and uploads the signed update
//! `Δ = w_local − w_global` ([`encode_update`]). Submitted rounds are
//! journaled ([`Journal`]) so a restart never submits twice.
//!
//! Shared with the validator: the [`Transport`] to the coordinator (QUIC,
//! [`QuicTransport`]; the blob-on-stream framing is documented in
//! [`transport`]), a [`Session`] that signs, retries with [`Backoff`] and
//! classifies refusals ([`disposition()`]), and [`Shutdown`].

mod backoff;
mod cache;
mod client;
pub mod disposition;
mod journal;
mod session;
mod shutdown;
mod task;
pub mod transport;
mod update;

pub use backoff::{Backoff, BackoffState};
pub use cache::BlobCache;
pub use client::{Ended, TrainerClient, TrainerError, TrainerOptions, TrainerReport};
pub use disposition::{Disposition, Exchange, disposition};
pub use journal::Journal;
pub use session::{ClientError, Outcome, Session, now_ms, unexpected};
pub use shutdown::{Shutdown, ShutdownHandle};
pub use task::{TaskSpecMismatch, model_kind, train_config};
pub use transport::{Fetched, QuicTransport, Transport, TransportError};
pub use update::{UpdateError, apply_update, check_layout, decode_tensors, encode_update};

/// Runs CPU-heavy `work` (training, evaluation) without starving the
/// runtime's other tasks: on a multi-threaded tokio runtime the worker is
/// moved aside ([`tokio::task::block_in_place`]) so QUIC connections keep
/// being served; elsewhere it simply runs.
pub fn run_blocking<R>(work: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}
