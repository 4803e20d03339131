//! Top-k sparsification with error feedback, for trainers on slow links.
//!
//! A trainer sends only the `k` largest-magnitude coordinates of its update
//! and keeps what it did not send in a residual that it adds to its next
//! update, so nothing is lost, only delayed: Stich et al. 2018, "Sparsified
//! SGD with Memory" (Algorithm 1, `top_k` compressor), and Lin et al. 2018,
//! "Deep Gradient Compression" (local gradient accumulation). Per round,
//!
//! ```text
//! v        = u + residual
//! sent     = top_k(v)          (the k largest |vᵢ|, ties to the lower index)
//! residual = v − sent
//! ```
//!
//! Error bounds, both checked by tests:
//!
//! - one round: `‖v − top_k(v)‖² ≤ (1 − k/d)·‖v‖²` (the `d − k` smallest
//!   squares average no more than all `d`: top-k is what Stich et al. 2018
//!   call a k-contraction);
//! - over rounds: `Σₜ sentₜ + residual_T = Σₜ uₜ`, exactly up to the `f32`
//!   rounding of each `u + residual` addition.
//!
//! Byte layout (all little-endian):
//!
//! | offset  | size | field                                        |
//! |---------|------|----------------------------------------------|
//! | 0       | 1    | tag `0x13`                                   |
//! | 1       | 4    | dense length `d`, u32                        |
//! | 5       | 4    | entries sent `k ≤ d`, u32                    |
//! | 9       | 4·k  | indices, u32, strictly increasing, `< d`     |
//! | 9 + 4·k | 4·k  | values, IEEE binary32, finite                |

use rayon::prelude::*;

use super::wire::{self, TAG_TOPK};
use crate::error::{AggregationError, Result};

/// A sparse update: `d` coordinates of which only `indices` are non-zero.
///
/// Every constructor checks that indices are strictly increasing and below
/// `d`, that there are as many values as indices, that every value is
/// finite, and that `d` fits the wire format's `u32`.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseUpdate {
    dim: usize,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl SparseUpdate {
    /// A sparse update of dense length `dim` holding `values` at `indices`.
    ///
    /// Fails with [`AggregationError::InvalidParameter`] when the invariants
    /// above do not hold.
    pub fn new(dim: usize, indices: Vec<u32>, values: Vec<f32>) -> Result<Self> {
        Self::check(dim, &indices, &values)
            .map_err(|reason| AggregationError::InvalidParameter { name: "sparse update", reason })?;
        Ok(Self { dim, indices, values })
    }

    fn check(dim: usize, indices: &[u32], values: &[f32]) -> std::result::Result<(), String> {
        if u32::try_from(dim).is_err() {
            return Err(format!("dense length {dim} exceeds u32::MAX"));
        }
        if indices.len() != values.len() {
            return Err(format!("{} indices but {} values", indices.len(), values.len()));
        }
        if let Some(i) = indices.windows(2).position(|w| w[0] >= w[1]) {
            return Err(format!("indices not strictly increasing at position {}", i + 1));
        }
        if let Some(&last) = indices.last()
            && last as usize >= dim
        {
            return Err(format!("index {last} out of range for length {dim}"));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(format!("non-finite value at position {i}"));
        }
        Ok(())
    }

    /// The dense length `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The non-zero coordinates, ascending.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// The values at [`SparseUpdate::indices`].
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Number of entries sent (`k`).
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether no entry is sent.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The dense vector, zero outside [`SparseUpdate::indices`].
    pub fn to_dense(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.dim];
        for (&i, &v) in self.indices.iter().zip(&self.values) {
            out[i as usize] = v;
        }
        out
    }

    /// `dense[i] += factor · value` for every entry, without densifying.
    ///
    /// Fails with [`AggregationError::InvalidParameter`] when `dense` is not
    /// [`SparseUpdate::dim`] long.
    pub fn scatter_add(&self, dense: &mut [f32], factor: f32) -> Result<()> {
        if dense.len() != self.dim {
            return Err(AggregationError::InvalidParameter {
                name: "dense",
                reason: format!("has {} values, the sparse update {}", dense.len(), self.dim),
            });
        }
        for (&i, &v) in self.indices.iter().zip(&self.values) {
            dense[i as usize] += factor * v;
        }
        Ok(())
    }

    /// The byte encoding described in the module documentation.
    pub fn encode(&self) -> Vec<u8> {
        let k = self.indices.len();
        let mut out = wire::start(TAG_TOPK, self.dim, 4 + 8 * k).expect("the constructors keep dim within u32");
        // k ≤ d ≤ u32::MAX, as indices are distinct and below d.
        out.extend_from_slice(&(k as u32).to_le_bytes());
        out.extend(self.indices.iter().flat_map(|i| i.to_le_bytes()));
        out.extend(self.values.iter().flat_map(|v| v.to_le_bytes()));
        out
    }

    /// Decodes untrusted `bytes` produced by [`SparseUpdate::encode`].
    ///
    /// Fails with [`AggregationError::Malformed`] on a wrong tag, a dense
    /// length above `max_elements`, more entries than the dense length, a
    /// body whose length does not match the entry count, indices that are
    /// not strictly increasing or not below the dense length, or a NaN or
    /// ±Inf value. Nothing is allocated before the lengths have been checked.
    pub fn decode(bytes: &[u8], max_elements: usize) -> Result<Self> {
        let (dim, body) = wire::open(bytes, TAG_TOPK, max_elements)?;
        let mut r = wire::Reader::new(body);
        let k = r.u32()? as usize;
        if k > dim {
            return Err(wire::malformed(format!("{k} entries for a dense length of {dim}")));
        }
        let rest = r.rest();
        wire::expect_body(rest, k, 8, 0)?;
        let (idx, val) = rest.split_at(4 * k);
        let indices: Vec<u32> = idx.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let values: Vec<f32> = val.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Self::check(dim, &indices, &values).map_err(wire::malformed)?;
        Ok(Self { dim, indices, values })
    }
}

