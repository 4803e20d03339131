//! How a round moves from phase to phase: the transitions the machine's
//! event handlers ([`crate::round::RoundMachine::handle`]) call once an event
//! has passed their checks.

use std::collections::BTreeSet;

use starling_protocol::{ContentHash, PublicKey, RoundNumber, RoundPhase, SubmissionId};

use crate::round::action::Action;
use crate::round::agreement::decide;
use crate::round::assignment::assign;
use crate::round::event::Participants;
use crate::round::machine::Ctx;
use crate::round::sampling::sample_trainers;
use crate::round::state::{AggregationStatus, RoundState, Running, Validation};
use crate::round::time::UnixMillis;

impl Running {
    /// Publishes a freshly opened round, and closes its training at once if
    /// nobody was sampled (nobody is eligible any more).
    pub(crate) fn after_open(&mut self, ctx: &Ctx<'_>, now: UnixMillis, actions: &mut Vec<Action>) {
        actions.push(self.round.publish_action());
        if self.round.sampled.is_empty() {
            self.close_training(ctx, now, actions);
        }
    }

    /// Drops the stragglers and assigns the valid submissions to validators.
    pub(crate) fn close_training(&mut self, ctx: &Ctx<'_>, now: UnixMillis, actions: &mut Vec<Action>) {
        let round = &mut self.round;
        let stragglers: Vec<PublicKey> =
            round.sampled.iter().filter(|t| !round.submissions.contains_key(t)).copied().collect();
        if !stragglers.is_empty() {
            actions.push(Action::DropStragglers { round: round.number, trainers: stragglers });
        }
        let valid: BTreeSet<SubmissionId> =
            round.submissions.values().filter(|s| s.invalid.is_none()).map(|s| s.id).collect();
        let assignments = assign(
            ctx.config.assignment,
            &self.participants.validators,
            &valid,
            (ctx.config.seed, ctx.task, round.number),
        );
        round.validation = Some(Validation {
            deadline: now.plus_secs(ctx.spec.deadlines.validation_secs),
            assignments,
            scores: Default::default(),
        });
        round.step(RoundPhase::Validating);
        if let Some(action) = round.assign_action() {
            actions.push(action);
        }
        if round.validation.as_ref().is_some_and(Validation::complete) {
            self.close_validation(ctx, actions);
        }
    }

    /// Drops missing scores, agrees, and asks for aggregation or settlement.
    pub(crate) fn close_validation(&mut self, ctx: &Ctx<'_>, actions: &mut Vec<Action>) {
        let round = &mut self.round;
        if let Some(validation) = &round.validation {
            let late: BTreeSet<PublicKey> = validation
                .assignments
                .iter()
                .flat_map(|(id, assigned)| {
                    let scored = validation.scores.get(id);
                    assigned.iter().filter(move |v| !scored.is_some_and(|s| s.contains_key(v))).copied()
                })
                .collect();
            if !late.is_empty() {
                actions
                    .push(Action::DropLateValidators { round: round.number, validators: late.into_iter().collect() });
            }
        }
        round.step(RoundPhase::Agreeing);
        let verdict = decide(round, &self.participants.validators, ctx.config.kappa_ppm, ctx.config.harm_threshold);
        let enough =
            !verdict.accepted.is_empty() && verdict.accepted.len() as u64 >= ctx.spec.aggregation.rule.min_clients();
        round.verdict = Some(verdict);
        round.step(RoundPhase::Aggregating);
        if enough {
            round.aggregation = Some(AggregationStatus::Requested);
            actions.push(round.aggregation_action(ctx));
        } else {
            round.aggregation = Some(AggregationStatus::Skipped);
            round.settle(ctx, actions);
        }
    }

    /// Records the settled round, then opens the next one or ends the task.
    pub(crate) fn commit_settlement(
        &mut self,
        ctx: &Ctx<'_>,
        now: UnixMillis,
        next: Option<Participants>,
        actions: &mut Vec<Action>,
    ) {
        let summary = self.round.summary(ctx);
        self.history.push(summary);
        self.round.step(RoundPhase::Finished);
        let following = self.round.number.next().filter(|n| n.get() < ctx.spec.rounds);
        let Some(number) = following else {
            actions.push(self.finish_action());
            return;
        };
        if let Some(next) = next {
            self.participants = next.eligible(ctx.spec.min_trainer_stake, ctx.spec.min_validator_stake);
        }
        self.round = RoundState::open(ctx, number, now, summary.output_model, &self.participants);
        self.after_open(ctx, now, actions);
    }
}

impl RoundState {
    /// Opens round `number` at `now` from `global_model`, sampling among
    /// `participants`' trainers; rests in training.
    pub(crate) fn open(
        ctx: &Ctx<'_>,
        number: RoundNumber,
        now: UnixMillis,
        global_model: ContentHash,
        participants: &Participants,
    ) -> Self {
        let eligible: BTreeSet<PublicKey> = participants.trainers.keys().copied().collect();
        let sampled = sample_trainers(ctx.config.seed, ctx.task, number, &eligible, ctx.spec.fraction);
        let mut round = Self {
            number,
            phase: RoundPhase::Open,
            opened_at: now,
            training_deadline: now.plus_secs(ctx.spec.deadlines.training_secs),
            global_model,
            sampled,
            submissions: Default::default(),
            validation: None,
            verdict: None,
            aggregation: None,
        };
        round.step(RoundPhase::Training);
        round
    }

    /// Moves to `to`, which must be the next phase.
    pub(crate) fn step(&mut self, to: RoundPhase) {
        debug_assert_eq!(self.phase.next(), Some(to), "round {} skipped from {}", self.number, self.phase);
        self.phase = to;
    }

    /// Asks for settlement.
    pub(crate) fn settle(&mut self, ctx: &Ctx<'_>, actions: &mut Vec<Action>) {
        self.step(RoundPhase::Settling);
        actions.push(self.settlement_action(ctx));
    }

    /// The global model after this round: the aggregate if one was produced.
    pub(crate) fn output_model(&self) -> ContentHash {
        match &self.aggregation {
            Some(AggregationStatus::Produced(model)) => *model,
            _ => self.global_model,
        }
    }
}
