//! A fixed in-memory [`ReadModel`] and request helpers for the route tests.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_core::Stream;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use starling_protocol::{
    AggregationRule, AggregationSpec, ContentHash, DataSpec, ModelSpec, PublicKey, RoundDeadlines, RoundNumber,
    RoundPhase, SigningKey, SubmissionId, TaskId, TaskSpec, TensorSpec,
};
use tower::ServiceExt;

use crate::page::{Cursor, Page, PageRequest};
use crate::read_model::{BoxError, BoxFuture, ModelBlob, ModelBody, PredictError, ReadError, ReadModel};
use crate::router::router;
use crate::views::{
    AccountView, Balances, BondView, Caller, Contributor, HistoryEntry, HistoryKind, IdentityPayout, ItemPrediction,
    ModelDetail, ModelSummary, PredictCall, Prediction, Price, RoundRecord, StakeRole, SubmissionOutcome,
    SubmissionView, TaskDetail, TaskSummary, ValidatorStanding, VersionDetail, VersionSummary,
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
    tasks: Vec<TaskSummary>,
    /// The rejection reason of Bob's submission.
    reason: String,
    /// The name of market model 1.
    market_name: String,
    failure: Mutex<Failure>,
    unhealthy: Mutex<Option<String>>,
    panic_on_metrics: Mutex<bool>,
    last_page: Mutex<Option<PageRequest>>,
    predict_failure: Mutex<Option<PredictFailure>>,
    last_predict: Mutex<Option<PredictCall>>,
}

impl MemoryModel {
    /// Task 1's model file.
    pub(crate) const MODEL_ONE: &'static [u8] = b"safetensors bytes of task one";
    /// Market model 1's version 1 file.
    pub(crate) const MODEL_ONE_V1: &'static [u8] = b"safetensors bytes of model one, version one";
    /// Market model 1's version 2 file.
    pub(crate) const MODEL_ONE_V2: &'static [u8] = b"safetensors bytes of model one, version two";
    /// Market model 4's only file, streamed in two chunks.
    pub(crate) const MODEL_FOUR_V1: &'static [u8] = b"model four|version one";
    /// What `/metrics` serves.
    pub(crate) const METRICS: &'static str = "# TYPE starling_rounds_total counter\nstarling_rounds_total 7\n";

    pub(crate) fn fixture() -> Arc<Self> {
        Self::named("mnist-cnn", "mnist", "score below the harm threshold")
    }

