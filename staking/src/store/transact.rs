//! One operation, one database transaction: read (and lock) the touched rows,
//! plan, write the plan and the journal, commit. Shared by both backends
//! through a macro, because sqlx's generic executor bounds would be longer
//! than the code; the SQL is the same text for both (SQLite accepts `$1`
//! placeholders), except the row-lock suffix and how bond ids are drawn.

/// Whether a database error is a conflict that a fresh attempt resolves: a
/// unique violation (a concurrent retry of the same idempotency key or
/// settlement won the race), a serialization failure or a deadlock
/// (PostgreSQL), or SQLite's `SQLITE_BUSY` family. The last happens when
/// another connection to the same file (the coordinator shares the ledger's
/// database) commits between this transaction's first read and its first
/// write: SQLite cannot upgrade the stale read snapshot and fails at once
/// instead of waiting, so the transaction must start again.
pub(crate) fn is_retryable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || matches!(db.code().as_deref(), Some("40001" | "40P01" | "5" | "6" | "261" | "262" | "517"))
        }
        _ => false,
    }
}

/// How often a conflicting transaction is retried before giving up: only
/// unique-key races (two first writes of one new row) and SQLite's busy
/// family remain, once transactions are serialized.
pub(crate) const ATTEMPTS: usize = 32;

/// Journal rows per multi-row `INSERT`: 9 bound values each, 9,000 in all,
/// well under SQLite's limit (32,766 since 3.32) and PostgreSQL's (65,535).
pub(crate) const ENTRY_ROWS_PER_INSERT: usize = 1_000;

/// Free-balance credits per multi-row upsert: 2 bound values each.
pub(crate) const CREDIT_ROWS_PER_INSERT: usize = 4_000;

