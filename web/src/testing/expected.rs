//! The JSON the API must answer for the fixture, written out by hand so
//! that a test compares the real answer with an independent account of it.

use serde_json::{Value, json};
use starling_protocol::{ContentHash, PublicKey, RoundNumber, SubmissionId, TaskId};

use crate::testing::MemoryModel;

impl MemoryModel {
    /// The JSON of task 1's row in `/api/tasks`, written out by hand.
    pub(crate) fn task_one_summary_json() -> Value {
        json!({
            "id": 1,
            "model": "mnist-cnn",
            "dataset": "mnist",
            "phase": "training",
            "round": 2,
            "rounds": 10,
            "participants": 3,
            "pool_left": 800_000_000u64,
        })
    }

    /// The JSON `/api/tasks/1` must answer, written out by hand: the row's
    /// fields and the detail's.
    pub(crate) fn task_one_json() -> Value {
        let (alice, bob, carol, victor) =
            (Self::alice(), Self::bob(), PublicKey::from_bytes([0xc0; 32]), Self::victor());
        let id = |key: &PublicKey| {
            SubmissionId::derive(TaskId::new(1), RoundNumber::new(2), key, &ContentHash::of(key.as_bytes())).to_string()
        };
        let mut task = Self::task_one_summary_json();
        let detail = json!({
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
        });
        task.as_object_mut().unwrap().extend(detail.as_object().unwrap().clone());
        task
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
}
