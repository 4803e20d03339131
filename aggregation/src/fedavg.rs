//! Federated averaging as a streaming accumulator.
//!
//! McMahan et al. 2017, "Communication-Efficient Learning of Deep Networks
//! from Decentralized Data" (FedAvg): the next model is the average of the
//! clients' updates weighted by their sample counts, `Σ nₖ·Δₖ / Σ nₖ`.
//! Because that is a sum, updates can be added one at a time as they arrive:
//! memory stays one model (plus the update being added), whatever the number
//! of clients.

use rayon::prelude::*;

use crate::error::{AggregationError, Result};
use crate::inputs::Inputs;
use crate::kernels;
use crate::layout::{Layout, UpdateView};

use crate::kernels::PAR_CHUNK;

/// A running weighted sum of updates.
#[derive(Debug, Clone)]
pub struct FedAvg {
    layout: Layout,
    sum: Vec<f32>,
    total_weight: f64,
    count: usize,
    clip: Option<f64>,
}

impl FedAvg {
    /// An empty accumulator for models with `layout`.
    pub fn new(layout: &Layout) -> Self {
        Self { layout: layout.clone(), sum: vec![0.0; layout.numel()], total_weight: 0.0, count: 0, clip: None }
    }

    /// Clips every update added from now on to L2 norm `max_norm` first.
    pub fn with_clip(mut self, max_norm: f64) -> Result<Self> {
        if !(max_norm.is_finite() && max_norm > 0.0) {
            return Err(AggregationError::InvalidParameter {
                name: "max_norm",
                reason: format!("must be a positive finite number, got {max_norm}"),
            });
        }
        self.clip = Some(max_norm);
        Ok(self)
    }

    /// Adds update number `client` with weight `weight` (its sample count).
    ///
    /// The update is checked in full before anything is added: on error
    /// (a NaN or ±Inf, a bad weight) the accumulator is exactly as before.
    /// Returns the update's L2 norm before clipping.
    pub fn add(&mut self, client: usize, update: &UpdateView<'_>, weight: f64) -> Result<f64> {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(AggregationError::BadWeight { client, weight });
        }
        let mut sq = 0.0;
        for (i, part) in update.tensors().iter().enumerate() {
            if part.len() != self.layout.range(i).len() {
                let t = &self.layout.tensors()[i];
                return Err(AggregationError::Shape {
                    client,
                    tensor: t.name.clone(),
                    expected: t.shape.clone(),
                    got: vec![part.len()],
                });
            }
            let (s, bad) = kernels::par_sq_norm_checked(part);
            if let Some(index) = bad {
                let tensor = self.layout.tensors()[i].name.clone();
                return Err(AggregationError::NonFinite { client, tensor, index });
            }
            sq += s;
        }
        let norm = sq.sqrt();
        let scale = match self.clip {
            Some(max) if norm > max => (max / norm) as f32,
            _ => 1.0,
        };
        self.add_trusted(update, weight, scale);
        Ok(norm)
    }

    /// Adds an update already known to be finite and well-shaped, counting it
    /// with `weight` and multiplying its values by `weight · scale`.
    pub(crate) fn add_trusted(&mut self, update: &UpdateView<'_>, weight: f64, scale: f32) {
        let factor = (weight as f32) * scale;
        for (i, part) in update.tensors().iter().enumerate() {
            let range = self.layout.range(i);
            let dst = &mut self.sum[range];
            if factor != 0.0 {
                dst.par_chunks_mut(PAR_CHUNK)
                    .zip(part.par_chunks(PAR_CHUNK))
                    .for_each(|(d, s)| kernels::axpy(d, s, factor));
            }
        }
        self.total_weight += weight;
        self.count += 1;
    }

    /// Number of updates added so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Sum of the weights added so far.
    pub fn total_weight(&self) -> f64 {
        self.total_weight
    }

    /// The weighted sum `Σ wₖ·Δₖ` so far (not yet divided).
    pub fn sum(&self) -> &[f32] {
        &self.sum
    }

    /// The layout the accumulator was built for.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The weighted average, flat in layout order.
    ///
    /// Fails with [`AggregationError::ZeroTotalWeight`] when nothing (or only
    /// weight zero) was added: there is no average to return.
    pub fn finish(self) -> Result<Vec<f32>> {
        if self.total_weight <= 0.0 {
            return Err(AggregationError::ZeroTotalWeight);
        }
        let inv = (1.0 / self.total_weight) as f32;
        let mut sum = self.sum;
        sum.par_chunks_mut(PAR_CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v *= inv));
        Ok(sum)
    }
}

