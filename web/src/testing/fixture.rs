//! The fixture's data: its tasks, accounts and marketplace models, the
//! identities that appear in them, and the files it serves.

use std::sync::Arc;

use starling_protocol::{
    ContentHash, DataSpec, ModelSpec, PublicKey, Role, RoundNumber, RoundPhase, SigningKey, SubmissionId, TaskId,
    TaskSpec, TensorSpec,
};

use crate::testing::MemoryModel;
use crate::views::{
    Contributor, HistoryEntry, HistoryKind, IdentityPayout, ModelDetail, ModelSummary, Price, RoundRecord,
    SubmissionOutcome, SubmissionView, TaskDetail, TaskSummary, ValidatorStanding, VersionDetail, VersionSummary,
};

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
        let mut model = Arc::into_inner(model).unwrap();
        model.market_name = r#"<script>alert("market")</script>"#.into();
        Arc::new(model)
    }

    pub(super) fn named(model: &str, dataset: &str, reason: &str) -> Arc<Self> {
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

    pub(super) fn spec() -> TaskSpec {
        let model = ModelSpec { name: "mnist-cnn".into(), tensors: vec![TensorSpec::new("fc.weight", [10, 784])] };
        let data = DataSpec { dataset: "mnist".into(), input_shape: vec![1, 28, 28], num_classes: 10 };
        TaskSpec::builder(model, data)
            .rounds(10)
            .fraction(0.5)
            .training(1, 32, 0.05)
            .reward_pool(1_000_000_000)
            .min_stakes(1_000_000, 5_000_000)
            .payload_limit(1 << 20)
            .deadlines(600, 300)
            .build()
            .expect("a valid task")
    }

    pub(super) fn submission(trainer: PublicKey, score: Option<f64>, outcome: SubmissionOutcome) -> SubmissionView {
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

    pub(super) fn task_one(&self) -> TaskDetail {
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
    pub(super) fn task_other(summary: &TaskSummary) -> TaskDetail {
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
    pub(super) fn market(&self) -> Vec<ModelDetail> {
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
                    Contributor { key: Self::alice(), role: Role::Trainer, earned: 150_000_000 },
                    Contributor { key: Self::victor(), role: Role::Validator, earned: 20_000_000 },
                ],
            },
            VersionDetail {
                summary: version(1, Self::MODEL_ONE_V1, 1_750_100_000, 2, 7, 0.9, (Some(0.9), None), price),
                rounds: 10,
                contributors: vec![Contributor { key: Self::bob(), role: Role::Trainer, earned: 90_000_000 }],
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

    /// Alice's history, newest first; entry `i` is round `i`, cursor `i`.
    pub(super) fn history() -> Vec<HistoryEntry> {
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
