//! An in-memory ledger: the reference model that property tests compare the
//! database stores against, and a ledger for simulations.

use std::collections::{BTreeMap, BTreeSet};

use starling_protocol::{PublicKey, RoundNumber, TaskId};

use crate::account::{AccountRef, BondId};
use crate::amount::{Amount, Timestamp};
use crate::arithmetic::checked_sum;
use crate::error::LedgerError;
use crate::holdings::{Bond, Node, TaskPool};
use crate::journal::{Entry, Outcome, Plan, apply_change, net_changes};
use crate::operation::{Operation, Touched};
use crate::params::Params;
use crate::plan::plan;
use crate::snapshot::{Context, Snapshot};
use crate::views::{HistoryEntry, annotate};

/// The whole ledger in memory. Applies operations with the same planner as
/// the database stores, loading exactly the rows
/// [`Operation::accounts_touched`] names, so it also checks that list.
#[derive(Debug, Clone)]
pub struct MemoryLedger {
    admin: PublicKey,
    params: Params,
    free: BTreeMap<PublicKey, Amount>,
    bonds: BTreeMap<BondId, Bond>,
    nodes: BTreeMap<PublicKey, Node>,
    pools: BTreeMap<TaskId, TaskPool>,
    treasury: Amount,
    burned: Amount,
    issued: Amount,
    settled: BTreeSet<(TaskId, RoundNumber)>,
    next_bond: u64,
    journal: Vec<Vec<Entry>>,
    history: Vec<HistoryEntry>,
}

impl MemoryLedger {
    /// An empty ledger whose issuer is `admin`.
    pub fn new(admin: PublicKey, params: Params) -> Self {
        Self {
            admin,
            params,
            free: BTreeMap::new(),
            bonds: BTreeMap::new(),
            nodes: BTreeMap::new(),
            pools: BTreeMap::new(),
            treasury: Amount::ZERO,
            burned: Amount::ZERO,
            issued: Amount::ZERO,
            settled: BTreeSet::new(),
            next_bond: 1,
            journal: Vec::new(),
            history: Vec::new(),
        }
    }

    /// Plans and applies `op` at `now`. On `Err` nothing changed.
    pub fn apply(&mut self, op: &Operation, now: Timestamp) -> Result<Outcome, LedgerError> {
        let snapshot = self.snapshot(&op.accounts_touched());
        let new_bond = op.needs_bond_id().then_some(BondId(self.next_bond));
        let ctx = Context { now, admin: self.admin, params: self.params, new_bond };
        let plan = plan(op, &snapshot, &ctx)?;
        self.write(&plan)?;
        for entry in &plan.entries {
            if let Some(annotation) = annotate(op, &snapshot, entry) {
                self.history.push(HistoryEntry::new(annotation, entry, now));
            }
        }
        if new_bond.is_some() {
            self.next_bond += 1;
        }
        Ok(plan.outcome)
    }

    fn snapshot(&self, touched: &Touched) -> Snapshot {
        let mut snapshot = Snapshot { issued: self.issued, ..Snapshot::default() };
        for key in &touched.free {
            if let Some(balance) = self.free.get(key) {
                snapshot.free.insert(*key, *balance);
            }
        }
        for id in &touched.bonds {
            if let Some(bond) = self.bonds.get(id) {
                snapshot.bonds.insert(*id, bond.clone());
            }
        }
        for bond in self.bonds.values().filter(|b| touched.node_bonds.contains(&(b.node, b.role))) {
            snapshot.bonds.insert(bond.id, bond.clone());
        }
        for key in &touched.nodes {
            if let Some(node) = self.nodes.get(key) {
                snapshot.nodes.insert(*key, *node);
            }
        }
        for task in &touched.pools {
            if let Some(pool) = self.pools.get(task) {
                snapshot.pools.insert(*task, *pool);
            }
        }
        snapshot
    }

