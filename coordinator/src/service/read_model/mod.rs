//! The coordinator as the HTTP side's [`ReadModel`]: tasks, rounds and
//! submissions from the coordinator's store and its task machines, payouts
//! and accounts from the ledger, model downloads from the artifact store.
//!
//! Reads have no side effects. A task this coordinator drives is read from
//! its machine in memory; any other (finished, or driven by another
//! coordinator of the deployment) from the machine its store last saved,
//! decoded for the request and dropped.
//!
//! Database failures are answered as [`ReadError::Unavailable`] (503),
//! everything else as [`ReadError::Internal`] (500).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use starling_protocol::{ContentHash, PublicKey, Role, RoundNumber, RoundPhase, TaskId};
use starling_staking::consensus::consensus;
use starling_staking::{EntryKind, LedgerStore, Ppm};
use starling_web::{
    AccountView, Balances, BondView, BoxError, BoxFuture, ByteStream, Cursor, HistoryEntry, HistoryKind,
    IdentityPayout, ModelBlob, ModelBody, ModelDetail, ModelSummary, Page, PageRequest, PredictCall, PredictError,
    Prediction, ReadError, ReadModel, StakeRole, SubmissionOutcome, SubmissionView, TaskDetail, TaskSummary,
    ValidatorStanding,
};
use tokio::io::{AsyncRead, ReadBuf};

use super::Coordinator;
use crate::artifacts::{ArtifactError, ArtifactStore};
use crate::round::{PayloadCheck, RoundMachine};
use crate::store::{CoordinatorStore, ScoreRecord, StoreError, SubmissionRecord, TaskRecord};

/// Bytes per chunk of a model download.
const CHUNK: usize = 64 * 1024;

/// Rows per query when a view needs a whole list (a task's rounds, its
/// payouts, an account's bonds): the stores' own maximum page.
const WHOLE: u32 = starling_staking::MAX_PAGE;

