//! The [`ArtifactStore`] and [`ArtifactUpload`] traits.

use std::future::Future;

use bytes::Bytes;
use starling_protocol::ContentHash;
use tokio::io::AsyncRead;

use super::ArtifactError;

/// What a successful store did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The blob was written.
    Written,
    /// A blob with this hash was already stored, so the bytes (checked all
    /// the same) were not written again.
    AlreadyPresent,
}

/// A store of immutable blobs named by the BLAKE3 hash of their bytes.
///
/// Writes are verified: a blob becomes visible only whole, under the hash its
/// bytes actually have, and storing a hash again is harmless. Reads of a
/// hash that is stored therefore always return the same bytes. Blobs may be
/// hundreds of megabytes: uploads stream in ([`begin`](ArtifactStore::begin))
/// and reads stream out ([`open`](ArtifactStore::open)).
pub trait ArtifactStore: Send + Sync {
    /// A streaming upload in progress.
    type Upload: ArtifactUpload;
    /// A stream of a stored blob's bytes.
    type Reader: AsyncRead + Unpin + Send;

    /// Starts storing a blob expected to hash to `expected` and be at most
    /// `max_len` bytes long.
    fn begin(
        &self,
        expected: ContentHash,
        max_len: u64,
    ) -> impl Future<Output = Result<Self::Upload, ArtifactError>> + Send;

    /// Stores `bytes`, which must hash to `hash`
    /// ([`ArtifactError::HashMismatch`] otherwise).
    fn put(&self, hash: ContentHash, bytes: &[u8]) -> impl Future<Output = Result<Stored, ArtifactError>> + Send;

    /// A stored blob's bytes, checked against its hash
    /// ([`ArtifactError::Corrupt`] if they no longer match);
    /// [`ArtifactError::NotFound`] if it is not stored.
    fn get(&self, hash: ContentHash) -> impl Future<Output = Result<Vec<u8>, ArtifactError>> + Send;

    /// A stored blob as a stream, unchecked: a reader that needs certainty
    /// hashes what it reads. [`ArtifactError::NotFound`] if it is not stored.
    fn open(&self, hash: ContentHash) -> impl Future<Output = Result<Self::Reader, ArtifactError>> + Send;

    /// Whether a blob with this hash is stored.
    fn contains(&self, hash: ContentHash) -> impl Future<Output = Result<bool, ArtifactError>> + Send;

    /// A stored blob's length in bytes, or `None` if it is not stored.
    fn len(&self, hash: ContentHash) -> impl Future<Output = Result<Option<u64>, ArtifactError>> + Send;
}

/// A blob being stored, chunk by chunk. Nothing is visible under the hash
/// until [`commit`](ArtifactUpload::commit) succeeds; an upload that fails,
/// is [aborted](ArtifactUpload::abort) or dropped leaves nothing behind.
pub trait ArtifactUpload: Send {
    /// Appends a copy of `chunk`, and waits for nothing but the queue: the
    /// same as [`feed`](ArtifactUpload::feed), for a caller that holds a
    /// borrowed slice. Past the upload's `max_len` this fails with
    /// [`ArtifactError::TooLarge`] and discards the upload (waiting until
    /// what it wrote is gone); after any failure further writes fail with
    /// [`ArtifactError::Discarded`].
    fn write(&mut self, chunk: &[u8]) -> impl Future<Output = Result<(), ArtifactError>> + Send {
        async move {
            let fed = self.feed(Bytes::copy_from_slice(chunk));
            if let Err(ArtifactError::TooLarge { .. }) = fed {
                self.discard().await;
            }
            fed
        }
    }

    /// Appends `chunk` without waiting for it to be written: the store takes
    /// the buffer (no copy) and writes it behind the caller, so a network
    /// receive and the disk overlap. The same length rule as
    /// [`write`](ArtifactUpload::write); a write error surfaces at
    /// [`commit`](ArtifactUpload::commit).
    fn feed(&mut self, chunk: Bytes) -> Result<(), ArtifactError>;

    /// Bytes written so far.
    fn written(&self) -> u64;

    /// Checks that the bytes hash to the expected hash
    /// ([`ArtifactError::HashMismatch`] otherwise, and nothing is stored),
    /// then makes the blob durable and visible under it.
    fn commit(self) -> impl Future<Output = Result<Stored, ArtifactError>> + Send;

    /// Stops the upload and removes what it wrote, once it is gone; writes
    /// after it fail with [`ArtifactError::Discarded`].
    fn discard(&mut self) -> impl Future<Output = ()> + Send;

    /// Discards the upload.
    fn abort(mut self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async move { self.discard().await }
    }
}
