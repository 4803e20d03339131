//! The one request type on the wire, and the dispatch of signed envelopes to
//! the message types they hold.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::envelope::{EnvelopeError, MAX_KIND_LEN, Message, PROTOCOL_VERSION, SignedEnvelope};
use crate::ids::Nonce;
use crate::keys::PublicKey;
use crate::messages::codec::{CodecError, decode, encode};
use crate::messages::error_code::ErrorCode;
use crate::messages::ledger_requests::{Delegate, Issue, SetCommission, Stake, Transfer, Undelegate, Unstake};
use crate::messages::reads::ReadRequest;
use crate::messages::signed_reads::{FetchUpdate, GetAssignments};
use crate::messages::task_requests::{CreateTask, JoinTask, SubmitScore, SubmitUpdate};
use crate::messages::validation::ValidationError;
use crate::verifier::{Verified, Verifier};

/// Everything a client sends on a request stream: one of these, postcard
/// encoded. The variant order is part of the wire format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// A request that acts: signed by the key it acts for. Open it with
    /// [`SignedRequest::verify`].
    Signed(SignedEnvelope),
    /// A request that only reads; anyone may send it.
    Read(ReadRequest),
}

/// Postcard's tag for [`Request::Signed`]: the varint of its position.
const SIGNED_TAG: u8 = 0;

impl Request {
    /// Signs `message` with `key` into a [`Request::Signed`].
    ///
    /// `nonce` must be fresh random bytes; `now_ms` is the signer's clock in
    /// Unix milliseconds.
    pub fn sign<T: Message>(key: &SigningKey, message: &T, nonce: Nonce, now_ms: u64) -> Result<Self, EnvelopeError> {
        SignedEnvelope::sign(key, message, nonce, now_ms).map(Self::Signed)
    }

    /// The wire form; refuses a request longer than
    /// [`MAX_CONTROL_MESSAGE`](crate::messages::MAX_CONTROL_MESSAGE).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        encode(self)
    }

    /// Reads a request from untrusted bytes.
    ///
    /// Refuses input longer than `max_len` before parsing, trailing bytes,
    /// and a signed envelope of another protocol version (peeked before the
    /// rest is parsed, so a future layout is reported as a version mismatch,
    /// not as garbage) or with an over-long kind. Signatures are *not* checked.
    pub fn from_bytes(bytes: &[u8], max_len: usize) -> Result<Self, CodecError> {
        if bytes.len() > max_len {
            return Err(CodecError::Oversized { len: bytes.len(), max: max_len });
        }
        if let [SIGNED_TAG, rest @ ..] = bytes
            && let Ok((version, _)) = postcard::take_from_bytes::<u16>(rest)
            && version != PROTOCOL_VERSION
        {
            return Err(EnvelopeError::WrongVersion { found: version, expected: PROTOCOL_VERSION }.into());
        }
        let request: Self = decode(bytes, max_len)?;
        if let Self::Signed(envelope) = &request
            && envelope.kind().len() > MAX_KIND_LEN
        {
            return Err(EnvelopeError::KindTooLong { len: envelope.kind().len() }.into());
        }
        Ok(request)
    }
}

/// Why a signed envelope could not be turned into a [`SignedRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The envelope's kind is none of [`SignedRequest::KINDS`].
    #[error("unknown message kind `{kind}`")]
    UnknownKind {
        /// The kind (at most [`MAX_KIND_LEN`] characters of it).
        kind: String,
    },
    /// The envelope failed a check: signature, time window, replay, or the
    /// payload does not decode as its kind's message.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

impl From<&RequestError> for ErrorCode {
    fn from(error: &RequestError) -> Self {
        match error {
            RequestError::UnknownKind { .. } => Self::UnknownKind,
            RequestError::Envelope(envelope) => envelope.into(),
        }
    }
}