impl<S, L, A> ReadModel for Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Newest task first (the store's order): the cursor is the last id
    /// returned, and the next page holds the tasks with smaller ids.
    fn list_tasks(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<TaskSummary>, ReadError>> {
        Box::pin(async move {
            // Ids fit the store's signed 64-bit column, so a larger cursor
            // (one a client made up) lies above every task: start at the top.
            let after = page.after.map(Cursor::get).filter(|&raw| i64::try_from(raw).is_ok());
            let request =
                starling_staking::PageRequest { after: after.map(starling_staking::Cursor::new), limit: page.limit };
            let records = self.inner.store.tasks(request).await.map_err(store_failed)?;
            let mut items = Vec::with_capacity(records.items.len());
            for record in &records.items {
                let progress = self.progress(record.id).await?;
                items.push(self.summary(record, &progress).await?);
            }
            Ok(Page { items, next_cursor: records.next.map(|c| Cursor::new(c.get())) })
        })
    }

    fn task(&self, id: TaskId) -> BoxFuture<'_, Result<Option<TaskDetail>, ReadError>> {
        Box::pin(async move {
            let Some(record) = self.inner.store.task(id).await.map_err(store_failed)? else { return Ok(None) };
            let progress = self.progress(id).await?;
            let summary = self.summary(&record, &progress).await?;
            let submissions = match &progress {
                Progress::Started(machine) => self.submissions(&record, machine).await?,
                Progress::Waiting | Progress::Cancelled => Vec::new(),
            };
            let history = self.history(id, &progress, &submissions).await?;
            let payouts = self.payouts(id).await?;
            let validators = match &progress {
                Progress::Started(machine) => self.validator_standings(&record, machine, &payouts).await?,
                Progress::Waiting | Progress::Cancelled => Vec::new(),
            };
            Ok(Some(TaskDetail { summary, spec: record.spec, history, submissions, payouts, validators }))
        })
    }

    /// The machine's global model; before the first round (or for a task
    /// cancelled before it ran), the initial model.
    fn model(&self, id: TaskId) -> BoxFuture<'_, Result<Option<ModelBlob>, ReadError>> {
        Box::pin(async move {
            let Some(record) = self.inner.store.task(id).await.map_err(store_failed)? else { return Ok(None) };
            let hash = match self.progress(id).await? {
                Progress::Started(machine) => machine.global_model().unwrap_or(record.initial_model),
                Progress::Waiting | Progress::Cancelled => record.initial_model,
            };
            self.stream_model(hash, &format!("task {id}")).await.map(Some)
        })
    }

    fn list_models(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<ModelSummary>, ReadError>> {
        Box::pin(async move {
            let after = page.after.map(Cursor::get).filter(|&raw| i64::try_from(raw).is_ok());
            if page.after.is_some() && after.is_none() {
                // A cursor past every id a store can hold: nothing after it.
                return Ok(Page { items: Vec::new(), next_cursor: None });
            }
            let request =
                starling_staking::PageRequest { after: after.map(starling_staking::Cursor::new), limit: page.limit };
            let models = self.inner.store.market_models(request).await.map_err(store_failed)?;
            let mut items = Vec::with_capacity(models.items.len());
            for (model, latest) in &models.items {
                items.push(self.model_summary(model, latest).await?);
            }
            Ok(Page { items, next_cursor: models.next.map(|c| Cursor::new(c.get())) })
        })
    }

    fn market_model(&self, id: u64) -> BoxFuture<'_, Result<Option<ModelDetail>, ReadError>> {
        Box::pin(self.model_detail(id))
    }

    fn model_version_file(&self, id: u64, version: u32) -> BoxFuture<'_, Result<Option<ModelBlob>, ReadError>> {
        Box::pin(async move {
            let Some(found) = self.version(id, version).await? else { return Ok(None) };
            self.stream_model(found.hash, &format!("model {id} version {version}")).await.map(Some)
        })
    }

    fn predict(&self, call: PredictCall) -> BoxFuture<'_, Result<Prediction, PredictError>> {
        Box::pin(self.predict_call(call))
    }

    /// `None` when the ledger has nothing for the key: no balance, no bond
    /// and no history. (A key that once held money and spent it all looks
    /// the same, and is answered 404 too.)
    fn account(&self, key: PublicKey, history: PageRequest) -> BoxFuture<'_, Result<Option<AccountView>, ReadError>> {
        Box::pin(async move {
            let ledger = &self.inner.ledger;
            let balances = ledger.balances(&key).await.map_err(ledger_failed)?;
            let mut stakes = Vec::new();
            let mut delegations = Vec::new();
            let mut after = None;
            loop {
                let page = starling_staking::PageRequest { after, limit: WHOLE };
                let positions = ledger.positions(&key, page).await.map_err(ledger_failed)?;
                for position in positions.items {
                    let bond = &position.bond;
                    let view = BondView {
                        id: bond.id.0,
                        node: bond.node,
                        role: stake_role(bond.role),
                        amount: bond.amount.micro(),
                        effective: position.effective,
                        lock_days: bond.lock.get(),
                        unlock_at: bond.unlock_at.0,
                    };
                    if bond.is_delegation() { delegations.push(view) } else { stakes.push(view) }
                }
                match positions.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            let page = starling_staking::PageRequest {
                after: history.after.map(|c| starling_staking::Cursor::new(c.get())),
                limit: history.limit,
            };
            let entries = ledger.identity_history(&key, page).await.map_err(ledger_failed)?;
            let history = Page {
                items: entries.items.iter().filter_map(history_entry).collect(),
                next_cursor: entries.next.map(|c| Cursor::new(c.get())),
            };
            let mut seen = balances.free.micro() > 0
                || balances.staked.micro() > 0
                || balances.delegated.micro() > 0
                || !stakes.is_empty()
                || !delegations.is_empty()
                || !history.items.is_empty();
            if !seen && page.after.is_some() {
                // A cursor past the key's last entry gives an empty page: the
                // key is known all the same if it has any history at all.
                let first = starling_staking::PageRequest::first(1);
                seen = !ledger.identity_history(&key, first).await.map_err(ledger_failed)?.items.is_empty();
            }
            if !seen {
                return Ok(None);
            }
            let balances = Balances {
                free: balances.free.micro(),
                staked: balances.staked.micro(),
                delegated: balances.delegated.micro(),
            };
            Ok(Some(AccountView { key, balances, stakes, delegations, history }))
        })
    }

    fn metrics(&self) -> BoxFuture<'_, Result<String, ReadError>> {
        Box::pin(async move {
            let running = {
                let tasks = self.inner.tasks.read().expect("task table lock");
                tasks.values().filter(|slot| !*slot.finished.borrow()).count()
            };
            Ok(self.inner.metrics.render(running as u64))
        })
    }

    /// One indexed read from each database, and the service not shut down.
    fn healthy(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if *self.inner.shutdown.borrow() {
                return Err("the coordinator is shutting down".to_owned());
            }
            let first = starling_staking::PageRequest::first(1);
            self.inner.store.tasks(first).await.map_err(|e| format!("coordinator store: {e}"))?;
            self.inner.ledger.free_balance(&self.inner.config.admin).await.map_err(|e| format!("ledger: {e}"))?;
            Ok(())
        })
    }
}

