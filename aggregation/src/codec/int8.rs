//! 8-bit linear quantization with one scale per tensor: a quarter of the
//! bytes of `f32`.
//!
//! With `scale` the smallest `f32` with `127·scale ≥ max|x|` (that is,
//! `max|x|/127` rounded up), each value is sent as
//! `q = round(x/scale) ∈ [−127, 127]` (half away from zero) and decoded as
//! `x̂ = q·scale`. The symmetric range leaves out −128 so that `0` and `±max`
//! are both represented exactly.
//!
//! Byte layout (all little-endian):
//!
//! | offset | size | field                                 |
//! |--------|------|---------------------------------------|
//! | 0      | 1    | tag `0x12`                            |
//! | 1      | 4    | element count `n`, u32                |
//! | 5      | 4    | `scale`, IEEE binary32, `≥ 0`         |
//! | 9      | n    | `q`, one `i8` each, in `[−127, 127]`  |
//!
//! Error bound: for every element, `|x̂ − x| ≤ scale·(1/2 + 2⁻¹⁶)`: half a
//! quantization step, plus the one rounding of `q·scale` to `f32` (at most
//! `127·scale·2⁻²⁴ < scale·2⁻¹⁷`). An all-zero tensor has `scale = 0` and
//! decodes exactly.

use rayon::prelude::*;

use super::wire::{self, TAG_INT8};
use crate::error::Result;

/// Bytes between the header and the quantized values: the scale.
const SCALE_LEN: usize = 4;

/// The scale [`encode`] uses for `values`: the smallest `f32` `s` with
/// `127·s ≥ max|x|` (0 for an empty or all-zero tensor).
///
/// Rounding the scale up rather than to nearest keeps every `|x|/s ≤ 127`,
/// so no value is clamped and the error bound holds for the largest ones.
/// Fails with [`crate::AggregationError::InvalidParameter`] on a NaN or
/// ±Inf, or when `max|x|` is so close to `f32::MAX` that `127·s` would
/// overflow.
pub fn scale(values: &[f32]) -> Result<f32> {
    if let Some(i) = wire::par_position(values, |v| !v.is_finite()) {
        return Err(wire::bad_values(format!("non-finite value {} at index {i}", values[i])));
    }
    let max = values.par_iter().map(|v| v.abs()).reduce(|| 0.0, f32::max);
    if max == 0.0 {
        return Ok(0.0);
    }
    let mut s = max / 127.0;
    // `127·s` is exact in f64 (24 + 7 significant bits); if the f32 division
    // rounded down, step up one ulp. This also lifts a scale that underflowed
    // to 0 for a tiny max to the smallest subnormal.
    if f64::from(s) * 127.0 < f64::from(max) {
        s = s.next_up();
    }
    if f64::from(s) * 127.0 > f64::from(f32::MAX) {
        return Err(wire::bad_values(format!("max |x| = {max} is too close to f32::MAX for int8 decoding")));
    }
    Ok(s)
}

/// Quantizes `values` with the per-tensor [`scale`].
///
/// Fails with [`crate::AggregationError::InvalidParameter`] where [`scale`]
/// does, or when there are more than `u32::MAX` values.
pub fn encode(values: &[f32]) -> Result<Vec<u8>> {
    let s = scale(values)?;
    let mut out = wire::start(TAG_INT8, values.len(), SCALE_LEN + values.len())?;
    out.extend_from_slice(&s.to_le_bytes());
    out.resize(wire::HEADER_LEN + SCALE_LEN + values.len(), 0);
    if s > 0.0 {
        let inv = 1.0 / f64::from(s);
        wire::par_encode(&mut out[wire::HEADER_LEN + SCALE_LEN..], values, 1, |b, v| {
            for (b, &x) in b.iter_mut().zip(v) {
                // |x·inv| ≤ 127 up to f64 rounding, so the cast never saturates
                // past ±127 and the rounded value is in range.
                let q = (f64::from(x) * inv).round() as i8;
                *b = q.to_le_bytes()[0];
            }
        });
    }
    Ok(out)
}

