//! The rows a [`CoordinatorStore`](super::CoordinatorStore) reads and writes,
//! as Rust values.

use starling_protocol::{ContentHash, PublicKey, Role, RoundNumber, SubmissionId, TaskId, TaskSpec};

use crate::round::{PayloadCheck, ScoreValues, UnixMillis};

/// A task to register under a reserved [`TaskId`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// Who created (and funds) the task.
    pub creator: PublicKey,
    /// The task's parameters, validated by the caller.
    pub spec: TaskSpec,
    /// Hash of the initial global model, already in the artifact store.
    pub initial_model: ContentHash,
    /// When the task was created.
    pub created_at: UnixMillis,
}

/// A registered task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    /// The id the store reserved for it: unique, never reused, counting up
    /// from 1 (ids of reservations that never became tasks are skipped).
    pub id: TaskId,
    /// Who created the task.
    pub creator: PublicKey,
    /// The task's parameters.
    pub spec: TaskSpec,
    /// Hash of the initial global model.
    pub initial_model: ContentHash,
    /// When the task was created.
    pub created_at: UnixMillis,
}

/// A task's persisted round machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// How many times the state was saved; `0` when it never was. Pass it to
    /// [`save_state`](super::CoordinatorStore::save_state) as the version
    /// the next save expects.
    pub version: u64,
    /// The serialised machine as last saved; `None` while `version` is `0`.
    pub state: Option<Vec<u8>>,
    /// Whether the last save marked the task finished.
    pub finished: bool,
}

/// A trainer's submission to a round, as the coordinator received and
/// checked it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmissionRecord {
    /// The task.
    pub task: TaskId,
    /// The round submitted to.
    pub round: RoundNumber,
    /// The trainer (the envelope's verified signer).
    pub trainer: PublicKey,
    /// The submission's id ([`SubmissionId::derive`]).
    pub id: SubmissionId,
    /// BLAKE3 hash of the update payload, the artifact's name.
    pub update: ContentHash,
    /// Length of the update payload, in bytes (`≤ i64::MAX`).
    pub len: u64,
    /// Training examples the trainer reports using (`≤ i64::MAX`).
    pub samples: u64,
    /// The training loss the trainer reports, if any; finite.
    pub train_loss: Option<f64>,
    /// Whether the payload passed the checks done before storing it.
    pub check: PayloadCheck,
    /// The signed envelope as received (postcard bytes), for audit.
    pub envelope: Vec<u8>,
    /// When it arrived.
    pub received_at: UnixMillis,
}

/// A validator's score for one submission.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRecord {
    /// The task.
    pub task: TaskId,
    /// The round of the submission scored.
    pub round: RoundNumber,
    /// The submission scored; it must be recorded first.
    pub submission: SubmissionId,
    /// The validator (the envelope's verified signer).
    pub validator: PublicKey,
    /// What the validator measured; every value finite.
    pub values: ScoreValues,
    /// The signed envelope as received (postcard bytes), for audit.
    pub envelope: Vec<u8>,
    /// When it arrived.
    pub received_at: UnixMillis,
}

/// A settled round, for the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRecord {
    /// The task.
    pub task: TaskId,
    /// The round.
    pub round: RoundNumber,
    /// The global model after the round.
    pub global_model: ContentHash,
    /// The new global model's (estimated) accuracy, if the round produced one.
    pub accuracy: Option<f64>,
    /// The new global model's loss, if known.
    pub loss: Option<f64>,
    /// Accepted submissions.
    pub accepted: u32,
    /// Rejected submissions.
    pub rejected: u32,
    /// When the round was settled.
    pub settled_at: UnixMillis,
}

/// Which coordinator runs a task, until when (see
/// [`acquire_lease`](super::CoordinatorStore::acquire_lease)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The task.
    pub task: TaskId,
    /// The holder: a coordinator instance's id.
    pub owner: String,
    /// The lease is held while `now < expires_at`.
    pub expires_at: UnixMillis,
}

/// What recording a submission, score or round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The record is new and now stored.
    Inserted,
    /// The same record was already stored (a retry, say after a lost
    /// acknowledgement); nothing changed and the first one was kept.
    AlreadyRecorded,
}

/// A key's standing request to take part in a task in one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Join {
    /// The task.
    pub task: TaskId,
    /// Who joined (the request's verified signer).
    pub participant: PublicKey,
    /// As what.
    pub role: Role,
    /// When the join was first recorded.
    pub joined_at: UnixMillis,
}
