//! Central differential privacy for federated averaging (DP-FedAvg).
//!
//! McMahan et al. 2018, "Learning Differentially Private Recurrent Language
//! Models" (DP-FedAvg, Algorithm 1, with flat clipping), in the fixed-clip,
//! unweighted form that Andrew et al. 2021, "Differentially Private Learning
//! with Adaptive Clipping", take as their baseline (every client counts
//! once; their adaptive clipping is not implemented here):
//!
//! 1. clip every update `Δₖ` to L2 norm at most `S`:
//!    `Δₖ · min(1, S/‖Δₖ‖)`;
//! 2. sum the clipped updates, unweighted, so that one client changes the
//!    sum by at most `S` in L2 norm (the sensitivity);
//! 3. add Gaussian noise `N(0, (σ·S)²)` independently to every coordinate of
//!    the sum, `σ` being the noise multiplier;
//! 4. divide by the number of updates `n`.
//!
//! The privacy guarantee (ε, δ) for given `σ`, sampling rate and number of
//! rounds comes from a privacy accountant (moments accountant / RDP), which
//! is not this module's job: it only applies the mechanism.
//!
//! Two caveats a deployment should know. Dividing by the actual `n` rather
//! than McMahan et al.'s fixed expected count `qW` treats the number of
//! participants as public: fine when a round's participant list is
//! published anyway, otherwise a privacy leak to account for. And noise is
//! drawn as `f64` and added in floating point, which is the standard
//! practice of DP training libraries but not immune to the floating-point
//! attacks of Mironov 2012, "On Significance of the Least Significant Bits
//! for Differential Privacy".

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::error::{AggregationError, Result};
use crate::fedavg::FedAvg;
use crate::inputs::Inputs;

/// Coordinates per noise stream. Chunk `c` of the output (coordinates
/// `c·NOISE_CHUNK ..`) draws its noise from ChaCha20 stream `c` of the seed,
/// so the noise depends on the seed and this constant only, never on how
/// many threads generate it. Changing it changes the noise a seed gives.
const NOISE_CHUNK: usize = 1 << 16;

/// The DP-FedAvg mechanism: clip to `S`, sum, add `N(0, (σ·S)²)` per
/// coordinate, divide by `n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpFedAvg {
    clip_norm: f64,
    noise_multiplier: f64,
}

impl DpFedAvg {
    /// The mechanism with clipping bound `clip_norm` (`S`, the L2 norm each
    /// update is clipped to) and `noise_multiplier` (`σ`, the noise standard
    /// deviation in units of `S`).
    ///
    /// Fails with [`AggregationError::InvalidParameter`] unless `S` is finite
    /// and positive and `σ` finite and non-negative. `σ = 0` gives the
    /// clipped mean without noise (no privacy; useful to measure the cost of
    /// clipping alone).
    pub fn new(clip_norm: f64, noise_multiplier: f64) -> Result<Self> {
        if !(clip_norm.is_finite() && clip_norm > 0.0) {
            return Err(AggregationError::InvalidParameter {
                name: "clip_norm",
                reason: format!("must be a positive finite number, got {clip_norm}"),
            });
        }
        if !(noise_multiplier.is_finite() && noise_multiplier >= 0.0) {
            return Err(AggregationError::InvalidParameter {
                name: "noise_multiplier",
                reason: format!("must be a finite non-negative number, got {noise_multiplier}"),
            });
        }
        Ok(Self { clip_norm, noise_multiplier })
    }

    /// The clipping bound `S`.
    pub fn clip_norm(&self) -> f64 {
        self.clip_norm
    }

    /// The noise multiplier `σ`.
    pub fn noise_multiplier(&self) -> f64 {
        self.noise_multiplier
    }

    /// Standard deviation of the noise in each coordinate of the average of
    /// `n` updates: `σ·S/n` (0 when `n = 0`).
    pub fn noise_std(&self, n: usize) -> f64 {
        if n == 0 { 0.0 } else { self.noise_multiplier * self.clip_norm / n as f64 }
    }

