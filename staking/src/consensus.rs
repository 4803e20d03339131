//! Validator consensus, Yuma-style.
//!
//! For each submission, the consensus score is the stake-weighted κ-quantile
//! of the scores it received, taken from the top: the highest score `x` such
//! that validators holding at least κ of the stake that scored it gave `x` or
//! more. With κ = ½, a coalition holding less than half of that stake can
//! neither raise the consensus above what the rest support nor (as the rest
//! hold more than half) lower it below the score they all agree on.
//!
//! A validator's agreement is the share of its score mass that survives
//! clipping each of its scores to the consensus: `Σ min(s, c) / Σ s`.
//! Over-scoring (the way to favour a colluding trainer) costs agreement;
//! scoring at or below consensus does not. A validator whose scores are all
//! zero agrees fully. Scores must be finite and non-negative (use accuracy, or
//! improvement clamped at zero).

use std::collections::BTreeMap;

use starling_protocol::PublicKey;

use crate::params::Ppm;

/// Why consensus could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConsensusError {
    /// A score is NaN, infinite or negative.
    #[error("score {score} from validator {validator} is not a finite non-negative number")]
    InvalidScore {
        /// The validator.
        validator: PublicKey,
        /// The score it sent.
        score: f64,
    },
    /// A score came from a key that is not in the stake table.
    #[error("validator {validator} has no stake entry")]
    UnknownValidator {
        /// The key.
        validator: PublicKey,
    },
    /// A validator scored the same submission twice.
    #[error("validator {validator} scored submission {submission} twice")]
    DuplicateScore {
        /// The validator.
        validator: PublicKey,
        /// The submission's index.
        submission: usize,
    },
}

/// The consensus of one round.
#[derive(Debug, Clone, PartialEq)]
pub struct Consensus {
    /// Per submission, in input order: the consensus score, or `None` when no
    /// validator with stake scored it.
    pub scores: Vec<Option<f64>>,
    /// Per validator that scored anything, its agreement, rounded to the
    /// nearest ppm: scores are floats, and flooring an inexact quotient would
    /// leave exact ratios (like 7/16) one ppm short.
    pub agreement: BTreeMap<PublicKey, Ppm>,
}

/// Computes consensus scores and agreement.
///
/// `stakes` gives each validator's effective stake; `submissions[j]` lists
/// the `(validator, score)` pairs submission `j` received. Only the
/// validators that scored a submission weigh in on it. `kappa` is κ (½ by
/// default, [`DEFAULT_KAPPA`]).
pub fn consensus(
    stakes: &BTreeMap<PublicKey, u128>,
    submissions: &[Vec<(PublicKey, f64)>],
    kappa: Ppm,
) -> Result<Consensus, ConsensusError> {
    let mut scores = Vec::with_capacity(submissions.len());
    // Per validator: (score mass, clipped mass).
    let mut mass: BTreeMap<PublicKey, (f64, f64)> = BTreeMap::new();
    for (index, received) in submissions.iter().enumerate() {
        let mut weighted = Vec::with_capacity(received.len());
        for (position, &(validator, score)) in received.iter().enumerate() {
            if !score.is_finite() || score < 0.0 {
                return Err(ConsensusError::InvalidScore { validator, score });
            }
            let stake = *stakes.get(&validator).ok_or(ConsensusError::UnknownValidator { validator })?;
            if received[..position].iter().any(|(v, _)| *v == validator) {
                return Err(ConsensusError::DuplicateScore { validator, submission: index });
            }
            weighted.push((score, stake));
        }
        let consensus = quantile_from_top(&mut weighted, kappa);
        if let Some(c) = consensus {
            for &(validator, score) in received {
                let entry = mass.entry(validator).or_insert((0.0, 0.0));
                entry.0 += score;
                entry.1 += score.min(c);
            }
        }
        scores.push(consensus);
    }
    let agreement = mass
        .into_iter()
        .map(|(validator, (total, clipped))| {
            let share = if total > 0.0 { (clipped / total * 1e6).round().clamp(0.0, 1e6) as u32 } else { 1_000_000 };
            (validator, Ppm::new(share).unwrap_or(Ppm::ONE))
        })
        .collect();
    Ok(Consensus { scores, agreement })
}

/// κ = ½: the stake-weighted median.
pub const DEFAULT_KAPPA: Ppm = match Ppm::new(500_000) {
    Ok(kappa) => kappa,
    Err(_) => Ppm::ZERO,
};

