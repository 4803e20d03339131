//! The `Starling-Envelope` header of a paid prediction call: a signed
//! [`PredictRequest`], postcard bytes in hex, checked by one [`Verifier`]
//! per router (signature, kind, time window, single use).

use std::sync::{Mutex, PoisonError};

use starling_protocol::{
    ContentHash, EnvelopeError, PredictRequest, PublicKey, ReplayConfig, ReplayError, SignedEnvelope, Verifier,
};

use crate::config::WebConfig;

/// Longest envelope accepted, in bytes. A `PredictRequest` envelope is
/// about 200 bytes; the slack is for future fields, not for junk.
pub(crate) const MAX_ENVELOPE_BYTES: usize = 1024;

/// The verifier of a router's prediction route, from its settings, for a
/// router started at `started_ms`: a paid call signed before then may have
/// been charged by the run before, whose nonces are forgotten, and is refused.
pub(crate) fn verifier(config: &WebConfig, started_ms: u64) -> Verifier {
    Verifier::new(
        MAX_ENVELOPE_BYTES,
        ReplayConfig {
            max_age_ms: config.envelope_max_age_ms,
            max_future_skew_ms: config.envelope_max_future_skew_ms,
            max_entries: config.replay_max_nonces,
            max_entries_per_signer: config.replay_max_nonces_per_signer,
            not_before_ms: started_ms,
        },
    )
}

/// A verified paid call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignedCall {
    /// Who signed it.
    pub(crate) signer: PublicKey,
    /// What it asks for: model, version, body hash, fee cap.
    pub(crate) message: PredictRequest,
    /// BLAKE3 of the envelope's signature: identifies the call for the
    /// ledger's idempotency.
    pub(crate) request: ContentHash,
}

/// Why the header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// Not hex, not an envelope, not a `PredictRequest`, a bad signature, or
    /// a timestamp outside the window: the call is not authenticated.
    #[error("{0}")]
    Invalid(String),
    /// This envelope (signer and nonce) was already used.
    #[error("{0}")]
    Replayed(String),
    /// The signer has used its share of the replay memory.
    #[error("{0}")]
    SignerBusy(String),
    /// The replay memory is full for everyone.
    #[error("{0}")]
    Full(String),
}

/// Reads and verifies the header's text at `now_ms` (Unix milliseconds).
/// A verified envelope's nonce is spent, whatever happens to the call next.
pub(crate) fn verify(verifier: &Mutex<Verifier>, header: &[u8], now_ms: u64) -> Result<SignedCall, Refusal> {
    if header.len() > 2 * MAX_ENVELOPE_BYTES {
        return Err(Refusal::Invalid(format!(
            "the envelope is {} hex digits long: at most {} are accepted",
            header.len(),
            2 * MAX_ENVELOPE_BYTES
        )));
    }
    let bytes = hex::decode(header).map_err(|error| Refusal::Invalid(format!("the envelope is not hex: {error}")))?;
    let envelope =
        SignedEnvelope::from_bytes(&bytes, MAX_ENVELOPE_BYTES).map_err(|error| refusal(&error, "unreadable"))?;
    let verified = verifier
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .verify_envelope::<PredictRequest>(&envelope, now_ms)
        .map_err(|error| refusal(&error, "refused"))?;
    Ok(SignedCall {
        signer: verified.signer,
        message: verified.message,
        request: ContentHash::of(envelope.signature().as_bytes()),
    })
}

/// The refusal for `error`, its message prefixed with what failed.
fn refusal(error: &EnvelopeError, what: &str) -> Refusal {
    let message = format!("envelope {what}: {error}");
    match error {
        EnvelopeError::Replay(ReplayError::Replayed { .. }) => Refusal::Replayed(message),
        EnvelopeError::Replay(ReplayError::SignerQuotaExceeded { .. }) => Refusal::SignerBusy(message),
        EnvelopeError::Replay(ReplayError::CacheFull { .. }) => Refusal::Full(message),
        _ => Refusal::Invalid(message),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use starling_protocol::{Nonce, SigningKey};

    use super::*;

    /// Unix milliseconds now, by this machine's clock.
    pub(crate) use crate::predict::unix_ms as now_ms;

    /// The header text of `message` signed by `key` with `nonce` at `at_ms`.
    pub(crate) fn header(key: &SigningKey, message: &PredictRequest, nonce: u8, at_ms: u64) -> String {
        let envelope = SignedEnvelope::sign(key, message, Nonce::from_bytes([nonce; 16]), at_ms).unwrap();
        hex::encode(envelope.to_bytes().unwrap())
    }

    fn message() -> PredictRequest {
        PredictRequest { model: 1, version: 2, body_hash: ContentHash::of(b"body"), max_fee: 5_000 }
    }

    #[test]
    fn verifies_once_then_refuses_the_replay() {
        let verifier = Mutex::new(verifier(&WebConfig::default(), 0));
        let key = SigningKey::from_bytes(&[7; 32]);
        let now = now_ms();
        let text = header(&key, &message(), 1, now);
        let call = verify(&verifier, text.as_bytes(), now).unwrap();
        assert_eq!(call.signer, PublicKey::of(&key));
        assert_eq!(call.message, message());
        let envelope = SignedEnvelope::from_bytes(&hex::decode(&text).unwrap(), MAX_ENVELOPE_BYTES).unwrap();
        assert_eq!(call.request, ContentHash::of(envelope.signature().as_bytes()));
        assert!(matches!(verify(&verifier, text.as_bytes(), now), Err(Refusal::Replayed(_))));
        // Upper-case hex reads the same (and is the same nonce).
        assert!(matches!(verify(&verifier, text.to_uppercase().as_bytes(), now), Err(Refusal::Replayed(_))));
    }

    #[test]
    fn each_failure_says_what_failed() {
        let verifier = Mutex::new(verifier(&WebConfig::default(), 0));
        let key = SigningKey::from_bytes(&[7; 32]);
        let now = now_ms();
        let invalid = |text: &str| match verify(&verifier, text.as_bytes(), now) {
            Err(Refusal::Invalid(message)) => message,
            other => panic!("{text}: {other:?}"),
        };
        assert!(invalid("zz").contains("not hex"));
        assert!(invalid("abc").contains("not hex"));
        assert!(invalid(&"00".repeat(MAX_ENVELOPE_BYTES + 1)).contains("at most 2048"));
        assert!(invalid("0100").contains("envelope unreadable"));
        assert!(invalid(&header(&key, &message(), 2, now - 6 * 60 * 1000)).contains("stale"));
        assert!(invalid(&header(&key, &message(), 3, now + 60 * 1000)).contains("in the future"));
        // Flip a bit of the signature (the envelope's last bytes).
        let mut bytes = hex::decode(header(&key, &message(), 4, now)).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        assert!(invalid(&hex::encode(&bytes)).contains("bad signature"));
    }

    #[test]
    fn a_call_signed_before_the_router_started_is_refused() {
        let now = now_ms();
        let verifier = Mutex::new(verifier(&WebConfig::default(), now));
        let key = SigningKey::from_bytes(&[7; 32]);
        // Fresh enough for the age window, but it may have been charged by the run before.
        match verify(&verifier, header(&key, &message(), 1, now - 1).as_bytes(), now) {
            Err(Refusal::Invalid(message)) => assert!(message.contains("before the server started"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(verify(&verifier, header(&key, &message(), 2, now).as_bytes(), now).is_ok());
    }
}