/// Where a task stands, as far as a reader can tell.
enum Progress {
    /// Registered, first round not yet open (waiting for its join window and
    /// eligible participants).
    Waiting,
    /// Marked finished without ever running: its pool could not be funded.
    Cancelled,
    /// Running or finished: its machine.
    Started(Box<RoundMachine>),
}

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// The task's machine: the one this coordinator drives, or else the one
    /// last saved in the store.
    async fn progress(&self, task: TaskId) -> Result<Progress, ReadError> {
        if let Some(slot) = self.slot(task) {
            let machine = slot.runtime.lock().await.machine.clone();
            return Ok(if machine.is_started() { Progress::Started(Box::new(machine)) } else { Progress::Waiting });
        }
        let state = match self.inner.store.load_state(task).await {
            Ok(state) => state,
            // Registered a moment ago, between our two reads.
            Err(StoreError::UnknownTask(_)) => return Ok(Progress::Waiting),
            Err(error) => return Err(store_failed(error)),
        };
        match state.state.as_deref() {
            None => Ok(Progress::Waiting),
            Some([]) => Ok(Progress::Cancelled),
            Some(bytes) => {
                let machine = postcard::from_bytes::<RoundMachine>(bytes)
                    .map_err(|e| ReadError::internal(format!("task {task}: persisted state does not decode: {e}")))?;
                Ok(if machine.is_started() { Progress::Started(Box::new(machine)) } else { Progress::Waiting })
            }
        }
    }

    async fn summary(&self, record: &TaskRecord, progress: &Progress) -> Result<TaskSummary, ReadError> {
        let (round, phase, participants) = match progress {
            Progress::Waiting => (RoundNumber::FIRST, RoundPhase::Open, 0),
            Progress::Cancelled => (RoundNumber::FIRST, RoundPhase::Finished, 0),
            Progress::Started(machine) => {
                let (round, phase) = machine.progress().unwrap_or((RoundNumber::FIRST, RoundPhase::Open));
                (round, phase, u32::try_from(machine.sampled_trainers().len()).unwrap_or(u32::MAX))
            }
        };
        let pool = self.inner.ledger.pool(record.id).await.map_err(ledger_failed)?;
        Ok(TaskSummary {
            id: record.id,
            model: record.spec.model.name.clone(),
            dataset: record.spec.data.dataset.clone(),
            phase,
            round,
            rounds: record.spec.rounds,
            participants,
            pool_left: pool.map_or(0, |p| p.balance.micro()),
        })
    }

    /// One row per round: settled rounds from the store's round records
    /// (accuracy and loss as the coordinator measured the new model), any
    /// settled round the store lacks from the machine's own summary, and the
    /// round under way with what is decided so far.
    async fn history(
        &self,
        task: TaskId,
        progress: &Progress,
        current: &[SubmissionView],
    ) -> Result<Vec<starling_web::RoundRecord>, ReadError> {
        let Progress::Started(machine) = progress else { return Ok(Vec::new()) };
        let mut rows = BTreeMap::new();
        let mut after = None;
        loop {
            let page = starling_staking::PageRequest { after, limit: WHOLE };
            let records = self.inner.store.rounds(task, page).await.map_err(store_failed)?;
            for r in records.items {
                let row = starling_web::RoundRecord {
                    round: r.round,
                    accuracy: r.accuracy,
                    loss: r.loss,
                    accepted: r.accepted,
                    rejected: r.rejected,
                    global_model: Some(r.global_model),
                };
                rows.insert(r.round, row);
            }
            match records.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        for summary in machine.history() {
            rows.entry(summary.round).or_insert(starling_web::RoundRecord {
                round: summary.round,
                accuracy: None,
                loss: None,
                accepted: summary.accepted,
                rejected: summary.rejected,
                global_model: Some(summary.output_model),
            });
        }
        if let Some(round) = machine.round() {
            let count = |f: fn(&SubmissionOutcome) -> bool| {
                u32::try_from(current.iter().filter(|s| f(&s.outcome)).count()).unwrap_or(u32::MAX)
            };
            rows.entry(round).or_insert(starling_web::RoundRecord {
                round,
                accuracy: None,
                loss: None,
                accepted: count(|o| matches!(o, SubmissionOutcome::Accepted)),
                rejected: count(|o| matches!(o, SubmissionOutcome::Rejected { .. })),
                global_model: None,
            });
        }
        Ok(rows.into_values().collect())
    }

    /// The machine's current round's submissions, by arrival.
    ///
    /// The machine does not expose its verdict, so once the round has agreed
    /// each valid submission is judged again from the recorded scores by the
    /// machine's rules: consensus (the staking crate's, with the task's κ)
    /// over the validators' accuracies, weighted by the stakes the ledger
    /// holds *now* for the validators that joined the task. If stakes moved
    /// since the round opened (a slash, a new bond), score and outcome can
    /// differ from what the round was decided on.
    async fn submissions(&self, record: &TaskRecord, machine: &RoundMachine) -> Result<Vec<SubmissionView>, ReadError> {
        let task = record.id;
        let Some((round, phase)) = machine.progress() else { return Ok(Vec::new()) };
        let submissions = self.inner.store.submissions(task, round).await.map_err(store_failed)?;
        let agreed = phase >= RoundPhase::Aggregating;
        let (stakes, scores) = if agreed && submissions.iter().any(|s| s.check == PayloadCheck::Passed) {
            let scores = self.inner.store.scores(task, round).await.map_err(store_failed)?;
            (self.validator_stakes(record).await?, scores)
        } else {
            (BTreeMap::new(), Vec::new())
        };
        let kappa = Ppm::new(machine.config().kappa_ppm).unwrap_or(Ppm::ONE);
        let judge = Judge { stakes: &stakes, scores: &scores, kappa, harm_threshold: machine.config().harm_threshold };
        Ok(submissions
            .into_iter()
            .map(|s| {
                let (consensus_score, outcome) = match &s.check {
                    PayloadCheck::Failed { reason } => (None, SubmissionOutcome::Rejected { reason: reason.clone() }),
                    PayloadCheck::Passed if !agreed => (None, SubmissionOutcome::Pending),
                    PayloadCheck::Passed => judge.judge(&s),
                };
                SubmissionView {
                    id: s.id,
                    round: s.round,
                    trainer: s.trainer,
                    samples: s.samples,
                    consensus_score,
                    outcome,
                }
            })
            .collect())
    }

    /// The effective validator stakes of everyone who joined the task as a
    /// validator and meets its minimum, as the ledger holds them now.
    async fn validator_stakes(&self, record: &TaskRecord) -> Result<BTreeMap<PublicKey, u128>, ReadError> {
        let minimum = u128::from(record.spec.min_validator_stake);
        let mut stakes = BTreeMap::new();
        for join in self.inner.store.joins(record.id).await.map_err(store_failed)? {
            if join.role != Role::Validator {
                continue;
            }
            let bonds = self
                .inner
                .ledger
                .bonds_of_node(&join.participant, starling_staking::Role::Validator)
                .await
                .map_err(ledger_failed)?;
            let stake: u128 = bonds.iter().map(starling_staking::Bond::effective).sum();
            if stake > 0 && stake >= minimum {
                stakes.insert(join.participant, stake);
            }
        }
        Ok(stakes)
    }

    /// Each validator's agreement per round, recomputed from the recorded
    /// scores (with today's validator stakes and the task's κ), and what the
    /// ledger paid and slashed it; by mean agreement, highest first.
    async fn validator_standings(
        &self,
        record: &TaskRecord,
        machine: &RoundMachine,
        payouts: &[IdentityPayout],
    ) -> Result<Vec<ValidatorStanding>, ReadError> {
        let Some(last) = machine.round() else { return Ok(Vec::new()) };
        let stakes = self.validator_stakes(record).await?;
        let kappa = Ppm::new(machine.config().kappa_ppm).unwrap_or(Ppm::ONE);
        // Per validator: scores, rounds with an agreement, agreement sum, last agreement.
        let mut tally: BTreeMap<PublicKey, (u32, u32, f64, f64)> = BTreeMap::new();
        for round in 0..=last.get() {
            let scores = self.inner.store.scores(record.id, RoundNumber::new(round)).await.map_err(store_failed)?;
            let mut by_submission: BTreeMap<_, Vec<(PublicKey, f64)>> = BTreeMap::new();
            for score in scores.iter().filter(|s| stakes.contains_key(&s.validator)) {
                by_submission.entry(score.submission).or_default().push((score.validator, score.values.accuracy));
                tally.entry(score.validator).or_default().0 += 1;
            }
            let submissions: Vec<_> = by_submission.into_values().collect();
            let result = match consensus(&stakes, &submissions, kappa) {
                Ok(result) => result,
                Err(error) => {
                    tracing::warn!(task = %record.id, round, "consensus of recorded scores failed: {error}");
                    continue;
                }
            };
            for (validator, agreement) in result.agreement {
                let entry = tally.entry(validator).or_default();
                let share = f64::from(agreement.get()) / 1e6;
                entry.1 += 1;
                entry.2 += share;
                entry.3 = share;
            }
        }
        let paid: BTreeMap<PublicKey, (u64, u64)> =
            payouts.iter().map(|p| (p.identity, (p.rewarded, p.slashed))).collect();
        let mut standings: Vec<ValidatorStanding> = tally
            .into_iter()
            .filter(|(_, (_, rounds, ..))| *rounds > 0)
            .map(|(validator, (scores, rounds, sum, last))| {
                let (rewarded, slashed) = paid.get(&validator).copied().unwrap_or_default();
                ValidatorStanding {
                    validator,
                    scores,
                    rounds,
                    agreement: sum / f64::from(rounds),
                    last_agreement: last,
                    rewarded,
                    slashed,
                }
            })
            .collect();
        standings.sort_by(|a, b| b.agreement.total_cmp(&a.agreement).then(a.validator.cmp(&b.validator)));
        Ok(standings)
    }

    /// Rewards and slashes over the whole task, per identity, by key.
    async fn payouts(&self, task: TaskId) -> Result<Vec<IdentityPayout>, ReadError> {
        let mut payouts: BTreeMap<PublicKey, (u64, u64)> = BTreeMap::new();
        let mut after = None;
        loop {
            let page = starling_staking::PageRequest { after, limit: WHOLE };
            let entries = self.inner.ledger.task_history(task, page).await.map_err(ledger_failed)?;
            for entry in entries.items {
                let (rewarded, slashed) = payouts.entry(entry.identity).or_default();
                match entry.kind {
                    EntryKind::Reward => *rewarded = rewarded.saturating_add(entry.amount.micro()),
                    EntryKind::SlashToPool | EntryKind::SlashBurn => {
                        *slashed = slashed.saturating_add(entry.amount.micro());
                    }
                    _ => {}
                }
            }
            match entries.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(payouts
            .into_iter()
            .filter(|(_, (rewarded, slashed))| *rewarded > 0 || *slashed > 0)
            .map(|(identity, (rewarded, slashed))| IdentityPayout { identity, rewarded, slashed })
            .collect())
    }
}

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// The stored model `hash` as a download that checks its hash on the way.
    async fn stream_model(&self, hash: ContentHash, owner: &str) -> Result<ModelBlob, ReadError> {
        // A model a task or version names must be stored: its absence is ours.
        if self.inner.artifacts.len(hash).await.map_err(artifact_failed)?.is_none() {
            return Err(ReadError::internal(format!("{owner}: model {hash} is not in the artifact store")));
        }
        let this = self.clone();
        let open = Box::pin(async move { this.inner.artifacts.open(hash).await });
        let body = ModelStream {
            state: Download::Opening(open),
            hasher: blake3::Hasher::new(),
            hash,
            buf: vec![0; CHUNK].into_boxed_slice(),
        };
        Ok(ModelBlob { hash, body: ModelBody::Stream(Box::pin(body) as ByteStream) })
    }
}

