//! What every handler shares, and the reads that both the dashboard's pages
//! and the JSON API make through it.
//!
//! A page and its JSON twin (`/tasks/1` and `/api/tasks/1`, `/market/1` and
//! `/api/models/1`) read the same thing. Reading it here, once, means both
//! log a store failure under the same name and answer a missing thing with
//! the same 404 message.

use std::sync::Arc;

use starling_protocol::{PublicKey, TaskId};

use crate::config::WebConfig;
use crate::error::{ApiError, found, store_failed};
use crate::page::{Page, PageRequest};
use crate::predict::Guards;
use crate::read_model::ReadModel;
use crate::views::{AccountView, ModelDetail, ModelSummary, TaskDetail, TaskSummary};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) model: Arc<dyn ReadModel>,
    pub(crate) config: Arc<WebConfig>,
    /// The prediction route's envelope verifier and rate limiters.
    pub(crate) guards: Arc<Guards>,
}

impl AppState {
    /// The state of one router over `model`, with fresh prediction guards.
    pub(crate) fn new(model: Arc<dyn ReadModel>, config: WebConfig) -> Self {
        let guards = Arc::new(Guards::new(&config));
        Self { model, config: Arc::new(config), guards }
    }

    /// One page of tasks.
    pub(crate) async fn tasks(&self, page: PageRequest) -> Result<Page<TaskSummary>, ApiError> {
        self.model.list_tasks(page).await.map_err(store_failed("list tasks"))
    }

    /// Task `id` in detail, or the 404 that says there is none.
    pub(crate) async fn task(&self, id: TaskId) -> Result<TaskDetail, ApiError> {
        found(self.model.task(id).await, "read task", || format!("no task {id}"))
    }

    /// `key`'s account with the history page `page`, or the 404 that says
    /// there is none.
    pub(crate) async fn account(&self, key: PublicKey, page: PageRequest) -> Result<AccountView, ApiError> {
        found(self.model.account(key, page).await, "read account", || format!("no account for key {key}"))
    }

    /// One page of marketplace models.
    pub(crate) async fn models(&self, page: PageRequest) -> Result<Page<ModelSummary>, ApiError> {
        self.model.list_models(page).await.map_err(store_failed("list models"))
    }

    /// Marketplace model `id` with its versions, or the 404 that says there
    /// is none.
    pub(crate) async fn market_model(&self, id: u64) -> Result<ModelDetail, ApiError> {
        found(self.model.market_model(id).await, "read market model", || format!("no model {id}"))
    }
}
