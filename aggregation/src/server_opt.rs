//! Server optimizers: how the coordinator moves the global model along the
//! round's averaged update.
//!
//! Every rule of this crate produces `Δ`, the (robust or weighted) average of
//! the clients' deltas `w_local − w_global`. Plain FedAvg adds it to the
//! model; the optimizers here treat `−Δ` as a pseudo-gradient instead and
//! keep momentum and second-moment state across rounds:
//!
//! - FedAvgM: Hsu et al. 2019, "Measuring the Effects of Non-Identical Data
//!   Distribution for Federated Visual Classification", server momentum.
//! - FedAdagrad, FedAdam, FedYogi: Reddi et al. 2021, "Adaptive Federated
//!   Optimization", Algorithm 2.
//!
//! The state is O(model) and lives in [`ServerState`], which a coordinator
//! can export as one flat `Vec<f32>` and import again in a later round or
//! after a restart.
//!
//! One file, one job: the optimizers' parameters and the state they step are
//! read together by every update rule below (about 440 lines); its tests,
//! beside them, make up the rest.

use rayon::prelude::*;

use crate::error::{AggregationError, Result};
use crate::kernels::{self, PAR_CHUNK};

/// First-moment decay β₁ used throughout Reddi et al. 2021's experiments.
pub const DEFAULT_BETA1: f32 = 0.9;
/// Second-moment decay β₂ used throughout Reddi et al. 2021's experiments.
pub const DEFAULT_BETA2: f32 = 0.99;
/// Adaptivity τ recommended by Reddi et al. 2021 (their default, 1e-3).
pub const DEFAULT_TAU: f32 = 1e-3;

/// A server optimizer and its hyper-parameters.
///
/// `Δ` below is the round's averaged client delta (`w_local − w_global`), `x`
/// the global model, `η` the server learning rate; every operation is
/// element-wise. Build the adaptive variants with [`ServerOptimizer::fed_adagrad`],
/// [`ServerOptimizer::fed_adam`] or [`ServerOptimizer::fed_yogi`] to get the
/// paper's defaults; [`ServerOptimizer::validate`] states every range, and
/// [`ServerState::new`] refuses an optimizer outside them.
///
/// None of the adaptive variants applies Adam's bias correction: Reddi et al.
/// 2021 (Algorithm 2) leave it out, and so do we. Instead the second moment
/// starts at `v₋₁ = τ²`, the smallest value the paper allows (`v₋₁ ≥ τ²`),
/// so the first steps are no larger than `η·|m|/(2τ)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ServerOptimizer {
    /// `x ← x + η·Δ`. With `lr = 1` this is McMahan et al. 2017's FedAvg.
    FedAvg {
        /// Server learning rate η > 0.
        lr: f32,
    },
    /// Server momentum (Hsu et al. 2019): `m ← β·m + Δ; x ← x + η·m`.
    FedAvgM {
        /// Server learning rate η > 0.
        lr: f32,
        /// Momentum β in `[0, 1)`.
        momentum: f32,
    },
    /// `m ← β₁·m + (1−β₁)·Δ; v ← v + Δ²; x ← x + η·m/(√v + τ)`.
    FedAdagrad {
        /// Server learning rate η > 0.
        lr: f32,
        /// First-moment decay β₁ in `[0, 1)`.
        beta1: f32,
        /// Adaptivity τ > 0: the floor of the denominator.
        tau: f32,
    },
    /// As FedAdagrad, with `v ← β₂·v + (1−β₂)·Δ²`.
    FedAdam {
        /// Server learning rate η > 0.
        lr: f32,
        /// First-moment decay β₁ in `[0, 1)`.
        beta1: f32,
        /// Second-moment decay β₂ in `[0, 1)`.
        beta2: f32,
        /// Adaptivity τ > 0.
        tau: f32,
    },
    /// As FedAdagrad, with `v ← v − (1−β₂)·Δ²·sign(v − Δ²)` (Zaheer et al.
    /// 2018's Yogi, as federated by Reddi et al. 2021), where `sign(0) = 0`.
    FedYogi {
        /// Server learning rate η > 0.
        lr: f32,
        /// First-moment decay β₁ in `[0, 1)`.
        beta1: f32,
        /// Second-moment decay β₂ in `[0, 1)`.
        beta2: f32,
        /// Adaptivity τ > 0.
        tau: f32,
    },
}

