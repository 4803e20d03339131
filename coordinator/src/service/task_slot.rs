//! Each task's runtime: its machine behind a lock, and the one way it
//! changes, [`Coordinator::transition`]: apply an event, write its record,
//! save the machine.

use std::sync::Arc;

use starling_protocol::{ErrorCode, TaskId, WireError};
use starling_staking::LedgerStore;
use thiserror::Error;
use tokio::sync::{Mutex, Notify, watch};

use super::wire_error::{internal, refusal, refuse, store_error};
use super::{Coordinator, ServiceError};
use crate::artifacts::ArtifactStore;
use crate::round::{Action, Event, Refusal, RoundConfig, RoundMachine, UnixMillis};
use crate::store::{CoordinatorStore, ScoreRecord, StoreError, SubmissionRecord, TaskRecord};

/// One task this coordinator runs (or a finished one it was asked about).
pub(crate) struct TaskSlot {
    pub(crate) record: TaskRecord,
    pub(crate) runtime: Mutex<Runtime>,
    /// Wakes the driver early (a submission or score may have closed a phase).
    pub(crate) wake: Notify,
    pub(crate) finished: watch::Sender<bool>,
}

/// The machine and the version it was saved under.
pub(crate) struct Runtime {
    pub(crate) machine: RoundMachine,
    pub(crate) version: u64,
}

/// The record behind an event: written between the transition and the
/// save that counts it, or already in the store (a re-delivery).
pub(crate) enum Record {
    Submission(SubmissionRecord),
    Score(ScoreRecord),
    Stored,
}

