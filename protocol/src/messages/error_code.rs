//! Error codes: the stable, machine-readable half of every refusal, and the
//! [`WireError`] that carries one with a human-readable message.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::envelope::EnvelopeError;
use crate::payload::PayloadError;
use crate::replay::ReplayError;
use crate::task::TaskSpecError;

/// Longest [`WireError::message`] sent, in bytes; longer messages are cut at
/// a character boundary. Enough for any message this crate writes, short
/// enough that an error answer never approaches the control-message limit.
pub const MAX_ERROR_MESSAGE_LEN: usize = 1024;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $number:literal, $text:literal, $retry:literal;)*) => {
        /// Why a request was refused, as a client can act on it.
        ///
        /// Each code has a fixed number on the wire (postcard writes it as a
        /// varint `u16`; JSON as its snake_case name). Numbers are never
        /// reused or renumbered, and new codes only ever get new numbers, so
        /// an old client reading a newer server's code sees
        /// [`ErrorCode::Unknown`] instead of failing to decode the answer.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u16)]
        pub enum ErrorCode {
            $($(#[$doc])* $name = $number,)*
        }

        impl ErrorCode {
            /// Every code, in ascending number.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$name,)*];

            /// The code's number on the wire.
            pub const fn as_u16(self) -> u16 {
                self as u16
            }

            /// The code with this number, or `None` if this build knows none.
            pub const fn from_u16(number: u16) -> Option<Self> {
                match number {
                    $($number => Some(Self::$name),)*
                    _ => None,
                }
            }

            /// The code's snake_case name, e.g. `"bad_signature"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$name => $text,)*
                }
            }

            /// Whether the same request, signed afresh (new nonce and
            /// timestamp) and sent again later, may succeed without the client
            /// changing anything: the refusal was about the server's load or
            /// the moment, not about the request.
            pub const fn is_retryable(self) -> bool {
                match self {
                    $(Self::$name => $retry,)*
                }
            }

            /// The code named `text` (as [`ErrorCode::as_str`] writes it).
            pub fn from_name(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|code| code.as_str() == text)
            }
        }
    };
}

