//! Views of federated tasks: the list row, the detail page, its round
//! history, submissions and payouts.

use serde::Serialize;
use starling_protocol::{ContentHash, PublicKey, RoundNumber, RoundPhase, SubmissionId, TaskId, TaskSpec};

/// One row of `GET /api/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSummary {
    /// The task.
    pub id: TaskId,
    /// Architecture name from the model zoo (`TaskSpec::model.name`), e.g. `"mnist-cnn"`.
    pub model: String,
    /// Dataset name (`TaskSpec::data.dataset`), e.g. `"mnist"`.
    pub dataset: String,
    /// Phase of the current round ([`RoundPhase::Finished`] once the last round is over).
    pub phase: RoundPhase,
    /// The current round, counting from zero (the last one once the task is over).
    pub round: RoundNumber,
    /// Rounds the task runs in total (`TaskSpec::rounds`).
    pub rounds: u32,
    /// Trainers sampled into the current round.
    pub participants: u32,
    /// Reward pool not yet paid out, in µSTAR.
    pub pool_left: u64,
}

/// `GET /api/tasks/{id}`: the summary's fields at the top level, plus the spec,
/// the round history, the submissions of one round and the payouts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskDetail {
    /// The same fields as the list row.
    #[serde(flatten)]
    pub summary: TaskSummary,
    /// The task's specification as its creator submitted it.
    pub spec: TaskSpec,
    /// One record per round opened so far, oldest first.
    pub history: Vec<RoundRecord>,
    /// Submissions to the current round, or to the last one once the task is over.
    pub submissions: Vec<SubmissionView>,
    /// Rewards and slashes over the whole task, one entry per identity that had either.
    pub payouts: Vec<IdentityPayout>,
    /// The validators that scored anything, by mean agreement (highest first).
    pub validators: Vec<ValidatorStanding>,
}

/// How one validator did over a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidatorStanding {
    /// The validator.
    pub validator: PublicKey,
    /// Scores it returned, every round together.
    pub scores: u32,
    /// Settled rounds in which it scored a resolved submission.
    pub rounds: u32,
    /// Its mean agreement over those rounds: the share of its score mass that
    /// survived clipping to the consensus, in `[0, 1]`, as each round decided
    /// it when it settled (with that round's stakes).
    pub agreement: f64,
    /// Its agreement in the last round it scored in.
    pub last_agreement: f64,
    /// Rewards received on the task, in µSTAR.
    pub rewarded: u64,
    /// Slashed on the task, in µSTAR.
    pub slashed: u64,
}

/// What one round produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundRecord {
    /// The round.
    pub round: RoundNumber,
    /// Accuracy of the round's new global model on validators' held-out data,
    /// a fraction in `[0, 1]`; `null` until measured.
    pub accuracy: Option<f64>,
    /// Mean loss of the new global model on the same data (the model's
    /// training loss, e.g. cross-entropy in nats); `null` until measured.
    pub loss: Option<f64>,
    /// Submissions accepted into the aggregate.
    pub accepted: u32,
    /// Submissions rejected (invalid, or below the task's harm threshold).
    pub rejected: u32,
    /// Content hash of the global model the round produced; `null` until aggregated.
    pub global_model: Option<ContentHash>,
}

/// One trainer's submission to a round.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubmissionView {
    /// The submission.
    pub id: SubmissionId,
    /// The round it was made to.
    pub round: RoundNumber,
    /// Who trained it.
    pub trainer: PublicKey,
    /// Training examples the trainer reports, the update's FedAvg weight.
    pub samples: u64,
    /// Stake-weighted consensus (median) of the validators' scores, in the
    /// task's score units (higher is better); `null` until validators agree.
    pub consensus_score: Option<f64>,
    /// Where it stands: `"status": "pending" | "accepted" | "rejected"`, with
    /// `"reason"` when rejected.
    #[serde(flatten)]
    pub outcome: SubmissionOutcome,
}

/// Whether a submission made it into the aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SubmissionOutcome {
    /// Not judged: the round has not reached agreement yet, or it did and
    /// the validators that scored this submission held no majority of the
    /// round's validator stake (unresolved: neither aggregated, paid nor
    /// slashed).
    Pending,
    /// Counted in the aggregate.
    Accepted,
    /// Left out, and its trainer slashed.
    Rejected {
        /// Why, in words a trainer can act on (e.g. `"tensor conv1.weight holds NaN"`).
        reason: String,
    },
}

/// Everything one identity was paid and lost over a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityPayout {
    /// The trainer, validator or delegator.
    pub identity: PublicKey,
    /// Rewards received, in µSTAR.
    pub rewarded: u64,
    /// Slashed from its bonds (both halves: to the pool and burned), in µSTAR.
    pub slashed: u64,
}
