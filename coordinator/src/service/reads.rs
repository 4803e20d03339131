//! The reads clients make over the wire. Unsigned, for anyone: a task, its
//! current round, a public model, a key's balance. Signed, for those allowed:
//! a validator's assignments, and an update for its trainer and its assigned
//! validators (updates are gradients, and gradients leak training data).

use std::collections::HashMap;

use starling_protocol::messages::MAX_LISTED_BONDS;
use starling_protocol::{
    AssignmentInfo, AssignmentPage, BalanceInfo, BondInfo, ContentHash, ErrorCode, FetchUpdate, GetAssignments,
    MAX_ASSIGNMENTS_PAGE, PublicKey, ReadRequest, ResponseBody, RoundInfo, SubmissionId, TaskInfo, WireError,
};
use starling_staking::{LedgerStore, PageRequest};

use super::Coordinator;
use super::task_slot::TaskSlot;
use super::wire_error::{artifact_error, ledger_error, refuse, store_error};
use crate::artifacts::{ArtifactError, ArtifactStore};
use crate::store::CoordinatorStore;

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// A stored blob (model or update) by hash.
    pub async fn blob(&self, hash: ContentHash) -> Result<Vec<u8>, WireError> {
        self.inner.artifacts.get(hash).await.map_err(|error| unreadable(hash, &error))
    }

    /// Answers an unsigned read. A [`ReadRequest::FetchBlob`] is answered
    /// with the blob's hash and length; the QUIC front sends its bytes after.
    pub(crate) async fn read(&self, read: ReadRequest) -> Result<ResponseBody, WireError> {
        match read {
            ReadRequest::GetTask { task } => {
                let record = self
                    .inner
                    .store
                    .task(task)
                    .await
                    .map_err(|e| store_error(&e))?
                    .ok_or_else(|| refuse(ErrorCode::UnknownTask, format!("no task {task}")))?;
                let round = match self.running(task).await {
                    Ok(slot) => self.round_info(&slot).await?,
                    Err(_) => None,
                };
                Ok(ResponseBody::Task(Box::new(TaskInfo { task, creator: record.creator, spec: record.spec, round })))
            }
            ReadRequest::GetRound { task } => {
                let slot = self.running(task).await?;
                self.round_info(&slot)
                    .await?
                    .map(ResponseBody::Round)
                    .ok_or_else(|| refuse(ErrorCode::NotStarted, format!("task {task} has not started yet")))
            }
            ReadRequest::RetiredGetAssignments { .. } => Err(refuse(
                ErrorCode::UnknownKind,
                "assignments are read with a signed GetAssignments now: upgrade the client",
            )),
            ReadRequest::FetchBlob { hash } => {
                // Models are public; an update is answered as if it did not
                // exist, so its hash is no use to anyone but its readers.
                if !self.is_public_model(hash).await? {
                    return Err(refuse(ErrorCode::UnknownBlob, format!("no public model {hash}")));
                }
                self.blob_answer(hash).await
            }
            ReadRequest::GetBalance { key } => self.balance(key).await,
        }
    }

    /// The page of `validator`'s assignments in `read.round` after `read.after`.
    pub(crate) async fn assignments(
        &self,
        validator: PublicKey,
        read: GetAssignments,
    ) -> Result<ResponseBody, WireError> {
        let GetAssignments { task, round, after } = read;
        let slot = self.running(task).await?;
        let ((assigned, more), base_model) = {
            let runtime = slot.runtime.lock().await;
            let machine = &runtime.machine;
            if machine.round() != Some(round) {
                return Ok(ResponseBody::Assignments(AssignmentPage::default()));
            }
            (machine.assignments_for(&validator, after, MAX_ASSIGNMENTS_PAGE), machine.global_model())
        };
        let Some(base_model) = base_model else {
            return Ok(ResponseBody::Assignments(AssignmentPage::default()));
        };
        if assigned.is_empty() {
            return Ok(ResponseBody::Assignments(AssignmentPage::default()));
        }
        let lengths: HashMap<SubmissionId, u64> = self
            .inner
            .store
            .submissions(task, round)
            .await
            .map_err(|e| store_error(&e))?
            .into_iter()
            .map(|s| (s.id, s.len))
            .collect();
        let items: Vec<AssignmentInfo> = assigned
            .into_iter()
            .filter_map(|(submission, trainer, update)| {
                let update_len = *lengths.get(&submission)?;
                Some(AssignmentInfo { submission, trainer, update, update_len, base_model })
            })
            .collect();
        let next = if more { items.last().map(|a| a.submission) } else { None };
        Ok(ResponseBody::Assignments(AssignmentPage { items, next }))
    }

    /// The update of `read.submission`, for its trainer or a validator
    /// assigned to score it in the current round; the bytes follow.
    pub(crate) async fn fetch_update(&self, reader: PublicKey, read: FetchUpdate) -> Result<ResponseBody, WireError> {
        let slot = self.running(read.task).await?;
        let update = slot.runtime.lock().await.machine.update_for(&reader, read.round, read.submission);
        let Some(hash) = update else {
            return Err(refuse(
                ErrorCode::Unauthorized,
                format!(
                    "{reader} is neither the trainer of submission {} nor assigned to score it in round {} of task {}",
                    read.submission, read.round, read.task
                ),
            ));
        };
        self.blob_answer(hash).await
    }

    /// Whether `hash` is a model anyone may read: some task's initial model
    /// or some recorded round's model. A round's model is recorded when it
    /// settles, before the next round (whose base it is) opens, so every
    /// model a round serves is in the store by then.
    async fn is_public_model(&self, hash: ContentHash) -> Result<bool, WireError> {
        self.inner.store.is_public_model(hash).await.map_err(|e| store_error(&e))
    }

    /// A blob's announcement (its hash and length), or `UnknownBlob`.
    async fn blob_answer(&self, hash: ContentHash) -> Result<ResponseBody, WireError> {
        match self.inner.artifacts.len(hash).await {
            Ok(Some(len)) => Ok(ResponseBody::Blob { hash, len }),
            Ok(None) => Err(unreadable(hash, &ArtifactError::NotFound(hash))),
            Err(error) => Err(unreadable(hash, &error)),
        }
    }

    async fn round_info(&self, slot: &TaskSlot) -> Result<Option<RoundInfo>, WireError> {
        let (info, model) = {
            let runtime = slot.runtime.lock().await;
            let machine = &runtime.machine;
            let (Some((round, phase)), Some(model), Some((_, training))) =
                (machine.progress(), machine.global_model(), machine.round_times())
            else {
                return Ok(None);
            };
            let info = RoundInfo {
                task: slot.record.id,
                round,
                phase,
                global_model: model,
                global_model_len: 0,
                training_deadline_ms: training.get(),
                validation_deadline_ms: machine.validation_deadline().map(|d| d.get()),
                sampled_trainers: machine.sampled_trainers(),
                task_finished: machine.is_finished(),
            };
            (info, model)
        };
        let len = self.inner.artifacts.len(model).await.map_err(|e| artifact_error(&e))?;
        Ok(Some(RoundInfo { global_model_len: len.unwrap_or(0), ..info }))
    }

    async fn balance(&self, key: PublicKey) -> Result<ResponseBody, WireError> {
        let ledger = &self.inner.ledger;
        let balances = ledger.balances(&key).await.map_err(|e| ledger_error(&e))?;
        let limit = u32::try_from(MAX_LISTED_BONDS).unwrap_or(u32::MAX);
        let page = ledger.positions(&key, PageRequest { after: None, limit }).await.map_err(|e| ledger_error(&e))?;
        let bonds = page
            .items
            .iter()
            .map(|p| BondInfo {
                bond: p.bond.id.0,
                node: p.bond.node,
                role: p.bond.role,
                amount: p.bond.amount.micro(),
                lock_days: p.bond.lock.get(),
                unlock_at_ms: p.bond.unlock_at.0.saturating_mul(1_000),
            })
            .collect();
        Ok(ResponseBody::Balance(BalanceInfo {
            key,
            free: balances.free.micro(),
            staked: balances.staked.micro(),
            delegated: balances.delegated.micro(),
            bonds,
            more_bonds: page.next.is_some(),
        }))
    }
}

/// What a client is told when the blob `hash` could not be read: unknown if
/// it is not stored, our failure otherwise.
pub(crate) fn unreadable(hash: ContentHash, error: &ArtifactError) -> WireError {
    match error {
        ArtifactError::NotFound(_) => refuse(ErrorCode::UnknownBlob, format!("no blob {hash}")),
        other => artifact_error(other),
    }
}
