//! The production store: PostgreSQL, with row locks.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use starling_protocol::PublicKey;

use super::StoreError;
use super::migrations::{POSTGRES, migrator};
use crate::params::Params;

/// A ledger in PostgreSQL. Ledger transactions run one at a time (a
/// transaction-scoped advisory lock taken first), so no two can deadlock or
/// overdraw; the rows an operation reads are also locked
/// (`SELECT … FOR UPDATE`) against any other writer. Unique-key races are
/// retried.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    admin: PublicKey,
    params: Params,
}

impl PostgresStore {
    /// Connects with `options` (e.g. parsed from `DATABASE_URL`) and applies
    /// the migrations.
    pub async fn connect(options: PgConnectOptions, admin: PublicKey, params: Params) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(16).connect_with(options).await?;
        migrator(POSTGRES).await?.run(&pool).await?;
        Ok(Self { pool, admin, params })
    }
}

super::transact::ledger_store!(
    PostgresStore,
    sqlx::Postgres,
    begin = "BEGIN",
    // One ledger transaction at a time, as on SQLite: row locks alone
    // deadlocked under contention (rows that do not exist yet are locked
    // only by the upsert at the end, out of order, and bonds are locked by
    // id and then by node), and serializing costs nothing measurable: the
    // concurrency bench runs at least as fast (README, Ledger). The lock is
    // released with the transaction.
    serialize = "SELECT pg_advisory_xact_lock(7208001)",
    lock = " FOR UPDATE",
    next_bond = "SELECT nextval('bond_ids')"
);
