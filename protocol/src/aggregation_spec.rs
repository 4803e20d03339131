//! How a task combines its accepted updates: the rule, optional norm clipping
//! and an optional server optimizer.
//!
//! These are plain data with range checks; the `aggregation` crate does the
//! math. Postcard encodes enum variants by position, so new variants go at the
//! end of each enum.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An aggregation rule and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AggregationRule {
    /// Sample-weighted mean of the updates (McMahan et al. 2017).
    #[serde(rename = "fedavg")]
    FedAvg,
    /// Coordinate-wise median.
    Median,
    /// Coordinate-wise trimmed mean, cutting `⌊β·n⌋` values from each end.
    TrimmedMean {
        /// Trim fraction per end, in `[0, 0.5)`.
        beta: f64,
    },
    /// Krum (Blanchard et al. 2017): keep the update closest to its neighbours.
    Krum {
        /// Assumed number of Byzantine updates `f`; needs `n ≥ 2f + 3`.
        byzantine: u32,
    },
    /// Multi-Krum: average the `select` best-scored updates.
    MultiKrum {
        /// Assumed number of Byzantine updates `f`; needs `n ≥ 2f + 3`.
        byzantine: u32,
        /// How many updates to average, at least 1 (and at most `n`).
        select: u32,
    },
    /// Bulyan (El Mhamdi et al. 2018) over Krum.
    Bulyan {
        /// Assumed number of Byzantine updates `f`; needs `n ≥ 4f + 3`.
        byzantine: u32,
    },
    /// Keep only the submission with the best consensus score: a competition
    /// (arena) rather than a federation.
    Best,
}

impl AggregationRule {
    /// The rule's name as the command line and the JSON API spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::FedAvg => "fedavg",
            Self::Median => "median",
            Self::TrimmedMean { .. } => "trimmed-mean",
            Self::Krum { .. } => "krum",
            Self::MultiKrum { .. } => "multi-krum",
            Self::Bulyan { .. } => "bulyan",
            Self::Best => "best",
        }
    }

    /// The fewest accepted updates a round needs for this rule to apply: the
    /// workspace's one statement of it, matching what the aggregation crate
    /// checks before it runs a rule. Krum needs `n ≥ 2f + 3`; Multi-Krum that
    /// and at least the `select` updates it averages; Bulyan `n ≥ 4f + 3`.
    pub fn min_clients(&self) -> u64 {
        match *self {
            Self::FedAvg | Self::Median | Self::TrimmedMean { .. } | Self::Best => 1,
            Self::Krum { byzantine } => 2 * u64::from(byzantine) + 3,
            Self::MultiKrum { byzantine, select } => (2 * u64::from(byzantine) + 3).max(u64::from(select)),
            Self::Bulyan { byzantine } => 4 * u64::from(byzantine) + 3,
        }
    }

    /// Checks the parameters' ranges.
    pub fn validate(&self) -> Result<(), AggregationSpecError> {
        match *self {
            // `!(0 ≤ β < 0.5)` also catches NaN.
            Self::TrimmedMean { beta } if !(0.0..0.5).contains(&beta) => {
                Err(AggregationSpecError::TrimmedMeanBeta { beta })
            }
            Self::MultiKrum { select: 0, .. } => Err(AggregationSpecError::MultiKrumSelectsNothing),
            _ => Ok(()),
        }
    }
}

/// A server-side optimizer applied to the aggregated update (Reddi et al.
/// 2021, "Adaptive Federated Optimization"; FedAvgM from Hsu et al. 2019).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ServerOptimizer {
    /// Server momentum.
    #[serde(rename = "fedavgm")]
    FedAvgM {
        /// Server learning rate, `> 0`.
        server_lr: f64,
        /// Momentum, in `[0, 1)`.
        momentum: f64,
    },
    /// Adagrad on the server.
    #[serde(rename = "fedadagrad")]
    FedAdagrad {
        /// Server learning rate, `> 0`.
        server_lr: f64,
        /// Adaptivity (denominator offset) τ, `> 0`.
        tau: f64,
    },
    /// Adam on the server.
    #[serde(rename = "fedadam")]
    FedAdam {
        /// Server learning rate, `> 0`.
        server_lr: f64,
        /// First-moment decay, in `[0, 1)`.
        beta1: f64,
        /// Second-moment decay, in `[0, 1)`.
        beta2: f64,
        /// Adaptivity (denominator offset) τ, `> 0`.
        tau: f64,
    },
    /// Yogi on the server.
    #[serde(rename = "fedyogi")]
    FedYogi {
        /// Server learning rate, `> 0`.
        server_lr: f64,
        /// First-moment decay, in `[0, 1)`.
        beta1: f64,
        /// Second-moment decay, in `[0, 1)`.
        beta2: f64,
        /// Adaptivity (denominator offset) τ, `> 0`.
        tau: f64,
    },
}

impl ServerOptimizer {
    /// The optimizer's name as the command line and the JSON API spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::FedAvgM { .. } => "fedavgm",
            Self::FedAdagrad { .. } => "fedadagrad",
            Self::FedAdam { .. } => "fedadam",
            Self::FedYogi { .. } => "fedyogi",
        }
    }

    /// Checks the parameters' ranges.
    pub fn validate(&self) -> Result<(), AggregationSpecError> {
        let check = |parameter, value, ok: bool, expected| {
            if ok {
                Ok(())
            } else {
                Err(AggregationSpecError::OptimizerParameter { optimizer: self.name(), parameter, value, expected })
            }
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let decay = |v: f64| (0.0..1.0).contains(&v);
        match *self {
            Self::FedAvgM { server_lr, momentum } => {
                check("server_lr", server_lr, positive(server_lr), "> 0")?;
                check("momentum", momentum, decay(momentum), "in [0, 1)")
            }
            Self::FedAdagrad { server_lr, tau } => {
                check("server_lr", server_lr, positive(server_lr), "> 0")?;
                check("tau", tau, positive(tau), "> 0")
            }
            Self::FedAdam { server_lr, beta1, beta2, tau } | Self::FedYogi { server_lr, beta1, beta2, tau } => {
                check("server_lr", server_lr, positive(server_lr), "> 0")?;
                check("beta1", beta1, decay(beta1), "in [0, 1)")?;
                check("beta2", beta2, decay(beta2), "in [0, 1)")?;
                check("tau", tau, positive(tau), "> 0")
            }
        }
    }
}

