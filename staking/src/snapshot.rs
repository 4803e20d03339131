//! The rows an operation reads, loaded (and, in PostgreSQL, locked) by the
//! store before planning.

use std::collections::BTreeMap;

use starling_protocol::{PublicKey, TaskId};

use crate::account::BondId;
use crate::amount::{Amount, Timestamp};
use crate::holdings::{Bond, Node, Role, TaskPool};
use crate::params::Params;

/// The part of the ledger's state an operation needs, as of the start of its
/// transaction. Missing rows mean "does not exist".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Free balances of existing accounts.
    pub free: BTreeMap<PublicKey, Amount>,
    /// Bonds, by id.
    pub bonds: BTreeMap<BondId, Bond>,
    /// Nodes, by key.
    pub nodes: BTreeMap<PublicKey, Node>,
    /// Task pools, by task.
    pub pools: BTreeMap<TaskId, TaskPool>,
    /// Micro-units issued so far, minus nothing (burns do not make room for
    /// more issuance): the bound that keeps every balance within `u64`.
    pub issued: Amount,
}

impl Snapshot {
    /// The bonds of `node` in `role`, own stake and delegations alike, in id order.
    pub fn node_bonds(&self, node: &PublicKey, role: Role) -> impl Iterator<Item = &Bond> {
        self.bonds.values().filter(move |bond| bond.node == *node && bond.role == role)
    }
}

/// What planning needs besides the snapshot: the clock, the rules and the
/// network's admin key, all passed in so planning stays deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The current time.
    pub now: Timestamp,
    /// The only key allowed to issue.
    pub admin: PublicKey,
    /// The economic parameters.
    pub params: Params,
    /// A fresh bond id, which the store must supply when
    /// [`Operation::needs_bond_id`](crate::Operation::needs_bond_id) says so.
    pub new_bond: Option<BondId>,
}
