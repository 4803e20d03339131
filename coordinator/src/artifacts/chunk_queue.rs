//! [`ChunkQueue`]: the caller's side of an upload whose bytes a background
//! writer takes from a queue.

use bytes::Bytes;
use starling_protocol::ContentHash;
use tokio::sync::mpsc;

use super::ArtifactError;

/// The queue an upload's chunks go through to its writer, with the upload's
/// length rule (past `max_len` a chunk is refused and the queue closed), and
/// the hash of what went through it.
///
/// The hash is taken here, on the caller's thread, as each chunk is queued:
/// a chunk just received is still in that core's cache, and a thread of its
/// own would cost a hand-off per chunk and read every byte again from
/// memory. BLAKE3 takes about 0.1 ms for a 256 KiB chunk.
#[derive(Debug)]
pub(super) struct ChunkQueue {
    /// `None` once closed: after a failure, or when the upload finishes.
    queue: Option<mpsc::UnboundedSender<Bytes>>,
    hasher: blake3::Hasher,
    written: u64,
    max_len: u64,
}

impl ChunkQueue {
    /// A queue of at most `max_len` bytes, and the writer's end of it.
    pub(super) fn new(max_len: u64) -> (Self, mpsc::UnboundedReceiver<Bytes>) {
        let (queue, chunks) = mpsc::unbounded_channel();
        (Self { queue: Some(queue), hasher: blake3::Hasher::new(), written: 0, max_len }, chunks)
    }

    /// Queues `chunk` ([`ArtifactUpload::feed`](super::ArtifactUpload::feed)'s
    /// rules): [`ArtifactError::TooLarge`] past the limit, and
    /// [`ArtifactError::Discarded`] once closed or if the writer stopped;
    /// either way the queue is closed.
    pub(super) fn feed(&mut self, chunk: Bytes) -> Result<(), ArtifactError> {
        let Some(queue) = &self.queue else { return Err(ArtifactError::Discarded) };
        let received = self.written.saturating_add(chunk.len() as u64);
        if received > self.max_len {
            self.queue = None;
            return Err(ArtifactError::TooLarge { max_len: self.max_len, received });
        }
        self.hasher.update(&chunk);
        if queue.send(chunk).is_err() {
            // The writer stopped on an error; the commit reports it.
            self.queue = None;
            return Err(ArtifactError::Discarded);
        }
        self.written = received;
        Ok(())
    }

    /// The hash of the bytes queued so far.
    pub(super) fn hash(&self) -> ContentHash {
        ContentHash::from_bytes(*self.hasher.finalize().as_bytes())
    }

    /// Bytes queued so far.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// Whether the queue is open: no chunk was refused, and it was not closed.
    pub(super) fn is_open(&self) -> bool {
        self.queue.is_some()
    }

    /// Closes the queue: the writer sees its end. Returns whether it was
    /// still open.
    pub(super) fn close(&mut self) -> bool {
        self.queue.take().is_some()
    }
}
