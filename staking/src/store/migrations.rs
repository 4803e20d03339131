//! The SQL migrations, embedded in the binary and applied at start-up, and
//! the migrator every store of this database uses (the coordinator's too).
//!
//! A hand-written [`MigrationSource`] over `include_str!` rather than
//! `sqlx::migrate!`: the macro needs sqlx's proc-macro crate (and a second
//! build of its drivers) only to do what these few lines do.

use std::borrow::Cow;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// `(version, description, sql)` of each migration, in order.
pub type Embedded = &'static [(i64, &'static str, &'static str)];

/// The ledger's SQLite migrations (versions below 100).
pub const SQLITE: Embedded = &[
    (1, "ledger", include_str!("../../../migrations/sqlite/0001_ledger.sql")),
    (2, "read models", include_str!("../../../migrations/sqlite/0002_read_models.sql")),
];
/// The ledger's PostgreSQL migrations (versions below 100).
pub const POSTGRES: Embedded = &[
    (1, "ledger", include_str!("../../../migrations/postgres/0001_ledger.sql")),
    (2, "read models", include_str!("../../../migrations/postgres/0002_read_models.sql")),
];

/// Embedded migrations as a sqlx [`MigrationSource`].
#[derive(Debug)]
pub struct Source(pub Embedded);

impl<'s> MigrationSource<'s> for Source {
    fn resolve(self) -> futures_core_box::BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
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

/// Named here so the signature matches sqlx's trait without a direct
/// dependency on `futures-core`.
mod futures_core_box {
    pub(crate) type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

/// A migrator over `migrations`.
///
/// The coordinator keeps its tables in the same database with migrations
/// numbered from 100 (`migrations/*/0100_coordinator.sql`) and its own
/// migrator; both share sqlx's bookkeeping table, so each must tolerate the
/// other's versions being applied. The ledger's versions stay below 100.
pub async fn migrator(migrations: Embedded) -> Result<Migrator, sqlx::migrate::MigrateError> {
    let mut migrator = Migrator::new(Source(migrations)).await?;
    migrator.set_ignore_missing(true);
    Ok(migrator)
}
