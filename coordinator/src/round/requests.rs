//! The actions a round's state asks for, built from that state alone, so a
//! transition and [`crate::round::RoundMachine::pending_actions`] always agree.

use starling_protocol::AggregationRule;
use starling_staking::{Accepted, Ppm, RoundReport, ValidatorAgreement};

use crate::round::action::{Action, AggregationInput, Assignment, BestModel};
use crate::round::machine::Ctx;
use crate::round::state::{AggregationStatus, RoundState, RoundSummary, Running};

impl Running {
    /// The task's end: the final model, and the round model with the best
    /// estimated score.
    pub(crate) fn finish_action(&self) -> Action {
        let final_model = self.history.last().map_or(self.round.global_model, |s| s.output_model);
        let mut best: Option<BestModel> = None;
        for summary in &self.history {
            if let Some(score) = summary.estimated_score
                && summary.output_model != summary.input_model
                // `>=`: among equals the later, longer-trained model wins.
                && best.is_none_or(|b| score >= b.estimated_score)
            {
                best = Some(BestModel { round: summary.round, model: summary.output_model, estimated_score: score });
            }
        }
        Action::FinishTask { final_model, best }
    }
}

impl RoundState {
    /// The round's announcement to its sampled trainers.
    pub(crate) fn publish_action(&self) -> Action {
        Action::PublishRound {
            round: self.number,
            trainers: self.sampled.iter().copied().collect(),
            global_model: self.global_model,
            opened_at: self.opened_at,
            training_deadline: self.training_deadline,
        }
    }

    /// The assignments of this round, `None` if nothing is to be scored.
    pub(crate) fn assign_action(&self) -> Option<Action> {
        let validation = self.validation.as_ref()?;
        let assignments: Vec<Assignment> = validation
            .assignments
            .iter()
            .filter(|(_, validators)| !validators.is_empty())
            .filter_map(|(&id, validators)| {
                let (&trainer, submission) = self.submissions.iter().find(|(_, s)| s.id == id)?;
                Some(Assignment {
                    submission: id,
                    trainer,
                    payload: submission.payload,
                    validators: validators.iter().copied().collect(),
                })
            })
            .collect();
        if assignments.is_empty() {
            return None;
        }
        Some(Action::AssignValidators { round: self.number, assignments, validation_deadline: validation.deadline })
    }

    pub(crate) fn aggregation_action(&self, ctx: &Ctx<'_>) -> Action {
        let updates = self
            .verdict
            .iter()
            .flat_map(|v| &v.accepted)
            .map(|a| AggregationInput {
                submission: a.submission,
                trainer: a.trainer,
                payload: a.payload,
                weight: a.samples,
                score: a.score,
            })
            .collect();
        Action::RequestAggregation {
            round: self.number,
            base_model: self.global_model,
            spec: ctx.spec.aggregation,
            updates,
        }
    }

    pub(crate) fn settlement_action(&self, ctx: &Ctx<'_>) -> Action {
        Action::RequestSettlement { round: self.number, report: self.report(ctx), global_model: self.output_model() }
    }

    /// The ledger's view of this round.
    pub(crate) fn report(&self, ctx: &Ctx<'_>) -> RoundReport {
        let (accepted, rejected, validators) = match &self.verdict {
            Some(verdict) => (
                verdict.accepted.iter().map(|a| Accepted { trainer: a.trainer, score: a.score }).collect(),
                verdict.rejected.iter().map(|r| r.trainer).collect(),
                verdict
                    .validators
                    .iter()
                    .map(|&(validator, ppm)| ValidatorAgreement {
                        validator,
                        // Consensus produced it, so it is in range.
                        agreement: Ppm::new(ppm).unwrap_or(Ppm::ONE),
                    })
                    .collect(),
            ),
            None => Default::default(),
        };
        RoundReport {
            task: ctx.task,
            round: self.number,
            opened_at: self.opened_at.to_ledger(),
            accepted,
            rejected,
            validators,
        }
    }

    pub(crate) fn summary(&self, ctx: &Ctx<'_>) -> RoundSummary {
        let (accepted, rejected) = self.verdict.as_ref().map_or((0, 0), |v| (v.accepted.len(), v.rejected.len()));
        let estimated_score = match (&self.aggregation, &self.verdict) {
            (Some(AggregationStatus::Produced(_)), Some(verdict)) if !verdict.accepted.is_empty() => {
                if ctx.spec.aggregation.rule == AggregationRule::Best {
                    Some(verdict.accepted[0].score)
                } else {
                    let samples: f64 = verdict.accepted.iter().map(|a| a.samples as f64).sum();
                    let mass: f64 = verdict.accepted.iter().map(|a| a.score * a.samples as f64).sum();
                    Some(mass / samples)
                }
            }
            _ => None,
        };
        RoundSummary {
            round: self.number,
            input_model: self.global_model,
            output_model: self.output_model(),
            accepted: u32::try_from(accepted).unwrap_or(u32::MAX),
            rejected: u32::try_from(rejected).unwrap_or(u32::MAX),
            estimated_score,
        }
    }
}