macro_rules! ledger_store {
    (
        $store:ident,
        $db:ty,
        begin = $begin:literal,
        serialize = $serialize:literal,
        lock = $lock:literal,
        next_bond = $next_bond:literal
    ) => {
        impl $store {
            async fn apply_once(
                &self,
                idempotency_key: &str,
                request: &str,
                op: &$crate::Operation,
                now: $crate::Timestamp,
            ) -> Result<$crate::Outcome, $crate::StoreError> {
                use $crate::store::rows::*;
                use $crate::{AccountRef, Outcome, StoreError};
                let mut tx = self.pool.begin_with($begin).await?;
                if !$serialize.is_empty() {
                    sqlx::query($serialize).execute(&mut *tx).await?;
                }

                let previous = sqlx::query_as::<_, (String, Option<i64>, i64, i64)>(
                    "SELECT request, bond_id, rewarded, slashed FROM operations WHERE idempotency_key = $1",
                )
                .bind(idempotency_key)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((stored, bond, rewarded, slashed)) = previous {
                    if stored != request {
                        return Err(StoreError::IdempotencyKeyReused { key: idempotency_key.to_owned() });
                    }
                    let bond = bond.map(|id| u64::try_from(id).map($crate::BondId)).transpose().map_err(|_| {
                        StoreError::Corrupt(format!("bond id in operation {idempotency_key}"))
                    })?;
                    return Ok(Outcome { bond, rewarded: amount_from(rewarded)?, slashed: amount_from(slashed)? });
                }

                // Load the touched rows, each table in key order so that
                // concurrent transactions lock in the same order.
                let touched = op.accounts_touched();
                let mut snapshot = $crate::Snapshot::default();
                if touched.supply {
                    let (issued,) = sqlx::query_as::<_, (i64,)>(concat!("SELECT issued FROM totals WHERE id = 1", $lock))
                        .fetch_one(&mut *tx)
                        .await?;
                    snapshot.issued = amount_from(issued)?;
                }
                for key in &touched.free {
                    let row = sqlx::query_as::<_, (i64,)>(concat!("SELECT balance FROM accounts WHERE key = $1", $lock))
                        .bind(key.as_bytes().as_slice())
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some((balance,)) = row {
                        snapshot.free.insert(*key, amount_from(balance)?);
                    }
                }
                for id in &touched.bonds {
                    let row = sqlx::query_as::<_, BondRow>(concat!(
                        "SELECT id, owner, node, role, amount, lock_days, unlock_at FROM bonds WHERE id = $1",
                        $lock
                    ))
                    .bind(bond_id_column(*id)?)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(row) = row {
                        snapshot.bonds.insert(*id, bond_from(row)?);
                    }
                }
                for (node, role) in &touched.node_bonds {
                    let rows = sqlx::query_as::<_, BondRow>(concat!(
                        "SELECT id, owner, node, role, amount, lock_days, unlock_at FROM bonds",
                        " WHERE node = $1 AND role = $2 ORDER BY id",
                        $lock
                    ))
                    .bind(node.as_bytes().as_slice())
                    .bind(role.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                    for row in rows {
                        let bond = bond_from(row)?;
                        snapshot.bonds.insert(bond.id, bond);
                    }
                }
                for key in &touched.nodes {
                    let row = sqlx::query_as::<_, (i64, i64, i64)>(concat!(
                        "SELECT commission, previous_commission, changed_at FROM nodes WHERE key = $1",
                        $lock
                    ))
                    .bind(key.as_bytes().as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((commission, previous, changed_at)) = row {
                        snapshot.nodes.insert(
                            *key,
                            $crate::Node {
                                key: *key,
                                commission: commission_from(commission)?,
                                previous_commission: commission_from(previous)?,
                                changed_at: time_from(changed_at)?,
                            },
                        );
                    }
                }
                for task in &touched.pools {
                    let row = sqlx::query_as::<_, (i64, i64, i64)>(concat!(
                        "SELECT balance, total_rounds, settled_rounds FROM pools WHERE task = $1",
                        $lock
                    ))
                    .bind(task.get() as i64)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some((balance, total, settled)) = row {
                        let rounds = |v: i64| u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("rounds {v}")));
                        snapshot.pools.insert(
                            *task,
                            $crate::TaskPool {
                                task: *task,
                                balance: amount_from(balance)?,
                                total_rounds: rounds(total)?,
                                settled_rounds: rounds(settled)?,
                            },
                        );
                    }
                }
                let new_bond = if op.needs_bond_id() {
                    let (id,) = sqlx::query_as::<_, (i64,)>($next_bond).fetch_one(&mut *tx).await?;
                    Some($crate::BondId(u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("bond id {id}")))?))
                } else {
                    None
                };

                let ctx = $crate::Context { now, admin: self.admin, params: self.params, new_bond };
                let plan = $crate::plan(op, &snapshot, &ctx)?;

                for bond in &plan.new_bonds {
                    sqlx::query(
                        "INSERT INTO bonds (id, owner, node, role, amount, lock_days, unlock_at) VALUES ($1, $2, $3, $4, 0, $5, $6)",
                    )
                    .bind(bond_id_column(bond.id)?)
                    .bind(bond.owner.as_bytes().as_slice())
                    .bind(bond.node.as_bytes().as_slice())
                    .bind(bond.role.as_str())
                    .bind(i64::from(bond.lock.get()))
                    .bind(time_column(bond.unlock_at)?)
                    .execute(&mut *tx)
                    .await?;
                }
                for node in &plan.nodes {
                    sqlx::query(
                        "INSERT INTO nodes (key, commission, previous_commission, changed_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (key) DO UPDATE SET commission = excluded.commission, \
                         previous_commission = excluded.previous_commission, changed_at = excluded.changed_at",
                    )
                    .bind(node.key.as_bytes().as_slice())
                    .bind(i64::from(node.commission.fraction().get()))
                    .bind(i64::from(node.previous_commission.fraction().get()))
                    .bind(time_column(node.changed_at)?)
                    .execute(&mut *tx)
                    .await?;
                }
                for (task, total, settled) in &plan.pools {
                    sqlx::query(
                        "INSERT INTO pools (task, balance, total_rounds, settled_rounds) VALUES ($1, 0, $2, $3) \
                         ON CONFLICT (task) DO UPDATE SET total_rounds = excluded.total_rounds, \
                         settled_rounds = excluded.settled_rounds",
                    )
                    .bind(task.get() as i64)
                    .bind(i64::from(*total))
                    .bind(i64::from(*settled))
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some((task, round)) = plan.settles {
                    // The primary key refuses a second settlement even if a
                    // planner bug let one through.
                    sqlx::query("INSERT INTO settled_rounds (task, round) VALUES ($1, $2)")
                        .bind(task.get() as i64)
                        .bind(i64::from(round.get()))
                        .execute(&mut *tx)
                        .await?;
                }
                // Credits to free balances (a settlement makes thousands) go in
                // multi-row upserts; every other change is one row update.
                let mut credits = Vec::new();
                for (account, change) in $crate::net_changes(&plan.entries) {
                    let change = i64::try_from(change).map_err(|_| StoreError::Corrupt(format!("change {change}")))?;
                    let query = match account {
                        // Debited accounts exist (the planner checked); only
                        // credits may create one. SQLite checks the proposed
                        // row before resolving a conflict, so a debit cannot
                        // go through the upsert.
                        AccountRef::Free(key) if change < 0 => {
                            sqlx::query("UPDATE accounts SET balance = balance + $2 WHERE key = $1")
                                .bind(key.as_bytes().to_vec())
                                .bind(change)
                        }
                        AccountRef::Free(key) => {
                            credits.push((key, change));
                            continue;
                        }
                        AccountRef::Bond(id) => {
                            sqlx::query("UPDATE bonds SET amount = amount + $2 WHERE id = $1").bind(bond_id_column(id)?).bind(change)
                        }
                        AccountRef::TaskPool(task) => {
                            sqlx::query("UPDATE pools SET balance = balance + $2 WHERE task = $1").bind(task.get() as i64).bind(change)
                        }
                        AccountRef::Treasury => sqlx::query("UPDATE totals SET treasury = treasury + $1").bind(change),
                        AccountRef::Burned => sqlx::query("UPDATE totals SET burned = burned + $1").bind(change),
                        // The mint's balance is minus the issued total.
                        AccountRef::Mint => sqlx::query("UPDATE totals SET issued = issued - $1").bind(change),
                    };
                    query.execute(&mut *tx).await?;
                }
                // `net_changes` names each account once, so no upsert below
                // touches a row twice (PostgreSQL refuses that).
                for chunk in credits.chunks($crate::store::transact::CREDIT_ROWS_PER_INSERT) {
                    let mut upsert = sqlx::QueryBuilder::<$db>::new("INSERT INTO accounts (key, balance) ");
                    upsert.push_values(chunk, |mut row, (key, change)| {
                        row.push_bind(key.as_bytes().as_slice()).push_bind(*change);
                    });
                    upsert.push(" ON CONFLICT (key) DO UPDATE SET balance = accounts.balance + excluded.balance");
                    upsert.build().execute(&mut *tx).await?;
                }
                for id in &plan.closed_bonds {
                    sqlx::query("DELETE FROM bonds WHERE id = $1").bind(bond_id_column(*id)?).execute(&mut *tx).await?;
                }
                let outcome = plan.outcome;
                sqlx::query(
                    "INSERT INTO operations (idempotency_key, request, bond_id, rewarded, slashed, applied_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(idempotency_key)
                .bind(request)
                .bind(outcome.bond.map(bond_id_column).transpose()?)
                .bind(amount_column(outcome.rewarded)?)
                .bind(amount_column(outcome.slashed)?)
                .bind(time_column(now)?)
                .execute(&mut *tx)
                .await?;
                // The journal in multi-row inserts, in plan order (ids ascend
                // with it), each settlement entry with its history columns.
                let mut rows = Vec::with_capacity(plan.entries.len());
                for entry in &plan.entries {
                    let note = $crate::views::annotate(op, &snapshot, entry);
                    rows.push((
                        account_name(entry.from),
                        account_name(entry.to),
                        amount_column(entry.amount)?,
                        entry.kind.as_str(),
                        note.map(|n| n.task.get() as i64),
                        note.map(|n| i64::from(n.round.get())),
                        note.map(|n| *n.identity.as_bytes()),
                        note.and_then(|n| n.bond).map(bond_id_column).transpose()?,
                    ));
                }
                for chunk in rows.chunks($crate::store::transact::ENTRY_ROWS_PER_INSERT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO entries (idempotency_key, from_account, to_account, amount, kind, task, round, identity, bond_id) ",
                    );
                    insert.push_values(chunk, |mut row, (from, to, amount, kind, task, round, identity, bond)| {
                        row.push_bind(idempotency_key)
                            .push_bind(from.as_str())
                            .push_bind(to.as_str())
                            .push_bind(*amount)
                            .push_bind(*kind)
                            .push_bind(*task)
                            .push_bind(*round)
                            .push_bind(identity.as_ref().map(|k| k.as_slice()))
                            .push_bind(*bond);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(outcome)
            }
        }

        impl $crate::LedgerStore for $store {
            async fn apply(
                &self,
                idempotency_key: &str,
                op: &$crate::Operation,
                now: $crate::Timestamp,
            ) -> Result<$crate::Outcome, $crate::StoreError> {
                // A stable fingerprint identifies the operation for idempotency checks.
                let request = op.fingerprint();
                let mut attempt = 1;
                loop {
                    match self.apply_once(idempotency_key, &request, op, now).await {
                        Err($crate::StoreError::Database(e))
                            if attempt < $crate::store::transact::ATTEMPTS && $crate::store::transact::is_retryable(&e) =>
                        {
                            attempt += 1;
                        }
                        other => return other,
                    }
                }
            }

            async fn free_balance(&self, key: &starling_protocol::PublicKey) -> Result<$crate::Amount, $crate::StoreError> {
                let row = sqlx::query_as::<_, (i64,)>("SELECT balance FROM accounts WHERE key = $1")
                    .bind(key.as_bytes().as_slice())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map_or(Ok($crate::Amount::ZERO), |(b,)| $crate::store::rows::amount_from(b))
            }

            async fn bond(&self, id: $crate::BondId) -> Result<Option<$crate::Bond>, $crate::StoreError> {
                let row = sqlx::query_as::<_, $crate::store::rows::BondRow>(
                    "SELECT id, owner, node, role, amount, lock_days, unlock_at FROM bonds WHERE id = $1",
                )
                .bind($crate::store::rows::bond_id_column(id)?)
                .fetch_optional(&self.pool)
                .await?;
                row.map($crate::store::rows::bond_from).transpose()
            }

            async fn bonds_of_node(
                &self,
                node: &starling_protocol::PublicKey,
                role: $crate::Role,
            ) -> Result<Vec<$crate::Bond>, $crate::StoreError> {
                let rows = sqlx::query_as::<_, $crate::store::rows::BondRow>(
                    "SELECT id, owner, node, role, amount, lock_days, unlock_at FROM bonds WHERE node = $1 AND role = $2 ORDER BY id",
                )
                .bind(node.as_bytes().as_slice())
                .bind(role.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map($crate::store::rows::bond_from).collect()
            }

            async fn pool(&self, task: starling_protocol::TaskId) -> Result<Option<$crate::TaskPool>, $crate::StoreError> {
                let row = sqlx::query_as::<_, (i64, i64, i64)>(
                    "SELECT balance, total_rounds, settled_rounds FROM pools WHERE task = $1",
                )
                .bind(task.get() as i64)
                .fetch_optional(&self.pool)
                .await?;
                let Some((balance, total, settled)) = row else { return Ok(None) };
                let rounds = |v: i64| u32::try_from(v).map_err(|_| $crate::StoreError::Corrupt(format!("rounds {v}")));
                Ok(Some($crate::TaskPool {
                    task,
                    balance: $crate::store::rows::amount_from(balance)?,
                    total_rounds: rounds(total)?,
                    settled_rounds: rounds(settled)?,
                }))
            }

            async fn audit(&self) -> Result<$crate::store::Audit, $crate::StoreError> {
                use $crate::store::rows::amount_from;
                // Sums in the database may exceed i64 only if the ledger is
                // broken; fold them here to keep the SQL portable.
                let (issued, treasury, burned) =
                    sqlx::query_as::<_, (i64, i64, i64)>("SELECT issued, treasury, burned FROM totals WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?;
                let mut held = i128::from(treasury) + i128::from(burned);
                for table in [
                    "SELECT balance FROM accounts",
                    "SELECT amount FROM bonds",
                    "SELECT balance FROM pools",
                ] {
                    let rows = sqlx::query_as::<_, (i64,)>(table).fetch_all(&self.pool).await?;
                    held += rows.iter().map(|(v,)| i128::from(*v)).sum::<i128>();
                }
                let held = i64::try_from(held).map_err(|_| $crate::StoreError::Corrupt(format!("held {held}")))?;
                Ok($crate::store::Audit {
                    issued: amount_from(issued)?,
                    held: amount_from(held)?,
                    burned: amount_from(burned)?,
                    treasury: amount_from(treasury)?,
                })
            }

            async fn balances(&self, key: &starling_protocol::PublicKey) -> Result<$crate::Balances, $crate::StoreError> {
                use $crate::store::rows::amount_from;
                // SUM over BIGINT is NUMERIC in PostgreSQL: cast it back. No
                // sum overflows, as every balance is part of the issued total.
                let (free, staked, delegated) = sqlx::query_as::<_, (i64, i64, i64)>(
                    "SELECT COALESCE((SELECT balance FROM accounts WHERE key = $1), 0), \
                     COALESCE((SELECT CAST(SUM(amount) AS BIGINT) FROM bonds WHERE owner = $1 AND node = $1), 0), \
                     COALESCE((SELECT CAST(SUM(amount) AS BIGINT) FROM bonds WHERE owner = $1 AND node <> $1), 0)",
                )
                .bind(key.as_bytes().as_slice())
                .fetch_one(&self.pool)
                .await?;
                Ok($crate::Balances { free: amount_from(free)?, staked: amount_from(staked)?, delegated: amount_from(delegated)? })
            }

            async fn positions(
                &self,
                key: &starling_protocol::PublicKey,
                page: $crate::PageRequest,
            ) -> Result<$crate::Page<$crate::Position>, $crate::StoreError> {
                use $crate::store::rows::*;
                let rows = sqlx::query_as::<_, BondRow>(
                    "SELECT id, owner, node, role, amount, lock_days, unlock_at FROM bonds \
                     WHERE owner = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(key.as_bytes().as_slice())
                .bind(ascending_bound(page))
                .bind(fetch_limit(page))
                .fetch_all(&self.pool)
                .await?;
                let rows = rows.into_iter().map(position_from).collect::<Result<Vec<_>, _>>()?;
                Ok($crate::Page::from_rows(rows, page.clamped_limit()))
            }

            async fn delegators(
                &self,
                node: &starling_protocol::PublicKey,
                role: $crate::Role,
                page: $crate::PageRequest,
            ) -> Result<$crate::Page<$crate::Position>, $crate::StoreError> {
                use $crate::store::rows::*;
                let rows = sqlx::query_as::<_, BondRow>(
                    "SELECT id, owner, node, role, amount, lock_days, unlock_at FROM bonds \
                     WHERE node = $1 AND role = $2 AND owner <> $1 AND id > $3 ORDER BY id LIMIT $4",
                )
                .bind(node.as_bytes().as_slice())
                .bind(role.as_str())
                .bind(ascending_bound(page))
                .bind(fetch_limit(page))
                .fetch_all(&self.pool)
                .await?;
                let rows = rows.into_iter().map(position_from).collect::<Result<Vec<_>, _>>()?;
                Ok($crate::Page::from_rows(rows, page.clamped_limit()))
            }

            async fn task_history(
                &self,
                task: starling_protocol::TaskId,
                page: $crate::PageRequest,
            ) -> Result<$crate::Page<$crate::HistoryEntry>, $crate::StoreError> {
                use $crate::store::rows::*;
                let sql = format!("{HISTORY_COLUMNS} WHERE e.task = $1 AND e.id < $2 ORDER BY e.id DESC LIMIT $3");
                let rows = sqlx::query_as::<_, HistoryRow>(&sql)
                    .bind(task.get() as i64)
                    .bind(descending_bound(page))
                    .bind(fetch_limit(page))
                    .fetch_all(&self.pool)
                    .await?;
                let rows = rows.into_iter().map(history_from).collect::<Result<Vec<_>, _>>()?;
                Ok($crate::Page::from_rows(rows, page.clamped_limit()))
            }

            async fn identity_history(
                &self,
                key: &starling_protocol::PublicKey,
                page: $crate::PageRequest,
            ) -> Result<$crate::Page<$crate::HistoryEntry>, $crate::StoreError> {
                use $crate::store::rows::*;
                let sql = format!("{HISTORY_COLUMNS} WHERE e.identity = $1 AND e.id < $2 ORDER BY e.id DESC LIMIT $3");
                let rows = sqlx::query_as::<_, HistoryRow>(&sql)
                    .bind(key.as_bytes().as_slice())
                    .bind(descending_bound(page))
                    .bind(fetch_limit(page))
                    .fetch_all(&self.pool)
                    .await?;
                let rows = rows.into_iter().map(history_from).collect::<Result<Vec<_>, _>>()?;
                Ok($crate::Page::from_rows(rows, page.clamped_limit()))
            }
        }
    };
}

pub(crate) use ledger_store;
