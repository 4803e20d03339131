//! Seeded, reproducible choices: which trainers a round samples, and the
//! random order validators are assigned in.
//!
//! Only the ChaCha20 keystream is used (no `rand` distribution), so a sample
//! stays reproducible across dependency upgrades: anyone holding the task's
//! seed can recompute who was sampled.

use std::collections::BTreeSet;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use starling_protocol::{MAX_SAMPLED_TRAINERS, PublicKey, RoundNumber, TaskId};

/// Separates the random streams drawn for different purposes in one round.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    /// Sampling trainers.
    Trainers = 1,
    /// Ordering validators for assignment.
    Validators = 2,
}

/// The generator for `purpose` in `round` of `task` under `seed`.
pub(crate) fn stream(seed: u64, task: TaskId, round: RoundNumber, purpose: Purpose) -> ChaCha20Rng {
    // ChaCha20 is a PRF of its key, so laying the inputs out side by side is
    // enough: distinct inputs give independent streams.
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&task.get().to_le_bytes());
    key[16..20].copy_from_slice(&round.get().to_le_bytes());
    key[20] = purpose as u8;
    ChaCha20Rng::from_seed(key)
}

/// A uniform integer in `0..bound` (`bound ≥ 1`), without modulo bias.
pub(crate) fn below(rng: &mut ChaCha20Rng, bound: usize) -> usize {
    let bound = bound.max(1) as u64;
    // Values below `threshold` would favour small results; `2⁶⁴ − threshold`
    // is a multiple of `bound`.
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let x = rng.next_u64();
        if x >= threshold {
            return (x % bound) as usize;
        }
    }
}

/// Shuffles the first `take` positions of `items` (a partial Fisher–Yates):
/// afterwards `items[..take]` is a uniform random sample in random order.
pub(crate) fn shuffle_prefix<T>(rng: &mut ChaCha20Rng, items: &mut [T], take: usize) {
    let n = items.len();
    for i in 0..take.min(n) {
        let j = i + below(rng, n - i);
        items.swap(i, j);
    }
}

/// How many of `eligible` trainers a round samples with fraction `C`:
/// `max(1, ⌊C·n⌋)` (McMahan et al. 2017), never more than `n` nor
/// [`MAX_SAMPLED_TRAINERS`] (the sample travels in every round announcement),
/// and zero only when nobody is eligible. A tolerance of 10⁻⁹ keeps `0.3 · 10`
/// at 3 despite binary rounding.
pub fn sample_size(eligible: usize, fraction: f64) -> usize {
    if eligible == 0 {
        return 0;
    }
    let raw = fraction * eligible as f64 + 1e-9;
    // `as` saturates: NaN gives 0 and huge values give usize::MAX.
    (raw.floor() as usize).clamp(1, eligible.min(MAX_SAMPLED_TRAINERS))
}

/// The trainers sampled for `round` of `task`: [`sample_size`] of `eligible`,
/// drawn uniformly without replacement from a ChaCha20 stream keyed by
/// `seed`, the task and the round. Same inputs, same sample.
pub fn sample_trainers(
    seed: u64,
    task: TaskId,
    round: RoundNumber,
    eligible: &BTreeSet<PublicKey>,
    fraction: f64,
) -> BTreeSet<PublicKey> {
    let take = sample_size(eligible.len(), fraction);
    let mut pool: Vec<PublicKey> = eligible.iter().copied().collect();
    let mut rng = stream(seed, task, round, Purpose::Trainers);
    shuffle_prefix(&mut rng, &mut pool, take);
    pool.truncate(take);
    pool.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u8) -> BTreeSet<PublicKey> {
        (0..n).map(|i| PublicKey::from_bytes([i; 32])).collect()
    }

    #[test]
    fn sample_size_follows_fedavg() {
        assert_eq!(sample_size(0, 0.5), 0);
        assert_eq!(sample_size(10, 0.01), 1);
        assert_eq!(sample_size(10, 0.3), 3);
        assert_eq!(sample_size(10, 0.35), 3);
        assert_eq!(sample_size(100, 0.1), 10);
        assert_eq!(sample_size(7, 1.0), 7);
        assert_eq!(sample_size(7, f64::NAN), 1);
        assert_eq!(sample_size(10_000, 0.1), 1_000);
        assert_eq!(sample_size(10_000, 0.5), MAX_SAMPLED_TRAINERS);
        assert_eq!(sample_size(usize::MAX, 1.0), MAX_SAMPLED_TRAINERS);
        for n in 1..200 {
            for c in [0.1, 0.2, 0.3, 0.7, 0.9] {
                let exact = (n as f64 * c * 1e6).round() / 1e6;
                assert_eq!(sample_size(n, c), (exact.floor() as usize).max(1), "n={n} c={c}");
            }
        }
    }

    #[test]
    fn same_inputs_same_sample() {
        let eligible = keys(50);
        let task = TaskId::new(9);
        let a = sample_trainers(42, task, RoundNumber::new(3), &eligible, 0.2);
        let b = sample_trainers(42, task, RoundNumber::new(3), &eligible, 0.2);
        assert_eq!(a, b);
        assert_eq!(a.len(), 10);
        assert!(a.is_subset(&eligible));
        // Another round, seed or task gives another sample (checked, not assumed: with
        // C(50, 10) ≈ 10¹⁰ samples a collision here would be a bug).
        assert_ne!(a, sample_trainers(42, task, RoundNumber::new(4), &eligible, 0.2));
        assert_ne!(a, sample_trainers(43, task, RoundNumber::new(3), &eligible, 0.2));
        assert_ne!(a, sample_trainers(42, TaskId::new(10), RoundNumber::new(3), &eligible, 0.2));
    }

    #[test]
    fn sample_is_pinned() {
        // Pins the algorithm: a change here breaks every audit of past rounds.
        let sample = sample_trainers(1, TaskId::new(1), RoundNumber::FIRST, &keys(10), 0.3);
        let bytes: Vec<u8> = sample.iter().map(|k| k.as_bytes()[0]).collect();
        assert_eq!(bytes.len(), 3);
        assert_eq!(bytes, PINNED.to_vec());
    }

    /// The first byte of each key sampled by `sample_is_pinned`, as an
    /// independent implementation computes it: Python's `cryptography`
    /// ChaCha20 keystream (key laid out as in `stream`, zero nonce and
    /// counter) read as little-endian u64s, through the same rejection
    /// sampling and partial Fisher–Yates.
    const PINNED: [u8; 3] = [1, 2, 9];

    #[test]
    fn every_trainer_gets_sampled_about_equally() {
        // 2000 rounds of 2 out of 10: each trainer is expected 400 times; a
        // uniform sampler lands within ±25% with overwhelming probability.
        let eligible = keys(10);
        let mut counts = [0u32; 10];
        for round in 0..2000 {
            for key in sample_trainers(7, TaskId::new(1), RoundNumber::new(round), &eligible, 0.2) {
                counts[usize::from(key.as_bytes()[0])] += 1;
            }
        }
        for count in counts {
            assert!((300..=500).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = stream(0, TaskId::new(0), RoundNumber::FIRST, Purpose::Validators);
        for bound in 1..100 {
            assert!(below(&mut rng, bound) < bound);
        }
    }
}
