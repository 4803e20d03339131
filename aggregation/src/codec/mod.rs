//! Update codecs: compact encodings of an update for trainers on slow links,
//! and decoders of untrusted bytes.
//!
//! Every encoding starts with a tag byte (codec in the low nibble, format
//! version in the high) and the element count as a little-endian `u32`;
//! each module documents the rest of its byte layout and states the error
//! its round trip may introduce. Decoders take a `max_elements` limit (the
//! model size), check every length before allocating, never panic, and
//! refuse truncated, oversized or inconsistent input with
//! [`crate::AggregationError::Malformed`].
//!
//! | codec          | bytes per value | error                              |
//! |----------------|-----------------|------------------------------------|
//! | [`raw`]        | 4               | none                               |
//! | [`fp16`]       | 2               | ≤ 2⁻¹¹·\|x\| (normal range)         |
//! | [`int8`]       | 1 (+ 4 once)    | ≤ scale·(1/2 + 2⁻¹⁶)               |
//! | [`topk`]       | 8 per kept      | delayed, not lost (error feedback) |

mod kind;
mod wire;

pub mod fp16;
pub mod int8;
pub mod raw;
pub mod topk;

pub use kind::Codec;
pub use topk::{ErrorFeedback, SparseUpdate};