/// The weighted mean (by sample count, after clipping) of the `clients` of
/// `inputs`, computed block by block: each block of the output stays in
/// cache while every client's values are added to it, so memory traffic is
/// one read of the inputs and one write of the result. Adds in client order,
/// so the result is bit-identical to streaming the same updates through
/// [`FedAvg`].
pub(crate) fn weighted_mean(inputs: &Inputs<'_>, clients: &[usize], out: Vec<f32>) -> Result<Vec<f32>> {
    let total: f64 = clients.iter().map(|&i| inputs.weights()[i]).sum();
    if clients.is_empty() || total <= 0.0 {
        return Err(AggregationError::ZeroTotalWeight);
    }
    let factors: Vec<(usize, f32)> =
        clients.iter().map(|&i| (i, (inputs.weights()[i] as f32) * inputs.scales()[i])).collect();
    let inv = (1.0 / total) as f32;
    let mut out = kernels::reuse(out, inputs.layout().numel());
    let bad = out
        .par_chunks_mut(BLOCK)
        .enumerate()
        .map(|(b, block)| {
            let start = b * BLOCK;
            let mut bad = false;
            block.fill(0.0);
            for &(client, factor) in &factors {
                for (at, src) in inputs.pieces(client, start, block.len()) {
                    // A zero-weight update adds nothing, but its values are
                    // still checked: NaN in any input is refused.
                    let finite = if factor == 0.0 {
                        kernels::all_finite(src)
                    } else {
                        kernels::axpy_checked(&mut block[at..at + src.len()], src, factor)
                    };
                    bad |= !finite;
                }
            }
            block.iter_mut().for_each(|v| *v *= inv);
            if bad { inputs.first_non_finite_among(clients, start, block.len()) } else { None }
        })
        .reduce(|| None, |a, b| a.into_iter().chain(b).min());
    match bad {
        Some(bad) => Err(inputs.non_finite_error(bad)),
        None => Ok(out),
    }
}

