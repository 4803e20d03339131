//! Settlement in the service: a round's rewards and slashes, its verdicts
//! and its record, written as three idempotent writes rather than one
//! transaction (the ledger and the coordinator's tables may live in
//! different databases):
//!
//! 1. the ledger settles the round under the key `settle:{task}:{round}`,
//!    and refuses a second settlement of the same round under any key;
//! 2. the round's verdicts (what agreement decided for every submission and
//!    validator, with the stakes it weighed) are recorded write-once;
//! 3. the round record (the new global model and its measured accuracy) is
//!    recorded write-once.
//!
//! A crash between any two is repaired by the driver's retry, which repeats
//! all three: each repeat changes nothing that was written. Only then is the
//! machine told the settlement is committed.

use starling_protocol::{ContentHash, RoundNumber};
use starling_staking::{LedgerError, LedgerStore, Operation, RoundReport};

use super::Coordinator;
use super::driver::DriverError;
use super::task_slot::TaskSlot;
use crate::artifacts::ArtifactStore;
use crate::round::{Participants, UnixMillis};
use crate::store::{CoordinatorStore, Recorded, RoundRecord, StoreError};

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Settles `round` at `now` (once, whatever the retries), records its
    /// verdicts and its round record, and returns the participants of the
    /// next round.
    pub(crate) async fn settle(
        &self,
        slot: &TaskSlot,
        round: RoundNumber,
        report: RoundReport,
        global_model: ContentHash,
        now: UnixMillis,
    ) -> Result<Participants, DriverError> {
        let task = slot.record.id;
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
        let verdicts = slot.runtime.lock().await.machine.verdicts().filter(|v| v.round == round);
        if let Some(verdicts) = verdicts {
            match self.inner.store.record_verdicts(&verdicts).await {
                Ok(Recorded::Inserted | Recorded::AlreadyRecorded) => {}
                Err(StoreError::Duplicate(duplicate)) => {
                    // The machine decides a round once and saves the decision
                    // before asking for settlement: a different stored verdict
                    // is a bug or a tampered database. The ledger has settled;
                    // the round must not hang on its dashboard record.
                    tracing::error!(%task, %round, "the stored verdict differs from the machine's: {duplicate}");
                }
                Err(error) => return Err(error.into()),
            }
        }
        let metrics = self.evaluate(slot, global_model).await?;
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

    /// The coordinator's own measure of a new global model (accuracy, loss),
    /// if it has an evaluator for the task. An evaluator that fails or
    /// panics is logged and the round is recorded without a measure: a
    /// broken evaluator must not stall the task (reading the model from the
    /// artifact store is retried like any storage failure).
    async fn evaluate(&self, slot: &TaskSlot, model: ContentHash) -> Result<Option<(f64, f64)>, DriverError> {
        let Some(evaluator) = &self.inner.evaluator else { return Ok(None) };
        let bytes = self
            .inner
            .artifacts
            .get(model)
            .await
            .map_err(|e| DriverError::Evaluation(format!("global model {model}: {e}")))?;
        let evaluator = evaluator.clone();
        let spec = slot.record.spec.clone();
        let task = slot.record.id;
        match tokio::task::spawn_blocking(move || evaluator.evaluate(&spec, &bytes)).await {
            Ok(Ok(measured)) => Ok(measured),
            Ok(Err(reason)) => {
                tracing::warn!(%task, %model, "the evaluator failed; the round is recorded unmeasured: {reason}");
                Ok(None)
            }
            Err(panicked) => {
                tracing::error!(%task, %model, "the evaluator panicked; the round is recorded unmeasured: {panicked}");
                Ok(None)
            }
        }
    }
}
