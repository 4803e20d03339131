//! Update payload decoding on untrusted bytes.
//!
//! Even first byte: the rest is decoded as is against a fixed model.
//! Odd first byte: the rest fills a genuine payload for that model, one byte
//! is XOR-ed, and whatever the decoder accepts must still be exactly the
//! model's tensors with finite values.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_protocol::payload::{self, PayloadError};
use starling_protocol::{NamedTensor, TensorSpec, UpdatePayload};

const LIMIT: usize = 1 << 20;

fn specs() -> Vec<TensorSpec> {
    vec![
        TensorSpec::new("conv.weight", [2, 1, 3, 3]),
        TensorSpec::new("conv.bias", [2]),
        TensorSpec::new("fc.weight", [4, 2]),
        TensorSpec::new("temperature", []),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let specs = specs();
    if mode.is_multiple_of(2) {
        let _ = check(rest, &specs);
    } else {
        tampered(rest, &specs);
    }
});

/// Decodes and, on success, checks everything the decoder promises.
fn check(bytes: &[u8], specs: &[TensorSpec]) -> Result<Vec<NamedTensor>, PayloadError> {
    let views = payload::decode_view(bytes, specs, LIMIT);
    let decoded = payload::decode(bytes, specs, LIMIT);
    assert_eq!(views.is_ok(), decoded.is_ok());
    if let Ok(tensors) = &decoded {
        assert_eq!(tensors.len(), specs.len());
        for (tensor, spec) in tensors.iter().zip(specs) {
            assert_eq!(tensor.name, spec.name);
            assert_eq!(tensor.shape, spec.shape);
            assert_eq!(Some(tensor.values.len()), spec.element_count());
            assert!(tensor.values.iter().all(|v| v.is_finite()));
        }
    }
    decoded
}

fn tampered(data: &[u8], specs: &[TensorSpec]) {
    if data.len() < 3 {
        return;
    }
    let position = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let xor = data[2];
    let mut source = data[3..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let tensors: Vec<NamedTensor> = specs
        .iter()
        .map(|spec| {
            let n = spec.element_count().unwrap_or(0);
            let values = (0..n).map(|_| source.next().filter(|v| v.is_finite()).unwrap_or(0.5)).collect();
            NamedTensor::new(spec.name.clone(), spec.shape.clone(), values)
        })
        .collect();
    let encoded = UpdatePayload::encode_owned(&tensors).expect("finite tensors of the right shape encode");
    let decoded = check(encoded.bytes(), specs).expect("a genuine payload decodes");
    for (got, want) in decoded.iter().zip(&tensors) {
        let same = got.values.iter().zip(&want.values).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "values of {} changed in a round trip", want.name);
    }

    let mut bytes = encoded.into_bytes();
    let index = position % bytes.len();
    bytes[index] ^= xor;
    let _ = check(&bytes, specs);
    let _ = check(&bytes[..index], specs);
}
