//! The phases one round moves through, in order (see ARCHITECTURE.md, "How
//! one round flows").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where a round stands. A round only ever moves one step forward, from
/// [`RoundPhase::Open`] to [`RoundPhase::Finished`].
///
/// Postcard encodes the phase by position, so the order here is part of the
/// wire format; the text form (`"open"`, `"training"`, …) is what storage and
/// the JSON API use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundPhase {
    /// Trainers are being sampled and the round published with the global model's hash.
    Open,
    /// Sampled trainers train locally and upload signed updates.
    Training,
    /// Validators score the submissions on held-out data.
    Validating,
    /// Stake-weighted consensus scores are computed per submission.
    Agreeing,
    /// Accepted updates are combined into the next global model.
    Aggregating,
    /// Rewards and slashes are paid and the new global model recorded.
    Settling,
    /// The round is over; nothing about it changes any more.
    Finished,
}

impl RoundPhase {
    /// Every phase, in order.
    pub const ALL: [RoundPhase; 7] = [
        Self::Open,
        Self::Training,
        Self::Validating,
        Self::Agreeing,
        Self::Aggregating,
        Self::Settling,
        Self::Finished,
    ];

    /// The phase that follows this one, or `None` after [`RoundPhase::Finished`].
    pub const fn next(self) -> Option<RoundPhase> {
        match self {
            Self::Open => Some(Self::Training),
            Self::Training => Some(Self::Validating),
            Self::Validating => Some(Self::Agreeing),
            Self::Agreeing => Some(Self::Aggregating),
            Self::Aggregating => Some(Self::Settling),
            Self::Settling => Some(Self::Finished),
            Self::Finished => None,
        }
    }

    /// Whether the round is over.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Finished)
    }

    /// Checks that moving from this phase to `to` is the single allowed step,
    /// and returns `to`.
    ///
    /// Staying put is refused too: a caller that "advances" a round twice has
    /// a bug (settling twice must be impossible).
    pub fn transition(self, to: RoundPhase) -> Result<RoundPhase, PhaseError> {
        if self.next() == Some(to) { Ok(to) } else { Err(PhaseError::InvalidTransition { from: self, to }) }
    }

    /// The phase's name as storage and the JSON API spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Training => "training",
            Self::Validating => "validating",
            Self::Agreeing => "agreeing",
            Self::Aggregating => "aggregating",
            Self::Settling => "settling",
            Self::Finished => "finished",
        }
    }
}

impl fmt::Display for RoundPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RoundPhase {
    type Err = PhaseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|phase| phase.as_str() == text)
            .ok_or_else(|| PhaseError::UnknownPhase { text: text.chars().take(32).collect() })
    }
}

/// A refused phase change or an unreadable phase name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhaseError {
    /// The round cannot move from `from` to `to`; only the next phase is allowed.
    #[error("a round cannot move from {from} to {to}")]
    InvalidTransition {
        /// The current phase.
        from: RoundPhase,
        /// The requested phase.
        to: RoundPhase,
    },
    /// The text names no phase.
    #[error("unknown round phase `{text}`")]
    UnknownPhase {
        /// The text that was read (at most 32 characters of it).
        text: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_advance_one_step_at_a_time() {
        for pair in RoundPhase::ALL.windows(2) {
            assert_eq!(pair[0].next(), Some(pair[1]));
            assert_eq!(pair[0].transition(pair[1]), Ok(pair[1]));
            assert!(pair[0] < pair[1]);
        }
        assert_eq!(RoundPhase::Finished.next(), None);
        assert!(RoundPhase::Finished.is_terminal());
        assert!(!RoundPhase::Settling.is_terminal());
    }

    #[test]
    fn skipping_repeating_and_going_back_are_refused() {
        for from in RoundPhase::ALL {
            for to in RoundPhase::ALL {
                if from.next() != Some(to) {
                    assert_eq!(from.transition(to), Err(PhaseError::InvalidTransition { from, to }));
                }
            }
        }
        assert_eq!(
            RoundPhase::Settling.transition(RoundPhase::Settling).unwrap_err().to_string(),
            "a round cannot move from settling to settling"
        );
    }

    #[test]
    fn text_and_serde_forms_agree() {
        for phase in RoundPhase::ALL {
            assert_eq!(phase.to_string().parse::<RoundPhase>(), Ok(phase));
            assert_eq!(serde_json::to_string(&phase).unwrap(), format!("\"{phase}\""));
            let wire = postcard::to_allocvec(&phase).unwrap();
            assert_eq!(postcard::from_bytes::<RoundPhase>(&wire).unwrap(), phase);
        }
        assert!(matches!("closed".parse::<RoundPhase>(), Err(PhaseError::UnknownPhase { .. })));
    }
}
