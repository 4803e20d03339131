//! The double-entry journal: every operation becomes one balanced
//! transaction of entries, each moving an amount from one account to another.

use starling_protocol::{RoundNumber, TaskId};

use crate::account::{AccountRef, BondId};
use crate::amount::Amount;
use crate::holdings::{Bond, Node};

/// Why an entry moved money; read models filter on it (reward and slash
/// history per task and per identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// New money from the mint (admin only).
    Issue,
    /// Free balance to free balance.
    Transfer,
    /// Free balance into a bond (stake or delegation).
    Bond,
    /// A bond back to its owner's free balance.
    Unbond,
    /// A fee to the treasury: the unstaking fee, the treasury's share of a
    /// marketplace fee.
    Fee,
    /// A share of a marketplace fee, from the payer to a contributor.
    Payment,
    /// Escrow into a task pool.
    Fund,
    /// A task pool's balance back to its funder.
    Refund,
    /// Money taken out of circulation on request.
    Burn,
    /// A round reward, from the pool to a node or delegator.
    Reward,
    /// Half a slash, from a bond back to the task pool.
    SlashToPool,
    /// The other half of a slash, from a bond to the burn sink.
    SlashBurn,
}

impl EntryKind {
    /// The name stored in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Transfer => "transfer",
            Self::Bond => "bond",
            Self::Unbond => "unbond",
            Self::Fee => "fee",
            Self::Payment => "payment",
            Self::Fund => "fund",
            Self::Refund => "refund",
            Self::Burn => "burn",
            Self::Reward => "reward",
            Self::SlashToPool => "slash_to_pool",
            Self::SlashBurn => "slash_burn",
        }
    }

    /// Parses [`EntryKind::as_str`]'s output.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Issue,
            Self::Transfer,
            Self::Bond,
            Self::Unbond,
            Self::Fee,
            Self::Payment,
            Self::Fund,
            Self::Refund,
            Self::Burn,
            Self::Reward,
            Self::SlashToPool,
            Self::SlashBurn,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// One movement of money: `amount` leaves `from` and arrives in `to`.
///
/// Because every entry has both sides, any list of entries is balanced by
/// construction; the supply changes only when one side is
/// [`AccountRef::Mint`] (issuance) or [`AccountRef::Burned`] (burning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The account debited.
    pub from: AccountRef,
    /// The account credited.
    pub to: AccountRef,
    /// Micro-units moved; never zero (planners drop empty entries).
    pub amount: Amount,
    /// Why.
    pub kind: EntryKind,
}

/// What a planned operation changes besides balances.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Bonds to create (with amount zero) before the entries are applied.
    pub new_bonds: Vec<Bond>,
    /// Node rows to insert or overwrite.
    pub nodes: Vec<Node>,
    /// Pools to insert or update: `(task, total_rounds, settled_rounds)`.
    /// Their balances move only through entries.
    pub pools: Vec<(TaskId, u32, u32)>,
    /// The balanced entries, applied in order.
    pub entries: Vec<Entry>,
    /// Bonds to delete after the entries have emptied them.
    pub closed_bonds: Vec<BondId>,
    /// The round this operation settles, recorded so it can never settle again.
    pub settles: Option<(TaskId, RoundNumber)>,
    /// What the caller is told.
    pub outcome: Outcome,
}

impl Plan {
    /// Appends an entry, dropping it when the amount is zero.
    pub(crate) fn push(&mut self, from: AccountRef, to: AccountRef, amount: Amount, kind: EntryKind) {
        if !amount.is_zero() {
            self.entries.push(Entry { from, to, amount, kind });
        }
    }
}

/// The result of an applied operation, returned again (unchanged) when the
/// same idempotency key is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The bond the operation made (`Stake`, `Delegate`), if any.
    pub bond: Option<BondId>,
    /// Micro-units paid out as rewards (`SettleRound`).
    pub rewarded: Amount,
    /// Micro-units slashed (`SettleRound`).
    pub slashed: Amount,
}

/// The net change each account undergoes from `entries`, in `i128` so that
/// no sum of `u64` amounts can overflow. Stores apply these (one update per
/// account) after checking that no balance leaves `0 ..= u64::MAX`. The values
/// always sum to zero: every entry adds to one side what it takes from the other.
pub fn net_changes(entries: &[Entry]) -> std::collections::BTreeMap<AccountRef, i128> {
    let mut changes = std::collections::BTreeMap::new();
    for entry in entries {
        let amount = i128::from(entry.amount.micro());
        *changes.entry(entry.from).or_insert(0) -= amount;
        *changes.entry(entry.to).or_insert(0) += amount;
    }
    changes
}

/// `balance + change` if it stays within `0 ..= u64::MAX`.
pub(crate) fn apply_change(account: AccountRef, balance: Amount, change: i128) -> Result<Amount, crate::LedgerError> {
    let new = i128::from(balance.micro()) + change;
    if new < 0 {
        return Err(crate::LedgerError::InsufficientFunds {
            account,
            needed: Amount::from_micro(u64::try_from(-change).unwrap_or(u64::MAX)),
            available: balance,
        });
    }
    u64::try_from(new).map(Amount::from_micro).map_err(|_| crate::LedgerError::Overflow)
}