    /// Applies a plan all-or-nothing: every new balance is computed and
    /// checked before any is written.
    fn write(&mut self, plan: &Plan) -> Result<(), LedgerError> {
        if let Some(round) = plan.settles
            && self.settled.contains(&round)
        {
            return Err(LedgerError::RoundAlreadySettled { task: round.0, round: round.1 });
        }
        let mut bonds: BTreeMap<BondId, Bond> = plan.new_bonds.iter().map(|b| (b.id, b.clone())).collect();
        let mut pools: BTreeMap<TaskId, TaskPool> = BTreeMap::new();
        for (task, total_rounds, settled_rounds) in &plan.pools {
            let balance = self.pools.get(task).map_or(Amount::ZERO, |p| p.balance);
            pools.insert(
                *task,
                TaskPool { task: *task, balance, total_rounds: *total_rounds, settled_rounds: *settled_rounds },
            );
        }
        let mut free = BTreeMap::new();
        let (mut treasury, mut burned, mut issued) = (self.treasury, self.burned, self.issued);
        for (account, change) in net_changes(&plan.entries) {
            match account {
                AccountRef::Mint => issued = apply_change(account, issued, -change)?,
                AccountRef::Free(key) => {
                    let balance = self.free.get(&key).copied().unwrap_or_default();
                    free.insert(key, apply_change(account, balance, change)?);
                }
                AccountRef::Bond(id) => {
                    let mut bond = match bonds.remove(&id).or_else(|| self.bonds.get(&id).cloned()) {
                        Some(bond) => bond,
                        None => return Err(LedgerError::UnknownBond { bond: id }),
                    };
                    bond.amount = apply_change(account, bond.amount, change)?;
                    bonds.insert(id, bond);
                }
                AccountRef::TaskPool(task) => {
                    let mut pool = match pools.remove(&task).or_else(|| self.pools.get(&task).copied()) {
                        Some(pool) => pool,
                        None => return Err(LedgerError::UnknownTask { task }),
                    };
                    pool.balance = apply_change(account, pool.balance, change)?;
                    pools.insert(task, pool);
                }
                AccountRef::Treasury => treasury = apply_change(account, treasury, change)?,
                AccountRef::Burned => burned = apply_change(account, burned, change)?,
            }
        }
        // Everything checked: commit.
        self.free.extend(free);
        self.bonds.extend(bonds);
        for id in &plan.closed_bonds {
            self.bonds.remove(id);
        }
        self.pools.extend(pools);
        self.nodes.extend(plan.nodes.iter().map(|n| (n.key, *n)));
        (self.treasury, self.burned, self.issued) = (treasury, burned, issued);
        if let Some(round) = plan.settles {
            self.settled.insert(round);
        }
        self.journal.push(plan.entries.clone());
        Ok(())
    }

    /// `key`'s free balance (zero if it has none).
    pub fn free_balance(&self, key: &PublicKey) -> Amount {
        self.free.get(key).copied().unwrap_or_default()
    }

    /// A bond, if it exists.
    pub fn bond(&self, id: BondId) -> Option<&Bond> {
        self.bonds.get(&id)
    }

    /// Every bond, in id order.
    pub fn bonds(&self) -> impl Iterator<Item = &Bond> {
        self.bonds.values()
    }

    /// A node, if the key has ever staked.
    pub fn node(&self, key: &PublicKey) -> Option<&Node> {
        self.nodes.get(key)
    }

    /// A task's pool, if funded.
    pub fn pool(&self, task: TaskId) -> Option<&TaskPool> {
        self.pools.get(&task)
    }

    /// The treasury's balance.
    pub fn treasury(&self) -> Amount {
        self.treasury
    }

    /// Micro-units burned, by request or by slashing.
    pub fn burned(&self) -> Amount {
        self.burned
    }

    /// Micro-units ever issued.
    pub fn issued(&self) -> Amount {
        self.issued
    }

    /// Every applied operation's entries, oldest first.
    pub fn journal(&self) -> &[Vec<Entry>] {
        &self.journal
    }

    /// Every reward and slash of every settled round, oldest first: what the
    /// stores' history read models page through (newest first).
    pub fn history(&self) -> &[HistoryEntry] {
        &self.history
    }

    /// Sum of every balance that holds money (free, bonds, pools, treasury,
    /// burned). Conservation says it always equals [`MemoryLedger::issued`].
    pub fn total_held(&self) -> Result<Amount, LedgerError> {
        checked_sum(
            self.free
                .values()
                .copied()
                .chain(self.bonds.values().map(|b| b.amount))
                .chain(self.pools.values().map(|p| p.balance))
                .chain([self.treasury, self.burned]),
        )
    }
}