/// Why an event was not applied.
#[derive(Debug, Error)]
pub(crate) enum TransitionError {
    /// The machine refused it; nothing changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The store failed or found a conflicting record; nothing was saved.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TransitionError {
    /// The refusal a client gets for it.
    pub(crate) fn to_wire(&self) -> WireError {
        match self {
            Self::Refused(r) => refusal(r),
            Self::Store(s) => store_error(s),
        }
    }
}

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// A task's runtime: one this coordinator runs, or a finished one,
    /// loaded (without a driver) on first use.
    pub(crate) async fn running(&self, task: TaskId) -> Result<Arc<TaskSlot>, WireError> {
        if let Some(slot) = self.slot(task) {
            return Ok(slot);
        }
        let state = self.inner.store.load_state(task).await.map_err(|e| store_error(&e))?;
        if !state.finished {
            // Unfinished but not ours: another coordinator runs it.
            return Err(refuse(ErrorCode::UnknownTask, format!("task {task} is not run by this coordinator")));
        }
        if state.state.as_deref().is_none_or(<[u8]>::is_empty) {
            return Err(refuse(ErrorCode::UnknownTask, format!("task {task} was cancelled before it started")));
        }
        self.load_task(task).await.map_err(|e| internal("loading a finished task", &e))
    }

    /// The round parameters a new task runs with. The sampling seed comes
    /// from the task id and initial model, so a task's draws are the same on
    /// every coordinator that might run it.
    fn round_config(&self, record: &TaskRecord) -> RoundConfig {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"starling/round-seed");
        hasher.update(&record.id.get().to_le_bytes());
        hasher.update(record.initial_model.as_bytes());
        let seed = u64::from_le_bytes(hasher.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
        RoundConfig { harm_threshold: self.inner.config.harm_threshold, ..RoundConfig::new(seed) }
    }

    /// Loads a task's machine (or makes it, for a task never saved) and
    /// re-delivers its current round's records, then registers it.
    pub(crate) async fn load_task(&self, task: TaskId) -> Result<Arc<TaskSlot>, ServiceError> {
        let store = &self.inner.store;
        let record = store.task(task).await?.ok_or(StoreError::UnknownTask(task))?;
        let state = store.load_state(task).await?;
        let machine = match &state.state {
            Some(bytes) => RoundMachine::from_bytes(bytes)
                .map_err(|e| ServiceError::CorruptState { task, reason: e.to_string() })?,
            None => RoundMachine::new(task, record.spec.clone(), self.round_config(&record))
                .map_err(|e| ServiceError::BadTask { task, reason: e.to_string() })?,
        };
        let finished = machine.is_finished();
        let slot = Arc::new(TaskSlot {
            record,
            runtime: Mutex::new(Runtime { machine, version: state.version }),
            wake: Notify::new(),
            finished: watch::channel(finished).0,
        });
        self.redeliver(&slot).await?;
        self.inner.tasks.write().expect("task table lock").insert(task, slot.clone());
        Ok(slot)
    }

    /// Hands the current round's recorded submissions and scores to the
    /// machine again, each at the time it arrived: whatever was recorded
    /// but not yet counted when the coordinator stopped is counted now, the
    /// rest is ignored as already applied.
    async fn redeliver(&self, slot: &TaskSlot) -> Result<(), ServiceError> {
        let task = slot.record.id;
        let Some(round) = slot.runtime.lock().await.machine.round() else { return Ok(()) };
        for s in self.inner.store.submissions(task, round).await? {
            let event = Event::SubmissionReceived {
                round: s.round,
                trainer: s.trainer,
                submission: s.id,
                payload: s.update,
                samples: s.samples,
                check: s.check,
            };
            self.redeliver_one(slot, s.received_at, event).await?;
        }
        for s in self.inner.store.scores(task, round).await? {
            let event = Event::ScoreReceived {
                round: s.round,
                validator: s.validator,
                submission: s.submission,
                values: s.values,
            };
            self.redeliver_one(slot, s.received_at, event).await?;
        }
        Ok(())
    }

    async fn redeliver_one(&self, slot: &TaskSlot, at: UnixMillis, event: Event) -> Result<(), ServiceError> {
        match self.transition(slot, at, event, Some(Record::Stored)).await {
            // A refusal means the machine has moved past this record (its
            // phase closed after the record was counted): nothing to do.
            Ok(_) | Err(TransitionError::Refused(_)) => Ok(()),
            Err(TransitionError::Store(error)) => Err(error.into()),
        }
    }

    /// Applies `event` at `now` to the task's machine: on success, writes
    /// `record` (if any), then saves the machine (unless the event only added
    /// its own record: see below), then returns its actions. On any error the
    /// machine in memory and in the store is as before.
    pub(crate) async fn transition(
        &self,
        slot: &TaskSlot,
        now: UnixMillis,
        event: Event,
        record: Option<Record>,
    ) -> Result<Vec<Action>, TransitionError> {
        let store = &self.inner.store;
        let mut runtime = slot.runtime.lock().await;
        let mut next = runtime.machine.clone();
        let actions = next.handle(now, event)?;
        // A submission or score that only adds itself (no action, no phase
        // change) is not worth re-saving the whole machine for: its record is
        // the log entry that a restart re-delivers. Saving only at phase
        // changes keeps a round's writes O(n), not O(n²).
        let quiet = record.is_some() && actions.is_empty() && next.progress() == runtime.machine.progress();
        match record {
            Some(Record::Submission(s)) => {
                store.record_submission(&s).await?;
            }
            Some(Record::Score(s)) => {
                store.record_score(&s).await?;
            }
            Some(Record::Stored) | None => {}
        }
        if !quiet && next != runtime.machine {
            let saved = store.save_state(slot.record.id, runtime.version, &next.to_bytes(), next.is_finished()).await;
            let version = match saved {
                Ok(version) => version,
                Err(error @ StoreError::StateConflict { .. }) => {
                    // Someone else advanced this task: our copy is stale.
                    // Take theirs, so the next attempt starts from it.
                    drop(runtime);
                    self.reload(slot).await?;
                    return Err(error.into());
                }
                Err(error) => return Err(error.into()),
            };
            runtime.version = version;
        }
        runtime.machine = next;
        Ok(actions)
    }

    async fn reload(&self, slot: &TaskSlot) -> Result<(), StoreError> {
        let task = slot.record.id;
        let state = self.inner.store.load_state(task).await?;
        let Some(bytes) = state.state else { return Ok(()) };
        let machine =
            RoundMachine::from_bytes(&bytes).map_err(|e| StoreError::Corrupt(format!("task {task} state: {e}")))?;
        *slot.runtime.lock().await = Runtime { machine, version: state.version };
        Ok(())
    }
}
