//! A task's rule and server optimizer, as the protocol states them
//! ([`AggregationRule`], [`starling_protocol::ServerOptimizer`]), turned into
//! what this crate runs: the one place that maps one onto the other.
//!
//! The protocol's rule carries `u32` counts and one rule this crate has no
//! function for, `Best`: a competition keeps the best-scored submission, which
//! is FedAvg over that one update. [`TaskRule`] says so explicitly; a plain
//! [`Rule`] refuses `Best`, so a caller without scores cannot run it by mistake.

use starling_protocol::AggregationRule;

use crate::error::{AggregationError, Result};
use crate::rule::Rule;
use crate::server_opt::ServerOptimizer;

impl From<starling_protocol::ServerOptimizer> for ServerOptimizer {
    /// The task's server optimizer, its hyper-parameters narrowed from the
    /// wire's `f64` to the engine's `f32` (rounded to nearest). A value the
    /// narrowing takes out of range (a learning rate below `f32`'s smallest
    /// positive value) is refused where the optimizer is built, by
    /// [`ServerOptimizer::validate`], as any other. The protocol's FedAdagrad
    /// names no β₁: it takes the paper's ([`crate::server_opt::DEFAULT_BETA1`]).
    fn from(optimizer: starling_protocol::ServerOptimizer) -> Self {
        use starling_protocol::ServerOptimizer as Task;
        let f = |value: f64| value as f32;
        match optimizer {
            Task::FedAvgM { server_lr, momentum } => Self::FedAvgM { lr: f(server_lr), momentum: f(momentum) },
            Task::FedAdagrad { server_lr, tau } => {
                Self::FedAdagrad { lr: f(server_lr), beta1: crate::server_opt::DEFAULT_BETA1, tau: f(tau) }
            }
            Task::FedAdam { server_lr, beta1, beta2, tau } => {
                Self::FedAdam { lr: f(server_lr), beta1: f(beta1), beta2: f(beta2), tau: f(tau) }
            }
            Task::FedYogi { server_lr, beta1, beta2, tau } => {
                Self::FedYogi { lr: f(server_lr), beta1: f(beta1), beta2: f(beta2), tau: f(tau) }
            }
        }
    }
}

impl TryFrom<AggregationRule> for Rule {
    type Error = AggregationError;

    /// The same rule with the same parameters, counts as `usize`.
    ///
    /// Fails with [`AggregationError::InvalidParameter`] for
    /// [`AggregationRule::Best`] (it needs the round's scores: use
    /// [`TaskRule::new`]) and for a count that does not fit a `usize`.
    /// Parameter ranges are checked where the rule runs, as for any [`Rule`].
    fn try_from(rule: AggregationRule) -> Result<Self> {
        Ok(match rule {
            AggregationRule::FedAvg => Rule::FedAvg,
            AggregationRule::Median => Rule::Median,
            AggregationRule::TrimmedMean { beta } => Rule::TrimmedMean { beta },
            AggregationRule::Krum { byzantine } => Rule::Krum { byzantine: count("byzantine", byzantine)? },
            AggregationRule::MultiKrum { byzantine, select } => {
                Rule::MultiKrum { byzantine: count("byzantine", byzantine)?, select: count("select", select)? }
            }
            AggregationRule::Bulyan { byzantine } => Rule::Bulyan { byzantine: count("byzantine", byzantine)? },
            AggregationRule::Best => {
                return Err(AggregationError::InvalidParameter {
                    name: "rule",
                    reason: "best keeps the best-scored update, so it needs the round's scores (see TaskRule)"
                        .to_owned(),
                });
            }
        })
    }
}

fn count(name: &'static str, value: u32) -> Result<usize> {
    usize::try_from(value).map_err(|_| AggregationError::InvalidParameter {
        name,
        reason: format!("{value} does not fit this machine's usize"),
    })
}

