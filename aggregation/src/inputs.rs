//! A checked set of client updates, ready for any rule.

use rayon::prelude::*;

use crate::error::{AggregationError, Result};
use crate::kernels;
use crate::layout::{Layout, UpdateView};

/// The updates of one round, validated once and shared by every rule.
///
/// Construction checks that every value is finite and every weight is a
/// finite non-negative number, so rules never see NaN or ±Inf. Optional
/// per-update L2 norm clipping is recorded as a scale factor per update
/// (`min(1, S / ‖u‖)`), which every rule applies on the fly: no update is
/// copied to be clipped.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    layout: &'a Layout,
    updates: Vec<UpdateView<'a>>,
    weights: Vec<f64>,
    scales: Vec<f32>,
    norms: Vec<f64>,
}

impl<'a> Inputs<'a> {
    /// Checks `updates` (built against `layout`) and their `weights`.
    ///
    /// `weights` may be empty, meaning 1 for every update; otherwise it must
    /// have one entry per update. Fails on the first non-finite value, naming
    /// its update, tensor and index.
    pub fn new(layout: &'a Layout, updates: Vec<UpdateView<'a>>, weights: Vec<f64>) -> Result<Self> {
        let weights = if weights.is_empty() { vec![1.0; updates.len()] } else { weights };
        if weights.len() != updates.len() {
            return Err(AggregationError::InvalidParameter {
                name: "weights",
                reason: format!("{} weights for {} updates", weights.len(), updates.len()),
            });
        }
        for (client, &w) in weights.iter().enumerate() {
            if !(w.is_finite() && w >= 0.0) {
                return Err(AggregationError::BadWeight { client, weight: w });
            }
        }
        // One pass over every value, spread over the cores by tensor chunk so
        // that a single huge update is checked in parallel too.
        let norms = updates
            .par_iter()
            .enumerate()
            .map(|(client, u)| check_and_norm(layout, client, u))
            .collect::<Result<Vec<_>>>()?;
        let scales = vec![1.0; updates.len()];
        Ok(Self { layout, updates, weights, scales, norms })
    }

    /// Clips every update to L2 norm at most `max_norm` (Sun et al. 2019,
    /// "Can You Really Backdoor Federated Learning?"): update `u` counts as
    /// `u · min(1, max_norm / ‖u‖)` in every rule that follows.
    pub fn clip(mut self, max_norm: f64) -> Result<Self> {
        if !(max_norm.is_finite() && max_norm > 0.0) {
            return Err(AggregationError::InvalidParameter {
                name: "max_norm",
                reason: format!("must be a positive finite number, got {max_norm}"),
            });
        }
        for (s, &n) in self.scales.iter_mut().zip(&self.norms) {
            *s = if n > max_norm { (max_norm / n) as f32 } else { 1.0 };
        }
        Ok(self)
    }

    /// The layout every update follows.
    pub fn layout(&self) -> &'a Layout {
        self.layout
    }

    /// Number of updates.
    pub fn len(&self) -> usize {
        self.updates.len()
    }

    /// Whether there are no updates.
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }

    /// The updates, in the order given.
    pub fn updates(&self) -> &[UpdateView<'a>] {
        &self.updates
    }

    /// The weights (sample counts), one per update.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The clipping scale of each update (1 when not clipped).
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// The L2 norm of each update before clipping.
    pub fn norms(&self) -> &[f64] {
        &self.norms
    }

    /// Total number of `f32` values across all updates (for throughput figures).
    pub fn input_values(&self) -> usize {
        self.layout.numel() * self.updates.len()
    }
}

impl<'a> Inputs<'a> {
    /// The flat coordinates `start..start + len` of update `client`, as
    /// `(offset from start, values)` pieces, one per tensor the range spans.
    pub(crate) fn pieces(&self, client: usize, start: usize, len: usize) -> impl Iterator<Item = (usize, &'a [f32])> {
        let layout = self.layout;
        let update = self.updates[client].clone();
        let mut t = if len == 0 { layout.len() } else { layout.tensor_at(start) };
        let mut pos = start;
        let end = start + len;
        std::iter::from_fn(move || {
            while t < layout.len() && pos < end {
                let range = layout.range(t);
                let take = (range.end - pos).min(end - pos);
                let piece = (pos - start, &update.tensor(t)[pos - range.start..pos - range.start + take]);
                pos += take;
                t += 1;
                if take > 0 {
                    return Some(piece);
                }
            }
            None
        })
    }
}

/// Finiteness check and squared norm in one pass over the update.
fn check_and_norm(layout: &Layout, client: usize, u: &UpdateView<'_>) -> Result<f64> {
    let mut sq = 0.0f64;
    for (i, part) in u.tensors().iter().enumerate() {
        let (s, bad) = kernels::par_sq_norm_checked(part);
        if let Some(index) = bad {
            return Err(AggregationError::NonFinite { client, tensor: layout.tensors()[i].name.clone(), index });
        }
        sq += s;
    }
    Ok(sq.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::TensorInfo;

    #[test]
    fn non_finite_values_and_bad_weights_are_named() {
        let layout = Layout::new(vec![TensorInfo::new("a", [2]), TensorInfo::new("b", [3])]).unwrap();
        let good = [1.0, 2.0, 3.0, 4.0, 5.0];
        let bad = [1.0, 2.0, 3.0, f32::NAN, 5.0];
        let views = vec![layout.view_flat(0, &good).unwrap(), layout.view_flat(1, &bad).unwrap()];
        let err = Inputs::new(&layout, views.clone(), vec![]).unwrap_err();
        assert_eq!(err, AggregationError::NonFinite { client: 1, tensor: "b".into(), index: 1 });

        let views = vec![views[0].clone()];
        for w in [-1.0, f64::NAN, f64::INFINITY] {
            let err = Inputs::new(&layout, views.clone(), vec![w]).unwrap_err();
            assert!(matches!(err, AggregationError::BadWeight { client: 0, .. }), "{err}");
        }
        let err = Inputs::new(&layout, views.clone(), vec![1.0, 2.0]).unwrap_err();
        assert!(matches!(err, AggregationError::InvalidParameter { name: "weights", .. }));
    }

    #[test]
    fn clipping_scales_only_updates_above_the_bound() {
        let layout = Layout::new(vec![TensorInfo::new("a", [2])]).unwrap();
        let big = [3.0, 4.0]; // norm 5
        let small = [0.3, 0.4]; // norm 0.5
        let views = vec![layout.view_flat(0, &big).unwrap(), layout.view_flat(1, &small).unwrap()];
        let inputs = Inputs::new(&layout, views, vec![]).unwrap().clip(1.0).unwrap();
        assert_eq!(inputs.norms()[0], 5.0);
        assert!((inputs.norms()[1] - 0.5).abs() < 1e-6);
        assert!((inputs.scales()[0] - 0.2).abs() < 1e-7);
        assert_eq!(inputs.scales()[1], 1.0);
        assert!(inputs.clone().clip(0.0).is_err());
        assert!(inputs.clip(f64::NAN).is_err());
    }
}
