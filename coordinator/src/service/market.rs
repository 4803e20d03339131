//! The marketplace in the service: promoting a finished task's best model,
//! the model views, and priced inference.
//!
//! Inference is checked, run, then paid for, in that order, and nothing is
//! charged unless the caller gets its predictions: the inputs are checked
//! against the model, the price (after the caller's free quota) is checked
//! against its `max_fee` and balance, the model runs, and only then are the
//! free inputs counted (compare-and-set, so two calls cannot both spend the
//! quota's last inputs) and the fee taken through the ledger (one balanced
//! `PayFee` under the request's idempotency key). If the fee cannot be
//! taken after all (the balance moved meanwhile), the quota is given back
//! and the caller told 402.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burn::prelude::Device;
use starling_models::zoo::{INPUT_FEATURES, Model, ModelKind};
use starling_protocol::{ContentHash, PublicKey, Role, TaskId, TaskSpec};
use starling_staking::{Amount, EntryKind, LedgerError, LedgerStore, Operation};
use starling_web::{
    Caller, Contributor, ItemPrediction, ModelDetail, ModelSummary, PredictCall, PredictError, Prediction, Price,
    ReadError, VersionDetail, VersionSummary,
};
use tokio::sync::Semaphore;

use super::read_model::{ledger_failed, store_failed};
use super::{Coordinator, ServiceError};
use crate::artifacts::ArtifactStore;
use crate::market::MarketParams;
use crate::round::{Action, BestModel, RoundMachine};
use crate::store::{
    CoordinatorStore, MAX_PAGE, MarketModel, MarketVersion, PageRequest, Promotion, StoreError, TaskRecord,
};

/// Milliseconds in a day: the free quota's period (UTC days).
const DAY_MS: u64 = 86_400_000;

/// The marketplace's in-memory state: loaded models and the inference queue.
pub(crate) struct Market {
    params: MarketParams,
    /// Loaded models, most recently used last; at most `params.cached_models`.
    models: Mutex<Vec<(ContentHash, Arc<Mutex<Model>>)>>,
    /// Who earned what on a finished task, by task (fixed once it finished).
    earnings: Mutex<BTreeMap<TaskId, Arc<Earnings>>>,
    /// Requests waiting for or holding the engine.
    queued: AtomicUsize,
    /// One inference at a time: a batch already uses every core burn's CPU
    /// backend can give it.
    engine: Semaphore,
}

impl Market {
    pub(crate) fn new(params: MarketParams) -> Self {
        Self {
            params,
            models: Mutex::new(Vec::new()),
            earnings: Mutex::new(BTreeMap::new()),
            queued: AtomicUsize::new(0),
            engine: Semaphore::new(1),
        }
    }
}

/// Rewards earned on a task by the identities that joined it, by role.
#[derive(Debug, Default)]
struct Earnings {
    trainers: Vec<(PublicKey, u64)>,
    validators: Vec<(PublicKey, u64)>,
}

