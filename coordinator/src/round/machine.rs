//! [`RoundMachine`]: one task's rounds, from the first opening to the last
//! settlement.

use std::collections::BTreeSet;
use std::ops::Bound;

use serde::{Deserialize, Serialize};
use starling_protocol::{ContentHash, PublicKey, RoundNumber, RoundPhase, SubmissionId, TaskId, TaskSpec};

use crate::round::action::Action;
use crate::round::config::{ConfigError, RoundConfig};
use crate::round::event::{AggregationOutcome, Event, EventKind, Participants, PayloadCheck, ScoreValues};
use crate::round::refusal::Refusal;
use crate::round::state::{AggregationStatus, RoundState, RoundSummary, Running, Submission};
use crate::round::time::UnixMillis;

/// The round state machine of one task: pure, deterministic, serialisable.
///
/// Each round goes open → training → validating → agreeing → aggregating →
/// settling → finished ([`RoundPhase`]), and the next round opens as soon as
/// the previous one's settlement is committed. Between events the machine
/// rests in training, validating, aggregating or settling (opening and
/// agreeing take no time), or in finished once the task's last round settled.
///
/// - **Training** ends at the training deadline (`opened_at` plus
///   [`starling_protocol::RoundDeadlines::training_secs`]) or as soon as every
///   sampled trainer has submitted. Deadlines are exclusive: an event at
///   exactly the deadline is late, and a [`Event::Tick`] at exactly the
///   deadline closes the phase. Trainers that have not submitted by then are
///   dropped from the round, neither paid nor slashed.
/// - **Validating** ends at the validation deadline (the end of training plus
///   [`starling_protocol::RoundDeadlines::validation_secs`]) or as soon as
///   every assigned score is in. Missing scores are simply missing.
/// - **Agreeing** decides, through the staking crate's consensus
///   ([`starling_staking::consensus::consensus`] with the task's κ), which
///   submissions are accepted, rejected or unresolved. A submission whose
///   payload failed its checks is rejected. A valid one counts only if the
///   validators that scored it hold strictly more than half of the round's
///   validator stake; otherwise it is *unresolved*: neither aggregated, paid
///   nor slashed, and its scores stay out of consensus and agreement. A
///   resolved submission is rejected when its consensus accuracy is below
///   [`RoundConfig::harm_threshold`], accepted otherwise. A validator that
///   never scores is absent from the settlement report, as the ledger reads
///   it ("every validator that scored"): it earns nothing and is not slashed.
/// - **Aggregating** asks the shell to aggregate the accepted updates, unless
///   fewer were accepted than the task's rule needs (possibly none): then the
///   global model stays as it was.
/// - **Settling** asks the ledger to settle the round. A round without any
///   accepted or rejected submission still settles, paying nobody: the ledger
///   accepts that, the round's budget stays in the pool for the rounds left,
///   and rounds keep settling in order, each exactly once. A round is never
///   retried.
///
/// Every refused event leaves the machine exactly as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundMachine {
    task: TaskId,
    spec: TaskSpec,
    config: RoundConfig,
    running: Option<Running>,
}

/// What the transition functions read but never change.
pub(crate) struct Ctx<'a> {
    pub(crate) task: TaskId,
    pub(crate) spec: &'a TaskSpec,
    pub(crate) config: &'a RoundConfig,
}

impl RoundMachine {
    /// A machine for `task`, waiting for [`Event::TaskStarted`].
    ///
    /// Fails if `spec` or `config` does not pass its own checks.
    pub fn new(task: TaskId, spec: TaskSpec, config: RoundConfig) -> Result<Self, ConfigError> {
        spec.validate()?;
        config.validate()?;
        Ok(Self { task, spec, config, running: None })
    }

    /// The task this machine runs.
    pub fn task(&self) -> TaskId {
        self.task
    }

    /// The task's specification.
    pub fn spec(&self) -> &TaskSpec {
        &self.spec
    }

