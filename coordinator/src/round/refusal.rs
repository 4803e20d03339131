//! Why the machine refused an event. A refused event changes nothing.

use starling_protocol::{PublicKey, RoundNumber, RoundPhase, SubmissionId};
use thiserror::Error;

use crate::round::event::EventKind;
use crate::round::time::UnixMillis;

/// An event the machine would not apply, and why: precise enough for the
/// shell to tell the client what it did wrong. The machine's state is exactly
/// as it was before the event.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Refusal {
    /// Nothing but [`crate::round::Event::TaskStarted`] (and ticks) is
    /// accepted before the task starts.
    #[error("the task has not started")]
    NotStarted,
    /// The task already started (with different participants or model, or
    /// past round 0).
    #[error("the task has already started")]
    AlreadyStarted,
    /// No trainer holds the task's minimum trainer stake.
    #[error("no trainer holds the task's minimum stake")]
    NoEligibleTrainers,
    /// No validator holds the task's minimum validator stake (and more than zero).
    #[error("no validator holds the task's minimum stake")]
    NoEligibleValidators,
    /// The event names a round other than the current one.
    #[error("round {got} is not the current round {current}")]
    WrongRound {
        /// The round now running.
        current: RoundNumber,
        /// The round the event named.
        got: RoundNumber,
    },
    /// The current round is not in a phase that takes this event.
    #[error("a {event} is not accepted while the round is {phase}")]
    WrongPhase {
        /// The kind of the refused event.
        event: EventKind,
        /// The round's phase.
        phase: RoundPhase,
    },
    /// The phase's deadline has passed (a deadline is exclusive: arriving at
    /// exactly the deadline is too late).
    #[error("the deadline {deadline:?} has passed (now {now:?})")]
    AfterDeadline {
        /// The deadline.
        deadline: UnixMillis,
        /// When the event arrived.
        now: UnixMillis,
    },
    /// The trainer was not sampled for this round.
    #[error("trainer {trainer} was not sampled for this round")]
    NotSampled {
        /// The trainer.
        trainer: PublicKey,
    },
    /// The trainer already submitted something else in this round.
    #[error("trainer {trainer} already submitted {existing} in this round")]
    DuplicateSubmission {
        /// The trainer.
        trainer: PublicKey,
        /// The submission already recorded.
        existing: SubmissionId,
    },
    /// The submission id is not the one derived from the task, round, trainer
    /// and payload hash.
    #[error("submission id {got} does not match its task, round, trainer and payload")]
    SubmissionIdMismatch {
        /// The id the event carried.
        got: SubmissionId,
    },
    /// A payload that passed its checks claims zero training examples.
    #[error("a submission must report at least one training example")]
    ZeroSamples,
    /// No submission with this id is part of the current round.
    #[error("submission {submission} is not part of this round")]
    UnknownSubmission {
        /// The id.
        submission: SubmissionId,
    },
    /// The validator was not assigned this submission.
    #[error("validator {validator} was not assigned submission {submission}")]
    NotAssigned {
        /// The validator.
        validator: PublicKey,
        /// The submission.
        submission: SubmissionId,
    },
    /// The validator already scored this submission (differently).
    #[error("validator {validator} already scored submission {submission}")]
    DuplicateScore {
        /// The validator.
        validator: PublicKey,
        /// The submission.
        submission: SubmissionId,
    },
    /// A score value is out of its range (see [`crate::round::ScoreValues`]).
    #[error("score field `{field}` is out of range: {value}")]
    InvalidScore {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
}
