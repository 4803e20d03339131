//! The checks an update passes before its bytes are read (the machine's
//! round, phase, sampling and base model) and after (decodes to the task's
//! tensors, finite, a norm within bounds).
//!
//! A correctly signed update whose payload fails the second set is still the
//! trainer's one submission of the round: it is recorded as invalid, and its
//! trainer slashed when the round settles.

use starling_protocol::payload::{PayloadError, StreamSummary};
use starling_protocol::{ErrorCode, MIN_UPDATE_NORM, PublicKey, RoundPhase, SubmitUpdate, TaskSpec, WireError};

use crate::round::RoundMachine;
use crate::service::wire_error::refuse;

/// Whether `trainer` may send `update` to the task `machine` runs, before any
/// of its bytes are read. Duplicates are named first: a trainer whose answer
/// was lost learns that its update is in, even once the round has moved on.
pub(crate) fn precheck_update(
    machine: &RoundMachine,
    trainer: &PublicKey,
    update: &SubmitUpdate,
) -> Result<(), WireError> {
    update.validate_for(machine.spec()).map_err(|e| WireError::from_error(&e))?;
    let Some((round, phase)) = machine.progress() else {
        return Err(refuse(ErrorCode::NotStarted, format!("task {} has not started", update.task)));
    };
    if round == update.round && machine.has_submitted(trainer) {
        return Err(refuse(ErrorCode::Duplicate, format!("{trainer} already submitted in round {round}")));
    }
    if phase == RoundPhase::Finished {
        return Err(refuse(ErrorCode::TaskFinished, format!("task {} has finished", update.task)));
    }
    if update.round != round {
        return Err(refuse(ErrorCode::WrongRound, format!("round {} is not the current round {round}", update.round)));
    }
    if phase != RoundPhase::Training {
        return Err(refuse(ErrorCode::WrongPhase, format!("round {round} is {phase}, not training")));
    }
    if !machine.sampled_trainers().contains(trainer) {
        return Err(refuse(ErrorCode::NotSampled, format!("{trainer} was not sampled for round {round}")));
    }
    if Some(update.base_model) != machine.global_model() {
        return Err(refuse(ErrorCode::WrongBaseModel, "the update was trained from another model than this round's"));
    }
    Ok(())
}

/// The verdict on a payload checked piece by piece as it arrived: `checked`
/// is its [`StreamingCheck`](starling_protocol::payload::StreamingCheck)'s
/// outcome (decoding, shapes, finiteness), then the norm bounds.
pub(crate) fn check_streamed_update(
    spec: &TaskSpec,
    checked: Result<StreamSummary, PayloadError>,
) -> Result<(), WireError> {
    let summary = checked.map_err(|e| WireError::from_error(&e))?;
    check_norm(spec, summary.sum_of_squares)
}

/// An update's squared L2 norm against the task's bound, if it has one, and
/// against [`MIN_UPDATE_NORM`]: an empty update is a free ride.
fn check_norm(spec: &TaskSpec, squared: f64) -> Result<(), WireError> {
    let norm = squared.sqrt();
    if norm < MIN_UPDATE_NORM {
        return Err(refuse(
            ErrorCode::EmptyUpdate,
            format!(
                "the update's L2 norm {norm:.1e} is below {MIN_UPDATE_NORM:e}: an update that changes nothing is no contribution"
            ),
        ));
    }
    if let Some(bound) = spec.max_update_norm
        && norm > bound
    {
        return Err(refuse(
            ErrorCode::NormTooLarge,
            format!("the update's L2 norm {norm:.4} exceeds the task's bound {bound}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use starling_protocol::payload::StreamingCheck;
    use starling_protocol::{DataSpec, ModelSpec, NamedTensor, TensorSpec, UpdatePayload};

    use super::*;

    fn spec() -> TaskSpec {
        let tensors = vec![TensorSpec::new("w", vec![4, 3]), TensorSpec::new("b", vec![3])];
        let model = ModelSpec { name: "logreg".into(), tensors };
        let data = DataSpec { dataset: "mnist".into(), input_shape: vec![4], num_classes: 3 };
        TaskSpec::builder(model, data).max_update_norm(Some(10.0)).build().unwrap()
    }

    /// The verdict on a payload with every value of the spec's tensors set to
    /// `value`, fed in two pieces as an upload arrives.
    fn check(spec: &TaskSpec, value: f32) -> Result<(), WireError> {
        let tensors: Vec<NamedTensor> = spec
            .model
            .tensors
            .iter()
            .map(|t| NamedTensor::new(t.name.clone(), t.shape.clone(), vec![value; t.shape.iter().product()]))
            .collect();
        let bytes = UpdatePayload::encode_owned(&tensors).unwrap().into_bytes();
        let mut streaming = StreamingCheck::new(spec.model.tensors.clone(), spec.payload_limit_bytes());
        let (first, second) = bytes.split_at(bytes.len() / 2);
        streaming.feed(first);
        streaming.feed(second);
        check_streamed_update(spec, streaming.finish())
    }

    #[test]
    fn an_empty_update_is_refused_as_no_contribution() {
        let spec = spec();
        for value in [0.0, 1e-9, -1e-8] {
            let error = check(&spec, value).unwrap_err();
            assert_eq!(error.code, ErrorCode::EmptyUpdate, "{value}: {error}");
        }
        // The smallest real update passes; the norm bound still holds above.
        assert_eq!(check(&spec, 1e-6), Ok(()));
        assert_eq!(check(&spec, 2.0), Ok(()));
        assert_eq!(check(&spec, 3.0).unwrap_err().code, ErrorCode::NormTooLarge);
    }
}
