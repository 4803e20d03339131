//! The read-model double: [`MemoryModel`] answers every read from the
//! fixture, records what it was asked, and fails on demand.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use starling_protocol::{ContentHash, PublicKey, Role, TaskId};

use crate::page::{Cursor, Page, PageRequest};
use crate::read_model::{BoxError, BoxFuture, ModelBlob, ModelBody, PredictError, ReadError, ReadModel};
use crate::views::{
    AccountView, Balances, BondView, Caller, ItemPrediction, ModelDetail, ModelSummary, PredictCall, Prediction,
    TaskDetail, TaskSummary,
};

/// What the double does instead of answering.
#[derive(Debug, Clone, Default)]
enum Failure {
    #[default]
    None,
    Unavailable(String),
    Internal(String),
}

/// How the prediction double fails instead of predicting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PredictFailure {
    /// `PredictError::Busy`.
    Busy,
    /// `PredictError::Replayed`.
    Replayed,
    /// `PredictError::NotFound`.
    NotFound,
}

/// A read model over fixed data: tasks 1, 2, 3, 5 and 8 (task 1 running,
/// with three rounds, three submitters and a validator paid; the others
/// finished with no round recorded; task 1's model is in memory, task 2's
/// streams, task 3 has none), Alice's account with five history entries,
/// and two marketplace models: 1 (Alice's, two versions, 28×28 images) and
/// 4 (Bob's, one version whose file streams, flat inputs of 784 values).
///
/// Its `predict` is deterministic: each input needs 784 values; the label
/// is the index of the largest value modulo 10, with probability 0.55 and
/// 0.05 for every other class; [`MemoryModel::broke`] is refused with
/// `PaymentRequired`; it records the last call it was given.
pub(crate) struct MemoryModel {
    pub(super) tasks: Vec<TaskSummary>,
    /// The rejection reason of Bob's submission.
    pub(super) reason: String,
    /// The name of market model 1.
    pub(super) market_name: String,
    failure: Mutex<Failure>,
    unhealthy: Mutex<Option<String>>,
    panic_on_metrics: Mutex<bool>,
    last_page: Mutex<Option<PageRequest>>,
    predict_failure: Mutex<Option<PredictFailure>>,
    last_predict: Mutex<Option<PredictCall>>,
}

impl MemoryModel {
    /// A double over `tasks` (the fixture's other data besides), Bob's
    /// submission rejected for `reason`, answering every read.
    pub(super) fn with_tasks(tasks: Vec<TaskSummary>, reason: &str) -> Arc<Self> {
        Arc::new(Self {
            tasks,
            reason: reason.into(),
            market_name: "mnist-cnn".into(),
            failure: Mutex::default(),
            unhealthy: Mutex::default(),
            panic_on_metrics: Mutex::default(),
            last_page: Mutex::default(),
            predict_failure: Mutex::default(),
            last_predict: Mutex::default(),
        })
    }

    pub(crate) fn task_ids(&self) -> Vec<u64> {
        self.tasks.iter().map(|task| task.id.get()).collect()
    }

    pub(crate) fn last_page_request(&self) -> Option<PageRequest> {
        *self.last_page.lock().unwrap()
    }

    pub(crate) fn fail_with_unavailable(&self, cause: &str) {
        *self.failure.lock().unwrap() = Failure::Unavailable(cause.into());
    }

    pub(crate) fn fail_with_internal(&self, cause: &str) {
        *self.failure.lock().unwrap() = Failure::Internal(cause.into());
    }

    pub(crate) fn set_unhealthy(&self, reason: &str) {
        *self.unhealthy.lock().unwrap() = Some(reason.into());
    }

    pub(crate) fn panic_on_metrics(&self) {
        *self.panic_on_metrics.lock().unwrap() = true;
    }

    /// Makes `predict` fail with `failure` until told otherwise.
    pub(crate) fn fail_predict_with(&self, failure: Option<PredictFailure>) {
        *self.predict_failure.lock().unwrap() = failure;
    }

    /// The last call `predict` was given, failed or not.
    pub(crate) fn last_predict(&self) -> Option<PredictCall> {
        self.last_predict.lock().unwrap().clone()
    }

