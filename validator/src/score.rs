//! A validator's score for one submission, from two evaluations.

use starling_models::train::Evaluation;
use starling_protocol::{RoundNumber, SubmissionId, SubmitScore, TaskId};

/// The loss reported for a candidate that could not be evaluated (its
/// update is malformed, `w + Δ` overflows, or its loss is not finite): the
/// largest `f32`, so it ranks below every candidate that evaluated to a
/// finite loss, and is still a finite number the protocol accepts.
pub const REJECTED_LOSS: f64 = f32::MAX as f64;

/// What a validator says about one candidate model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Accuracy on the held-out data, in `[0, 1]`.
    pub accuracy: f64,
    /// Mean loss on the held-out data, finite and `≥ 0`.
    pub loss: f64,
    /// `accuracy − accuracy of the global model`, in `[-1, 1]`.
    pub improvement: f64,
}

impl Score {
    /// The score of a candidate that evaluated to `candidate`, against the
    /// global model's `base`. A candidate whose loss is not finite is
    /// [`Score::rejected`]: its predictions are meaningless.
    pub fn new(candidate: &Evaluation, base: &Evaluation) -> Self {
        if !candidate.loss.is_finite() || !candidate.accuracy.is_finite() {
            return Self::rejected(base);
        }
        let accuracy = f64::from(candidate.accuracy).clamp(0.0, 1.0);
        Self { accuracy, loss: f64::from(candidate.loss).clamp(0.0, REJECTED_LOSS), improvement: gain(accuracy, base) }
    }

    /// The score of a candidate that cannot be evaluated: accuracy 0,
    /// [`REJECTED_LOSS`], and the global model's whole accuracy lost.
    pub fn rejected(base: &Evaluation) -> Self {
        Self { accuracy: 0.0, loss: REJECTED_LOSS, improvement: gain(0.0, base) }
    }

    /// The signed message for `submission` of `round` of `task`.
    pub fn message(&self, task: TaskId, round: RoundNumber, submission: SubmissionId) -> SubmitScore {
        SubmitScore { task, round, submission, accuracy: self.accuracy, loss: self.loss, improvement: self.improvement }
    }
}

fn gain(accuracy: f64, base: &Evaluation) -> f64 {
    let base = if base.accuracy.is_finite() { f64::from(base.accuracy).clamp(0.0, 1.0) } else { 0.0 };
    (accuracy - base).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::Device;
    use starling_models::data::Dataset;
    use starling_models::train::{Features, Quiet, evaluate};
    use starling_models::zoo::{Model, ModelKind};
    use starling_protocol::NamedTensor;

    /// A logistic regression with zero weights and a bias of 1 on class
    /// `favourite`: it predicts `favourite` for every image, with
    /// probability `e / (e + 9)`.
    fn constant_model(favourite: usize) -> Model {
        let mut bias = vec![0.0; 10];
        bias[favourite] = 1.0;
        let tensors =
            vec![NamedTensor::new("fc.weight", [784, 10], vec![0.0; 7840]), NamedTensor::new("fc.bias", [10], bias)];
        Model::from_tensors(ModelKind::LogReg, &tensors, &Device::flex()).unwrap()
    }

    /// Four blank images labelled 3, 3, 1, 0.
    fn four_images() -> Features {
        Features::new(&Dataset::new(vec![0; 4 * 784], vec![3, 3, 1, 0], [28, 28], 10).unwrap())
    }

    #[test]
    fn scores_match_the_hand_computed_values() {
        let data = four_images();
        let candidate = evaluate(&constant_model(3), &data, 3, &mut Quiet).unwrap();
        let base = evaluate(&constant_model(0), &data, 3, &mut Quiet).unwrap();
        // Right: −ln(e/(e+9)) = ln(e+9) − 1; wrong: −ln(1/(e+9)) = ln(e+9).
        let e = std::f64::consts::E;
        let (right, wrong) = ((e + 9.0).ln() - 1.0, (e + 9.0).ln());
        let score = Score::new(&candidate, &base);
        assert_eq!(score.accuracy, 0.5);
        assert!((score.loss - (2.0 * right + 2.0 * wrong) / 4.0).abs() < 1e-5, "{score:?}");
        assert_eq!(score.improvement, 0.25, "base accuracy is 1/4");
        assert!((f64::from(base.loss) - (right + 3.0 * wrong) / 4.0).abs() < 1e-5);

        let message = score.message(TaskId::new(1), RoundNumber::new(2), SubmissionId::from_bytes([9; 32]));
        assert_eq!(message.validate(), Ok(()));
        assert_eq!((message.accuracy, message.improvement), (0.5, 0.25));
    }

    #[test]
    fn unusable_candidates_score_zero_and_still_validate() {
        let base = Evaluation { loss: 0.3, accuracy: 0.9, samples: 10 };
        let rejected = Score::rejected(&base);
        assert_eq!(rejected, Score { accuracy: 0.0, loss: REJECTED_LOSS, improvement: -0.9f32 as f64 });
        let diverged = Evaluation { loss: f32::INFINITY, accuracy: 0.1, samples: 10 };
        assert_eq!(Score::new(&diverged, &base), rejected);
        let nan = Evaluation { loss: f32::NAN, accuracy: 0.1, samples: 10 };
        assert_eq!(Score::new(&nan, &base), rejected);
        let message = rejected.message(TaskId::new(1), RoundNumber::new(0), SubmissionId::from_bytes([1; 32]));
        assert_eq!(message.validate(), Ok(()));
    }
}
