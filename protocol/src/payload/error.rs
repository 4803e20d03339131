//! What can be wrong with an update payload. Every error about a tensor names it.

use thiserror::Error;

use crate::ids::ContentHash;

/// Why a payload could not be encoded, or why received bytes were refused.
///
/// Tensor names taken from untrusted input are shown with `{:?}` so control
/// characters cannot garble logs.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PayloadError {
    /// The input is longer than the limit; nothing was parsed.
    #[error("payload of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The input is shorter than the 8-byte header length that starts every
    /// safetensors file.
    #[error("payload of {len} bytes is too short to hold a safetensors header")]
    Truncated {
        /// Length of the input.
        len: usize,
    },
    /// The declared header length exceeds what the expected tensors could
    /// need; the header was not read.
    #[error("declared header length of {declared} bytes exceeds the {max}-byte bound for this model")]
    HeaderTooLarge {
        /// The declared length.
        declared: u64,
        /// The bound, see [`max_header_len`](crate::payload::max_header_len).
        max: usize,
    },
    /// The declared header length runs past the end of the input.
    #[error("declared header length of {declared} bytes runs past the {available} bytes present")]
    HeaderOutOfBounds {
        /// The declared length.
        declared: u64,
        /// Bytes present after the length prefix.
        available: usize,
    },
    /// The header is not the JSON object safetensors prescribes.
    #[error("malformed safetensors header: {reason}")]
    MalformedHeader {
        /// What the JSON parser said.
        reason: String,
    },
    /// The file is not valid safetensors (the reference reader refused it).
    #[error("malformed safetensors data: {reason}")]
    Malformed {
        /// What the reader said.
        reason: String,
    },
    /// A tensor name appears twice.
    #[error("tensor {name:?} appears more than once")]
    DuplicateTensor {
        /// The repeated name.
        name: String,
    },
    /// The payload holds a tensor the model does not have.
    #[error("tensor {name:?} is not part of the model")]
    UnknownTensor {
        /// The unexpected name.
        name: String,
    },
    /// The payload lacks one of the model's tensors.
    #[error("tensor {name:?} is missing")]
    MissingTensor {
        /// The missing name.
        name: String,
    },
    /// A tensor is not stored as `f32`.
    #[error("tensor {name:?} has dtype {dtype}, expected F32")]
    WrongDtype {
        /// The tensor.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// A tensor's shape differs from the model's.
    #[error("tensor {name:?} has shape {found:?}, expected {expected:?}")]
    WrongShape {
        /// The tensor.
        name: String,
        /// The model's shape.
        expected: Vec<u64>,
        /// The shape in the payload.
        found: Vec<u64>,
    },
    /// A tensor's data offsets are not where its shape and position put them.
    #[error("tensor {name:?} has data offsets [{start}, {end}) that do not fit the layout")]
    BadOffsets {
        /// The tensor.
        name: String,
        /// Declared start, relative to the data section.
        start: u64,
        /// Declared end, relative to the data section.
        end: u64,
    },
    /// The data section's length differs from what the header declares.
    #[error("header declares {declared} bytes of tensor data but {actual} follow it")]
    DataLength {
        /// Bytes the header's tensors cover.
        declared: u64,
        /// Bytes present.
        actual: usize,
    },
    /// A tensor holds NaN or an infinity.
    #[error("tensor {name:?} has non-finite value {value} at element {index}")]
    NonFinite {
        /// The tensor.
        name: String,
        /// Row-major index of the first offending element.
        index: usize,
        /// The value found.
        value: f32,
    },
    /// The bytes do not hash to the announced content hash.
    #[error("payload hash {actual} does not match the announced {expected}")]
    HashMismatch {
        /// The announced hash.
        expected: ContentHash,
        /// The hash of the bytes received.
        actual: ContentHash,
    },
    /// An encoder input's value count does not match its shape.
    #[error("tensor {name:?} has {values} values, but shape {shape:?} holds a different number")]
    ShapeMismatch {
        /// The tensor.
        name: String,
        /// Its declared shape.
        shape: Vec<usize>,
        /// Number of values given.
        values: usize,
    },
    /// An encoder input uses the name safetensors reserves for metadata.
    #[error("tensor name {name:?} is reserved by safetensors")]
    ReservedName {
        /// The reserved name.
        name: String,
    },
    /// The model's size in bytes does not fit in `usize`.
    #[error("model is too large to encode")]
    ModelTooLarge,
}
