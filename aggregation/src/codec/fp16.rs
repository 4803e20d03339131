//! IEEE binary16 (`f16`): half the bytes of `f32`, for updates whose values
//! fit comfortably inside ±65504.
//!
//! Byte layout (all little-endian):
//!
//! | offset | size  | field                       |
//! |--------|-------|-----------------------------|
//! | 0      | 1     | tag `0x11`                  |
//! | 1      | 4     | element count `n`, u32      |
//! | 5      | 2·n   | values, IEEE binary16 bits  |
//!
//! Error bound: conversion rounds to nearest, ties to even, so for every
//! encoded value `x` and its decoding `x̂`
//!
//! - `|x̂ − x| ≤ 2⁻¹¹·|x|` when `2⁻¹⁴ ≤ |x| ≤ 65504` (the normal `f16` range:
//!   11 significant bits, half an ulp of relative error), and
//! - `|x̂ − x| ≤ 2⁻²⁵` when `|x| < 2⁻¹⁴` (subnormals are spaced `2⁻²⁴` apart;
//!   values below `2⁻²⁵` flush to zero).
//!
//! Values beyond ±65504 (`f16::MAX`) are refused at encode time rather than
//! turned into ±Inf, and so is NaN or ±Inf: a trainer whose update does not
//! fit should rescale it or fall back to [`super::raw`].

use half::{f16, slice::HalfFloatSliceExt};

use super::wire::{self, TAG_F16};
use crate::error::Result;

/// The largest magnitude the codec accepts, `f16::MAX`.
pub const MAX: f32 = 65504.0;

/// Encodes `values` as binary16, rounding to nearest.
///
/// Fails with [`crate::AggregationError::InvalidParameter`], naming the
/// first offending index, on a NaN or ±Inf or a value with `|x| > 65504`;
/// and when there are more than `u32::MAX` values.
pub fn encode(values: &[f32]) -> Result<Vec<u8>> {
    if let Some(i) = wire::par_position(values, |v| !v.is_finite() || v.abs() > MAX) {
        let v = values[i];
        let why = if v.is_finite() { "outside the f16 range ±65504" } else { "not finite" };
        return Err(wire::bad_values(format!("value {v} at index {i} is {why}")));
    }
    let mut out = wire::start(TAG_F16, values.len(), 2 * values.len())?;
    out.resize(wire::HEADER_LEN + 2 * values.len(), 0);
    wire::par_encode(&mut out[wire::HEADER_LEN..], values, 2, |b, v| {
        // Through a small buffer, so that half converts whole slices with
        // F16C instructions where the CPU has them.
        let mut buf = [f16::ZERO; 256];
        for (b, v) in b.chunks_mut(2 * buf.len()).zip(v.chunks(buf.len())) {
            let h = &mut buf[..v.len()];
            h.convert_from_f32_slice(v);
            for (b, h) in b.chunks_exact_mut(2).zip(h.iter()) {
                b.copy_from_slice(&h.to_bits().to_le_bytes());
            }
        }
    });
    Ok(out)
}

