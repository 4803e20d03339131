//! Why a coordinator store refused or failed an operation.

use starling_protocol::{PublicKey, RoundNumber, SubmissionId, TaskId};

/// A store operation failed. Variants other than [`StoreError::Database`] and
/// [`StoreError::Migrate`] describe the caller's request and wrote nothing;
/// those two are the database's fault and may be retried.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No task has this id.
    #[error("unknown task {0}")]
    UnknownTask(TaskId),
    /// A score names a submission that was never recorded for its task and
    /// round.
    #[error("task {task} round {round} has no submission {submission}")]
    UnknownSubmission {
        /// The task.
        task: TaskId,
        /// The round.
        round: RoundNumber,
        /// The submission the score names.
        submission: SubmissionId,
    },
    /// A different record already holds this key: the rules allow one
    /// submission per trainer and round, one score per validator and
    /// submission, one settlement per round.
    #[error(transparent)]
    Duplicate(#[from] Duplicate),
    /// The task's state was saved by someone else since the caller loaded it
    /// (another coordinator advanced the task): reload and re-apply, or give
    /// the task up.
    #[error("state of task {task} is at version {actual}, not the expected {expected}")]
    StateConflict {
        /// The task.
        task: TaskId,
        /// The version the caller expected to replace.
        expected: u64,
        /// The version stored.
        actual: u64,
    },
    /// A number does not fit the database's signed 64-bit integers.
    #[error("{field} = {value} is out of range (at most {max})", max = i64::MAX)]
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A float field is NaN or infinite; the store keeps only finite values
    /// (SQLite would turn a NaN into NULL).
    #[error("{field} is not finite")]
    NotFinite {
        /// Which field.
        field: &'static str,
    },
    /// The URL names no backend this build knows (`sqlite:` and
    /// `postgres://` / `postgresql://` are known).
    #[error("unsupported database URL scheme in {0:?}")]
    UnsupportedUrl(String),
    /// The task spec could not be encoded.
    #[error("encoding the task spec failed: {0}")]
    Encode(#[source] postcard::Error),
    /// The database failed or is unreachable; the operation may be retried.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be migrated at start-up.
    #[error("migrating the coordinator schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row holds a value the store never writes.
    #[error("corrupt coordinator row: {0}")]
    Corrupt(String),
}

/// The record that a [`StoreError::Duplicate`] collided with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Duplicate {
    /// The trainer already made a different submission to this round.
    #[error("trainer {trainer} already submitted something else to task {task} round {round}")]
    Submission {
        /// The task.
        task: TaskId,
        /// The round.
        round: RoundNumber,
        /// The trainer.
        trainer: PublicKey,
    },
    /// The validator already scored this submission differently.
    #[error("validator {validator} already scored submission {submission} of task {task} round {round} differently")]
    Score {
        /// The task.
        task: TaskId,
        /// The round.
        round: RoundNumber,
        /// The submission.
        submission: SubmissionId,
        /// The validator.
        validator: PublicKey,
    },
    /// The round's verdict was already recorded, and differs.
    #[error("the verdict of task {task} round {round} was already recorded, and differs")]
    Verdict {
        /// The task.
        task: TaskId,
        /// The round.
        round: RoundNumber,
    },
    /// The round was already recorded as settled with different results.
    #[error("round {round} of task {task} was already recorded with different results")]
    Round {
        /// The task.
        task: TaskId,
        /// The round.
        round: RoundNumber,
    },
}