    /// The task's round parameters.
    pub fn config(&self) -> &RoundConfig {
        &self.config
    }

    /// A machine from its parts, as a decoder of an older format rebuilds it.
    pub(crate) fn from_parts(task: TaskId, spec: TaskSpec, config: RoundConfig, running: Option<Running>) -> Self {
        Self { task, spec, config, running }
    }

    /// The started task's state, for the modules that read it.
    pub(crate) fn running(&self) -> Option<&Running> {
        self.running.as_ref()
    }

    /// Whether [`Event::TaskStarted`] has been applied.
    pub fn is_started(&self) -> bool {
        self.running.is_some()
    }

    /// Whether the task's last round has settled.
    pub fn is_finished(&self) -> bool {
        self.phase() == Some(RoundPhase::Finished)
    }

    /// The current round and its phase, `None` before the task starts. Never
    /// goes backwards (ordered lexicographically), whatever the events.
    pub fn progress(&self) -> Option<(RoundNumber, RoundPhase)> {
        self.running.as_ref().map(|r| (r.round.number, r.round.phase))
    }

    /// The current round, `None` before the task starts.
    pub fn round(&self) -> Option<RoundNumber> {
        self.progress().map(|(round, _)| round)
    }

    /// The current round's phase, `None` before the task starts.
    pub fn phase(&self) -> Option<RoundPhase> {
        self.progress().map(|(_, phase)| phase)
    }

    /// The global model the current round trains from; once the task has
    /// finished, the final model.
    pub fn global_model(&self) -> Option<ContentHash> {
        let running = self.running.as_ref()?;
        if running.round.phase == RoundPhase::Finished {
            Some(running.round.output_model())
        } else {
            Some(running.round.global_model)
        }
    }

    /// The trainers sampled for the current round, in key order.
    pub fn sampled_trainers(&self) -> Vec<PublicKey> {
        self.running.as_ref().map(|r| r.round.sampled.iter().copied().collect()).unwrap_or_default()
    }

    /// The instant at which a [`Event::Tick`] would close the current phase,
    /// if the phase has a deadline: the shell's next timer.
    pub fn next_deadline(&self) -> Option<UnixMillis> {
        let round = &self.running.as_ref()?.round;
        match round.phase {
            RoundPhase::Training => Some(round.training_deadline),
            RoundPhase::Validating => round.validation.as_ref().map(|v| v.deadline),
            _ => None,
        }
    }

    /// When the current round opened and when its training phase closes.
    pub fn round_times(&self) -> Option<(UnixMillis, UnixMillis)> {
        self.running.as_ref().map(|r| (r.round.opened_at, r.round.training_deadline))
    }

    /// When the current round's validation closes, once it has begun.
    pub fn validation_deadline(&self) -> Option<UnixMillis> {
        self.running.as_ref()?.round.validation.as_ref().map(|v| v.deadline)
    }

    /// What `validator` must score while the current round validates, a
    /// page at a time: up to `limit` assigned submissions with ids above
    /// `after`, in ascending id, each with its trainer and payload hash, and
    /// whether more follow. Empty in any other phase, and for a validator
    /// with nothing assigned.
    pub fn assignments_for(
        &self,
        validator: &PublicKey,
        after: Option<SubmissionId>,
        limit: usize,
    ) -> (Vec<(SubmissionId, PublicKey, ContentHash)>, bool) {
        let Some(running) = &self.running else { return (Vec::new(), false) };
        let round = &running.round;
        let Some(validation) = round.validation.as_ref().filter(|_| round.phase == RoundPhase::Validating) else {
            return (Vec::new(), false);
        };
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut ids = validation
            .assignments
            .range((start, Bound::Unbounded))
            .filter(|(_, validators)| validators.contains(validator))
            .map(|(id, _)| *id);
        let page: BTreeSet<SubmissionId> = ids.by_ref().take(limit).collect();
        let more = ids.next().is_some();
        let mut items: Vec<_> = round
            .submissions
            .iter()
            .filter(|(_, s)| page.contains(&s.id))
            .map(|(trainer, s)| (s.id, *trainer, s.payload))
            .collect();
        items.sort_unstable_by_key(|(id, _, _)| *id);
        (items, more)
    }