/// The machine's agreement rules (`round::agreement`), applied again to one
/// round's recorded scores.
struct Judge<'a> {
    stakes: &'a BTreeMap<PublicKey, u128>,
    scores: &'a [ScoreRecord],
    kappa: Ppm,
    harm_threshold: Option<f64>,
}

impl Judge<'_> {
    /// A valid submission's consensus score and outcome. One that validators
    /// holding a strict majority of the stake did not score is unresolved
    /// (neither aggregated, paid nor slashed): shown as pending, as the view
    /// has no word for it.
    fn judge(&self, submission: &SubmissionRecord) -> (Option<f64>, SubmissionOutcome) {
        let received: Vec<(PublicKey, f64)> = self
            .scores
            .iter()
            .filter(|s| s.submission == submission.id && self.stakes.contains_key(&s.validator))
            .map(|s| (s.validator, s.values.accuracy))
            .collect();
        let total = self.stakes.values().fold(0u128, |sum, &stake| sum.saturating_add(stake));
        let held = received.iter().filter_map(|(v, _)| self.stakes.get(v)).fold(0u128, |sum, &s| sum.saturating_add(s));
        if held <= total - held.min(total) {
            return (None, SubmissionOutcome::Pending);
        }
        let score = match consensus(self.stakes, &[received], self.kappa) {
            Ok(result) => result.scores.first().copied().flatten(),
            Err(error) => {
                tracing::warn!(submission = %submission.id, "consensus of recorded scores failed: {error}");
                None
            }
        };
        match (score, self.harm_threshold) {
            (None, _) => (None, SubmissionOutcome::Pending),
            (Some(score), Some(threshold)) if score < threshold => (
                Some(score),
                SubmissionOutcome::Rejected {
                    reason: format!("consensus accuracy {score:.4} is below the task's harm threshold {threshold}"),
                },
            ),
            (Some(score), _) => (Some(score), SubmissionOutcome::Accepted),
        }
    }
}

