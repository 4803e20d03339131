//! Conversions between ledger values and SQL columns.

use starling_protocol::PublicKey;

use super::StoreError;
use crate::account::{AccountRef, BondId};
use crate::amount::{Amount, Timestamp};
use crate::holdings::{Bond, Role};
use crate::journal::EntryKind;
use crate::params::{Commission, LockDays};
use crate::views::{HistoryEntry, PageRequest, Position};

/// An amount as a signed column; issuance is capped at `i64::MAX`, so this
/// only fails on a ledger bug.
pub(crate) fn amount_column(amount: Amount) -> Result<i64, StoreError> {
    i64::try_from(amount.micro()).map_err(|_| StoreError::Corrupt(format!("{amount} exceeds i64")))
}

pub(crate) fn amount_from(value: i64) -> Result<Amount, StoreError> {
    u64::try_from(value).map(Amount::from_micro).map_err(|_| StoreError::Corrupt(format!("negative amount {value}")))
}

pub(crate) fn key_from(bytes: &[u8]) -> Result<PublicKey, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(PublicKey::from_bytes)
        .map_err(|_| StoreError::Corrupt(format!("key of {} bytes", bytes.len())))
}

pub(crate) fn commission_from(value: i64) -> Result<Commission, StoreError> {
    u32::try_from(value)
        .ok()
        .and_then(|ppm| Commission::from_ppm(ppm).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("commission {value}")))
}

pub(crate) fn time_from(value: i64) -> Result<Timestamp, StoreError> {
    u64::try_from(value).map(Timestamp).map_err(|_| StoreError::Corrupt(format!("time {value}")))
}

pub(crate) fn time_column(time: Timestamp) -> Result<i64, StoreError> {
    i64::try_from(time.0).map_err(|_| StoreError::Corrupt(format!("time {} exceeds i64", time.0)))
}

/// A bond row: `(id, owner, node, role, amount, lock_days, unlock_at)`.
pub(crate) type BondRow = (i64, Vec<u8>, Vec<u8>, String, i64, i64, i64);

pub(crate) fn bond_from(row: BondRow) -> Result<Bond, StoreError> {
    let (id, owner, node, role, amount, lock_days, unlock_at) = row;
    Ok(Bond {
        id: BondId(u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("bond id {id}")))?),
        owner: key_from(&owner)?,
        node: key_from(&node)?,
        role: role.parse::<Role>().map_err(|_| StoreError::Corrupt(format!("role {role}")))?,
        amount: amount_from(amount)?,
        lock: u16::try_from(lock_days)
            .ok()
            .and_then(|d| LockDays::new(d).ok())
            .ok_or_else(|| StoreError::Corrupt(format!("lock {lock_days}")))?,
        unlock_at: time_from(unlock_at)?,
    })
}

pub(crate) fn bond_id_column(id: BondId) -> Result<i64, StoreError> {
    i64::try_from(id.0).map_err(|_| StoreError::Corrupt(format!("bond id {id}")))
}

/// How an account is named in the journal's text columns.
pub(crate) fn account_name(account: AccountRef) -> String {
    account.to_string()
}

/// The first id past an ascending page's cursor bound (`id > bound`).
pub(crate) fn ascending_bound(page: PageRequest) -> i64 {
    page.after.map_or(0, |c| i64::try_from(c.get()).unwrap_or(i64::MAX))
}

/// The bound of a descending page (`id < bound`).
pub(crate) fn descending_bound(page: PageRequest) -> i64 {
    page.after.map_or(i64::MAX, |c| i64::try_from(c.get()).unwrap_or(i64::MAX))
}

/// One more than the page's limit: the extra row says whether more follow.
pub(crate) fn fetch_limit(page: PageRequest) -> i64 {
    i64::from(page.clamped_limit()) + 1
}

/// A bond row as a position keyed by its id, for [`crate::Page::from_rows`].
pub(crate) fn position_from(row: BondRow) -> Result<(u64, Position), StoreError> {
    let bond = bond_from(row)?;
    Ok((bond.id.0, Position::from(bond)))
}

/// A history row: `(entry id, task, round, identity, kind, amount, bond_id, applied_at)`.
pub(crate) type HistoryRow = (i64, i64, i64, Vec<u8>, String, i64, Option<i64>, i64);

/// The columns of a history query; `e` is `entries`, `o` its `operations` row.
pub(crate) const HISTORY_COLUMNS: &str = "SELECT e.id, e.task, e.round, e.identity, e.kind, e.amount, e.bond_id, \
     o.applied_at FROM entries e JOIN operations o ON o.idempotency_key = e.idempotency_key";

pub(crate) fn history_from(row: HistoryRow) -> Result<(u64, HistoryEntry), StoreError> {
    let (id, task, round, identity, kind, amount, bond, at) = row;
    let id = u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("entry id {id}")))?;
    let entry = HistoryEntry {
        task: starling_protocol::TaskId::new(
            u64::try_from(task).map_err(|_| StoreError::Corrupt(format!("task {task}")))?,
        ),
        round: starling_protocol::RoundNumber::new(
            u32::try_from(round).map_err(|_| StoreError::Corrupt(format!("round {round}")))?,
        ),
        identity: key_from(&identity)?,
        kind: EntryKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("entry kind {kind}")))?,
        amount: amount_from(amount)?,
        bond: bond
            .map(|b| u64::try_from(b).map(BondId).map_err(|_| StoreError::Corrupt(format!("bond id {b}"))))
            .transpose()?,
        at: time_from(at)?,
    };
    Ok((id, entry))
}
