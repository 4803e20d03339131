//! What the ledger holds besides balances: stake bonds (and the role each
//! counts for), nodes and task pools.

use starling_protocol::{PublicKey, TaskId};

use crate::account::BondId;
use crate::amount::{Amount, Timestamp};
use crate::params::{Commission, LockDays};

/// The role a stake is bonded for: the protocol's [`Role`](starling_protocol::Role),
/// one type from the wire to the ledger's rows (stored as its text form,
/// `trainer` or `validator`). A key may be both a trainer and a validator;
/// its stakes (and the delegations to it) count per role.
pub use starling_protocol::Role;

/// Locked stake. An own stake position has `owner == node`; a delegation has
/// `owner` (the delegator) ≠ `node`. Both lock the same way, count towards the
/// node's effective stake in `role`, share its rewards and its slashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bond {
    /// This bond's id.
    pub id: BondId,
    /// Who put the money in and gets it back on unstaking.
    pub owner: PublicKey,
    /// The node whose stake this counts towards.
    pub node: PublicKey,
    /// The role it counts for.
    pub role: Role,
    /// Micro-units still bonded (slashes lower it).
    pub amount: Amount,
    /// The lock-up chosen when bonding.
    pub lock: LockDays,
    /// Unstaking is refused before this instant.
    pub unlock_at: Timestamp,
}

impl Bond {
    /// Whether this is a delegation rather than the node's own stake.
    pub fn is_delegation(&self) -> bool {
        self.owner != self.node
    }

    /// `amount · m(lock)`, floored; see [`LockDays::effective`].
    pub fn effective(&self) -> u128 {
        self.lock.effective(self.amount)
    }
}

/// A key that has staked at least once, with its commission history.
///
/// Commission changes take effect from the next round: a round uses the
/// commission that was in force when it opened. The node keeps the current
/// value and the one before it, which answers that question for every round
/// opened since the previous change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// The node's key.
    pub key: PublicKey,
    /// The commission set by the latest change.
    pub commission: Commission,
    /// The commission in force before the latest change.
    pub previous_commission: Commission,
    /// When the latest change was made (the epoch if never).
    pub changed_at: Timestamp,
}

impl Node {
    /// A node that has never set a commission (σ = 0).
    pub fn new(key: PublicKey) -> Self {
        Self {
            key,
            commission: Commission::default(),
            previous_commission: Commission::default(),
            changed_at: Timestamp(0),
        }
    }

    /// The commission for a round opened at `opened_at`: a change counts only
    /// for rounds opened strictly after it, so a node cannot raise its cut on
    /// a round already under way.
    pub fn commission_for_round(&self, opened_at: Timestamp) -> Commission {
        if opened_at > self.changed_at { self.commission } else { self.previous_commission }
    }
}

/// A task's escrowed reward pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskPool {
    /// The task.
    pub task: TaskId,
    /// Micro-units escrowed and not yet paid out.
    pub balance: Amount,
    /// Rounds the pool pays for in total.
    pub total_rounds: u32,
    /// Rounds settled so far; the next round to settle has this number.
    pub settled_rounds: u32,
}

impl TaskPool {
    /// Rounds still to pay, the divisor of the round budget.
    pub fn rounds_left(&self) -> u32 {
        self.total_rounds.saturating_sub(self.settled_rounds)
    }
}
