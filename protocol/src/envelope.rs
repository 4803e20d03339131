//! Signed envelopes: a postcard-encoded message, signed with ed25519 by its
//! sender, with the protocol version, a nonce and a timestamp under the
//! signature.
//!
//! The signature covers a domain-separated encoding of every field but itself
//! (see [`SignedEnvelope::signed_bytes`]), including the message's kind, so a
//! signature made for one message type can never be replayed as another type
//! whose postcard bytes happen to coincide.

use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::ids::Nonce;
use crate::keys::{PublicKey, Signature};
use crate::replay::ReplayError;

/// Version of the envelope format and of the signed encoding. An envelope
/// carrying any other version is refused.
pub const PROTOCOL_VERSION: u16 = 1;

/// Prefix of every signed byte string, so a Starling envelope signature can
/// never be mistaken for a signature over anything else.
pub const SIGNING_CONTEXT: &[u8] = b"starling/envelope/v1\0";

/// Longest message kind accepted, in bytes.
pub const MAX_KIND_LEN: usize = 64;

/// A message type that travels in a signed envelope.
pub trait Message: Serialize + DeserializeOwned {
    /// Stable name of the type, e.g. `"starling/update-submission"`; at most
    /// [`MAX_KIND_LEN`] bytes. It is signed with every message, so it must
    /// never change once released, and no two message types may share one.
    const KIND: &'static str;
}

/// A signed message as it travels on the wire.
///
/// Fields are private: an envelope is made by [`SignedEnvelope::sign`] or
/// read by [`SignedEnvelope::from_bytes`], and nothing in it may be trusted
/// before [`SignedEnvelope::verify_signature`] (or a
/// [`Verifier`](crate::Verifier)) has passed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedEnvelope {
    // `version` must stay the first field: readers peek at it before decoding
    // the rest, so a future layout is reported as a version mismatch.
    version: u16,
    kind: String,
    signer: PublicKey,
    nonce: Nonce,
    timestamp_ms: u64,
    #[serde(with = "crate::byte_buf")]
    payload: Vec<u8>,
    signature: Signature,
}

impl SignedEnvelope {
    /// Encodes `message` with postcard and signs it with `key`.
    ///
    /// `nonce` must be fresh random bytes for every envelope a key signs;
    /// `now_ms` is the signer's clock in Unix milliseconds.
    pub fn sign<T: Message>(key: &SigningKey, message: &T, nonce: Nonce, now_ms: u64) -> Result<Self, EnvelopeError> {
        if T::KIND.len() > MAX_KIND_LEN {
            return Err(EnvelopeError::KindTooLong { len: T::KIND.len() });
        }
        let payload = postcard::to_allocvec(message).map_err(EnvelopeError::Encode)?;
        let mut envelope = Self {
            version: PROTOCOL_VERSION,
            kind: T::KIND.to_owned(),
            signer: PublicKey::of(key),
            nonce,
            timestamp_ms: now_ms,
            payload,
            signature: Signature::from_bytes([0; 64]),
        };
        envelope.signature = key.sign(&envelope.signed_bytes()).into();
        Ok(envelope)
    }