error_codes! {
    /// A code this build does not know, sent by a newer peer. Not retryable;
    /// the message says what went wrong.
    Unknown = 0, "unknown", false;

    // The request itself (1–19).
    /// The bytes are not a valid request or response (truncated, garbled, trailing bytes).
    Malformed = 1, "malformed", false;
    /// The control message exceeds the size limit; it was refused unread.
    Oversized = 2, "oversized", false;
    /// The envelope's protocol version is not one this server speaks.
    UnsupportedVersion = 3, "unsupported_version", false;
    /// The envelope's message kind is not one this server knows.
    UnknownKind = 4, "unknown_kind", false;
    /// The signature does not verify, or the signer's key is not a valid ed25519 key.
    BadSignature = 5, "bad_signature", false;
    /// The envelope's timestamp is too old (a slow network or a queued
    /// request); signing it afresh fixes it.
    Stale = 6, "stale", true;
    /// The envelope's timestamp is further ahead of the server's clock than
    /// skew explains: fix the sender's clock.
    ClockSkew = 7, "clock_skew", false;
    /// The signer already used this nonce. If a response was lost, the first
    /// request may well have taken effect: check before sending it afresh.
    Replay = 8, "replay", false;
    /// The sender (or everyone) is sending too much; try again later.
    RateLimited = 9, "rate_limited", true;
    /// A field is out of its range or inconsistent (see the message for which).
    InvalidField = 10, "invalid_field", false;
    /// A number that must be finite is NaN or infinite (a score, a loss, a tensor value).
    NonFinite = 11, "non_finite", false;
    /// The signer may not do this (issue money, unbond another key's bond).
    Unauthorized = 12, "unauthorized", false;

    // Tasks and rounds (20–39).
    /// No task has this id.
    UnknownTask = 20, "unknown_task", false;
    /// The task has not started yet (round 0 opens once enough stake has joined).
    NotStarted = 21, "not_started", true;
    /// The task is over; it opens no more rounds.
    TaskFinished = 22, "task_finished", false;
    /// The request names a round other than the current one.
    WrongRound = 23, "wrong_round", false;
    /// The current round is not in a phase that takes this request.
    WrongPhase = 24, "wrong_phase", false;
    /// The phase's deadline has passed.
    AfterDeadline = 25, "after_deadline", false;
    /// The trainer was not sampled for this round.
    NotSampled = 26, "not_sampled", false;
    /// The validator was not assigned this submission.
    NotAssigned = 27, "not_assigned", false;
    /// No submission with this id belongs to the round.
    UnknownSubmission = 28, "unknown_submission", false;
    /// The signer already submitted (an update or this score) in this round.
    Duplicate = 29, "duplicate", false;
    /// The update was computed from another global model than the round's.
    WrongBaseModel = 30, "wrong_base_model", false;

    // Payloads and blobs (40–59).
    /// The announced blob is longer than the task's payload limit.
    PayloadTooLarge = 40, "payload_too_large", false;
    /// The blob's bytes do not hash to the announced content hash.
    HashMismatch = 41, "hash_mismatch", false;
    /// The blob's length differs from the announced length.
    LengthMismatch = 42, "length_mismatch", false;
    /// The payload's tensors (names, dtypes, shapes) are not exactly the model's.
    ShapeMismatch = 43, "shape_mismatch", false;
    /// The update's norm exceeds the task's bound.
    NormTooLarge = 44, "norm_too_large", false;
    /// The payload is not valid safetensors.
    MalformedPayload = 45, "malformed_payload", false;
    /// No blob with this hash is stored.
    UnknownBlob = 46, "unknown_blob", false;
    /// The update changes (next to) nothing: its L2 norm is below
    /// [`MIN_UPDATE_NORM`](crate::MIN_UPDATE_NORM). Sending the global model
    /// back unchanged is a free ride, not a contribution.
    EmptyUpdate = 47, "empty_update", false;

    // The ledger (60–79).
    /// The signer's effective stake in the role is below what the task or request needs.
    InsufficientStake = 60, "insufficient_stake", false;
    /// The signer's free balance is below the amount.
    InsufficientBalance = 61, "insufficient_balance", false;
    /// The bond's lock-up has not ended.
    Locked = 62, "locked", false;
    /// No bond has this id.
    UnknownBond = 63, "unknown_bond", false;
    /// The key to delegate to has never staked.
    UnknownNode = 64, "unknown_node", false;

    // The server (90–99).
    /// The server cannot serve now (its store is down, it is shutting down); try again later.
    Unavailable = 90, "unavailable", true;
    /// The server failed in a way that is its own bug; the details are in its log.
    Internal = 91, "internal", false;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(self.as_str())
        } else {
            serializer.serialize_u16(self.as_u16())
        }
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    /// Unknown numbers and names become [`ErrorCode::Unknown`], so a newer
    /// peer's codes never make a whole answer undecodable.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            Ok(Self::from_name(&text).unwrap_or(Self::Unknown))
        } else {
            Ok(Self::from_u16(u16::deserialize(deserializer)?).unwrap_or(Self::Unknown))
        }
    }
}

/// A refusal as it travels back to the client: a stable code to act on and a
/// message for people. The message says what the client did wrong; it never
/// carries the server's internals (log those instead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people; at most [`MAX_ERROR_MESSAGE_LEN`] bytes.
    pub message: String,
}

