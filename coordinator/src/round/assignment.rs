//! Which validators score which submission.

use std::collections::{BTreeMap, BTreeSet};

use starling_protocol::{PublicKey, RoundNumber, SubmissionId, TaskId};

use crate::round::config::AssignmentPolicy;
use crate::round::sampling::{Purpose, shuffle_prefix, stream};

/// Assigns each of `submissions` to validators under `policy`.
///
/// `validators` holds the round's eligible validators, each with a stake
/// above zero. Every set assigned holds strictly more than half of their
/// total stake, so the validators that score a submission can reach a
/// consensus no minority controls. Deterministic in `seed`, `task` and
/// `round`; submissions are handled in id order.
pub(crate) fn assign(
    policy: AssignmentPolicy,
    validators: &BTreeMap<PublicKey, u128>,
    submissions: &BTreeSet<SubmissionId>,
    (seed, task, round): (u64, TaskId, RoundNumber),
) -> BTreeMap<SubmissionId, BTreeSet<PublicKey>> {
    match policy {
        AssignmentPolicy::AllValidators => {
            let everyone: BTreeSet<PublicKey> = validators.keys().copied().collect();
            submissions.iter().map(|&id| (id, everyone.clone())).collect()
        }
        AssignmentPolicy::StakeMajority => {
            let total = validators.values().fold(0u128, |sum, &stake| sum.saturating_add(stake));
            let mut rng = stream(seed, task, round, Purpose::Validators);
            submissions
                .iter()
                .map(|&id| {
                    let mut order: Vec<(PublicKey, u128)> = validators.iter().map(|(&k, &s)| (k, s)).collect();
                    let len = order.len();
                    shuffle_prefix(&mut rng, &mut order, len);
                    let mut chosen = BTreeSet::new();
                    let mut held = 0u128;
                    for (key, stake) in order {
                        // Strict majority: held > total − held, free of overflow.
                        if held > total - held {
                            break;
                        }
                        held = held.saturating_add(stake);
                        chosen.insert(key);
                    }
                    (id, chosen)
                })
                .collect()
        }
    }
}

/// Whether `keys` hold strictly more than half of the stake in `validators`.
pub(crate) fn holds_majority<'a>(
    validators: &BTreeMap<PublicKey, u128>,
    keys: impl IntoIterator<Item = &'a PublicKey>,
) -> bool {
    let total = validators.values().fold(0u128, |sum, &stake| sum.saturating_add(stake));
    let held = keys.into_iter().filter_map(|k| validators.get(k)).fold(0u128, |sum, &stake| sum.saturating_add(stake));
    held > total - held.min(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    fn ids(n: u8) -> BTreeSet<SubmissionId> {
        (0..n).map(|i| SubmissionId::from_bytes([i; 32])).collect()
    }

    const AT: (u64, TaskId, RoundNumber) = (5, TaskId::new(1), RoundNumber::FIRST);

    #[test]
    fn all_validators_by_default() {
        let validators: BTreeMap<_, _> = [(key(1), 10), (key(2), 20)].into_iter().collect();
        let assigned = assign(AssignmentPolicy::AllValidators, &validators, &ids(3), AT);
        assert_eq!(assigned.len(), 3);
        for set in assigned.values() {
            assert_eq!(set, &[key(1), key(2)].into_iter().collect());
        }
    }

    #[test]
    fn stake_majority_always_holds_a_strict_majority_and_varies() {
        let validators: BTreeMap<_, _> = (1..=9).map(|i| (key(i), u128::from(i) * 1_000)).collect();
        let assigned = assign(AssignmentPolicy::StakeMajority, &validators, &ids(40), AT);
        assert_eq!(assigned.len(), 40);
        let mut distinct = BTreeSet::new();
        for set in assigned.values() {
            assert!(holds_majority(&validators, set), "{set:?}");
            assert!(set.len() < validators.len(), "a majority rarely needs everyone: {set:?}");
            distinct.insert(set.clone());
        }
        assert!(distinct.len() > 1, "sets should differ between submissions");
        assert_eq!(assigned, assign(AssignmentPolicy::StakeMajority, &validators, &ids(40), AT));
    }

    #[test]
    fn exactly_half_is_not_a_majority() {
        let validators: BTreeMap<_, _> = [(key(1), 50), (key(2), 50)].into_iter().collect();
        assert!(!holds_majority(&validators, [&key(1)]));
        assert!(holds_majority(&validators, [&key(1), &key(2)]));
        for set in assign(AssignmentPolicy::StakeMajority, &validators, &ids(5), AT).values() {
            assert_eq!(set.len(), 2);
        }
    }
}