macro_rules! signed_requests {
    ($($name:ident),* $(,)?) => {
        /// Every signed request, opened: what a [`Request::Signed`] envelope
        /// holds once its kind is known and its signature checked.
        #[derive(Debug, Clone, PartialEq)]
        // `CreateTask` carries a whole `TaskSpec`; requests are decoded one
        // at a time and moved rarely, so boxing it would buy nothing.
        #[allow(clippy::large_enum_variant)]
        pub enum SignedRequest {
            $(
                #[doc = concat!("A [`", stringify!($name), "`].")]
                $name($name),
            )*
        }

        impl SignedRequest {
            /// The [`Message::KIND`] of every signed request, in declaration order.
            pub const KINDS: &'static [&'static str] = &[$(<$name as Message>::KIND,)*];

            /// The [`Message::KIND`] of the message held.
            pub const fn kind(&self) -> &'static str {
                match self {
                    $(Self::$name(_) => <$name as Message>::KIND,)*
                }
            }

            /// Signs the message held with `key`.
            pub fn sign(&self, key: &SigningKey, nonce: Nonce, now_ms: u64) -> Result<SignedEnvelope, EnvelopeError> {
                match self {
                    $(Self::$name(message) => SignedEnvelope::sign(key, message, nonce, now_ms),)*
                }
            }

            /// Checks the signature and decodes the message, whatever its kind.
            /// Timestamps and nonces are not checked: use
            /// [`SignedRequest::verify`] for requests arriving live.
            pub fn open(envelope: &SignedEnvelope) -> Result<Self, RequestError> {
                match envelope.kind() {
                    $(<$name as Message>::KIND => Ok(Self::$name(envelope.open::<$name>()?)),)*
                    other => Err(unknown_kind(other)),
                }
            }

            /// Authenticates an envelope arriving live, whatever its kind:
            /// every check of [`SignedRequest::verify`] but the replay (see
            /// [`Verifier::authenticate`]); record its nonce with
            /// [`Verifier::record`] once the signer is authorised.
            pub fn authenticate(
                verifier: &Verifier,
                envelope: &SignedEnvelope,
                now_ms: u64,
            ) -> Result<Verified<Self>, RequestError> {
                match envelope.kind() {
                    $(<$name as Message>::KIND => {
                        let verified = verifier.authenticate::<$name>(envelope, now_ms)?;
                        Ok(Verified {
                            message: Self::$name(verified.message),
                            signer: verified.signer,
                            nonce: verified.nonce,
                            timestamp_ms: verified.timestamp_ms,
                        })
                    })*
                    other => Err(unknown_kind(other)),
                }
            }

            /// Verifies an envelope arriving live, whatever its kind: signature,
            /// time window and replay (see [`Verifier::verify_envelope`]).
            /// The fields are not validated yet: call
            /// [`SignedRequest::validate`] next.
            pub fn verify(
                verifier: &mut Verifier,
                envelope: &SignedEnvelope,
                now_ms: u64,
            ) -> Result<Verified<Self>, RequestError> {
                let verified = Self::authenticate(verifier, envelope, now_ms)?;
                verifier.record(&verified, now_ms)?;
                Ok(verified)
            }
        }

        $(
            impl From<$name> for SignedRequest {
                fn from(message: $name) -> Self {
                    Self::$name(message)
                }
            }
        )*
    };
}

signed_requests! {
    CreateTask,
    JoinTask,
    SubmitUpdate,
    SubmitScore,
    GetAssignments,
    FetchUpdate,
    Stake,
    Unstake,
    Delegate,
    Undelegate,
    SetCommission,
    Transfer,
    Issue,
}

fn unknown_kind(kind: &str) -> RequestError {
    RequestError::UnknownKind { kind: kind.chars().take(MAX_KIND_LEN).collect() }
}

impl SignedRequest {
    /// Runs the message's own stateless checks, plus those that need only
    /// the signer (no delegating or paying to oneself).
    ///
    /// Checks against the task (a `SubmitUpdate`'s length against the
    /// payload limit) are [`SubmitUpdate::validate_for`], once the task is known.
    pub fn validate(&self, signer: &PublicKey) -> Result<(), ValidationError> {
        match self {
            Self::CreateTask(message) => message.validate(),
            Self::JoinTask(message) => message.validate(),
            Self::SubmitUpdate(message) => message.validate(),
            Self::SubmitScore(message) => message.validate(),
            Self::GetAssignments(message) => message.validate(),
            Self::FetchUpdate(message) => message.validate(),
            Self::Stake(message) => message.validate(),
            Self::Unstake(message) => message.validate(),
            Self::Delegate(message) => message.validate_from(signer),
            Self::Undelegate(message) => message.validate(),
            Self::SetCommission(message) => message.validate(),
            Self::Transfer(message) => message.validate_from(signer),
            Self::Issue(message) => message.validate(),
        }
    }
}