impl WireError {
    /// An error with `code` and `message`, the message cut to
    /// [`MAX_ERROR_MESSAGE_LEN`] bytes at a character boundary.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_ERROR_MESSAGE_LEN {
            let mut end = MAX_ERROR_MESSAGE_LEN;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        Self { code, message }
    }

    /// An error for `error`: its code and its `Display` text.
    pub fn from_error<E>(error: &E) -> Self
    where
        E: fmt::Display,
        for<'a> ErrorCode: From<&'a E>,
    {
        Self::new(ErrorCode::from(error), error.to_string())
    }

    /// Whether the request may succeed if sent again; see [`ErrorCode::is_retryable`].
    pub fn is_retryable(&self) -> bool {
        self.code.is_retryable()
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for WireError {}

impl From<&ReplayError> for ErrorCode {
    fn from(error: &ReplayError) -> Self {
        match error {
            ReplayError::Stale { .. } | ReplayError::SignedBeforeStart { .. } => Self::Stale,
            ReplayError::FromFuture { .. } => Self::ClockSkew,
            ReplayError::Replayed { .. } => Self::Replay,
            ReplayError::CacheFull { .. } | ReplayError::SignerQuotaExceeded { .. } => Self::RateLimited,
        }
    }
}

impl From<&EnvelopeError> for ErrorCode {
    fn from(error: &EnvelopeError) -> Self {
        match error {
            // Encoding is the sender's own step; a receiver never reports it.
            EnvelopeError::Encode(_) => Self::Internal,
            EnvelopeError::Oversized { .. } => Self::Oversized,
            EnvelopeError::Malformed(_)
            | EnvelopeError::TrailingBytes { .. }
            | EnvelopeError::KindTooLong { .. }
            | EnvelopeError::MalformedMessage(_)
            | EnvelopeError::TrailingMessageBytes { .. } => Self::Malformed,
            EnvelopeError::WrongVersion { .. } => Self::UnsupportedVersion,
            EnvelopeError::WrongKind { .. } => Self::UnknownKind,
            EnvelopeError::InvalidSignerKey | EnvelopeError::BadSignature => Self::BadSignature,
            EnvelopeError::Replay(replay) => replay.into(),
        }
    }
}

impl From<&PayloadError> for ErrorCode {
    fn from(error: &PayloadError) -> Self {
        match error {
            PayloadError::TooLarge { .. } | PayloadError::ModelTooLarge => Self::PayloadTooLarge,
            PayloadError::HashMismatch { .. } => Self::HashMismatch,
            PayloadError::NonFinite { .. } => Self::NonFinite,
            PayloadError::DuplicateTensor { .. }
            | PayloadError::UnknownTensor { .. }
            | PayloadError::MissingTensor { .. }
            | PayloadError::WrongDtype { .. }
            | PayloadError::WrongShape { .. }
            | PayloadError::ShapeMismatch { .. }
            | PayloadError::ReservedName { .. } => Self::ShapeMismatch,
            PayloadError::Truncated { .. }
            | PayloadError::HeaderTooLarge { .. }
            | PayloadError::HeaderOutOfBounds { .. }
            | PayloadError::MalformedHeader { .. }
            | PayloadError::Malformed { .. }
            | PayloadError::BadOffsets { .. }
            | PayloadError::DataLength { .. } => Self::MalformedPayload,
        }
    }
}

impl From<&TaskSpecError> for ErrorCode {
    fn from(_: &TaskSpecError) -> Self {
        Self::InvalidField
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ContentHash, Nonce};
    use crate::keys::PublicKey;

    /// The numbers are the wire format: this table may only ever grow.
    const PINNED: &[(u16, &str)] = &[
        (0, "unknown"),
        (1, "malformed"),
        (2, "oversized"),
        (3, "unsupported_version"),
        (4, "unknown_kind"),
        (5, "bad_signature"),
        (6, "stale"),
        (7, "clock_skew"),
        (8, "replay"),
        (9, "rate_limited"),
        (10, "invalid_field"),
        (11, "non_finite"),
        (12, "unauthorized"),
        (20, "unknown_task"),
        (21, "not_started"),
        (22, "task_finished"),
        (23, "wrong_round"),
        (24, "wrong_phase"),
        (25, "after_deadline"),
        (26, "not_sampled"),
        (27, "not_assigned"),
        (28, "unknown_submission"),
        (29, "duplicate"),
        (30, "wrong_base_model"),
        (40, "payload_too_large"),
        (41, "hash_mismatch"),
        (42, "length_mismatch"),
        (43, "shape_mismatch"),
        (44, "norm_too_large"),
        (45, "malformed_payload"),
        (46, "unknown_blob"),
        (47, "empty_update"),
        (60, "insufficient_stake"),
        (61, "insufficient_balance"),
        (62, "locked"),
        (63, "unknown_bond"),
        (64, "unknown_node"),
        (90, "unavailable"),
        (91, "internal"),
    ];

    #[test]
    fn numbers_and_names_are_pinned() {
        let actual: Vec<(u16, &str)> = ErrorCode::ALL.iter().map(|c| (c.as_u16(), c.as_str())).collect();
        assert_eq!(actual, PINNED);
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_u16(code.as_u16()), Some(code));
            assert_eq!(ErrorCode::from_name(code.as_str()), Some(code));
        }
    }

    #[test]
    fn only_transient_refusals_are_retryable() {
        let retryable: Vec<ErrorCode> = ErrorCode::ALL.iter().copied().filter(|c| c.is_retryable()).collect();
        assert_eq!(
            retryable,
            [ErrorCode::Stale, ErrorCode::RateLimited, ErrorCode::NotStarted, ErrorCode::Unavailable]
        );
    }

    #[test]
    fn wire_forms() {
        for &code in ErrorCode::ALL {
            let bytes = postcard::to_allocvec(&code).unwrap();
            assert_eq!(postcard::from_bytes::<ErrorCode>(&bytes).unwrap(), code);
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{code}\""));
        }
        // A varint u16: 91 fits in one byte.
        assert_eq!(postcard::to_allocvec(&ErrorCode::Internal).unwrap(), [91]);
        // Codes from a newer peer decode as Unknown instead of failing.
        assert_eq!(postcard::from_bytes::<ErrorCode>(&[200, 1]).unwrap(), ErrorCode::Unknown);
        assert_eq!(serde_json::from_str::<ErrorCode>("\"quota_exhausted\"").unwrap(), ErrorCode::Unknown);
        // But a number beyond u16 is malformed.
        assert!(postcard::from_bytes::<ErrorCode>(&[0xff, 0xff, 0xff, 0x7f]).is_err());
    }

    #[test]
    fn long_messages_are_cut_at_a_char_boundary() {
        let error = WireError::new(ErrorCode::Internal, "é".repeat(MAX_ERROR_MESSAGE_LEN));
        assert!(error.message.len() <= MAX_ERROR_MESSAGE_LEN);
        assert_eq!(error.message.len(), MAX_ERROR_MESSAGE_LEN);
        let odd = WireError::new(ErrorCode::Internal, format!("x{}", "é".repeat(MAX_ERROR_MESSAGE_LEN)));
        assert_eq!(odd.message.len(), MAX_ERROR_MESSAGE_LEN - 1);
        assert_eq!(WireError::new(ErrorCode::Stale, "short").message, "short");
    }

    #[test]
    fn library_errors_map_to_codes() {
        let replayed = EnvelopeError::Replay(ReplayError::Replayed {
            signer: PublicKey::from_bytes([1; 32]),
            nonce: Nonce::from_bytes([2; 16]),
        });
        let wire = WireError::from_error(&replayed);
        assert_eq!(wire.code, ErrorCode::Replay);
        assert_eq!(wire.message, replayed.to_string());
        assert_eq!(ErrorCode::from(&EnvelopeError::BadSignature), ErrorCode::BadSignature);
        assert_eq!(ErrorCode::from(&EnvelopeError::Oversized { len: 2, max: 1 }), ErrorCode::Oversized);
        assert_eq!(
            ErrorCode::from(&EnvelopeError::WrongVersion { found: 2, expected: 1 }),
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(
            ErrorCode::from(&ReplayError::FromFuture { timestamp_ms: 2, now_ms: 1, max_future_skew_ms: 0 }),
            ErrorCode::ClockSkew
        );
        assert_eq!(ErrorCode::from(&ReplayError::CacheFull { capacity: 1 }), ErrorCode::RateLimited);
        let hash = ContentHash::of(b"x");
        assert_eq!(
            ErrorCode::from(&PayloadError::HashMismatch { expected: hash, actual: hash }),
            ErrorCode::HashMismatch
        );
        assert_eq!(
            ErrorCode::from(&PayloadError::NonFinite { name: "w".into(), index: 0, value: f32::NAN }),
            ErrorCode::NonFinite
        );
        assert_eq!(ErrorCode::from(&PayloadError::MissingTensor { name: "w".into() }), ErrorCode::ShapeMismatch);
        assert_eq!(ErrorCode::from(&PayloadError::Truncated { len: 3 }), ErrorCode::MalformedPayload);
        assert_eq!(ErrorCode::from(&PayloadError::TooLarge { len: 3, limit: 2 }), ErrorCode::PayloadTooLarge);
    }
}
