//! Conversions between Rust values and database columns: unsigned integers
//! as signed 64-bit ones, ids and hashes as 32 raw bytes, the task spec as
//! postcard bytes.

use starling_protocol::{ContentHash, PublicKey, Role, RoundNumber, SubmissionId, TaskId, TaskSpec};

use super::StoreError;
use super::records::{RoundRecord, ScoreRecord, SubmissionRecord, TaskRecord};
use crate::round::{PayloadCheck, ScoreValues, UnixMillis};

/// `value` as a column, if it fits.
pub(crate) fn int(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

/// A column that the store only ever writes from a `u64`.
pub(crate) fn uint(field: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{field} = {value}")))
}

pub(crate) fn task_column(task: TaskId) -> Result<i64, StoreError> {
    int("task id", task.get())
}

pub(crate) fn task_from(value: i64) -> Result<TaskId, StoreError> {
    uint("task id", value).map(TaskId::new)
}

/// A role as its column: 0 trainer, 1 validator.
pub(crate) fn role_column(role: Role) -> i64 {
    match role {
        Role::Trainer => 0,
        Role::Validator => 1,
    }
}

pub(crate) fn role_from(value: i64) -> Result<Role, StoreError> {
    match value {
        0 => Ok(Role::Trainer),
        1 => Ok(Role::Validator),
        other => Err(StoreError::Corrupt(format!("role = {other}"))),
    }
}

pub(crate) fn round_from(value: i64) -> Result<RoundNumber, StoreError> {
    u32::try_from(value).map(RoundNumber::new).map_err(|_| StoreError::Corrupt(format!("round = {value}")))
}

pub(crate) fn count_from(field: &'static str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{field} = {value}")))
}

pub(crate) fn time_from(field: &'static str, value: i64) -> Result<UnixMillis, StoreError> {
    uint(field, value).map(UnixMillis::new)
}

/// `value` if finite.
pub(crate) fn finite(field: &'static str, value: f64) -> Result<f64, StoreError> {
    if value.is_finite() { Ok(value) } else { Err(StoreError::NotFinite { field }) }
}

pub(crate) fn finite_opt(field: &'static str, value: Option<f64>) -> Result<Option<f64>, StoreError> {
    value.map(|v| finite(field, v)).transpose()
}

fn bytes32(field: &'static str, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| StoreError::Corrupt(format!("{field} has {} bytes, not 32", bytes.len())))
}

pub(crate) fn hash_from(field: &'static str, bytes: &[u8]) -> Result<ContentHash, StoreError> {
    bytes32(field, bytes).map(ContentHash::from_bytes)
}

pub(crate) fn key_from(field: &'static str, bytes: &[u8]) -> Result<PublicKey, StoreError> {
    bytes32(field, bytes).map(PublicKey::from_bytes)
}

pub(crate) fn submission_from(bytes: &[u8]) -> Result<SubmissionId, StoreError> {
    bytes32("submission id", bytes).map(SubmissionId::from_bytes)
}

/// The check's two columns: passed, and the reason it failed.
pub(crate) fn check_columns(check: &PayloadCheck) -> (bool, Option<&str>) {
    match check {
        PayloadCheck::Passed => (true, None),
        PayloadCheck::Failed { reason } => (false, Some(reason.as_str())),
    }
}

fn check_from(passed: bool, reason: Option<String>) -> PayloadCheck {
    if passed { PayloadCheck::Passed } else { PayloadCheck::Failed { reason: reason.unwrap_or_default() } }
}

pub(crate) fn encode_spec(spec: &TaskSpec) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(spec).map_err(StoreError::Encode)
}

/// `id, creator, initial_model, created_at, spec`.
pub(crate) type TaskRow = (i64, Vec<u8>, Vec<u8>, i64, Vec<u8>);

pub(crate) fn task_record(row: TaskRow) -> Result<TaskRecord, StoreError> {
    let (id, creator, initial_model, created_at, spec) = row;
    let id = task_from(id)?;
    Ok(TaskRecord {
        id,
        creator: key_from("creator", &creator)?,
        spec: postcard::from_bytes(&spec).map_err(|e| StoreError::Corrupt(format!("spec of task {id}: {e}")))?,
        initial_model: hash_from("initial model", &initial_model)?,
        created_at: time_from("created_at", created_at)?,
    })
}

/// `task, round, trainer, submission, update_hash, len, samples, train_loss,
/// check_passed, check_reason, envelope, received_at`.
pub(crate) type SubmissionRow =
    (i64, i64, Vec<u8>, Vec<u8>, Vec<u8>, i64, i64, Option<f64>, bool, Option<String>, Vec<u8>, i64);

pub(crate) fn submission_record(row: SubmissionRow) -> Result<SubmissionRecord, StoreError> {
    let (task, round, trainer, id, update, len, samples, train_loss, passed, reason, envelope, received_at) = row;
    Ok(SubmissionRecord {
        task: task_from(task)?,
        round: round_from(round)?,
        trainer: key_from("trainer", &trainer)?,
        id: submission_from(&id)?,
        update: hash_from("update hash", &update)?,
        len: uint("len", len)?,
        samples: uint("samples", samples)?,
        train_loss,
        check: check_from(passed, reason),
        envelope,
        received_at: time_from("received_at", received_at)?,
    })
}

/// Whether `stored` is `new` again, up to what a retry may change.
pub(crate) fn same_submission(stored: &SubmissionRecord, new: &SubmissionRecord) -> bool {
    SubmissionRecord { envelope: Vec::new(), received_at: UnixMillis::default(), ..stored.clone() }
        == SubmissionRecord { envelope: Vec::new(), received_at: UnixMillis::default(), ..new.clone() }
}

/// `task, round, submission, validator, accuracy, loss, improvement,
/// envelope, received_at`.
pub(crate) type ScoreRow = (i64, i64, Vec<u8>, Vec<u8>, f64, f64, f64, Vec<u8>, i64);

pub(crate) fn score_record(row: ScoreRow) -> Result<ScoreRecord, StoreError> {
    let (task, round, submission, validator, accuracy, loss, improvement, envelope, received_at) = row;
    Ok(ScoreRecord {
        task: task_from(task)?,
        round: round_from(round)?,
        submission: submission_from(&submission)?,
        validator: key_from("validator", &validator)?,
        values: ScoreValues { accuracy, loss, improvement },
        envelope,
        received_at: time_from("received_at", received_at)?,
    })
}

/// `task, round, global_model, accuracy, loss, accepted, rejected,
/// settled_at`.
pub(crate) type RoundRow = (i64, i64, Vec<u8>, Option<f64>, Option<f64>, i64, i64, i64);

pub(crate) fn round_record(row: RoundRow) -> Result<RoundRecord, StoreError> {
    let (task, round, global_model, accuracy, loss, accepted, rejected, settled_at) = row;
    Ok(RoundRecord {
        task: task_from(task)?,
        round: round_from(round)?,
        global_model: hash_from("global model", &global_model)?,
        accuracy,
        loss,
        accepted: count_from("accepted", accepted)?,
        rejected: count_from("rejected", rejected)?,
        settled_at: time_from("settled_at", settled_at)?,
    })
}

/// Whether `error` is a foreign key violation: a row names a task (or a
/// submission) that does not exist.
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}
