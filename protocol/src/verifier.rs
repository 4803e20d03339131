//! The one call a receiver makes on untrusted envelope bytes: size limit,
//! decoding, version, kind, signature, time window and replay, in that order.

use crate::envelope::{EnvelopeError, Message, SignedEnvelope};
use crate::ids::Nonce;
use crate::keys::PublicKey;
use crate::replay::{ReplayConfig, ReplayGuard};

/// A message whose envelope passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified<T> {
    /// The decoded message.
    pub message: T,
    /// The key that signed it. The caller decides whether this key may send it.
    pub signer: PublicKey,
    /// The envelope's nonce.
    pub nonce: Nonce,
    /// The envelope's timestamp, in Unix milliseconds by the sender's clock.
    pub timestamp_ms: u64,
}

/// Verifies envelopes arriving live, and refuses replays.
///
/// Holds a [`ReplayGuard`], so keep one `Verifier` per receiving endpoint for
/// as long as it runs.
#[derive(Debug, Clone)]
pub struct Verifier {
    max_envelope_len: usize,
    replay: ReplayGuard,
}

impl Verifier {
    /// A verifier refusing envelopes longer than `max_envelope_len` bytes,
    /// with the given replay window and memory limits.
    pub fn new(max_envelope_len: usize, replay: ReplayConfig) -> Self {
        Self { max_envelope_len, replay: ReplayGuard::new(replay) }
    }

    /// The size limit, in bytes.
    pub fn max_envelope_len(&self) -> usize {
        self.max_envelope_len
    }

    /// The replay guard, for inspection.
    pub fn replay_guard(&self) -> &ReplayGuard {
        &self.replay
    }

    /// Reads, verifies and opens an envelope holding a `T`, at time `now_ms`
    /// (Unix milliseconds, receiver's clock).
    ///
    /// Each failure has its own [`EnvelopeError`] variant. The nonce is
    /// recorded only once everything else has passed: a forged or
    /// undecodable envelope never uses up its signer's nonce.
    pub fn verify<T: Message>(&mut self, bytes: &[u8], now_ms: u64) -> Result<Verified<T>, EnvelopeError> {
        let envelope = SignedEnvelope::from_bytes(bytes, self.max_envelope_len)?;
        self.verify_envelope(&envelope, now_ms)
    }

    /// Like [`Verifier::verify`], for an envelope already decoded (its size
    /// limit is the caller's business).
    pub fn verify_envelope<T: Message>(
        &mut self,
        envelope: &SignedEnvelope,
        now_ms: u64,
    ) -> Result<Verified<T>, EnvelopeError> {
        let verified = self.authenticate::<T>(envelope, now_ms)?;
        self.record(&verified, now_ms)?;
        Ok(verified)
    }

    /// Every check of [`Verifier::verify_envelope`] but the replay: kind,
    /// signature, time window, decoding. Nothing is recorded, so it needs
    /// only shared access (signatures can be checked in parallel); a
    /// receiver that authorises the signer before spending a nonce slot on
    /// it calls [`Verifier::record`] after.
    pub fn authenticate<T: Message>(
        &self,
        envelope: &SignedEnvelope,
        now_ms: u64,
    ) -> Result<Verified<T>, EnvelopeError> {
        envelope.check_kind::<T>()?;
        envelope.verify_signature()?;
        self.replay.check_timestamp(envelope.timestamp_ms(), now_ms)?;
        let message = envelope.decode_message::<T>()?;
        Ok(Verified {
            message,
            signer: *envelope.signer(),
            nonce: *envelope.nonce(),
            timestamp_ms: envelope.timestamp_ms(),
        })
    }