/// Decodes untrusted `bytes` produced by [`encode`].
///
/// Fails with [`crate::AggregationError::Malformed`] on a wrong tag, more
/// than `max_elements` values, a body whose length does not match the count,
/// or an Inf or NaN bit pattern, which [`encode`] never writes. Nothing is
/// allocated before the lengths have been checked.
pub fn decode(bytes: &[u8], max_elements: usize) -> Result<Vec<f32>> {
    let (n, body) = wire::open(bytes, TAG_F16, max_elements)?;
    wire::expect_body(body, n, 2, 0)?;
    let mut out = vec![0.0f32; n];
    let bad = wire::par_decode(&mut out, body, 2, |b| {
        let bits = u16::from_le_bytes([b[0], b[1]]);
        // All exponent bits set: ±Inf or NaN.
        (bits & 0x7c00 != 0x7c00).then(|| f16::from_bits(bits).to_f32())
    });
    match bad {
        Some(i) => Err(wire::malformed(format!("non-finite f16 at index {i}"))),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AggregationError;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;

    /// The bound stated in the module documentation.
    fn within_bound(x: f32, y: f32) -> bool {
        let err = (f64::from(y) - f64::from(x)).abs();
        if x.abs() >= 2f32.powi(-14) { err <= 2f64.powi(-11) * f64::from(x.abs()) } else { err <= 2f64.powi(-25) }
    }

    fn round_trip(v: &[f32]) -> Vec<f32> {
        decode(&encode(v).unwrap(), v.len()).unwrap()
    }

    #[test]
    fn hand_computed_roundings() {
        let cases: [(f32, f32); 8] = [
            (1.0, 1.0),
            (-65504.0, -65504.0),
            // 1/3 = 0.0101010101…₂; 11 significant bits round down to
            // 0x3555 = 0.333251953125, an error of 8.1e-5 ≤ 2⁻¹¹/3 = 1.6e-4.
            (1.0 / 3.0, 0.333_251_95),
            // 1 + 2⁻¹¹ is halfway between 1 and 1 + 2⁻¹⁰: ties to even → 1,
            // exactly at the relative bound.
            (1.0 + 2f32.powi(-11), 1.0),
            // The smallest subnormal, 2⁻²⁴, is exact.
            (2f32.powi(-24), 2f32.powi(-24)),
            // 2⁻²⁵ is halfway between 0 and 2⁻²⁴: ties to even → 0, exactly
            // at the absolute bound.
            (2f32.powi(-25), 0.0),
            // 3·2⁻²⁶ = 0.75·2⁻²⁴ rounds up to 2⁻²⁴ (error 2⁻²⁶).
            (3.0 * 2f32.powi(-26), 2f32.powi(-24)),
            (-0.0, -0.0),
        ];
        let (xs, want): (Vec<f32>, Vec<f32>) = cases.iter().copied().unzip();
        let got = round_trip(&xs);
        assert_eq!(got, want);
        assert!(xs.iter().zip(&got).all(|(&x, &y)| within_bound(x, y)));
        let bytes = encode(&[1.0, -2.0]).unwrap();
        assert_eq!(bytes, [0x11, 2, 0, 0, 0, 0x00, 0x3c, 0x00, 0xc0]);
    }

    #[test]
    fn out_of_range_and_non_finite_values_are_refused() {
        for bad in [65504.5, -65520.0, 1e9, f32::INFINITY, f32::NAN] {
            let err = encode(&[0.0, bad]).unwrap_err();
            assert!(matches!(err, AggregationError::InvalidParameter { .. }), "{bad}");
            assert!(err.to_string().contains("index 1"), "{err}");
        }
    }

    #[test]
    fn bad_bytes_are_refused() {
        let bytes = encode(&[1.0, 2.0, 3.0]).unwrap();
        for cut in 0..bytes.len() {
            assert!(matches!(decode(&bytes[..cut], 3), Err(AggregationError::Malformed(_))));
        }
        let mut long = bytes.clone();
        long.extend_from_slice(&[0, 0]);
        assert!(decode(&long, 4).is_err());
        assert!(decode(&bytes, 2).is_err());
        for inf_or_nan in [0x7c00u16, 0xfc00, 0x7e00, 0x7c01] {
            let mut b = bytes.clone();
            b[7..9].copy_from_slice(&inf_or_nan.to_le_bytes());
            assert!(decode(&b, 3).unwrap_err().to_string().contains("index 1"));
        }
        assert!(decode(&super::super::raw::encode(&[1.0]).unwrap(), 1).is_err());
    }

    /// Finite `f32` values spread over every binade of the `f16` range and
    /// below it, both signs, plus subnormal `f32` inputs.
    fn value() -> impl Strategy<Value = f32> {
        (any::<bool>(), prop_oneof![1 => Just(0u32), 15 => 80u32..=142], 0u32..(1 << 23))
            .prop_map(|(neg, exp, man)| f32::from_bits(u32::from(neg) << 31 | exp << 23 | man))
            .prop_filter("within ±65504", |x| x.abs() <= MAX)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: RngSeed::Fixed(0xf16),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn error_stays_within_the_stated_bound(v in prop::collection::vec(value(), 0..64)) {
            let got = round_trip(&v);
            prop_assert_eq!(got.len(), v.len());
            for (&x, &y) in v.iter().zip(&got) {
                prop_assert!(within_bound(x, y), "{} → {}", x, y);
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in wire::tests::arbitrary_encoding(TAG_F16)) {
            if let Err(e) = decode(&bytes, 16) {
                prop_assert!(matches!(e, AggregationError::Malformed(_)));
            }
        }
    }
}