    fn check(&self) -> Result<(), ReadError> {
        match self.failure.lock().unwrap().clone() {
            Failure::None => Ok(()),
            Failure::Unavailable(cause) => Err(ReadError::unavailable(cause)),
            Failure::Internal(cause) => Err(ReadError::internal(cause)),
        }
    }

    /// The double's prediction for `call`, or why not.
    fn prediction(&self, call: &PredictCall) -> Result<Prediction, PredictError> {
        let market = self.market();
        let version = market
            .iter()
            .find(|model| model.summary.id == call.model)
            .and_then(|model| model.versions.iter().find(|v| v.summary.version == call.version))
            .ok_or(PredictError::NotFound)?;
        for (i, input) in call.inputs.iter().enumerate() {
            if input.len() != 784 {
                return Err(PredictError::BadInput(format!(
                    "input {i} has {} values: the model takes 784 (a 28×28 image)",
                    input.len()
                )));
            }
        }
        let items = call.inputs.len() as u64;
        let price = version.summary.price;
        let fee = price.base + price.per_item * items;
        let (charged, free_items, quota_left) = match call.caller {
            Caller::Signed { key, max_fee, .. } if key == PublicKey::of(&Self::broke()) => {
                return Err(PredictError::PaymentRequired { fee, available: 1_000, max_fee });
            }
            Caller::Signed { .. } => (fee, 0, Some(0)),
            Caller::Anonymous => (0, items as u32, None),
        };
        let predictions = call
            .inputs
            .iter()
            .map(|input| {
                let largest = input.iter().enumerate().fold(0, |best, (i, &v)| if v > input[best] { i } else { best });
                let label = (largest % 10) as u32;
                let probabilities = (0..10).map(|class| if class == label { 0.55 } else { 0.05 }).collect();
                ItemPrediction { label, probabilities }
            })
            .collect();
        Ok(Prediction { predictions, charged, free_items, quota_left })
    }
}

impl ReadModel for MemoryModel {
    fn list_tasks(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<TaskSummary>, ReadError>> {
        Box::pin(async move {
            self.check()?;
            *self.last_page.lock().unwrap() = Some(page);
            let after = page.after.map_or(0, Cursor::get);
            let rest: Vec<_> = self.tasks.iter().filter(|task| task.id.get() > after).collect();
            let items: Vec<_> = rest.iter().take(page.limit as usize).map(|task| (*task).clone()).collect();
            let next =
                if rest.len() > items.len() { items.last().map(|task| Cursor::new(task.id.get())) } else { None };
            Ok(Page { items, next })
        })
    }

    fn task(&self, id: TaskId) -> BoxFuture<'_, Result<Option<TaskDetail>, ReadError>> {
        Box::pin(async move {
            self.check()?;
            Ok(match self.tasks.iter().find(|task| task.id == id) {
                Some(_) if id == TaskId::new(1) => Some(self.task_one()),
                Some(summary) => Some(Self::task_other(summary)),
                None => None,
            })
        })
    }

