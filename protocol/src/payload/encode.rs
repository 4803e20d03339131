//! Encoding named `f32` tensors as a safetensors payload.

use std::collections::HashSet;

use super::error::PayloadError;
use super::header::{self, LEN_PREFIX};
use crate::ids::ContentHash;
use crate::task::RESERVED_TENSOR_NAME;
use crate::tensor::{NamedTensor, TensorRef, TensorSpec, element_count};

/// An encoded update: safetensors bytes and their BLAKE3 hash, which always
/// agree (the fields are private so they cannot drift apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePayload {
    bytes: Vec<u8>,
    hash: ContentHash,
}

impl UpdatePayload {
    /// Encodes `tensors` as safetensors: `F32`, little-endian, tensors sorted
    /// by name, byte-for-byte what `safetensors::serialize` writes.
    ///
    /// Refuses duplicate or reserved names, value counts that do not match
    /// their shape, and NaN or infinite values (naming the tensor), since a
    /// receiver would refuse them anyway.
    pub fn encode(tensors: &[TensorRef<'_>]) -> Result<Self, PayloadError> {
        let mut seen = HashSet::with_capacity(tensors.len());
        let mut data_len = 0usize;
        for tensor in tensors {
            if tensor.name == RESERVED_TENSOR_NAME {
                return Err(PayloadError::ReservedName { name: tensor.name.to_owned() });
            }
            if !seen.insert(tensor.name) {
                return Err(PayloadError::DuplicateTensor { name: tensor.name.to_owned() });
            }
            if element_count(tensor.shape) != Some(tensor.values.len()) {
                return Err(PayloadError::ShapeMismatch {
                    name: tensor.name.to_owned(),
                    shape: tensor.shape.to_vec(),
                    values: tensor.values.len(),
                });
            }
            if let Some((index, &value)) = tensor.values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(PayloadError::NonFinite { name: tensor.name.to_owned(), index, value });
            }
            data_len = tensor
                .values
                .len()
                .checked_mul(4)
                .and_then(|n| data_len.checked_add(n))
                .ok_or(PayloadError::ModelTooLarge)?;
        }

        let mut sorted: Vec<&TensorRef<'_>> = tensors.iter().collect();
        sorted.sort_unstable_by(|a, b| a.name.cmp(b.name));
        let layout: Vec<(&str, &[usize])> = sorted.iter().map(|t| (t.name, t.shape)).collect();
        let header = header::build(&layout)?;

        let total = LEN_PREFIX
            .checked_add(header.len())
            .and_then(|n| n.checked_add(data_len))
            .ok_or(PayloadError::ModelTooLarge)?;
        let mut bytes = Vec::with_capacity(total);
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&header);
        for tensor in sorted {
            for value in tensor.values {
                bytes.extend_from_slice(&value.to_le_bytes());
            }
        }
        Ok(Self::from_bytes(bytes))
    }

    /// Encodes owned tensors; see [`UpdatePayload::encode`].
    pub fn encode_owned(tensors: &[NamedTensor]) -> Result<Self, PayloadError> {
        let refs: Vec<TensorRef<'_>> = tensors.iter().map(NamedTensor::view).collect();
        Self::encode(&refs)
    }

    /// Wraps bytes received or loaded from storage, hashing them. Nothing is
    /// validated: use [`decode`](super::decode) with the task's specs.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        let hash = ContentHash::of(&bytes);
        Self { bytes, hash }
    }

    /// The safetensors bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// BLAKE3 hash of [`UpdatePayload::bytes`].
    pub fn hash(&self) -> &ContentHash {
        &self.hash
    }

    /// Size of the payload in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the payload is empty (never true for an encoded one).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Gives up the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Exact size, in bytes, of the payload [`UpdatePayload::encode`] writes for