    /// The noised, clipped, unweighted mean of `inputs`, flat in layout order.
    ///
    /// The weights in `inputs` are ignored (every update counts once, which
    /// is what bounds one client's influence by `S`), and any clipping set on
    /// `inputs` is replaced by clipping to [`DpFedAvg::clip_norm`].
    ///
    /// `seed` keys the ChaCha20 generator of the noise: the same inputs and
    /// seed give bit-identical output on any machine and thread count. The
    /// privacy guarantee holds only if the seed is secret and never reused,
    /// so draw it from the operating system's generator each round; record it
    /// only where an auditor may see the noise.
    ///
    /// Fails with [`AggregationError::TooFewClients`] when `inputs` is empty.
    pub fn aggregate(&self, inputs: &Inputs<'_>, seed: &[u8; 32]) -> Result<Vec<f32>> {
        if inputs.is_empty() {
            return Err(AggregationError::TooFewClients { rule: "dp-fedavg", needed: 1, got: 0 });
        }
        let clipped = inputs.clone().clip(self.clip_norm)?;
        let mut acc = FedAvg::new(clipped.layout());
        for (update, &scale) in clipped.updates().iter().zip(clipped.scales()) {
            acc.add_trusted(update, 1.0, scale);
        }
        let n = acc.count();
        let mut mean = acc.finish()?;
        self.add_noise(&mut mean, n, seed);
        Ok(mean)
    }

    /// Adds the mechanism's noise to `mean`, the unweighted average of `n`
    /// updates already clipped to [`DpFedAvg::clip_norm`].
    ///
    /// This is step 3 and 4 of the mechanism for callers that average as
    /// updates arrive, with [`FedAvg::with_clip`] and weight 1 per update:
    /// `(Σ + N(0, (σS)²·I)) / n` has the same distribution as
    /// `Σ/n + N(0, (σS/n)²·I)`, which is what is added here. For the same
    /// mean, `n` and seed it adds exactly the noise [`DpFedAvg::aggregate`]
    /// adds. Does nothing when `σ = 0` or `n = 0`.
    pub fn add_noise(&self, mean: &mut [f32], n: usize, seed: &[u8; 32]) {
        let std = self.noise_std(n);
        if std > 0.0 {
            add_gaussian_noise(mean, std, seed);
        }
    }
}

