//! Why a store could not apply an operation.

use crate::error::LedgerError;

/// A store failed: a ledger rule refused the operation, or the database did.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A ledger rule refused the operation; nothing was written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The idempotency key was used before for a different operation.
    #[error("idempotency key {key:?} was already used for a different operation")]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// The database failed or is unreachable; the operation may be retried.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be migrated at start-up.
    #[error("migrating the ledger schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row holds a value the ledger never writes.
    #[error("corrupt ledger row: {0}")]
    Corrupt(String),
    /// A database URL with a scheme no store speaks (only the scheme is
    /// kept: the rest may hold a password).
    #[error("unsupported ledger database URL scheme `{0}` (use sqlite: or postgres://)")]
    UnsupportedUrl(String),
}
