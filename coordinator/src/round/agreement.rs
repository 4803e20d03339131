//! Agreement: from validators' scores to accepted and rejected submissions,
//! through the staking crate's stake-weighted consensus.
//!
//! The rules, in order:
//! - a submission whose payload failed its checks is rejected outright;
//! - only the scores of validators assigned the submission count (the machine
//!   never records others);
//! - a valid submission is *resolved* only if the validators that scored it
//!   hold strictly more than half of the round's validator stake. Consensus
//!   counts only those who scored, so without this a minority of lazy or
//!   absent validators would leave the decision to whoever did score. An
//!   unresolved submission is neither aggregated, paid nor slashed (its
//!   trainer did nothing wrong), and its scores are left out of consensus and
//!   agreement;
//! - a validator that never scores is therefore absent from consensus and
//!   from the settlement report, exactly as the staking crate reads it
//!   ("every validator that scored in this round"): it earns nothing and is
//!   not slashed;
//! - a resolved submission is rejected when its consensus accuracy is
//!   strictly below the harm threshold, and accepted otherwise.

use std::collections::BTreeMap;

use starling_protocol::PublicKey;
use starling_staking::Ppm;
use starling_staking::consensus::consensus;

use crate::round::assignment::holds_majority;
use crate::round::state::{AcceptedSubmission, RejectedSubmission, RoundState, Verdict};

/// Decides `round`'s verdict. `validators` holds the round's eligible
/// validator stakes; `kappa_ppm` and `harm_threshold` come from the task's
/// [`crate::round::RoundConfig`].
pub(crate) fn decide(
    round: &RoundState,
    validators: &BTreeMap<PublicKey, u128>,
    kappa_ppm: u32,
    harm_threshold: Option<f64>,
) -> Verdict {
    let mut rejected = Vec::new();
    let mut unresolved = Vec::new();
    let mut candidates = Vec::new();
    let mut inputs = Vec::new();
    let empty = BTreeMap::new();
    for (&trainer, submission) in &round.submissions {
        if let Some(reason) = &submission.invalid {
            let reason = reason.clone();
            rejected.push(RejectedSubmission { trainer, submission: submission.id, score: None, reason });
            continue;
        }
        let scores = round.validation.as_ref().and_then(|v| v.scores.get(&submission.id)).unwrap_or(&empty);
        if !holds_majority(validators, scores.keys()) {
            unresolved.push(trainer);
            continue;
        }
        candidates.push((trainer, submission));
        inputs.push(scores.iter().map(|(&validator, values)| (validator, values.accuracy)).collect::<Vec<_>>());
    }

    let kappa = Ppm::new(kappa_ppm).unwrap_or(Ppm::ONE);
    let mut accepted = Vec::new();
    let mut agreement = Vec::new();
    match consensus(validators, &inputs, kappa) {
        Ok(result) => {
            for ((trainer, submission), score) in candidates.into_iter().zip(result.scores) {
                match score {
                    Some(score) if let Some(threshold) = harm_threshold.filter(|&threshold| score < threshold) => {
                        rejected.push(RejectedSubmission {
                            trainer,
                            submission: submission.id,
                            score: Some(score),
                            reason: format!(
                                "consensus accuracy {score:.4} is below the task's harm threshold {threshold}"
                            ),
                        });
                    }
                    Some(score) => accepted.push(AcceptedSubmission {
                        trainer,
                        submission: submission.id,
                        payload: submission.payload,
                        samples: submission.samples,
                        score,
                    }),
                    // Only when the scoring validators hold no stake, which a
                    // majority of a positive total rules out.
                    None => unresolved.push(trainer),
                }
            }
            agreement = result.agreement.into_iter().map(|(validator, ppm)| (validator, ppm.get())).collect();
        }
        // Unreachable: the machine records only in-range scores, from
        // validators in the stake table, at most one per submission. Should it
        // happen anyway, nobody is judged on a consensus that could not be
        // computed.
        Err(_) => unresolved.extend(candidates.into_iter().map(|(trainer, _)| trainer)),
    }
    accepted.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.trainer.cmp(&b.trainer)));
    rejected.sort_by_key(|r| r.trainer);
    unresolved.sort();
    Verdict { accepted, rejected, unresolved, validators: agreement }
}
