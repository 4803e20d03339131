//! Each task's runtime: its machine behind a lock, the transitions that
//! persist it, and the driver that ticks it, aggregates and settles.

use std::sync::Arc;
use std::time::Duration;

use starling_aggregation::{FedAvg, Inputs, Layout, Rule, TensorInfo, aggregate_into};
use starling_protocol::payload::decode_view;
use starling_protocol::{
    AggregationRule, AggregationSpec, ContentHash, Role, RoundNumber, TaskId, TaskSpec, TensorRef, UpdatePayload,
};
use starling_staking::{LedgerError, LedgerStore, Operation, RoundReport};
use thiserror::Error;
use tokio::sync::{Mutex, Notify, watch};

use super::{Coordinator, ServiceError, now};
use crate::artifacts::ArtifactStore;
use crate::round::{
    Action, AggregationInput, AggregationOutcome, Event, Participants, Refusal, RoundConfig, RoundMachine, UnixMillis,
};
use crate::store::{CoordinatorStore, Recorded, RoundRecord, ScoreRecord, StoreError, SubmissionRecord, TaskRecord};

/// One task this coordinator runs.
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

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
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
            Some(bytes) => postcard::from_bytes::<RoundMachine>(bytes)
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
            let bytes = postcard::to_stdvec(&next).expect("a round machine always encodes");
            let saved = store.save_state(slot.record.id, runtime.version, &bytes, next.is_finished()).await;
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
        let machine = postcard::from_bytes::<RoundMachine>(&bytes)
            .map_err(|e| StoreError::Corrupt(format!("task {task} state: {e}")))?;
        *slot.runtime.lock().await = Runtime { machine, version: state.version };
        Ok(())
    }

    /// Starts the task's driver: it ticks the machine at every deadline (and
    /// every [`tick`](super::ServiceConfig::tick)), opens the task when its
    /// join window has passed, runs aggregations and settlements, and ends
    /// when the task finishes or the service shuts down.
    pub(crate) fn run_task(&self, slot: Arc<TaskSlot>) {
        let this = self.clone();
        tokio::spawn(async move {
            let task = slot.record.id;
            let mut shutdown = this.inner.shutdown.subscribe();
            loop {
                if *shutdown.borrow() {
                    return;
                }
                match this.step(&slot).await {
                    Ok(true) => {
                        slot.finished.send_replace(true);
                        tracing::info!(%task, "task finished");
                        return;
                    }
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%task, "task driver: {error}"),
                }
                let pause = this.pause(&slot).await;
                tokio::select! {
                    () = slot.wake.notified() => {}
                    () = tokio::time::sleep(pause) => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

    /// How long the driver may sleep: until the next deadline, at most a tick.
    async fn pause(&self, slot: &TaskSlot) -> Duration {
        let tick = self.inner.config.tick;
        let deadline = slot.runtime.lock().await.machine.next_deadline();
        let now = now().get();
        deadline.map_or(tick, |d| Duration::from_millis(d.get().saturating_sub(now)).min(tick))
    }

    /// One pass of the driver; returns whether the task has finished.
    async fn step(&self, slot: &TaskSlot) -> Result<bool, DriverError> {
        let started = slot.runtime.lock().await.machine.is_started();
        if started {
            self.log_actions(slot, self.transition(slot, now(), Event::Tick, None).await?);
        } else if !self.try_start(slot).await? {
            return Ok(false);
        }
        // Carry out what the machine waits for, until it waits on the network.
        loop {
            let pending = slot.runtime.lock().await.machine.pending_actions();
            let mut progressed = false;
            for action in pending {
                match action {
                    Action::RequestAggregation { round, base_model, spec, updates } => {
                        let outcome = self.aggregate(&slot.record.spec, base_model, spec, &updates).await;
                        if let AggregationOutcome::Failed { reason } = &outcome {
                            tracing::warn!(task = %slot.record.id, %round, "aggregation failed: {reason}");
                        }
                        let event = Event::AggregationFinished { round, outcome };
                        self.log_actions(slot, self.transition(slot, now(), event, None).await?);
                        progressed = true;
                    }
                    Action::RequestSettlement { round, report, global_model } => {
                        let next = self.settle(slot, round, report, global_model).await?;
                        let event = Event::SettlementCommitted { round, next: Some(next) };
                        self.log_actions(slot, self.transition(slot, now(), event, None).await?);
                        self.inner.metrics.round_settled();
                        progressed = true;
                    }
                    Action::FinishTask { best, .. } => {
                        if let Some(best) = best {
                            // Until it is written, the driver retries (and a
                            // restart promotes it: `promote_pending`).
                            self.promote(&slot.record, best)
                                .await
                                .map_err(|e| DriverError::Promotion(e.to_string()))?;
                        }
                        return Ok(true);
                    }
                    _ => {}
                }
            }
            if !progressed {
                return Ok(false);
            }
        }
    }

    /// Opens a task's first round now, without waiting for the rest of its
    /// join window, if it has eligible participants; returns whether it runs.
    pub async fn start_now(&self, task: TaskId) -> bool {
        let Some(slot) = self.slot(task) else { return false };
        if slot.runtime.lock().await.machine.is_started() {
            return true;
        }
        let started = self.open_first_round(&slot).await.unwrap_or(false);
        slot.wake.notify_one();
        started
    }

    /// Opens the task's first round once its join window has passed and it
    /// has eligible participants; returns whether it is running.
    async fn try_start(&self, slot: &TaskSlot) -> Result<bool, DriverError> {
        let window = u64::try_from(self.inner.config.join_window.as_millis()).unwrap_or(u64::MAX);
        if now().get() < slot.record.created_at.get().saturating_add(window) {
            return Ok(false);
        }
        self.open_first_round(slot).await
    }

    async fn open_first_round(&self, slot: &TaskSlot) -> Result<bool, DriverError> {
        let now = now();
        let participants = self.participants(slot.record.id).await?;
        let event = Event::TaskStarted { initial_model: slot.record.initial_model, participants };
        match self.transition(slot, now, event, None).await {
            Ok(actions) => {
                self.log_actions(slot, actions);
                Ok(true)
            }
            Err(TransitionError::Refused(Refusal::NoEligibleTrainers | Refusal::NoEligibleValidators)) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    fn log_actions(&self, slot: &TaskSlot, actions: Vec<Action>) {
        let task = slot.record.id;
        for action in actions {
            match action {
                Action::PublishRound { round, trainers, .. } => {
                    tracing::info!(%task, %round, sampled = trainers.len(), "round open");
                }
                Action::DropStragglers { round, trainers } => {
                    tracing::info!(%task, %round, dropped = trainers.len(), "training closed without stragglers");
                }
                Action::AssignValidators { round, assignments, .. } => {
                    tracing::info!(%task, %round, submissions = assignments.len(), "validation open");
                }
                Action::DropLateValidators { round, validators } => {
                    tracing::info!(%task, %round, late = validators.len(), "validation closed without late validators");
                }
                Action::RequestAggregation { .. } | Action::RequestSettlement { .. } | Action::FinishTask { .. } => {}
            }
        }
    }

    /// Everyone who joined the task, with the effective stake the ledger
    /// holds for them in the role they joined as (own stake plus
    /// delegations, lock multipliers applied).
    pub(crate) async fn participants(&self, task: TaskId) -> Result<Participants, DriverError> {
        let mut participants = Participants::default();
        for join in self.inner.store.joins(task).await? {
            let role = ledger_role(join.role);
            let bonds = self.inner.ledger.bonds_of_node(&join.participant, role).await?;
            let stake: u128 = bonds.iter().map(starling_staking::Bond::effective).sum();
            match join.role {
                Role::Trainer => participants.trainers.insert(join.participant, stake),
                Role::Validator => participants.validators.insert(join.participant, stake),
            };
        }
        Ok(participants)
    }

    /// Combines the accepted updates with the task's rule into a new global
    /// model and stores it. FedAvg (and `best`, which keeps the top update)
    /// streams the updates one at a time into an accumulator, in memory
    /// O(model); the coordinate-wise and distance rules need all updates at
    /// once.
    async fn aggregate(
        &self,
        task: &TaskSpec,
        base_model: ContentHash,
        spec: AggregationSpec,
        updates: &[AggregationInput],
    ) -> AggregationOutcome {
        match self.try_aggregate(task, base_model, spec, updates).await {
            Ok(model) => AggregationOutcome::Succeeded { model },
            Err(reason) => AggregationOutcome::Failed { reason },
        }
    }

    async fn try_aggregate(
        &self,
        task: &TaskSpec,
        base_model: ContentHash,
        spec: AggregationSpec,
        updates: &[AggregationInput],
    ) -> Result<ContentHash, String> {
        if spec.server_optimizer.is_some() {
            // Their moments must persist across rounds; not built yet.
            return Err("server optimizers are not supported by the coordinator yet".to_owned());
        }
        let tensors = &task.model.tensors;
        let limit = task.payload_limit_bytes();
        let layout = Layout::new(tensors.iter().map(|t| TensorInfo::new(t.name.clone(), t.shape.clone())).collect())
            .map_err(|e| e.to_string())?;
        let base = self.load_flat(base_model, tensors, limit).await?;
        let delta = match spec.rule {
            AggregationRule::FedAvg | AggregationRule::Best => {
                let chosen =
                    if spec.rule == AggregationRule::Best { &updates[..updates.len().min(1)] } else { updates };
                let mut sum = FedAvg::new(&layout);
                if let Some(clip) = spec.norm_clip {
                    sum = sum.with_clip(clip).map_err(|e| e.to_string())?;
                }
                for (i, update) in chosen.iter().enumerate() {
                    let flat = self.load_flat(update.payload, tensors, limit).await?;
                    let view = layout.view_flat(i, &flat).map_err(|e| e.to_string())?;
                    sum.add(i, &view, update.weight as f64).map_err(|e| e.to_string())?;
                }
                sum.finish().map_err(|e| e.to_string())?
            }
            rule => {
                let rule = robust_rule(rule)?;
                let mut flats = Vec::with_capacity(updates.len());
                for update in updates {
                    flats.push(self.load_flat(update.payload, tensors, limit).await?);
                }
                let views = flats
                    .iter()
                    .enumerate()
                    .map(|(i, flat)| layout.view_flat(i, flat))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                let weights = updates.iter().map(|u| u.weight as f64).collect();
                let mut inputs = Inputs::new(&layout, views, weights).map_err(|e| e.to_string())?;
                if let Some(clip) = spec.norm_clip {
                    inputs = inputs.clip(clip).map_err(|e| e.to_string())?;
                }
                let aggregate = tokio::task::block_in_place(|| aggregate_into(&rule, &inputs, Vec::new()));
                aggregate.map_err(|e| e.to_string())?.model
            }
        };
        let mut model = base;
        for (w, d) in model.iter_mut().zip(&delta) {
            *w += d;
        }
        if let Some(i) = model.iter().position(|v| !v.is_finite()) {
            return Err(format!("the new global model has a non-finite value at flat index {i}"));
        }
        let refs: Vec<TensorRef<'_>> =
            layout.split(&model).map(|(info, values)| TensorRef::new(&info.name, &info.shape, values)).collect();
        let encoded = UpdatePayload::encode(&refs).map_err(|e| e.to_string())?;
        let hash = *encoded.hash();
        self.inner.artifacts.put(hash, encoded.bytes()).await.map_err(|e| e.to_string())?;
        Ok(hash)
    }

    /// A stored payload as one flat buffer in layout order.
    async fn load_flat(
        &self,
        hash: ContentHash,
        tensors: &[starling_protocol::TensorSpec],
        limit: usize,
    ) -> Result<Vec<f32>, String> {
        let bytes = self.inner.artifacts.get(hash).await.map_err(|e| format!("payload {hash}: {e}"))?;
        let views = decode_view(&bytes, tensors, limit).map_err(|e| format!("payload {hash}: {e}"))?;
        let mut flat = Vec::with_capacity(views.iter().map(|v| v.len()).sum());
        for view in &views {
            flat.extend(view.values());
        }
        Ok(flat)
    }

    /// Settles `round` in the ledger (once, whatever the retries), records
    /// it for the dashboard, and returns the participants of the next round.
    async fn settle(
        &self,
        slot: &TaskSlot,
        round: RoundNumber,
        report: RoundReport,
        global_model: ContentHash,
    ) -> Result<Participants, DriverError> {
        let task = slot.record.id;
        let now = now();
        let key = format!("settle:{task}:{round}");
        let (accepted, rejected) = (report.accepted.len(), report.rejected.len());
        match self.inner.ledger.apply(&key, &Operation::SettleRound(report), now.to_ledger()).await {
            Ok(outcome) => {
                tracing::info!(%task, %round, rewarded = outcome.rewarded.micro(), slashed = outcome.slashed.micro(), "round settled");
            }
            // Settled under another key by an earlier run: the same thing.
            Err(starling_staking::StoreError::Ledger(LedgerError::RoundAlreadySettled { .. })) => {}
            Err(error) => return Err(error.into()),
        }
        let metrics = match &self.inner.evaluator {
            Some(evaluator) => match self.inner.artifacts.get(global_model).await {
                Ok(bytes) => {
                    let evaluator = evaluator.clone();
                    let spec = slot.record.spec.clone();
                    tokio::task::spawn_blocking(move || evaluator.evaluate(&spec, &bytes))
                        .await
                        .map_err(|e| DriverError::Evaluation(e.to_string()))?
                        .map_err(DriverError::Evaluation)?
                }
                Err(error) => return Err(DriverError::Evaluation(format!("global model {global_model}: {error}"))),
            },
            None => None,
        };
        let record = RoundRecord {
            task,
            round,
            global_model,
            accuracy: metrics.map(|m| m.0),
            loss: metrics.map(|m| m.1),
            accepted: u32::try_from(accepted).unwrap_or(u32::MAX),
            rejected: u32::try_from(rejected).unwrap_or(u32::MAX),
            settled_at: now,
        };
        match self.inner.store.record_round(&record).await {
            Ok(Recorded::Inserted | Recorded::AlreadyRecorded) => {}
            // Recorded by an earlier run with a different time or metric.
            Err(StoreError::Duplicate(_)) => {}
            Err(error) => return Err(error.into()),
        }
        self.participants(task).await
    }
}

/// Why a driver pass stopped; it is retried on the next pass.
#[derive(Debug, Error)]
pub(crate) enum DriverError {
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("coordinator store: {0}")]
    Store(#[from] StoreError),
    #[error("ledger: {0}")]
    Ledger(#[from] starling_staking::StoreError),
    #[error("evaluating the global model: {0}")]
    Evaluation(String),
    #[error("promoting the best model: {0}")]
    Promotion(String),
}

pub(crate) fn ledger_role(role: Role) -> starling_staking::Role {
    match role {
        Role::Trainer => starling_staking::Role::Trainer,
        Role::Validator => starling_staking::Role::Validator,
    }
}

fn robust_rule(rule: AggregationRule) -> Result<Rule, String> {
    let count = |n: u32| usize::try_from(n).map_err(|e| e.to_string());
    Ok(match rule {
        AggregationRule::FedAvg | AggregationRule::Best => Rule::FedAvg,
        AggregationRule::Median => Rule::Median,
        AggregationRule::TrimmedMean { beta } => Rule::TrimmedMean { beta },
        AggregationRule::Krum { byzantine } => Rule::Krum { byzantine: count(byzantine)? },
        AggregationRule::MultiKrum { byzantine, select } => {
            Rule::MultiKrum { byzantine: count(byzantine)?, select: count(select)? }
        }
        AggregationRule::Bulyan { byzantine } => Rule::Bulyan { byzantine: count(byzantine)? },
    })
}
