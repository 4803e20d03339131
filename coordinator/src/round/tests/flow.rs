//! Whole rounds and whole tasks, the happy paths and their variants.

use starling_protocol::{AggregationRule, AggregationSpec, RoundPhase, TaskSpec};
use starling_staking::{Accepted, Ppm, RoundReport, Timestamp, ValidatorAgreement};

use super::fixtures::*;
use crate::round::{
    Action, AggregationInput, AggregationOutcome, Assignment, AssignmentPolicy, BestModel, Event, Participants,
    RoundConfig, RoundMachine, RoundSummary,
};

/// Runs round `round` of `m` from its opening at `base`: every trainer submits
/// 10·trainer samples, every validator scores trainer `t` at `accuracy(t)`,
/// and aggregation ends with `outcome`. Returns the settlement's actions.
fn run_round(
    m: &mut RoundMachine,
    round: u32,
    base: u64,
    accuracy: impl Fn(u8) -> f64,
    outcome: AggregationOutcome,
) -> Vec<Action> {
    for t in TRAINERS {
        ok(m, at(base + 1_000), submit(round, t, 10 * u64::from(t)));
    }
    for v in VALIDATORS {
        for t in TRAINERS {
            ok(m, at(base + 2_000), score(round, v, t, accuracy(t)));
        }
    }
    assert_eq!(m.phase(), Some(RoundPhase::Aggregating));
    ok(m, at(base + 3_000), Event::AggregationFinished { round: r(round), outcome });
    assert_eq!(m.phase(), Some(RoundPhase::Settling));
    ok(m, at(base + 4_000), Event::SettlementCommitted { round: r(round), next: None })
}

#[test]
fn one_round_step_by_step() {
    let mut m = machine();
    assert!(!m.is_started());
    let actions = ok(&mut m, T0, start_event());
    assert_eq!(
        actions,
        vec![Action::PublishRound {
            round: r(0),
            trainers: vec![key(1), key(2), key(3)],
            global_model: model(0),
            opened_at: T0,
            training_deadline: at(secs(60)),
        }]
    );
    assert_eq!(m.progress(), Some((r(0), RoundPhase::Training)));
    assert_eq!(m.next_deadline(), Some(at(secs(60))));

    assert_eq!(ok(&mut m, at(1_000), submit(0, 1, 10)), vec![]);
    assert_eq!(ok(&mut m, at(2_000), submit(0, 2, 20)), vec![]);
    // The last sampled trainer closes training early.
    let actions = ok(&mut m, at(3_000), submit(0, 3, 30));
    let everyone = vec![key(101), key(102), key(103)];
    let assignment = |t: u8| Assignment {
        submission: submission_id(0, t, 0),
        trainer: key(t),
        payload: payload(t, 0),
        validators: everyone.clone(),
    };
    let mut expected = vec![assignment(1), assignment(2), assignment(3)];
    expected.sort_by_key(|a| a.submission);
    assert_eq!(
        actions,
        vec![Action::AssignValidators {
            round: r(0),
            assignments: expected,
            validation_deadline: at(3_000 + secs(30))
        }]
    );
    assert_eq!(m.progress(), Some((r(0), RoundPhase::Validating)));
    assert_eq!(m.next_deadline(), Some(at(3_000 + secs(30))));

    let accuracy = |t: u8| [0.9, 0.6, 0.3][usize::from(t) - 1];
    let mut last = Vec::new();
    for v in VALIDATORS {
        for t in TRAINERS {
            last = ok(&mut m, at(4_000), score(0, v, t, accuracy(t)));
        }
    }
    // The last score closes validation early; agreement runs at once.
    let input = |t: u8, weight: u64| AggregationInput {
        submission: submission_id(0, t, 0),
        trainer: key(t),
        payload: payload(t, 0),
        weight,
        score: accuracy(t),
    };
    assert_eq!(
        last,
        vec![Action::RequestAggregation {
            round: r(0),
            base_model: model(0),
            spec: AggregationSpec::plain(AggregationRule::FedAvg),
            updates: vec![input(1, 10), input(2, 20), input(3, 30)],
        }]
    );
    assert_eq!(m.progress(), Some((r(0), RoundPhase::Aggregating)));
    assert_eq!(m.next_deadline(), None);

    let actions = ok(&mut m, at(5_000), Event::AggregationFinished { round: r(0), outcome: succeeded(1) });
    let report = RoundReport {
        task: TASK,
        round: r(0),
        opened_at: Timestamp(T0.get() / 1_000),
        accepted: TRAINERS.iter().map(|&t| Accepted { trainer: key(t), score: accuracy(t) }).collect(),
        rejected: vec![],
        validators: VALIDATORS.iter().map(|&v| ValidatorAgreement { validator: key(v), agreement: Ppm::ONE }).collect(),
    };
    assert_eq!(actions, vec![Action::RequestSettlement { round: r(0), report, global_model: model(1) }]);
    assert_eq!(m.progress(), Some((r(0), RoundPhase::Settling)));

    let actions = ok(&mut m, at(6_000), Event::SettlementCommitted { round: r(0), next: None });
    assert_eq!(
        actions,
        vec![Action::PublishRound {
            round: r(1),
            trainers: vec![key(1), key(2), key(3)],
            global_model: model(1),
            opened_at: at(6_000),
            training_deadline: at(6_000 + secs(60)),
        }]
    );
    assert_eq!(m.progress(), Some((r(1), RoundPhase::Training)));
    assert_eq!(m.global_model(), Some(model(1)));
    assert_eq!(
        m.history(),
        &[RoundSummary {
            round: r(0),
            input_model: model(0),
            output_model: model(1),
            accepted: 3,
            rejected: 0,
            // (0.9·10 + 0.6·20 + 0.3·30) / 60
            estimated_score: Some(0.5),
        }]
    );
}