/// Output values per block of [`weighted_mean`]: 64 KiB, resident in L2.
const BLOCK: usize = 1 << 14;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::TensorInfo;

    fn layout() -> Layout {
        Layout::new(vec![TensorInfo::new("w", [2, 2]), TensorInfo::new("b", [1])]).unwrap()
    }

    #[test]
    fn weighted_average_by_hand() {
        let l = layout();
        let a = [1.0, 2.0, 3.0, 4.0, 10.0];
        let b = [3.0, 2.0, 1.0, 0.0, -10.0];
        let mut acc = FedAvg::new(&l);
        acc.add(0, &l.view_flat(0, &a).unwrap(), 600.0).unwrap();
        acc.add(1, &l.view_flat(1, &b).unwrap(), 200.0).unwrap();
        assert_eq!(acc.count(), 2);
        // (600·a + 200·b) / 800 = 0.75·a + 0.25·b
        assert_eq!(acc.finish().unwrap(), vec![1.5, 2.0, 2.5, 3.0, 5.0]);
    }

    #[test]
    fn a_rejected_update_leaves_the_sum_untouched() {
        let l = layout();
        let mut acc = FedAvg::new(&l);
        acc.add(0, &l.view_flat(0, &[1.0; 5]).unwrap(), 1.0).unwrap();
        let before = acc.sum().to_vec();
        let err = acc.add(1, &l.view_flat(1, &[1.0, 1.0, 1.0, 1.0, f32::NAN]).unwrap(), 1.0).unwrap_err();
        assert_eq!(err, AggregationError::NonFinite { client: 1, tensor: "b".into(), index: 0 });
        let err = acc.add(2, &l.view_flat(2, &[1.0; 5]).unwrap(), -3.0).unwrap_err();
        assert!(matches!(err, AggregationError::BadWeight { client: 2, .. }));
        assert_eq!(acc.sum(), &before[..]);
        assert_eq!((acc.count(), acc.total_weight()), (1, 1.0));
    }

    #[test]
    fn zero_total_weight_is_an_error() {
        let l = layout();
        assert_eq!(FedAvg::new(&l).finish().unwrap_err(), AggregationError::ZeroTotalWeight);
        let mut acc = FedAvg::new(&l);
        acc.add(0, &l.view_flat(0, &[1.0; 5]).unwrap(), 0.0).unwrap();
        assert_eq!(acc.finish().unwrap_err(), AggregationError::ZeroTotalWeight);
    }

    #[test]
    fn clipping_bounds_each_contribution() {
        let l = Layout::new(vec![TensorInfo::new("v", [2])]).unwrap();
        let mut acc = FedAvg::new(&l).with_clip(1.0).unwrap();
        assert_eq!(acc.add(0, &l.view_flat(0, &[30.0, 40.0]).unwrap(), 1.0).unwrap(), 50.0);
        acc.add(1, &l.view_flat(1, &[0.0, 0.5]).unwrap(), 1.0).unwrap();
        let avg = acc.finish().unwrap();
        // (0.6, 0.8) and (0, 0.5) averaged.
        assert!((avg[0] - 0.3).abs() < 1e-6 && (avg[1] - 0.65).abs() < 1e-6, "{avg:?}");
    }

    #[test]
    fn large_models_split_across_jobs_agree_with_a_serial_sum() {
        let l = Layout::new(vec![TensorInfo::new("big", [3 * PAR_CHUNK + 17])]).unwrap();
        let xs: Vec<Vec<f32>> =
            (0..3).map(|k| (0..l.numel()).map(|i| ((i * (k + 3)) % 13) as f32 - 6.0).collect()).collect();
        let mut acc = FedAvg::new(&l);
        for (k, x) in xs.iter().enumerate() {
            acc.add(k, &l.view_flat(k, x).unwrap(), (k + 1) as f64).unwrap();
        }
        let avg = acc.finish().unwrap();
        for i in [0, PAR_CHUNK - 1, PAR_CHUNK, 3 * PAR_CHUNK + 16] {
            let want = (xs[0][i] + 2.0 * xs[1][i] + 3.0 * xs[2][i]) / 6.0;
            assert!((avg[i] - want).abs() < 1e-5, "{i}: {} vs {want}", avg[i]);
        }
    }

    #[test]
    fn blocked_batch_mean_is_bit_identical_to_streaming() {
        let d = 3 * BLOCK + 101;
        let l = Layout::new(vec![TensorInfo::new("a", [7]), TensorInfo::new("b", [d - 7])]).unwrap();
        let xs: Vec<Vec<f32>> =
            (0..5).map(|k| (0..d).map(|i| (((i * 7 + k * 13) % 23) as f32 - 11.0) * 0.37).collect()).collect();
        let weights = vec![3.0, 0.0, 1.5, 7.0, 2.0];
        let views: Vec<_> = xs.iter().enumerate().map(|(k, x)| l.view_flat(k, x).unwrap()).collect();
        let inputs = Inputs::new(&l, views.clone(), weights.clone()).unwrap().clip(300.0).unwrap();
        assert!(inputs.scales().iter().any(|&s| s < 1.0), "the test should clip something");
        let mut acc = FedAvg::new(&l).with_clip(300.0).unwrap();
        for (k, v) in views.iter().enumerate() {
            acc.add(k, v, weights[k]).unwrap();
        }
        let streamed = acc.finish().unwrap();
        let blocked = weighted_mean(&inputs, &[0, 1, 2, 3, 4], Vec::new()).unwrap();
        // A reused buffer, dirty and of the wrong length, gives the same result.
        let reused = weighted_mean(&inputs, &[0, 1, 2, 3, 4], vec![f32::NAN; 17]).unwrap();
        assert_eq!(reused, blocked);
        let reused = weighted_mean(&inputs, &[0, 1, 2, 3, 4], vec![9.0; d]).unwrap();
        assert_eq!(reused, blocked);
        assert!(streamed.iter().zip(&blocked).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(weighted_mean(&inputs, &[1], Vec::new()).unwrap_err(), AggregationError::ZeroTotalWeight);
        assert_eq!(weighted_mean(&inputs, &[], Vec::new()).unwrap_err(), AggregationError::ZeroTotalWeight);
    }
}
