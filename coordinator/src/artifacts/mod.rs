//! Content-addressed blobs: global models and update payloads, named by the
//! BLAKE3 [`ContentHash`](starling_protocol::ContentHash) of their bytes.
//!
//! [`ArtifactStore`] is the interface (a local directory today, an S3 bucket
//! later); [`LocalArtifacts`] keeps blobs in a directory.

mod artifact_store;
mod error;
mod local;

#[cfg(test)]
mod tests;

pub use artifact_store::{ArtifactStore, ArtifactUpload, Stored};
pub use error::ArtifactError;
pub use local::{LocalArtifacts, LocalUpload};
