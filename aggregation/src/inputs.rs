//! The updates of one round, ready for any rule.

use rayon::prelude::*;

use crate::error::{AggregationError, Result};
use crate::kernels;
use crate::layout::{Layout, UpdateView};

/// The updates of one round, shared by every rule.
///
/// Construction checks the weights (finite, non-negative, one per update).
/// The values are checked by whatever reads them, in the same pass: every
/// rule fails with [`AggregationError::NonFinite`], naming the update,
/// tensor and index, if any value it was given is NaN or ±Inf, so a rule
/// never returns a result built from one. (A separate checking pass would
/// read every input twice; for large models that doubles the time.)
///
/// Optional per-update L2 norm clipping is recorded as a scale factor per
/// update (`min(1, S / ‖u‖)`), which every rule applies on the fly: no
/// update is copied to be clipped.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    layout: &'a Layout,
    updates: Vec<UpdateView<'a>>,
    weights: Vec<f64>,
    scales: Vec<f32>,
    norms: Option<Vec<f64>>,
}

impl<'a> Inputs<'a> {
    /// The `updates` (built against `layout`) with their `weights`.
    ///
    /// `weights` may be empty, meaning 1 for every update; otherwise it must
    /// have one entry per update, each finite and non-negative.
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
        let scales = vec![1.0; updates.len()];
        Ok(Self { layout, updates, weights, scales, norms: None })
    }

    /// Clips every update to L2 norm at most `max_norm` (Sun et al. 2019,
    /// "Can You Really Backdoor Federated Learning?"): update `u` counts as
    /// `u · min(1, max_norm / ‖u‖)` in every rule that follows.
    ///
    /// Computing the norms reads every value once (checking it is finite).
    pub fn clip(mut self, max_norm: f64) -> Result<Self> {
        if !(max_norm.is_finite() && max_norm > 0.0) {
            return Err(AggregationError::InvalidParameter {
                name: "max_norm",
                reason: format!("must be a positive finite number, got {max_norm}"),
            });
        }
        if self.norms.is_none() {
            // Spread over the cores by tensor chunk, so that a single huge
            // update is read in parallel too.
            let norms = self
                .updates
                .par_iter()
                .enumerate()
                .map(|(client, u)| check_and_norm(self.layout, client, u))
                .collect::<Result<Vec<_>>>()?;
            self.norms = Some(norms);
        }
        let norms = self.norms.as_deref().expect("computed above");
        for (s, &n) in self.scales.iter_mut().zip(norms) {
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

    /// The L2 norm of each update before clipping, once [`Inputs::clip`]
    /// has computed them.
    pub fn norms(&self) -> Option<&[f64]> {
        self.norms.as_deref()
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

/// Where a rule found a non-finite value: update and flat coordinate.
///
/// Parallel jobs each report the first they see; the smallest (update, then
/// coordinate) is reported, so the error does not depend on thread timing.
pub(crate) type BadValue = (usize, usize);

impl Inputs<'_> {
    /// The flat coordinate of the first non-finite value of update `client`
    /// within `start..start + len`, if any.
    pub(crate) fn first_non_finite(&self, client: usize, start: usize, len: usize) -> Option<BadValue> {
        self.pieces(client, start, len)
            .find_map(|(at, piece)| kernels::first_non_finite(piece).map(|i| (client, start + at + i)))
    }

    /// The first non-finite value (lowest update, then coordinate) of any of
    /// `clients` within `start..start + len`. For a job's error path: a job
    /// that stops at its first bad block must still report the first bad
    /// value of its whole range.
    pub(crate) fn first_non_finite_among(&self, clients: &[usize], start: usize, len: usize) -> Option<BadValue> {
        clients.iter().filter_map(|&c| self.first_non_finite(c, start, len)).min()
    }

    /// The error describing `bad`.
    pub(crate) fn non_finite_error(&self, (client, pos): BadValue) -> AggregationError {
        let t = self.layout.tensor_at(pos);
        AggregationError::NonFinite {
            client,
            tensor: self.layout.tensors()[t].name.clone(),
            index: pos - self.layout.range(t).start,
        }
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
    fn bad_weights_are_refused_at_construction() {
        let layout = Layout::new(vec![TensorInfo::new("a", [2])]).unwrap();
        let views = vec![layout.view_flat(0, &[1.0, 2.0]).unwrap()];
        for w in [-1.0, f64::NAN, f64::INFINITY] {
            let err = Inputs::new(&layout, views.clone(), vec![w]).unwrap_err();
            assert!(matches!(err, AggregationError::BadWeight { client: 0, .. }), "{err}");
        }
        let err = Inputs::new(&layout, views, vec![1.0, 2.0]).unwrap_err();
        assert!(matches!(err, AggregationError::InvalidParameter { name: "weights", .. }));
    }

    /// Every rule, and clipping, refuses a NaN or ±Inf anywhere, naming the
    /// first one (lowest update, then lowest coordinate) whatever the
    /// parallel schedule, including values past the first block and in
    /// updates of weight zero.
    #[test]
    fn every_rule_names_the_first_non_finite_value() {
        use crate::rule::{Rule, aggregate};
        let d = 100_000;
        let layout = Layout::new(vec![TensorInfo::new("a", [5]), TensorInfo::new("b", [d - 5])]).unwrap();
        let mut rows: Vec<Vec<f32>> = (0..9).map(|k| (0..d).map(|i| ((i + k) % 7) as f32).collect()).collect();
        rows[8][3] = f32::NAN; // a later update: not the one to report
        rows[4][d - 1] = f32::NEG_INFINITY; // a later coordinate of the reported update
        rows[4][77_777] = f32::INFINITY;
        // Same parallel job as update 8's NaN, in a later block.
        rows[4][5_000] = f32::INFINITY;
        let want = AggregationError::NonFinite { client: 4, tensor: "b".into(), index: 4_995 };
        let views: Vec<_> = rows.iter().enumerate().map(|(k, r)| layout.view_flat(k, r).unwrap()).collect();
        let mut weights = vec![1.0; 9];
        weights[4] = 0.0;
        let inputs = Inputs::new(&layout, views, weights).unwrap();
        let rules = [
            Rule::FedAvg,
            Rule::Median,
            Rule::TrimmedMean { beta: 0.2 },
            Rule::Krum { byzantine: 1 },
            Rule::MultiKrum { byzantine: 1, select: 3 },
            Rule::Bulyan { byzantine: 1 },
        ];
        for rule in rules {
            assert_eq!(aggregate(&rule, &inputs).unwrap_err(), want, "{}", rule.name());
        }
        assert_eq!(inputs.clip(1.0).unwrap_err(), want);
    }

    #[test]
    fn clipping_scales_only_updates_above_the_bound() {
        let layout = Layout::new(vec![TensorInfo::new("a", [2])]).unwrap();
        let big = [3.0, 4.0]; // norm 5
        let small = [0.3, 0.4]; // norm 0.5
        let views = vec![layout.view_flat(0, &big).unwrap(), layout.view_flat(1, &small).unwrap()];
        let inputs = Inputs::new(&layout, views, vec![]).unwrap().clip(1.0).unwrap();
        let norms = inputs.norms().unwrap();
        assert_eq!(norms[0], 5.0);
        assert!((norms[1] - 0.5).abs() < 1e-6);
        assert!((inputs.scales()[0] - 0.2).abs() < 1e-7);
        assert_eq!(inputs.scales()[1], 1.0);
        assert!(inputs.clone().clip(0.0).is_err());
        assert!(inputs.clip(f64::NAN).is_err());
    }
}