    /// Records an [authenticated](Verifier::authenticate) envelope's nonce,
    /// refusing a replay (and a signer or guard over its quota).
    pub fn record<T>(&mut self, verified: &Verified<T>, now_ms: u64) -> Result<(), EnvelopeError> {
        self.replay.check_and_record(&verified.signer, &verified.nonce, verified.timestamp_ms, now_ms)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::envelope::tests::{Ping, key, ping};
    use crate::replay::ReplayError;

    const NOW: u64 = 1_700_000_000_000;

    fn verifier() -> Verifier {
        Verifier::new(
            4096,
            ReplayConfig {
                max_age_ms: 60_000,
                max_future_skew_ms: 5_000,
                max_entries: 1_000,
                max_entries_per_signer: 100,
                not_before_ms: 0,
            },
        )
    }

    fn sealed(nonce: u8, timestamp_ms: u64) -> Vec<u8> {
        SignedEnvelope::sign(&key(1), &ping(), Nonce::from_bytes([nonce; 16]), timestamp_ms)
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    #[test]
    fn accepts_a_fresh_envelope_and_returns_message_and_signer() {
        let mut v = verifier();
        let verified = v.verify::<Ping>(&sealed(1, NOW), NOW + 10).unwrap();
        assert_eq!(verified.message, ping());
        assert_eq!(verified.signer, PublicKey::of(&key(1)));
        assert_eq!(verified.nonce, Nonce::from_bytes([1; 16]));
        assert_eq!(verified.timestamp_ms, NOW);
        assert_eq!(v.replay_guard().len(), 1);
    }

    #[test]
    fn authenticating_spends_no_nonce_until_recorded() {
        let mut v = verifier();
        let envelope = SignedEnvelope::from_bytes(&sealed(1, NOW), 4096).unwrap();
        let first = v.authenticate::<Ping>(&envelope, NOW).unwrap();
        let again = v.authenticate::<Ping>(&envelope, NOW).unwrap();
        assert_eq!(first, again, "nothing was recorded");
        assert!(v.replay_guard().is_empty());
        v.record(&first, NOW).unwrap();
        assert_eq!(v.replay_guard().len(), 1);
        assert!(matches!(v.record(&again, NOW), Err(EnvelopeError::Replay(ReplayError::Replayed { .. }))));
        // A bad signature or window fails authentication itself.
        let mut forged = sealed(2, NOW);
        *forged.last_mut().unwrap() ^= 1;
        let forged = SignedEnvelope::from_bytes(&forged, 4096).unwrap();
        assert!(v.authenticate::<Ping>(&forged, NOW).is_err());
        let stale = SignedEnvelope::from_bytes(&sealed(3, NOW - 120_000), 4096).unwrap();
        assert!(matches!(v.authenticate::<Ping>(&stale, NOW), Err(EnvelopeError::Replay(ReplayError::Stale { .. }))));
    }

    #[test]
    fn refuses_a_replay() {
        let mut v = verifier();
        let bytes = sealed(1, NOW);
        v.verify::<Ping>(&bytes, NOW).unwrap();
        assert_eq!(
            v.verify::<Ping>(&bytes, NOW + 1),
            Err(EnvelopeError::Replay(ReplayError::Replayed {
                signer: PublicKey::of(&key(1)),
                nonce: Nonce::from_bytes([1; 16])
            }))
        );
    }

    #[test]
    fn refuses_stale_and_future_timestamps() {
        let mut v = verifier();
        assert!(matches!(
            v.verify::<Ping>(&sealed(1, NOW - 60_001), NOW),
            Err(EnvelopeError::Replay(ReplayError::Stale { .. }))
        ));
        assert!(matches!(
            v.verify::<Ping>(&sealed(2, NOW + 5_001), NOW),
            Err(EnvelopeError::Replay(ReplayError::FromFuture { .. }))
        ));
        assert!(v.replay_guard().is_empty());
    }

    #[test]
    fn refuses_oversized_input() {
        let mut v = verifier();
        let bytes = vec![0u8; 4097];
        assert_eq!(v.verify::<Ping>(&bytes, NOW), Err(EnvelopeError::Oversized { len: 4097, max: 4096 }));
    }

    #[test]
    fn refuses_truncated_input() {
        let mut v = verifier();
        let bytes = sealed(1, NOW);
        assert!(matches!(v.verify::<Ping>(&bytes[..bytes.len() - 1], NOW), Err(EnvelopeError::Malformed(_))));
    }

    #[test]
    fn refuses_a_wrong_version() {
        let mut v = verifier();
        let mut bytes = sealed(1, NOW);
        assert_eq!(bytes[0], 1, "the version is the first byte");
        bytes[0] = 2;
        assert_eq!(v.verify::<Ping>(&bytes, NOW), Err(EnvelopeError::WrongVersion { found: 2, expected: 1 }));
    }

    #[test]
    fn a_forged_envelope_does_not_burn_the_nonce() {
        let mut v = verifier();
        let genuine = sealed(1, NOW);
        // Flip one bit of the last byte: the signature.
        let mut forged = genuine.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(v.verify::<Ping>(&forged, NOW), Err(EnvelopeError::BadSignature));
        assert!(v.replay_guard().is_empty());
        // The genuine envelope with the same nonce still goes through.
        assert!(v.verify::<Ping>(&genuine, NOW).is_ok());
    }

    #[test]
    fn an_undecodable_message_does_not_burn_the_nonce() {
        use crate::envelope::tests::Pong;
        let mut v = verifier();
        let pong = SignedEnvelope::sign(
            &key(1),
            &Pong { round: 1, note: String::new(), values: vec![] },
            Nonce::from_bytes([1; 16]),
            NOW,
        )
        .unwrap();
        assert!(matches!(v.verify_envelope::<Ping>(&pong, NOW), Err(EnvelopeError::WrongKind { .. })));
        assert!(v.replay_guard().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn sign_bytes_verify_gives_the_same_message(
            seed in any::<[u8; 32]>(),
            nonce in any::<[u8; 16]>(),
            skew in -60_000i64..5_000,
            round in any::<u32>(),
            note in ".{0,40}",
            values in proptest::collection::vec(any::<f32>().prop_filter("comparable", |v| !v.is_nan()), 0..32),
        ) {
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let message = Ping { round, note, values };
            let sent_at = NOW.checked_add_signed(skew).unwrap();
            let bytes = SignedEnvelope::sign(&key, &message, Nonce::from_bytes(nonce), sent_at)
                .unwrap()
                .to_bytes()
                .unwrap();
            let mut v = verifier();
            let verified = v.verify::<Ping>(&bytes, NOW).unwrap();
            prop_assert_eq!(verified.message, message);
            prop_assert_eq!(verified.signer, PublicKey::of(&key));
            prop_assert!(v.verify::<Ping>(&bytes, NOW).is_err());
        }
    }
}
