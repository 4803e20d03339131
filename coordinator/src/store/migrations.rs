//! The coordinator's SQL migrations, embedded in the binary and applied at
//! start-up.
//!
//! The coordinator shares its database (and sqlx's `_sqlx_migrations` table)
//! with the ledger, whose migrations are versions 1 to 99; the coordinator's
//! are 100 and up. Each migrator must therefore ignore versions applied that
//! it does not know ([`Migrator::set_ignore_missing`]); a version it knows
//! must still match its checksum.
//!
//! Like the ledger's, a hand-written [`MigrationSource`] over `include_str!`
//! rather than `sqlx::migrate!`, which would need sqlx's proc-macro crate.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

/// `(version, description, sql)` of each migration, in order.
type Embedded = &'static [(i64, &'static str, &'static str)];

pub(crate) const SQLITE: Embedded =
    &[(100, "coordinator", include_str!("../../../migrations/sqlite/0100_coordinator.sql"))];
pub(crate) const POSTGRES: Embedded =
    &[(100, "coordinator", include_str!("../../../migrations/postgres/0100_coordinator.sql"))];

/// The boxed future sqlx's trait returns, spelled out so that `futures-core`
/// need not be a dependency.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug)]
struct Source(Embedded);

impl<'s> MigrationSource<'s> for Source {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// A migrator over `migrations` that tolerates the ledger's versions.
pub(crate) async fn migrator(migrations: Embedded) -> Result<Migrator, MigrateError> {
    let mut migrator = Migrator::new(Source(migrations)).await?;
    migrator.set_ignore_missing(true);
    Ok(migrator)
}

#[cfg(test)]
mod tests {
    use super::*;

    use sqlx::sqlite::SqlitePoolOptions;

    /// The ledger's migrations, as its migrator would run them once it sets
    /// `ignore_missing` too (the one change staking needs).
    const LEDGER: Embedded = &[
        (1, "ledger", include_str!("../../../migrations/sqlite/0001_ledger.sql")),
        (2, "read models", include_str!("../../../migrations/sqlite/0002_read_models.sql")),
    ];

    async fn ledger_migrator(ignore_missing: bool) -> Migrator {
        let mut migrator = Migrator::new(Source(LEDGER)).await.unwrap();
        migrator.set_ignore_missing(ignore_missing);
        migrator
    }

    #[tokio::test]
    async fn both_migrators_share_one_database_in_either_order() {
        for coordinator_first in [true, false] {
            let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
            let coordinator = migrator(SQLITE).await.unwrap();
            let ledger = ledger_migrator(true).await;
            if coordinator_first {
                coordinator.run(&pool).await.unwrap();
            }
            ledger.run(&pool).await.unwrap();
            coordinator.run(&pool).await.unwrap();
            ledger.run(&pool).await.unwrap();
            coordinator.run(&pool).await.unwrap();
            let versions: Vec<(i64,)> =
                sqlx::query_as("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.unwrap();
            assert_eq!(versions, [(1,), (2,), (100,)]);
        }
    }

    #[tokio::test]
    async fn the_ledger_migrator_as_it_is_refuses_the_coordinators_version() {
        // Documents why staking must set `ignore_missing`: without it, the
        // ledger refuses a database on which the coordinator has migrated.
        let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        migrator(SQLITE).await.unwrap().run(&pool).await.unwrap();
        let refused = ledger_migrator(false).await.run(&pool).await;
        assert!(matches!(refused, Err(MigrateError::VersionMissing(100))), "{refused:?}");
    }
}
