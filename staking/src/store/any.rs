//! A ledger chosen at run time from its URL.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use starling_protocol::{PublicKey, TaskId};

use super::{Audit, Backend, LedgerStore, PostgresStore, SqliteStore, StoreError};
use crate::account::BondId;
use crate::amount::{Amount, Timestamp};
use crate::holdings::{Bond, Role, TaskPool};
use crate::journal::Outcome;
use crate::operation::Operation;
use crate::params::Params;
use crate::views::{Balances, HistoryEntry, Page, PageRequest, Position};

/// Either backend, picked by [`open_any`] from a configured URL.
#[derive(Debug, Clone)]
pub enum AnyLedgerStore {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
}

/// Opens the ledger `url` names: `sqlite:…` with [`SqliteStore::open`],
/// `postgres://…` or `postgresql://…` with [`PostgresStore::connect`]; any
/// other scheme is [`StoreError::UnsupportedUrl`].
pub async fn open_any(url: &str, admin: PublicKey, params: Params) -> Result<AnyLedgerStore, StoreError> {
    match Backend::of(url).map_err(|e| StoreError::UnsupportedUrl(e.0))? {
        Backend::Sqlite => Ok(AnyLedgerStore::Sqlite(SqliteStore::open(url, admin, params).await?)),
        Backend::Postgres => {
            let options = PgConnectOptions::from_str(url)?;
            Ok(AnyLedgerStore::Postgres(PostgresStore::connect(options, admin, params).await?))
        }
    }
}

macro_rules! forward {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            AnyLedgerStore::Sqlite(store) => store.$method($($arg),*).await,
            AnyLedgerStore::Postgres(store) => store.$method($($arg),*).await,
        }
    };
}

impl LedgerStore for AnyLedgerStore {
    async fn apply(&self, idempotency_key: &str, op: &Operation, now: Timestamp) -> Result<Outcome, StoreError> {
        forward!(self.apply(idempotency_key, op, now))
    }

    async fn free_balance(&self, key: &PublicKey) -> Result<Amount, StoreError> {
        forward!(self.free_balance(key))
    }

    async fn bond(&self, id: BondId) -> Result<Option<Bond>, StoreError> {
        forward!(self.bond(id))
    }

    async fn bonds_of_node(&self, node: &PublicKey, role: Role) -> Result<Vec<Bond>, StoreError> {
        forward!(self.bonds_of_node(node, role))
    }

    async fn pool(&self, task: TaskId) -> Result<Option<TaskPool>, StoreError> {
        forward!(self.pool(task))
    }

    async fn audit(&self) -> Result<Audit, StoreError> {
        forward!(self.audit())
    }

    async fn balances(&self, key: &PublicKey) -> Result<Balances, StoreError> {
        forward!(self.balances(key))
    }

    async fn positions(&self, key: &PublicKey, page: PageRequest) -> Result<Page<Position>, StoreError> {
        forward!(self.positions(key, page))
    }

    async fn delegators(&self, node: &PublicKey, role: Role, page: PageRequest) -> Result<Page<Position>, StoreError> {
        forward!(self.delegators(node, role, page))
    }

    async fn task_history(&self, task: TaskId, page: PageRequest) -> Result<Page<HistoryEntry>, StoreError> {
        forward!(self.task_history(task, page))
    }

    async fn identity_history(&self, key: &PublicKey, page: PageRequest) -> Result<Page<HistoryEntry>, StoreError> {
        forward!(self.identity_history(key, page))
    }
}
