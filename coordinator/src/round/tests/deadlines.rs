//! Deadlines: exclusive, closed by ticks, and stragglers dropped.

use starling_protocol::RoundPhase;

use super::fixtures::*;
use crate::round::{Action, Event, Refusal};

#[test]
fn training_deadline_is_exclusive() {
    let deadline = at(secs(60));
    let just_before = at(secs(60) - 1);

    let mut m = started();
    assert_eq!(ok(&mut m, just_before, Event::Tick), vec![]);
    assert_eq!(m.phase(), Some(RoundPhase::Training));
    assert_eq!(ok(&mut m, just_before, submit(0, 1, 10)), vec![], "one millisecond early is in time");
    assert_eq!(feed(&mut m, deadline, submit(0, 2, 10)), Err(Refusal::AfterDeadline { deadline, now: deadline }));
    assert_eq!(
        feed(&mut m, at(secs(600)), submit(0, 2, 10)),
        Err(Refusal::AfterDeadline { deadline, now: at(secs(600)) })
    );
    assert_eq!(m.phase(), Some(RoundPhase::Training), "only a tick closes the phase");

    let actions = ok(&mut m, deadline, Event::Tick);
    assert_eq!(m.phase(), Some(RoundPhase::Validating));
    assert!(matches!(&actions[0], Action::DropStragglers { trainers, .. } if *trainers == vec![key(2), key(3)]));
    assert!(matches!(&actions[1], Action::AssignValidators { assignments, validation_deadline, .. }
        if assignments.len() == 1 && *validation_deadline == at(secs(90))));
    assert_eq!(actions.len(), 2);
}

#[test]
fn validation_deadline_is_exclusive() {
    let deadline = at(secs(90));
    let just_before = at(secs(90) - 1);

    let mut m = validating();
    assert_eq!(m.next_deadline(), Some(deadline));
    assert_eq!(ok(&mut m, just_before, Event::Tick), vec![]);
    ok(&mut m, just_before, score(0, 101, 1, 0.7));
    assert_eq!(feed(&mut m, deadline, score(0, 102, 1, 0.7)), Err(Refusal::AfterDeadline { deadline, now: deadline }));
    assert_eq!(m.phase(), Some(RoundPhase::Validating));

    // Validator 101 (half the stake, not a strict majority) scored only
    // submission 1; everyone else is late.
    let actions = ok(&mut m, deadline, Event::Tick);
    assert_eq!(actions[0], Action::DropLateValidators { round: r(0), validators: vec![key(101), key(102), key(103)] });
    let Action::RequestSettlement { report, global_model, .. } = &actions[1] else { panic!("{actions:?}") };
    assert!(report.accepted.is_empty() && report.rejected.is_empty() && report.validators.is_empty());
    assert_eq!(*global_model, model(0));
    assert_eq!(m.phase(), Some(RoundPhase::Settling));
}

#[test]
fn a_late_tick_starts_validation_when_it_comes() {
    let mut m = started();
    ok(&mut m, at(1_000), submit(0, 1, 10));
    // The shell was down for ten minutes: validators still get their full time.
    let late = at(secs(660));
    let actions = ok(&mut m, late, Event::Tick);
    assert!(actions.iter().any(|a| matches!(a, Action::AssignValidators { validation_deadline, .. }
        if *validation_deadline == at(secs(690)))));
}

#[test]
fn a_straggler_is_dropped_not_waited_for() {
    let mut m = started();
    ok(&mut m, at(1_000), submit(0, 1, 10));
    ok(&mut m, at(1_000), submit(0, 2, 10));
    let actions = ok(&mut m, at(secs(60)), Event::Tick);
    assert_eq!(actions[0], Action::DropStragglers { round: r(0), trainers: vec![key(3)] });
    // Its upload, arriving now, is refused: the round has moved on.
    assert_eq!(
        feed(&mut m, at(secs(61)), submit(0, 3, 10)),
        Err(Refusal::WrongPhase { event: crate::round::EventKind::SubmissionReceived, phase: RoundPhase::Validating })
    );
    for v in VALIDATORS {
        for t in [1, 2] {
            ok(&mut m, at(secs(62)), score(0, v, t, 0.5));
        }
    }
    ok(&mut m, at(secs(63)), Event::AggregationFinished { round: r(0), outcome: succeeded(1) });
    let [Action::RequestSettlement { report, .. }] = &m.pending_actions()[..] else { panic!() };
    // Neither paid nor slashed.
    assert!(report.participants().all(|(k, _)| k != key(3)));
}

#[test]
fn ticks_without_deadlines_do_nothing() {
    for mut m in [machine(), aggregating(), settling(), finished()] {
        let before = m.clone();
        assert_eq!(ok(&mut m, at(secs(100_000)), Event::Tick), vec![]);
        assert_eq!(m, before);
        assert_eq!(m.next_deadline(), None);
    }
}
