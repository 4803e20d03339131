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
//!
//! The task views ([`task_view`]) read verdicts as the rounds' machine
//! decided them and the store recorded them at settlement: nothing is judged
//! again here. Model downloads are in [`download`].

mod download;
mod task_view;

use starling_protocol::{PublicKey, TaskId};
use starling_staking::{EntryKind, LedgerStore};
use starling_web::{
    AccountView, Balances, BondView, BoxFuture, HistoryEntry, HistoryKind, ModelBlob, ModelDetail, ModelSummary, Page,
    PageRequest, PredictCall, PredictError, Prediction, ReadError, ReadModel, TaskDetail, TaskSummary,
};

use super::Coordinator;
use crate::artifacts::{ArtifactError, ArtifactStore};
use crate::store::{CoordinatorStore, StoreError};
use task_view::Progress;

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
            let after = page.after.filter(|cursor| i64::try_from(cursor.get()).is_ok());
            let request = PageRequest { after, limit: page.limit };
            let records = self.inner.store.tasks(request).await.map_err(store_failed)?;
            let mut items = Vec::with_capacity(records.items.len());
            for record in &records.items {
                let progress = self.progress(record.id).await?;
                items.push(self.summary(record, &progress).await?);
            }
            Ok(Page { items, next: records.next })
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
                Progress::Started(_) => self.validator_standings(id, &payouts).await?,
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
            if page.after.is_some_and(|cursor| i64::try_from(cursor.get()).is_err()) {
                // A cursor past every id a store can hold: nothing after it.
                return Ok(Page::empty());
            }
            let models = self.inner.store.market_models(page).await.map_err(store_failed)?;
            let mut items = Vec::with_capacity(models.items.len());
            for (model, latest) in &models.items {
                items.push(self.model_summary(model, latest).await?);
            }
            Ok(Page { items, next: models.next })
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
                let page = PageRequest { after, limit: WHOLE };
                let positions = ledger.positions(&key, page).await.map_err(ledger_failed)?;
                for position in positions.items {
                    let bond = &position.bond;
                    let view = BondView {
                        id: bond.id.0,
                        node: bond.node,
                        role: bond.role,
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
            let page = PageRequest { after: history.after, limit: history.limit };
            let entries = ledger.identity_history(&key, page).await.map_err(ledger_failed)?;
            let history = Page { items: entries.items.iter().filter_map(history_entry).collect(), next: entries.next };
            let mut seen = balances.free.micro() > 0
                || balances.staked.micro() > 0
                || balances.delegated.micro() > 0
                || !stakes.is_empty()
                || !delegations.is_empty()
                || !history.items.is_empty();
            if !seen && page.after.is_some() {
                // A cursor past the key's last entry gives an empty page: the
                // key is known all the same if it has any history at all.
                let first = PageRequest::first(1);
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
            let first = PageRequest::first(1);
            self.inner.store.tasks(first).await.map_err(|e| format!("coordinator store: {e}"))?;
            self.inner.ledger.free_balance(&self.inner.config.admin).await.map_err(|e| format!("ledger: {e}"))?;
            Ok(())
        })
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

pub(super) fn artifact_failed(error: ArtifactError) -> ReadError {
    ReadError::internal(error)
}
