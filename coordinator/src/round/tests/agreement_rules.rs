//! How scores become accepted, rejected and unresolved submissions, and who
//! appears in the settlement report.

use starling_protocol::RoundPhase;
use starling_staking::{Ppm, RoundReport};

use super::fixtures::*;
use crate::round::{Action, Event, PayloadCheck, RoundConfig, RoundMachine, VerdictOutcome};

/// Trainers 1, 2 and 3 submit; `scores` lists `(validator, trainer, accuracy)`;
/// the validation deadline passes. Returns the machine and the last actions.
fn judge(config: RoundConfig, scores: &[(u8, u8, f64)]) -> (RoundMachine, Vec<Action>) {
    let mut m = machine_with(spec(), config);
    ok(&mut m, T0, start_event());
    for t in TRAINERS {
        ok(&mut m, at(1_000), submit(0, t, 10));
    }
    let mut last = Vec::new();
    for &(v, t, accuracy) in scores {
        last = ok(&mut m, at(2_000), score(0, v, t, accuracy));
    }
    if m.phase() == Some(RoundPhase::Validating) {
        last = ok(&mut m, at(1_000 + secs(30)), Event::Tick);
    }
    (m, last)
}

/// The report the machine will settle with, aggregating to `model(1)` if asked.
fn report_of(m: &mut RoundMachine) -> RoundReport {
    if m.phase() == Some(RoundPhase::Aggregating) {
        ok(m, at(secs(40)), Event::AggregationFinished { round: r(0), outcome: succeeded(1) });
    }
    match m.pending_actions().pop() {
        Some(Action::RequestSettlement { report, .. }) => report,
        other => panic!("{other:?}"),
    }
}

fn all_score(validators: &[u8], accuracy: f64) -> Vec<(u8, u8, f64)> {
    validators.iter().flat_map(|&v| TRAINERS.map(|t| (v, t, accuracy))).collect()
}

#[test]
fn a_validator_that_never_scores_is_left_out() {
    // Validator 103 (20% of the stake) stays silent; 80% still decides.
    let (mut m, last) = judge(RoundConfig::new(1), &all_score(&[101, 102], 0.6));
    assert_eq!(last[0], Action::DropLateValidators { round: r(0), validators: vec![key(103)] });
    let report = report_of(&mut m);
    assert_eq!(report.accepted.len(), 3);
    let validators: Vec<_> = report.validators.iter().map(|v| v.validator).collect();
    assert_eq!(validators, vec![key(101), key(102)], "neither paid nor slashed");
}

#[test]
fn without_a_scoring_majority_nobody_is_judged() {
    // Validator 101 holds 50%: the other two hold exactly half, not a majority.
    let (mut m, last) = judge(RoundConfig::new(1), &all_score(&[102, 103], 0.1));
    assert_eq!(last[0], Action::DropLateValidators { round: r(0), validators: vec![key(101)] });
    // Nothing accepted: aggregation is skipped and the round settles empty.
    assert!(matches!(last[1], Action::RequestSettlement { .. }));
    let config = RoundConfig { harm_threshold: Some(0.5), ..RoundConfig::new(1) };
    let (mut harsh, _) = judge(config, &all_score(&[102, 103], 0.1));
    for report in [report_of(&mut m), report_of(&mut harsh)] {
        assert!(report.accepted.is_empty());
        assert!(report.rejected.is_empty(), "low scores from a minority slash nobody");
        assert!(report.validators.is_empty());
    }
}

#[test]
fn a_minority_cannot_lift_a_score_and_loses_agreement() {
    // 101 and 102 (80%) say 0.4; 103 (20%) says 1.0 for everyone.
    let mut scores = all_score(&[101, 102], 0.4);
    scores.extend(all_score(&[103], 1.0));
    let (mut m, last) = judge(RoundConfig::new(1), &scores);
    assert!(matches!(&last[..], [Action::RequestAggregation { .. }]), "all scores in: closed early");
    let report = report_of(&mut m);
    assert!(report.accepted.iter().all(|a| a.score == 0.4));
    let agreement: Vec<_> = report.validators.iter().map(|v| (v.validator, v.agreement)).collect();
    assert_eq!(
        agreement,
        vec![(key(101), Ppm::ONE), (key(102), Ppm::ONE), (key(103), Ppm::new(400_000).unwrap())],
        "103 keeps 0.4 of each 1.0 it gave: below one half, the ledger slashes it"
    );
}