impl ServerOptimizer {
    /// FedAdagrad with learning rate `lr` and the paper's β₁ and τ.
    pub fn fed_adagrad(lr: f32) -> Self {
        Self::FedAdagrad { lr, beta1: DEFAULT_BETA1, tau: DEFAULT_TAU }
    }

    /// FedAdam with learning rate `lr` and the paper's β₁, β₂ and τ.
    pub fn fed_adam(lr: f32) -> Self {
        Self::FedAdam { lr, beta1: DEFAULT_BETA1, beta2: DEFAULT_BETA2, tau: DEFAULT_TAU }
    }

    /// FedYogi with learning rate `lr` and the paper's β₁, β₂ and τ.
    pub fn fed_yogi(lr: f32) -> Self {
        Self::FedYogi { lr, beta1: DEFAULT_BETA1, beta2: DEFAULT_BETA2, tau: DEFAULT_TAU }
    }

    /// The optimizer's name, as used in configuration and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::FedAvg { .. } => "fedavg",
            Self::FedAvgM { .. } => "fedavgm",
            Self::FedAdagrad { .. } => "fedadagrad",
            Self::FedAdam { .. } => "fedadam",
            Self::FedYogi { .. } => "fedyogi",
        }
    }

    /// Checks every hyper-parameter against its range: `lr` finite and
    /// positive; `momentum`, `beta1`, `beta2` in `[0, 1)`; `tau` finite and
    /// positive with `τ²` still a positive `f32` (τ ≳ 1e-22), since `τ²` is
    /// the initial second moment.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::FedAvg { lr } => check_lr(lr),
            Self::FedAvgM { lr, momentum } => {
                check_lr(lr)?;
                check_decay("momentum", momentum)
            }
            Self::FedAdagrad { lr, beta1, tau } => {
                check_lr(lr)?;
                check_decay("beta1", beta1)?;
                check_tau(tau)
            }
            Self::FedAdam { lr, beta1, beta2, tau } | Self::FedYogi { lr, beta1, beta2, tau } => {
                check_lr(lr)?;
                check_decay("beta1", beta1)?;
                check_decay("beta2", beta2)?;
                check_tau(tau)
            }
        }
    }

    /// How many model-sized buffers of state the optimizer keeps: 0 for
    /// FedAvg, 1 (`m`) for FedAvgM, 2 (`m`, `v`) for the adaptive ones.
    pub fn state_buffers(&self) -> usize {
        match self {
            Self::FedAvg { .. } => 0,
            Self::FedAvgM { .. } => 1,
            Self::FedAdagrad { .. } | Self::FedAdam { .. } | Self::FedYogi { .. } => 2,
        }
    }

    /// The initial second moment `v₋₁`, for the adaptive variants.
    fn initial_v(&self) -> Option<f32> {
        match *self {
            Self::FedAdagrad { tau, .. } | Self::FedAdam { tau, .. } | Self::FedYogi { tau, .. } => Some(tau * tau),
            Self::FedAvg { .. } | Self::FedAvgM { .. } => None,
        }
    }
}

fn check_lr(lr: f32) -> Result<()> {
    if lr.is_finite() && lr > 0.0 {
        Ok(())
    } else {
        Err(invalid("lr", format!("must be a positive finite number, got {lr}")))
    }
}

fn check_decay(name: &'static str, beta: f32) -> Result<()> {
    if (0.0..1.0).contains(&beta) { Ok(()) } else { Err(invalid(name, format!("must lie in [0, 1), got {beta}"))) }
}

fn check_tau(tau: f32) -> Result<()> {
    if tau.is_finite() && tau > 0.0 && (tau * tau).is_finite() && tau * tau > 0.0 {
        Ok(())
    } else {
        Err(invalid("tau", format!("must be positive with τ² a positive finite f32, got {tau}")))
    }
}

