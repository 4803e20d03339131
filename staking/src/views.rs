//! Read models for the dashboard: what an identity holds, who delegates to a
//! node, and the reward and slash history of a task or an identity.
//!
//! Lists that can grow without bound come in [`Page`]s with keyset
//! pagination (the protocol's: one type from the stores to the API).

pub use starling_protocol::{Cursor, MAX_PAGE, Page, PageRequest};
use starling_protocol::{PublicKey, RoundNumber, TaskId};

use crate::account::{AccountRef, BondId};
use crate::amount::{Amount, Timestamp};
use crate::holdings::Bond;
use crate::journal::{Entry, EntryKind};
use crate::operation::Operation;
use crate::snapshot::Snapshot;

/// What an identity holds, in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    /// Free (liquid) balance.
    pub free: Amount,
    /// Bonded as its own stake, every role together.
    pub staked: Amount,
    /// Bonded behind other nodes (delegations it made).
    pub delegated: Amount,
}

/// A bond as the dashboard shows it: the bond (with its lock-up and unlock
/// time) and its effective stake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The bond.
    pub bond: Bond,
    /// `amount · m(lock)`, floored; see [`LockDays::effective`](crate::LockDays::effective).
    pub effective: u128,
}

impl From<Bond> for Position {
    fn from(bond: Bond) -> Self {
        Self { effective: bond.effective(), bond }
    }
}

/// One reward or slash of a settled round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The task whose round it was.
    pub task: TaskId,
    /// The round.
    pub round: RoundNumber,
    /// Who was paid ([`EntryKind::Reward`]) or whose bond was cut
    /// ([`EntryKind::SlashToPool`], [`EntryKind::SlashBurn`]).
    pub identity: PublicKey,
    /// One of the three kinds above.
    pub kind: EntryKind,
    /// Micro-units moved.
    pub amount: Amount,
    /// The slashed bond; `None` for rewards.
    pub bond: Option<BondId>,
    /// When the settlement was applied.
    pub at: Timestamp,
}

/// The history columns of one journal entry: set on the rewards and slashes
/// of a settlement, absent on every other entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Annotation {
    pub(crate) task: TaskId,
    pub(crate) round: RoundNumber,
    pub(crate) identity: PublicKey,
    pub(crate) bond: Option<BondId>,
}

/// Annotates `entry` of `op`, planned over `snapshot`. A slash names its
/// bond's owner, read from the snapshot because the bond may be gone (unstaked)
/// by the time anyone asks.
pub(crate) fn annotate(op: &Operation, snapshot: &Snapshot, entry: &Entry) -> Option<Annotation> {
    let Operation::SettleRound(report) = op else { return None };
    let (identity, bond) = match (entry.kind, entry.from, entry.to) {
        (EntryKind::Reward, _, AccountRef::Free(key)) => (key, None),
        (EntryKind::SlashToPool | EntryKind::SlashBurn, AccountRef::Bond(id), _) => {
            (snapshot.bonds.get(&id)?.owner, Some(id))
        }
        _ => return None,
    };
    Some(Annotation { task: report.task, round: report.round, identity, bond })
}

impl HistoryEntry {
    pub(crate) fn new(annotation: Annotation, entry: &Entry, at: Timestamp) -> Self {
        Self {
            task: annotation.task,
            round: annotation.round,
            identity: annotation.identity,
            kind: entry.kind,
            amount: entry.amount,
            bond: annotation.bond,
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_knows_whether_more_follow() {
        let rows = |n: u64| (1..=n).map(|i| (i * 10, i)).collect::<Vec<_>>();
        assert_eq!(Page::from_rows(rows(3), 3), Page { items: vec![1, 2, 3], next: None });
        assert_eq!(Page::from_rows(rows(4), 3), Page { items: vec![1, 2, 3], next: Some(Cursor::new(30)) });
        assert_eq!(Page::<u64>::from_rows(vec![], 3), Page { items: vec![], next: None });
        assert_eq!(PageRequest::first(0).clamped_limit(), 1);
        assert_eq!(PageRequest::first(u32::MAX).clamped_limit(), MAX_PAGE);
    }
}
