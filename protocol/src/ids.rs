//! Identifiers shared by every crate: tasks, rounds, nonces, content hashes and
//! submissions.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::hex::fixed_bytes;
use crate::keys::PublicKey;

/// Identifies a federated task. Assigned by the coordinator's task registry.
///
/// Prints and parses as a plain decimal number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(u64);

impl TaskId {
    /// Wraps a raw id.
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The raw id.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for TaskId {
    type Err = ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(Self)
    }
}

/// The index of a round within a task, counting from [`RoundNumber::FIRST`] (zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoundNumber(u32);

impl RoundNumber {
    /// The first round of every task.
    pub const FIRST: Self = Self(0);

    /// Wraps a raw round index.
    pub const fn new(round: u32) -> Self {
        Self(round)
    }

    /// The raw round index.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The round after this one, or `None` if the counter would overflow.
    pub const fn next(self) -> Option<Self> {
        match self.0.checked_add(1) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }
}

impl fmt::Display for RoundNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for RoundNumber {
    type Err = ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(Self)
    }
}

fixed_bytes! {
    /// 16 random bytes that make a signed envelope unique; the replay guard
    /// refuses a second envelope from the same signer with the same nonce.
    Nonce, 16
}

impl Nonce {
    /// Fresh random bytes from a cryptographically secure `rng` (for example
    /// `rand::rng()`). A nonce only has to be unique per signing key within
    /// the replay window; 128 random bits make a collision negligible without
    /// the sender keeping any state.
    pub fn generate<R: ed25519_dalek::rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }
}

fixed_bytes! {
    /// BLAKE3 hash (32 bytes) of some content: an update payload, a global
    /// model. Prints as 64 lower-case hex digits.
    ContentHash, 32
}

impl ContentHash {
    /// Hashes `bytes` with BLAKE3.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
}

fixed_bytes! {
    /// Identifies one trainer's submission to one round: a hash of the task,
    /// the round, the trainer's key and the payload's content hash, so the same
    /// upload always gets the same id and two uploads never share one.
    SubmissionId, 32
}

impl SubmissionId {
    /// BLAKE3 key-derivation context; changing it changes every id.
    const CONTEXT: &'static str = "starling 2025-01 submission id v1";

    /// Derives the id of `trainer`'s submission of `payload` to `round` of `task`.
    pub fn derive(task: TaskId, round: RoundNumber, trainer: &PublicKey, payload: &ContentHash) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(Self::CONTEXT);
        hasher.update(&task.get().to_le_bytes());
        hasher.update(&round.get().to_le_bytes());
        hasher.update(trainer.as_bytes());
        hasher.update(payload.as_bytes());
        Self(*hasher.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn content_hash_is_blake3() {
        // BLAKE3 of the empty input, from the reference test vectors.
        assert_eq!(
            ContentHash::of(b"").to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn generated_nonces_come_from_the_rng() {
        use ed25519_dalek::rand_core::{TryCryptoRng, TryRng};
        use std::convert::Infallible;

        /// Deterministic stand-in for a CSPRNG.
        struct Counter(u8);
        impl TryRng for Counter {
            type Error = Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Infallible> {
                Ok(u32::from(self.0))
            }
            fn try_next_u64(&mut self) -> Result<u64, Infallible> {
                Ok(u64::from(self.0))
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
                for byte in dst {
                    self.0 = self.0.wrapping_add(1);
                    *byte = self.0;
                }
                Ok(())
            }
        }
        impl TryCryptoRng for Counter {}

        let mut rng = Counter(0);
        let first = Nonce::generate(&mut rng);
        let second = Nonce::generate(&mut rng);
        assert_eq!(first.as_bytes()[0], 1);
        assert_eq!(second.as_bytes()[0], 17);
    }

    #[test]
    fn round_number_stops_at_the_top() {
        assert_eq!(RoundNumber::FIRST.next(), Some(RoundNumber::new(1)));
        assert_eq!(RoundNumber::new(u32::MAX).next(), None);
    }

    #[test]
    fn hex_types_are_hex_in_json_and_raw_in_postcard() {
        let hash = ContentHash::of(b"starling");
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{hash}\""));
        assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), hash);

        let wire = postcard::to_allocvec(&hash).unwrap();
        assert_eq!(wire.len(), 1 + 32, "length prefix plus the raw bytes");
        assert_eq!(postcard::from_bytes::<ContentHash>(&wire).unwrap(), hash);
    }

    #[test]
    fn postcard_refuses_wrong_lengths() {
        let short = postcard::to_allocvec(&[7u8; 15].as_slice()).unwrap();
        assert!(postcard::from_bytes::<Nonce>(&short).is_err());
    }

    #[test]
    fn submission_ids_differ_per_field() {
        let key = PublicKey::from_bytes([1; 32]);
        let other_key = PublicKey::from_bytes([2; 32]);
        let hash = ContentHash::of(b"update");
        let base = SubmissionId::derive(TaskId::new(1), RoundNumber::new(2), &key, &hash);
        assert_eq!(base, SubmissionId::derive(TaskId::new(1), RoundNumber::new(2), &key, &hash));
        assert_ne!(base, SubmissionId::derive(TaskId::new(2), RoundNumber::new(2), &key, &hash));
        assert_ne!(base, SubmissionId::derive(TaskId::new(1), RoundNumber::new(3), &key, &hash));
        assert_ne!(base, SubmissionId::derive(TaskId::new(1), RoundNumber::new(2), &other_key, &hash));
        assert_ne!(base, SubmissionId::derive(TaskId::new(1), RoundNumber::new(2), &key, &ContentHash::of(b"x")));
    }

    proptest! {
        #[test]
        fn ids_round_trip_through_text_and_postcard(task in any::<u64>(), round in any::<u32>(), bytes in any::<[u8; 32]>(), nonce in any::<[u8; 16]>()) {
            let task = TaskId::new(task);
            let round = RoundNumber::new(round);
            let hash = ContentHash::from_bytes(bytes);
            let nonce = Nonce::from_bytes(nonce);
            prop_assert_eq!(task.to_string().parse::<TaskId>().unwrap(), task);
            prop_assert_eq!(round.to_string().parse::<RoundNumber>().unwrap(), round);
            prop_assert_eq!(hash.to_string().parse::<ContentHash>().unwrap(), hash);
            prop_assert_eq!(nonce.to_string().parse::<Nonce>().unwrap(), nonce);
            let wire = postcard::to_allocvec(&(task, round, hash, nonce)).unwrap();
            prop_assert_eq!(postcard::from_bytes::<(TaskId, RoundNumber, ContentHash, Nonce)>(&wire).unwrap(), (task, round, hash, nonce));
        }
    }
}