fn invalid(name: &'static str, reason: String) -> AggregationError {
    AggregationError::InvalidParameter { name, reason }
}

/// A server optimizer together with its per-coordinate state for a model of
/// fixed size.
///
/// The state is `m` (FedAvgM and the adaptive variants) and `v` (adaptive
/// variants only), each one model long. [`ServerState::export`] lays them end
/// to end so that a coordinator can persist them between rounds;
/// [`ServerState::import`] checks and restores them.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerState {
    optimizer: ServerOptimizer,
    dim: usize,
    /// First moment; empty for FedAvg.
    m: Vec<f32>,
    /// Second moment; empty unless adaptive.
    v: Vec<f32>,
}

impl ServerState {
    /// Fresh state for a model of `dim` parameters: `m = 0` and, for the
    /// adaptive variants, `v = τ²` (see [`ServerOptimizer`]).
    ///
    /// Fails with [`AggregationError::InvalidParameter`] when a
    /// hyper-parameter is out of range.
    pub fn new(optimizer: ServerOptimizer, dim: usize) -> Result<Self> {
        optimizer.validate()?;
        let m = if optimizer.state_buffers() >= 1 { vec![0.0; dim] } else { Vec::new() };
        let v = optimizer.initial_v().map_or_else(Vec::new, |v0| vec![v0; dim]);
        Ok(Self { optimizer, dim, m, v })
    }

    /// Restores state previously produced by [`ServerState::export`] for the
    /// same optimizer variant and model size.
    ///
    /// `state` must hold `optimizer.state_buffers() · dim` values, all finite,
    /// with every second-moment value non-negative (each update rule keeps
    /// `v ≥ 0`); anything else is refused with
    /// [`AggregationError::InvalidParameter`] rather than silently producing
    /// NaN steps later. Hyper-parameters may differ from the exporting run's
    /// (e.g. a changed learning rate), the variant may not.
    pub fn import(optimizer: ServerOptimizer, dim: usize, state: &[f32]) -> Result<Self> {
        optimizer.validate()?;
        let buffers = optimizer.state_buffers();
        let want = dim.checked_mul(buffers).ok_or_else(|| invalid("dim", format!("{dim} overflows")))?;
        if state.len() != want {
            return Err(invalid(
                "state",
                format!("{} holds {buffers} × {dim} = {want} values, got {}", optimizer.name(), state.len()),
            ));
        }
        if let Some(i) = kernels::first_non_finite(state) {
            return Err(invalid("state", format!("non-finite value at index {i}")));
        }
        let (m, v) = state.split_at(if buffers >= 1 { dim } else { 0 });
        if let Some(i) = v.iter().position(|&x| x < 0.0) {
            return Err(invalid("state", format!("negative second moment {} at index {i}", v[i])));
        }
        Ok(Self { optimizer, dim, m: m.to_vec(), v: v.to_vec() })
    }

