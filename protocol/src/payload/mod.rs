//! The update payload: named `f32` tensors as safetensors bytes, identified
//! by their BLAKE3 content hash.
//!
//! Trainers [`UpdatePayload::encode`] their update; the coordinator and
//! validators [`decode`] untrusted bytes against the task's tensor specs,
//! which refuses anything but exactly the expected finite `f32` tensors.

mod decode;
mod encode;
mod error;
mod header;
mod stream;

pub use decode::{TensorBytes, decode, decode_checked, decode_view, inspect, verify_hash};
pub use encode::{UpdatePayload, encoded_len};
pub use error::PayloadError;
pub use header::max_header_len;
pub use stream::{StreamSummary, StreamingCheck};

#[cfg(test)]
mod tests;
