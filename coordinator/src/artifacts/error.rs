//! Why an artifact could not be stored or read.

use std::io;
use std::path::PathBuf;

use starling_protocol::ContentHash;

/// An artifact store failed. Whatever the failure, a blob that fails its
/// checks is never stored, not even partly.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// No blob has this hash.
    #[error("no artifact {0}")]
    NotFound(ContentHash),
    /// The bytes received do not hash to the name they were sent under.
    #[error("bytes hash to {actual}, not the expected {expected}")]
    HashMismatch {
        /// The hash the caller announced.
        expected: ContentHash,
        /// The hash of what arrived.
        actual: ContentHash,
    },
    /// More bytes arrived than the upload allows.
    #[error("upload exceeds its limit of {max_len} bytes (at least {received} sent)")]
    TooLarge {
        /// The limit given to [`ArtifactStore::begin`](super::ArtifactStore::begin).
        max_len: u64,
        /// Bytes sent so far, the refused chunk included.
        received: u64,
    },
    /// An upload was written to after it had failed; it holds nothing.
    #[error("the upload failed earlier and was discarded")]
    Discarded,
    /// A stored blob no longer hashes to its name (disk corruption or
    /// tampering); it should be deleted and fetched again.
    #[error("stored artifact {hash} is corrupt (its bytes hash to {actual})")]
    Corrupt {
        /// The blob's name.
        hash: ContentHash,
        /// What its bytes hash to now.
        actual: ContentHash,
    },
    /// A store's location or settings are not usable.
    #[error("artifact store `{url}`: {why}")]
    Config {
        /// The store's URL.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A remote store (an S3 bucket) failed or could not be reached.
    #[error("{action} {key}: {source}")]
    Store {
        /// What was being done, e.g. "writing".
        action: &'static str,
        /// The object's key.
        key: String,
        /// The store client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file system failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "renaming into".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

impl ArtifactError {
    /// An [`ArtifactError::Io`] while doing `action` on `path`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }
}
