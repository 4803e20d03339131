//! Durable ledgers: the [`LedgerStore`] trait and its SQLite and PostgreSQL
//! implementations.

mod any;
mod backend;
mod error;
pub mod migrations;
mod postgres;
mod rows;
mod sqlite;
mod transact;

use std::future::Future;

use starling_protocol::{PublicKey, TaskId};

pub use any::{AnyLedgerStore, open_any};
pub use backend::{Backend, UnsupportedScheme};
pub use error::StoreError;
pub use postgres::{PostgresStore, scratch_schema};
pub use sqlite::SqliteStore;

use crate::account::BondId;
use crate::amount::{Amount, Timestamp};
use crate::holdings::{Bond, Role, TaskPool};
use crate::journal::Outcome;
use crate::operation::Operation;
use crate::views::{Balances, HistoryEntry, Page, PageRequest, Position};

/// The totals an auditor checks: conservation holds when `held == issued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    /// Micro-units ever issued.
    pub issued: Amount,
    /// Micro-units in every account, bond, pool, the treasury and the burn sink.
    pub held: Amount,
    /// Micro-units burned.
    pub burned: Amount,
    /// The treasury's balance.
    pub treasury: Amount,
}

/// A durable ledger. Each [`apply`](LedgerStore::apply) is one database
/// transaction that plans with [`plan`](crate::plan) over the rows it read
/// (locked where the database can) and writes the plan, or writes nothing.
pub trait LedgerStore: Send + Sync {
    /// Applies `op` at `now` under the caller's idempotency key: a retry with
    /// the same key and operation returns the first outcome and changes
    /// nothing; the same key with a different operation is
    /// [`StoreError::IdempotencyKeyReused`]. A refused operation records
    /// nothing, so it may be retried (with the same key) once fixed.
    fn apply(
        &self,
        idempotency_key: &str,
        op: &Operation,
        now: Timestamp,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send;

    /// `key`'s free balance (zero if it has none).
    fn free_balance(&self, key: &PublicKey) -> impl Future<Output = Result<Amount, StoreError>> + Send;

    /// A bond, if it exists.
    fn bond(&self, id: BondId) -> impl Future<Output = Result<Option<Bond>, StoreError>> + Send;

    /// Every bond behind `node` in `role`: its own stake and its delegators.
    fn bonds_of_node(&self, node: &PublicKey, role: Role)
    -> impl Future<Output = Result<Vec<Bond>, StoreError>> + Send;

    /// A task's pool, if funded.
    fn pool(&self, task: TaskId) -> impl Future<Output = Result<Option<TaskPool>, StoreError>> + Send;

    /// Conservation totals.
    fn audit(&self) -> impl Future<Output = Result<Audit, StoreError>> + Send;

    /// What `key` holds: free balance, own stake and delegations made (all
    /// zero for a key the ledger has never seen).
    fn balances(&self, key: &PublicKey) -> impl Future<Output = Result<Balances, StoreError>> + Send;

    /// `key`'s bonds, own stakes and delegations it made alike, in bond id
    /// order (oldest first).
    fn positions(
        &self,
        key: &PublicKey,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Position>, StoreError>> + Send;

    /// The delegations behind `node` in `role` (its own stake excluded), in
    /// bond id order (oldest first).
    fn delegators(
        &self,
        node: &PublicKey,
        role: Role,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Position>, StoreError>> + Send;

    /// Rewards and slashes of `task`'s settled rounds, newest first (within
    /// one settlement, the reverse of the order its entries were planned in).
    fn task_history(
        &self,
        task: TaskId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<HistoryEntry>, StoreError>> + Send;

    /// Rewards paid to `key` and slashes of its bonds, every task together,
    /// newest first like [`task_history`](LedgerStore::task_history).
    fn identity_history(
        &self,
        key: &PublicKey,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<HistoryEntry>, StoreError>> + Send;
}
