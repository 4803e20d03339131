//! The [`CoordinatorStore`] trait.

use std::future::Future;

use starling_protocol::{ContentHash, PublicKey, RoundNumber, TaskId};
use starling_staking::{Page, PageRequest};

use super::records::{
    Join, Lease, NewTask, Recorded, RoundRecord, ScoreRecord, SubmissionRecord, TaskRecord, TaskState,
};
use super::{MarketStore, StoreError, VerdictStore};
use crate::round::UnixMillis;

/// The coordinator's durable state. Every method is one statement or one
/// transaction: it happens entirely or not at all, and a method that fails
/// with [`StoreError::Database`] may be retried as it is.
///
/// Records of received messages (submissions, scores) and of settled rounds
/// are write-once: recording the same record again is a harmless
/// [`Recorded::AlreadyRecorded`], a different one under the same key is
/// [`StoreError::Duplicate`].
pub trait CoordinatorStore: MarketStore + VerdictStore + Send + Sync {
    /// Reserves a fresh task id for `creator`: unique, never reused, larger
    /// than every id before it. Task creation is *escrow first, store
    /// second*: the id is reserved, the ledger escrows the pool under it, and
    /// only then is the task stored with [`create_task`](Self::create_task).
    fn reserve_task(
        &self,
        creator: &PublicKey,
        at: UnixMillis,
    ) -> impl Future<Output = Result<TaskId, StoreError>> + Send;