#[test]
fn last_round_finishes_the_task_and_names_the_best_model() {
    let mut m = machine();
    ok(&mut m, T0, start_event());
    // Round 0: estimate (0.5·10 + 0.5·20 + 0.5·30)/60 = 0.5 → model 1.
    run_round(&mut m, 0, 0, |_| 0.5, succeeded(1));
    // Round 1: better candidates, but aggregation fails: the model stays.
    let base = m.history().len() as u64 * 10_000;
    run_round(&mut m, 1, base, |_| 0.9, AggregationOutcome::Failed { reason: "out of memory".into() });
    assert_eq!(m.history()[1].output_model, model(1));
    assert_eq!(m.history()[1].estimated_score, None);
    // Round 2: estimate 0.4 → model 3, the final model but not the best.
    let actions = run_round(&mut m, 2, 20_000, |_| 0.4, succeeded(3));
    assert_eq!(
        actions,
        vec![Action::FinishTask {
            final_model: model(3),
            best: Some(BestModel { round: r(0), model: model(1), estimated_score: 0.5 }),
        }]
    );
    assert!(m.is_finished());
    assert_eq!(m.progress(), Some((r(2), RoundPhase::Finished)));
    assert_eq!(m.global_model(), Some(model(3)));
    assert_eq!(m.next_deadline(), None);
    assert_eq!(m.history().len(), 3);
    assert_eq!(m.pending_actions(), actions);
}

#[test]
fn rule_best_estimates_with_the_top_candidate() {
    let spec = TaskSpec { rounds: 1, aggregation: AggregationSpec::plain(AggregationRule::Best), ..spec() };
    let mut m = machine_with(spec, RoundConfig::new(3));
    ok(&mut m, T0, start_event());
    let actions = run_round(&mut m, 0, 0, |t| [0.2, 0.75, 0.5][usize::from(t) - 1], succeeded(9));
    assert_eq!(
        actions,
        vec![Action::FinishTask {
            final_model: model(9),
            best: Some(BestModel { round: r(0), model: model(9), estimated_score: 0.75 }),
        }]
    );
}

#[test]
fn a_task_that_never_aggregates_has_no_best_model() {
    let mut m = machine_with(TaskSpec { rounds: 1, ..spec() }, RoundConfig::new(3));
    ok(&mut m, T0, start_event());
    let actions = ok(&mut m, at(secs(60)), Event::Tick);
    assert!(matches!(actions.last(), Some(Action::RequestSettlement { .. })));
    let actions = ok(&mut m, at(secs(61)), Event::SettlementCommitted { round: r(0), next: None });
    assert_eq!(actions, vec![Action::FinishTask { final_model: model(0), best: None }]);
}

#[test]
fn no_submission_round_settles_empty_and_keeps_the_model() {
    let mut m = started();
    let actions = ok(&mut m, at(secs(60)), Event::Tick);
    let empty = RoundReport {
        task: TASK,
        round: r(0),
        opened_at: T0.to_ledger(),
        accepted: vec![],
        rejected: vec![],
        validators: vec![],
    };
    // Nothing to assign or aggregate: straight from training to settling.
    assert_eq!(
        actions,
        vec![
            Action::DropStragglers { round: r(0), trainers: vec![key(1), key(2), key(3)] },
            Action::RequestSettlement { round: r(0), report: empty, global_model: model(0) },
        ]
    );
    assert_eq!(m.progress(), Some((r(0), RoundPhase::Settling)));
    let actions = ok(&mut m, at(secs(61)), Event::SettlementCommitted { round: r(0), next: None });
    assert!(matches!(&actions[..], [Action::PublishRound { round, global_model, .. }]
        if *round == r(1) && *global_model == model(0)));
    assert_eq!(m.history()[0].accepted, 0);
    assert_eq!(m.history()[0].estimated_score, None);
}