    /// The state laid out flat: `m` then `v`, each `dim` long (empty for
    /// FedAvg, `m` only for FedAvgM).
    pub fn export(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.m.len() + self.v.len());
        out.extend_from_slice(&self.m);
        out.extend_from_slice(&self.v);
        out
    }

    /// The optimizer this state belongs to.
    pub fn optimizer(&self) -> &ServerOptimizer {
        &self.optimizer
    }

    /// Number of model parameters the state covers.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The first moment `m` (empty for FedAvg).
    pub fn first_moment(&self) -> &[f32] {
        &self.m
    }

    /// The second moment `v` (empty unless adaptive).
    pub fn second_moment(&self) -> &[f32] {
        &self.v
    }

    /// Applies one round: updates the state with the averaged delta `delta`
    /// and moves `global` in place, following the rule of
    /// [`ServerState::optimizer`].
    ///
    /// Fails with [`AggregationError::InvalidParameter`], leaving both
    /// `global` and the state untouched, when either slice's length differs
    /// from [`ServerState::dim`], when `delta` holds a NaN or ±Inf, or when
    /// the step would overflow `f32` somewhere (e.g. `Δ²` for `|Δ| > 1.8e19`)
    /// and so leave a non-finite model or state; the error names the first
    /// offending index. To keep that promise without copying the state, the
    /// step is computed twice: once to check, once to write.
    pub fn step(&mut self, global: &mut [f32], delta: &[f32]) -> Result<()> {
        for (name, len) in [("global", global.len()), ("delta", delta.len())] {
            if len != self.dim {
                return Err(invalid(name, format!("has {len} values, the state covers {}", self.dim)));
            }
        }
        if let Some(i) = par_first_non_finite(delta) {
            return Err(invalid("delta", format!("non-finite value {} at index {i}", delta[i])));
        }
        if let Some(i) = self.run::<false>(global, delta) {
            return Err(invalid(
                "delta",
                format!("value {} at index {i} would make the model or optimizer state overflow", delta[i]),
            ));
        }
        self.run::<true>(global, delta);
        Ok(())
    }

    /// Computes the step over every coordinate; writes it when `COMMIT`,
    /// otherwise returns the first index where any new value is not finite.
    fn run<const COMMIT: bool>(&mut self, global: &mut [f32], delta: &[f32]) -> Option<usize> {
        let (m, v) = (&mut self.m, &mut self.v);
        match self.optimizer {
            ServerOptimizer::FedAvg { lr } => for_each1::<COMMIT>(global, delta, |x, d| x + lr * d),
            // Hsu et al. 2019 (FedAvgM): m ← β·m + Δ; x ← x + η·m.
            ServerOptimizer::FedAvgM { lr, momentum } => for_each2::<COMMIT>(global, m, delta, |x, m, d| {
                let m = momentum * m + d;
                (x + lr * m, m)
            }),
            // Reddi et al. 2021, Algorithm 2, line "FedAdagrad": v_t = v_{t−1} + Δ_t².
            ServerOptimizer::FedAdagrad { lr, beta1, tau } => {
                adaptive::<COMMIT>(global, m, v, delta, lr, beta1, tau, |v, d2| v + d2)
            }
            // Algorithm 2, "FedAdam": v_t = β₂·v_{t−1} + (1−β₂)·Δ_t².
            ServerOptimizer::FedAdam { lr, beta1, beta2, tau } => {
                adaptive::<COMMIT>(global, m, v, delta, lr, beta1, tau, |v, d2| beta2 * v + (1.0 - beta2) * d2)
            }
            // Algorithm 2, "FedYogi": v_t = v_{t−1} − (1−β₂)·Δ_t²·sign(v_{t−1} − Δ_t²).
            ServerOptimizer::FedYogi { lr, beta1, beta2, tau } => {
                adaptive::<COMMIT>(global, m, v, delta, lr, beta1, tau, |v, d2| v - (1.0 - beta2) * d2 * sign(v - d2))
            }
        }
    }
}

/// The shared body of Reddi et al. 2021's Algorithm 2: `m ← β₁·m + (1−β₁)·Δ`,
/// `v ← second(v, Δ²)`, `x ← x + η·m/(√v + τ)`.
#[allow(clippy::too_many_arguments)]
fn adaptive<const COMMIT: bool>(
    global: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    delta: &[f32],
    lr: f32,
    beta1: f32,
    tau: f32,
    second: impl Fn(f32, f32) -> f32 + Sync,
) -> Option<usize> {
    global
        .par_chunks_mut(PAR_CHUNK)
        .zip(m.par_chunks_mut(PAR_CHUNK))
        .zip(v.par_chunks_mut(PAR_CHUNK))
        .zip(delta.par_chunks(PAR_CHUNK))
        .enumerate()
        .filter_map(|(c, (((x, m), v), d))| {
            let step = |x: f32, m: f32, v: f32, d: f32| {
                let m = beta1 * m + (1.0 - beta1) * d;
                let v = second(v, d * d);
                (x + lr * m / (v.sqrt() + tau), m, v)
            };
            let items = x.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(d);
            if COMMIT {
                for (((x, m), v), &d) in items {
                    (*x, *m, *v) = step(*x, *m, *v, d);
                }
                None
            } else {
                items
                    .map(|(((x, m), v), &d)| step(*x, *m, *v, d))
                    .position(|(x, m, v)| !(x.is_finite() && m.is_finite() && v.is_finite()))
                    .map(|i| c * PAR_CHUNK + i)
            }
        })
        .min()
}

