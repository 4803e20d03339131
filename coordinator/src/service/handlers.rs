//! What the coordinator does with each request, whatever the transport.
//!
//! Signed requests are verified first (envelope, signature, timestamp and
//! nonce), then checked against the message's own rules, then carried out.
//! A request refused at any step changes nothing and costs nothing; the
//! only refusals that cost are those of a correctly signed update whose
//! payload is invalid (wrong shapes, NaN or infinite values, a norm above the
//! task's bound): that is the trainer's one submission of the round, recorded
//! as invalid, and its trainer is slashed when the round settles.

use std::collections::HashMap;

use starling_protocol::TensorBytes;
use starling_protocol::messages::{MAX_LISTED_BONDS, SignedRequest};
use starling_protocol::payload::{PayloadError, StreamSummary, decode_view};
use starling_protocol::{
    AssignmentInfo, AssignmentPage, BalanceInfo, BondInfo, ContentHash, CreateTask, ErrorCode, JoinTask,
    MAX_ASSIGNMENTS_PAGE, MIN_UPDATE_NORM, PublicKey, ReadRequest, Request, Response, ResponseBody, Role, RoundInfo,
    RoundPhase, SignedEnvelope, SubmissionId, SubmitScore, SubmitUpdate, TaskId, TaskInfo, TaskSpec, Verified,
    WireError,
};
use starling_staking::{Amount, BondId, LedgerError, LedgerStore, Operation, PageRequest};

use super::tasks::{Record, TaskSlot, TransitionError, ledger_role};
use super::{Coordinator, now};
use crate::artifacts::ArtifactStore;
use crate::round::{Event, PayloadCheck, Refusal, RoundMachine, ScoreValues};
use crate::store::{CoordinatorStore, Join, NewTask, ScoreRecord, StoreError, SubmissionRecord};

fn refuse(code: ErrorCode, message: impl Into<String>) -> WireError {
    WireError::new(code, message)
}

/// A failure that is ours, not the client's: logged in full, answered
/// without detail.
pub(crate) fn internal(context: &str, error: &dyn std::fmt::Display) -> WireError {
    tracing::error!("{context}: {error}");
    refuse(ErrorCode::Internal, "internal error; the request was not carried out")
}

