//! The planner: a pure function from an operation and the rows it reads to
//! the balanced entries and row changes that carry it out, or a typed refusal.

use starling_protocol::PublicKey;

use crate::account::{AccountRef, BondId};
use crate::amount::{Amount, MAX_SUPPLY};
use crate::error::LedgerError;
use crate::holdings::{Bond, Node, Role};
use crate::journal::{EntryKind, Outcome, Plan};
use crate::operation::Operation;
use crate::params::{Commission, LockDays};
use crate::settlement::plan_settlement;
use crate::snapshot::{Context, Snapshot};

/// Plans `op` against `snapshot` at `ctx.now`.
///
/// Pure and deterministic: the same inputs give the same plan. On `Err`
/// nothing is to be written. Every plan's entries are balanced (each entry has
/// two sides) and debit no account below zero, given a snapshot that is
/// current for the rows [`Operation::accounts_touched`] names.
///
/// # Panics
/// If `op` [needs a bond id](Operation::needs_bond_id) and `ctx.new_bond` is
/// `None`: a store that does that has broken its contract.
pub fn plan(op: &Operation, snapshot: &Snapshot, ctx: &Context) -> Result<Plan, LedgerError> {
    let mut plan = Plan::default();
    match op {
        Operation::Issue { by, to, amount } => {
            if *by != ctx.admin {
                return Err(LedgerError::NotAdmin { by: *by });
            }
            nonzero(*amount)?;
            // Every balance is part of the issued total, so bounding the total
            // keeps every later credit from overflowing, in memory and in a
            // signed 64-bit database column alike.
            if snapshot.issued.checked_add(*amount)? > MAX_SUPPLY {
                return Err(LedgerError::Overflow);
            }
            plan.push(AccountRef::Mint, AccountRef::Free(*to), *amount, EntryKind::Issue);
        }
        Operation::Transfer { from, to, amount } => {
            nonzero(*amount)?;
            if from == to {
                return Err(LedgerError::SelfTransfer);
            }
            debit_free(snapshot, from, *amount)?;
            plan.push(AccountRef::Free(*from), AccountRef::Free(*to), *amount, EntryKind::Transfer);
        }
        Operation::Stake { owner, role, amount, lock_days } => {
            bond(&mut plan, snapshot, ctx, *owner, *owner, *role, *amount, *lock_days)?;
            if !snapshot.nodes.contains_key(owner) {
                plan.nodes.push(Node::new(*owner));
            }
        }
        Operation::Delegate { delegator, node, role, amount, lock_days } => {
            if delegator == node {
                return Err(LedgerError::SelfDelegation);
            }
            if !snapshot.nodes.contains_key(node) {
                return Err(LedgerError::UnknownNode { key: *node });
            }
            bond(&mut plan, snapshot, ctx, *delegator, *node, *role, *amount, *lock_days)?;
        }
        Operation::Unstake { owner, bond } => unbond(&mut plan, snapshot, ctx, *owner, *bond, false)?,
        Operation::Undelegate { delegator, bond } => unbond(&mut plan, snapshot, ctx, *delegator, *bond, true)?,
        Operation::SetCommission { node, commission_ppm } => {
            let commission = Commission::from_ppm(*commission_ppm)?;
            let current = snapshot.nodes.get(node).ok_or(LedgerError::UnknownNode { key: *node })?;
            plan.nodes.push(Node {
                key: *node,
                commission,
                // What rounds opened up to now use; see `Node::commission_for_round`.
                previous_commission: current.commission_for_round(ctx.now),
                changed_at: ctx.now,
            });
        }
        Operation::FundTask { funder, task, amount, total_rounds } => {
            nonzero(*amount)?;
            if *total_rounds == 0 {
                return Err(LedgerError::ZeroRounds);
            }
            match snapshot.pools.get(task) {
                Some(pool) if pool.total_rounds != *total_rounds => {
                    return Err(LedgerError::TaskRoundsMismatch {
                        task: *task,
                        existing: pool.total_rounds,
                        requested: *total_rounds,
                    });
                }
                // Money escrowed after the last round could never be paid out.
                Some(pool) if pool.rounds_left() == 0 => return Err(LedgerError::TaskFinished { task: *task }),
                Some(_) => {}
                None => plan.pools.push((*task, *total_rounds, 0)),
            }
            debit_free(snapshot, funder, *amount)?;
            plan.push(AccountRef::Free(*funder), AccountRef::TaskPool(*task), *amount, EntryKind::Fund);
        }
        Operation::RefundTask { task, to } => {
            let pool = snapshot.pools.get(task).ok_or(LedgerError::UnknownTask { task: *task })?;
            // Closed: no round is left to fund or settle.
            plan.pools.push((*task, pool.total_rounds, pool.total_rounds));
            plan.push(AccountRef::TaskPool(*task), AccountRef::Free(*to), pool.balance, EntryKind::Refund);
        }
        Operation::Burn { from, amount } => {
            nonzero(*amount)?;
            debit_free(snapshot, from, *amount)?;
            plan.push(AccountRef::Free(*from), AccountRef::Burned, *amount, EntryKind::Burn);
        }
        Operation::PayFee { payer, shares, treasury } => plan_fee(&mut plan, snapshot, *payer, shares, *treasury)?,
        Operation::SettleRound(report) => return plan_settlement(report, snapshot, ctx),
    }
    Ok(plan)
}