/// `x ← f(x, Δ)` in parallel chunks, as [`adaptive`] for stateless rules.
fn for_each1<const COMMIT: bool>(
    global: &mut [f32],
    delta: &[f32],
    f: impl Fn(f32, f32) -> f32 + Sync,
) -> Option<usize> {
    global
        .par_chunks_mut(PAR_CHUNK)
        .zip(delta.par_chunks(PAR_CHUNK))
        .enumerate()
        .filter_map(|(c, (x, d))| {
            if COMMIT {
                x.iter_mut().zip(d).for_each(|(x, &d)| *x = f(*x, d));
                None
            } else {
                x.iter().zip(d).position(|(&x, &d)| !f(x, d).is_finite()).map(|i| c * PAR_CHUNK + i)
            }
        })
        .min()
}

/// `(x, m) ← f(x, m, Δ)` in parallel chunks, as [`adaptive`] for momentum.
fn for_each2<const COMMIT: bool>(
    global: &mut [f32],
    m: &mut [f32],
    delta: &[f32],
    f: impl Fn(f32, f32, f32) -> (f32, f32) + Sync,
) -> Option<usize> {
    global
        .par_chunks_mut(PAR_CHUNK)
        .zip(m.par_chunks_mut(PAR_CHUNK))
        .zip(delta.par_chunks(PAR_CHUNK))
        .enumerate()
        .filter_map(|(c, ((x, m), d))| {
            let items = x.iter_mut().zip(m.iter_mut()).zip(d);
            if COMMIT {
                for ((x, m), &d) in items {
                    (*x, *m) = f(*x, *m, d);
                }
                None
            } else {
                items
                    .map(|((x, m), &d)| f(*x, *m, d))
                    .position(|(x, m)| !(x.is_finite() && m.is_finite()))
                    .map(|i| c * PAR_CHUNK + i)
            }
        })
        .min()
}