/// How a task's [`AggregationRule`] runs over a round's accepted updates:
/// which of them it takes, and the [`Rule`] that combines those.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskRule {
    /// The rule applied to the updates [`TaskRule::chosen`] picks.
    pub rule: Rule,
    /// Whether only the first update is used: `true` for
    /// [`AggregationRule::Best`], whose [`TaskRule::rule`] is then FedAvg over
    /// that one update (the model is the best submission itself, clipped if
    /// the task clips).
    pub best_only: bool,
}

impl TaskRule {
    /// The task's rule as this crate runs it. `Best` becomes FedAvg over the
    /// first update; every other rule is [`Rule::try_from`] over all of them,
    /// and fails as that does.
    pub fn new(rule: AggregationRule) -> Result<Self> {
        match rule {
            AggregationRule::Best => Ok(Self { rule: Rule::FedAvg, best_only: true }),
            other => Ok(Self { rule: Rule::try_from(other)?, best_only: false }),
        }
    }

    /// The updates this rule combines, out of `updates` ordered best-scored
    /// first (as a round's verdict lists its accepted submissions): the first
    /// one for `Best` (none if there are none), all of them otherwise.
    pub fn chosen<'a, T>(&self, updates: &'a [T]) -> &'a [T] {
        if self.best_only { &updates[..updates.len().min(1)] } else { updates }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_keeps_its_parameters() {
        let cases = [
            (AggregationRule::FedAvg, Rule::FedAvg),
            (AggregationRule::Median, Rule::Median),
            (AggregationRule::TrimmedMean { beta: 0.2 }, Rule::TrimmedMean { beta: 0.2 }),
            (AggregationRule::Krum { byzantine: 2 }, Rule::Krum { byzantine: 2 }),
            (AggregationRule::MultiKrum { byzantine: 1, select: 4 }, Rule::MultiKrum { byzantine: 1, select: 4 }),
            (AggregationRule::Bulyan { byzantine: 3 }, Rule::Bulyan { byzantine: 3 }),
        ];
        for (task, want) in cases {
            assert_eq!(Rule::try_from(task), Ok(want), "{task:?}");
            assert_eq!(TaskRule::new(task), Ok(TaskRule { rule: want, best_only: false }), "{task:?}");
            assert_eq!(want.name(), task.name());
        }
    }

    #[test]
    fn server_optimizers_keep_their_parameters_and_pass_the_engines_checks() {
        use starling_protocol::ServerOptimizer as Task;
        let cases = [
            (Task::FedAvgM { server_lr: 1.0, momentum: 0.9 }, ServerOptimizer::FedAvgM { lr: 1.0, momentum: 0.9 }),
            (Task::FedAdagrad { server_lr: 0.1, tau: 1e-3 }, ServerOptimizer::fed_adagrad(0.1)),
            (Task::FedAdam { server_lr: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 }, ServerOptimizer::fed_adam(0.01)),
            (Task::FedYogi { server_lr: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3 }, ServerOptimizer::fed_yogi(0.01)),
        ];
        for (task, want) in cases {
            let ours = ServerOptimizer::from(task);
            assert_eq!(ours, want, "{task:?}");
            assert_eq!(ours.name(), task.name());
            ours.validate().unwrap();
        }
    }

    #[test]
    fn best_is_fedavg_over_the_first_update_and_nothing_else() {
        let best = TaskRule::new(AggregationRule::Best).unwrap();
        assert_eq!(best, TaskRule { rule: Rule::FedAvg, best_only: true });
        assert_eq!(best.chosen(&[7, 8, 9]), &[7]);
        assert_eq!(best.chosen::<u8>(&[]), &[] as &[u8]);
        let fedavg = TaskRule::new(AggregationRule::FedAvg).unwrap();
        assert_eq!(fedavg.chosen(&[7, 8, 9]), &[7, 8, 9]);
        assert!(matches!(
            Rule::try_from(AggregationRule::Best),
            Err(AggregationError::InvalidParameter { name: "rule", .. })
        ));
    }
}