    /// The update of `submission` in the current round `round`, if `reader`
    /// may read it: its trainer, or while the round validates, a validator
    /// assigned to score it. `None` for anyone else, any other round, or a
    /// submission the round does not hold: updates are private.
    pub fn update_for(&self, reader: &PublicKey, round: RoundNumber, submission: SubmissionId) -> Option<ContentHash> {
        let running = self.running.as_ref().filter(|_| self.round() == Some(round))?;
        let current = &running.round;
        let (trainer, held) = current.submissions.iter().find(|(_, s)| s.id == submission)?;
        if trainer == reader {
            return Some(held.payload);
        }
        let validation = current.validation.as_ref().filter(|_| current.phase == RoundPhase::Validating)?;
        validation.assignments.get(&submission)?.contains(reader).then_some(held.payload)
    }

    /// Whether `trainer` already has a submission in the current round.
    pub fn has_submitted(&self, trainer: &PublicKey) -> bool {
        self.running.as_ref().is_some_and(|r| r.round.submissions.contains_key(trainer))
    }

    /// One summary per settled round, oldest first.
    pub fn history(&self) -> &[RoundSummary] {
        self.running.as_ref().map(|r| r.history.as_slice()).unwrap_or_default()
    }

    /// The actions whose outcome the machine is still waiting for, to
    /// re-execute after a restart: the round's announcement while training,
    /// its assignments while validating, the aggregation or settlement
    /// request, or the task's end. Empty before the task starts.
    pub fn pending_actions(&self) -> Vec<Action> {
        let Some(running) = &self.running else { return Vec::new() };
        let ctx = self.ctx();
        match running.round.phase {
            RoundPhase::Training => vec![running.round.publish_action()],
            RoundPhase::Validating => running.round.assign_action().into_iter().collect(),
            RoundPhase::Aggregating => vec![running.round.aggregation_action(&ctx)],
            RoundPhase::Settling => vec![running.round.settlement_action(&ctx)],
            RoundPhase::Finished => vec![running.finish_action()],
            RoundPhase::Open | RoundPhase::Agreeing => Vec::new(),
        }
    }

