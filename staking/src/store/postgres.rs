//! The production store: PostgreSQL, with row locks.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use starling_protocol::PublicKey;

use super::StoreError;
use super::migrations::{POSTGRES, migrator};
use crate::params::Params;

/// A ledger in PostgreSQL. Every row an operation reads is locked
/// (`SELECT … FOR UPDATE`) in a fixed order until the transaction ends, so
/// two operations on the same account run one after the other and neither
/// can overdraw; deadlocks and unique-key races are retried.
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
    lock = " FOR UPDATE",
    next_bond = "SELECT nextval('bond_ids')"
);