#[test]
fn consensus_is_the_stake_weighted_median() {
    // Stakes 50/30/20 scoring trainer 1 at 0.9/0.6/0.3: 0.9 alone has 50% ≥ κ.
    let mut scores = vec![(101, 1, 0.9), (102, 1, 0.6), (103, 1, 0.3)];
    for t in [2, 3] {
        scores.extend(VALIDATORS.map(|v| (v, t, 0.5)));
    }
    let (mut m, _) = judge(RoundConfig::new(1), &scores);
    let report = report_of(&mut m);
    let first = report.accepted.iter().find(|a| a.trainer == key(1)).unwrap();
    assert_eq!(first.score, 0.9);
    // A κ of 0.9 needs 90% of the stake at or above the score: 0.3.
    let config = RoundConfig { kappa_ppm: 900_000, ..RoundConfig::new(1) };
    let (mut m, _) = judge(config, &scores);
    let report = report_of(&mut m);
    assert_eq!(report.accepted.iter().find(|a| a.trainer == key(1)).unwrap().score, 0.3);
}

#[test]
fn accepted_are_ranked_best_first_in_the_aggregation_request() {
    let mut scores = Vec::new();
    for v in VALIDATORS {
        scores.extend([(v, 1, 0.5), (v, 2, 0.9), (v, 3, 0.5)]);
    }
    let (_, last) = judge(RoundConfig::new(1), &scores);
    let [Action::RequestAggregation { updates, .. }] = &last[..] else { panic!("{last:?}") };
    let order: Vec<_> = updates.iter().map(|u| (u.trainer, u.score)).collect();
    // Equal scores in key order, as the ledger ranks them.
    assert_eq!(order, vec![(key(2), 0.9), (key(1), 0.5), (key(3), 0.5)]);
}

/// The verdict the machine hands out is the one it settles with, with the
/// consensus of each submission, why it was rejected, and the stakes and
/// agreements of the validators.
#[test]
fn the_verdict_names_every_submission_and_validator() {
    let config = RoundConfig { harm_threshold: Some(0.5), ..RoundConfig::new(1) };
    let mut m = machine_with(spec(), config);
    ok(&mut m, T0, start_event());
    ok(&mut m, at(1_000), submit(0, 1, 10));
    ok(&mut m, at(1_000), submit(0, 2, 20));
    let failed = PayloadCheck::Failed { reason: "non_finite: tensor w holds NaN".into() };
    ok(&mut m, at(1_000), submit_tagged(0, 3, 0, 0, failed));
    assert_eq!(m.verdicts(), None, "nothing is decided while validating");
    for v in VALIDATORS {
        ok(&mut m, at(2_000), score(0, v, 1, 0.8));
    }
    // Only 102 and 103 (half of the stake, not a majority) score trainer 2.
    for v in [102, 103] {
        ok(&mut m, at(2_000), score(0, v, 2, 0.2));
    }
    ok(&mut m, at(1_000 + secs(TRAINING_SECS.into()) + secs(VALIDATION_SECS.into())), Event::Tick);
    let verdicts = m.verdicts().expect("decided when validation closed");
    assert_eq!((verdicts.task, verdicts.round, verdicts.harm_threshold), (TASK, r(0), Some(0.5)));
    let outcomes: Vec<_> =
        verdicts.submissions.iter().map(|s| (s.trainer, s.samples, s.consensus, s.outcome.clone())).collect();
    assert_eq!(
        outcomes,
        vec![
            (key(1), 10, Some(0.8), VerdictOutcome::Accepted),
            (key(2), 20, None, VerdictOutcome::Unresolved),
            (key(3), 0, None, VerdictOutcome::Rejected { reason: "non_finite: tensor w holds NaN".into() }),
        ]
    );
    let validators: Vec<_> =
        verdicts.validators.iter().map(|v| (v.validator, v.stake, v.scores, v.agreement_ppm)).collect();
    assert_eq!(
        validators,
        vec![
            (key(101), 50, 1, Some(1_000_000)),
            (key(102), 30, 2, Some(1_000_000)),
            (key(103), 20, 2, Some(1_000_000))
        ]
    );
    // What is paid is what the verdict says.
    let report = report_of(&mut m);
    assert_eq!(report.accepted.iter().map(|a| (a.trainer, a.score)).collect::<Vec<_>>(), vec![(key(1), 0.8)]);
    assert_eq!(report.rejected, vec![key(3)]);
    assert_eq!(m.verdicts(), Some(verdicts), "unchanged while aggregating and settling");

    // Below the harm threshold: rejected, with the consensus and the reason.
    let (m, _) = judge(config, &all_score(&[101, 102, 103], 0.3));
    let verdicts = m.verdicts().unwrap();
    for s in &verdicts.submissions {
        assert_eq!(s.consensus, Some(0.3));
        let VerdictOutcome::Rejected { reason } = &s.outcome else { panic!("{s:?}") };
        assert_eq!(reason, "consensus accuracy 0.3000 is below the task's harm threshold 0.5");
    }
}