/// `values[i] += std · zᵢ` with `zᵢ ~ N(0, 1)` i.i.d., drawn from ChaCha20
/// keyed by `seed`, one stream per [`NOISE_CHUNK`] coordinates.
fn add_gaussian_noise(values: &mut [f32], std: f64, seed: &[u8; 32]) {
    values.par_chunks_mut(NOISE_CHUNK).enumerate().for_each(|(c, chunk)| {
        let mut rng = ChaCha20Rng::from_seed(*seed);
        // Chunk indices are below 2⁶⁴, so every chunk gets its own stream.
        rng.set_stream(c as u64);
        for v in chunk {
            let z: f64 = StandardNormal.sample(&mut rng);
            *v = (f64::from(*v) + std * z) as f32;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Layout, TensorInfo};

    #[test]
    fn without_noise_it_is_the_clipped_unweighted_mean() {
        let l = Layout::new(vec![TensorInfo::new("w", [2])]).unwrap();
        // S = 1:
        //   [3, 4]   has norm 5   → scaled by 1/5 → [0.6, 0.8]
        //   [0, 0.5] has norm 0.5 → kept
        //   [−1, 0]  has norm 1   → kept (not above S)
        // Sum [−0.4, 1.3], mean over 3 = [−0.13333, 0.43333]. The weights
        // (10, 1, 1) are ignored: with them the mean would lean to [0.6, 0.8].
        let a = [3.0, 4.0];
        let b = [0.0, 0.5];
        let c = [-1.0, 0.0];
        let views = vec![l.view_flat(0, &a).unwrap(), l.view_flat(1, &b).unwrap(), l.view_flat(2, &c).unwrap()];
        let inputs = Inputs::new(&l, views, vec![10.0, 1.0, 1.0]).unwrap();
        let dp = DpFedAvg::new(1.0, 0.0).unwrap();
        let out = dp.aggregate(&inputs, &[7; 32]).unwrap();
        let want = [-0.4f32 / 3.0, 1.3 / 3.0];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-7, "{out:?} vs {want:?}");
        }
        // Clipping set on the inputs beforehand is replaced by S.
        let loose = inputs.clone().clip(100.0).unwrap();
        assert_eq!(dp.aggregate(&loose, &[7; 32]).unwrap(), out);
        assert_eq!(dp.noise_std(3), 0.0);
    }

    fn zeros_mean(d: usize, n: usize, dp: &DpFedAvg, seed: &[u8; 32]) -> Vec<f32> {
        let l = Layout::new(vec![TensorInfo::new("w", [d])]).unwrap();
        let z = vec![0.0f32; d];
        let views = (0..n).map(|k| l.view_flat(k, &z).unwrap()).collect();
        dp.aggregate(&Inputs::new(&l, views, vec![]).unwrap(), seed).unwrap()
    }

    #[test]
    fn noise_has_the_stated_spread() {
        // Four zero updates, S = 2, σ = 1.5: every output coordinate is pure
        // noise with std σ·S/n = 1.5·2/4 = 0.75. Over 100 000 coordinates
        // (two noise streams) the sample std is within ~0.5 % of that with
        // overwhelming probability; 2 % leaves a wide margin.
        let dp = DpFedAvg::new(2.0, 1.5).unwrap();
        let d = 100_000;
        let out = zeros_mean(d, 4, &dp, &[42; 32]);
        assert_eq!(dp.noise_std(4), 0.75);
        let mean = out.iter().map(|&v| f64::from(v)).sum::<f64>() / d as f64;
        let var = out.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / (d - 1) as f64;
        let std = var.sqrt();
        assert!((std / 0.75 - 1.0).abs() < 0.02, "std {std}");
        // The mean's own std is 0.75/√d ≈ 0.0024: 5 of those.
        assert!(mean.abs() < 0.012, "mean {mean}");
        // Gaussian shape: P(|z| < 1) = 0.6827.
        let inside = out.iter().filter(|v| v.abs() < 0.75).count() as f64 / d as f64;
        assert!((inside - 0.6827).abs() < 0.01, "{inside}");
        // The two streams differ.
        assert_ne!(out[..100], out[NOISE_CHUNK..NOISE_CHUNK + 100]);
    }

    #[test]
    fn the_seed_alone_decides_the_noise() {
        let dp = DpFedAvg::new(1.0, 1.0).unwrap();
        let d = 2 * NOISE_CHUNK + 3;
        let a = zeros_mean(d, 2, &dp, &[1; 32]);
        let b = zeros_mean(d, 2, &dp, &[1; 32]);
        assert_eq!(a, b);
        let mut other = [1; 32];
        other[31] = 2;
        let c = zeros_mean(d, 2, &dp, &other);
        assert!(a.iter().zip(&c).filter(|(x, y)| x != y).count() > d - 10);

        // Same result on one thread as on three.
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            assert_eq!(pool.install(|| zeros_mean(d, 2, &dp, &[1; 32])), a, "{threads} threads");
        }

        // The streaming path adds exactly the same noise.
        let mut mean = vec![0.0f32; d];
        dp.add_noise(&mut mean, 2, &[1; 32]);
        assert_eq!(mean, a);
    }

    #[test]
    fn parameters_and_empty_rounds_are_checked() {
        for (s, sigma) in [(0.0, 1.0), (-1.0, 1.0), (f64::NAN, 1.0), (f64::INFINITY, 1.0), (1.0, -0.1), (1.0, f64::NAN)]
        {
            let err = DpFedAvg::new(s, sigma).unwrap_err();
            assert!(matches!(err, AggregationError::InvalidParameter { .. }), "{s} {sigma}: {err}");
        }
        let l = Layout::new(vec![TensorInfo::new("w", [2])]).unwrap();
        let inputs = Inputs::new(&l, vec![], vec![]).unwrap();
        let err = DpFedAvg::new(1.0, 1.0).unwrap().aggregate(&inputs, &[0; 32]).unwrap_err();
        assert!(matches!(err, AggregationError::TooFewClients { needed: 1, got: 0, .. }), "{err}");
    }
}
