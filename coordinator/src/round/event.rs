//! What the shell tells the machine.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use starling_protocol::{ContentHash, PublicKey, RoundNumber, SubmissionId};

/// Something that happened, fed to [`crate::round::RoundMachine::handle`]
/// together with `now`.
///
/// Events that report the result of an [`crate::round::Action`]
/// ([`Event::AggregationFinished`], [`Event::SettlementCommitted`]) and the
/// arrival of an already recorded submission or score are idempotent: handing
/// the machine one it has already applied returns `Ok` with no actions and
/// changes nothing, so a restarted shell may re-deliver whatever it is unsure
/// about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The task begins: round 0 opens at `now`.
    TaskStarted {
        /// Hash of the initial global model.
        initial_model: ContentHash,
        /// Trainers and validators with their effective stakes, as the ledger
        /// holds them now. The machine keeps only those at or above the task's
        /// minimum stakes.
        participants: Participants,
    },
    /// A trainer's upload arrived and went through the pre-storage checks.
    SubmissionReceived {
        /// The round the trainer submitted to.
        round: RoundNumber,
        /// The trainer's key (the envelope's verified signer).
        trainer: PublicKey,
        /// The submission's id; must equal [`SubmissionId::derive`] of the
        /// task, round, trainer and payload hash.
        submission: SubmissionId,
        /// BLAKE3 hash of the update payload.
        payload: ContentHash,
        /// Training examples the trainer reports using: its weight in
        /// sample-weighted rules. Must be `≥ 1` for a payload that passed.
        samples: u64,
        /// Whether the payload passed the checks done before storing it.
        check: PayloadCheck,
    },
    /// A validator's score for one submission arrived (signature verified).
    ScoreReceived {
        /// The round the score belongs to.
        round: RoundNumber,
        /// The validator's key.
        validator: PublicKey,
        /// The submission scored.
        submission: SubmissionId,
        /// What the validator measured.
        values: ScoreValues,
    },
    /// The aggregation requested by [`crate::round::Action::RequestAggregation`]
    /// ended.
    AggregationFinished {
        /// The round whose submissions were aggregated.
        round: RoundNumber,
        /// The new global model, or why there is none.
        outcome: AggregationOutcome,
    },
    /// The ledger committed the settlement requested by
    /// [`crate::round::Action::RequestSettlement`] (or refused it as already
    /// settled, which means the same).
    SettlementCommitted {
        /// The round settled.
        round: RoundNumber,
        /// Trainers and validators with their effective stakes after this
        /// settlement, for sampling the next round; `None` keeps this round's.
        next: Option<Participants>,
    },
    /// Time passed; closes a phase whose deadline is at or before `now`.
    Tick,
}

/// The kind of an [`Event`], without its data: used in refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// [`Event::TaskStarted`].
    TaskStarted,
    /// [`Event::SubmissionReceived`].
    SubmissionReceived,
    /// [`Event::ScoreReceived`].
    ScoreReceived,
    /// [`Event::AggregationFinished`].
    AggregationFinished,
    /// [`Event::SettlementCommitted`].
    SettlementCommitted,
    /// [`Event::Tick`].
    Tick,
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::TaskStarted { .. } => EventKind::TaskStarted,
            Self::SubmissionReceived { .. } => EventKind::SubmissionReceived,
            Self::ScoreReceived { .. } => EventKind::ScoreReceived,
            Self::AggregationFinished { .. } => EventKind::AggregationFinished,
            Self::SettlementCommitted { .. } => EventKind::SettlementCommitted,
            Self::Tick => EventKind::Tick,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TaskStarted => "task started",
            Self::SubmissionReceived => "submission",
            Self::ScoreReceived => "score",
            Self::AggregationFinished => "aggregation result",
            Self::SettlementCommitted => "settlement commit",
            Self::Tick => "tick",
        })
    }
}

/// The nodes that may take part in a round, with their effective stakes
/// (µSTAR times the lock multiplier, as the ledger computes them).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Participants {
    /// Trainer keys and their effective trainer stakes.
    pub trainers: BTreeMap<PublicKey, u128>,
    /// Validator keys and their effective validator stakes.
    pub validators: BTreeMap<PublicKey, u128>,
}

impl Participants {
    /// Only the eligible ones: trainers with at least `min_trainer` and
    /// validators with at least `min_validator` and more than zero (a
    /// validator without stake could not weigh in on consensus).
    pub fn eligible(&self, min_trainer: u64, min_validator: u64) -> Self {
        Self {
            trainers: self
                .trainers
                .iter()
                .filter(|&(_, &stake)| stake >= u128::from(min_trainer))
                .map(|(&k, &s)| (k, s))
                .collect(),
            validators: self
                .validators
                .iter()
                .filter(|&(_, &stake)| stake > 0 && stake >= u128::from(min_validator))
                .map(|(&k, &s)| (k, s))
                .collect(),
        }
    }
}

/// The outcome of the checks done before a payload is stored (envelope,
/// signature, nonce, shapes, finiteness, norm bound).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayloadCheck {
    /// Every check passed; the payload is stored under its hash.
    Passed,
    /// A check failed: the submission counts as the trainer's one submission
    /// of the round, is rejected and its trainer slashed.
    Failed {
        /// What failed, for the record and the trainer.
        reason: String,
    },
}

/// What a validator measured for one submission: the candidate model
/// `w_global + Δ` on its held-out set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreValues {
    /// The candidate's accuracy, in `[0, 1]`: the value consensus runs on.
    pub accuracy: f64,
    /// The candidate's mean loss, finite and `≥ 0`; recorded, not agreed on.
    pub loss: f64,
    /// The candidate's accuracy minus the global model's on the same data, in
    /// `[-1, 1]`; recorded, not agreed on.
    pub improvement: f64,
}

impl ScoreValues {
    /// The first field out of range, with its value.
    pub(crate) fn problem(&self) -> Option<(&'static str, f64)> {
        // Each test is written so that NaN fails it.
        if !(0.0..=1.0).contains(&self.accuracy) {
            Some(("accuracy", self.accuracy))
        } else if !(self.loss.is_finite() && self.loss >= 0.0) {
            Some(("loss", self.loss))
        } else if !(-1.0..=1.0).contains(&self.improvement) {
            Some(("improvement", self.improvement))
        } else {
            None
        }
    }
}

/// How an aggregation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggregationOutcome {
    /// The new global model is stored under this hash.
    Succeeded {
        /// Hash of the new global model.
        model: ContentHash,
    },
    /// No model came out (for example every update was clipped away, or the
    /// rule's assumptions did not hold); the global model stays as it was and
    /// the round still settles.
    Failed {
        /// Why, for the record.
        reason: String,
    },
}
