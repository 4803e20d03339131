//! Round trips and every rejection path of the payload decoder.

use std::borrow::Cow;

use proptest::prelude::*;
use safetensors::{Dtype, View};

use super::*;
use crate::ids::ContentHash;
use crate::task::{MAX_TENSOR_NAME_LEN, RESERVED_TENSOR_NAME};
use crate::tensor::{NamedTensor, TensorSpec};

fn model() -> Vec<NamedTensor> {
    vec![
        NamedTensor::new("conv.weight", [2, 1, 2, 2], (0..8).map(|i| i as f32 * 0.25).collect()),
        NamedTensor::new("conv.bias", [2], vec![0.5, -0.5]),
        NamedTensor::new("fc.weight", [3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ]
}

fn specs(tensors: &[NamedTensor]) -> Vec<TensorSpec> {
    tensors.iter().map(NamedTensor::spec).collect()
}

fn encoded() -> (Vec<u8>, Vec<TensorSpec>) {
    let tensors = model();
    (UpdatePayload::encode_owned(&tensors).unwrap().into_bytes(), specs(&tensors))
}

/// A payload with a hand-written header, for inputs the encoder refuses to make.
fn raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Byte offset of tensor `name`'s data within `bytes`, via the reference reader.
fn data_offset(bytes: &[u8], name: &str) -> usize {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let data = st.tensor(name).unwrap().data();
    data.as_ptr() as usize - bytes.as_ptr() as usize
}

#[test]
fn decodes_in_the_expected_order() {
    let (bytes, specs) = encoded();
    let decoded = decode(&bytes, &specs, bytes.len()).unwrap();
    assert_eq!(decoded, model());
    let views = decode_view(&bytes, &specs, bytes.len()).unwrap();
    assert_eq!(views[2].name(), "fc.weight");
    assert_eq!(views[2].shape(), &[3, 2]);
    assert_eq!(views[2].len(), 6);
    assert_eq!(views[2].to_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn accepts_a_reference_file_with_metadata() {
    struct V(Vec<usize>, Vec<u8>);
    impl View for &V {
        fn dtype(&self) -> Dtype {
            Dtype::F32
        }
        fn shape(&self) -> &[usize] {
            &self.0
        }
        fn data(&self) -> Cow<'_, [u8]> {
            Cow::Borrowed(&self.1)
        }
        fn data_len(&self) -> usize {
            self.1.len()
        }
    }
    let v = V(vec![2], f32_bytes(&[1.0, 2.0]));
    let metadata = [("format".to_owned(), "pt".to_owned())].into_iter().collect();
    let bytes = safetensors::serialize([("w", &v)], Some(metadata)).unwrap();
    let decoded = decode(&bytes, &[TensorSpec::new("w", [2])], usize::MAX).unwrap();
    assert_eq!(decoded, vec![NamedTensor::new("w", [2], vec![1.0, 2.0])]);
}

#[test]
fn refuses_oversized_input_before_parsing() {
    let (bytes, specs) = encoded();
    assert_eq!(
        decode(&bytes, &specs, bytes.len() - 1),
        Err(PayloadError::TooLarge { len: bytes.len(), limit: bytes.len() - 1 })
    );
    // Even garbage is reported as too large, not as malformed: nothing was parsed.
    assert!(matches!(decode(&[0xff; 64], &specs, 63), Err(PayloadError::TooLarge { .. })));
}

#[test]
fn refuses_every_truncation() {
    let (bytes, specs) = encoded();
    for cut in 0..bytes.len() {
        let result = decode(&bytes[..cut], &specs, usize::MAX);
        assert!(result.is_err(), "accepted a payload cut at {cut}");
    }
    assert_eq!(decode(&bytes[..7], &specs, usize::MAX), Err(PayloadError::Truncated { len: 7 }));
    assert!(matches!(decode(&bytes[..bytes.len() - 1], &specs, usize::MAX), Err(PayloadError::DataLength { .. })));
}

#[test]
fn refuses_hostile_header_lengths() {
    let (bytes, specs) = encoded();
    let bound = max_header_len(&specs);
    for declared in [u64::MAX, u64::MAX / 2, 1 << 40, (bound + 1) as u64] {
        let mut hostile = bytes.clone();
        hostile[..8].copy_from_slice(&declared.to_le_bytes());
        assert_eq!(decode(&hostile, &specs, usize::MAX), Err(PayloadError::HeaderTooLarge { declared, max: bound }));
    }
    // Within the bound but past the end of the input.
    let mut short = 100u64.to_le_bytes().to_vec();
    short.extend_from_slice(b"{}");
    assert_eq!(
        decode(&short, &specs, usize::MAX),
        Err(PayloadError::HeaderOutOfBounds { declared: 100, available: 2 })
    );
    // Pointing into the data section: the "header" is then not valid JSON.
    let mut longer = bytes.clone();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    longer[..8].copy_from_slice(&(n + 4).to_le_bytes());
    assert!(matches!(decode(&longer, &specs, usize::MAX), Err(PayloadError::MalformedHeader { .. })));
}

#[test]
fn refuses_nan_and_infinity_naming_tensor_and_element() {
    let (bytes, specs) = encoded();
    let offset = data_offset(&bytes, "fc.weight");
    let mut nan = bytes.clone();
    nan[offset + 4 * 4..offset + 5 * 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = decode(&nan, &specs, usize::MAX).unwrap_err();
    assert!(matches!(err, PayloadError::NonFinite { ref name, index: 4, .. } if name == "fc.weight"), "{err:?}");
    assert_eq!(err.to_string(), "tensor \"fc.weight\" has non-finite value NaN at element 4");

    let offset = data_offset(&bytes, "conv.bias");
    let mut inf = bytes;
    inf[offset..offset + 4].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
    assert!(matches!(
        decode(&inf, &specs, usize::MAX),
        Err(PayloadError::NonFinite { ref name, index: 0, value }) if name == "conv.bias" && value == f32::NEG_INFINITY
    ));
}

#[test]
fn refuses_a_wrong_shape_naming_the_tensor() {
    let (bytes, mut specs) = encoded();
    specs[2].shape = vec![2, 3];
    assert_eq!(
        decode(&bytes, &specs, usize::MAX),
        Err(PayloadError::WrongShape { name: "fc.weight".into(), expected: vec![2, 3], found: vec![3, 2] })
    );
    specs[2].shape = vec![6];
    assert!(matches!(
        decode(&bytes, &specs, usize::MAX),
        Err(PayloadError::WrongShape { ref name, .. }) if name == "fc.weight"
    ));
}

#[test]
fn refuses_unknown_and_missing_names() {
    let (bytes, mut specs) = encoded();
    let removed = specs.remove(1);
    assert_eq!(decode(&bytes, &specs, usize::MAX), Err(PayloadError::UnknownTensor { name: removed.name.clone() }));
    specs.insert(1, removed);
    specs.push(TensorSpec::new("head.bias", [10]));
    assert_eq!(decode(&bytes, &specs, usize::MAX), Err(PayloadError::MissingTensor { name: "head.bias".into() }));
}

#[test]
fn refuses_a_wrong_dtype() {
    let header = r#"{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#;
    let bytes = raw(header, &[0; 16]);
    assert_eq!(
        decode(&bytes, &[TensorSpec::new("w", [2])], usize::MAX),
        Err(PayloadError::WrongDtype { name: "w".into(), dtype: "F64".into() })
    );
    let header = r#"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#;
    assert!(matches!(
        decode(&raw(header, &[0; 4]), &[TensorSpec::new("w", [2])], usize::MAX),
        Err(PayloadError::WrongDtype { .. })
    ));
}

#[test]
fn refuses_duplicate_names() {
    let header = concat!(
        r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#,
        r#""w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
    );
    let bytes = raw(header, &f32_bytes(&[1.0, 2.0]));
    assert_eq!(
        decode(&bytes, &[TensorSpec::new("w", [1])], usize::MAX),
        Err(PayloadError::DuplicateTensor { name: "w".into() })
    );
    // The reference reader would silently keep one of them when both point at
    // the same bytes; we do not.
    let header = concat!(
        r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#,
        r#""w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
    );
    assert!(safetensors::SafeTensors::deserialize(&raw(header, &f32_bytes(&[1.0]))).is_ok());
    assert!(matches!(
        decode(&raw(header, &f32_bytes(&[1.0])), &[TensorSpec::new("w", [1])], usize::MAX),
        Err(PayloadError::DuplicateTensor { .. })
    ));
}

#[test]
fn refuses_bad_offsets() {
    let specs = [TensorSpec::new("a", [1]), TensorSpec::new("b", [1])];
    let overlap = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    assert!(matches!(
        decode(&raw(overlap, &f32_bytes(&[1.0, 2.0])), &specs, usize::MAX),
        Err(PayloadError::BadOffsets { .. })
    ));
    let gap = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;
    assert_eq!(
        decode(&raw(gap, &[0; 12]), &specs, usize::MAX),
        Err(PayloadError::BadOffsets { name: "b".into(), start: 8, end: 12 })
    );
    let huge = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    assert!(matches!(decode(&raw(huge, &[0; 8]), &specs, usize::MAX), Err(PayloadError::BadOffsets { .. })));
    let short_data = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    assert_eq!(
        decode(&raw(short_data, &[0; 6]), &specs, usize::MAX),
        Err(PayloadError::DataLength { declared: 8, actual: 6 })
    );
    assert_eq!(
        decode(&raw(short_data, &[0; 9]), &specs, usize::MAX),
        Err(PayloadError::DataLength { declared: 8, actual: 9 })
    );
}

#[test]
fn reserved_name_in_header_is_metadata_not_a_tensor() {
    let header = r#"{"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    let decoded = decode(&raw(header, &f32_bytes(&[7.0])), &[TensorSpec::new("w", [1])], usize::MAX).unwrap();
    assert_eq!(decoded[0].values, vec![7.0]);
    // Metadata that is not a string map is refused by the reference reader.
    let header = r#"{"__metadata__":[1,2],"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    assert!(matches!(
        decode(&raw(header, &f32_bytes(&[7.0])), &[TensorSpec::new("w", [1])], usize::MAX),
        Err(PayloadError::Malformed { .. })
    ));
    assert_eq!(RESERVED_TENSOR_NAME, "__metadata__");
    // Deeply nested metadata is refused without exhausting the stack.
    let header = format!(
        r#"{{"__metadata__":{}{},"w":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let specs = [TensorSpec::new("w", [1])];
    let bytes = raw(&header, &f32_bytes(&[7.0]));
    assert!(header.len() > max_header_len(&specs));
    assert!(matches!(decode(&bytes, &specs, usize::MAX), Err(PayloadError::HeaderTooLarge { .. })));
    let header = format!(
        r#"{{"__metadata__":{}{},"w":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#,
        "[".repeat(1_500),
        "]".repeat(1_500)
    );
    let bytes = raw(&header, &f32_bytes(&[7.0]));
    assert!(matches!(decode(&bytes, &specs, usize::MAX), Err(PayloadError::Malformed { .. })));
}

#[test]
fn long_hostile_names_are_shortened_in_errors() {
    let name = "x".repeat(1000);
    let header = format!(r#"{{"{name}":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#);
    let err = decode(&raw(&header, &[0; 4]), &[TensorSpec::new("w".repeat(MAX_TENSOR_NAME_LEN), [1])], usize::MAX)
        .unwrap_err();
    match err {
        PayloadError::UnknownTensor { name } => assert!(name.chars().count() <= 257),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn hash_checks() {
    let payload = UpdatePayload::encode_owned(&model()).unwrap();
    assert_eq!(verify_hash(payload.bytes(), payload.hash()), Ok(()));
    let other = ContentHash::of(b"something else");
    assert_eq!(
        verify_hash(payload.bytes(), &other),
        Err(PayloadError::HashMismatch { expected: other, actual: *payload.hash() })
    );
    let specs = specs(&model());
    assert_eq!(decode_checked(payload.bytes(), payload.hash(), &specs, usize::MAX).unwrap(), model());
    assert!(matches!(
        decode_checked(payload.bytes(), &other, &specs, usize::MAX),
        Err(PayloadError::HashMismatch { .. })
    ));
    assert!(matches!(decode_checked(payload.bytes(), payload.hash(), &specs, 10), Err(PayloadError::TooLarge { .. })));
}

fn arb_tensors() -> impl Strategy<Value = Vec<NamedTensor>> {
    proptest::collection::btree_map("[a-z][a-z0-9._]{0,15}", proptest::collection::vec(1..5usize, 0..4), 1..6)
        .prop_flat_map(|layout| {
            layout
                .into_iter()
                .map(|(name, shape)| {
                    let n = shape.iter().product::<usize>();
                    proptest::collection::vec(any::<f32>().prop_filter("finite", |v| v.is_finite()), n..=n)
                        .prop_map(move |values| NamedTensor::new(name.clone(), shape.clone(), values))
                })
                .collect::<Vec<_>>()
        })
}

/// `bytes` fed to a [`StreamingCheck`] in pieces ending at `cuts` (sorted
/// offsets; out-of-range ones ignored).
fn streamed(bytes: &[u8], specs: &[TensorSpec], limit: usize, cuts: &[usize]) -> Result<StreamSummary, PayloadError> {
    let mut check = StreamingCheck::new(specs.to_vec(), limit);
    let mut start = 0;
    for &cut in cuts.iter().filter(|&&c| c > 0 && c < bytes.len()) {
        if cut > start {
            check.feed(&bytes[start..cut]);
            start = cut;
        }
    }
    check.feed(&bytes[start..]);
    check.finish()
}

/// The streaming check's verdict against `decode_view`'s: both accept or
/// both refuse, and an accepted payload has the same sum of squares.
fn agree(bytes: &[u8], specs: &[TensorSpec], limit: usize, cuts: &[usize]) -> Result<(), TestCaseError> {
    let whole = decode_view(bytes, specs, limit);
    let stream = streamed(bytes, specs, limit, cuts);
    match (&whole, &stream) {
        (Ok(views), Ok(summary)) => {
            let sum: f64 = views.iter().map(TensorBytes::sum_of_squares).sum();
            prop_assert!(
                (sum - summary.sum_of_squares).abs() <= 1e-9 * sum.abs().max(1.0),
                "{} vs {}",
                sum,
                summary.sum_of_squares
            );
            prop_assert_eq!(summary.len, bytes.len());
        }
        (Err(_), Err(_)) => {}
        _ => prop_assert!(false, "decode_view {:?} but streamed {:?}", whole.map(|v| v.len()), stream),
    }
    Ok(())
}

#[test]
fn the_streaming_check_refuses_what_decode_refuses_piece_by_piece() {
    let (bytes, specs) = encoded();
    let every_byte: Vec<usize> = (1..bytes.len()).collect();
    let summary = streamed(&bytes, &specs, bytes.len(), &every_byte).unwrap();
    let expected: f64 = model().iter().flat_map(|t| t.values.clone()).map(|v| f64::from(v).powi(2)).sum();
    assert!((summary.sum_of_squares - expected).abs() < 1e-9);
    // A NaN in the second tensor, split across two pieces: named with its index.
    let mut poisoned = bytes.clone();
    let at = data_offset(&bytes, "conv.bias") + 4;
    poisoned[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    match streamed(&poisoned, &specs, usize::MAX, &[at + 2]) {
        Err(PayloadError::NonFinite { name, index: 1, value }) => assert!(name == "conv.bias" && value.is_nan()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(streamed(&bytes, &specs, 10, &[]), Err(PayloadError::TooLarge { .. })));
    assert!(matches!(streamed(&bytes[..5], &specs, usize::MAX, &[]), Err(PayloadError::Truncated { len: 5 })));
    assert!(matches!(streamed(&bytes[..20], &specs, usize::MAX, &[3]), Err(PayloadError::HeaderOutOfBounds { .. })));
    assert!(matches!(
        streamed(&bytes[..bytes.len() - 1], &specs, usize::MAX, &[]),
        Err(PayloadError::DataLength { .. })
    ));
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 4]);
    assert!(matches!(streamed(&longer, &specs, usize::MAX, &[]), Err(PayloadError::DataLength { .. })));
    let huge = raw(&"x".repeat(10_000), &[]);
    assert!(matches!(streamed(&huge, &specs, usize::MAX, &[9]), Err(PayloadError::HeaderTooLarge { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn streaming_agrees_with_decode_on_valid_payloads(tensors in arb_tensors(), cuts in proptest::collection::vec(0..4096usize, 0..12)) {
        let payload = UpdatePayload::encode_owned(&tensors).unwrap();
        let mut cuts = cuts;
        cuts.sort_unstable();
        agree(payload.bytes(), &specs(&tensors), payload.len(), &cuts)?;
        prop_assert!(streamed(payload.bytes(), &specs(&tensors), payload.len(), &cuts).is_ok());
    }

    #[test]
    fn streaming_agrees_with_decode_on_damaged_payloads(
        tensors in arb_tensors(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
        nan in any::<prop::sample::Index>(),
        cuts in proptest::collection::vec(0..4096usize, 0..12),
    ) {
        let payload = UpdatePayload::encode_owned(&tensors).unwrap();
        let specs = specs(&tensors);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut bytes = payload.bytes().to_vec();
        let i = position.index(bytes.len());
        bytes[i] = byte;
        agree(&bytes, &specs, usize::MAX, &cuts)?;
        let keep = cut.index(bytes.len() + 1);
        agree(&bytes[..keep], &specs, usize::MAX, &cuts)?;
        agree(payload.bytes(), &specs, keep, &cuts)?;
        // A non-finite value anywhere in the data.
        let mut poisoned = payload.bytes().to_vec();
        let data = poisoned.len() - tensors.iter().map(|t| t.values.len() * 4).sum::<usize>();
        let values = (poisoned.len() - data) / 4;
        if values > 0 {
            let at = data + 4 * nan.index(values);
            poisoned[at..at + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
            agree(&poisoned, &specs, usize::MAX, &cuts)?;
            prop_assert!(streamed(&poisoned, &specs, usize::MAX, &cuts).is_err());
        }
    }

    #[test]
    fn encode_then_decode_gives_the_tensors_back(tensors in arb_tensors()) {
        let payload = UpdatePayload::encode_owned(&tensors).unwrap();
        let specs = specs(&tensors);
        let decoded = decode(payload.bytes(), &specs, payload.len()).unwrap();
        // Bitwise equality: -0.0 and subnormals survive.
        prop_assert_eq!(decoded.len(), tensors.len());
        for (got, want) in decoded.iter().zip(&tensors) {
            prop_assert_eq!(&got.name, &want.name);
            prop_assert_eq!(&got.shape, &want.shape);
            let got_bits: Vec<u32> = got.values.iter().map(|v| v.to_bits()).collect();
            let want_bits: Vec<u32> = want.values.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(got_bits, want_bits);
        }
        // The hash is a function of the content alone: same tensors in another
        // order encode to the same bytes.
        let mut reversed = tensors.clone();
        reversed.reverse();
        let again = UpdatePayload::encode_owned(&reversed).unwrap();
        prop_assert_eq!(again.hash(), payload.hash());
        prop_assert_eq!(payload.hash(), &ContentHash::of(payload.bytes()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let specs = specs(&model());
        let _ = decode(&bytes, &specs, 4096);
    }

    #[test]
    fn mutated_payloads_never_panic(position in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let (mut bytes, specs) = encoded();
        let i = position.index(bytes.len());
        bytes[i] = byte;
        let keep = cut.index(bytes.len() + 1);
        let _ = decode(&bytes[..keep], &specs, usize::MAX);
        let _ = decode(&bytes, &specs, usize::MAX);
    }
}

#[test]
fn inspect_lists_the_declared_tensors_in_data_order() {
    let (bytes, _) = encoded();
    let found = inspect(&bytes, 4096).unwrap();
    // The encoder lays data out sorted by name.
    let names: Vec<&str> = found.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["conv.bias", "conv.weight", "fc.weight"]);
    assert_eq!(found[1].shape, vec![2, 1, 2, 2]);
    // What inspect found is what decode_view then accepts.
    assert_eq!(decode_view(&bytes, &found, bytes.len()).unwrap().len(), 3);
}

#[test]
fn inspect_refuses_what_no_model_could_hold() {
    let (bytes, _) = encoded();
    assert!(matches!(inspect(&bytes, 16), Err(PayloadError::HeaderTooLarge { .. })));
    let f64_tensor = raw(r#"{"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#, &[0; 8]);
    assert!(matches!(inspect(&f64_tensor, 4096), Err(PayloadError::WrongDtype { .. })));
    let twice = raw(
        r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        &f32_bytes(&[1.0, 2.0]),
    );
    assert!(matches!(inspect(&twice, 4096), Err(PayloadError::DuplicateTensor { .. })));
    assert!(inspect(&[1, 2, 3], 4096).is_err());
    let mut hostile = u64::MAX.to_le_bytes().to_vec();
    hostile.extend_from_slice(b"{}");
    assert!(inspect(&hostile, 4096).is_err());
}

#[test]
fn block_scans_agree_with_the_value_by_value_definitions() {
    // 2 500 values: two whole scan blocks of 1 024 and a partial one, and a
    // length that is not a multiple of the eight sum lanes.
    let len = 2_500;
    let values: Vec<f32> = (0..len).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).collect();
    let view = TensorBytes { name: "w", shape: &[2_500], data: &f32_bytes(&values) };
    assert_eq!(view.first_non_finite(), None);
    let naive: f64 = values.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    assert!((view.sum_of_squares() - naive).abs() <= 1e-9 * naive, "{} vs {naive}", view.sum_of_squares());

    for (index, bad) in [(0, f32::NAN), (1_023, f32::INFINITY), (1_024, f32::NEG_INFINITY), (2_499, f32::NAN)] {
        let mut poisoned = values.clone();
        poisoned[index] = bad;
        // A second bad value later must not hide the first.
        if index + 7 < len {
            poisoned[index + 7] = f32::NAN;
        }
        let data = f32_bytes(&poisoned);
        let view = TensorBytes { name: "w", shape: &[2_500], data: &data };
        let (found, value) = view.first_non_finite().unwrap();
        assert_eq!(found, index);
        assert_eq!(value.to_bits(), bad.to_bits());
    }
    // The largest finite values are finite.
    let data = f32_bytes(&[f32::MAX, f32::MIN, f32::MIN_POSITIVE, -0.0]);
    assert_eq!(TensorBytes { name: "w", shape: &[4], data: &data }.first_non_finite(), None);
}
