//! Every resting state against every kind of event.

use starling_protocol::RoundPhase;

use super::fixtures::*;
use crate::round::{Event, EventKind, PayloadCheck, Refusal, RoundMachine};

/// Builds a machine in some state.
type Build = fn() -> RoundMachine;

/// What an event must do in a state.
#[derive(Debug)]
enum Expect {
    /// Accepted, and the machine moved (or recorded something).
    Applied,
    /// Accepted with no actions and no change at all.
    Noop,
    /// Refused with exactly this refusal.
    Refused(Refusal),
}

fn events() -> [(EventKind, Event); 6] {
    [
        (EventKind::TaskStarted, Event::TaskStarted { initial_model: model(99), participants: participants() }),
        (EventKind::SubmissionReceived, submit_tagged(0, 3, 5, 10, PayloadCheck::Passed)),
        (EventKind::ScoreReceived, score(0, 101, 1, 0.55)),
        (EventKind::AggregationFinished, Event::AggregationFinished { round: r(0), outcome: succeeded(50) }),
        (EventKind::SettlementCommitted, Event::SettlementCommitted { round: r(0), next: None }),
        (EventKind::Tick, Event::Tick),
    ]
}

fn wrong(event: EventKind, phase: RoundPhase) -> Expect {
    Expect::Refused(Refusal::WrongPhase { event, phase })
}

fn expectation(state: Option<RoundPhase>, kind: EventKind) -> Expect {
    use EventKind as K;
    use Expect::*;
    use RoundPhase as P;
    match (state, kind) {
        (_, K::Tick) => Noop,
        (None, K::TaskStarted) => Applied,
        (None, _) => Refused(Refusal::NotStarted),
        (Some(_), K::TaskStarted) => Refused(Refusal::AlreadyStarted),
        (Some(P::Training), K::SubmissionReceived) => Applied,
        (Some(P::Validating), K::ScoreReceived) => Applied,
        (Some(P::Aggregating), K::AggregationFinished) => Applied,
        (Some(P::Settling), K::SettlementCommitted) => Applied,
        // The last round's settlement was committed: a second commit is a no-op.
        (Some(P::Finished), K::SettlementCommitted) => Noop,
        (Some(phase), kind) => wrong(kind, phase),
    }
}

#[test]
fn every_phase_against_every_event() {
    let states: [(&str, Build, u64); 6] = [
        ("not started", machine, 500),
        ("training", started, 500),
        ("validating", validating, secs(60) + 500),
        ("aggregating", aggregating, secs(61) + 500),
        ("settling", settling, secs(62) + 500),
        ("finished", finished, 5_000),
    ];
    for (name, build, now) in states {
        for (kind, event) in events() {
            let mut m = build();
            let phase = m.phase();
            let before = m.clone();
            let result = feed(&mut m, at(now), event);
            match (expectation(phase, kind), result) {
                (Expect::Applied, Ok(_)) => assert_ne!(m, before, "{name}/{kind}: accepted but nothing recorded"),
                (Expect::Noop, Ok(actions)) => {
                    assert!(actions.is_empty(), "{name}/{kind}: {actions:?}");
                    assert_eq!(m, before, "{name}/{kind}: a no-op changed the machine");
                }
                (Expect::Refused(expected), Err(refusal)) => assert_eq!(refusal, expected, "{name}/{kind}"),
                (expected, got) => panic!("{name}/{kind}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn resting_phases_are_the_waiting_ones() {
    assert_eq!(machine().phase(), None);
    assert_eq!(started().phase(), Some(RoundPhase::Training));
    assert_eq!(validating().phase(), Some(RoundPhase::Validating));
    assert_eq!(aggregating().phase(), Some(RoundPhase::Aggregating));
    assert_eq!(settling().phase(), Some(RoundPhase::Settling));
    assert_eq!(finished().phase(), Some(RoundPhase::Finished));
}
