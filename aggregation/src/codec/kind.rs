//! One name for every codec, so that a round's configuration can say which
//! encoding its trainers must use.

use super::wire::{self, TAG_F16, TAG_F32, TAG_INT8, TAG_TOPK};
use super::{fp16, int8, raw, topk};
use crate::error::Result;

/// An update codec, with its parameters.
///
/// Each variant's module documents its byte layout and error bound:
/// [`raw`] (lossless), [`fp16`] (relative error ≤ 2⁻¹¹ in the normal range),
/// [`int8`] (error ≤ scale·(1/2 + 2⁻¹⁶)), [`topk`] (sends `k` entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Uncompressed `f32`, 4 bytes per value; see [`raw`].
    F32,
    /// IEEE binary16, 2 bytes per value; see [`fp16`].
    F16,
    /// `i8` with one `f32` scale per tensor, 1 byte per value; see [`int8`].
    Int8,
    /// The `k` largest-magnitude entries as (index, value) pairs, 8 bytes
    /// per entry; see [`topk`]. Trainers should produce these with
    /// [`topk::ErrorFeedback`] rather than [`Codec::encode`], which keeps no
    /// memory of what it drops.
    TopK {
        /// Entries sent per update (at most).
        k: usize,
    },
}

impl Codec {
    /// The codec's name, as used in configuration and logs.
    pub fn name(&self) -> &'static str {
        wire::tag_name(self.tag())
    }

    fn tag(&self) -> u8 {
        match self {
            Self::F32 => TAG_F32,
            Self::F16 => TAG_F16,
            Self::Int8 => TAG_INT8,
            Self::TopK { .. } => TAG_TOPK,
        }
    }

    /// Encodes `values` (stateless: [`Codec::TopK`] simply drops all but the
    /// `k` largest).
    ///
    /// Fails with [`crate::AggregationError::InvalidParameter`] where the
    /// codec's own `encode` does (non-finite values, values outside the
    /// codec's range, `k` above the length).
    pub fn encode(&self, values: &[f32]) -> Result<Vec<u8>> {
        match *self {
            Self::F32 => raw::encode(values),
            Self::F16 => fp16::encode(values),
            Self::Int8 => int8::encode(values),
            Self::TopK { k } => Ok(topk::top_k(values, k)?.encode()),
        }
    }

    /// Decodes untrusted `bytes` that must have been encoded with this codec,
    /// into a dense vector of at most `max_elements` values.
    ///
    /// Fails with [`crate::AggregationError::Malformed`] when the bytes are
    /// another codec's, when a top-k update carries more than `k` entries, or
    /// wherever the codec's own decoder does.
    pub fn decode(&self, bytes: &[u8], max_elements: usize) -> Result<Vec<f32>> {
        match *self {
            Self::F32 => raw::decode(bytes, max_elements),
            Self::F16 => fp16::decode(bytes, max_elements),
            Self::Int8 => int8::decode(bytes, max_elements),
            Self::TopK { k } => {
                let sparse = topk::SparseUpdate::decode(bytes, max_elements)?;
                if sparse.len() > k {
                    return Err(wire::malformed(format!("{} top-k entries, more than k = {k}", sparse.len())));
                }
                Ok(sparse.to_dense())
            }
        }
    }

    /// The codec that encoded `bytes`, read from the header (for top-k, `k`
    /// is the number of entries these bytes carry). Only the header is
    /// checked; [`Codec::decode`] checks the rest.
    pub fn detect(bytes: &[u8]) -> Result<Self> {
        let mut r = wire::Reader::new(bytes);
        let tag = r.u8()?;
        r.u32()?;
        match tag {
            TAG_F32 => Ok(Self::F32),
            TAG_F16 => Ok(Self::F16),
            TAG_INT8 => Ok(Self::Int8),
            TAG_TOPK => Ok(Self::TopK { k: r.u32()? as usize }),
            _ => Err(wire::malformed(format!("unknown codec tag {tag:#04x}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AggregationError;

    #[test]
    fn every_codec_round_trips_within_its_bound() {
        let x = [0.5f32, -1.25, 3.0, 0.0, 100.0, -0.001];
        for codec in [Codec::F32, Codec::F16, Codec::Int8, Codec::TopK { k: 2 }, Codec::TopK { k: 6 }] {
            let bytes = codec.encode(&x).unwrap();
            assert_eq!(Codec::detect(&bytes).unwrap(), codec);
            let y = codec.decode(&bytes, x.len()).unwrap();
            assert_eq!(y.len(), x.len());
            let tol = |v: f32| match codec {
                Codec::F32 | Codec::TopK { k: 6 } => 0.0,
                Codec::F16 => (2f32.powi(-11) * v.abs()).max(2f32.powi(-25)),
                Codec::Int8 => (100.0 / 127.0) * (0.5 + 2f32.powi(-16)),
                Codec::TopK { .. } => f32::INFINITY,
            };
            for (a, b) in x.iter().zip(&y) {
                assert!((a - b).abs() <= tol(*a), "{}: {a} → {b}", codec.name());
            }
        }
        // Top-2 keeps 100 and 3.
        assert_eq!(
            Codec::TopK { k: 2 }.decode(&Codec::TopK { k: 2 }.encode(&x).unwrap(), 6).unwrap(),
            [0.0, 0.0, 3.0, 0.0, 100.0, 0.0]
        );
    }

    #[test]
    fn bytes_of_another_codec_are_refused() {
        let x = [1.0f32, 2.0, 3.0];
        let f16 = Codec::F16.encode(&x).unwrap();
        assert!(matches!(Codec::Int8.decode(&f16, 3), Err(AggregationError::Malformed(_))));
        let top3 = Codec::TopK { k: 3 }.encode(&x).unwrap();
        assert!(Codec::TopK { k: 2 }.decode(&top3, 3).unwrap_err().to_string().contains("more than k"));
        assert_eq!(Codec::TopK { k: 4 }.decode(&top3, 3).unwrap(), x);
        assert!(Codec::detect(&[0x21, 0, 0, 0, 0]).is_err());
        assert!(Codec::detect(&[0x13, 0, 0, 0, 0]).is_err()); // top-k header without k
        assert!(Codec::detect(&[]).is_err());
        assert_eq!(Codec::Int8.name(), "int8");
        assert!(Codec::TopK { k: 4 }.encode(&x).is_err());
    }
}
