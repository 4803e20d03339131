//! The production store: PostgreSQL.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::StoreError;
use super::migrations::{POSTGRES, migrator};

/// The coordinator's state in PostgreSQL, which several coordinators may
/// share: unique keys settle racing inserts, the state version settles
/// racing saves, and leases assign tasks (see
/// [`CoordinatorStore`](super::CoordinatorStore)).
#[derive(Debug, Clone)]
pub struct PostgresCoordinatorStore {
    pool: PgPool,
}

impl PostgresCoordinatorStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`) and applies
    /// the coordinator's migrations (leaving the ledger's alone).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with `options` (for instance with a `search_path` set) and
    /// applies the coordinator's migrations.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(16).connect_with(options).await?;
        migrator(POSTGRES).await?.run(&pool).await?;
        Ok(Self { pool })
    }
}

super::queries::coordinator_store!(PostgresCoordinatorStore);
super::market::market_store!(PostgresCoordinatorStore);
super::verdicts::verdict_store!(PostgresCoordinatorStore);
