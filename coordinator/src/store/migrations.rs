//! The coordinator's SQL migrations, embedded in the binary and applied at
//! start-up.
//!
//! The coordinator shares its database (and sqlx's `_sqlx_migrations` table)
//! with the ledger, whose migrations are versions 1 to 99; the coordinator's
//! are 100 and up. Both run through the ledger's migrator
//! ([`starling_staking::migrations::migrator`]), which ignores applied
//! versions it does not know; a version it knows must still match its
//! checksum.

use starling_staking::migrations::Embedded;
pub(crate) use starling_staking::migrations::migrator;

pub(crate) const SQLITE: Embedded = &[
    (100, "coordinator", include_str!("../../../migrations/sqlite/0100_coordinator.sql")),
    (101, "participants", include_str!("../../../migrations/sqlite/0101_participants.sql")),
    (102, "market", include_str!("../../../migrations/sqlite/0102_market.sql")),
    (103, "verdicts", include_str!("../../../migrations/sqlite/0103_verdicts.sql")),
    (104, "task reservations", include_str!("../../../migrations/sqlite/0104_task_reservations.sql")),
    (105, "public models", include_str!("../../../migrations/sqlite/0105_public_models.sql")),
];
pub(crate) const POSTGRES: Embedded = &[
    (100, "coordinator", include_str!("../../../migrations/postgres/0100_coordinator.sql")),
    (101, "participants", include_str!("../../../migrations/postgres/0101_participants.sql")),
    (102, "market", include_str!("../../../migrations/postgres/0102_market.sql")),
    (103, "verdicts", include_str!("../../../migrations/postgres/0103_verdicts.sql")),
    (104, "task reservations", include_str!("../../../migrations/postgres/0104_task_reservations.sql")),
    (105, "public models", include_str!("../../../migrations/postgres/0105_public_models.sql")),
];

#[cfg(test)]
mod tests {
    use super::*;

    use sqlx::migrate::{MigrateError, Migrator};
    use sqlx::sqlite::SqlitePoolOptions;
    use starling_staking::migrations::{SQLITE as LEDGER, Source};

    #[tokio::test]
    async fn both_migrators_share_one_database_in_either_order() {
        for coordinator_first in [true, false] {
            let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
            let coordinator = migrator(SQLITE).await.unwrap();
            let ledger = migrator(LEDGER).await.unwrap();
            if coordinator_first {
                coordinator.run(&pool).await.unwrap();
            }
            ledger.run(&pool).await.unwrap();
            coordinator.run(&pool).await.unwrap();
            ledger.run(&pool).await.unwrap();
            coordinator.run(&pool).await.unwrap();
            let versions: Vec<(i64,)> =
                sqlx::query_as("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.unwrap();
            assert_eq!(versions, [(1,), (2,), (100,), (101,), (102,), (103,), (104,), (105,)]);
        }
    }

    #[tokio::test]
    async fn a_migrator_that_does_not_ignore_missing_versions_refuses_the_shared_database() {
        // Why the shared migrator sets `ignore_missing`: without it, the
        // ledger refuses a database on which the coordinator has migrated.
        let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        migrator(SQLITE).await.unwrap().run(&pool).await.unwrap();
        let strict = Migrator::new(Source(LEDGER)).await.unwrap();
        let refused = strict.run(&pool).await;
        assert!(matches!(refused, Err(MigrateError::VersionMissing(100))), "{refused:?}");
    }
}