    fn model(&self, id: TaskId) -> BoxFuture<'_, Result<Option<ModelBlob>, ReadError>> {
        Box::pin(async move {
            self.check()?;
            Ok(match id.get() {
                1 => Some(ModelBlob {
                    hash: ContentHash::of(Self::MODEL_ONE),
                    body: ModelBody::Bytes(Bytes::from_static(Self::MODEL_ONE)),
                }),
                2 => Some(ModelBlob {
                    hash: ContentHash::of(b"chunk one|chunk two"),
                    body: ModelBody::Stream(Box::pin(Chunks(VecDeque::from([
                        Bytes::from_static(b"chunk one|"),
                        Bytes::from_static(b"chunk two"),
                    ])))),
                }),
                _ => None,
            })
        })
    }

    fn account(&self, key: PublicKey, history: PageRequest) -> BoxFuture<'_, Result<Option<AccountView>, ReadError>> {
        Box::pin(async move {
            self.check()?;
            if key != Self::alice() {
                return Ok(None);
            }
            // Newest first: continue with rounds below the cursor.
            let all = Self::history();
            let rest: Vec<_> = all
                .into_iter()
                .filter(|entry| history.after.is_none_or(|c| u64::from(entry.round.get()) < c.get()))
                .collect();
            let items: Vec<_> = rest.iter().take(history.limit as usize).copied().collect();
            let next = if rest.len() > items.len() {
                items.last().map(|entry| Cursor::new(entry.round.get().into()))
            } else {
                None
            };
            Ok(Some(AccountView {
                key,
                balances: Balances { free: 5_000_000, staked: 2_000_000, delegated: 1_000_000 },
                stakes: vec![BondView {
                    id: 11,
                    node: key,
                    role: Role::Trainer,
                    amount: 2_000_000,
                    effective: 4_000_000,
                    lock_days: 197,
                    unlock_at: 1_767_225_600,
                }],
                delegations: vec![BondView {
                    id: 12,
                    node: Self::bob(),
                    role: Role::Validator,
                    amount: 1_000_000,
                    effective: 1_000_000,
                    lock_days: 0,
                    unlock_at: 1_750_000_000,
                }],
                history: Page { items, next },
            }))
        })
    }

    fn list_models(&self, page: PageRequest) -> BoxFuture<'_, Result<Page<ModelSummary>, ReadError>> {
        Box::pin(async move {
            self.check()?;
            *self.last_page.lock().unwrap() = Some(page);
            let after = page.after.map_or(0, Cursor::get);
            let rest: Vec<_> = self.market().into_iter().filter(|model| model.summary.id > after).collect();
            let items: Vec<_> = rest.iter().take(page.limit as usize).map(|model| model.summary.clone()).collect();
            let next = if rest.len() > items.len() { items.last().map(|model| Cursor::new(model.id)) } else { None };
            Ok(Page { items, next })
        })
    }

    fn market_model(&self, id: u64) -> BoxFuture<'_, Result<Option<ModelDetail>, ReadError>> {
        Box::pin(async move {
            self.check()?;
            Ok(self.market().into_iter().find(|model| model.summary.id == id))
        })
    }

    fn model_version_file(&self, id: u64, version: u32) -> BoxFuture<'_, Result<Option<ModelBlob>, ReadError>> {
        Box::pin(async move {
            self.check()?;
            Ok(match (id, version) {
                (1, 1) => Some(ModelBlob {
                    hash: ContentHash::of(Self::MODEL_ONE_V1),
                    body: ModelBody::Bytes(Bytes::from_static(Self::MODEL_ONE_V1)),
                }),
                (1, 2) => Some(ModelBlob {
                    hash: ContentHash::of(Self::MODEL_ONE_V2),
                    body: ModelBody::Bytes(Bytes::from_static(Self::MODEL_ONE_V2)),
                }),
                (4, 1) => Some(ModelBlob {
                    hash: ContentHash::of(Self::MODEL_FOUR_V1),
                    body: ModelBody::Stream(Box::pin(Chunks(VecDeque::from([
                        Bytes::from_static(b"model four|"),
                        Bytes::from_static(b"version one"),
                    ])))),
                }),
                _ => None,
            })
        })
    }

    fn predict(&self, call: PredictCall) -> BoxFuture<'_, Result<Prediction, PredictError>> {
        Box::pin(async move {
            *self.last_predict.lock().unwrap() = Some(call.clone());
            self.check()?;
            match *self.predict_failure.lock().unwrap() {
                Some(PredictFailure::Busy) => return Err(PredictError::Busy),
                Some(PredictFailure::Replayed) => return Err(PredictError::Replayed),
                Some(PredictFailure::NotFound) => return Err(PredictError::NotFound),
                None => {}
            }
            self.prediction(&call)
        })
    }

    fn metrics(&self) -> BoxFuture<'_, Result<String, ReadError>> {
        Box::pin(async move {
            assert!(!*self.panic_on_metrics.lock().unwrap(), "metrics registry poisoned at 0xdeadbeef");
            self.check()?;
            Ok(Self::METRICS.to_owned())
        })
    }

    fn healthy(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match self.unhealthy.lock().unwrap().clone() {
                Some(reason) => Err(reason),
                None => Ok(()),
            }
        })
    }
}

/// A stream over fixed chunks.
pub(crate) struct Chunks(pub(crate) VecDeque<Bytes>);

impl Stream for Chunks {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}