fn history_entry(entry: &starling_staking::HistoryEntry) -> Option<HistoryEntry> {
    let kind = match entry.kind {
        EntryKind::Reward => HistoryKind::Reward,
        EntryKind::SlashToPool => HistoryKind::SlashToPool,
        EntryKind::SlashBurn => HistoryKind::SlashBurn,
        // The ledger's history holds only settlement entries.
        _ => return None,
    };
    Some(HistoryEntry {
        task: entry.task,
        round: entry.round,
        kind,
        amount: entry.amount.micro(),
        bond: entry.bond.map(|b| b.0),
        at: entry.at.0,
    })
}

fn stake_role(role: starling_staking::Role) -> StakeRole {
    match role {
        starling_staking::Role::Trainer => StakeRole::Trainer,
        starling_staking::Role::Validator => StakeRole::Validator,
    }
}

pub(super) fn store_failed(error: StoreError) -> ReadError {
    match error {
        StoreError::Database(_) => ReadError::unavailable(error),
        other => ReadError::internal(other),
    }
}

pub(super) fn ledger_failed(error: starling_staking::StoreError) -> ReadError {
    match error {
        starling_staking::StoreError::Database(_) => ReadError::unavailable(error),
        other => ReadError::internal(other),
    }
}

fn artifact_failed(error: ArtifactError) -> ReadError {
    ReadError::internal(error)
}

