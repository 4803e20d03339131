//! Coordinator-side parameters of a task's rounds that
//! [`TaskSpec`](starling_protocol::TaskSpec) does not carry.

use serde::{Deserialize, Serialize};
use starling_protocol::TaskSpecError;
use starling_staking::consensus::DEFAULT_KAPPA;
use thiserror::Error;

/// How a task's rounds are run beyond what its
/// [`TaskSpec`](starling_protocol::TaskSpec) fixes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoundConfig {
    /// The task's random seed: with the task id and the round number it
    /// decides, reproducibly, which trainers are sampled and (under
    /// [`AssignmentPolicy::StakeMajority`]) which validators score what.
    pub seed: u64,
    /// κ of the consensus, in parts per million, `1 ..= 1_000_000`
    /// (500 000, the stake-weighted median, by default).
    pub kappa_ppm: u32,
    /// A submission whose consensus score (accuracy, in `[0, 1]`) is strictly
    /// below this is rejected as harmful, and its trainer slashed. `None`
    /// (the default) rejects only invalid payloads. `TaskSpec` has no such
    /// field yet, so the shell supplies it here.
    pub harm_threshold: Option<f64>,
    /// Which validators each submission is assigned to.
    pub assignment: AssignmentPolicy,
}

/// Which validators a submission is assigned to. Consensus only counts the
/// validators that scored a submission, so every policy assigns a set holding
/// a strict majority of the round's validator stake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AssignmentPolicy {
    /// Every eligible validator scores every submission (the default).
    #[default]
    AllValidators,
    /// Per submission, validators in a seeded random order are taken until
    /// they hold strictly more than half of the round's validator stake: less
    /// work per validator, the same majority guarantee.
    StakeMajority,
}

impl RoundConfig {
    /// The defaults (κ = ½, no harm threshold, every validator scores every
    /// submission) with the task's `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed, kappa_ppm: DEFAULT_KAPPA.get(), harm_threshold: None, assignment: AssignmentPolicy::AllValidators }
    }

    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.kappa_ppm == 0 || self.kappa_ppm > 1_000_000 {
            return Err(ConfigError::KappaOutOfRange { ppm: self.kappa_ppm });
        }
        match self.harm_threshold {
            // Written so that NaN fails too.
            Some(threshold) if !(0.0..=1.0).contains(&threshold) => Err(ConfigError::HarmThreshold { threshold }),
            _ => Ok(()),
        }
    }
}

/// Why a [`crate::round::RoundMachine`] could not be built.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// κ must lie in `(0, 1]`.
    #[error("consensus kappa must be in 1..=1000000 ppm, got {ppm}")]
    KappaOutOfRange {
        /// The rejected κ in parts per million.
        ppm: u32,
    },
    /// The harm threshold is an accuracy and must lie in `[0, 1]`.
    #[error("harm threshold must be in [0, 1], got {threshold}")]
    HarmThreshold {
        /// The rejected threshold.
        threshold: f64,
    },
    /// The task specification fails its own checks.
    #[error("task spec: {0}")]
    Spec(#[from] TaskSpecError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_are_enforced() {
        let config = RoundConfig::new(7);
        assert_eq!(config.kappa_ppm, 500_000);
        assert_eq!(config.validate(), Ok(()));
        for ppm in [0, 1_000_001] {
            let bad = RoundConfig { kappa_ppm: ppm, ..config };
            assert_eq!(bad.validate(), Err(ConfigError::KappaOutOfRange { ppm }));
        }
        for threshold in [-0.1, 1.5, f64::NAN] {
            let bad = RoundConfig { harm_threshold: Some(threshold), ..config };
            assert!(matches!(bad.validate(), Err(ConfigError::HarmThreshold { .. })));
        }
        assert_eq!(RoundConfig { harm_threshold: Some(0.1), ..config }.validate(), Ok(()));
    }
}
