//! Each refusal, with the exact reason the shell passes on, and the
//! idempotent re-deliveries next to them.

use starling_protocol::{RoundPhase, SubmissionId, TaskSpec};

use super::fixtures::*;
use crate::round::{
    AggregationOutcome, Event, Participants, PayloadCheck, Refusal, RoundConfig, ScoreValues, UnixMillis,
};

#[test]
fn start_needs_eligible_trainers_and_validators() {
    let mut m = machine();
    let mut poor = participants();
    poor.trainers.values_mut().for_each(|s| *s = 9);
    let event = Event::TaskStarted { initial_model: model(0), participants: poor };
    assert_eq!(feed(&mut m, T0, event), Err(Refusal::NoEligibleTrainers));
    let mut poor = participants();
    // Below the minimum, or without any stake at all even where the minimum is zero.
    poor.validators = [(key(101), 9), (key(102), 0)].into_iter().collect();
    let event = Event::TaskStarted { initial_model: model(0), participants: poor.clone() };
    assert_eq!(feed(&mut m, T0, event), Err(Refusal::NoEligibleValidators));
    let mut lenient = machine_with(TaskSpec { min_validator_stake: 0, ..spec() }, RoundConfig::new(1));
    poor.validators.remove(&key(101));
    let event = Event::TaskStarted { initial_model: model(0), participants: poor };
    assert_eq!(feed(&mut lenient, T0, event), Err(Refusal::NoEligibleValidators));
    assert!(!m.is_started());
}

#[test]
fn start_is_idempotent_in_round_zero_only() {
    let mut m = started();
    assert_eq!(feed(&mut m, at(10), start_event()), Ok(vec![]));
    // Ineligible extras are filtered before comparing.
    let mut extra = participants();
    extra.trainers.insert(key(77), 1);
    assert_eq!(feed(&mut m, at(10), Event::TaskStarted { initial_model: model(0), participants: extra }), Ok(vec![]));
    let other = Event::TaskStarted { initial_model: model(0), participants: Participants::default() };
    assert_eq!(feed(&mut m, at(10), other), Err(Refusal::AlreadyStarted));
    let mut later = settling();
    ok(&mut later, at(secs(63)), Event::SettlementCommitted { round: r(0), next: None });
    assert_eq!(feed(&mut later, at(secs(64)), start_event()), Err(Refusal::AlreadyStarted));
}

#[test]
fn submission_refusals() {
    let fractional = TaskSpec { fraction: 0.5, ..spec() };
    let mut m = machine_with(fractional, RoundConfig::new(4));
    ok(&mut m, T0, start_event());
    let sampled = m.sampled_trainers();
    assert_eq!(sampled.len(), 1, "⌊0.5·3⌋ = 1");
    let inside = sampled[0].as_bytes()[0];
    let outside = TRAINERS.into_iter().find(|&t| key(t) != sampled[0]).unwrap();

    assert_eq!(feed(&mut m, at(1), submit(0, outside, 10)), Err(Refusal::NotSampled { trainer: key(outside) }));
    assert_eq!(feed(&mut m, at(1), submit(1, inside, 10)), Err(Refusal::WrongRound { current: r(0), got: r(1) }));
    let mut forged = submit(0, inside, 10);
    if let Event::SubmissionReceived { submission, .. } = &mut forged {
        *submission = SubmissionId::from_bytes([0; 32]);
    }
    assert_eq!(
        feed(&mut m, at(1), forged),
        Err(Refusal::SubmissionIdMismatch { got: SubmissionId::from_bytes([0; 32]) })
    );
    assert_eq!(feed(&mut m, at(1), submit(0, inside, 0)), Err(Refusal::ZeroSamples));
    // A failed payload may claim anything: it is rejected anyway.
    let mut other = machine_with(TaskSpec { fraction: 0.5, ..spec() }, RoundConfig::new(4));
    ok(&mut other, T0, start_event());
    ok(&mut other, at(1), submit_tagged(0, inside, 0, 0, PayloadCheck::Failed { reason: "shape".into() }));
}

#[test]
fn duplicate_submissions_are_refused_and_repeats_are_noops() {
    let mut m = started();
    assert_eq!(ok(&mut m, at(1_000), submit(0, 1, 10)), vec![]);
    let before = m.clone();
    // The very same submission again: already applied.
    assert_eq!(feed(&mut m, at(2_000), submit(0, 1, 10)), Ok(vec![]));
    assert_eq!(m, before);
    // Anything else from the same trainer: a duplicate.
    assert_eq!(
        feed(&mut m, at(2_000), submit_tagged(0, 1, 1, 10, PayloadCheck::Passed)),
        Err(Refusal::DuplicateSubmission { trainer: key(1), existing: submission_id(0, 1, 0) })
    );
    assert_eq!(
        feed(&mut m, at(2_000), submit(0, 1, 11)),
        Err(Refusal::DuplicateSubmission { trainer: key(1), existing: submission_id(0, 1, 0) })
    );
    // A repeat is a no-op even after the round moved on.
    ok(&mut m, at(secs(60)), Event::Tick);
    assert_eq!(m.phase(), Some(RoundPhase::Validating));
    assert_eq!(feed(&mut m, at(secs(61)), submit(0, 1, 10)), Ok(vec![]));
}

