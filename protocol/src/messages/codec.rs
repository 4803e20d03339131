//! Postcard encoding of control messages, with a size limit on both sides.

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::envelope::EnvelopeError;
use crate::messages::error_code::ErrorCode;

/// The largest control message (a [`Request`](crate::messages::Request) or a
/// [`Response`](crate::messages::Response)) in bytes: 64 KiB.
///
/// Why this size:
/// - it holds every message with wide headroom: a `CreateTask` for the CNN of
///   the FedAvg paper takes under 600 bytes, signed envelope included; a
///   model of 1 000 tensors with 40-byte names and rank-4 shapes about 50 KiB;
///   a [`RoundInfo`](crate::messages::RoundInfo) lists up to ~1 900 sampled
///   trainers (33 bytes each);
/// - a receiver may allocate a whole frame as soon as its length is
///   announced, and a peer may keep dozens of request streams open, so the
///   bound multiplies: 64 streams × 64 KiB = 4 MiB per connection, before
///   the peer has sent any of it;
/// - tensors never travel here: models and updates go on their own streams,
///   bounded by the task's `payload_limit`.
pub const MAX_CONTROL_MESSAGE: usize = 64 * 1024;

/// Why a control message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The value could not be postcard-encoded (a bug in a `Serialize` impl).
    #[error("could not encode the message: {0}")]
    Encode(#[source] postcard::Error),
    /// The message is longer than the limit; when decoding, nothing was parsed.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    Oversized {
        /// Length of the message.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a valid encoding (truncated, garbled, unknown variant).
    #[error("malformed message: {0}")]
    Malformed(#[source] postcard::Error),
    /// Bytes follow a complete message.
    #[error("{count} unexpected bytes after the message")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A signed envelope inside the message is of another protocol version or
    /// has an over-long kind.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

impl From<&CodecError> for ErrorCode {
    fn from(error: &CodecError) -> Self {
        match error {
            CodecError::Encode(_) => Self::Internal,
            CodecError::Oversized { .. } => Self::Oversized,
            CodecError::Malformed(_) | CodecError::TrailingBytes { .. } => Self::Malformed,
            CodecError::Envelope(envelope) => envelope.into(),
        }
    }
}

/// Encodes `value` with postcard, refusing a result longer than
/// [`MAX_CONTROL_MESSAGE`]: the sender learns before sending that the peer
/// would refuse it.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = postcard::to_allocvec(value).map_err(CodecError::Encode)?;
    if bytes.len() > MAX_CONTROL_MESSAGE {
        return Err(CodecError::Oversized { len: bytes.len(), max: MAX_CONTROL_MESSAGE });
    }
    Ok(bytes)
}

/// Decodes a `T` from untrusted bytes.
///
/// Refuses input longer than `max_len` before parsing anything, and trailing
/// bytes after the value. Never panics; allocation is bounded by the input's
/// length (postcard reads strings and byte strings from the input, and serde
/// caps the capacity it reserves for a sequence before seeing its elements).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max_len: usize) -> Result<T, CodecError> {
    if bytes.len() > max_len {
        return Err(CodecError::Oversized { len: bytes.len(), max: max_len });
    }
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(CodecError::Malformed)?;
    if rest.is_empty() { Ok(value) } else { Err(CodecError::TrailingBytes { count: rest.len() }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        // Garbage that would be malformed is reported as oversized: it was never read.
        assert_eq!(decode::<u32>(&[0xff; 10], 9), Err(CodecError::Oversized { len: 10, max: 9 }));
        assert_eq!(decode::<u8>(&[7], 1), Ok(7));
    }

    #[test]
    fn trailing_and_truncated_input_is_refused() {
        assert_eq!(decode::<u8>(&[7, 0], 10), Err(CodecError::TrailingBytes { count: 1 }));
        assert!(matches!(decode::<u32>(&[0x80], 10), Err(CodecError::Malformed(_))));
        assert!(matches!(decode::<String>(&[], 10), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn encode_refuses_what_the_peer_would_refuse() {
        let fits = vec![0u8; MAX_CONTROL_MESSAGE - 3];
        assert_eq!(encode(&fits).unwrap().len(), MAX_CONTROL_MESSAGE);
        let too_long = vec![0u8; MAX_CONTROL_MESSAGE - 2];
        assert_eq!(
            encode(&too_long),
            Err(CodecError::Oversized { len: MAX_CONTROL_MESSAGE + 1, max: MAX_CONTROL_MESSAGE })
        );
    }

    #[test]
    fn a_huge_announced_length_does_not_allocate_it() {
        // A sequence claiming u32::MAX elements in five bytes of input.
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(matches!(decode::<Vec<u64>>(&bytes, 64), Err(CodecError::Malformed(_))));
    }
}
