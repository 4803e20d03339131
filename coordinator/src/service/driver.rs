//! Each task's driver: the loop that ticks its machine at every deadline,
//! opens the task once its join window has passed, and carries out what the
//! machine asks for (aggregation, settlement, promotion) until the task
//! finishes.
//!
//! A pass of the driver ([`Coordinator::drive`]) reads the service's clock
//! once per transition and does not sleep; the loop around it
//! ([`Coordinator::run_task`]) sleeps until the next deadline, a tick, or a
//! wake-up from a request. A service started with
//! [`ServiceConfig::run_drivers`](super::ServiceConfig::run_drivers) off runs
//! no loop: its caller drives each pass, on a clock it moves by hand.

use std::time::Duration;

use starling_protocol::{Role, TaskId};
use starling_staking::LedgerStore;
use thiserror::Error;

use super::task_slot::{TaskSlot, TransitionError};
use super::{Coordinator, ServiceError};
use crate::artifacts::ArtifactStore;
use crate::round::{Action, AggregationOutcome, Event, Participants, Refusal};
use crate::store::{CoordinatorStore, StoreError};

/// Why a driver pass stopped; the next pass tries again.
#[derive(Debug, Error)]
pub enum DriverError {
    /// The machine refused an event the driver fed it.
    #[error("the round machine refused: {0}")]
    Refused(#[from] Refusal),
    /// The coordinator's store failed.
    #[error("coordinator store: {0}")]
    Store(#[from] StoreError),
    /// The ledger failed.
    #[error("ledger: {0}")]
    Ledger(#[from] starling_staking::StoreError),
    /// The coordinator could not measure a new global model.
    #[error("evaluating the global model: {0}")]
    Evaluation(String),
    /// The finished task's best model could not be promoted.
    #[error("promoting the best model: {0}")]
    Promotion(#[source] Box<ServiceError>),
    /// This coordinator does not run the task.
    #[error("task {0} is not run by this coordinator")]
    UnknownTask(TaskId),
}

impl From<TransitionError> for DriverError {
    fn from(error: TransitionError) -> Self {
        match error {
            TransitionError::Refused(refusal) => Self::Refused(refusal),
            TransitionError::Store(error) => Self::Store(error),
        }
    }
}

/// Where a task stands after a driver pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// Its first round has not opened: the join window is still open, or it
    /// has no eligible trainer or validator yet.
    Waiting,
    /// Running; the machine waits on trainers, validators or a deadline.
    Running,
    /// Its last round has settled (and its best model is promoted).
    Finished,
}

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Runs one pass of `task`'s driver now: ticks its machine at the
    /// service clock's time, opens its first round if its join window has
    /// passed, and carries out every aggregation, settlement and promotion
    /// the machine asks for until it waits on the network or a deadline.
    /// This is what the service's own loop does at each wake-up; call it
    /// yourself on a service started with
    /// [`run_drivers`](super::ServiceConfig::run_drivers) off.
    pub async fn drive(&self, task: TaskId) -> Result<Drive, DriverError> {
        let slot = self.slot(task).ok_or(DriverError::UnknownTask(task))?;
        let drive = self.step(&slot).await?;
        if drive == Drive::Finished {
            slot.finished.send_replace(true);
        }
        Ok(drive)
    }

    /// Starts the task's driver loop, unless the service leaves driving to
    /// its caller: it wakes at every deadline (and every
    /// [`tick`](super::ServiceConfig::tick)), or when a request may have closed
    /// a phase, and ends when the task finishes or the service shuts down.
    pub(crate) fn run_task(&self, slot: std::sync::Arc<TaskSlot>) {
        if !self.inner.config.run_drivers {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let task = slot.record.id;
            let mut shutdown = this.inner.shutdown.subscribe();
            loop {
                if *shutdown.borrow() {
                    return;
                }
                match this.step(&slot).await {
                    Ok(Drive::Finished) => {
                        slot.finished.send_replace(true);
                        tracing::info!(%task, "task finished");
                        return;
                    }
                    Ok(Drive::Waiting | Drive::Running) => {}
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

    /// How long the driver may sleep (see [`pause`]).
    async fn pause(&self, slot: &TaskSlot) -> Duration {
        let (started, deadline) = {
            let runtime = slot.runtime.lock().await;
            (runtime.machine.is_started(), runtime.machine.next_deadline())
        };
        let window = u64::try_from(self.inner.config.join_window.as_millis()).unwrap_or(u64::MAX);
        let window_end = slot.record.created_at.get().saturating_add(window);
        let waiting = (!started).then_some(window_end);
        pause(self.now().get(), waiting, deadline.map(|d| d.get()), self.inner.config.tick)
    }

    /// One pass of the driver.
    async fn step(&self, slot: &TaskSlot) -> Result<Drive, DriverError> {
        let started = slot.runtime.lock().await.machine.is_started();
        if started {
            self.log_actions(slot, self.transition(slot, self.now(), Event::Tick, None).await?);
        } else if !self.try_start(slot).await? {
            if self.unjoined_for_too_long(slot) {
                self.expire(slot).await?;
                return Ok(Drive::Finished);
            }
            return Ok(Drive::Waiting);
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
                        self.log_actions(slot, self.transition(slot, self.now(), event, None).await?);
                        progressed = true;
                    }
                    Action::RequestSettlement { round, report, global_model } => {
                        let next = self.settle(slot, round, report, global_model, self.now()).await?;
                        let event = Event::SettlementCommitted { round, next: Some(next) };
                        self.log_actions(slot, self.transition(slot, self.now(), event, None).await?);
                        self.inner.metrics.round_settled();
                        progressed = true;
                    }
                    Action::FinishTask { best, .. } => {
                        if let Some(best) = best {
                            // Until it is written, the driver retries (and a
                            // restart promotes it: `promote_pending`).
                            self.promote(&slot.record, best).await.map_err(|e| DriverError::Promotion(Box::new(e)))?;
                        }
                        return Ok(Drive::Finished);
                    }
                    _ => {}
                }
            }
            if !progressed {
                return Ok(Drive::Running);
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
        if self.now().get() < slot.record.created_at.get().saturating_add(window) {
            return Ok(false);
        }
        self.open_first_round(slot).await
    }

    /// Whether a task that has not started is past its join window by more
    /// than [`unjoined_expiry`](super::ServiceConfig::unjoined_expiry).
    fn unjoined_for_too_long(&self, slot: &TaskSlot) -> bool {
        let config = &self.inner.config;
        let wait = config.join_window.saturating_add(config.unjoined_expiry);
        let wait = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.now().get() >= slot.record.created_at.get().saturating_add(wait)
    }

    /// Closes a task nobody eligible joined: its pool goes back to its
    /// creator, then the task is marked finished without having run (a
    /// restart between the two finds an unstarted task whose pool has no
    /// rounds left and finishes it), and this coordinator forgets its runtime, so a late
    /// join hears the task is gone.
    async fn expire(&self, slot: &TaskSlot) -> Result<(), DriverError> {
        let task = slot.record.id;
        self.refund_pool(task, slot.record.creator).await?;
        let version = slot.runtime.lock().await.version;
        self.inner.store.save_state(task, version, &[], true).await?;
        self.inner.tasks.write().expect("task map lock").remove(&task);
        tracing::info!(%task, "nobody eligible joined: task closed and its pool refunded");
        Ok(())
    }

    async fn open_first_round(&self, slot: &TaskSlot) -> Result<bool, DriverError> {
        let participants = self.participants(slot.record.id).await?;
        let event = Event::TaskStarted { initial_model: slot.record.initial_model, participants };
        match self.transition(slot, self.now(), event, None).await {
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
            let stake = self.effective_stake(&join.participant, join.role).await?;
            match join.role {
                Role::Trainer => participants.trainers.insert(join.participant, stake),
                Role::Validator => participants.validators.insert(join.participant, stake),
            };
        }
        Ok(participants)
    }
}

/// How often a task that waits for participants looks again when nothing
/// woke it: a join wakes it at once; this catches stake that changed
/// without a join.
pub(crate) const WAITING_RECHECK: Duration = Duration::from_secs(30);

/// How long a task's driver may sleep at `now` (Unix ms). A running task:
/// until its next deadline, at most a `tick`. A task waiting for
/// participants (`waiting`: the end of its join window): until the window
/// ends, then [`WAITING_RECHECK`] at a time, since each look reads every
/// join and stake from the store and a task nobody joins must not cost a
/// query every tick for ever.
pub(crate) fn pause(now: u64, waiting: Option<u64>, deadline: Option<u64>, tick: Duration) -> Duration {
    match waiting {
        Some(window_end) if now < window_end => Duration::from_millis(window_end - now).min(WAITING_RECHECK.max(tick)),
        Some(_) => WAITING_RECHECK.max(tick),
        None => deadline.map_or(tick, |d| Duration::from_millis(d.saturating_sub(now)).min(tick)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(250);

    #[test]
    fn a_running_task_sleeps_to_its_deadline_at_most_a_tick() {
        assert_eq!(pause(1_000, None, Some(1_100), TICK), Duration::from_millis(100));
        assert_eq!(pause(1_000, None, Some(9_000), TICK), TICK);
        assert_eq!(pause(1_000, None, Some(900), TICK), Duration::ZERO, "a passed deadline: now");
        assert_eq!(pause(1_000, None, None, TICK), TICK);
    }

    #[test]
    fn a_task_nobody_joins_is_looked_at_rarely() {
        // Inside its join window it wakes when the window ends (or on a join).
        assert_eq!(pause(1_000, Some(3_000), None, TICK), Duration::from_millis(2_000));
        assert_eq!(pause(1_000, Some(1_000_000), None, TICK), WAITING_RECHECK);
        // After it, every WAITING_RECHECK, not every tick.
        assert_eq!(pause(5_000, Some(3_000), None, TICK), WAITING_RECHECK);
        assert!(WAITING_RECHECK >= 100 * TICK);
        // A service configured with a tick longer than that keeps its tick.
        assert_eq!(pause(5_000, Some(3_000), None, Duration::from_secs(60)), Duration::from_secs(60));
    }
}
