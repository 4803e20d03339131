//! One entry point for every rule, so callers can take the rule as data.

use crate::coordinate;
use crate::error::Result;
use crate::fedavg;
use crate::inputs::Inputs;
use crate::krum;

/// An aggregation rule and its parameters.
///
/// A task states its rule as the protocol's
/// [`AggregationRule`](starling_protocol::AggregationRule), which also says how
/// many updates each rule needs
/// ([`min_clients`](starling_protocol::AggregationRule::min_clients)); convert
/// it with [`Rule::try_from`] or [`TaskRule::new`](crate::TaskRule::new).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Sample-weighted mean (McMahan et al. 2017).
    FedAvg,
    /// Coordinate-wise median.
    Median,
    /// Coordinate-wise trimmed mean, cutting `⌊β·n⌋` from each end.
    TrimmedMean {
        /// Trim fraction per end, in `[0, 0.5)`.
        beta: f64,
    },
    /// Krum, tolerating `byzantine` bad updates.
    Krum {
        /// Assumed number of Byzantine updates `f`; needs `n ≥ 2f + 3`.
        byzantine: usize,
    },
    /// Multi-Krum: weighted mean of the `select` best-scored updates.
    MultiKrum {
        /// Assumed number of Byzantine updates `f`; needs `n ≥ 2f + 3`.
        byzantine: usize,
        /// How many updates to average, `1 ≤ m ≤ n`.
        select: usize,
    },
    /// Bulyan over Krum.
    Bulyan {
        /// Assumed number of Byzantine updates `f`; needs `n ≥ 4f + 3`.
        byzantine: usize,
    },
}

impl Rule {
    /// The rule's name as the command line spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::FedAvg => "fedavg",
            Rule::Median => "median",
            Rule::TrimmedMean { .. } => "trimmed-mean",
            Rule::Krum { .. } => "krum",
            Rule::MultiKrum { .. } => "multi-krum",
            Rule::Bulyan { .. } => "bulyan",
        }
    }
}

/// The result of [`aggregate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The aggregated values, flat in layout order.
    pub model: Vec<f32>,
    /// For selection rules (Krum, Multi-Krum, Bulyan): the updates used, best first.
    pub selected: Option<Vec<usize>>,
    /// For selection rules: every update's Krum score.
    pub scores: Option<Vec<f64>>,
}

impl From<krum::Selection> for Aggregate {
    fn from(s: krum::Selection) -> Self {
        Self { model: s.model, selected: Some(s.selected), scores: Some(s.scores) }
    }
}

/// Applies `rule` to `inputs`.
pub fn aggregate(rule: &Rule, inputs: &Inputs<'_>) -> Result<Aggregate> {
    aggregate_into(rule, inputs, Vec::new())
}

/// Like [`aggregate`], writing the model into `buffer` (resized as needed).
///
/// A server that aggregates round after round should pass last round's
/// buffer back: fresh memory for a large model costs page faults that can
/// take longer than the aggregation itself.
pub fn aggregate_into(rule: &Rule, inputs: &Inputs<'_>, buffer: Vec<f32>) -> Result<Aggregate> {
    let plain = |model| Aggregate { model, selected: None, scores: None };
    match *rule {
        Rule::FedAvg => {
            let all: Vec<usize> = (0..inputs.len()).collect();
            Ok(plain(fedavg::weighted_mean(inputs, &all, buffer)?))
        }
        Rule::Median => coordinate::median_into(inputs, buffer).map(plain),
        Rule::TrimmedMean { beta } => coordinate::trimmed_mean_into(inputs, beta, buffer).map(plain),
        Rule::Krum { byzantine } => krum::krum_into(inputs, byzantine, buffer).map(Into::into),
        Rule::MultiKrum { byzantine, select } => {
            krum::multi_krum_into(inputs, byzantine, select, buffer).map(Into::into)
        }
        Rule::Bulyan { byzantine } => krum::bulyan_into(inputs, byzantine, buffer).map(Into::into),
    }
}