/// The full aggregation setting of a task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AggregationSpec {
    /// How accepted updates are combined.
    pub rule: AggregationRule,
    /// If set, each update is scaled down to at most this L2 norm before
    /// aggregation. Must be finite and `> 0`.
    pub norm_clip: Option<f64>,
    /// If set, the aggregate is applied through this optimizer instead of
    /// being added to the global model as is.
    pub server_optimizer: Option<ServerOptimizer>,
}

impl AggregationSpec {
    /// Plain rule, no clipping, no server optimizer.
    pub fn plain(rule: AggregationRule) -> Self {
        Self { rule, norm_clip: None, server_optimizer: None }
    }

    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), AggregationSpecError> {
        self.rule.validate()?;
        if let Some(clip) = self.norm_clip
            && !(clip.is_finite() && clip > 0.0)
        {
            return Err(AggregationSpecError::NormClip { value: clip });
        }
        if let Some(optimizer) = &self.server_optimizer {
            optimizer.validate()?;
        }
        Ok(())
    }
}

/// An aggregation parameter out of range.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AggregationSpecError {
    /// Trimmed mean's β must lie in `[0, 0.5)`: at 0.5 nothing would remain.
    #[error("trimmed-mean beta must be in [0, 0.5), got {beta}")]
    TrimmedMeanBeta {
        /// The rejected β.
        beta: f64,
    },
    /// Multi-Krum must select at least one update.
    #[error("multi-krum must select at least one update")]
    MultiKrumSelectsNothing,
    /// The norm clip must be a finite positive number.
    #[error("norm clip must be finite and > 0, got {value}")]
    NormClip {
        /// The rejected bound.
        value: f64,
    },
    /// A server optimizer parameter is out of range.
    #[error("{optimizer}: {parameter} must be {expected}, got {value}")]
    OptimizerParameter {
        /// The optimizer's name.
        optimizer: &'static str,
        /// The parameter's name.
        parameter: &'static str,
        /// The rejected value.
        value: f64,
        /// The accepted range, in words.
        expected: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_mean_beta_range() {
        for beta in [0.0, 0.1, 0.499] {
            assert_eq!(AggregationRule::TrimmedMean { beta }.validate(), Ok(()));
        }
        for beta in [-0.1, 0.5, 1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                AggregationRule::TrimmedMean { beta }.validate(),
                Err(AggregationSpecError::TrimmedMeanBeta { .. })
            ));
        }
    }

    #[test]
    fn multi_krum_needs_a_selection() {
        assert_eq!(
            AggregationRule::MultiKrum { byzantine: 1, select: 0 }.validate(),
            Err(AggregationSpecError::MultiKrumSelectsNothing)
        );
    }

    #[test]
    fn min_clients() {
        assert_eq!(AggregationRule::FedAvg.min_clients(), 1);
        assert_eq!(AggregationRule::Krum { byzantine: 2 }.min_clients(), 7);
        assert_eq!(AggregationRule::MultiKrum { byzantine: 1, select: 9 }.min_clients(), 9);
        assert_eq!(AggregationRule::Bulyan { byzantine: 1 }.min_clients(), 7);
        assert_eq!(AggregationRule::Bulyan { byzantine: u32::MAX }.min_clients(), 4 * u64::from(u32::MAX) + 3);
    }

    #[test]
    fn norm_clip_must_be_positive() {
        let mut spec = AggregationSpec::plain(AggregationRule::FedAvg);
        spec.norm_clip = Some(0.0);
        assert!(matches!(spec.validate(), Err(AggregationSpecError::NormClip { .. })));
        spec.norm_clip = Some(f64::NAN);
        assert!(matches!(spec.validate(), Err(AggregationSpecError::NormClip { .. })));
        spec.norm_clip = Some(10.0);
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn optimizer_parameters_are_named() {
        let adam = ServerOptimizer::FedAdam { server_lr: 0.01, beta1: 0.9, beta2: 1.0, tau: 1e-3 };
        let err = adam.validate().unwrap_err();
        assert_eq!(err.to_string(), "fedadam: beta2 must be in [0, 1), got 1");
        let momentum = ServerOptimizer::FedAvgM { server_lr: 0.0, momentum: 0.9 };
        assert!(matches!(
            momentum.validate(),
            Err(AggregationSpecError::OptimizerParameter { parameter: "server_lr", .. })
        ));
        let yogi = ServerOptimizer::FedYogi { server_lr: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 };
        assert_eq!(yogi.validate(), Ok(()));
    }

    #[test]
    fn rule_names_match_serde() {
        let json = serde_json::to_string(&AggregationRule::TrimmedMean { beta: 0.1 }).unwrap();
        assert_eq!(json, r#"{"trimmed-mean":{"beta":0.1}}"#);
        assert_eq!(serde_json::to_string(&AggregationRule::FedAvg).unwrap(), "\"fedavg\"");
        let adam = ServerOptimizer::FedAdam { server_lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 0.001 };
        assert!(serde_json::to_string(&adam).unwrap().starts_with(r#"{"fedadam":"#));
    }
}
