//! Receiving an upload's bytes, wherever they come from.
//!
//! Two requests carry a blob after them: [`SubmitUpdate`] (the update's
//! payload) and [`CreateTask`](starling_protocol::CreateTask) (the initial
//! model). The signed message announces the blob's hash and length, and the
//! pipeline has checked the request before a byte of it is read. A [`Body`]
//! is where those bytes arrive: the QUIC stream the request came on, or a
//! buffer an in-process caller holds.
//!
//! An update's payload goes straight into the artifact store as it arrives:
//! each piece is checked ([`StreamingCheck`]) and handed, uncopied, to the
//! store's writer, which hashes it and writes it behind the network. The
//! payload is stored whether or not it passes the checks: an invalid one is
//! the evidence behind its trainer's slash.

use std::future::Future;

use bytes::Bytes;
use starling_net::BlobError;
use starling_protocol::payload::StreamingCheck;
use starling_protocol::{ContentHash, ErrorCode, SubmitUpdate, TaskSpec, WireError};

use crate::artifacts::{ArtifactError, ArtifactStore, ArtifactUpload};
use crate::service::update_check::check_streamed_update;
use crate::service::wire_error::{internal, refuse};

/// Where an upload's bytes arrive.
pub(crate) trait Body: Send {
    /// Receives a blob of at most `max_len` bytes, handing it to `each` in
    /// pieces as they arrive, and returns its length. An error from `each`
    /// stops the transfer and is returned as is.
    fn receive(
        &mut self,
        max_len: u64,
        each: impl FnMut(Bytes) -> Result<(), BlobError> + Send,
    ) -> impl Future<Output = Result<u64, BlobError>> + Send;

    /// The request was refused before its bytes were (all) read: tells the
    /// sender to stop sending them.
    fn refuse(&mut self);
}

/// A blob an in-process caller holds whole, or none.
pub(crate) struct InMemory<'a>(pub(crate) Option<&'a [u8]>);

impl Body for InMemory<'_> {
    async fn receive(
        &mut self,
        max_len: u64,
        mut each: impl FnMut(Bytes) -> Result<(), BlobError> + Send,
    ) -> Result<u64, BlobError> {
        let bytes = self.0.take().unwrap_or_default();
        let len = bytes.len() as u64;
        if len > max_len {
            return Err(BlobError::TooLarge { limit: max_len, announced: len });
        }
        if !bytes.is_empty() {
            each(Bytes::copy_from_slice(bytes))?;
        }
        Ok(len)
    }

    fn refuse(&mut self) {
        self.0 = None;
    }
}

/// What arrived after a request.
#[derive(Debug)]
pub(crate) enum Received {
    /// The request carries no blob.
    Nothing,
    /// An initial model, whole and hash-checked.
    Model(Vec<u8>),
    /// An update's payload, durably stored under its signed hash, with the
    /// outcome of its checks.
    Update(Result<(), WireError>),
}

/// What a client is told about an upload that did not arrive intact.
pub(crate) fn blob_error(error: &BlobError) -> WireError {
    let code = match error {
        BlobError::TooLarge { .. } | BlobError::TrailingBytes { .. } => ErrorCode::LengthMismatch,
        BlobError::HashMismatch { .. } => ErrorCode::HashMismatch,
        BlobError::Truncated { .. } => ErrorCode::LengthMismatch,
        BlobError::TimedOut { .. } => ErrorCode::RateLimited,
        _ => ErrorCode::Malformed,
    };
    WireError::new(code, error.to_string())
}

/// The refusal of an upload that carried `received` of its announced `len` bytes.
fn length_mismatch(len: u64, received: u64) -> WireError {
    refuse(ErrorCode::LengthMismatch, format!("the upload announced {len} bytes but carried {received}"))
}

/// Receives an initial model of `len` bytes whole, and checks that it hashes
/// to `hash`.
pub(crate) async fn receive_model(body: &mut impl Body, hash: ContentHash, len: u64) -> Result<Vec<u8>, WireError> {
    let mut model = Vec::new();
    let received = body
        .receive(len, |piece| {
            model.extend_from_slice(&piece);
            Ok(())
        })
        .await
        .map_err(|e| blob_error(&e))?;
    if received != len {
        return Err(length_mismatch(len, received));
    }
    if ContentHash::of(&model) != hash {
        return Err(refuse(ErrorCode::HashMismatch, "the upload's hash is not the one signed"));
    }
    Ok(model)
}

/// Receives `update`'s payload straight into `artifacts`, checking each piece
/// on the way. Returns the checks' outcome once the payload is durably
/// stored under its signed hash; `Err` (nothing stored) if it did not arrive
/// whole under that hash, or the store failed.
pub(crate) async fn receive_update<A: ArtifactStore>(
    artifacts: &A,
    spec: &TaskSpec,
    update: &SubmitUpdate,
    body: &mut impl Body,
) -> Result<Result<(), WireError>, WireError> {
    let len = update.update_len;
    let store_failed = |error: &ArtifactError| match error {
        ArtifactError::HashMismatch { .. } => {
            refuse(ErrorCode::HashMismatch, "the upload's hash is not the one signed")
        }
        other => internal("artifact store", other),
    };
    let mut upload = artifacts.begin(update.update, len).await.map_err(|e| store_failed(&e))?;
    // Each piece is checked here, on this task, as it arrives, and hashed by
    // the store: the piece was just copied and is still in cache, no whole
    // copy of the payload is ever made, and there is no hand-off to another
    // thread per piece. Both take about 0.1 ms per 256 KiB piece, short
    // enough not to hold up the runtime.
    let mut check = StreamingCheck::new(spec.model.tensors.clone(), spec.payload_limit_bytes());
    let received = body
        .receive(len, |piece| {
            check.feed(&piece);
            upload.feed(piece).map_err(|e| BlobError::Sink(std::io::Error::other(e)))
        })
        .await;
    let error = match received {
        Ok(received) if received == len => None,
        Ok(received) => Some(length_mismatch(len, received)),
        Err(BlobError::Sink(_)) => {
            // The store stopped taking bytes: its writer failed, and
            // committing what it has says why.
            let why = match upload.commit().await {
                Err(error) => error.to_string(),
                Ok(_) => "the store refused a piece".to_owned(),
            };
            return Err(internal("artifact store", &why));
        }
        Err(error) => Some(blob_error(&error)),
    };
    if let Some(error) = error {
        upload.abort().await;
        return Err(error);
    }
    let checked = check.finish();
    upload.commit().await.map_err(|e| store_failed(&e))?;
    Ok(check_streamed_update(spec, checked))
}
