//! The embedded store: one SQLite file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::StoreError;
use super::migrations::{SQLITE, migrator};

/// The coordinator's state in SQLite. One connection does all the work:
/// SQLite has a single writer anyway, and an in-memory database lives only as
/// long as its connection. The file may be shared with the ledger's
/// [`SqliteStore`](starling_staking::SqliteStore); the two wait for each
/// other's writes (busy timeout of 5 s).
#[derive(Debug, Clone)]
pub struct SqliteCoordinatorStore {
    pool: SqlitePool,
}

impl SqliteCoordinatorStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`), in WAL mode with foreign keys enforced, and
    /// applies the coordinator's migrations (leaving the ledger's alone).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            // Never recycle the one connection: an in-memory database would
            // vanish with it.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        migrator(SQLITE).await?.run(&pool).await?;
        Ok(Self { pool })
    }
}

super::queries::coordinator_store!(SqliteCoordinatorStore);
super::market::market_store!(SqliteCoordinatorStore);
super::verdicts::verdict_store!(SqliteCoordinatorStore);