/// The `k` largest-magnitude entries of `values`, without memory.
///
/// Prefer [`ErrorFeedback::compress`] for training, which carries what is
/// dropped over to the next round. Fails with
/// [`AggregationError::InvalidParameter`] when `k > values.len()`, on a NaN
/// or ±Inf, or on more than `u32::MAX` values.
pub fn top_k(values: &[f32], k: usize) -> Result<SparseUpdate> {
    check_k(values.len(), k)?;
    if let Some(i) = wire::par_position(values, |v| !v.is_finite()) {
        return Err(wire::bad_values(format!("non-finite value {} at index {i}", values[i])));
    }
    let indices = select(values, k);
    let kept = indices.iter().map(|&i| values[i as usize]).collect();
    Ok(SparseUpdate { dim: values.len(), indices, values: kept })
}

fn check_k(dim: usize, k: usize) -> Result<()> {
    if u32::try_from(dim).is_err() {
        return Err(wire::bad_values(format!("{dim} elements exceed the top-k codec's limit of {}", u32::MAX)));
    }
    if k > dim {
        return Err(AggregationError::InvalidParameter {
            name: "k",
            reason: format!("cannot keep {k} of {dim} values"),
        });
    }
    Ok(())
}

/// Ascending indices of the `k` largest `|vᵢ|`, ties going to the lower
/// index. `v` must be finite and at most `u32::MAX` long.
///
/// Each coordinate becomes one `u64` key, `|vᵢ|`'s bits above the
/// complemented index: for non-negative floats the bit patterns order like
/// the values, and the complement makes the lower index the larger key on a
/// tie. Keys are distinct, so a linear-time selection (`select_nth_unstable`)
/// gives a deterministic set without sorting all `d` of them.
fn select(v: &[f32], k: usize) -> Vec<u32> {
    if k == 0 {
        return Vec::new();
    }
    if k == v.len() {
        return (0..v.len() as u32).collect();
    }
    let mut keys: Vec<u64> =
        v.par_iter().enumerate().map(|(i, x)| u64::from(x.abs().to_bits()) << 32 | u64::from(!(i as u32))).collect();
    keys.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
    let mut indices: Vec<u32> = keys[..k].iter().map(|&key| !(key as u32)).collect();
    indices.sort_unstable();
    indices
}

/// The trainer-side memory of top-k with error feedback: what earlier rounds
/// computed but did not send. O(model).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorFeedback {
    residual: Vec<f32>,
}

impl ErrorFeedback {
    /// An empty memory for updates of `dim` values.
    pub fn new(dim: usize) -> Self {
        Self { residual: vec![0.0; dim] }
    }

    /// Restores a residual saved from [`ErrorFeedback::residual`], e.g.
    /// across a trainer restart.
    ///
    /// Fails with [`AggregationError::InvalidParameter`] on a NaN or ±Inf.
    pub fn from_residual(residual: Vec<f32>) -> Result<Self> {
        if let Some(i) = wire::par_position(&residual, |v| !v.is_finite()) {
            return Err(AggregationError::InvalidParameter {
                name: "residual",
                reason: format!("non-finite value at index {i}"),
            });
        }
        Ok(Self { residual })
    }

