//! The requests that act on tasks: create one, join one, submit an update,
//! score a submission.
//!
//! Each submission and score follows the service's rule (see
//! [`service`](super)): its record is written, then the machine that counts
//! it saved, then the client answered.

use starling_protocol::payload::decode_view;
use starling_protocol::{
    CreateTask, ErrorCode, JoinTask, PublicKey, ResponseBody, Role, SubmitScore, SubmitUpdate, TaskId, WireError,
};
use starling_staking::{Amount, LedgerError, LedgerStore, Operation};

use super::task_slot::Record;
use super::wire_error::{artifact_error, internal, ledger_error, refuse, store_error};
use super::{Coordinator, ServiceError};
use crate::artifacts::ArtifactStore;
use crate::round::{Event, PayloadCheck, ScoreValues};
use crate::store::{CoordinatorStore, Join, NewTask, ScoreRecord, SubmissionRecord};

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Registers a task with its initial `model`, escrows its reward pool
    /// and starts its driver.
    ///
    /// Escrow first, store second: a task id is reserved, the pool escrowed
    /// under it, and only then are the model and the task's row written. A
    /// creator whose pool the ledger refuses leaves nothing behind (no row,
    /// no blob) but a spent number; a failure after the escrow refunds it.
    pub(crate) async fn create_task(
        &self,
        creator: PublicKey,
        create: CreateTask,
        model: &[u8],
    ) -> Result<ResponseBody, WireError> {
        let spec = create.spec;
        decode_view(model, &spec.model.tensors, spec.payload_limit_bytes()).map_err(|e| WireError::from_error(&e))?;
        let created_at = self.now();
        let store = &self.inner.store;
        let task = store.reserve_task(&creator, created_at).await.map_err(|e| store_error(&e))?;
        let fund = Operation::FundTask {
            funder: creator,
            task,
            amount: Amount::from_micro(spec.reward_pool),
            total_rounds: spec.rounds,
        };
        if let Err(error) = self.inner.ledger.apply(&format!("fund:{task}"), &fund, created_at.to_ledger()).await {
            // A refusal escrowed nothing. A database failure may have
            // committed before it failed: its reservation stays, for the
            // start-up sweep to refund.
            if matches!(error, starling_staking::StoreError::Ledger(_))
                && let Err(release) = store.release_reservation(task).await
            {
                tracing::warn!(%task, "could not release a refused task's reservation: {release}");
            }
            return Err(ledger_error(&error));
        }
        let new = NewTask { creator, spec: spec.clone(), initial_model: create.initial_model, created_at };
        let stored = match self.inner.artifacts.put(create.initial_model, model).await {
            Ok(_) => store.create_task(task, &new).await.map_err(|e| store_error(&e)),
            Err(error) => Err(artifact_error(&error)),
        };
        if let Err(error) = stored {
            if let Err(refund) = self.refund_reservation(task, creator).await {
                tracing::error!(%task, "could not refund a task that was not stored (retried at start-up): {refund}");
            }
            return Err(error);
        }
        let slot = self.load_task(task).await.map_err(|e| internal("loading a new task", &e))?;
        self.run_task(slot);
        tracing::info!(%task, %creator, "task created");
        Ok(ResponseBody::TaskCreated { task })
    }

    /// Abandons a reservation, returns its pool (if one was escrowed) to its
    /// creator and forgets it: for a creation that failed after its escrow,
    /// and at start-up for one the process died in the middle of. Safe to
    /// repeat (the refund is idempotent) and to race a creation still under
    /// way elsewhere: once abandoned, the reservation cannot become a task.
    pub(crate) async fn refund_reservation(&self, task: TaskId, creator: PublicKey) -> Result<(), ServiceError> {
        self.inner.store.abandon_reservation(task).await?;
        self.refund_pool(task, creator).await?;
        self.inner.store.release_reservation(task).await?;
        tracing::info!(%task, %creator, "refunded a task that was never stored");
        Ok(())
    }

    /// Returns what is left in `task`'s pool to `creator` and closes it,
    /// under the one idempotency key a task's refund has, so it happens at
    /// most once whoever asks. A task with no pool has nothing to refund.
    pub(crate) async fn refund_pool(
        &self,
        task: TaskId,
        creator: PublicKey,
    ) -> Result<(), starling_staking::StoreError> {
        let refund = Operation::RefundTask { task, to: creator };
        match self.inner.ledger.apply(&format!("refund:{task}"), &refund, self.now().to_ledger()).await {
            Ok(_) | Err(starling_staking::StoreError::Ledger(LedgerError::UnknownTask { .. })) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Marks a task that never started and cannot pay anyone as finished
    /// without running it (see [`Coordinator::start`]).
    pub(crate) async fn cancel(&self, task: TaskId) {
        if let Err(error) = self.inner.store.save_state(task, 0, &[], true).await {
            tracing::error!(%task, "could not mark an unfunded task finished: {error}");
        }
    }

    /// Records `signer`'s standing request to take part in a task, if its
    /// effective stake in that role meets the task's minimum.
    pub(crate) async fn join(&self, signer: PublicKey, join: JoinTask) -> Result<ResponseBody, WireError> {
        let slot = self.running(join.task).await?;
        if slot.runtime.lock().await.machine.is_finished() {
            return Err(refuse(ErrorCode::TaskFinished, format!("task {} has finished", join.task)));
        }
        let spec = &slot.record.spec;
        let minimum = match join.role {
            Role::Trainer => spec.min_trainer_stake,
            Role::Validator => spec.min_validator_stake,
        };
        let stake = self.effective_stake(&signer, join.role).await.map_err(|e| ledger_error(&e))?;
        if stake < u128::from(minimum) || (join.role == Role::Validator && stake == 0) {
            return Err(refuse(
                ErrorCode::InsufficientStake,
                format!(
                    "task {} needs an effective {} stake of at least {minimum} µSTAR; {signer} has {stake}",
                    join.task,
                    join.role.as_str()
                ),
            ));
        }
        let record = Join { task: join.task, participant: signer, role: join.role, joined_at: self.now() };
        self.inner.store.record_join(&record).await.map_err(|e| store_error(&e))?;
        slot.wake.notify_one();
        Ok(ResponseBody::Ack)
    }

    /// Records `trainer`'s update, whose payload is stored and was checked
    /// (`checked`), and hands it to the task's machine.
    pub(crate) async fn submit(
        &self,
        trainer: PublicKey,
        update: SubmitUpdate,
        checked: Result<(), WireError>,
        envelope: Vec<u8>,
    ) -> Result<ResponseBody, WireError> {
        let slot = self.running(update.task).await?;
        let submission = update.submission_id(&trainer);
        let check = match &checked {
            Ok(()) => PayloadCheck::Passed,
            Err(error) => PayloadCheck::Failed { reason: format!("{}: {}", error.code.as_str(), error.message) },
        };
        let received_at = self.now();
        let record = SubmissionRecord {
            task: update.task,
            round: update.round,
            trainer,
            id: submission,
            update: update.update,
            len: update.update_len,
            samples: update.samples,
            train_loss: Some(f64::from(update.train_loss)),
            check: check.clone(),
            envelope,
            received_at,
        };
        let event = Event::SubmissionReceived {
            round: update.round,
            trainer,
            submission,
            payload: update.update,
            samples: update.samples,
            check,
        };
        self.transition(&slot, received_at, event, Some(Record::Submission(record))).await.map_err(|e| e.to_wire())?;
        slot.wake.notify_one();
        self.inner.metrics.submission(checked.is_ok());
        match checked {
            Ok(()) => Ok(ResponseBody::UpdateAccepted { submission }),
            Err(error) => Err(WireError::new(
                error.code,
                format!("{}; recorded as this round's invalid submission", error.message),
            )),
        }
    }

    /// Records `validator`'s score and hands it to the task's machine.
    pub(crate) async fn score(
        &self,
        validator: PublicKey,
        score: SubmitScore,
        envelope: Vec<u8>,
    ) -> Result<ResponseBody, WireError> {
        let slot = self.running(score.task).await?;
        let values = ScoreValues { accuracy: score.accuracy, loss: score.loss, improvement: score.improvement };
        let received_at = self.now();
        let record = ScoreRecord {
            task: score.task,
            round: score.round,
            submission: score.submission,
            validator,
            values,
            envelope,
            received_at,
        };
        let event = Event::ScoreReceived { round: score.round, validator, submission: score.submission, values };
        self.transition(&slot, received_at, event, Some(Record::Score(record))).await.map_err(|e| e.to_wire())?;
        slot.wake.notify_one();
        self.inner.metrics.score();
        Ok(ResponseBody::Ack)
    }
}
