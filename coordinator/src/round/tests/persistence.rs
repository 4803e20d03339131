//! The machine persists after every transition ([`RoundMachine::to_bytes`])
//! and resumes exactly where it stood, from its current format or an earlier
//! one.

use super::fixtures::*;
use crate::round::persist::to_v1_bytes;
use crate::round::{Action, DecodeError, Event, RoundMachine};

/// Builds a machine in some state.
type Build = fn() -> RoundMachine;
/// Recognises the action expected.
type IsExpected = fn(&Action) -> bool;

/// A whole three-round task as `(now, event)` pairs.
fn script() -> Vec<(u64, Event)> {
    let mut events = vec![(0, start_event())];
    for round in 0..3u32 {
        let base = u64::from(round) * 10_000;
        for t in TRAINERS {
            events.push((base + 1_000, submit(round, t, u64::from(t))));
        }
        for v in VALIDATORS {
            for t in TRAINERS {
                events.push((base + 2_000, score(round, v, t, 0.5 + f64::from(t) / 10.0)));
            }
        }
        let outcome = succeeded(round as u8 + 1);
        events.push((base + 3_000, Event::AggregationFinished { round: r(round), outcome }));
        events.push((base + 4_000, Event::SettlementCommitted { round: r(round), next: None }));
    }
    events
}

fn restore(machine: &RoundMachine) -> RoundMachine {
    RoundMachine::from_bytes(&machine.to_bytes()).unwrap()
}

#[test]
fn restarting_after_every_transition_changes_nothing() {
    let mut steady = machine();
    let mut restarted = restore(&steady);
    assert_eq!(restarted, steady);
    for (now, event) in script() {
        let expected = ok(&mut steady, at(now), event.clone());
        let got = ok(&mut restarted, at(now), event);
        assert_eq!(got, expected);
        restarted = restore(&restarted);
        assert_eq!(restarted, steady);
    }
    assert!(restarted.is_finished());
    assert_eq!(restarted.history().len(), 3);
}

#[test]
fn pending_actions_repeat_what_is_awaited() {
    assert_eq!(machine().pending_actions(), vec![]);
    let cases: [(Build, IsExpected); 5] = [
        (started, |a| matches!(a, Action::PublishRound { .. })),
        (validating, |a| matches!(a, Action::AssignValidators { .. })),
        (aggregating, |a| matches!(a, Action::RequestAggregation { .. })),
        (settling, |a| matches!(a, Action::RequestSettlement { .. })),
        (finished, |a| matches!(a, Action::FinishTask { .. })),
    ];
    for (build, expected) in cases {
        let m = restore(&build());
        let pending = m.pending_actions();
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert!(expected(&pending[0]), "{pending:?}");
    }
    // They equal what the transition itself asked for.
    let mut m = validating();
    let mut last = Vec::new();
    for v in VALIDATORS {
        for t in [1, 2] {
            last = ok(&mut m, at(secs(61)), score(0, v, t, 0.5));
        }
    }
    assert_eq!(restore(&m).pending_actions(), last);
}

#[test]
fn a_restarted_shell_ticks_through_deadlines_it_slept_through() {
    let mut m = validating();
    let mut revived = restore(&m);
    // Down from 60 s to 10 minutes: the first tick closes validation.
    let actions = ok(&mut revived, at(secs(600)), Event::Tick);
    assert!(actions.iter().any(|a| matches!(a, Action::RequestSettlement { .. })));
    // The same as if it had never been down.
    assert_eq!(ok(&mut m, at(secs(600)), Event::Tick), actions);
}

#[test]
fn a_truncated_state_is_refused_not_misread() {
    for bytes in [settling().to_bytes(), to_v1_bytes(&settling())] {
        for cut in 0..bytes.len() {
            assert!(RoundMachine::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}

/// A coordinator upgraded in the middle of a task reads the machine its
/// predecessor saved in format 1 (no header, verdicts without reasons) as the
/// same machine, the verdict decided again from the same scores and stakes.
#[test]
fn format_1_machines_are_read_in_every_phase() {
    let mut steady = machine();
    let check = |m: &RoundMachine| {
        let upgraded = RoundMachine::from_bytes(&to_v1_bytes(m)).unwrap();
        assert_eq!(&upgraded, m);
        assert_eq!(upgraded.verdicts(), m.verdicts());
    };
    check(&steady);
    let mut decided = 0;
    for (now, event) in script() {
        ok(&mut steady, at(now), event);
        check(&steady);
        decided += usize::from(steady.verdicts().is_some());
    }
    assert!(decided > 0, "the script reaches verdicts");
    for build in [validating, aggregating, settling, finished] {
        check(&build());
    }
}

#[test]
fn an_unknown_format_is_named() {
    let mut bytes = settling().to_bytes();
    bytes[1] = 9;
    let error = RoundMachine::from_bytes(&bytes).unwrap_err();
    assert!(matches!(error, DecodeError::UnknownFormat(9)), "{error}");
    assert!(error.to_string().contains("format 9"), "{error}");
}
