//! What every Starling client shares: reaching the coordinator, signing,
//! retrying, caching and journaling.
//!
//! The trainer, the validator, the CLI's commands and the demo's scripted
//! participants are all built on this crate, and it builds without any
//! server code (no certificate generation, SQL or HTTP server), so a
//! trainer's build stays small.
//!
//! - [`dial`]: which coordinator certificate to trust ([`TrustSetting`])
//!   and the QUIC [`Transport`] to it ([`QuicTransport`]; the blob-on-stream
//!   framing is documented in [`transport`]).
//! - [`Link`]: a request signed and sent once, the one place a client puts
//!   an envelope on the wire; [`Session`] retries through it with
//!   [`Backoff`] (a fresh signature each time) and classifies refusals
//!   ([`disposition()`]).
//! - [`BlobCache`] (models by hash), [`Journal`] (what was already sent, so
//!   a restart never sends twice), [`Shutdown`].
//! - [`model_kind`] and [`train_config`]: what a client reads off a task's
//!   spec; [`apply_update`] / [`encode_update`]: updates as `Δ = w − w_global`.

mod backoff;
mod cache;
mod dial;
pub mod disposition;
mod error;
mod journal;
mod link;
mod session;
mod shutdown;
mod task;
pub mod transport;
mod update;

pub use backoff::{Backoff, BackoffState};
pub use cache::BlobCache;
pub use dial::{DialError, Dialled, FirstUse, TrustSetting, dial};
pub use disposition::{Disposition, Exchange, disposition};
pub use error::{ClientError, unexpected};
pub use journal::Journal;
pub use link::{Answer, Link, now_ms};
pub use session::{Ended, Outcome, Session};
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