/// The highest score backed by at least κ of the stake, or `None` when the
/// stake is zero. Compared in integers: `backing · 10⁶ ≥ κ · total`.
fn quantile_from_top(weighted: &mut [(f64, u128)], kappa: Ppm) -> Option<f64> {
    let total: u128 = weighted.iter().map(|&(_, stake)| stake).sum();
    if total == 0 {
        return None;
    }
    weighted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let needed = total * u128::from(kappa.get());
    let mut backing = 0u128;
    for &(score, stake) in weighted.iter() {
        backing += stake;
        if backing * u128::from(Ppm::ONE.get()) >= needed && stake > 0 {
            return Some(score);
        }
    }
    weighted.last().map(|&(score, _)| score)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn stakes(list: &[(u8, u128)]) -> BTreeMap<PublicKey, u128> {
        list.iter().map(|&(k, s)| (key(k), s)).collect()
    }

    #[test]
    fn weighted_median_worked_example() {
        // Stakes 50/30/20 scoring 0.9/0.6/0.3: from the top, 0.9 has 50% ≥ κ·100.
        let s = stakes(&[(1, 50), (2, 30), (3, 20)]);
        let c = consensus(&s, &[vec![(key(1), 0.9), (key(2), 0.6), (key(3), 0.3)]], DEFAULT_KAPPA).unwrap();
        assert_eq!(c.scores, vec![Some(0.9)]);
        // Stakes 40/30/30: 0.9 has 40% < 50%, 0.9 or 0.6 has 70% ≥ 50% → 0.6.
        let s = stakes(&[(1, 40), (2, 30), (3, 30)]);
        let c = consensus(&s, &[vec![(key(1), 0.9), (key(2), 0.6), (key(3), 0.3)]], DEFAULT_KAPPA).unwrap();
        assert_eq!(c.scores, vec![Some(0.6)]);
        // Agreement: validator 1 keeps 0.6 of its 0.9 → 666_667 ppm (nearest); the others are at or below.
        assert_eq!(c.agreement[&key(1)], Ppm::new(666_667).unwrap());
        assert_eq!(c.agreement[&key(2)], Ppm::ONE);
        assert_eq!(c.agreement[&key(3)], Ppm::ONE);
    }

    #[test]
    fn agreement_sums_over_submissions() {
        // Two submissions; validator 3 (minority) over-scores both.
        let s = stakes(&[(1, 35), (2, 35), (3, 30)]);
        let subs =
            vec![vec![(key(1), 0.5), (key(2), 0.5), (key(3), 1.0)], vec![(key(1), 0.2), (key(2), 0.2), (key(3), 0.6)]];
        let c = consensus(&s, &subs, DEFAULT_KAPPA).unwrap();
        assert_eq!(c.scores, vec![Some(0.5), Some(0.2)]);
        // (0.5 + 0.2) / (1.0 + 0.6) = 0.4375.
        assert_eq!(c.agreement[&key(3)], Ppm::new(437_500).unwrap());
        assert_eq!(c.agreement[&key(1)], Ppm::ONE);
    }

    #[test]
    fn colluding_minority_cannot_move_any_consensus_score() {
        // Honest validators hold 51% of the stake and agree on each score; the
        // colluders (49%) try pushing every submission to the top, to zero and
        // to random values.
        let s = stakes(&[(1, 20), (2, 16), (3, 15), (10, 25), (11, 24)]);
        let honest = [0.81, 0.12, 0.55, 0.0];
        for attack in [|_: usize| 1e9, |_: usize| 0.0, |j: usize| [0.99, 0.98, 0.01, 0.7][j]] {
            let subs: Vec<_> = honest
                .iter()
                .enumerate()
                .map(|(j, &h)| vec![(key(1), h), (key(2), h), (key(3), h), (key(10), attack(j)), (key(11), attack(j))])
                .collect();
            let c = consensus(&s, &subs, DEFAULT_KAPPA).unwrap();
            assert_eq!(c.scores, honest.iter().map(|&h| Some(h)).collect::<Vec<_>>());
            for honest_key in [1, 2, 3] {
                assert_eq!(c.agreement[&key(honest_key)], Ppm::ONE);
            }
        }
        // The inflating colluders lose nearly all agreement.
        let subs: Vec<_> = honest
            .iter()
            .map(|&h| vec![(key(1), h), (key(2), h), (key(3), h), (key(10), 1.0), (key(11), 1.0)])
            .collect();
        let c = consensus(&s, &subs, DEFAULT_KAPPA).unwrap();
        // (0.81 + 0.12 + 0.55 + 0) / 4 = 0.37.
        assert_eq!(c.agreement[&key(10)], Ppm::new(370_000).unwrap());
        // …whereas a majority could: the same attack with 51% of stake wins.
        let s = stakes(&[(1, 20), (2, 16), (3, 13), (10, 26), (11, 25)]);
        let c = consensus(&s, &subs, DEFAULT_KAPPA).unwrap();
        assert_eq!(c.scores, vec![Some(1.0); 4]);
    }

    #[test]
    fn bad_scores_are_refused() {
        let s = stakes(&[(1, 1)]);
        for bad in [f64::NAN, f64::INFINITY, -0.5] {
            let err = consensus(&s, &[vec![(key(1), bad)]], DEFAULT_KAPPA).unwrap_err();
            assert!(matches!(err, ConsensusError::InvalidScore { .. }));
        }
        assert_eq!(
            consensus(&s, &[vec![(key(9), 0.5)]], DEFAULT_KAPPA),
            Err(ConsensusError::UnknownValidator { validator: key(9) })
        );
        assert_eq!(
            consensus(&s, &[vec![(key(1), 0.5), (key(1), 0.6)]], DEFAULT_KAPPA),
            Err(ConsensusError::DuplicateScore { validator: key(1), submission: 0 })
        );
    }

    #[test]
    fn unscored_or_stakeless_submissions_have_no_consensus() {
        let s = stakes(&[(1, 0), (2, 5)]);
        let c = consensus(&s, &[vec![], vec![(key(1), 0.4)]], DEFAULT_KAPPA).unwrap();
        assert_eq!(c.scores, vec![None, None]);
        assert!(c.agreement.is_empty());
    }
}