    /// [`MemoryModel::fixture`] with markup in every free-text field a page
    /// shows: the model and dataset names, the rejection reason and the
    /// market model's name.
    pub(crate) fn hostile() -> Arc<Self> {
        let model = Self::named(
            r#"<script>alert("model")</script>"#,
            "<img src=x onerror=alert(1)>",
            r#"</td><script>alert("reason")</script>"#,
        );
        Arc::new(Self { market_name: r#"<script>alert("market")</script>"#.into(), ..Arc::into_inner(model).unwrap() })
    }

    fn named(model: &str, dataset: &str, reason: &str) -> Arc<Self> {
        let tasks = [1, 2, 3, 5, 8]
            .into_iter()
            .map(|id| TaskSummary {
                id: TaskId::new(id),
                model: model.into(),
                dataset: dataset.into(),
                phase: if id == 1 { RoundPhase::Training } else { RoundPhase::Finished },
                round: RoundNumber::new(if id == 1 { 2 } else { 9 }),
                rounds: 10,
                participants: 3,
                pool_left: if id == 1 { 800_000_000 } else { 0 },
            })
            .collect();
        Self::with_tasks(tasks, reason)
    }

    /// Tasks `1 ..= count`, all alike.
    pub(crate) fn with_many_tasks(count: u64) -> Arc<Self> {
        let template = Self::fixture().tasks[1].clone();
        let tasks = (1..=count).map(|id| TaskSummary { id: TaskId::new(id), ..template.clone() }).collect();
        Self::with_tasks(tasks, "")
    }

    fn with_tasks(tasks: Vec<TaskSummary>, reason: &str) -> Arc<Self> {
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

    /// A signer whose paid calls the double refuses with `PaymentRequired`.
    pub(crate) fn broke() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    pub(crate) fn alice() -> PublicKey {
        PublicKey::from_bytes([0xa1; 32])
    }

    pub(crate) fn bob() -> PublicKey {
        PublicKey::from_bytes([0xb0; 32])
    }

    /// A validator: paid over task 1, no submission.
    pub(crate) fn victor() -> PublicKey {
        PublicKey::from_bytes([0xd0; 32])
    }

    fn check(&self) -> Result<(), ReadError> {
        match self.failure.lock().unwrap().clone() {
            Failure::None => Ok(()),
            Failure::Unavailable(cause) => Err(ReadError::unavailable(cause)),
            Failure::Internal(cause) => Err(ReadError::internal(cause)),
        }
    }

    fn spec() -> TaskSpec {
        TaskSpec {
            model: ModelSpec { name: "mnist-cnn".into(), tensors: vec![TensorSpec::new("fc.weight", [10, 784])] },
            data: DataSpec { dataset: "mnist".into(), input_shape: vec![1, 28, 28], num_classes: 10 },
            rounds: 10,
            fraction: 0.5,
            local_epochs: 1,
            batch_size: 32,
            learning_rate: 0.05,
            aggregation: AggregationSpec::plain(AggregationRule::FedAvg),
            reward_pool: 1_000_000_000,
            min_trainer_stake: 1_000_000,
            min_validator_stake: 5_000_000,
            payload_limit: 1 << 20,
            deadlines: RoundDeadlines { training_secs: 600, validation_secs: 300 },
            max_update_norm: None,
        }
    }

    fn submission(trainer: PublicKey, score: Option<f64>, outcome: SubmissionOutcome) -> SubmissionView {
        let payload = ContentHash::of(trainer.as_bytes());
        SubmissionView {
            id: SubmissionId::derive(TaskId::new(1), RoundNumber::new(2), &trainer, &payload),
            round: RoundNumber::new(2),
            trainer,
            samples: 600,
            consensus_score: score,
            outcome,
        }
    }

    fn task_one(&self) -> TaskDetail {
        let carol = PublicKey::from_bytes([0xc0; 32]);
        TaskDetail {
            summary: self.tasks[0].clone(),
            spec: Self::spec(),
            history: vec![
                RoundRecord {
                    round: RoundNumber::new(0),
                    accuracy: Some(0.5),
                    loss: Some(1.25),
                    accepted: 3,
                    rejected: 0,
                    global_model: Some(ContentHash::of(b"round 0")),
                },
                RoundRecord {
                    round: RoundNumber::new(1),
                    accuracy: Some(0.75),
                    loss: Some(0.5),
                    accepted: 2,
                    rejected: 1,
                    global_model: Some(ContentHash::of(Self::MODEL_ONE)),
                },
                RoundRecord {
                    round: RoundNumber::new(2),
                    accuracy: None,
                    loss: None,
                    accepted: 0,
                    rejected: 0,
                    global_model: None,
                },
            ],
            submissions: vec![
                Self::submission(Self::alice(), Some(0.125), SubmissionOutcome::Accepted),
                Self::submission(Self::bob(), Some(-2.5), SubmissionOutcome::Rejected { reason: self.reason.clone() }),
                Self::submission(carol, None, SubmissionOutcome::Pending),
            ],
            payouts: vec![
                IdentityPayout { identity: Self::alice(), rewarded: 150_000_000, slashed: 0 },
                IdentityPayout { identity: Self::bob(), rewarded: 0, slashed: 1_000_000 },
                IdentityPayout { identity: Self::victor(), rewarded: 20_000_000, slashed: 0 },
            ],
            validators: vec![ValidatorStanding {
                validator: Self::victor(),
                scores: 6,
                rounds: 2,
                agreement: 0.875,
                last_agreement: 0.75,
                rewarded: 20_000_000,
                slashed: 0,
            }],
        }
    }

    /// Any other listed task: finished, nothing recorded.
    fn task_other(summary: &TaskSummary) -> TaskDetail {
        TaskDetail {
            summary: summary.clone(),
            spec: Self::spec(),
            history: Vec::new(),
            submissions: Vec::new(),
            payouts: Vec::new(),
            validators: Vec::new(),
        }
    }

    /// The marketplace: model 1 with versions 2 and 1, then model 4.
    fn market(&self) -> Vec<ModelDetail> {
        let version =
            |version, file: &[u8], promoted_at, task, round, consensus, measured: (_, _), price| VersionSummary {
                version,
                hash: ContentHash::of(file),
                size_bytes: file.len() as u64,
                promoted_at,
                task: TaskId::new(task),
                round: RoundNumber::new(round),
                consensus_accuracy: consensus,
                accuracy: measured.0,
                loss: measured.1,
                price,
            };
        let price = Price { base: 1_000, per_item: 100 };
        let one = [
            VersionDetail {
                summary: version(2, Self::MODEL_ONE_V2, 1_750_200_000, 5, 9, 0.97, (Some(0.9812), Some(0.0625)), price),
                rounds: 10,
                contributors: vec![
                    Contributor { key: Self::alice(), role: StakeRole::Trainer, earned: 150_000_000 },
                    Contributor { key: Self::victor(), role: StakeRole::Validator, earned: 20_000_000 },
                ],
            },
            VersionDetail {
                summary: version(1, Self::MODEL_ONE_V1, 1_750_100_000, 2, 7, 0.9, (Some(0.9), None), price),
                rounds: 10,
                contributors: vec![Contributor { key: Self::bob(), role: StakeRole::Trainer, earned: 90_000_000 }],
            },
        ];
        let four = [VersionDetail {
            summary: version(
                1,
                Self::MODEL_FOUR_V1,
                1_750_300_000,
                8,
                4,
                0.88,
                (None, None),
                Price { base: 0, per_item: 50 },
            ),
            rounds: 5,
            contributors: Vec::new(),
        }];
        let model =
            |id, name: &str, creator, architecture: &str, input_shape, versions: &[VersionDetail]| ModelDetail {
                summary: ModelSummary {
                    id,
                    name: name.into(),
                    creator,
                    architecture: architecture.into(),
                    dataset: "mnist".into(),
                    input_shape,
                    num_classes: 10,
                    version_count: versions.len() as u32,
                    latest: versions[0].summary.clone(),
                },
                versions: versions.to_vec(),
            };
        vec![
            model(1, &self.market_name, Self::alice(), "cnn", vec![1, 28, 28], &one),
            model(4, "mnist-2nn", Self::bob(), "2nn", vec![784], &four),
        ]
    }

    /// The JSON of model 1's row in `/api/models`, written out by hand.
    pub(crate) fn model_one_summary_json() -> Value {
        let mut row = Self::model_one_common_json();
        row["version_count"] = json!(2);
        row["latest"] = Self::model_one_v2_json();
        row
    }

    /// The JSON `/api/models/1` must answer, written out by hand.
    pub(crate) fn model_one_detail_json() -> Value {
        let mut detail = Self::model_one_common_json();
        let mut v2 = Self::model_one_v2_json();
        v2["rounds"] = json!(10);
        v2["contributors"] = json!([
            {"key": Self::alice().to_string(), "role": "trainer", "earned": 150_000_000u64},
            {"key": Self::victor().to_string(), "role": "validator", "earned": 20_000_000u64},
        ]);
        let v1 = json!({
            "version": 1,
            "hash": ContentHash::of(Self::MODEL_ONE_V1).to_string(),
            "size_bytes": Self::MODEL_ONE_V1.len(),
            "promoted_at": 1_750_100_000u64,
            "task": 2,
            "round": 7,
            "consensus_accuracy": 0.9,
            "accuracy": 0.9,
            "loss": null,
            "price": {"base": 1_000, "per_item": 100},
            "rounds": 10,
            "contributors": [{"key": Self::bob().to_string(), "role": "trainer", "earned": 90_000_000u64}],
        });
        detail["version_count"] = json!(2);
        detail["versions"] = json!([v2, v1]);
        detail["latest"] = Self::model_one_v2_json();
        detail
    }

    /// Model 1's own fields.
    fn model_one_common_json() -> Value {
        json!({
            "id": 1,
            "name": "mnist-cnn",
            "creator": Self::alice().to_string(),
            "architecture": "cnn",
            "dataset": "mnist",
            "input_shape": [1, 28, 28],
            "num_classes": 10,
        })
    }

    /// Model 1's version 2 without lineage.
    fn model_one_v2_json() -> Value {
        json!({
            "version": 2,
            "hash": ContentHash::of(Self::MODEL_ONE_V2).to_string(),
            "size_bytes": Self::MODEL_ONE_V2.len(),
            "promoted_at": 1_750_200_000u64,
            "task": 5,
            "round": 9,
            "consensus_accuracy": 0.97,
            "accuracy": 0.9812,
            "loss": 0.0625,
            "price": {"base": 1_000, "per_item": 100},
        })
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

    /// The JSON `/api/tasks/1` must answer, written out by hand.
    pub(crate) fn task_one_json() -> Value {
        let (alice, bob, carol, victor) =
            (Self::alice(), Self::bob(), PublicKey::from_bytes([0xc0; 32]), Self::victor());
        let id = |key: &PublicKey| {
            SubmissionId::derive(TaskId::new(1), RoundNumber::new(2), key, &ContentHash::of(key.as_bytes())).to_string()
        };
        json!({
            "id": 1,
            "model": "mnist-cnn",
            "dataset": "mnist",
            "phase": "training",
            "round": 2,
            "rounds": 10,
            "participants": 3,
            "pool_left": 800_000_000u64,
            "spec": serde_json::to_value(Self::spec()).unwrap(),
            "history": [
                {"round": 0, "accuracy": 0.5, "loss": 1.25, "accepted": 3, "rejected": 0,
                 "global_model": ContentHash::of(b"round 0").to_string()},
                {"round": 1, "accuracy": 0.75, "loss": 0.5, "accepted": 2, "rejected": 1,
                 "global_model": ContentHash::of(Self::MODEL_ONE).to_string()},
                {"round": 2, "accuracy": null, "loss": null, "accepted": 0, "rejected": 0, "global_model": null},
            ],
            "submissions": [
                {"id": id(&alice), "round": 2, "trainer": alice.to_string(), "samples": 600,
                 "consensus_score": 0.125, "status": "accepted"},
                {"id": id(&bob), "round": 2, "trainer": bob.to_string(), "samples": 600,
                 "consensus_score": -2.5, "status": "rejected", "reason": "score below the harm threshold"},
                {"id": id(&carol), "round": 2, "trainer": carol.to_string(), "samples": 600,
                 "consensus_score": null, "status": "pending"},
            ],
            "payouts": [
                {"identity": alice.to_string(), "rewarded": 150_000_000u64, "slashed": 0},
                {"identity": bob.to_string(), "rewarded": 0, "slashed": 1_000_000u64},
                {"identity": victor.to_string(), "rewarded": 20_000_000u64, "slashed": 0},
            ],
            "validators": [
                {"validator": victor.to_string(), "scores": 6, "rounds": 2, "agreement": 0.875,
                 "last_agreement": 0.75, "rewarded": 20_000_000u64, "slashed": 0},
            ],
        })
    }

    /// Alice's history, newest first; entry `i` is round `i`, cursor `i`.
    fn history() -> Vec<HistoryEntry> {
        (0..5u32)
            .rev()
            .map(|round| HistoryEntry {
                task: TaskId::new(1),
                round: RoundNumber::new(round),
                kind: if round % 2 == 0 { HistoryKind::Reward } else { HistoryKind::SlashToPool },
                amount: 100 + u64::from(round),
                bond: (round % 2 == 1).then_some(11),
                at: 1_750_000_100 + u64::from(round),
            })
            .collect()
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
            let next_cursor =
                if rest.len() > items.len() { items.last().map(|task| Cursor::new(task.id.get())) } else { None };
            Ok(Page { items, next_cursor })
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
            let next_cursor = if rest.len() > items.len() {
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
                    role: StakeRole::Trainer,
                    amount: 2_000_000,
                    effective: 4_000_000,
                    lock_days: 197,
                    unlock_at: 1_767_225_600,
                }],
                delegations: vec![BondView {
                    id: 12,
                    node: Self::bob(),
                    role: StakeRole::Validator,
                    amount: 1_000_000,
                    effective: 1_000_000,
                    lock_days: 0,
                    unlock_at: 1_750_000_000,
                }],
                history: Page { items, next_cursor },
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
            let next_cursor =
                if rest.len() > items.len() { items.last().map(|model| Cursor::new(model.id)) } else { None };
            Ok(Page { items, next_cursor })
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

/// A GET request for `uri`.
pub(crate) fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// Sends `request` through a fresh router over `model`.
pub(crate) async fn send(model: &Arc<MemoryModel>, request: Request<Body>) -> Response {
    router(model.clone()).oneshot(request).await.unwrap()
}

/// Sends `request` through `app`, which keeps its state (rate limits, spent
/// nonces) from one request to the next.
pub(crate) async fn send_to(app: &axum::Router, request: Request<Body>) -> Response {
    app.clone().oneshot(request).await.unwrap()
}

/// Sends `request` and reads the answer as JSON, checking its content type.
pub(crate) async fn send_json(model: &Arc<MemoryModel>, request: Request<Body>) -> (StatusCode, Value) {
    let response = send(model, request).await;
    let status = response.status();
    assert_eq!(response.headers()[axum::http::header::CONTENT_TYPE], "application/json", "{status}");
    (status, json_body(response).await)
}

/// Sends `request` and reads the answer as an HTML page, checking its
/// content type.
pub(crate) async fn send_html(model: &Arc<MemoryModel>, request: Request<Body>) -> (StatusCode, String) {
    let response = send(model, request).await;
    let status = response.status();
    assert_eq!(response.headers()[axum::http::header::CONTENT_TYPE], "text/html; charset=utf-8", "{status}");
    (status, String::from_utf8(body_bytes(response).await).unwrap())
}

/// The whole body.
pub(crate) async fn body_bytes(response: Response) -> Vec<u8> {
    response.into_body().collect().await.unwrap().to_bytes().to_vec()
}

/// The whole body, as JSON.
pub(crate) async fn json_body(response: Response) -> Value {
    serde_json::from_slice(&body_bytes(response).await).unwrap()
}