/// Opens the artifact on first poll.
type Opening<R> = Pin<Box<dyn Future<Output = Result<R, ArtifactError>> + Send>>;

enum Download<R> {
    Opening(Opening<R>),
    Reading(R),
    Done,
}

/// A stored model, streamed in chunks and hashed on the way: the store's
/// reader is unchecked, so bytes that no longer hash to the name (disk
/// corruption) end the stream with an error, which cuts the download short
/// rather than completing it under a false `ETag`.
struct ModelStream<R> {
    state: Download<R>,
    hasher: blake3::Hasher,
    hash: ContentHash,
    /// Read into, then copied out: one allocation per download, not per poll.
    buf: Box<[u8]>,
}

impl<R: AsyncRead + Unpin + Send> Stream for ModelStream<R> {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                Download::Opening(open) => match open.as_mut().poll(cx) {
                    Poll::Ready(Ok(reader)) => this.state = Download::Reading(reader),
                    Poll::Ready(Err(error)) => {
                        this.state = Download::Done;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                Download::Reading(reader) => {
                    let mut buf = ReadBuf::new(&mut this.buf);
                    match Pin::new(reader).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                            this.state = Download::Done;
                            let actual = ContentHash::from_bytes(*this.hasher.finalize().as_bytes());
                            if actual != this.hash {
                                let error = ArtifactError::Corrupt { hash: this.hash, actual };
                                return Poll::Ready(Some(Err(error.into())));
                            }
                            return Poll::Ready(None);
                        }
                        Poll::Ready(Ok(())) => {
                            this.hasher.update(buf.filled());
                            return Poll::Ready(Some(Ok(Bytes::copy_from_slice(buf.filled()))));
                        }
                        Poll::Ready(Err(error)) => {
                            this.state = Download::Done;
                            return Poll::Ready(Some(Err(error.into())));
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Download::Done => return Poll::Ready(None),
            }
        }
    }
}
