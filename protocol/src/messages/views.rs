//! What reads return: a task, its current round, a validator's assignments, a
//! key's balances and bonds.

use serde::{Deserialize, Serialize};

use crate::ids::{ContentHash, RoundNumber, SubmissionId, TaskId};
use crate::keys::PublicKey;
use crate::messages::role::Role;
use crate::phase::RoundPhase;
use crate::task::TaskSpec;

/// Most bonds a [`BalanceInfo`] lists, so the answer always fits in one
/// control message (256 bonds take about 20 KiB).
pub const MAX_LISTED_BONDS: usize = 256;

/// Most assignments one [`AssignmentPage`] holds, so the answer always fits
/// in one control message (256 take about 36 KiB).
pub const MAX_ASSIGNMENTS_PAGE: usize = 256;

/// Most trainers a round samples, whatever the task's fraction: the sample
/// travels in every [`RoundInfo`], which must fit in one control message
/// (1 500 keys take about 49 KiB). FedAvg samples tens to hundreds per
/// round; a task with more eligible trainers rotates them across rounds.
pub const MAX_SAMPLED_TRAINERS: usize = 1_500;

/// A task as trainers and validators need it to take part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// The task.
    pub task: TaskId,
    /// The key that created (and funded) it.
    pub creator: PublicKey,
    /// Its specification: model, data, schedule, aggregation, economics.
    pub spec: TaskSpec,
    /// The current round, or `None` before round 0 has opened (for example
    /// while no trainer holds the minimum stake).
    pub round: Option<RoundInfo>,
}

/// Where a task's current round stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundInfo {
    /// The task.
    pub task: TaskId,
    /// The current round.
    pub round: RoundNumber,
    /// Its phase.
    pub phase: RoundPhase,
    /// Hash of the global model the round trains from.
    pub global_model: ContentHash,
    /// Length of that model's blob, in bytes (fetch it with
    /// [`ReadRequest::FetchBlob`](crate::messages::ReadRequest::FetchBlob)).
    pub global_model_len: u64,
    /// Updates must arrive before this instant (exclusive), Unix milliseconds.
    pub training_deadline_ms: u64,
    /// Scores must arrive before this instant (exclusive), Unix milliseconds;
    /// `None` until validation has begun, since it is set from when the
    /// submissions are assigned.
    pub validation_deadline_ms: Option<u64>,
    /// The trainers sampled for this round, in ascending key order, at most
    /// [`MAX_SAMPLED_TRAINERS`]. Only they may submit.
    pub sampled_trainers: Vec<PublicKey>,
    /// Whether the whole task is over: no further round will open. (The
    /// round's own end is `phase == Finished`.)
    pub task_finished: bool,
}

impl RoundInfo {
    /// Whether `trainer` may submit to this round. `sampled_trainers` is
    /// sorted, so this is a binary search.
    pub fn is_sampled(&self, trainer: &PublicKey) -> bool {
        self.sampled_trainers.binary_search(trainer).is_ok()
    }
}

/// One submission a validator must score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentInfo {
    /// The submission; name it in the score.
    pub submission: SubmissionId,
    /// The trainer who submitted it.
    pub trainer: PublicKey,
    /// Hash of the update payload `Δ`.
    pub update: ContentHash,
    /// Length of the update payload, in bytes.
    pub update_len: u64,
    /// Hash of the global model `w` the update applies to: score `w + Δ`.
    pub base_model: ContentHash,
}

/// One page of a validator's assignments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AssignmentPage {
    /// At most [`MAX_ASSIGNMENTS_PAGE`], in ascending submission id.
    pub items: Vec<AssignmentInfo>,
    /// `Some(last id)` when more may follow: pass it as the next request's
    /// `after`. `None` on the last page.
    pub next: Option<SubmissionId>,
}

/// A key's money, in µSTAR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceInfo {
    /// The key.
    pub key: PublicKey,
    /// Free (liquid) balance.
    pub free: u64,
    /// Bonded as its own stake, every role together.
    pub staked: u64,
    /// Bonded behind other nodes (delegations it made).
    pub delegated: u64,
    /// Its bonds (own stakes and delegations), at most [`MAX_LISTED_BONDS`],
    /// in ascending bond id.
    pub bonds: Vec<BondInfo>,
    /// Whether it holds more bonds than are listed.
    pub more_bonds: bool,
}

/// One bond: an own stake (`node` is the key itself) or a delegation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondInfo {
    /// The bond's id, for `Unstake` / `Undelegate`.
    pub bond: u64,
    /// The node the stake counts towards.
    pub node: PublicKey,
    /// The role it counts for.
    pub role: Role,
    /// µSTAR locked (after any slashes).
    pub amount: u64,
    /// The lock-up chosen, in days.
    pub lock_days: u16,
    /// When the lock ends, Unix milliseconds; unbonding is refused before.
    pub unlock_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::tests::hash;

    #[test]
    fn is_sampled_searches_the_sorted_list() {
        let keys: Vec<PublicKey> = [1u8, 3, 5].map(|b| PublicKey::from_bytes([b; 32])).into();
        let info = RoundInfo {
            task: TaskId::new(1),
            round: RoundNumber::FIRST,
            phase: RoundPhase::Training,
            global_model: hash(1),
            global_model_len: 10,
            training_deadline_ms: 1,
            validation_deadline_ms: None,
            sampled_trainers: keys,
            task_finished: false,
        };
        assert!(info.is_sampled(&PublicKey::from_bytes([3; 32])));
        assert!(!info.is_sampled(&PublicKey::from_bytes([4; 32])));
    }
}
