//! Signed requests about tasks and rounds: create a task, join it, submit an
//! update, submit a score.

use serde::{Deserialize, Serialize};

use crate::envelope::Message;
use crate::ids::{ContentHash, RoundNumber, SubmissionId, TaskId};
use crate::keys::PublicKey;
use crate::messages::role::Role;
use crate::messages::validation::{ValidationError, in_range, positive};
use crate::task::TaskSpec;

/// Creates a task and escrows its reward pool from the signer's free balance.
///
/// The initial model follows as a blob on the same connection; the
/// coordinator checks it against `initial_model` and `initial_model_len`
/// before registering anything. The ledger's escrow takes
/// `spec.reward_pool` µSTAR for `spec.rounds` rounds. Answered with
/// [`ResponseBody::TaskCreated`](crate::messages::ResponseBody::TaskCreated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateTask {
    /// Everything the creator fixes up front.
    pub spec: TaskSpec,
    /// BLAKE3 hash of the initial model: a payload holding exactly
    /// `spec.model.tensors`, in the update payload format.
    pub initial_model: ContentHash,
    /// Length of the initial model blob, in bytes: `> 0` and at most
    /// `spec.payload_limit`.
    pub initial_model_len: u64,
}

impl Message for CreateTask {
    const KIND: &'static str = "starling/task.create";
}

impl CreateTask {
    /// Checks the spec and the announced model length.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.spec.validate()?;
        positive("initial_model_len", self.initial_model_len)?;
        if self.initial_model_len > self.spec.payload_limit {
            return Err(ValidationError::TooLarge {
                field: "initial_model_len",
                len: self.initial_model_len,
                limit: self.spec.payload_limit,
            });
        }
        Ok(())
    }
}

/// Asks to take part in a task as a trainer or a validator. Being sampled or
/// assigned still depends on the signer's effective stake in that role.
/// Answered with [`ResponseBody::Ack`](crate::messages::ResponseBody::Ack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTask {
    /// The task.
    pub task: TaskId,
    /// The role the signer takes in it.
    pub role: Role,
}

impl Message for JoinTask {
    const KIND: &'static str = "starling/task.join";
}

impl JoinTask {
    /// Nothing in a join can be wrong without state; present for uniformity.
    pub fn validate(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// A trainer's update `Δ = w_local − w_global` for one round. The payload
/// follows as a blob on the same connection; the coordinator checks its
/// length, hash, shapes, finiteness and norm before storing it. Answered with
/// [`ResponseBody::UpdateAccepted`](crate::messages::ResponseBody::UpdateAccepted).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SubmitUpdate {
    /// The task.
    pub task: TaskId,
    /// The round trained for.
    pub round: RoundNumber,
    /// Hash of the global model the update was computed from; must be the
    /// round's, so a stale trainer cannot submit against an old model.
    pub base_model: ContentHash,
    /// BLAKE3 hash of the update payload.
    pub update: ContentHash,
    /// Length of the update payload, in bytes: `> 0` and at most the task's
    /// `payload_limit`.
    pub update_len: u64,
    /// Training examples used, `≥ 1`: the update's weight in sample-weighted rules.
    pub samples: u64,
    /// Mean training loss of the last local epoch, finite and `≥ 0`. Reported
    /// for the record; validators measure what counts.
    pub train_loss: f32,
}

impl Message for SubmitUpdate {
    const KIND: &'static str = "starling/round.submit-update";
}

impl SubmitUpdate {
    /// Checks what needs no task: positive lengths and counts, a finite loss.
    pub fn validate(&self) -> Result<(), ValidationError> {
        positive("update_len", self.update_len)?;
        positive("samples", self.samples)?;
        in_range("train_loss", f64::from(self.train_loss), 0.0, f64::MAX)
    }

    /// [`SubmitUpdate::validate`], then the task's payload limit.
    pub fn validate_for(&self, spec: &TaskSpec) -> Result<(), ValidationError> {
        self.validate()?;
        if self.update_len > spec.payload_limit {
            return Err(ValidationError::TooLarge {
                field: "update_len",
                len: self.update_len,
                limit: spec.payload_limit,
            });
        }
        Ok(())
    }

    /// The id this submission gets when `trainer` (the envelope's signer) sends it.
    pub fn submission_id(&self, trainer: &PublicKey) -> SubmissionId {
        SubmissionId::derive(self.task, self.round, trainer, &self.update)
    }
}

/// A validator's score for one submission assigned to it: what the candidate
/// model `w_global + Δ` achieved on its held-out data. Answered with
/// [`ResponseBody::Ack`](crate::messages::ResponseBody::Ack).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SubmitScore {
    /// The task.
    pub task: TaskId,
    /// The round the submission belongs to.
    pub round: RoundNumber,
    /// The submission scored.
    pub submission: SubmissionId,
    /// The candidate's accuracy, in `[0, 1]`: the value consensus runs on.
    pub accuracy: f64,
    /// The candidate's mean loss, finite and `≥ 0`.
    pub loss: f64,
    /// The candidate's accuracy minus the global model's on the same data, in `[-1, 1]`.
    pub improvement: f64,
}

impl Message for SubmitScore {
    const KIND: &'static str = "starling/round.submit-score";
}

