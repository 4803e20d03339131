//! `--rule` and its parameters: the one spelling of the aggregation rules on
//! the command line, for `task create` and for `aggregate` and `simulate`,
//! which run every rule but `best` (they have no validators' scores).

use anyhow::{Context, Result};
use clap::ValueEnum;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use starling_protocol::AggregationRule;

/// Which rule to apply (the protocol's `AggregationRule`, by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RuleName {
    /// Sample-weighted mean (McMahan et al. 2017).
    Fedavg,
    /// Coordinate-wise median.
    Median,
    /// Coordinate-wise trimmed mean (see --beta).
    TrimmedMean,
    /// Krum (see --byzantine).
    Krum,
    /// Multi-Krum (see --byzantine, --select).
    MultiKrum,
    /// Bulyan (see --byzantine).
    Bulyan,
    /// Only the best-scored submission: a competition.
    Best,
}

impl RuleName {
    /// The rule with these parameters; `select` is needed for multi-krum only
    /// and its absence is an error there.
    pub(crate) fn with(self, beta: f64, byzantine: u32, select: Option<u32>) -> Result<AggregationRule> {
        Ok(match self {
            RuleName::Fedavg => AggregationRule::FedAvg,
            RuleName::Median => AggregationRule::Median,
            RuleName::TrimmedMean => AggregationRule::TrimmedMean { beta },
            RuleName::Krum => AggregationRule::Krum { byzantine },
            RuleName::MultiKrum => {
                let select = select.context("--rule multi-krum needs --select N")?;
                AggregationRule::MultiKrum { byzantine, select }
            }
            RuleName::Bulyan => AggregationRule::Bulyan { byzantine },
            RuleName::Best => AggregationRule::Best,
        })
    }

    /// The name as `--rule` takes it.
    pub(crate) fn flag_name(self) -> String {
        self.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
    }
}

/// `--rule` for commands that aggregate without scores: every [`RuleName`]
/// but `best`, which is left out of the help and refused with a reason.
fn scoreless_rule() -> impl TypedValueParser<Value = RuleName> {
    let values = RuleName::value_variants()
        .iter()
        .filter_map(|rule| rule.to_possible_value().map(|value| value.hide(*rule == RuleName::Best)));
    PossibleValuesParser::new(values).try_map(|name| match RuleName::from_str(&name, false) {
        Ok(RuleName::Best) => Err("best applies to tasks only (starling task create)".to_owned()),
        parsed => parsed,
    })
}

/// A rule and its parameters, as `aggregate` and `simulate` both take them.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RuleArgs {
    /// The aggregation rule.
    #[arg(long, value_parser = scoreless_rule(), default_value = "fedavg")]
    pub(crate) rule: RuleName,
    /// Trimmed mean: fraction cut from each end, in [0, 0.5).
    #[arg(long, default_value_t = 0.1)]
    pub(crate) beta: f64,
    /// Krum, Multi-Krum, Bulyan: the number of Byzantine updates to tolerate.
    #[arg(long, default_value_t = 1)]
    pub(crate) byzantine: u32,
    /// Multi-Krum: how many best-scored updates to average. Default: n − f.
    #[arg(long)]
    pub(crate) select: Option<u32>,
    /// Clip every update to this L2 norm before aggregating.
    #[arg(long)]
    pub(crate) clip: Option<f64>,
}

impl RuleArgs {
    /// The rule for `n` updates per aggregation (Multi-Krum's default
    /// selection depends on it).
    pub(crate) fn to_rule(&self, n: usize) -> Result<AggregationRule> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.rule.with(self.beta, self.byzantine, Some(self.select.unwrap_or(n.saturating_sub(self.byzantine))))
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Debug, Parser)]
    struct Aggregate {
        #[command(flatten)]
        rules: RuleArgs,
    }

    #[test]
    fn aggregate_takes_every_rule_but_best() {
        let parse = |rule: &str| Aggregate::try_parse_from(["aggregate", "--rule", rule]).map(|a| a.rules.rule);
        assert_eq!(parse("multi-krum").unwrap(), RuleName::MultiKrum);
        assert_eq!(Aggregate::try_parse_from(["aggregate"]).unwrap().rules.rule, RuleName::Fedavg);
        let err = parse("best").unwrap_err().to_string();
        assert!(err.contains("best applies to tasks only"), "{err}");
        let err = parse("mean").unwrap_err().to_string();
        assert!(err.contains("[possible values: fedavg, median, trimmed-mean, krum, multi-krum, bulyan]"), "{err}");
        let help = Aggregate::command().render_long_help().to_string();
        assert!(help.contains("- bulyan") && !help.contains("- best"), "{help}");
    }

    #[test]
    fn multi_krum_selects_n_minus_f_unless_told() {
        let rules = |args: &[&str]| {
            Aggregate::try_parse_from(["aggregate", "--rule", "multi-krum"].iter().chain(args)).unwrap().rules
        };
        assert_eq!(
            rules(&["--byzantine", "2"]).to_rule(9).unwrap(),
            AggregationRule::MultiKrum { byzantine: 2, select: 7 }
        );
        assert_eq!(
            rules(&["--select", "3"]).to_rule(9).unwrap(),
            AggregationRule::MultiKrum { byzantine: 1, select: 3 }
        );
        let err = RuleName::MultiKrum.with(0.1, 1, None).unwrap_err();
        assert_eq!(err.to_string(), "--rule multi-krum needs --select N");
        assert_eq!(RuleName::Best.with(0.1, 1, None).unwrap(), AggregationRule::Best);
    }

    #[test]
    fn flag_names_are_the_protocol_names() {
        for &rule in RuleName::value_variants() {
            assert_eq!(rule.flag_name(), rule.with(0.1, 1, Some(2)).unwrap().name());
        }
    }
}
