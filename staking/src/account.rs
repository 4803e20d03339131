//! Where money sits: the accounts every journal entry moves money between,
//! and the ids of stake bonds among them.
//!
//! These are names, not records, so they stand below [`LedgerError`](crate::LedgerError),
//! which names them; the records (bonds, nodes, task pools) are in `holdings.rs`.

use std::fmt;

use starling_protocol::{PublicKey, TaskId};

/// Identifies a bond: an own stake position or a delegation. Assigned by the
/// store when the bond is made, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct BondId(pub u64);

impl fmt::Display for BondId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An account that can hold money, the two sides of every journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountRef {
    /// Where issued money comes from. It holds nothing: its "balance" is minus
    /// the total ever issued, tracked as a counter.
    Mint,
    /// A key's free (liquid) balance.
    Free(PublicKey),
    /// A bond's locked amount.
    Bond(BondId),
    /// A task's escrow pool.
    TaskPool(TaskId),
    /// The network treasury (unstaking fees).
    Treasury,
    /// The burn sink: money here is out of circulation for good.
    Burned,
}

impl fmt::Display for AccountRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mint => write!(f, "mint"),
            Self::Free(key) => write!(f, "free:{key}"),
            Self::Bond(id) => write!(f, "bond:{id}"),
            Self::TaskPool(task) => write!(f, "pool:{task}"),
            Self::Treasury => write!(f, "treasury"),
            Self::Burned => write!(f, "burned"),
        }
    }
}