#[test]
fn score_refusals() {
    let mut m = validating();
    let now = at(secs(61));
    let unknown = submission_id(0, 3, 0);
    assert_eq!(
        feed(&mut m, now, score(0, 101, 3, 0.5)),
        Err(Refusal::UnknownSubmission { submission: unknown }),
        "trainer 3 straggled"
    );
    assert_eq!(
        feed(&mut m, now, score(0, 77, 1, 0.5)),
        Err(Refusal::NotAssigned { validator: key(77), submission: submission_id(0, 1, 0) })
    );
    assert_eq!(feed(&mut m, now, score(1, 101, 1, 0.5)), Err(Refusal::WrongRound { current: r(0), got: r(1) }));
    let bad = |values: ScoreValues| Event::ScoreReceived {
        round: r(0),
        validator: key(101),
        submission: submission_id(0, 1, 0),
        values,
    };
    let good = values(0.5);
    assert!(matches!(
        feed(&mut m, now, bad(ScoreValues { accuracy: f64::NAN, ..good })),
        Err(Refusal::InvalidScore { field: "accuracy", .. })
    ));
    assert_eq!(
        feed(&mut m, now, bad(ScoreValues { accuracy: 1.5, ..good })),
        Err(Refusal::InvalidScore { field: "accuracy", value: 1.5 })
    );
    assert_eq!(
        feed(&mut m, now, bad(ScoreValues { loss: -1.0, ..good })),
        Err(Refusal::InvalidScore { field: "loss", value: -1.0 })
    );
    assert_eq!(
        feed(&mut m, now, bad(ScoreValues { loss: f64::INFINITY, ..good })),
        Err(Refusal::InvalidScore { field: "loss", value: f64::INFINITY })
    );
    assert_eq!(
        feed(&mut m, now, bad(ScoreValues { improvement: -2.0, ..good })),
        Err(Refusal::InvalidScore { field: "improvement", value: -2.0 })
    );

    ok(&mut m, now, score(0, 101, 1, 0.5));
    assert_eq!(feed(&mut m, now, score(0, 101, 1, 0.5)), Ok(vec![]), "a repeat is a no-op");
    assert_eq!(
        feed(&mut m, now, score(0, 101, 1, 0.6)),
        Err(Refusal::DuplicateScore { validator: key(101), submission: submission_id(0, 1, 0) })
    );
}

#[test]
fn aggregation_results_are_idempotent() {
    let mut m = settling();
    let repeat = Event::AggregationFinished { round: r(0), outcome: succeeded(1) };
    assert_eq!(feed(&mut m, at(secs(63)), repeat.clone()), Ok(vec![]));
    let conflicting =
        Event::AggregationFinished { round: r(0), outcome: AggregationOutcome::Failed { reason: "x".into() } };
    assert_eq!(
        feed(&mut m, at(secs(63)), conflicting),
        Err(Refusal::WrongPhase { event: crate::round::EventKind::AggregationFinished, phase: RoundPhase::Settling })
    );
    assert_eq!(
        feed(&mut m, at(secs(63)), Event::AggregationFinished { round: r(1), outcome: succeeded(1) }),
        Err(Refusal::WrongRound { current: r(0), got: r(1) })
    );
    ok(&mut m, at(secs(64)), Event::SettlementCommitted { round: r(0), next: None });
    // Round 0 is over: its result, delivered again, changes nothing.
    assert_eq!(feed(&mut m, at(secs(65)), repeat), Ok(vec![]));
    assert_eq!(m.progress(), Some((r(1), RoundPhase::Training)));
}

#[test]
fn settlement_committed_twice_advances_once() {
    let mut m = settling();
    let commit = Event::SettlementCommitted { round: r(0), next: None };
    let first = ok(&mut m, at(secs(63)), commit.clone());
    assert_eq!(first.len(), 1);
    let after_first = m.clone();
    assert_eq!(feed(&mut m, at(secs(64)), commit), Ok(vec![]));
    assert_eq!(m, after_first);
    assert_eq!(m.progress(), Some((r(1), RoundPhase::Training)));
    assert_eq!(m.history().len(), 1);
    assert_eq!(
        feed(&mut m, at(secs(64)), Event::SettlementCommitted { round: r(2), next: None }),
        Err(Refusal::WrongRound { current: r(1), got: r(2) })
    );
}

#[test]
fn refusals_explain_themselves() {
    let text = Refusal::AfterDeadline { deadline: UnixMillis::new(5), now: UnixMillis::new(5) }.to_string();
    assert!(text.contains("deadline"), "{text}");
    let text =
        Refusal::WrongPhase { event: crate::round::EventKind::SubmissionReceived, phase: RoundPhase::Validating }
            .to_string();
    assert_eq!(text, "a submission is not accepted while the round is validating");
}