/// tensors of these names and shapes, computed without touching any values.
pub fn encoded_len(specs: &[TensorSpec]) -> Result<usize, PayloadError> {
    let mut layout: Vec<(&str, &[usize])> = specs.iter().map(|s| (s.name.as_str(), s.shape.as_slice())).collect();
    layout.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let header = header::build(&layout)?;
    let data = specs.iter().try_fold(0usize, |total, spec| {
        spec.element_count().and_then(|n| n.checked_mul(4)).and_then(|n| total.checked_add(n))
    });
    data.and_then(|d| d.checked_add(LEN_PREFIX + header.len())).ok_or(PayloadError::ModelTooLarge)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use proptest::prelude::*;
    use safetensors::{Dtype, View};

    use super::*;

    struct F32View<'a>(&'a NamedTensor, Vec<u8>);

    impl View for &F32View<'_> {
        fn dtype(&self) -> Dtype {
            Dtype::F32
        }
        fn shape(&self) -> &[usize] {
            &self.0.shape
        }
        fn data(&self) -> Cow<'_, [u8]> {
            Cow::Borrowed(&self.1)
        }
        fn data_len(&self) -> usize {
            self.1.len()
        }
    }

    fn reference(tensors: &[NamedTensor]) -> Vec<u8> {
        let views: Vec<F32View<'_>> =
            tensors.iter().map(|t| F32View(t, t.values.iter().flat_map(|v| v.to_le_bytes()).collect())).collect();
        safetensors::serialize(views.iter().map(|v| (v.0.name.as_str(), v)), None).unwrap()
    }

    fn sample() -> Vec<NamedTensor> {
        vec![
            NamedTensor::new("fc.weight", [2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            NamedTensor::new("fc.bias", [2], vec![-0.5, 0.5]),
            NamedTensor::new("scale", [], vec![3.25]),
        ]
    }

    #[test]
    fn matches_the_reference_writer_byte_for_byte() {
        let tensors = sample();
        let payload = UpdatePayload::encode_owned(&tensors).unwrap();
        assert_eq!(payload.bytes(), reference(&tensors).as_slice());
        assert_eq!(payload.hash(), &ContentHash::of(payload.bytes()));
        let specs: Vec<TensorSpec> = tensors.iter().map(NamedTensor::spec).collect();
        assert_eq!(encoded_len(&specs), Ok(payload.len()));
    }

    #[test]
    fn refuses_bad_input_naming_the_tensor() {
        let mut tensors = sample();
        tensors[1].values.push(1.0);
        assert_eq!(
            UpdatePayload::encode_owned(&tensors),
            Err(PayloadError::ShapeMismatch { name: "fc.bias".into(), shape: vec![2], values: 3 })
        );

        let mut tensors = sample();
        tensors[0].values[4] = f32::NAN;
        assert!(matches!(
            UpdatePayload::encode_owned(&tensors),
            Err(PayloadError::NonFinite { ref name, index: 4, .. }) if name == "fc.weight"
        ));

        let mut tensors = sample();
        tensors[2].name = "fc.bias".into();
        tensors[2].shape = vec![2];
        tensors[2].values = vec![0.0, 0.0];
        assert_eq!(
            UpdatePayload::encode_owned(&tensors),
            Err(PayloadError::DuplicateTensor { name: "fc.bias".into() })
        );

        let reserved = [NamedTensor::new(RESERVED_TENSOR_NAME, [1], vec![0.0])];
        assert!(matches!(UpdatePayload::encode_owned(&reserved), Err(PayloadError::ReservedName { .. })));
    }

    #[test]
    fn encoded_len_refuses_overflow() {
        let specs = [TensorSpec::new("huge", [usize::MAX / 2, 4])];
        assert_eq!(encoded_len(&specs), Err(PayloadError::ModelTooLarge));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn encoded_len_is_exact(
            layout in proptest::collection::btree_map(".{1,12}", proptest::collection::vec(1..6usize, 0..4), 1..6)
        ) {
            let specs: Vec<TensorSpec> = layout
                .into_iter()
                .filter(|(name, _)| name != RESERVED_TENSOR_NAME)
                .map(|(name, shape)| TensorSpec { name, shape })
                .collect();
            let tensors: Vec<NamedTensor> = specs
                .iter()
                .map(|s| NamedTensor::new(s.name.clone(), s.shape.clone(), vec![0.5; s.element_count().unwrap()]))
                .collect();
            let payload = UpdatePayload::encode_owned(&tensors).unwrap();
            prop_assert_eq!(encoded_len(&specs).unwrap(), payload.len());
            let expected = reference(&tensors);
            prop_assert_eq!(payload.bytes(), expected.as_slice());
        }
    }
}