    /// Number of values per update.
    pub fn dim(&self) -> usize {
        self.residual.len()
    }

    /// What has been computed but not yet sent.
    pub fn residual(&self) -> &[f32] {
        &self.residual
    }

    /// Adds `update` to the residual, takes out and returns its `k`
    /// largest-magnitude entries (ties to the lower index), and keeps the
    /// rest for the next round.
    ///
    /// Fails, leaving the residual untouched, with
    /// [`AggregationError::InvalidParameter`] when `update` is not
    /// [`ErrorFeedback::dim`] long, `k` exceeds it, `update` holds a NaN or
    /// ±Inf, or adding it to the residual overflows `f32`.
    pub fn compress(&mut self, update: &[f32], k: usize) -> Result<SparseUpdate> {
        let dim = self.residual.len();
        if update.len() != dim {
            return Err(AggregationError::InvalidParameter {
                name: "update",
                reason: format!("has {} values, the error feedback {dim}", update.len()),
            });
        }
        check_k(dim, k)?;
        // The residual is finite, so a non-finite sum means a non-finite
        // input or an overflow; either way nothing has been changed yet.
        let bad = self
            .residual
            .par_chunks(wire::PAR_CHUNK)
            .zip(update.par_chunks(wire::PAR_CHUNK))
            .enumerate()
            .filter_map(|(c, (r, u))| {
                r.iter().zip(u).position(|(r, u)| !(r + u).is_finite()).map(|i| c * wire::PAR_CHUNK + i)
            })
            .min();
        if let Some(i) = bad {
            let why = if update[i].is_finite() { "overflows when added to the residual" } else { "is not finite" };
            return Err(wire::bad_values(format!("value {} at index {i} {why}", update[i])));
        }
        self.residual
            .par_chunks_mut(wire::PAR_CHUNK)
            .zip(update.par_chunks(wire::PAR_CHUNK))
            .for_each(|(r, u)| r.iter_mut().zip(u).for_each(|(r, u)| *r += u));
        let indices = select(&self.residual, k);
        let values = indices.iter().map(|&i| std::mem::replace(&mut self.residual[i as usize], 0.0)).collect();
        Ok(SparseUpdate { dim, indices, values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;

    fn sq(v: &[f32]) -> f64 {
        v.iter().map(|&x| f64::from(x) * f64::from(x)).sum()
    }

    #[test]
    fn selection_by_hand() {
        // |v| = [1, 3, 3, 2]: indices 1 and 2 tie for the largest.
        let v = [1.0, -3.0, 3.0, 2.0];
        let one = top_k(&v, 1).unwrap();
        assert_eq!((one.indices(), one.values()), (&[1][..], &[-3.0][..])); // tie → lower index
        let two = top_k(&v, 2).unwrap();
        assert_eq!((two.indices(), two.values()), (&[1, 2][..], &[-3.0, 3.0][..]));
        assert_eq!(two.to_dense(), [0.0, -3.0, 3.0, 0.0]);
        // ‖v‖² = 1 + 9 + 9 + 4 = 23; dropped [1, 0, 0, 2] has 5 ≤ (1 − 2/4)·23 = 11.5.
        assert_eq!(sq(&[1.0, 0.0, 0.0, 2.0]), 5.0);
        assert_eq!(top_k(&v, 3).unwrap().indices(), [1, 2, 3]);
        assert_eq!(top_k(&v, 4).unwrap().to_dense(), v);
        assert!(top_k(&v, 0).unwrap().is_empty());
        assert!(top_k(&v, 5).is_err());
        assert!(top_k(&[1.0, f32::NAN], 1).is_err());
    }

    #[test]
    fn error_feedback_by_hand() {
        // d = 4, k = 1.
        // Round 1: u = [1, 0.5, −2, 0.25] = v; send {2: −2};    residual [1, 0.5, 0, 0.25]
        // Round 2: u = [1, 0.5, 1, 0.25];   v = [2, 1, 1, 0.5]; send {0: 2}; residual [0, 1, 1, 0.5]
        // Round 3: u = 0;                   v = [0, 1, 1, 0.5]; tie → send {1: 1}; residual [0, 0, 1, 0.5]
        // Sent [2, 1, −2, 0] + residual [0, 0, 1, 0.5] = [2, 1, −1, 0.5] = Σ u.
        let mut ef = ErrorFeedback::new(4);
        let s1 = ef.compress(&[1.0, 0.5, -2.0, 0.25], 1).unwrap();
        assert_eq!((s1.indices(), s1.values()), (&[2][..], &[-2.0][..]));
        assert_eq!(ef.residual(), [1.0, 0.5, 0.0, 0.25]);
        // The wire form: tag, d = 4, k = 1, index 2, value −2.0 = 0xc0000000.
        assert_eq!(s1.encode(), [0x13, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0xc0]);
        let s2 = ef.compress(&[1.0, 0.5, 1.0, 0.25], 1).unwrap();
        assert_eq!((s2.indices(), s2.values()), (&[0][..], &[2.0][..]));
        let s3 = ef.compress(&[0.0; 4], 1).unwrap();
        assert_eq!((s3.indices(), s3.values()), (&[1][..], &[1.0][..]));
        assert_eq!(ef.residual(), [0.0, 0.0, 1.0, 0.5]);
        let mut total = ef.residual().to_vec();
        for s in [&s1, &s2, &s3] {
            s.scatter_add(&mut total, 1.0).unwrap();
        }
        assert_eq!(total, [2.0, 1.0, -1.0, 0.5]);
    }

    #[test]
    fn a_refused_update_leaves_the_residual_alone() {
        let mut ef = ErrorFeedback::new(3);
        // Sends index 0 and keeps [0, 3e38, 1].
        ef.compress(&[3e38, 3e38, 1.0], 1).unwrap();
        let before = ef.clone();
        assert!(ef.compress(&[1.0, f32::INFINITY, 0.0], 1).unwrap_err().to_string().contains("not finite"));
        assert!(ef.compress(&[0.0, 3e38, 0.0], 1).unwrap_err().to_string().contains("index 1 overflows"));
        assert!(ef.compress(&[1.0, 2.0], 1).is_err());
        assert!(ef.compress(&[1.0, 2.0, 3.0], 4).is_err());
        assert_eq!(ef, before);
        assert!(ErrorFeedback::from_residual(vec![0.0, f32::NAN]).is_err());
        assert_eq!(ErrorFeedback::from_residual(before.residual().to_vec()).unwrap(), before);
    }

    #[test]
    fn bad_bytes_are_refused() {
        let good = SparseUpdate::new(6, vec![1, 4], vec![0.5, -1.0]).unwrap();
        let bytes = good.encode();
        assert_eq!(SparseUpdate::decode(&bytes, 6).unwrap(), good);
        for cut in 0..bytes.len() {
            assert!(matches!(SparseUpdate::decode(&bytes[..cut], 6), Err(AggregationError::Malformed(_))));
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(SparseUpdate::decode(&long, 6).is_err());
        assert!(SparseUpdate::decode(&bytes, 5).unwrap_err().to_string().contains("limit"));
        let patch = |at: usize, word: [u8; 4]| {
            let mut b = bytes.clone();
            b[at..at + 4].copy_from_slice(&word);
            SparseUpdate::decode(&b, 6).unwrap_err().to_string()
        };
        // Layout: tag @0, d @1, k @5, indices @9 and @13, values @17 and @21.
        assert!(patch(9, 4u32.to_le_bytes()).contains("strictly increasing")); // [4, 4]
        assert!(patch(13, 6u32.to_le_bytes()).contains("out of range")); // [1, 6]
        assert!(patch(21, f32::NAN.to_le_bytes()).contains("non-finite"));
        assert!(patch(5, 7u32.to_le_bytes()).contains("7 entries")); // k > d
        assert!(patch(5, 3u32.to_le_bytes()).contains("body")); // k = 3 but two entries
        // A huge k is refused by the length check, not by allocating.
        let mut b = bytes.clone();
        b[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        b[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(SparseUpdate::decode(&b, usize::MAX).is_err());

        assert!(SparseUpdate::new(3, vec![0, 1], vec![1.0]).is_err());
        assert!(SparseUpdate::new(3, vec![2, 1], vec![1.0, 1.0]).is_err());
        assert!(SparseUpdate::new(3, vec![3], vec![1.0]).is_err());
        assert!(good.scatter_add(&mut [0.0; 5], 1.0).is_err());
    }

    #[test]
    fn large_inputs_select_like_a_full_sort() {
        let d = 3 * wire::PAR_CHUNK + 11;
        // Many ties: values on a coarse grid.
        let v: Vec<f32> = (0..d).map(|i| ((i * 7919) % 1001) as f32 - 500.0).collect();
        let k = 1000;
        let got = top_k(&v, k).unwrap();
        let mut order: Vec<u32> = (0..d as u32).collect();
        order.sort_by(|&a, &b| v[b as usize].abs().total_cmp(&v[a as usize].abs()).then(a.cmp(&b)));
        let mut want = order[..k].to_vec();
        want.sort_unstable();
        assert_eq!(got.indices(), want);
    }

    /// Vectors with plenty of ties (small integers) or of arbitrary floats,
    /// and a `k` between 0 and their length.
    fn vector_and_k() -> impl Strategy<Value = (Vec<f32>, usize)> {
        prop_oneof![
            prop::collection::vec((-4i8..=4).prop_map(f32::from), 1..80),
            prop::collection::vec(-1e6f32..1e6, 1..80),
        ]
        .prop_flat_map(|v| {
            let d = v.len();
            (Just(v), 0..=d)
        })
    }

    /// A few rounds of updates on the grid of multiples of 2⁻¹⁰ in [−8, 8],
    /// where every sum is exact in `f32`.
    fn exact_rounds() -> impl Strategy<Value = (Vec<Vec<f32>>, usize)> {
        (1usize..40, 1usize..8).prop_flat_map(|(d, t)| {
            let round = prop::collection::vec((-8192i32..=8192).prop_map(|q| q as f32 / 1024.0), d);
            (prop::collection::vec(round, t), 0..=d)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            rng_seed: RngSeed::Fixed(0x70b),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn dropped_energy_is_bounded((v, k) in vector_and_k()) {
            let s = top_k(&v, k).unwrap();
            prop_assert_eq!(s.len(), k);
            let dense = s.to_dense();
            let dropped: Vec<f32> = v.iter().zip(&dense).map(|(a, b)| a - b).collect();
            let d = v.len() as f64;
            // Sums of f64 squares of f32 values: rounding far below the slack.
            prop_assert!(sq(&dropped) <= (1.0 - k as f64 / d) * sq(&v) * (1.0 + 1e-12));
            // Whatever was kept is at least as large as anything dropped.
            let min_kept = s.values().iter().fold(f32::INFINITY, |m, x| m.min(x.abs()));
            prop_assert!(dropped.iter().all(|x| x.abs() <= min_kept));
            prop_assert_eq!(SparseUpdate::decode(&s.encode(), v.len()).unwrap(), s);
        }

        #[test]
        fn error_feedback_loses_nothing((rounds, k) in exact_rounds()) {
            let d = rounds[0].len();
            let mut ef = ErrorFeedback::new(d);
            let mut sent = vec![0.0f32; d];
            let mut inputs = vec![0.0f32; d];
            for u in &rounds {
                ef.compress(u, k).unwrap().scatter_add(&mut sent, 1.0).unwrap();
                inputs.iter_mut().zip(u).for_each(|(a, b)| *a += b);
            }
            let total: Vec<f32> = sent.iter().zip(ef.residual()).map(|(s, r)| s + r).collect();
            prop_assert_eq!(total, inputs);
        }

        #[test]
        fn error_feedback_loses_nothing_but_rounding(
            rounds in prop::collection::vec(prop::collection::vec(-1e3f32..1e3, 16), 1..10),
            k in 0usize..=16,
        ) {
            let mut ef = ErrorFeedback::new(16);
            let mut sent = [0.0f64; 16];
            let mut inputs = [0.0f64; 16];
            let mut magnitude = [0.0f64; 16];
            for u in &rounds {
                let s = ef.compress(u, k).unwrap();
                for (&i, &v) in s.indices().iter().zip(s.values()) {
                    sent[i as usize] += f64::from(v);
                }
                for i in 0..16 {
                    inputs[i] += f64::from(u[i]);
                    magnitude[i] += f64::from(u[i].abs());
                }
            }
            // Each round rounds `u + residual` once, by at most 2⁻²⁴ of a
            // value bounded by the sum of magnitudes so far.
            let t = rounds.len() as f64;
            for i in 0..16 {
                let err = (sent[i] + f64::from(ef.residual()[i]) - inputs[i]).abs();
                prop_assert!(err <= t * magnitude[i] * 2f64.powi(-24), "{}: {}", i, err);
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in wire::tests::arbitrary_encoding(TAG_TOPK)) {
            match SparseUpdate::decode(&bytes, 16) {
                Ok(s) => prop_assert_eq!(s.encode(), bytes),
                Err(e) => prop_assert!(matches!(e, AggregationError::Malformed(_))),
            }
        }
    }
}
