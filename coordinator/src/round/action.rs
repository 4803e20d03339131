//! What the machine asks the shell to do.

use serde::Serialize;
use starling_protocol::{AggregationSpec, ContentHash, PublicKey, RoundNumber, SubmissionId};
use starling_staking::RoundReport;

use crate::round::time::UnixMillis;

/// Work for the shell, returned by [`crate::round::RoundMachine::handle`].
///
/// The shell persists the machine first, then executes the actions in order.
/// Every action is safe to execute twice (a restarted shell re-executes
/// [`crate::round::RoundMachine::pending_actions`]): publishing and assigning
/// are announcements, aggregation is a pure function of its inputs, and the
/// ledger settles each round at most once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Action {
    /// Announce a round to its sampled trainers.
    PublishRound {
        /// The round.
        round: RoundNumber,
        /// The sampled trainers, in key order; only they may submit.
        trainers: Vec<PublicKey>,
        /// Hash of the global model to train from.
        global_model: ContentHash,
        /// When the round opened.
        opened_at: UnixMillis,
        /// Submissions at or after this instant are refused.
        training_deadline: UnixMillis,
    },
    /// Tell the trainers that missed the training deadline that they were
    /// dropped from the round (they are neither paid nor slashed).
    DropStragglers {
        /// The round.
        round: RoundNumber,
        /// The sampled trainers that had not submitted, in key order.
        trainers: Vec<PublicKey>,
    },
    /// Hand the round's valid submissions to validators.
    AssignValidators {
        /// The round.
        round: RoundNumber,
        /// One entry per valid submission, in submission-id order.
        assignments: Vec<Assignment>,
        /// Scores at or after this instant are refused.
        validation_deadline: UnixMillis,
    },
    /// Tell the validators that left assigned work unscored at the deadline
    /// that their missing scores no longer count.
    DropLateValidators {
        /// The round.
        round: RoundNumber,
        /// Validators with at least one assigned score missing, in key order.
        validators: Vec<PublicKey>,
    },
    /// Combine the accepted updates into the next global model, then report
    /// back with [`crate::round::Event::AggregationFinished`].
    RequestAggregation {
        /// The round.
        round: RoundNumber,
        /// Hash of the global model the updates are deltas against.
        base_model: ContentHash,
        /// The task's rule, clipping and server optimizer.
        spec: AggregationSpec,
        /// The accepted updates, best consensus score first (ties in trainer
        /// key order), so rule `best` takes the first.
        updates: Vec<AggregationInput>,
    },
    /// Settle the round in one ledger transaction, recording `global_model`
    /// as the task's model after it, then report back with
    /// [`crate::round::Event::SettlementCommitted`]. If the ledger answers
    /// that the round is already settled, the earlier attempt committed:
    /// report it committed.
    RequestSettlement {
        /// The round.
        round: RoundNumber,
        /// Rewards and slashes as the ledger's settlement takes them.
        report: RoundReport,
        /// The global model after this round (unchanged when nothing was
        /// aggregated).
        global_model: ContentHash,
    },
    /// The last round settled: the task is over.
    FinishTask {
        /// The global model after the last round.
        final_model: ContentHash,
        /// The round model with the best estimated score, the candidate for
        /// marketplace promotion; `None` when no round produced a model.
        best: Option<BestModel>,
    },
}

/// One submission and the validators that must score it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    /// The submission.
    pub submission: SubmissionId,
    /// Who submitted it.
    pub trainer: PublicKey,
    /// Hash of its payload in the artifact store.
    pub payload: ContentHash,
    /// The validators assigned, in key order; together they hold strictly
    /// more than half of the round's validator stake.
    pub validators: Vec<PublicKey>,
}

/// One accepted update to aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AggregationInput {
    /// The submission.
    pub submission: SubmissionId,
    /// Who submitted it.
    pub trainer: PublicKey,
    /// Hash of its payload in the artifact store.
    pub payload: ContentHash,
    /// Its weight in sample-weighted rules: the trainer's sample count.
    pub weight: u64,
    /// Its consensus score (accuracy).
    pub score: f64,
}

/// The best model a task produced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BestModel {
    /// The round whose aggregation produced it.
    pub round: RoundNumber,
    /// Its hash.
    pub model: ContentHash,
    /// Its estimated accuracy: see [`crate::round::RoundSummary::estimated_score`].
    pub estimated_score: f64,
}