/// A queue place, given back when dropped.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `{dataset}-{architecture}`, and the architecture without a repeated dataset prefix.
fn names(spec: &TaskSpec) -> (String, String) {
    let dataset = spec.data.dataset.as_str();
    let model = spec.model.name.as_str();
    let architecture = model.strip_prefix(dataset).and_then(|rest| rest.strip_prefix('-')).unwrap_or(model);
    (format!("{dataset}-{architecture}"), architecture.to_owned())
}

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Makes `best` (task `task`'s best round model) its model's next
    /// marketplace version; promoting a task again changes nothing.
    pub(crate) async fn promote(&self, task: &TaskRecord, best: BestModel) -> Result<MarketVersion, ServiceError> {
        let size = self.inner.artifacts.len(best.model).await?.ok_or_else(|| ServiceError::BadTask {
            task: task.id,
            reason: format!("best model {} is not in the artifact store", best.model),
        })?;
        let mut measured = (None, None);
        let mut after = None;
        loop {
            let page = self.inner.store.rounds(task.id, PageRequest { after, limit: MAX_PAGE }).await?;
            if let Some(round) = page.items.iter().find(|r| r.round == best.round) {
                measured = (round.accuracy, round.loss);
                break;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let (name, _) = names(&task.spec);
        let promotion = Promotion {
            task: task.id,
            creator: task.creator,
            name,
            round: best.round,
            hash: best.model,
            size_bytes: size,
            consensus_accuracy: best.estimated_score,
            accuracy: measured.0,
            loss: measured.1,
            at: self.now(),
        };
        // A racing promotion of another task of the same model takes the
        // version number first: the retry takes the next one.
        let mut attempts = 0;
        let version = loop {
            match self.inner.store.promote(&promotion).await {
                Ok(version) => break version,
                Err(StoreError::Database(_)) if attempts < 3 => attempts += 1,
                Err(error) => return Err(error.into()),
            }
        };
        tracing::info!(task = %task.id, model = version.model, version = version.version, hash = %version.hash, "model promoted to the marketplace");
        Ok(version)
    }

    /// Promotes every finished task that has no version yet: those whose
    /// promotion a stop interrupted (the machine is saved finished before
    /// the promotion is written).
    pub(crate) async fn promote_pending(&self) -> Result<(), ServiceError> {
        for task in self.inner.store.finished_unpromoted().await? {
            let Some(record) = self.inner.store.task(task).await? else { continue };
            // A task closed before it ran (unfunded, or expired with nobody
            // joined) has an empty state and nothing to promote.
            let state = self.inner.store.load_state(task).await?.state;
            let Some(bytes) = state.filter(|bytes| !bytes.is_empty()) else { continue };
            let machine = RoundMachine::from_bytes(&bytes)
                .map_err(|e| ServiceError::CorruptState { task, reason: e.to_string() })?;
            for action in machine.pending_actions() {
                if let Action::FinishTask { best: Some(best), .. } = action {
                    self.promote(&record, best).await?;
                }
            }
        }
        Ok(())
    }

    fn price(&self) -> Price {
        Price { base: self.inner.market.params.base, per_item: self.inner.market.params.per_item }
    }

    fn version_summary(&self, version: &MarketVersion) -> VersionSummary {
        VersionSummary {
            version: version.version,
            hash: version.hash,
            size_bytes: version.size_bytes,
            promoted_at: version.promoted_at.get() / 1_000,
            task: version.task,
            round: version.round,
            consensus_accuracy: version.consensus_accuracy,
            accuracy: version.accuracy,
            loss: version.loss,
            price: self.price(),
        }
    }

    /// The summary of `model`, whose newest version is `latest`.
    pub(crate) async fn model_summary(
        &self,
        model: &MarketModel,
        latest: &MarketVersion,
    ) -> Result<ModelSummary, ReadError> {
        let task = self.inner.store.task(latest.task).await.map_err(store_failed)?.ok_or_else(|| {
            ReadError::internal(format!("model {} names task {}, which does not exist", model.id, latest.task))
        })?;
        let (_, architecture) = names(&task.spec);
        Ok(ModelSummary {
            id: model.id,
            name: model.name.clone(),
            creator: model.creator,
            architecture,
            dataset: task.spec.data.dataset.clone(),
            input_shape: task.spec.data.input_shape.clone(),
            num_classes: task.spec.data.num_classes,
            version_count: model.versions,
            latest: self.version_summary(latest),
        })
    }

    /// A model with every version's lineage.
    pub(crate) async fn model_detail(&self, id: u64) -> Result<Option<ModelDetail>, ReadError> {
        let Some((model, versions)) = self.inner.store.market_model(id).await.map_err(store_failed)? else {
            return Ok(None);
        };
        let Some(latest) = versions.first() else { return Ok(None) };
        let summary = self.model_summary(&model, latest).await?;
        let mut details = Vec::with_capacity(versions.len());
        for version in &versions {
            let task = self.inner.store.task(version.task).await.map_err(store_failed)?;
            let earnings = self.earnings(version.task).await?;
            let mut contributors: Vec<Contributor> = earnings
                .trainers
                .iter()
                .map(|(key, earned)| Contributor { key: *key, role: Role::Trainer, earned: *earned })
                .chain(earnings.validators.iter().map(|(key, earned)| Contributor {
                    key: *key,
                    role: Role::Validator,
                    earned: *earned,
                }))
                .collect();
            contributors.sort_by(|a, b| b.earned.cmp(&a.earned).then(a.key.cmp(&b.key)));
            details.push(VersionDetail {
                summary: self.version_summary(version),
                rounds: task.map_or(0, |t| t.spec.rounds),
                contributors,
            });
        }
        Ok(Some(ModelDetail { summary, versions: details }))
    }

    /// Version `version` of model `id`, if it exists.
    pub(crate) async fn version(&self, id: u64, version: u32) -> Result<Option<MarketVersion>, ReadError> {
        let found = self.inner.store.market_model(id).await.map_err(store_failed)?;
        Ok(found.and_then(|(_, versions)| versions.into_iter().find(|v| v.version == version)))
    }

    /// Rewards earned on `task` by the identities that joined it, by the
    /// role they joined in (a key that joined as both counts as a trainer).
    async fn earnings(&self, task: TaskId) -> Result<Arc<Earnings>, ReadError> {
        if let Some(found) = self.inner.market.earnings.lock().expect("earnings lock").get(&task) {
            return Ok(found.clone());
        }
        let mut roles: BTreeMap<PublicKey, Role> = BTreeMap::new();
        for join in self.inner.store.joins(task).await.map_err(store_failed)? {
            let role = roles.entry(join.participant).or_insert(join.role);
            if join.role == Role::Trainer {
                *role = Role::Trainer;
            }
        }
        let mut earned: BTreeMap<PublicKey, u64> = BTreeMap::new();
        let mut after = None;
        loop {
            let page = PageRequest { after, limit: MAX_PAGE };
            let entries = self.inner.ledger.task_history(task, page).await.map_err(ledger_failed)?;
            for entry in entries.items.iter().filter(|e| e.kind == EntryKind::Reward) {
                if roles.contains_key(&entry.identity) {
                    let total = earned.entry(entry.identity).or_default();
                    *total = total.saturating_add(entry.amount.micro());
                }
            }
            match entries.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut earnings = Earnings::default();
        for (key, amount) in earned {
            match roles[&key] {
                Role::Trainer => earnings.trainers.push((key, amount)),
                Role::Validator => earnings.validators.push((key, amount)),
            }
        }
        let earnings = Arc::new(earnings);
        let mut cache = self.inner.market.earnings.lock().expect("earnings lock");
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(task, earnings.clone());
        Ok(earnings)
    }

    /// The loaded model `hash` of `kind`, from the cache or the artifact store.
    async fn loaded(&self, kind: ModelKind, hash: ContentHash) -> Result<Arc<Mutex<Model>>, ReadError> {
        {
            let mut models = self.inner.market.models.lock().expect("model cache lock");
            if let Some(at) = models.iter().position(|(h, _)| *h == hash) {
                let entry = models.remove(at);
                let model = entry.1.clone();
                models.push(entry);
                return Ok(model);
            }
        }
        let bytes = self.inner.artifacts.get(hash).await.map_err(ReadError::internal)?;
        let model = tokio::task::spawn_blocking(move || Model::from_payload(kind, &bytes, &Device::flex()))
            .await
            .map_err(ReadError::internal)?
            .map_err(ReadError::internal)?;
        let model = Arc::new(Mutex::new(model));
        let mut models = self.inner.market.models.lock().expect("model cache lock");
        if !models.iter().any(|(h, _)| *h == hash) {
            let cap = self.inner.market.params.cached_models.max(1);
            while models.len() >= cap {
                models.remove(0);
            }
            models.push((hash, model.clone()));
        }
        Ok(model)
    }

    /// Runs and charges one inference call; see the module's documentation.
    pub(crate) async fn predict_call(&self, call: PredictCall) -> Result<Prediction, PredictError> {
        let params = self.inner.market.params;
        let version = self.version(call.model, call.version).await?.ok_or(PredictError::NotFound)?;
        let task = self.inner.store.task(version.task).await.map_err(store_failed)?.ok_or(PredictError::NotFound)?;
        let kind = ModelKind::for_task_name(&task.spec.model.name, &task.spec.data.dataset)
            .map_err(|_| PredictError::BadInput(format!("model {} cannot run here: not a zoo model", call.model)))?;
        let inputs = check_inputs(&call.inputs, params.max_inputs)?;
        let items = call.inputs.len() as u64;

        let queued = self.inner.market.queued.fetch_add(1, Ordering::SeqCst);
        let _place = Queued(&self.inner.market.queued);
        if queued >= params.max_queued {
            return Err(PredictError::Busy);
        }
        // What the call costs, checked before the model runs.
        let bill = match call.caller {
            Caller::Anonymous => None,
            Caller::Signed { key, max_fee, .. } => Some(self.bill(key, items, queued, max_fee).await?),
        };

        let model = self.loaded(kind, version.hash).await?;
        let permit = self.inner.market.engine.acquire().await.map_err(ReadError::internal)?;
        let rows = tokio::task::spawn_blocking(move || model.lock().expect("model lock").probabilities(&inputs))
            .await
            .map_err(ReadError::internal)?
            .map_err(ReadError::internal)?;
        drop(permit);

        let (charged, free_items, quota_left) = match (call.caller, bill) {
            (Caller::Signed { key, request, .. }, Some(bill)) => {
                self.charge(key, request, &task, &bill).await?;
                (bill.fee, bill.free, Some(bill.quota.saturating_sub(bill.used + bill.free)))
            }
            _ => (0, items, None),
        };
        let predictions = rows
            .into_iter()
            .map(|probabilities| {
                let label = probabilities
                    .iter()
                    .enumerate()
                    .fold((0, f32::MIN), |best, (i, &p)| if p > best.1 { (i, p) } else { best })
                    .0;
                ItemPrediction { label: u32::try_from(label).unwrap_or(0), probabilities }
            })
            .collect();
        Ok(Prediction { predictions, charged, free_items: u32::try_from(free_items).unwrap_or(u32::MAX), quota_left })
    }

    /// The bill of a signed call of `items` inputs with `queued` ahead.
    async fn bill(&self, key: PublicKey, items: u64, queued: usize, max_fee: u64) -> Result<Bill, PredictError> {
        let params = self.inner.market.params;
        let balances = self.inner.ledger.balances(&key).await.map_err(ledger_failed)?;
        let bonded = Amount::from_micro(balances.staked.micro().saturating_add(balances.delegated.micro()));
        let quota = params.daily_quota(bonded);
        let day = self.now().get() / DAY_MS;
        let used = self.inner.store.free_items_used(&key, day).await.map_err(store_failed)?;
        let free = items.min(quota.saturating_sub(used));
        let fee = params.fee(items - free, queued);
        let available = balances.free.micro();
        if fee > max_fee || fee > available {
            return Err(PredictError::PaymentRequired { fee, available, max_fee });
        }
        Ok(Bill { day, quota, used, free, fee, max_fee })
    }

    /// Counts the free inputs and takes the fee; on a refused fee, gives the
    /// inputs back.
    async fn charge(
        &self,
        key: PublicKey,
        request: ContentHash,
        task: &TaskRecord,
        bill: &Bill,
    ) -> Result<(), PredictError> {
        if bill.free > 0 {
            let counted = self
                .inner
                .store
                .set_free_items_used(&key, bill.day, bill.used, bill.used + bill.free)
                .await
                .map_err(store_failed)?;
            if !counted {
                // Another call of the same caller spent the quota meanwhile:
                // this one is re-priced by the caller's retry.
                return Err(PredictError::Busy);
            }
        }
        if bill.fee == 0 {
            return Ok(());
        }
        let params = self.inner.market.params;
        let earnings = self.earnings(task.id).await?;
        let (shares, treasury) =
            params.shares(Amount::from_micro(bill.fee), task.creator, &earnings.trainers, &earnings.validators);
        let op = Operation::PayFee { payer: key, shares, treasury };
        let refund = || async {
            if bill.free > 0 {
                // Best effort: a failure here only leaves the caller fewer free inputs today.
                let _ = self.inner.store.set_free_items_used(&key, bill.day, bill.used + bill.free, bill.used).await;
            }
        };
        match self.inner.ledger.apply(&format!("inference:{request}"), &op, self.now().to_ledger()).await {
            Ok(_) => Ok(()),
            Err(starling_staking::StoreError::Ledger(LedgerError::InsufficientFunds { available, .. })) => {
                refund().await;
                Err(PredictError::PaymentRequired {
                    fee: bill.fee,
                    available: available.micro(),
                    max_fee: bill.max_fee,
                })
            }
            Err(starling_staking::StoreError::IdempotencyKeyReused { .. }) => {
                refund().await;
                Err(PredictError::Replayed)
            }
            Err(error) => {
                refund().await;
                Err(ledger_failed(error).into())
            }
        }
    }
}

/// A signed call's price, worked out before the model runs.
struct Bill {
    day: u64,
    quota: u64,
    used: u64,
    free: u64,
    fee: u64,
    max_fee: u64,
}

/// The inputs as one row-major buffer, if each is one whole image of values in `[0, 1]`.
fn check_inputs(inputs: &[Vec<f32>], max: usize) -> Result<Vec<f32>, PredictError> {
    if inputs.is_empty() {
        return Err(PredictError::BadInput("no inputs: send at least one".into()));
    }
    if inputs.len() > max {
        return Err(PredictError::BadInput(format!("{} inputs: at most {max} per call", inputs.len())));
    }
    let mut values = Vec::with_capacity(inputs.len() * INPUT_FEATURES);
    for (i, input) in inputs.iter().enumerate() {
        if input.len() != INPUT_FEATURES {
            return Err(PredictError::BadInput(format!(
                "input {i} has {} values: the model takes {INPUT_FEATURES} (a 28×28 image)",
                input.len()
            )));
        }
        if let Some(at) = input.iter().position(|v| !(0.0..=1.0).contains(v)) {
            return Err(PredictError::BadInput(format!(
                "input {i} value {at} is {}: values must be in [0, 1]",
                input[at]
            )));
        }
        values.extend_from_slice(input);
    }
    Ok(values)
}