    /// The postcard encoding of the envelope, as it goes on the wire.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        postcard::to_allocvec(self).map_err(EnvelopeError::Encode)
    }

    /// Reads an envelope from untrusted bytes.
    ///
    /// Refuses input longer than `max_len` before decoding anything, a
    /// version other than [`PROTOCOL_VERSION`], and trailing bytes. The
    /// signature is *not* checked here.
    pub fn from_bytes(bytes: &[u8], max_len: usize) -> Result<Self, EnvelopeError> {
        if bytes.len() > max_len {
            return Err(EnvelopeError::Oversized { len: bytes.len(), max: max_len });
        }
        let (version, _) = postcard::take_from_bytes::<u16>(bytes).map_err(EnvelopeError::Malformed)?;
        if version != PROTOCOL_VERSION {
            return Err(EnvelopeError::WrongVersion { found: version, expected: PROTOCOL_VERSION });
        }
        let (envelope, rest) = postcard::take_from_bytes::<Self>(bytes).map_err(EnvelopeError::Malformed)?;
        if !rest.is_empty() {
            return Err(EnvelopeError::TrailingBytes { count: rest.len() });
        }
        if envelope.kind.len() > MAX_KIND_LEN {
            return Err(EnvelopeError::KindTooLong { len: envelope.kind.len() });
        }
        Ok(envelope)
    }

    /// The bytes the signature covers: [`SIGNING_CONTEXT`], then the version
    /// (u16 LE), the kind (u64 LE length, then UTF-8), the signer (32 bytes),
    /// the nonce (16 bytes), the timestamp (u64 LE) and the payload (u64 LE
    /// length, then the bytes). Fixed-width fields and length prefixes make
    /// the encoding injective.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(SIGNING_CONTEXT.len() + 2 + 8 + self.kind.len() + 32 + 16 + 8 + 8 + self.payload.len());
        out.extend_from_slice(SIGNING_CONTEXT);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.kind.len() as u64).to_le_bytes());
        out.extend_from_slice(self.kind.as_bytes());
        out.extend_from_slice(self.signer.as_bytes());
        out.extend_from_slice(self.nonce.as_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_le_bytes());
        out.extend_from_slice(&(self.payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Checks the version and the signature against the signer's key.
    ///
    /// Uses strict verification: small-order keys and non-canonical
    /// signatures are refused, so a signature cannot be mauled into a second
    /// valid one.
    pub fn verify_signature(&self) -> Result<(), EnvelopeError> {
        if self.version != PROTOCOL_VERSION {
            return Err(EnvelopeError::WrongVersion { found: self.version, expected: PROTOCOL_VERSION });
        }
        let key = self.signer.to_verifying_key().map_err(|_| EnvelopeError::InvalidSignerKey)?;
        key.verify_strict(&self.signed_bytes(), &self.signature.into()).map_err(|_| EnvelopeError::BadSignature)
    }

    /// Checks that the envelope holds a `T`, verifies the signature and
    /// decodes the message. Timestamps and nonces are not checked: use a
    /// [`Verifier`](crate::Verifier) for messages arriving live.
    pub fn open<T: Message>(&self) -> Result<T, EnvelopeError> {
        self.check_kind::<T>()?;
        self.verify_signature()?;
        self.decode_message()
    }

    /// Refuses the envelope unless its kind is `T`'s.
    pub(crate) fn check_kind<T: Message>(&self) -> Result<(), EnvelopeError> {
        if self.kind == T::KIND {
            Ok(())
        } else {
            Err(EnvelopeError::WrongKind { expected: T::KIND, found: self.kind.chars().take(MAX_KIND_LEN).collect() })
        }
    }

    /// Decodes the payload as a `T`, refusing trailing bytes. Verifies nothing.
    pub(crate) fn decode_message<T: Message>(&self) -> Result<T, EnvelopeError> {
        let (message, rest) = postcard::take_from_bytes::<T>(&self.payload).map_err(EnvelopeError::MalformedMessage)?;
        if rest.is_empty() { Ok(message) } else { Err(EnvelopeError::TrailingMessageBytes { count: rest.len() }) }
    }

    /// The envelope format version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The message type's [`Message::KIND`].
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The key that (claims to have) signed the envelope.
    pub fn signer(&self) -> &PublicKey {
        &self.signer
    }

    /// The sender's nonce.
    pub fn nonce(&self) -> &Nonce {
        &self.nonce
    }

    /// When the sender signed, in Unix milliseconds by its clock.
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }

    /// The postcard-encoded message.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The ed25519 signature over [`SignedEnvelope::signed_bytes`].
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
}