#[test]
fn too_few_accepted_for_the_rule_skips_aggregation_but_pays() {
    // Krum with f = 1 needs 5 updates; 3 are accepted.
    let spec = TaskSpec { aggregation: AggregationSpec::plain(AggregationRule::Krum { byzantine: 1 }), ..spec() };
    let mut m = machine_with(spec, RoundConfig::new(3));
    ok(&mut m, T0, start_event());
    for t in TRAINERS {
        ok(&mut m, at(1_000), submit(0, t, 10));
    }
    let mut last = Vec::new();
    for v in VALIDATORS {
        for t in TRAINERS {
            last = ok(&mut m, at(2_000), score(0, v, t, 0.5));
        }
    }
    let [Action::RequestSettlement { report, global_model, .. }] = &last[..] else { panic!("{last:?}") };
    assert_eq!(*global_model, model(0));
    assert_eq!(report.accepted.len(), 3);
    assert_eq!(m.phase(), Some(RoundPhase::Settling));
}

#[test]
fn invalid_payload_is_rejected_unassigned_and_counts_as_submitted() {
    let mut m = started();
    ok(&mut m, at(1_000), submit(0, 1, 10));
    ok(&mut m, at(1_000), submit(0, 2, 10));
    let bad = crate::round::PayloadCheck::Failed { reason: "tensor `w` holds NaN".into() };
    // The invalid one is the last sampled trainer's: training closes.
    let actions = ok(&mut m, at(2_000), submit_tagged(0, 3, 0, 0, bad));
    let [Action::AssignValidators { assignments, .. }] = &actions[..] else { panic!("{actions:?}") };
    assert_eq!(assignments.len(), 2);
    assert!(assignments.iter().all(|a| a.trainer != key(3)));
    // No validator may score it.
    assert_eq!(
        feed(&mut m, at(3_000), score(0, 101, 3, 0.5)),
        Err(crate::round::Refusal::NotAssigned { validator: key(101), submission: submission_id(0, 3, 0) })
    );
    let mut last = Vec::new();
    for v in VALIDATORS {
        for t in [1, 2] {
            last = ok(&mut m, at(3_000), score(0, v, t, 0.5));
        }
    }
    ok(&mut m, at(4_000), Event::AggregationFinished { round: r(0), outcome: succeeded(1) });
    let [Action::RequestAggregation { updates, .. }] = &last[..] else { panic!("{last:?}") };
    assert_eq!(updates.len(), 2);
    let [Action::RequestSettlement { report, .. }] = &m.pending_actions()[..] else { panic!() };
    assert_eq!(report.rejected, vec![key(3)]);
    assert_eq!(report.accepted.len(), 2);
}

#[test]
fn harm_threshold_rejects_low_consensus() {
    let config = RoundConfig { harm_threshold: Some(0.4), ..RoundConfig::new(3) };
    let mut m = machine_with(spec(), config);
    ok(&mut m, T0, start_event());
    let settle = run_round_until_settling(&mut m, |t| [0.9, 0.39, 0.4][usize::from(t) - 1]);
    let Action::RequestSettlement { report, .. } = settle else { panic!() };
    assert_eq!(report.rejected, vec![key(2)]);
    let accepted: Vec<_> = report.accepted.iter().map(|a| (a.trainer, a.score)).collect();
    assert_eq!(accepted, vec![(key(1), 0.9), (key(3), 0.4)]);
}

/// Every trainer submits and every validator scores; returns the settlement request.
fn run_round_until_settling(m: &mut RoundMachine, accuracy: impl Fn(u8) -> f64) -> Action {
    for t in TRAINERS {
        ok(m, at(1_000), submit(0, t, 10));
    }
    for v in VALIDATORS {
        for t in TRAINERS {
            ok(m, at(2_000), score(0, v, t, accuracy(t)));
        }
    }
    ok(m, at(3_000), Event::AggregationFinished { round: r(0), outcome: succeeded(1) });
    m.pending_actions().pop().unwrap()
}

#[test]
fn refreshed_participants_decide_the_next_sample() {
    let mut m = started();
    ok(&mut m, at(secs(60)), Event::Tick);
    // Trainer 2 was slashed below the minimum; trainer 4 joined.
    let mut next = participants();
    next.trainers.insert(key(2), 9);
    next.trainers.insert(key(4), 100);
    let actions = ok(&mut m, at(secs(61)), Event::SettlementCommitted { round: r(0), next: Some(next) });
    let [Action::PublishRound { trainers, .. }] = &actions[..] else { panic!("{actions:?}") };
    assert_eq!(trainers, &vec![key(1), key(3), key(4)]);
}

