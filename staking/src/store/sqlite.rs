//! The embedded store: one SQLite file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use starling_protocol::PublicKey;

use super::StoreError;
use super::migrations::{SQLITE, migrator};
use crate::params::Params;

/// A ledger in SQLite. One connection does all the work: SQLite has a single
/// writer anyway, and serialising every transaction through it is what rules
/// out overdraws here.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    admin: PublicKey,
    params: Params,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`), in WAL mode, and applies the migrations.
    pub async fn open(url: &str, admin: PublicKey, params: Params) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        migrator(SQLITE).await?.run(&pool).await?;
        Ok(Self { pool, admin, params })
    }
}

super::transact::ledger_store!(
    SqliteStore,
    sqlx::Sqlite,
    // Take the write lock up front: a deferred transaction that reads, then
    // finds another connection (the coordinator's, on the same file) has
    // committed, cannot upgrade and fails at once; an immediate one waits
    // for the lock under the busy timeout instead.
    begin = "BEGIN IMMEDIATE",
    // `BEGIN IMMEDIATE` already makes writers take turns.
    serialize = "",
    lock = "",
    next_bond = "UPDATE bond_ids SET next = next + 1 RETURNING next - 1"
);
