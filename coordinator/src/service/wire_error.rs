//! What a client is told when its request is refused: every failure the
//! service meets (the machine's refusals, store and ledger errors) mapped to
//! one stable [`ErrorCode`] and a message that says what to do.
//!
//! Failures that are ours, not the client's, are logged in full and answered
//! without detail ([`internal`]); a database that cannot answer now is
//! [`ErrorCode::Unavailable`], which clients retry.

use starling_protocol::{ErrorCode, RoundPhase, WireError};
use starling_staking::LedgerError;

use crate::round::Refusal;
use crate::store::StoreError;

/// A refusal with `code` and `message`.
pub(crate) fn refuse(code: ErrorCode, message: impl Into<String>) -> WireError {
    WireError::new(code, message)
}

/// A failure that is ours, not the client's: logged in full, answered
/// without detail.
pub(crate) fn internal(context: &str, error: &dyn std::fmt::Display) -> WireError {
    tracing::error!("{context}: {error}");
    refuse(ErrorCode::Internal, "internal error; the request was not carried out")
}

/// A coordinator store failure.
pub(crate) fn store_error(error: &StoreError) -> WireError {
    match error {
        StoreError::UnknownTask(task) => refuse(ErrorCode::UnknownTask, format!("no task {task}")),
        StoreError::UnknownSubmission { submission, .. } => {
            refuse(ErrorCode::UnknownSubmission, format!("no submission {submission}"))
        }
        StoreError::Duplicate(duplicate) => refuse(ErrorCode::Duplicate, duplicate.to_string()),
        StoreError::StateConflict { .. } => {
            refuse(ErrorCode::Unavailable, "the task moved on while this request was applied; send it again")
        }
        StoreError::Database(_) => {
            tracing::warn!("coordinator store: {error}");
            refuse(ErrorCode::Unavailable, "the coordinator's database is unavailable; try again")
        }
        other => internal("coordinator store", other),
    }
}

/// The round machine's refusal of an event a request carried.
pub(crate) fn refusal(refusal: &Refusal) -> WireError {
    let code = match refusal {
        Refusal::NotStarted | Refusal::NoEligibleTrainers | Refusal::NoEligibleValidators => ErrorCode::NotStarted,
        Refusal::AlreadyStarted => ErrorCode::WrongPhase,
        Refusal::WrongRound { .. } => ErrorCode::WrongRound,
        Refusal::WrongPhase { phase: RoundPhase::Finished, .. } => ErrorCode::TaskFinished,
        Refusal::WrongPhase { .. } => ErrorCode::WrongPhase,
        Refusal::AfterDeadline { .. } => ErrorCode::AfterDeadline,
        Refusal::NotSampled { .. } => ErrorCode::NotSampled,
        Refusal::DuplicateSubmission { .. } | Refusal::DuplicateScore { .. } => ErrorCode::Duplicate,
        Refusal::SubmissionIdMismatch { .. } | Refusal::ZeroSamples | Refusal::InvalidScore { .. } => {
            ErrorCode::InvalidField
        }
        Refusal::UnknownSubmission { .. } => ErrorCode::UnknownSubmission,
        Refusal::NotAssigned { .. } => ErrorCode::NotAssigned,
    };
    refuse(code, refusal.to_string())
}

/// A ledger failure.
pub(crate) fn ledger_error(error: &starling_staking::StoreError) -> WireError {
    use starling_staking::StoreError as E;
    let ledger = match error {
        E::Ledger(ledger) => ledger,
        E::IdempotencyKeyReused { .. } => return refuse(ErrorCode::Replay, error.to_string()),
        E::Database(_) => {
            tracing::warn!("ledger: {error}");
            return refuse(ErrorCode::Unavailable, "the ledger is unavailable; try again");
        }
        other => return internal("ledger", other),
    };
    let code = match ledger {
        LedgerError::InsufficientFunds { .. } => ErrorCode::InsufficientBalance,
        LedgerError::LockNotEnded { .. } => ErrorCode::Locked,
        LedgerError::UnknownBond { .. } => ErrorCode::UnknownBond,
        LedgerError::UnknownNode { .. } => ErrorCode::UnknownNode,
        LedgerError::UnknownTask { .. } => ErrorCode::UnknownTask,
        LedgerError::NotAdmin { .. } | LedgerError::NotBondOwner { .. } => ErrorCode::Unauthorized,
        LedgerError::TaskFinished { .. } => ErrorCode::TaskFinished,
        _ => ErrorCode::InvalidField,
    };
    refuse(code, ledger.to_string())
}

/// An artifact store failure under a request: ours.
pub(crate) fn artifact_error(error: &crate::artifacts::ArtifactError) -> WireError {
    internal("artifact store", error)
}
