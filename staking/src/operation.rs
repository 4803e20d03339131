//! The operations a caller may ask of the ledger, and which rows each one
//! reads, so a store can load (and lock) exactly those before planning.

use std::collections::BTreeSet;

use starling_protocol::{PublicKey, TaskId};

use crate::account::BondId;
use crate::amount::Amount;
use crate::holdings::Role;
use crate::settlement::RoundReport;

/// One request to the ledger. Keys are identities already authenticated by
/// the caller (a verified signed envelope); the ledger checks only the rules.
/// Raw numbers (days, ppm) are validated by the planner, so a bad value is a
/// typed [`LedgerError`](crate::LedgerError), never a panic.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Operation {
    /// Create `amount` new µSTAR in `to`'s free balance. Only the network's
    /// admin key may do this; it is recorded like every other entry.
    Issue {
        /// Who asks (must be the admin key).
        by: PublicKey,
        /// Who receives.
        to: PublicKey,
        /// How much.
        amount: Amount,
    },
    /// Move free balance between keys.
    Transfer {
        /// Payer.
        from: PublicKey,
        /// Payee (created on first credit).
        to: PublicKey,
        /// How much.
        amount: Amount,
    },
    /// Lock free balance as own stake in `role` for `lock_days` (0–365).
    Stake {
        /// The staker, who becomes a node.
        owner: PublicKey,
        /// Trainer or validator.
        role: Role,
        /// How much.
        amount: Amount,
        /// Lock-up in days.
        lock_days: u16,
    },
    /// Return an own stake bond after its lock ends, less the unstaking fee.
    Unstake {
        /// The staker.
        owner: PublicKey,
        /// The bond.
        bond: BondId,
    },
    /// Lock free balance behind `node` in `role`.
    Delegate {
        /// The delegator.
        delegator: PublicKey,
        /// A key that has staked.
        node: PublicKey,
        /// The node's role the stake counts for.
        role: Role,
        /// How much.
        amount: Amount,
        /// Lock-up in days.
        lock_days: u16,
    },
    /// Return a delegation after its lock ends, less the unstaking fee.
    Undelegate {
        /// The delegator.
        delegator: PublicKey,
        /// The delegation bond.
        bond: BondId,
    },
    /// Set the node's commission (0–500 000 ppm), in force for rounds opened
    /// after now.
    SetCommission {
        /// The node.
        node: PublicKey,
        /// σ in parts per million.
        commission_ppm: u32,
    },
    /// Escrow free balance into a task's reward pool.
    FundTask {
        /// Who pays.
        funder: PublicKey,
        /// The task.
        task: TaskId,
        /// How much.
        amount: Amount,
        /// Rounds the pool pays for; fixed by the first funding.
        total_rounds: u32,
    },
    /// Close a task's pool and return what is left in it to `to` (the
    /// task's creator, its only funder). Nothing can be funded or settled
    /// for the task afterwards. Like [`SettleRound`](Self::SettleRound) it
    /// is the coordinator's to ask: the caller decides who `to` is.
    RefundTask {
        /// The task.
        task: TaskId,
        /// Who receives the pool's balance.
        to: PublicKey,
    },
    /// Destroy free balance.
    Burn {
        /// Whose.
        from: PublicKey,
        /// How much.
        amount: Amount,
    },
    /// Pay a fee from free balance: each share to its key, the rest to the
    /// treasury (marketplace inference: the model's creator, its task's
    /// trainers and validators, and the network). A share to the payer itself
    /// is simply not taken.
    PayFee {
        /// Who pays.
        payer: PublicKey,
        /// Who receives what; each key at most once.
        shares: Vec<(PublicKey, Amount)>,
        /// The treasury's part.
        treasury: Amount,
    },
    /// Pay a round's rewards and apply its slashes.
    SettleRound(RoundReport),
}

impl Operation {
    /// A stable fingerprint of this request, for idempotency checks: the
    /// BLAKE3 hash (hex) of its postcard encoding. Unlike a `Debug` string it
    /// does not change when field names or float formatting do, so a retry
    /// after an upgrade is still recognised as the same request.
    pub fn fingerprint(&self) -> String {
        // Plain data into a Vec: postcard cannot fail here.
        let bytes = postcard::to_stdvec(self).expect("an Operation always encodes");
        blake3::hash(&bytes).to_hex().to_string()
    }
    /// The rows the planner reads for this operation.
    pub fn accounts_touched(&self) -> Touched {
        let mut touched = Touched::default();
        match self {
            Self::Issue { .. } => touched.supply = true,
            Self::Transfer { from, .. } | Self::Burn { from, .. } | Self::PayFee { payer: from, .. } => {
                touched.free.insert(*from);
            }
            Self::Stake { owner, .. } => {
                touched.free.insert(*owner);
                touched.nodes.insert(*owner);
            }
            Self::Unstake { bond, .. } | Self::Undelegate { bond, .. } => {
                touched.bonds.insert(*bond);
            }
            Self::Delegate { delegator, node, .. } => {
                touched.free.insert(*delegator);
                touched.nodes.insert(*node);
            }
            Self::SetCommission { node, .. } => {
                touched.nodes.insert(*node);
            }
            Self::FundTask { funder, task, .. } => {
                touched.free.insert(*funder);
                touched.pools.insert(*task);
            }
            Self::RefundTask { task, .. } => {
                touched.pools.insert(*task);
            }
            Self::SettleRound(report) => {
                touched.pools.insert(report.task);
                for (key, role) in report.participants() {
                    touched.nodes.insert(key);
                    touched.node_bonds.insert((key, role));
                }
            }
        }
        touched
    }

    /// Whether planning needs a fresh [`BondId`] from the store.
    pub fn needs_bond_id(&self) -> bool {
        matches!(self, Self::Stake { .. } | Self::Delegate { .. })
    }
}

/// Rows an operation reads. Credits need no row (the store creates free
/// accounts on first credit), so only debited or inspected rows are listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Free balances.
    pub free: BTreeSet<PublicKey>,
    /// Bonds by id.
    pub bonds: BTreeSet<BondId>,
    /// Node rows.
    pub nodes: BTreeSet<PublicKey>,
    /// Every bond (own and delegated) of a node in a role.
    pub node_bonds: BTreeSet<(PublicKey, Role)>,
    /// Task pools.
    pub pools: BTreeSet<TaskId>,
    /// The issued total (read by issuance only, which is then serialised).
    pub supply: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    #[test]
    fn fingerprints_are_stable_and_tell_requests_apart() {
        let transfer = |micro| Operation::Transfer { from: key(1), to: key(2), amount: Amount::from_micro(micro) };
        assert_eq!(transfer(5).fingerprint(), transfer(5).fingerprint());
        assert_ne!(transfer(5).fingerprint(), transfer(6).fingerprint());
        // Pinned: an idempotency key stored by this version must still match
        // its request after an upgrade. Changing the encoding breaks retries.
        assert_eq!(transfer(5).fingerprint(), PINNED);
    }

    const PINNED: &str = "9782fe1298841b0d409246712841f87b0385465517cf2ef76a2f423a1fcb75e7";
}