/// Why an envelope could not be built, read or trusted. Each way a received
/// envelope can fail has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnvelopeError {
    /// The message or envelope could not be postcard-encoded (a bug in the
    /// message type's `Serialize`, such as a map of unknown length).
    #[error("could not encode the envelope: {0}")]
    Encode(#[source] postcard::Error),
    /// The input is longer than the receiver accepts; nothing was decoded.
    #[error("envelope of {len} bytes exceeds the {max}-byte limit")]
    Oversized {
        /// Length of the input.
        len: usize,
        /// The receiver's limit.
        max: usize,
    },
    /// The input is not a postcard-encoded envelope (truncated or garbled).
    #[error("malformed envelope: {0}")]
    Malformed(#[source] postcard::Error),
    /// Bytes follow a complete envelope.
    #[error("{count} unexpected bytes after the envelope")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The envelope is of a protocol version this build does not speak.
    #[error("protocol version {found} is not supported (expected {expected})")]
    WrongVersion {
        /// The version in the envelope.
        found: u16,
        /// [`PROTOCOL_VERSION`].
        expected: u16,
    },
    /// The message kind is longer than [`MAX_KIND_LEN`].
    #[error("message kind of {len} bytes exceeds the {MAX_KIND_LEN}-byte limit")]
    KindTooLong {
        /// Length of the kind, in bytes.
        len: usize,
    },
    /// The envelope holds a different message type than the one expected.
    #[error("expected a `{expected}` message, got `{found}`")]
    WrongKind {
        /// The expected [`Message::KIND`].
        expected: &'static str,
        /// The kind in the envelope.
        found: String,
    },
    /// The signer's public key is not a valid ed25519 point.
    #[error("the signer's public key is not a valid ed25519 key")]
    InvalidSignerKey,
    /// The signature does not match the signer's key and the envelope's content.
    #[error("bad signature")]
    BadSignature,
    /// The timestamp or nonce was refused (stale, from the future, replayed,
    /// or the replay cache is full).
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The signed payload is not a valid encoding of the expected message.
    #[error("malformed message: {0}")]
    MalformedMessage(#[source] postcard::Error),
    /// Bytes follow a complete message inside the payload.
    #[error("{count} unexpected bytes after the message")]
    TrailingMessageBytes {
        /// How many.
        count: usize,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    /// A message type for tests.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Ping {
        pub(crate) round: u32,
        pub(crate) note: String,
        pub(crate) values: Vec<f32>,
    }

    impl Message for Ping {
        const KIND: &'static str = "starling/test/ping";
    }

    /// Another message type with the same layout, to test kind separation.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Pong {
        pub(crate) round: u32,
        pub(crate) note: String,
        pub(crate) values: Vec<f32>,
    }

    impl Message for Pong {
        const KIND: &'static str = "starling/test/pong";
    }

    pub(crate) fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    pub(crate) fn ping() -> Ping {
        Ping { round: 3, note: "hello".into(), values: vec![1.0, -2.5] }
    }

    #[test]
    fn sign_then_open() {
        let envelope = SignedEnvelope::sign(&key(1), &ping(), Nonce::from_bytes([9; 16]), 1_000).unwrap();
        assert_eq!(envelope.version(), PROTOCOL_VERSION);
        assert_eq!(envelope.kind(), Ping::KIND);
        assert_eq!(envelope.signer(), &PublicKey::of(&key(1)));
        assert_eq!(envelope.timestamp_ms(), 1_000);
        let bytes = envelope.to_bytes().unwrap();
        let read = SignedEnvelope::from_bytes(&bytes, bytes.len()).unwrap();
        assert_eq!(read, envelope);
        assert_eq!(read.open::<Ping>().unwrap(), ping());
    }

    #[test]
    fn signed_bytes_start_with_the_context() {
        let envelope = SignedEnvelope::sign(&key(1), &ping(), Nonce::from_bytes([0; 16]), 0).unwrap();
        assert!(envelope.signed_bytes().starts_with(SIGNING_CONTEXT));
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let bytes = SignedEnvelope::sign(&key(1), &ping(), Nonce::from_bytes([0; 16]), 0).unwrap().to_bytes().unwrap();
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, bytes.len() - 1),
            Err(EnvelopeError::Oversized { len: bytes.len(), max: bytes.len() - 1 })
        );
        // Garbage of the wrong size is still "oversized", not "malformed".
        assert!(matches!(SignedEnvelope::from_bytes(&[0xff; 100], 10), Err(EnvelopeError::Oversized { .. })));
    }

    #[test]
    fn truncated_and_trailing_input_is_refused() {
        let bytes = SignedEnvelope::sign(&key(1), &ping(), Nonce::from_bytes([0; 16]), 0).unwrap().to_bytes().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                matches!(SignedEnvelope::from_bytes(&bytes[..cut], usize::MAX), Err(EnvelopeError::Malformed(_))),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(SignedEnvelope::from_bytes(&longer, usize::MAX), Err(EnvelopeError::TrailingBytes { count: 1 }));
    }

    #[test]
    fn other_versions_are_refused() {
        let mut envelope = SignedEnvelope::sign(&key(1), &ping(), Nonce::from_bytes([0; 16]), 0).unwrap();
        envelope.version = 2;
        let bytes = envelope.to_bytes().unwrap();
        assert_eq!(
            SignedEnvelope::from_bytes(&bytes, usize::MAX),
            Err(EnvelopeError::WrongVersion { found: 2, expected: PROTOCOL_VERSION })
        );
        // Also when the rest of the bytes would not parse as today's layout.
        assert_eq!(
            SignedEnvelope::from_bytes(&[7, 0xde, 0xad], usize::MAX),
            Err(EnvelopeError::WrongVersion { found: 7, expected: PROTOCOL_VERSION })
        );
        assert_eq!(envelope.verify_signature(), Err(EnvelopeError::WrongVersion { found: 2, expected: 1 }));
    }

    #[test]
    fn any_flipped_bit_breaks_the_signature() {
        let envelope = SignedEnvelope::sign(&key(1), &ping(), Nonce::from_bytes([5; 16]), 77).unwrap();
        let mut tampered = envelope.clone();
        tampered.payload[0] ^= 1;
        assert_eq!(tampered.verify_signature(), Err(EnvelopeError::BadSignature));
        let mut tampered = envelope.clone();
        tampered.timestamp_ms ^= 1;
        assert_eq!(tampered.verify_signature(), Err(EnvelopeError::BadSignature));
        let mut tampered = envelope.clone();
        tampered.nonce = Nonce::from_bytes([4; 16]);
        assert_eq!(tampered.verify_signature(), Err(EnvelopeError::BadSignature));
        let mut tampered = envelope.clone();
        let mut signature = tampered.signature.to_bytes();
        signature[10] ^= 0x80;
        tampered.signature = Signature::from_bytes(signature);
        assert_eq!(tampered.verify_signature(), Err(EnvelopeError::BadSignature));
        let mut tampered = envelope;
        tampered.signer = PublicKey::of(&key(2));
        assert_eq!(tampered.verify_signature(), Err(EnvelopeError::BadSignature));
    }

    #[test]
    fn a_signer_key_off_the_curve_is_refused() {
        let mut envelope = SignedEnvelope::sign(&key(1), &ping(), Nonce::from_bytes([5; 16]), 77).unwrap();
        // y = 2 is not the y-coordinate of any point on edwards25519.
        let mut bad = [0u8; 32];
        bad[0] = 2;
        envelope.signer = PublicKey::from_bytes(bad);
        assert_eq!(envelope.verify_signature(), Err(EnvelopeError::InvalidSignerKey));
    }

    #[test]
    fn a_message_cannot_be_opened_as_another_kind() {
        let envelope = SignedEnvelope::sign(&key(1), &ping(), Nonce::from_bytes([5; 16]), 77).unwrap();
        assert_eq!(
            envelope.open::<Pong>(),
            Err(EnvelopeError::WrongKind { expected: Pong::KIND, found: Ping::KIND.into() })
        );
        // Relabelling the kind breaks the signature.
        let mut relabelled = envelope;
        relabelled.kind = Pong::KIND.into();
        assert_eq!(relabelled.open::<Pong>(), Err(EnvelopeError::BadSignature));
    }

    #[test]
    fn payload_that_is_not_the_message_is_refused() {
        #[derive(Serialize, Deserialize)]
        struct Tiny(u8);
        impl Message for Tiny {
            const KIND: &'static str = Ping::KIND;
        }
        let envelope = SignedEnvelope::sign(&key(1), &Tiny(200), Nonce::from_bytes([5; 16]), 77).unwrap();
        assert!(matches!(envelope.open::<Ping>(), Err(EnvelopeError::MalformedMessage(_))));

        #[derive(Serialize, Deserialize)]
        struct Longer(Ping, u8);
        impl Message for Longer {
            const KIND: &'static str = Ping::KIND;
        }
        let envelope = SignedEnvelope::sign(&key(1), &Longer(ping(), 1), Nonce::from_bytes([5; 16]), 77).unwrap();
        assert_eq!(envelope.open::<Ping>(), Err(EnvelopeError::TrailingMessageBytes { count: 1 }));
    }

    #[test]
    fn over_long_kinds_are_refused() {
        #[derive(Serialize, Deserialize)]
        struct Wordy;
        impl Message for Wordy {
            const KIND: &'static str = "starling/this-kind-is-far-too-long-to-be-accepted-by-the-envelope-format";
        }
        assert!(matches!(
            SignedEnvelope::sign(&key(1), &Wordy, Nonce::from_bytes([0; 16]), 0),
            Err(EnvelopeError::KindTooLong { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn envelopes_round_trip(
            seed in any::<[u8; 32]>(),
            nonce in any::<[u8; 16]>(),
            now in any::<u64>(),
            round in any::<u32>(),
            note in ".{0,40}",
            values in proptest::collection::vec(-1e6f32..1e6, 0..64),
        ) {
            let key = SigningKey::from_bytes(&seed);
            let message = Ping { round, note, values };
            let envelope = SignedEnvelope::sign(&key, &message, Nonce::from_bytes(nonce), now).unwrap();
            let bytes = envelope.to_bytes().unwrap();
            let read = SignedEnvelope::from_bytes(&bytes, bytes.len()).unwrap();
            prop_assert_eq!(&read, &envelope);
            prop_assert_eq!(read.open::<Ping>().unwrap(), message);
            prop_assert_eq!(read.signer(), &PublicKey::of(&key));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(envelope) = SignedEnvelope::from_bytes(&bytes, 1024) {
                let _ = envelope.open::<Ping>();
            }
        }

        #[test]
        fn flipping_any_bit_of_the_wire_bytes_is_caught(bit in 0usize..(8 * 150)) {
            let envelope = SignedEnvelope::sign(&key(3), &ping(), Nonce::from_bytes([1; 16]), 5).unwrap();
            let mut bytes = envelope.to_bytes().unwrap();
            let bit = bit % (8 * bytes.len());
            bytes[bit / 8] ^= 1 << (bit % 8);
            let opened = SignedEnvelope::from_bytes(&bytes, usize::MAX).and_then(|e| e.open::<Ping>());
            prop_assert!(opened.is_err(), "bit {} flipped yet the envelope opened", bit);
        }
    }
}