fn plan_fee(
    plan: &mut Plan,
    snapshot: &Snapshot,
    payer: PublicKey,
    shares: &[(PublicKey, Amount)],
    treasury: Amount,
) -> Result<(), LedgerError> {
    let mut seen = std::collections::BTreeSet::new();
    if let Some((key, _)) = shares.iter().find(|(key, _)| !seen.insert(*key)) {
        return Err(LedgerError::DuplicateShare { key: *key });
    }
    let paid = shares.iter().filter(|(key, _)| *key != payer).map(|(_, amount)| *amount);
    let total = crate::arithmetic::checked_sum(paid.chain([treasury]))?;
    nonzero(total)?;
    debit_free(snapshot, &payer, total)?;
    for (key, amount) in shares.iter().filter(|(key, _)| *key != payer) {
        plan.push(AccountRef::Free(payer), AccountRef::Free(*key), *amount, EntryKind::Payment);
    }
    plan.push(AccountRef::Free(payer), AccountRef::Treasury, treasury, EntryKind::Fee);
    Ok(())
}

fn nonzero(amount: Amount) -> Result<(), LedgerError> {
    if amount.is_zero() { Err(LedgerError::ZeroAmount) } else { Ok(()) }
}

fn debit_free(snapshot: &Snapshot, key: &PublicKey, amount: Amount) -> Result<(), LedgerError> {
    let available = *snapshot.free.get(key).ok_or(LedgerError::UnknownAccount { key: *key })?;
    if available < amount {
        return Err(LedgerError::InsufficientFunds { account: AccountRef::Free(*key), needed: amount, available });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)] // one call per bond kind; a struct would only rename them
fn bond(
    plan: &mut Plan,
    snapshot: &Snapshot,
    ctx: &Context,
    owner: PublicKey,
    node: PublicKey,
    role: Role,
    amount: Amount,
    lock_days: u16,
) -> Result<(), LedgerError> {
    nonzero(amount)?;
    let lock = LockDays::new(lock_days)?;
    debit_free(snapshot, &owner, amount)?;
    let id = ctx.new_bond.expect("the store supplies a bond id for Stake and Delegate");
    plan.new_bonds.push(Bond {
        id,
        owner,
        node,
        role,
        amount: Amount::ZERO,
        lock,
        unlock_at: ctx.now.plus_days(lock.get()),
    });
    plan.push(AccountRef::Free(owner), AccountRef::Bond(id), amount, EntryKind::Bond);
    plan.outcome = Outcome { bond: Some(id), ..Outcome::default() };
    Ok(())
}

fn unbond(
    plan: &mut Plan,
    snapshot: &Snapshot,
    ctx: &Context,
    owner: PublicKey,
    id: BondId,
    delegation: bool,
) -> Result<(), LedgerError> {
    let bond = snapshot.bonds.get(&id).ok_or(LedgerError::UnknownBond { bond: id })?;
    if bond.owner != owner {
        return Err(LedgerError::NotBondOwner { bond: id, key: owner });
    }
    if bond.is_delegation() != delegation {
        let name = |d: bool| if d { "a delegation" } else { "own stake" };
        return Err(LedgerError::WrongBondKind { bond: id, expected: name(delegation), actual: name(!delegation) });
    }
    if ctx.now < bond.unlock_at {
        return Err(LedgerError::LockNotEnded { bond: id, unlock_at: bond.unlock_at });
    }
    // The fee is floored: an owner never pays more than 5%.
    let fee = ctx.params.unstake_fee.of(bond.amount);
    plan.push(AccountRef::Bond(id), AccountRef::Treasury, fee, EntryKind::Fee);
    plan.push(AccountRef::Bond(id), AccountRef::Free(owner), bond.amount.checked_sub(fee)?, EntryKind::Unbond);
    plan.closed_bonds.push(id);
    Ok(())
}