    /// Registers a task under `id`, which must be a reservation of the
    /// task's creator (spent here, in the same transaction; anything else is
    /// [`StoreError::UnknownTask`]). Its state starts at version 0 (nothing
    /// saved), unfinished.
    fn create_task(&self, id: TaskId, task: &NewTask) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks a reservation abandoned: from then on it can never become a
    /// task ([`create_task`](Self::create_task) refuses it), so its pool can
    /// be refunded without racing a creation that is still under way.
    fn abandon_reservation(&self, id: TaskId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets a reservation that will not become a task (its escrow was
    /// refused, or refunded after it was abandoned). Releasing one that is
    /// gone does nothing.
    fn release_reservation(&self, id: TaskId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reservations made before `before`, or abandoned, that never became
    /// tasks, by id, with their creators: requests that died between escrow
    /// and row (or whose refund failed), whose pools a coordinator refunds at
    /// start-up.
    fn reservations(
        &self,
        before: UnixMillis,
    ) -> impl Future<Output = Result<Vec<(TaskId, PublicKey)>, StoreError>> + Send;

    /// A task, if it exists.
    fn task(&self, id: TaskId) -> impl Future<Output = Result<Option<TaskRecord>, StoreError>> + Send;

    /// Registered tasks, newest first.
    fn tasks(&self, page: PageRequest) -> impl Future<Output = Result<Page<TaskRecord>, StoreError>> + Send;

    /// How many of `creator`'s tasks have not finished.
    fn open_tasks_of(&self, creator: &PublicKey) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Whether `hash` is a public model: some task's initial model or some
    /// recorded round's global model. Updates are not, and are read only
    /// through an assignment check.
    fn is_public_model(&self, hash: ContentHash) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The task's persisted round machine; [`StoreError::UnknownTask`] if
    /// there is no such task.
    fn load_state(&self, task: TaskId) -> impl Future<Output = Result<TaskState, StoreError>> + Send;

    /// Replaces the task's state if it is still at `expected_version` (the
    /// [`TaskState::version`] the caller loaded or last got back), and
    /// returns the new version (`expected_version + 1`). If another save
    /// came first the state is left alone and the error is
    /// [`StoreError::StateConflict`]: this compare-and-set is what stops two
    /// coordinators from both advancing a task, leases or not.
    fn save_state(
        &self,
        task: TaskId,
        expected_version: u64,
        state: &[u8],
        finished: bool,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Tasks whose last save did not mark them finished (including tasks
    /// never started), by id: what a coordinator resumes at start-up.
    fn unfinished_tasks(&self) -> impl Future<Output = Result<Vec<TaskId>, StoreError>> + Send;

    /// Records that `join.participant` asked to take part in `join.task` as
    /// `join.role`. Joining again is [`Recorded::AlreadyRecorded`] (the first
    /// time is kept); an unknown task is [`StoreError::UnknownTask`].
    fn record_join(&self, join: &Join) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// Everyone who joined the task, in key then role order.
    fn joins(&self, task: TaskId) -> impl Future<Output = Result<Vec<Join>, StoreError>> + Send;

    /// Records a trainer's submission. One per (task, round, trainer): the
    /// same submission again (same id, payload, length, samples, loss and
    /// check; the envelope and arrival time may differ, as a re-sent upload
    /// carries a fresh nonce) is [`Recorded::AlreadyRecorded`] and keeps the
    /// first; anything else is [`StoreError::Duplicate`].
    fn record_submission(
        &self,
        submission: &SubmissionRecord,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// A round's submissions, by arrival (ties by trainer key).
    fn submissions(
        &self,
        task: TaskId,
        round: RoundNumber,
    ) -> impl Future<Output = Result<Vec<SubmissionRecord>, StoreError>> + Send;

    /// `trainer`'s submission to a round, if it made one (one indexed row,
    /// whatever the round's size).
    fn submission_of(
        &self,
        task: TaskId,
        round: RoundNumber,
        trainer: &PublicKey,
    ) -> impl Future<Output = Result<Option<SubmissionRecord>, StoreError>> + Send;

    /// Records a validator's score of a recorded submission
    /// ([`StoreError::UnknownSubmission`] otherwise). One per (submission,
    /// validator): the same values again are [`Recorded::AlreadyRecorded`],
    /// different ones [`StoreError::Duplicate`].
    fn record_score(&self, score: &ScoreRecord) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// A round's scores, by submission id then validator key.
    fn scores(
        &self,
        task: TaskId,
        round: RoundNumber,
    ) -> impl Future<Output = Result<Vec<ScoreRecord>, StoreError>> + Send;

    /// Records a settled round. One per (task, round): the same results again
    /// (whatever `settled_at`) are [`Recorded::AlreadyRecorded`], different
    /// ones [`StoreError::Duplicate`].
    fn record_round(&self, round: &RoundRecord) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// A task's settled rounds, oldest first; the cursor is a round number.
    fn rounds(
        &self,
        task: TaskId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<RoundRecord>, StoreError>> + Send;

    /// Takes the task's lease for `owner` until `until`, if nobody else holds
    /// it at `now` (no lease, an expired one, or `owner`'s own, which is
    /// extended or shortened to `until`). Returns whether `owner` holds it
    /// now.
    ///
    /// Leases assign each task to one coordinator of a deployment: a
    /// coordinator runs only tasks it holds, renews well before expiry (say
    /// every third of the lease) and stops running a task whose renewal
    /// fails. Times come from the callers' clocks, so they must agree to
    /// well within a lease's length. A lease is advisory: even a coordinator
    /// that wrongly believes it holds one cannot advance a task another has
    /// advanced, because [`save_state`](CoordinatorStore::save_state)
    /// compares versions.
    fn acquire_lease(
        &self,
        task: TaskId,
        owner: &str,
        until: UnixMillis,
        now: UnixMillis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Moves the expiry of `owner`'s lease on the task to `until`, if `owner`
    /// still holds it at `now`. A lease that expired is not renewed even if
    /// nobody took it: the caller learns it lapsed (and should reload the
    /// task's state) and may [`acquire`](CoordinatorStore::acquire_lease) it
    /// again.
    fn renew_lease(
        &self,
        task: TaskId,
        owner: &str,
        until: UnixMillis,
        now: UnixMillis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives `owner`'s lease on the task up (expired or not); returns whether
    /// `owner` had one.
    fn release_lease(&self, task: TaskId, owner: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The task's lease row, expired or not, if any.
    fn lease(&self, task: TaskId) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;
}