fn store_error(error: &StoreError) -> WireError {
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

fn refusal(refusal: &Refusal) -> WireError {
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

fn transition_error(error: &TransitionError) -> WireError {
    match error {
        TransitionError::Refused(r) => refusal(r),
        TransitionError::Store(s) => store_error(s),
    }
}

fn ledger_error(error: &starling_staking::StoreError) -> WireError {
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

/// The payload checks done before an update is stored.
pub(crate) fn check_update(spec: &TaskSpec, bytes: &[u8]) -> Result<(), WireError> {
    let tensors =
        decode_view(bytes, &spec.model.tensors, spec.payload_limit_bytes()).map_err(|e| WireError::from_error(&e))?;
    check_norm(spec, tensors.iter().map(TensorBytes::sum_of_squares).sum())
}

/// The payload checks of [`check_update`], on a payload checked piece by
/// piece as it arrived: `checked` is its
/// [`StreamingCheck`](starling_protocol::payload::StreamingCheck)'s verdict.
pub(crate) fn check_streamed_update(
    spec: &TaskSpec,
    checked: Result<StreamSummary, PayloadError>,
) -> Result<(), WireError> {
    let summary = checked.map_err(|e| WireError::from_error(&e))?;
    check_norm(spec, summary.sum_of_squares)
}

/// An update's squared L2 norm against the task's bound, if it has one, and
/// against [`MIN_UPDATE_NORM`]: an empty update is a free ride.
fn check_norm(spec: &TaskSpec, squared: f64) -> Result<(), WireError> {
    let norm = squared.sqrt();
    if norm < MIN_UPDATE_NORM {
        return Err(refuse(
            ErrorCode::EmptyUpdate,
            format!(
                "the update's L2 norm {norm:.1e} is below {MIN_UPDATE_NORM:e}: an update that changes nothing is no contribution"
            ),
        ));
    }
    if let Some(bound) = spec.max_update_norm
        && norm > bound
    {
        return Err(refuse(
            ErrorCode::NormTooLarge,
            format!("the update's L2 norm {norm:.4} exceeds the task's bound {bound}"),
        ));
    }
    Ok(())
}

/// The blob that came with a request.
#[derive(Debug)]
pub(crate) enum Blob<'a> {
    /// Its bytes, not stored yet.
    Bytes(&'a [u8]),
    /// An update's payload, already stored in the artifact store under its
    /// (verified) hash as it arrived, with the outcome of its checks
    /// ([`check_update`]).
    StoredUpdate(Result<(), WireError>),
}

impl Blob<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Bytes(bytes) => bytes,
            Self::StoredUpdate(_) => &[],
        }
    }
}

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Answers one request with the blob that came with it (the initial
    /// model of a [`CreateTask`], the payload of a [`SubmitUpdate`]), for
    /// callers that hold the whole request in memory. The QUIC server checks
    /// an upload's announcement before receiving its blob; this does the same
    /// checks in the same order.
    ///
    /// A [`ReadRequest::FetchBlob`] is answered with the blob's hash and
    /// length only; [`Coordinator::blob`] reads its bytes.
    pub async fn handle(&self, request: Request, blob: Option<&[u8]>) -> Response {
        match request {
            Request::Read(read) => self.read(read).await.into(),
            Request::Signed(envelope) => {
                let verified = match self.verify(&envelope) {
                    Ok(verified) => verified,
                    Err(error) => return error.into(),
                };
                if let Some((hash, len)) = upload(&verified.message) {
                    if let Err(error) = self.precheck(&verified).await {
                        return error.into();
                    }
                    let Some(bytes) = blob else {
                        return refuse(ErrorCode::LengthMismatch, format!("expected a {len}-byte upload, got none"))
                            .into();
                    };
                    if bytes.len() as u64 != len {
                        return refuse(
                            ErrorCode::LengthMismatch,
                            format!("announced {len} bytes, {} arrived", bytes.len()),
                        )
                        .into();
                    }
                    if ContentHash::of(bytes) != hash {
                        return refuse(ErrorCode::HashMismatch, "the upload's hash is not the one signed").into();
                    }
                }
                self.execute(verified, &envelope, blob.map(Blob::Bytes)).await.into()
            }
        }
    }

    /// A stored blob (model or update) by hash.
    pub async fn blob(&self, hash: ContentHash) -> Result<Vec<u8>, WireError> {
        match self.inner.artifacts.get(hash).await {
            Ok(bytes) => Ok(bytes),
            Err(crate::artifacts::ArtifactError::NotFound(_)) => {
                Err(refuse(ErrorCode::UnknownBlob, format!("no blob {hash}")))
            }
            Err(error) => Err(internal("artifact store", &error)),
        }
    }

    /// Checks a signed envelope: signature, version, freshness and nonce
    /// (a replay is refused), then the message's own field rules.
    pub(crate) fn verify_uncounted(&self, envelope: &SignedEnvelope) -> Result<Verified<SignedRequest>, WireError> {
        let verified = {
            let mut verifier = self.inner.verifier.lock().expect("verifier lock");
            SignedRequest::verify(&mut verifier, envelope, now().get()).map_err(|e| WireError::from_error(&e))?
        };
        verified.message.validate(&verified.signer).map_err(|e| WireError::from_error(&e))?;
        Ok(verified)
    }

    /// Whether an upload may be sent, before its bytes are read: the task,
    /// round, phase, sampling, duplicates and base model for an update.
    pub(crate) async fn precheck_uncounted(&self, verified: &Verified<SignedRequest>) -> Result<(), WireError> {
        match &verified.message {
            SignedRequest::SubmitUpdate(update) => {
                let slot = self.running(update.task).await?;
                let runtime = slot.runtime.lock().await;
                precheck_update(&runtime.machine, &verified.signer, update)
            }
            SignedRequest::CreateTask(create) => {
                let free = self.inner.ledger.free_balance(&verified.signer).await.map_err(|e| ledger_error(&e))?;
                if free.micro() < create.spec.reward_pool {
                    return Err(refuse(
                        ErrorCode::InsufficientBalance,
                        format!(
                            "the reward pool is {} µSTAR but the creator's free balance is {}",
                            create.spec.reward_pool,
                            free.micro()
                        ),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Carries out a verified request (prechecked, with its blob received
    /// and hash-checked if it is an upload).
    pub(crate) async fn execute_uncounted(
        &self,
        verified: Verified<SignedRequest>,
        envelope: &SignedEnvelope,
        blob: Option<Blob<'_>>,
    ) -> Result<ResponseBody, WireError> {
        let signer = verified.signer;
        // Kept with submissions and scores: anyone can re-verify them later.
        let signed = || postcard::to_stdvec(envelope).expect("an envelope always encodes");
        let key = format!("request:{signer}:{}", verified.nonce);
        let ledger = |op: Operation| async move {
            self.inner.ledger.apply(&key, &op, now().to_ledger()).await.map_err(|e| ledger_error(&e))
        };
        let amount = Amount::from_micro;
        match verified.message {
            SignedRequest::CreateTask(create) => {
                self.create_task(signer, create, blob.as_ref().map_or(&[], Blob::bytes)).await
            }
            SignedRequest::JoinTask(join) => self.join(signer, join).await,
            SignedRequest::SubmitUpdate(update) => {
                self.submit(signer, update, blob.unwrap_or(Blob::Bytes(&[])), signed()).await
            }
            SignedRequest::SubmitScore(score) => self.score(signer, score, signed()).await,
            SignedRequest::Stake(stake) => {
                let op = Operation::Stake {
                    owner: signer,
                    role: ledger_role(stake.role),
                    amount: amount(stake.amount),
                    lock_days: stake.lock_days,
                };
                bonded(ledger(op).await?)
            }
            SignedRequest::Delegate(delegate) => {
                let op = Operation::Delegate {
                    delegator: signer,
                    node: delegate.node,
                    role: ledger_role(delegate.role),
                    amount: amount(delegate.amount),
                    lock_days: delegate.lock_days,
                };
                bonded(ledger(op).await?)
            }
            SignedRequest::Unstake(unstake) => {
                let bond = self.owned_bond(signer, unstake.bond).await?;
                ledger(Operation::Unstake { owner: signer, bond: BondId(unstake.bond) }).await?;
                Ok(self.unbonded(bond))
            }
            SignedRequest::Undelegate(undelegate) => {
                let bond = self.owned_bond(signer, undelegate.bond).await?;
                ledger(Operation::Undelegate { delegator: signer, bond: BondId(undelegate.bond) }).await?;
                Ok(self.unbonded(bond))
            }
            SignedRequest::SetCommission(commission) => {
                ledger(Operation::SetCommission { node: signer, commission_ppm: commission.ppm }).await?;
                Ok(ResponseBody::Ack)
            }
            SignedRequest::Transfer(transfer) => {
                ledger(Operation::Transfer { from: signer, to: transfer.to, amount: amount(transfer.amount) }).await?;
                Ok(ResponseBody::Ack)
            }
            SignedRequest::Issue(issue) => {
                if signer != self.inner.config.admin {
                    return Err(refuse(ErrorCode::Unauthorized, "only the coordinator's admin key may issue tokens"));
                }
                ledger(Operation::Issue { by: signer, to: issue.to, amount: amount(issue.amount) }).await?;
                Ok(ResponseBody::Ack)
            }
        }
    }

    async fn owned_bond(&self, signer: PublicKey, bond: u64) -> Result<starling_staking::Bond, WireError> {
        match self.inner.ledger.bond(BondId(bond)).await.map_err(|e| ledger_error(&e))? {
            Some(found) if found.owner == signer => Ok(found),
            Some(_) => Err(refuse(ErrorCode::Unauthorized, format!("bond {bond} belongs to another key"))),
            None => Err(refuse(ErrorCode::UnknownBond, format!("no bond {bond}"))),
        }
    }

    fn unbonded(&self, bond: starling_staking::Bond) -> ResponseBody {
        let fee = self.inner.config.params.unstake_fee.of(bond.amount).micro();
        ResponseBody::Unbonded { bond: bond.id.0, returned: bond.amount.micro() - fee, fee }
    }

    /// A task's runtime: one this coordinator runs, or a finished one,
    /// loaded (without a driver) on first use.
    pub(crate) async fn running(&self, task: TaskId) -> Result<std::sync::Arc<TaskSlot>, WireError> {
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

    async fn create_task(
        &self,
        creator: PublicKey,
        create: CreateTask,
        model: &[u8],
    ) -> Result<ResponseBody, WireError> {
        let spec = create.spec;
        decode_view(model, &spec.model.tensors, spec.payload_limit_bytes()).map_err(|e| WireError::from_error(&e))?;
        let created_at = now();
        self.inner.artifacts.put(create.initial_model, model).await.map_err(|e| internal("artifact store", &e))?;
        let new = NewTask { creator, spec: spec.clone(), initial_model: create.initial_model, created_at };
        let task = self.inner.store.create_task(&new).await.map_err(|e| store_error(&e))?;
        let fund = Operation::FundTask {
            funder: creator,
            task,
            amount: Amount::from_micro(spec.reward_pool),
            total_rounds: spec.rounds,
        };
        if let Err(error) = self.inner.ledger.apply(&format!("fund:{task}"), &fund, created_at.to_ledger()).await {
            // Nothing was escrowed: the task never runs.
            self.cancel(task).await;
            return Err(ledger_error(&error));
        }
        let slot = self.load_task(task).await.map_err(|e| internal("loading a new task", &e))?;
        self.run_task(slot);
        tracing::info!(%task, %creator, "task created");
        Ok(ResponseBody::TaskCreated { task })
    }

    /// Marks a task that could not be funded as finished without running it.
    pub(crate) async fn cancel(&self, task: TaskId) {
        if let Err(error) = self.inner.store.save_state(task, 0, &[], true).await {
            tracing::error!(%task, "could not mark an unfunded task finished: {error}");
        }
    }

    async fn join(&self, signer: PublicKey, join: JoinTask) -> Result<ResponseBody, WireError> {
        let slot = self.running(join.task).await?;
        if slot.runtime.lock().await.machine.is_finished() {
            return Err(refuse(ErrorCode::TaskFinished, format!("task {} has finished", join.task)));
        }
        let spec = &slot.record.spec;
        let minimum = match join.role {
            Role::Trainer => spec.min_trainer_stake,
            Role::Validator => spec.min_validator_stake,
        };
        let bonds =
            self.inner.ledger.bonds_of_node(&signer, ledger_role(join.role)).await.map_err(|e| ledger_error(&e))?;
        let stake: u128 = bonds.iter().map(starling_staking::Bond::effective).sum();
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
        let record = Join { task: join.task, participant: signer, role: join.role, joined_at: now() };
        self.inner.store.record_join(&record).await.map_err(|e| store_error(&e))?;
        slot.wake.notify_one();
        Ok(ResponseBody::Ack)
    }

    async fn submit(
        &self,
        trainer: PublicKey,
        update: SubmitUpdate,
        blob: Blob<'_>,
        envelope: Vec<u8>,
    ) -> Result<ResponseBody, WireError> {
        let slot = self.running(update.task).await?;
        // Invalid payloads are stored too: the evidence behind the slash,
        // which anyone can check against the signed envelope.
        let checked = match blob {
            Blob::Bytes(bytes) => {
                self.inner.artifacts.put(update.update, bytes).await.map_err(|e| internal("artifact store", &e))?;
                check_update(&slot.record.spec, bytes)
            }
            Blob::StoredUpdate(checked) => checked,
        };
        let submission = update.submission_id(&trainer);
        let check = match &checked {
            Ok(()) => PayloadCheck::Passed,
            Err(error) => PayloadCheck::Failed { reason: format!("{}: {}", error.code.as_str(), error.message) },
        };
        let received_at = now();
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
        self.transition(&slot, received_at, event, Some(Record::Submission(record)))
            .await
            .map_err(|e| transition_error(&e))?;
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

    async fn score(
        &self,
        validator: PublicKey,
        score: SubmitScore,
        envelope: Vec<u8>,
    ) -> Result<ResponseBody, WireError> {
        let slot = self.running(score.task).await?;
        let values = ScoreValues { accuracy: score.accuracy, loss: score.loss, improvement: score.improvement };
        let received_at = now();
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
        self.transition(&slot, received_at, event, Some(Record::Score(record)))
            .await
            .map_err(|e| transition_error(&e))?;
        slot.wake.notify_one();
        self.inner.metrics.score();
        Ok(ResponseBody::Ack)
    }

    /// Answers an unsigned read.
    pub(crate) async fn read_uncounted(&self, read: ReadRequest) -> Result<ResponseBody, WireError> {
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
            ReadRequest::GetAssignments { task, round, validator, after } => {
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
            ReadRequest::FetchBlob { hash } => match self.inner.artifacts.len(hash).await {
                Ok(Some(len)) => Ok(ResponseBody::Blob { hash, len }),
                Ok(None) => Err(refuse(ErrorCode::UnknownBlob, format!("no blob {hash}"))),
                Err(error) => Err(internal("artifact store", &error)),
            },
            ReadRequest::GetBalance { key } => self.balance(key).await,
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
        let len = self.inner.artifacts.len(model).await.map_err(|e| internal("artifact store", &e))?;
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
                role: match p.bond.role {
                    starling_staking::Role::Trainer => Role::Trainer,
                    starling_staking::Role::Validator => Role::Validator,
                },
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

fn bonded(outcome: starling_staking::Outcome) -> Result<ResponseBody, WireError> {
    match outcome.bond {
        Some(bond) => Ok(ResponseBody::Bonded { bond: bond.0 }),
        None => Err(internal("ledger", &"a bonding operation made no bond")),
    }
}

/// The hash and length an upload's signed message announces.
pub(crate) fn upload(message: &SignedRequest) -> Option<(ContentHash, u64)> {
    match message {
        SignedRequest::SubmitUpdate(update) => Some((update.update, update.update_len)),
        SignedRequest::CreateTask(create) => Some((create.initial_model, create.initial_model_len)),
        _ => None,
    }
}

fn precheck_update(machine: &RoundMachine, trainer: &PublicKey, update: &SubmitUpdate) -> Result<(), WireError> {
    update.validate_for(machine.spec()).map_err(|e| WireError::from_error(&e))?;
    let Some((round, phase)) = machine.progress() else {
        return Err(refuse(ErrorCode::NotStarted, format!("task {} has not started", update.task)));
    };
    // Duplicates first: a trainer whose answer was lost learns that its
    // update is in, even once the round has moved on.
    if round == update.round && machine.has_submitted(trainer) {
        return Err(refuse(ErrorCode::Duplicate, format!("{trainer} already submitted in round {round}")));
    }
    if phase == RoundPhase::Finished {
        return Err(refuse(ErrorCode::TaskFinished, format!("task {} has finished", update.task)));
    }
    if update.round != round {
        return Err(refuse(ErrorCode::WrongRound, format!("round {} is not the current round {round}", update.round)));
    }
    if phase != RoundPhase::Training {
        return Err(refuse(ErrorCode::WrongPhase, format!("round {round} is {phase}, not training")));
    }
    if !machine.sampled_trainers().contains(trainer) {
        return Err(refuse(ErrorCode::NotSampled, format!("{trainer} was not sampled for round {round}")));
    }
    if Some(update.base_model) != machine.global_model() {
        return Err(refuse(ErrorCode::WrongBaseModel, "the update was trained from another model than this round's"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use starling_protocol::{AggregationRule, AggregationSpec, DataSpec, ModelSpec, NamedTensor, RoundDeadlines};
    use starling_protocol::{TensorSpec, UpdatePayload};

    use super::*;

    fn spec() -> TaskSpec {
        let tensors = vec![TensorSpec::new("w", vec![4, 3]), TensorSpec::new("b", vec![3])];
        let mut spec = TaskSpec {
            model: ModelSpec { name: "logreg".into(), tensors },
            data: DataSpec { dataset: "mnist".into(), input_shape: vec![4], num_classes: 3 },
            rounds: 1,
            fraction: 1.0,
            local_epochs: 1,
            batch_size: 1,
            learning_rate: 0.1,
            aggregation: AggregationSpec::plain(AggregationRule::FedAvg),
            reward_pool: 1,
            min_trainer_stake: 1,
            min_validator_stake: 1,
            payload_limit: 0,
            deadlines: RoundDeadlines { training_secs: 1, validation_secs: 1 },
            max_update_norm: Some(10.0),
        };
        spec.payload_limit = spec.encoded_payload_len().unwrap() as u64;
        spec
    }

    /// Every value of the spec's tensors set to `value`.
    fn payload(spec: &TaskSpec, value: f32) -> Vec<u8> {
        let tensors: Vec<NamedTensor> = spec
            .model
            .tensors
            .iter()
            .map(|t| NamedTensor::new(t.name.clone(), t.shape.clone(), vec![value; t.shape.iter().product()]))
            .collect();
        UpdatePayload::encode_owned(&tensors).unwrap().into_bytes()
    }

    #[test]
    fn an_empty_update_is_refused_as_no_contribution() {
        let spec = spec();
        for value in [0.0, 1e-9, -1e-8] {
            let error = check_update(&spec, &payload(&spec, value)).unwrap_err();
            assert_eq!(error.code, ErrorCode::EmptyUpdate, "{value}: {error}");
        }
        // The smallest real update passes; the norm bound still holds above.
        assert_eq!(check_update(&spec, &payload(&spec, 1e-6)), Ok(()));
        assert_eq!(check_update(&spec, &payload(&spec, 2.0)), Ok(()));
        assert_eq!(check_update(&spec, &payload(&spec, 3.0)).unwrap_err().code, ErrorCode::NormTooLarge);
    }
}