/// Decodes untrusted `bytes` produced by [`encode`].
///
/// Fails with [`crate::AggregationError::Malformed`] on a wrong tag, more
/// than `max_elements` values, a body whose length does not match the count,
/// a scale that is negative, non-finite or so large that `127·scale`
/// overflows, a `q` of −128, or a non-zero `q` with a zero scale; [`encode`]
/// writes none of these. Nothing is allocated before the lengths have been
/// checked.
pub fn decode(bytes: &[u8], max_elements: usize) -> Result<Vec<f32>> {
    let (n, body) = wire::open(bytes, TAG_INT8, max_elements)?;
    wire::expect_body(body, n, 1, SCALE_LEN)?;
    let mut r = wire::Reader::new(body);
    let s = r.f32()?;
    // The sign bit test also refuses −0.
    if !(s.is_finite() && s.is_sign_positive() && f64::from(s) * 127.0 <= f64::from(f32::MAX)) {
        return Err(wire::malformed(format!("int8 scale {s} is not in [0, f32::MAX/127]")));
    }
    let q = r.rest();
    let mut out = vec![0.0f32; n];
    let bad = wire::par_decode(&mut out, q, 1, |b| {
        let q = i8::from_le_bytes([b[0]]);
        (q != i8::MIN && (s > 0.0 || q == 0)).then(|| f32::from(q) * s)
    });
    match bad {
        Some(i) => Err(wire::malformed(format!(
            "int8 value {} at index {i} is out of range for scale {s}",
            i8::from_le_bytes([q[i]])
        ))),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AggregationError;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;

    fn scale_of(bytes: &[u8]) -> f32 {
        f32::from_le_bytes(bytes[5..9].try_into().unwrap())
    }

    /// The bound stated in the module documentation.
    fn bound(s: f32) -> f64 {
        f64::from(s) * (0.5 + 2f64.powi(-16))
    }

    #[test]
    fn hand_computed_quantization() {
        // max|x| = 15.875 = 127/8, so scale = 0.125 exactly.
        //   15.875 / 0.125 = 127    → 15.875 (exact)
        //   0.0625 / 0.125 = 0.5    → rounds away from zero to 1 → 0.125
        //                             (error 0.0625 = scale/2, the bound)
        //   −1.3   / 0.125 = −10.4  → −10 → −1.25 (error 0.05)
        //   −15.875                 → −127 → −15.875
        let x = [15.875, 0.0625, -1.3, -15.875];
        let bytes = encode(&x).unwrap();
        assert_eq!(bytes, [0x12, 4, 0, 0, 0, 0, 0, 0, 0x3e, 127, 1, 0xf6, 0x81]);
        let y = decode(&bytes, 4).unwrap();
        assert_eq!(y, [15.875, 0.125, -1.25, -15.875]);
        for (a, b) in x.iter().zip(&y) {
            assert!(f64::from((a - b).abs()) <= bound(0.125));
        }
    }

    #[test]
    fn all_zero_and_empty_tensors() {
        let bytes = encode(&[0.0, -0.0, 0.0]).unwrap();
        assert_eq!(bytes, [0x12, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode(&bytes, 3).unwrap(), [0.0; 3]);
        assert_eq!(decode(&encode(&[]).unwrap(), 0).unwrap(), Vec::<f32>::new());
    }

    #[test]
    fn scale_rounds_up_and_survives_extremes() {
        // 1/127 is not a binary fraction; whichever way f32 division rounds,
        // the scale must satisfy 127·s ≥ 1 so that 1.0 encodes as q = 127.
        let s = scale(&[1.0, -0.5]).unwrap();
        assert!(f64::from(s) * 127.0 >= 1.0 && f64::from(s.next_down()) * 127.0 < 1.0);
        let bytes = encode(&[1.0]).unwrap();
        assert_eq!(bytes[9], 127);
        // A tiny subnormal max: max/127 underflows to 0, the scale becomes
        // the smallest subnormal and the value still decodes within bound.
        let tiny = f32::from_bits(3);
        assert_eq!(scale(&[tiny]).unwrap(), f32::from_bits(1));
        assert_eq!(decode(&encode(&[tiny]).unwrap(), 1).unwrap(), [f32::from_bits(1) * 3.0]);
        // Near f32::MAX: large but fine, then too large.
        let big = f32::MAX / 2.0;
        let y = decode(&encode(&[big, -big]).unwrap(), 2).unwrap();
        assert!(y.iter().all(|v| v.is_finite()));
        assert!(encode(&[f32::MAX]).is_err());
        assert!(encode(&[1.0, f32::NAN]).unwrap_err().to_string().contains("index 1"));
    }

    #[test]
    fn bad_bytes_are_refused() {
        let bytes = encode(&[15.875, 0.0625, -1.3]).unwrap();
        for cut in 0..bytes.len() {
            assert!(matches!(decode(&bytes[..cut], 3), Err(AggregationError::Malformed(_))), "{cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long, 4).is_err());
        assert!(decode(&bytes, 2).is_err());
        let with_scale = |s: f32| {
            let mut b = bytes.clone();
            b[5..9].copy_from_slice(&s.to_le_bytes());
            b
        };
        for s in [-1.0, -0.0, f32::NAN, f32::INFINITY, f32::MAX / 100.0] {
            assert!(decode(&with_scale(s), 3).unwrap_err().to_string().contains("scale"), "{s}");
        }
        // Zero scale with a non-zero q is inconsistent.
        assert!(decode(&with_scale(0.0), 3).unwrap_err().to_string().contains("index 0"));
        let mut b = bytes.clone();
        b[10] = 0x80; // −128
        assert!(decode(&b, 3).unwrap_err().to_string().contains("-128 at index 1"));
    }

    /// Tensors of one typical magnitude, or of wildly mixed ones.
    fn tensor() -> impl Strategy<Value = Vec<f32>> {
        prop_oneof![
            (-100i32..100, prop::collection::vec(-1.0f32..=1.0, 0..64))
                .prop_map(|(e, v)| v.into_iter().map(|x| x * 2f32.powi(e)).collect()),
            prop::collection::vec(
                (any::<bool>(), 0u32..=250, 0u32..(1 << 23))
                    .prop_map(|(neg, exp, man)| f32::from_bits(u32::from(neg) << 31 | exp << 23 | man)),
                0..64
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: RngSeed::Fixed(0x1e8),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn error_stays_within_the_stated_bound(x in tensor()) {
            let bytes = encode(&x).unwrap();
            let s = scale_of(&bytes);
            let max = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            // The scale is max/127 rounded up to an f32.
            prop_assert!(f64::from(s) * 127.0 >= f64::from(max));
            prop_assert!(s == 0.0 || f64::from(s.next_down()) * 127.0 < f64::from(max));
            let y = decode(&bytes, x.len()).unwrap();
            for (&a, &b) in x.iter().zip(&y) {
                prop_assert!((f64::from(a) - f64::from(b)).abs() <= bound(s), "{} → {} (scale {})", a, b, s);
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in wire::tests::arbitrary_encoding(TAG_INT8)) {
            if let Err(e) = decode(&bytes, 16) {
                prop_assert!(matches!(e, AggregationError::Malformed(_)));
            }
        }
    }
}
