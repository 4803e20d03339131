//! A round's verdict as the rest of the coordinator reads it: what agreement
//! decided for every submission and every validator, with the stakes it was
//! decided with.
//!
//! The machine decides once, when validation closes
//! ([`crate::round::RoundMachine`], `agreement.rs`); these records are that
//! decision, copied out. The shell stores them when the round settles, and
//! the dashboard shows them, so what a page says is what was paid, whatever
//! the stakes have done since.

use serde::{Deserialize, Serialize};
use starling_protocol::{PublicKey, RoundNumber, SubmissionId, TaskId};

use crate::round::machine::RoundMachine;
use crate::round::state::{RoundState, Verdict};

/// Everything agreement decided in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundVerdicts {
    /// The task.
    pub task: TaskId,
    /// The round.
    pub round: RoundNumber,
    /// κ of the consensus, in parts per million.
    pub kappa_ppm: u32,
    /// The harm threshold the round was judged with, if any.
    pub harm_threshold: Option<f64>,
    /// One entry per submission of the round (valid or not), in trainer key
    /// order.
    pub submissions: Vec<SubmissionVerdict>,
    /// One entry per validator eligible in the round (the stake table the
    /// consensus weighed), in key order.
    pub validators: Vec<ValidatorVerdict>,
}

/// What became of one submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionVerdict {
    /// The submission.
    pub submission: SubmissionId,
    /// Who submitted it.
    pub trainer: PublicKey,
    /// Training examples it reported: its weight in sample-weighted rules.
    pub samples: u64,
    /// The stake-weighted consensus of its validators' accuracies, when it
    /// was resolved; `None` for an invalid payload or an unresolved one.
    pub consensus: Option<f64>,
    /// The decision.
    pub outcome: VerdictOutcome,
}

/// The decision on one submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerdictOutcome {
    /// Aggregated (if the rule had enough updates) and paid.
    Accepted,
    /// Its trainer was slashed.
    Rejected {
        /// Why, in words a trainer can act on.
        reason: String,
    },
    /// Validators holding a strict majority of the round's validator stake
    /// did not score it: neither aggregated, paid nor slashed.
    Unresolved,
}

/// One validator's part in a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidatorVerdict {
    /// The validator.
    pub validator: PublicKey,
    /// Its effective stake (own plus delegated, lock multipliers applied) as
    /// the round weighed it, in µSTAR.
    pub stake: u128,
    /// Scores it returned in the round.
    pub scores: u32,
    /// Its agreement with the consensus in parts per million, when it scored
    /// a resolved submission; `None` otherwise (it is then neither paid nor
    /// slashed for the round).
    pub agreement_ppm: Option<u32>,
}

impl RoundMachine {
    /// The current round's verdict, once validation has closed (the round is
    /// aggregating, settling, or the task's last round has finished); `None`
    /// before, and before the task starts.
    pub fn verdicts(&self) -> Option<RoundVerdicts> {
        let running = self.running()?;
        let round = &running.round;
        let verdict = round.verdict.as_ref()?;
        Some(RoundVerdicts {
            task: self.task(),
            round: round.number,
            kappa_ppm: self.config().kappa_ppm,
            harm_threshold: self.config().harm_threshold,
            submissions: submission_verdicts(round, verdict),
            validators: running
                .participants
                .validators
                .iter()
                .map(|(&validator, &stake)| ValidatorVerdict {
                    validator,
                    stake,
                    scores: scores_by(round, &validator),
                    agreement_ppm: verdict.validators.iter().find(|(v, _)| *v == validator).map(|&(_, ppm)| ppm),
                })
                .collect(),
        })
    }
}

fn submission_verdicts(round: &RoundState, verdict: &Verdict) -> Vec<SubmissionVerdict> {
    round
        .submissions
        .iter()
        .map(|(&trainer, submission)| {
            let (consensus, outcome) = if let Some(a) = verdict.accepted.iter().find(|a| a.trainer == trainer) {
                (Some(a.score), VerdictOutcome::Accepted)
            } else if let Some(r) = verdict.rejected.iter().find(|r| r.trainer == trainer) {
                (r.score, VerdictOutcome::Rejected { reason: r.reason.clone() })
            } else {
                (None, VerdictOutcome::Unresolved)
            };
            SubmissionVerdict { submission: submission.id, trainer, samples: submission.samples, consensus, outcome }
        })
        .collect()
}

/// How many scores `validator` returned in `round`.
fn scores_by(round: &RoundState, validator: &PublicKey) -> u32 {
    let count = round
        .validation
        .as_ref()
        .map_or(0, |v| v.scores.values().filter(|by_validator| by_validator.contains_key(validator)).count());
    u32::try_from(count).unwrap_or(u32::MAX)
}
