//! Content-addressed blobs: global models and update payloads, named by the
//! BLAKE3 [`ContentHash`](starling_protocol::ContentHash) of their bytes.
//!
//! [`ArtifactStore`] is the interface; [`LocalArtifacts`] keeps blobs in a
//! directory, [`S3Artifacts`] (the `s3` feature) in an S3 bucket,
//! [`MemoryArtifacts`] in memory (tests and simulations), and
//! [`AnyArtifacts`] is whichever a store URL names.

mod any;
mod artifact_store;
mod blob_writer;
mod chunk_queue;
mod error;
mod local;
mod memory;
#[cfg(feature = "s3")]
mod s3;

#[cfg(test)]
mod tests;

pub use any::{AnyArtifacts, AnyReader, AnyUpload, ArtifactLocation};
pub use artifact_store::{ArtifactStore, ArtifactUpload, Stored};
pub use error::ArtifactError;
pub use local::{LocalArtifacts, LocalUpload};
pub use memory::{MemoryArtifacts, MemoryUpload};
/// The S3 client crate, for tools that look inside a bucket.
#[cfg(feature = "s3")]
pub use object_store;
#[cfg(feature = "s3")]
pub use s3::{DEFAULT_PART_SIZE, MIN_PART_SIZE, S3Artifacts, S3Reader, S3Upload};