impl SubmitScore {
    /// Checks that every value is finite and in its range (the same ranges the
    /// round state machine enforces).
    pub fn validate(&self) -> Result<(), ValidationError> {
        in_range("accuracy", self.accuracy, 0.0, 1.0)?;
        in_range("loss", self.loss, 0.0, f64::MAX)?;
        in_range("improvement", self.improvement, -1.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::tests::{cnn_spec, hash};

    fn create() -> CreateTask {
        CreateTask { spec: cnn_spec(), initial_model: hash(1), initial_model_len: 1_000 }
    }

    fn update() -> SubmitUpdate {
        SubmitUpdate {
            task: TaskId::new(1),
            round: RoundNumber::new(2),
            base_model: hash(1),
            update: hash(2),
            update_len: 4_000,
            samples: 600,
            train_loss: 0.3,
        }
    }

    fn score() -> SubmitScore {
        SubmitScore {
            task: TaskId::new(1),
            round: RoundNumber::new(2),
            submission: SubmissionId::from_bytes([3; 32]),
            accuracy: 0.9,
            loss: 0.25,
            improvement: -0.01,
        }
    }

    #[test]
    fn sensible_requests_pass() {
        assert_eq!(create().validate(), Ok(()));
        assert_eq!(JoinTask { task: TaskId::new(1), role: Role::Validator }.validate(), Ok(()));
        assert_eq!(update().validate(), Ok(()));
        assert_eq!(update().validate_for(&cnn_spec()), Ok(()));
        assert_eq!(score().validate(), Ok(()));
        let edges = SubmitScore { accuracy: 0.0, loss: 0.0, improvement: 1.0, ..score() };
        assert_eq!(edges.validate(), Ok(()));
        let edges = SubmitScore { accuracy: 1.0, improvement: -1.0, ..score() };
        assert_eq!(edges.validate(), Ok(()));
    }

    #[test]
    fn create_task_refusals() {
        let mut bad_spec = create();
        bad_spec.spec.rounds = 0;
        assert_eq!(bad_spec.validate(), Err(ValidationError::Spec(crate::task::TaskSpecError::ZeroRounds)));
        let empty = CreateTask { initial_model_len: 0, ..create() };
        assert_eq!(empty.validate(), Err(ValidationError::Zero { field: "initial_model_len" }));
        let limit = cnn_spec().payload_limit;
        let huge = CreateTask { initial_model_len: limit + 1, ..create() };
        assert_eq!(
            huge.validate(),
            Err(ValidationError::TooLarge { field: "initial_model_len", len: limit + 1, limit })
        );
    }

    #[test]
    fn submit_update_refusals() {
        assert_eq!(
            SubmitUpdate { update_len: 0, ..update() }.validate(),
            Err(ValidationError::Zero { field: "update_len" })
        );
        assert_eq!(SubmitUpdate { samples: 0, ..update() }.validate(), Err(ValidationError::Zero { field: "samples" }));
        for loss in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(matches!(
                SubmitUpdate { train_loss: loss, ..update() }.validate(),
                Err(ValidationError::NonFinite { field: "train_loss", .. })
            ));
        }
        assert!(matches!(
            SubmitUpdate { train_loss: -0.5, ..update() }.validate(),
            Err(ValidationError::OutOfRange { field: "train_loss", .. })
        ));
        let spec = cnn_spec();
        let over = SubmitUpdate { update_len: spec.payload_limit + 1, ..update() };
        assert_eq!(over.validate(), Ok(()), "without the task, the length is not known to be too large");
        assert_eq!(
            over.validate_for(&spec),
            Err(ValidationError::TooLarge {
                field: "update_len",
                len: spec.payload_limit + 1,
                limit: spec.payload_limit
            })
        );
        // The task-free checks still run first.
        assert_eq!(
            SubmitUpdate { samples: 0, ..update() }.validate_for(&spec),
            Err(ValidationError::Zero { field: "samples" })
        );
    }

    #[test]
    fn submit_score_refusals() {
        let cases: [(SubmitScore, &str); 9] = [
            (SubmitScore { accuracy: f64::NAN, ..score() }, "accuracy"),
            (SubmitScore { accuracy: -0.01, ..score() }, "accuracy"),
            (SubmitScore { accuracy: 1.01, ..score() }, "accuracy"),
            (SubmitScore { loss: f64::NAN, ..score() }, "loss"),
            (SubmitScore { loss: f64::INFINITY, ..score() }, "loss"),
            (SubmitScore { loss: -1e-9, ..score() }, "loss"),
            (SubmitScore { improvement: f64::NEG_INFINITY, ..score() }, "improvement"),
            (SubmitScore { improvement: 1.5, ..score() }, "improvement"),
            (SubmitScore { improvement: -1.5, ..score() }, "improvement"),
        ];
        for (message, expected) in cases {
            match message.validate() {
                Err(ValidationError::NonFinite { field, .. } | ValidationError::OutOfRange { field, .. }) => {
                    assert_eq!(field, expected, "{message:?}")
                }
                other => panic!("{message:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn submission_id_is_the_derived_one() {
        let trainer = PublicKey::from_bytes([7; 32]);
        let message = update();
        assert_eq!(
            message.submission_id(&trainer),
            SubmissionId::derive(message.task, message.round, &trainer, &message.update)
        );
    }
}
