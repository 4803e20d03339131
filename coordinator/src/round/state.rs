//! The serialisable state behind [`crate::round::RoundMachine`]: what one
//! round has recorded so far, and what earlier rounds left behind.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use starling_protocol::{ContentHash, PublicKey, RoundNumber, RoundPhase, SubmissionId};

use crate::round::event::{Participants, ScoreValues};
use crate::round::time::UnixMillis;

/// Everything a started task holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Running {
    /// The eligible participants of the current round (already filtered by
    /// the task's minimum stakes).
    pub(crate) participants: Participants,
    /// The current round.
    pub(crate) round: RoundState,
    /// One summary per settled round, oldest first.
    pub(crate) history: Vec<RoundSummary>,
}

/// The current round. At rest its phase is never `Open` or `Agreeing`: the
/// machine passes through both within one transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RoundState {
    pub(crate) number: RoundNumber,
    pub(crate) phase: RoundPhase,
    pub(crate) opened_at: UnixMillis,
    pub(crate) training_deadline: UnixMillis,
    /// The global model this round trains from.
    pub(crate) global_model: ContentHash,
    pub(crate) sampled: BTreeSet<PublicKey>,
    /// Submissions by trainer: at most one each.
    pub(crate) submissions: BTreeMap<PublicKey, Submission>,
    /// Set when training closes.
    pub(crate) validation: Option<Validation>,
    /// Set when validation closes.
    pub(crate) verdict: Option<Verdict>,
    /// Set when validation closes.
    pub(crate) aggregation: Option<AggregationStatus>,
}

/// One trainer's submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Submission {
    pub(crate) id: SubmissionId,
    pub(crate) payload: ContentHash,
    pub(crate) samples: u64,
    /// `None` when the payload passed its checks, else why it failed.
    pub(crate) invalid: Option<String>,
}

/// The validation phase of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Validation {
    pub(crate) deadline: UnixMillis,
    /// Validators assigned to each valid submission.
    pub(crate) assignments: BTreeMap<SubmissionId, BTreeSet<PublicKey>>,
    /// Scores received per submission.
    pub(crate) scores: BTreeMap<SubmissionId, BTreeMap<PublicKey, ScoreValues>>,
}

impl Validation {
    /// Whether every assigned score is in.
    pub(crate) fn complete(&self) -> bool {
        self.assignments.iter().all(|(id, validators)| self.scores.get(id).map_or(0, BTreeMap::len) == validators.len())
    }
}

/// The outcome of agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Verdict {
    /// Accepted submissions, best consensus score first, ties in trainer order.
    pub(crate) accepted: Vec<AcceptedSubmission>,
    /// Rejected submissions (invalid payload or below the harm threshold),
    /// in trainer key order.
    pub(crate) rejected: Vec<RejectedSubmission>,
    /// Trainers whose valid submissions lacked a scoring stake majority:
    /// neither paid nor slashed, not aggregated. In key order.
    pub(crate) unresolved: Vec<PublicKey>,
    /// Agreement in ppm of every validator that scored a resolved submission.
    pub(crate) validators: Vec<(PublicKey, u32)>,
}

/// An accepted submission with its consensus score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct AcceptedSubmission {
    pub(crate) trainer: PublicKey,
    pub(crate) submission: SubmissionId,
    pub(crate) payload: ContentHash,
    pub(crate) samples: u64,
    pub(crate) score: f64,
}

/// A rejected submission: its consensus score, if validators reached one,
/// and why it was rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RejectedSubmission {
    pub(crate) trainer: PublicKey,
    pub(crate) submission: SubmissionId,
    /// `None` for an invalid payload (never scored).
    pub(crate) score: Option<f64>,
    /// In words a trainer can act on.
    pub(crate) reason: String,
}

/// Where aggregation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AggregationStatus {
    /// Requested, no answer yet.
    Requested,
    /// Fewer accepted submissions than the rule needs (possibly none): nothing
    /// was requested and the global model stays.
    Skipped,
    /// The new global model.
    Produced(ContentHash),
    /// Aggregation failed; the global model stays.
    Failed(String),
}

/// What one settled round left behind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoundSummary {
    /// The round.
    pub round: RoundNumber,
    /// The global model it trained from.
    pub input_model: ContentHash,
    /// The global model after it (equal to `input_model` when nothing was
    /// aggregated).
    pub output_model: ContentHash,
    /// Accepted submissions.
    pub accepted: u32,
    /// Rejected submissions (slashed).
    pub rejected: u32,
    /// An estimate of `output_model`'s accuracy when the round produced a new
    /// model, else `None`. It comes from the consensus scores of the accepted
    /// candidates, no model being evaluated again: exact for rule `best` (the
    /// top candidate *is* the new model), their sample-weighted mean for every
    /// other rule.
    pub estimated_score: Option<f64>,
}