#[test]
fn nobody_eligible_any_more_runs_an_empty_round() {
    let mut m = started();
    ok(&mut m, at(secs(60)), Event::Tick);
    let actions =
        ok(&mut m, at(secs(61)), Event::SettlementCommitted { round: r(0), next: Some(Participants::default()) });
    // Round 1 opens with nobody, closes at once and asks to settle empty.
    assert!(matches!(&actions[..], [Action::PublishRound { trainers, .. }, Action::RequestSettlement { .. }]
        if trainers.is_empty()));
    assert_eq!(m.progress(), Some((r(1), RoundPhase::Settling)));
}

#[test]
fn stake_majority_assignment_runs_end_to_end() {
    let config = RoundConfig { assignment: AssignmentPolicy::StakeMajority, ..RoundConfig::new(5) };
    let mut m = machine_with(spec(), config);
    ok(&mut m, T0, start_event());
    let mut actions = Vec::new();
    for t in TRAINERS {
        actions = ok(&mut m, at(1_000), submit(0, t, 10));
    }
    let [Action::AssignValidators { assignments, .. }] = &actions[..] else { panic!("{actions:?}") };
    let stakes = validator_stakes();
    for assignment in assignments {
        let held: u128 = assignment.validators.iter().map(|v| stakes[v]).sum();
        assert!(2 * held > 100, "{assignment:?}");
        // Scores from validators outside the set are refused.
        for v in VALIDATORS.map(key).iter().filter(|v| !assignment.validators.contains(v)) {
            let event = Event::ScoreReceived {
                round: r(0),
                validator: *v,
                submission: assignment.submission,
                values: values(0.5),
            };
            assert!(matches!(feed(&mut m, at(2_000), event), Err(crate::round::Refusal::NotAssigned { .. })));
        }
    }
    // Once every assigned score is in, validation closes early.
    let mut last = Vec::new();
    for assignment in assignments.clone() {
        for v in assignment.validators {
            let event = Event::ScoreReceived {
                round: r(0),
                validator: v,
                submission: assignment.submission,
                values: values(0.5),
            };
            last = ok(&mut m, at(2_000), event);
        }
    }
    assert!(matches!(&last[..], [Action::RequestAggregation { updates, .. }] if updates.len() == 3));
}

#[test]
fn sampling_is_seeded() {
    let many =
        Participants { trainers: (1..=40).map(|t| (key(t), 100)).collect(), validators: participants().validators };
    let spec = TaskSpec { fraction: 0.25, ..spec() };
    let publish = |seed: u64| {
        let mut m = machine_with(spec.clone(), RoundConfig::new(seed));
        let actions = ok(&mut m, T0, Event::TaskStarted { initial_model: model(0), participants: many.clone() });
        let [Action::PublishRound { trainers, .. }] = &actions[..] else { panic!("{actions:?}") };
        assert_eq!(trainers.len(), 10);
        assert_eq!(trainers, &m.sampled_trainers());
        trainers.clone()
    };
    assert_eq!(publish(1), publish(1));
    assert_ne!(publish(1), publish(2));
    assert_eq!(
        publish(1),
        crate::round::sample_trainers(1, TASK, r(0), &many.trainers.keys().copied().collect(), 0.25)
            .into_iter()
            .collect::<Vec<_>>()
    );
}

#[test]
fn assignments_are_read_in_pages_of_ascending_id() {
    let mut m = machine();
    ok(&mut m, T0, start_event());
    let validator = key(VALIDATORS[0]);
    assert_eq!(m.assignments_for(&validator, None, 10), (Vec::new(), false), "nothing before validation");
    let mut actions = Vec::new();
    for t in TRAINERS {
        actions = ok(&mut m, at(1_000), submit(0, t, 10));
    }
    let [Action::AssignValidators { assignments, .. }] = &actions[..] else { panic!("{actions:?}") };
    let mut expected: Vec<_> = assignments
        .iter()
        .filter(|a| a.validators.contains(&validator))
        .map(|a| (a.submission, a.trainer, a.payload))
        .collect();
    expected.sort_unstable_by_key(|(id, _, _)| *id);
    assert_eq!(expected.len(), TRAINERS.len());

    let (first, more) = m.assignments_for(&validator, None, 2);
    assert_eq!((&first[..], more), (&expected[..2], true));
    let (rest, more) = m.assignments_for(&validator, Some(first[1].0), 2);
    assert_eq!((&rest[..], more), (&expected[2..], false));
    assert_eq!(m.assignments_for(&validator, Some(expected[2].0), 2), (Vec::new(), false));
    let (all, more) = m.assignments_for(&validator, None, 3);
    assert_eq!((all, more), (expected, false), "an exactly full page has nothing after it");
    assert_eq!(m.assignments_for(&key(99), None, 10), (Vec::new(), false), "a stranger has none");
}
