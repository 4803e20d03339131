//! Uncompressed `f32`: the baseline codec, lossless.
//!
//! Byte layout (all little-endian):
//!
//! | offset | size  | field                  |
//! |--------|-------|------------------------|
//! | 0      | 1     | tag `0x10`             |
//! | 1      | 4     | element count `n`, u32 |
//! | 5      | 4·n   | values, IEEE binary32  |
//!
//! Error bound: none; decoding returns the encoded values bit for bit.

use super::wire::{self, TAG_F32};
use crate::error::Result;

/// Encodes `values` losslessly.
///
/// Fails with [`crate::AggregationError::InvalidParameter`] on a NaN or ±Inf
/// (named by index) or more than `u32::MAX` values.
pub fn encode(values: &[f32]) -> Result<Vec<u8>> {
    if let Some(i) = wire::par_position(values, |v| !v.is_finite()) {
        return Err(wire::bad_values(format!("non-finite value {} at index {i}", values[i])));
    }
    let mut out = wire::start(TAG_F32, values.len(), 4 * values.len())?;
    out.resize(wire::HEADER_LEN + 4 * values.len(), 0);
    wire::par_encode(&mut out[wire::HEADER_LEN..], values, 4, |b, v| {
        for (b, x) in b.chunks_exact_mut(4).zip(v) {
            b.copy_from_slice(&x.to_le_bytes());
        }
    });
    Ok(out)
}

/// Decodes untrusted `bytes` produced by [`encode`].
///
/// Fails with [`crate::AggregationError::Malformed`] on a wrong tag, more
/// than `max_elements` values, a body whose length does not match the count
/// (truncated or trailing bytes), or a NaN or ±Inf, which [`encode`] never
/// writes. Nothing is allocated before the lengths have been checked.
pub fn decode(bytes: &[u8], max_elements: usize) -> Result<Vec<f32>> {
    let (n, body) = wire::open(bytes, TAG_F32, max_elements)?;
    wire::expect_body(body, n, 4, 0)?;
    let mut out = vec![0.0f32; n];
    let bad = wire::par_decode(&mut out, body, 4, |b| {
        let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        v.is_finite().then_some(v)
    });
    match bad {
        Some(i) => Err(wire::malformed(format!("non-finite f32 at index {i}"))),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AggregationError;

    #[test]
    fn round_trip_by_hand() {
        let bytes = encode(&[1.0, -2.5]).unwrap();
        // 1.0 = 0x3f800000, −2.5 = 0xc0200000, little-endian.
        assert_eq!(bytes, [0x10, 2, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]);
        assert_eq!(decode(&bytes, 2).unwrap(), [1.0, -2.5]);
        assert_eq!(decode(&encode(&[]).unwrap(), 0).unwrap(), Vec::<f32>::new());
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(encode(&[0.0, f32::NAN]).unwrap_err().to_string().contains("index 1"));
        let bytes = encode(&[1.0, -2.5]).unwrap();
        for cut in 0..bytes.len() {
            assert!(matches!(decode(&bytes[..cut], 2), Err(AggregationError::Malformed(_))), "{cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long, 2).is_err());
        assert!(decode(&bytes, 1).is_err());
        let mut inf = bytes.clone();
        inf[5..9].copy_from_slice(&f32::INFINITY.to_le_bytes());
        assert!(decode(&inf, 2).unwrap_err().to_string().contains("index 0"));
        // A header claiming 2³² − 1 elements is refused before any allocation.
        assert!(decode(&[0x10, 0xff, 0xff, 0xff, 0xff], usize::MAX).is_err());
    }

    #[test]
    fn large_buffers_round_trip_across_chunks() {
        let v: Vec<f32> = (0..wire::PAR_CHUNK * 2 + 3).map(|i| i as f32 * 0.25 - 7.0).collect();
        assert_eq!(decode(&encode(&v).unwrap(), v.len()).unwrap(), v);
    }
}
