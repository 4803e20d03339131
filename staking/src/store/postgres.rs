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

/// A fresh, empty schema on the PostgreSQL server `url` names, for a test or
/// benchmark that must not see another's tables: created as `{prefix}_{pid}_{n}`
/// (unique in this process and among concurrent ones), and returned with the
/// connect options that put it first on the search path, so that every table
/// either store makes lands in it. The caller drops it when it wants to.
pub async fn scratch_schema(url: &str, prefix: &str) -> Result<(String, PgConnectOptions), StoreError> {
    use std::str::FromStr as _;
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let schema = format!("{prefix}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let options = PgConnectOptions::from_str(url)?;
    let admin = PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await?;
    admin.close().await;
    let options = options.options([("search_path", schema.as_str())]);
    Ok((schema, options))
}
