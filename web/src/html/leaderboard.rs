//! The task page's leaderboard, derived from what [`TaskDetail`] carries:
//! submissions (of the current round) and payouts (over the whole task).
//!
//! Presentation only: it adds up and sorts numbers the coordinator
//! computed, and decides nothing.
//!
//! [`TaskDetail`]: crate::TaskDetail

use std::collections::BTreeMap;

use starling_protocol::PublicKey;

use crate::format;
use crate::views::{IdentityPayout, SubmissionOutcome, SubmissionView};

/// One identity's line on the leaderboard.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Standing {
    /// The trainer (or, with no submission listed, any identity that was
    /// paid or slashed: a validator or a trainer of an earlier round).
    pub(crate) identity: PublicKey,
    /// Submissions accepted into the aggregate.
    pub(crate) accepted: u32,
    /// Submissions rejected.
    pub(crate) rejected: u32,
    /// Submissions still undecided.
    pub(crate) pending: u32,
    /// Sum of its finite consensus scores; `None` if it has none.
    pub(crate) score_sum: Option<f64>,
    /// Its best finite consensus score; `None` if it has none.
    pub(crate) best_score: Option<f64>,
    /// Rewards over the task, in µSTAR.
    pub(crate) rewarded: u64,
    /// Slashes over the task, in µSTAR.
    pub(crate) slashed: u64,
}

/// Everyone who submitted or was paid, best first: most rewarded, then
/// least slashed, then best score, then by key so the order is stable.
pub(crate) fn standings(submissions: &[SubmissionView], payouts: &[IdentityPayout]) -> Vec<Standing> {
    let mut by_key: BTreeMap<[u8; 32], Standing> = BTreeMap::new();
    for submission in submissions {
        let standing = entry(&mut by_key, submission.trainer);
        match submission.outcome {
            SubmissionOutcome::Accepted => standing.accepted += 1,
            SubmissionOutcome::Rejected { .. } => standing.rejected += 1,
            SubmissionOutcome::Pending => standing.pending += 1,
        }
        if let Some(score) = format::finite(submission.consensus_score) {
            standing.score_sum = Some(standing.score_sum.unwrap_or(0.0) + score);
            standing.best_score = Some(standing.best_score.map_or(score, |best| best.max(score)));
        }
    }
    for payout in payouts {
        let standing = entry(&mut by_key, payout.identity);
        standing.rewarded = standing.rewarded.saturating_add(payout.rewarded);
        standing.slashed = standing.slashed.saturating_add(payout.slashed);
    }
    let mut standings: Vec<Standing> = by_key.into_values().collect();
    // `by_key` is already in key order and the sort is stable, so ties stay by key.
    standings.sort_by(|a, b| {
        b.rewarded
            .cmp(&a.rewarded)
            .then(a.slashed.cmp(&b.slashed))
            .then(b.best_score.unwrap_or(f64::NEG_INFINITY).total_cmp(&a.best_score.unwrap_or(f64::NEG_INFINITY)))
    });
    standings
}

/// `identity`'s line, started empty if it has none yet.
fn entry(by_key: &mut BTreeMap<[u8; 32], Standing>, identity: PublicKey) -> &mut Standing {
    by_key.entry(*identity.as_bytes()).or_insert_with(|| Standing {
        identity,
        accepted: 0,
        rejected: 0,
        pending: 0,
        score_sum: None,
        best_score: None,
        rewarded: 0,
        slashed: 0,
    })
}

#[cfg(test)]
mod tests {
    use starling_protocol::{ContentHash, RoundNumber, SubmissionId, TaskId};

    use super::*;

    fn key(byte: u8) -> PublicKey {
        PublicKey::from_bytes([byte; 32])
    }

    fn submission(trainer: u8, score: Option<f64>, outcome: SubmissionOutcome) -> SubmissionView {
        let trainer = key(trainer);
        let payload = ContentHash::of(&[score.is_some() as u8]);
        SubmissionView {
            id: SubmissionId::derive(TaskId::new(1), RoundNumber::new(0), &trainer, &payload),
            round: RoundNumber::new(0),
            trainer,
            samples: 10,
            consensus_score: score,
            outcome,
        }
    }

    fn payout(identity: u8, rewarded: u64, slashed: u64) -> IdentityPayout {
        IdentityPayout { identity: key(identity), rewarded, slashed }
    }

    #[test]
    fn adds_up_submissions_and_payouts_per_identity() {
        let rejected = || SubmissionOutcome::Rejected { reason: "nan".into() };
        let submissions = [
            submission(1, Some(0.5), SubmissionOutcome::Accepted),
            submission(1, Some(0.25), SubmissionOutcome::Accepted),
            submission(2, Some(-3.0), rejected()),
            submission(2, Some(f64::NAN), rejected()),
            submission(3, None, SubmissionOutcome::Pending),
        ];
        let payouts = [payout(1, 100, 0), payout(2, 0, 40), payout(4, 20, 0), payout(1, 5, 0)];
        let standings = standings(&submissions, &payouts);
        let order: Vec<u8> = standings.iter().map(|s| s.identity.as_bytes()[0]).collect();
        // Most rewarded first; 3 (nothing either way) before 2 (slashed).
        assert_eq!(order, [1, 4, 3, 2]);

        let first = &standings[0];
        assert_eq!((first.accepted, first.rejected, first.pending), (2, 0, 0));
        assert_eq!((first.score_sum, first.best_score), (Some(0.75), Some(0.5)));
        assert_eq!((first.rewarded, first.slashed), (105, 0));

        let slashed = &standings[3];
        assert_eq!((slashed.rejected, slashed.score_sum, slashed.best_score), (2, Some(-3.0), Some(-3.0)));
        assert_eq!(slashed.slashed, 40);

        let validator = &standings[1];
        assert_eq!((validator.accepted + validator.rejected + validator.pending, validator.best_score), (0, None));
        assert_eq!(standings[2].pending, 1);
    }

    #[test]
    fn ties_go_to_the_better_score_then_the_key() {
        let submissions = [
            submission(9, Some(0.1), SubmissionOutcome::Accepted),
            submission(8, Some(0.9), SubmissionOutcome::Accepted),
            submission(7, None, SubmissionOutcome::Pending),
            submission(6, None, SubmissionOutcome::Pending),
        ];
        let order: Vec<u8> = standings(&submissions, &[]).iter().map(|s| s.identity.as_bytes()[0]).collect();
        assert_eq!(order, [8, 9, 6, 7]);
        assert!(standings(&[], &[]).is_empty());
    }
}