    /// Applies `event` at `now` and returns the actions for the shell, in
    /// order, or a [`Refusal`] that leaves the machine unchanged.
    ///
    /// Re-delivering an event that was already applied (the same submission
    /// or score, the result of an aggregation or settlement of a round that
    /// has moved on) returns `Ok` with no actions and changes nothing; a tick
    /// is never refused.
    pub fn handle(&mut self, now: UnixMillis, event: Event) -> Result<Vec<Action>, Refusal> {
        match event {
            Event::Tick => Ok(self.on_tick(now)),
            Event::TaskStarted { initial_model, participants } => self.on_start(now, initial_model, &participants),
            Event::SubmissionReceived { round, trainer, submission, payload, samples, check } => {
                let invalid = match check {
                    PayloadCheck::Passed => None,
                    PayloadCheck::Failed { reason } => Some(reason),
                };
                self.on_submission(now, round, trainer, Submission { id: submission, payload, samples, invalid })
            }
            Event::ScoreReceived { round, validator, submission, values } => {
                self.on_score(now, round, validator, submission, values)
            }
            Event::AggregationFinished { round, outcome } => self.on_aggregation(now, round, outcome),
            Event::SettlementCommitted { round, next } => self.on_settlement(now, round, next),
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx { task: self.task, spec: &self.spec, config: &self.config }
    }

    /// Splits the machine into what transitions read and what they change.
    fn parts(&mut self) -> (Ctx<'_>, Option<&mut Running>) {
        (Ctx { task: self.task, spec: &self.spec, config: &self.config }, self.running.as_mut())
    }

    fn on_tick(&mut self, now: UnixMillis) -> Vec<Action> {
        let (ctx, Some(running)) = self.parts() else { return Vec::new() };
        let mut actions = Vec::new();
        match running.round.phase {
            RoundPhase::Training if now >= running.round.training_deadline => {
                running.close_training(&ctx, now, &mut actions);
            }
            RoundPhase::Validating if running.round.validation.as_ref().is_some_and(|v| now >= v.deadline) => {
                running.close_validation(&ctx, &mut actions);
            }
            _ => {}
        }
        actions
    }

    fn on_start(
        &mut self,
        now: UnixMillis,
        initial_model: ContentHash,
        participants: &Participants,
    ) -> Result<Vec<Action>, Refusal> {
        let eligible = participants.eligible(self.spec.min_trainer_stake, self.spec.min_validator_stake);
        if let Some(running) = &self.running {
            let same = running.round.number == RoundNumber::FIRST
                && running.history.is_empty()
                && running.round.global_model == initial_model
                && running.participants == eligible;
            return if same { Ok(Vec::new()) } else { Err(Refusal::AlreadyStarted) };
        }
        if eligible.trainers.is_empty() {
            return Err(Refusal::NoEligibleTrainers);
        }
        if eligible.validators.is_empty() {
            return Err(Refusal::NoEligibleValidators);
        }
        let ctx = self.ctx();
        let round = RoundState::open(&ctx, RoundNumber::FIRST, now, initial_model, &eligible);
        let mut running = Running { participants: eligible, round, history: Vec::new() };
        let mut actions = Vec::new();
        running.after_open(&ctx, now, &mut actions);
        self.running = Some(running);
        Ok(actions)
    }

    fn on_submission(
        &mut self,
        now: UnixMillis,
        round: RoundNumber,
        trainer: PublicKey,
        submission: Submission,
    ) -> Result<Vec<Action>, Refusal> {
        let task = self.task;
        let (ctx, running) = self.parts();
        let running = running.ok_or(Refusal::NotStarted)?;
        let current = &running.round;
        if round == current.number && current.submissions.get(&trainer) == Some(&submission) {
            return Ok(Vec::new());
        }
        if round != current.number {
            return Err(Refusal::WrongRound { current: current.number, got: round });
        }
        if current.phase != RoundPhase::Training {
            return Err(Refusal::WrongPhase { event: EventKind::SubmissionReceived, phase: current.phase });
        }
        if !current.sampled.contains(&trainer) {
            return Err(Refusal::NotSampled { trainer });
        }
        if now >= current.training_deadline {
            return Err(Refusal::AfterDeadline { deadline: current.training_deadline, now });
        }
        if let Some(existing) = current.submissions.get(&trainer) {
            return Err(Refusal::DuplicateSubmission { trainer, existing: existing.id });
        }
        if SubmissionId::derive(task, round, &trainer, &submission.payload) != submission.id {
            return Err(Refusal::SubmissionIdMismatch { got: submission.id });
        }
        if submission.invalid.is_none() && submission.samples == 0 {
            return Err(Refusal::ZeroSamples);
        }

        running.round.submissions.insert(trainer, submission);
        let mut actions = Vec::new();
        // Only sampled trainers get this far, so equal sizes mean everyone is in.
        if running.round.submissions.len() == running.round.sampled.len() {
            running.close_training(&ctx, now, &mut actions);
        }
        Ok(actions)
    }

    fn on_score(
        &mut self,
        now: UnixMillis,
        round: RoundNumber,
        validator: PublicKey,
        submission: SubmissionId,
        values: ScoreValues,
    ) -> Result<Vec<Action>, Refusal> {
        let (ctx, running) = self.parts();
        let running = running.ok_or(Refusal::NotStarted)?;
        let current = &running.round;
        let recorded = current.validation.as_ref().and_then(|v| v.scores.get(&submission)?.get(&validator));
        if round == current.number && recorded == Some(&values) {
            return Ok(Vec::new());
        }
        if round != current.number {
            return Err(Refusal::WrongRound { current: current.number, got: round });
        }
        let validation = match (&current.validation, current.phase) {
            (Some(validation), RoundPhase::Validating) => validation,
            _ => return Err(Refusal::WrongPhase { event: EventKind::ScoreReceived, phase: current.phase }),
        };
        if !current.submissions.values().any(|s| s.id == submission) {
            return Err(Refusal::UnknownSubmission { submission });
        }
        if !validation.assignments.get(&submission).is_some_and(|set| set.contains(&validator)) {
            return Err(Refusal::NotAssigned { validator, submission });
        }
        if recorded.is_some() {
            return Err(Refusal::DuplicateScore { validator, submission });
        }
        if now >= validation.deadline {
            return Err(Refusal::AfterDeadline { deadline: validation.deadline, now });
        }
        if let Some((field, value)) = values.problem() {
            return Err(Refusal::InvalidScore { field, value });
        }

        let mut actions = Vec::new();
        if let Some(validation) = running.round.validation.as_mut() {
            validation.scores.entry(submission).or_default().insert(validator, values);
            if validation.complete() {
                running.close_validation(&ctx, &mut actions);
            }
        }
        Ok(actions)
    }

    fn on_aggregation(
        &mut self,
        _now: UnixMillis,
        round: RoundNumber,
        outcome: AggregationOutcome,
    ) -> Result<Vec<Action>, Refusal> {
        let (ctx, running) = self.parts();
        let running = running.ok_or(Refusal::NotStarted)?;
        let current = &running.round;
        if round < current.number {
            // That round settled long ago: whatever this is, it was applied.
            return Ok(Vec::new());
        }
        if round > current.number {
            return Err(Refusal::WrongRound { current: current.number, got: round });
        }
        let refused = Refusal::WrongPhase { event: EventKind::AggregationFinished, phase: current.phase };
        match (&current.aggregation, &outcome) {
            (Some(AggregationStatus::Requested), _) if current.phase == RoundPhase::Aggregating => {}
            (Some(AggregationStatus::Produced(model)), AggregationOutcome::Succeeded { model: got }) => {
                return if model == got { Ok(Vec::new()) } else { Err(refused) };
            }
            (Some(AggregationStatus::Failed(reason)), AggregationOutcome::Failed { reason: got }) => {
                return if reason == got { Ok(Vec::new()) } else { Err(refused) };
            }
            _ => return Err(refused),
        }

        running.round.aggregation = Some(match outcome {
            AggregationOutcome::Succeeded { model } => AggregationStatus::Produced(model),
            AggregationOutcome::Failed { reason } => AggregationStatus::Failed(reason),
        });
        let mut actions = Vec::new();
        running.round.settle(&ctx, &mut actions);
        Ok(actions)
    }

    fn on_settlement(
        &mut self,
        now: UnixMillis,
        round: RoundNumber,
        next: Option<Participants>,
    ) -> Result<Vec<Action>, Refusal> {
        let (ctx, running) = self.parts();
        let running = running.ok_or(Refusal::NotStarted)?;
        let current = &running.round;
        // Settlement is the only way a round ends, so an earlier round, or the
        // current one once finished, has been committed already: a second
        // commit must not advance anything.
        if round < current.number || (round == current.number && current.phase == RoundPhase::Finished) {
            return Ok(Vec::new());
        }
        if round > current.number {
            return Err(Refusal::WrongRound { current: current.number, got: round });
        }
        if current.phase != RoundPhase::Settling {
            return Err(Refusal::WrongPhase { event: EventKind::SettlementCommitted, phase: current.phase });
        }
        let mut actions = Vec::new();
        running.commit_settlement(&ctx, now, next, &mut actions);
        Ok(actions)
    }
}
