//! Updates as they travel: `Δ = w_local − w_global` as the protocol's
//! payload, and back.

use starling_protocol::payload::{self, PayloadError};
use starling_protocol::{NamedTensor, TensorSpec, UpdatePayload};
use thiserror::Error;

/// Why an update cannot be built or applied.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum UpdateError {
    /// The tensors are not exactly the model's, in its order.
    #[error("tensor {index} is {found}, the model's is {expected}")]
    Layout {
        /// Position in the model's spec order.
        index: usize,
        /// The model's tensor, `name [shape]`.
        expected: String,
        /// What was found there.
        found: String,
    },
    /// A value is NaN or infinite (a diverged trainer, or `w + Δ` overflowing).
    #[error("tensor {name:?} has a non-finite value at index {index}")]
    NonFinite {
        /// The tensor.
        name: String,
        /// Row-major index of the first bad value.
        index: usize,
    },
    /// The payload could not be encoded or decoded.
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

fn describe(name: &str, shape: &[usize], values: Option<usize>) -> String {
    match values {
        Some(n) => format!("{name} {shape:?} with {n} values"),
        None => format!("{name} {shape:?}"),
    }
}

/// Checks that `tensors` are exactly `specs`, in order, each with the right
/// number of finite values.
pub fn check_layout(specs: &[TensorSpec], tensors: &[NamedTensor]) -> Result<(), UpdateError> {
    for index in 0..specs.len().max(tensors.len()) {
        let (spec, tensor) = (specs.get(index), tensors.get(index));
        let fits = match (spec, tensor) {
            (Some(spec), Some(tensor)) => {
                spec.name == tensor.name
                    && spec.shape == tensor.shape
                    && spec.element_count() == Some(tensor.values.len())
            }
            _ => false,
        };
        if !fits {
            return Err(UpdateError::Layout {
                index,
                expected: spec.map_or_else(|| "nothing".into(), |s| describe(&s.name, &s.shape, None)),
                found: tensor.map_or_else(|| "missing".into(), |t| describe(&t.name, &t.shape, Some(t.values.len()))),
            });
        }
        let tensor = tensor.expect("checked above");
        if let Some(index) = tensor.values.iter().position(|v| !v.is_finite()) {
            return Err(UpdateError::NonFinite { name: tensor.name.clone(), index });
        }
    }
    Ok(())
}

/// The payload of an update `delta` for a model of `specs`: checked for
/// layout and finiteness first, so the coordinator never has to refuse it
/// for those reasons.
pub fn encode_update(specs: &[TensorSpec], delta: &[NamedTensor]) -> Result<UpdatePayload, UpdateError> {
    check_layout(specs, delta)?;
    Ok(UpdatePayload::encode_owned(delta)?)
}

/// Decodes untrusted payload `bytes` (a model or an update) into exactly
/// `specs`, in order, refusing more than `limit` bytes (the task's
/// `payload_limit`) and anything the protocol's strict decoder refuses.
pub fn decode_tensors(bytes: &[u8], specs: &[TensorSpec], limit: u64) -> Result<Vec<NamedTensor>, UpdateError> {
    Ok(payload::decode(bytes, specs, usize::try_from(limit).unwrap_or(usize::MAX))?)
}

/// `base + delta`, tensor by tensor: the candidate model a validator scores.
/// Both must have the same layout (as [`decode_tensors`] against one spec
/// gives); a sum that overflows to infinity is refused.
pub fn apply_update(base: &[NamedTensor], delta: &[NamedTensor]) -> Result<Vec<NamedTensor>, UpdateError> {
    check_layout(&base.iter().map(NamedTensor::spec).collect::<Vec<_>>(), delta)?;
    let mut out = Vec::with_capacity(base.len());
    for (b, d) in base.iter().zip(delta) {
        let values: Vec<f32> = b.values.iter().zip(&d.values).map(|(w, dw)| w + dw).collect();
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(UpdateError::NonFinite { name: b.name.clone(), index });
        }
        out.push(NamedTensor::new(b.name.clone(), b.shape.clone(), values));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::Device;
    use starling_models::zoo::{Model, ModelKind};

    fn global(kind: ModelKind) -> Vec<NamedTensor> {
        Model::init(kind, 3, &Device::flex()).to_tensors().unwrap()
    }

    fn scaled(tensors: &[NamedTensor], by: f32) -> Vec<NamedTensor> {
        tensors
            .iter()
            .map(|t| NamedTensor::new(t.name.clone(), t.shape.clone(), t.values.iter().map(|v| v * by).collect()))
            .collect()
    }

    #[test]
    fn an_update_round_trips_with_the_models_names_and_shapes() {
        for kind in [ModelKind::LogReg, ModelKind::TwoNn] {
            let specs = kind.tensor_specs();
            let delta = scaled(&global(kind), 0.01);
            let payload = encode_update(&specs, &delta).unwrap();
            let limit = starling_protocol::payload::encoded_len(&specs).unwrap() as u64;
            assert_eq!(payload.len() as u64, limit, "exactly the size the task's spec predicts");
            let decoded = decode_tensors(payload.bytes(), &specs, limit).unwrap();
            assert_eq!(decoded, delta);
            assert_eq!(decoded.iter().map(NamedTensor::spec).collect::<Vec<_>>(), specs);
        }
    }

    #[test]
    fn base_plus_update_is_the_local_model() {
        let base = global(ModelKind::LogReg);
        let delta = scaled(&base, 0.5);
        let candidate = apply_update(&base, &delta).unwrap();
        for ((c, b), d) in candidate.iter().zip(&base).zip(&delta) {
            for ((c, b), d) in c.values.iter().zip(&b.values).zip(&d.values) {
                assert_eq!(*c, b + d);
            }
        }
        let largest: Vec<NamedTensor> = base
            .iter()
            .map(|t| NamedTensor::new(t.name.clone(), t.shape.clone(), vec![f32::MAX; t.values.len()]))
            .collect();
        assert_eq!(
            apply_update(&largest, &largest),
            Err(UpdateError::NonFinite { name: "fc.weight".into(), index: 0 }),
            "an overflowing sum is refused"
        );
    }

    #[test]
    fn wrong_layouts_and_non_finite_values_are_refused_before_encoding() {
        let specs = ModelKind::LogReg.tensor_specs();
        let mut delta = global(ModelKind::LogReg);
        delta.swap(0, 1);
        assert!(matches!(encode_update(&specs, &delta), Err(UpdateError::Layout { index: 0, .. })));
        delta.swap(0, 1);
        delta.pop();
        let err = encode_update(&specs, &delta).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        let mut delta = global(ModelKind::LogReg);
        delta[1].values[4] = f32::NAN;
        assert_eq!(
            encode_update(&specs, &delta).unwrap_err(),
            UpdateError::NonFinite { name: "fc.bias".into(), index: 4 }
        );
    }

    #[test]
    fn decoding_refuses_another_models_payload() {
        let payload = encode_update(&ModelKind::LogReg.tensor_specs(), &global(ModelKind::LogReg)).unwrap();
        let specs = ModelKind::TwoNn.tensor_specs();
        assert!(decode_tensors(payload.bytes(), &specs, 1 << 24).is_err());
        assert!(matches!(
            decode_tensors(payload.bytes(), &ModelKind::LogReg.tensor_specs(), 100),
            Err(UpdateError::Payload(PayloadError::TooLarge { .. }))
        ));
    }
}