/// The sign function of Yogi's update, with `sign(0) = 0` (unlike
/// `f32::signum`, which gives 1): when `v = Δ²` exactly, `v` stays.
#[inline]
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn par_first_non_finite(x: &[f32]) -> Option<usize> {
    x.par_chunks(PAR_CHUNK)
        .enumerate()
        .filter_map(|(c, chunk)| kernels::first_non_finite(chunk).map(|i| c * PAR_CHUNK + i))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(opt: ServerOptimizer, x0: &[f32], deltas: &[&[f32]]) -> (Vec<f32>, ServerState) {
        let mut state = ServerState::new(opt, x0.len()).unwrap();
        let mut x = x0.to_vec();
        for d in deltas {
            state.step(&mut x, d).unwrap();
        }
        (x, state)
    }

    #[test]
    fn fedavg_adds_the_scaled_delta() {
        // x = [1, 2] + 0.5·[2, −4] = [2, 0].
        let (x, state) = run(ServerOptimizer::FedAvg { lr: 0.5 }, &[1.0, 2.0], &[&[2.0, -4.0]]);
        assert_eq!(x, [2.0, 0.0]);
        assert!(state.export().is_empty());
    }

    #[test]
    fn fedavgm_by_hand() {
        // η = 1, β = 0.5, x₀ = 0.
        // Round 1, Δ = [2, −2]: m = [2, −2],            x = [2, −2].
        // Round 2, Δ = [0,  4]: m = [1, −1 + 4] = [1, 3], x = [3, 1].
        // Round 3, Δ = [0,  0]: m = [0.5, 1.5],         x = [3.5, 2.5].
        let opt = ServerOptimizer::FedAvgM { lr: 1.0, momentum: 0.5 };
        let (x, state) = run(opt, &[0.0, 0.0], &[&[2.0, -2.0], &[0.0, 4.0], &[0.0, 0.0]]);
        assert_eq!(x, [3.5, 2.5]);
        assert_eq!(state.first_moment(), [0.5, 1.5]);
        assert_eq!(state.export(), [0.5, 1.5]);
    }

    #[test]
    fn fedadagrad_by_hand() {
        // η = 1, β₁ = 0.5, τ = 0.75, so v₋₁ = τ² = 0.5625; x₀ = 0.
        // Round 1, Δ = [1, −1, 0]:
        //   m = 0.5·Δ = [0.5, −0.5, 0]
        //   v = 0.5625 + Δ² = [1.5625, 1.5625, 0.5625], √v = [1.25, 1.25, 0.75]
        //   x += m/(√v + 0.75) = [0.5/2, −0.5/2, 0] = [0.25, −0.25, 0]
        // Round 2, Δ = [3, −3, 0]:
        //   m = 0.5·m + 0.5·Δ = [0.25 + 1.5, −0.25 − 1.5, 0] = [1.75, −1.75, 0]
        //   v = 1.5625 + 9 = 10.5625, √v = 3.25
        //   x += 1.75/(3.25 + 0.75) = 0.4375 → x = [0.6875, −0.6875, 0]
        // Every number is a short binary fraction, so f32 gets them exactly.
        let opt = ServerOptimizer::FedAdagrad { lr: 1.0, beta1: 0.5, tau: 0.75 };
        let (x, state) = run(opt, &[0.0; 3], &[&[1.0, -1.0, 0.0], &[3.0, -3.0, 0.0]]);
        assert_eq!(x, [0.6875, -0.6875, 0.0]);
        assert_eq!(state.first_moment(), [1.75, -1.75, 0.0]);
        assert_eq!(state.second_moment(), [10.5625, 10.5625, 0.5625]);
    }

    #[test]
    fn fedadam_by_hand() {
        // η = 1, β₁ = 0.5, β₂ = 0.75, τ = 2, so v₋₁ = 4; x₀ = 0.
        // Round 1, Δ = [2, 0]:
        //   m = [1, 0]; v = 0.75·4 + 0.25·[4, 0] = [4, 3]
        //   x += [1/(2 + 2), 0] = [0.25, 0]
        // Round 2, Δ = [−2, 0]:
        //   m = [0.5 − 1, 0] = [−0.5, 0]; v = [0.75·4 + 0.25·4, 0.75·3] = [4, 2.25]
        //   x += [−0.5/4, 0] → x = [0.125, 0]
        // The idle coordinate's v decays geometrically toward 0 (4 → 3 → 2.25).
        let opt = ServerOptimizer::FedAdam { lr: 1.0, beta1: 0.5, beta2: 0.75, tau: 2.0 };
        let (x, state) = run(opt, &[0.0; 2], &[&[2.0, 0.0], &[-2.0, 0.0]]);
        assert_eq!(x, [0.125, 0.0]);
        assert_eq!(state.first_moment(), [-0.5, 0.0]);
        assert_eq!(state.second_moment(), [4.0, 2.25]);
    }

    #[test]
    fn fedyogi_by_hand() {
        // η = 1, β₁ = 0.5, β₂ = 0.75, τ = 2, so v₋₁ = 4; x₀ = 0.
        // Round 1, Δ = [2, 0, 3]:
        //   m = [1, 0, 1.5]
        //   v: coord 0: v − Δ² = 0, sign 0 → v = 4
        //      coord 1: Δ² = 0 → v = 4 (Adam would decay it to 3)
        //      coord 2: v − Δ² = −5 < 0 → v = 4 + 0.25·9 = 6.25, √v = 2.5
        //   x += [1/4, 0, 1.5/4.5] = [0.25, 0, 1/3]
        // Round 2, Δ = [1, 0, 0]:
        //   m = [0.5 + 0.5, 0, 0.75] = [1, 0, 0.75]
        //   v: coord 0: 4 − 1 > 0 → v = 4 − 0.25·1 = 3.75 (additive; Adam: 3.25)
        //      coord 2: Δ² = 0 → v stays 6.25
        //   x += [1/(√3.75 + 2), 0, 0.75/4.5] ≈ [1/3.9364917, 0, 1/6]
        //   x ≈ [0.25 + 0.2540333, 0, 1/3 + 1/6] = [0.5040333, 0, 0.5]
        let opt = ServerOptimizer::FedYogi { lr: 1.0, beta1: 0.5, beta2: 0.75, tau: 2.0 };
        let (x, state) = run(opt, &[0.0; 3], &[&[2.0, 0.0, 3.0]]);
        assert_eq!(x, [0.25, 0.0, 1.0 / 3.0]);
        assert_eq!(state.second_moment(), [4.0, 4.0, 6.25]);
        let (x, state) = run(opt, &[0.0; 3], &[&[2.0, 0.0, 3.0], &[1.0, 0.0, 0.0]]);
        assert_eq!(state.second_moment(), [3.75, 4.0, 6.25]);
        assert_eq!(state.first_moment(), [1.0, 0.0, 0.75]);
        for (got, want) in x.iter().zip([0.504_033_3, 0.0, 0.5]) {
            assert!((got - want).abs() < 1e-6, "{x:?}");
        }
    }

    #[test]
    fn paper_defaults_and_fresh_state() {
        let opt = ServerOptimizer::fed_yogi(0.01);
        assert_eq!(opt, ServerOptimizer::FedYogi { lr: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
        assert_eq!(ServerOptimizer::fed_adagrad(0.1), ServerOptimizer::FedAdagrad { lr: 0.1, beta1: 0.9, tau: 1e-3 });
        let state = ServerState::new(ServerOptimizer::fed_adam(0.1), 3).unwrap();
        assert_eq!(state.first_moment(), [0.0; 3]);
        assert_eq!(state.second_moment(), [1e-3f32 * 1e-3; 3]);
        assert_eq!(state.export().len(), 6);
    }

    #[test]
    fn out_of_range_hyper_parameters_are_refused() {
        let bad = [
            ServerOptimizer::FedAvg { lr: 0.0 },
            ServerOptimizer::FedAvg { lr: f32::NAN },
            ServerOptimizer::FedAvg { lr: f32::INFINITY },
            ServerOptimizer::FedAvgM { lr: 1.0, momentum: 1.0 },
            ServerOptimizer::FedAvgM { lr: 1.0, momentum: -0.1 },
            ServerOptimizer::FedAdagrad { lr: 1.0, beta1: f32::NAN, tau: 1e-3 },
            ServerOptimizer::FedAdagrad { lr: 1.0, beta1: 0.9, tau: 0.0 },
            // τ² underflows to zero in f32, so v₋₁ would not be ≥ τ² > 0.
            ServerOptimizer::FedAdam { lr: 1.0, beta1: 0.9, beta2: 0.99, tau: 1e-30 },
            ServerOptimizer::FedAdam { lr: 1.0, beta1: 0.9, beta2: 1.0, tau: 1e-3 },
            ServerOptimizer::FedYogi { lr: -1.0, beta1: 0.9, beta2: 0.99, tau: 1e-3 },
            ServerOptimizer::FedYogi { lr: 1.0, beta1: 0.9, beta2: 0.99, tau: f32::INFINITY },
        ];
        for opt in bad {
            let err = ServerState::new(opt, 4).unwrap_err();
            assert!(matches!(err, AggregationError::InvalidParameter { .. }), "{opt:?}: {err}");
        }
        // The edges of the ranges are accepted.
        for opt in [
            ServerOptimizer::FedAvgM { lr: 1.0, momentum: 0.0 },
            ServerOptimizer::FedAdam { lr: 1e-9, beta1: 0.0, beta2: 0.0, tau: 1e-18 },
        ] {
            ServerState::new(opt, 4).unwrap();
        }
    }

    #[test]
    fn a_bad_step_changes_nothing() {
        let (mut x, mut state) = run(ServerOptimizer::fed_adam(0.1), &[1.0, 2.0, 3.0], &[&[0.5, -0.5, 1.0]]);
        let (x0, s0) = (x.clone(), state.clone());
        let err = state.step(&mut x, &[0.0, f32::NAN, f32::INFINITY]).unwrap_err();
        assert!(err.to_string().contains("index 1"), "{err}");
        let err = state.step(&mut x, &[0.0, 1.0]).unwrap_err();
        assert!(matches!(err, AggregationError::InvalidParameter { name: "delta", .. }), "{err}");
        let err = state.step(&mut x[..2], &[0.0, 1.0, 2.0]).unwrap_err();
        assert!(matches!(err, AggregationError::InvalidParameter { name: "global", .. }), "{err}");
        // Finite, but Δ² = 1e40 overflows f32.
        let err = state.step(&mut x, &[0.0, 0.0, 1e20]).unwrap_err();
        assert!(err.to_string().contains("index 2 would make"), "{err}");
        assert_eq!((x, state), (x0, s0));

        // Overflow of the model itself, and of the momentum, likewise.
        let mut fedavg = ServerState::new(ServerOptimizer::FedAvg { lr: 1.0 }, 2).unwrap();
        let mut x = [3e38, 0.0];
        fedavg.step(&mut x, &[0.0, 1e38]).unwrap();
        assert!(fedavg.step(&mut x, &[1e38, 0.0]).is_err()); // 4e38 > f32::MAX
        assert_eq!(x, [3e38, 1e38]);
        let mut heavy = ServerState::new(ServerOptimizer::FedAvgM { lr: 1e-30, momentum: 0.9 }, 1).unwrap();
        let mut x = [0.0];
        heavy.step(&mut x, &[3e38]).unwrap();
        assert!(heavy.step(&mut x, &[3e38]).is_err()); // m = 0.9·3e38 + 3e38 overflows
        assert_eq!(heavy.first_moment(), [3e38]);
    }

    #[test]
    fn exported_state_resumes_exactly() {
        let opt = ServerOptimizer::fed_yogi(0.05);
        let deltas: [&[f32]; 3] = [&[0.1, -0.2, 0.3], &[0.0, 0.4, -0.1], &[-0.3, 0.2, 0.2]];
        let (mut x, mut a) = run(opt, &[1.0, 1.0, 1.0], &deltas);
        let saved = a.export();
        let mut b = ServerState::import(opt, 3, &saved).unwrap();
        assert_eq!(a, b);
        let mut y = x.clone();
        a.step(&mut x, &[0.5, 0.5, -0.5]).unwrap();
        b.step(&mut y, &[0.5, 0.5, -0.5]).unwrap();
        assert_eq!(x, y);

        // A new learning rate may be imported; a different variant may not.
        ServerState::import(ServerOptimizer::fed_yogi(0.5), 3, &saved).unwrap();
        let momentum = ServerOptimizer::FedAvgM { lr: 1.0, momentum: 0.9 };
        assert!(ServerState::import(momentum, 3, &saved).is_err());
        assert!(ServerState::import(opt, 4, &saved).is_err());
        let mut bad = saved.clone();
        bad[4] = -1.0; // a second-moment value
        assert!(ServerState::import(opt, 3, &bad).unwrap_err().to_string().contains("negative"));
        bad[4] = f32::NAN;
        assert!(ServerState::import(opt, 3, &bad).is_err());
        // A negative first moment is fine.
        bad[4] = 1.0;
        bad[0] = -1.0;
        ServerState::import(opt, 3, &bad).unwrap();
    }

    #[test]
    fn chunked_updates_match_a_scalar_reference() {
        let dim = 2 * PAR_CHUNK + 5;
        let opt = ServerOptimizer::FedAdam { lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 };
        let delta: Vec<f32> = (0..dim).map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0).collect();
        let mut x = vec![0.5f32; dim];
        let mut state = ServerState::new(opt, dim).unwrap();
        state.step(&mut x, &delta).unwrap();
        state.step(&mut x, &delta).unwrap();
        for i in [0, PAR_CHUNK - 1, PAR_CHUNK, dim - 1] {
            let (mut xi, mut m, mut v) = (0.5f32, 0.0f32, 1e-3f32 * 1e-3f32);
            for _ in 0..2 {
                let d = delta[i];
                m = 0.9 * m + (1.0 - 0.9) * d;
                v = 0.99 * v + (1.0 - 0.99) * (d * d);
                xi += 0.1 * m / (v.sqrt() + 1e-3);
            }
            assert_eq!((x[i], state.first_moment()[i], state.second_moment()[i]), (xi, m, v), "{i}");
        }
    }
}
