//! The marketplace's durable state: models, their versions (one per
//! promoted task) and the free inference quota used per identity and day,
//! behind [`MarketStore`], implemented for both backends by one macro.

use std::future::Future;

use starling_protocol::{ContentHash, PublicKey, RoundNumber, TaskId};

use super::{Page, PageRequest, StoreError};
use crate::round::UnixMillis;

/// A finished task's best model, to become its model's next version.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    /// The task that produced it.
    pub task: TaskId,
    /// The task's creator: the model's owner.
    pub creator: PublicKey,
    /// The model's name, `{dataset}-{architecture}`.
    pub name: String,
    /// The round whose aggregate it is.
    pub round: RoundNumber,
    /// The model file in the artifact store.
    pub hash: ContentHash,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// The validators' consensus estimate of its accuracy.
    pub consensus_accuracy: f64,
    /// The coordinator's own accuracy measurement, if any.
    pub accuracy: Option<f64>,
    /// The coordinator's own loss measurement, if any.
    pub loss: Option<f64>,
    /// When.
    pub at: UnixMillis,
}

/// A marketplace model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketModel {
    /// Its id.
    pub id: u64,
    /// Whose it is.
    pub creator: PublicKey,
    /// `{dataset}-{architecture}`.
    pub name: String,
    /// When its first version was promoted.
    pub created_at: UnixMillis,
    /// How many versions it has.
    pub versions: u32,
}

/// One version of a marketplace model.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketVersion {
    /// The model.
    pub model: u64,
    /// The version, from 1.
    pub version: u32,
    /// The task that produced it.
    pub task: TaskId,
    /// The round whose aggregate it is.
    pub round: RoundNumber,
    /// The model file.
    pub hash: ContentHash,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// The validators' consensus estimate of its accuracy.
    pub consensus_accuracy: f64,
    /// The coordinator's accuracy measurement, if any.
    pub accuracy: Option<f64>,
    /// The coordinator's loss measurement, if any.
    pub loss: Option<f64>,
    /// When it was promoted.
    pub promoted_at: UnixMillis,
}

/// The marketplace's store.
pub trait MarketStore: Send + Sync {
    /// Makes `promotion` the next version of the model `(creator, name)`,
    /// creating the model on its first promotion, and returns the version.
    /// Once per task: promoting a task again returns the version it already
    /// made, whatever the new promotion says.
    fn promote(&self, promotion: &Promotion) -> impl Future<Output = Result<MarketVersion, StoreError>> + Send;

    /// Models in ascending id, each with its newest version.
    fn market_models(
        &self,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<(MarketModel, MarketVersion)>, StoreError>> + Send;

    /// A model and all its versions, newest first; `None` if there is no such model.
    fn market_model(
        &self,
        id: u64,
    ) -> impl Future<Output = Result<Option<(MarketModel, Vec<MarketVersion>)>, StoreError>> + Send;

    /// Finished tasks that have no version yet (promotion pending, or the
    /// task produced no model), by id.
    fn finished_unpromoted(&self) -> impl Future<Output = Result<Vec<TaskId>, StoreError>> + Send;

    /// Free inference inputs `caller` has used on `day` (days since the epoch).
    fn free_items_used(&self, caller: &PublicKey, day: u64) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Moves `caller`'s count of free inputs used on `day` from `expected`
    /// to `new`, if it is still `expected` (compare-and-set: two concurrent
    /// calls cannot both spend the last of a quota); returns whether it did.
    fn set_free_items_used(
        &self,
        caller: &PublicKey,
        day: u64,
        expected: u64,
        new: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// `model, version, task, round, hash, size_bytes, consensus_accuracy,
/// accuracy, loss, promoted_at`.
pub(crate) type VersionRow = (i64, i64, i64, i64, Vec<u8>, i64, f64, Option<f64>, Option<f64>, i64);

/// The columns of a [`VersionRow`], qualified by the table alias `v`.
pub(crate) const VERSION_COLUMNS: &str = "v.model, v.version, v.task, v.round, v.hash, v.size_bytes, v.consensus_accuracy, v.accuracy, v.loss, v.promoted_at";

pub(crate) fn version_record(row: VersionRow) -> Result<MarketVersion, StoreError> {
    use super::rows::*;
    let (model, version, task, round, hash, size_bytes, consensus_accuracy, accuracy, loss, promoted_at) = row;
    Ok(MarketVersion {
        model: uint("model id", model)?,
        version: count_from("version", version)?,
        task: task_from(task)?,
        round: round_from(round)?,
        hash: hash_from("model hash", &hash)?,
        size_bytes: uint("size_bytes", size_bytes)?,
        consensus_accuracy,
        accuracy,
        loss,
        promoted_at: time_from("promoted_at", promoted_at)?,
    })
}

/// `id, creator, name, created_at, versions`.
pub(crate) type ModelRow = (i64, Vec<u8>, String, i64, i64);

pub(crate) fn model_record(row: ModelRow) -> Result<MarketModel, StoreError> {
    use super::rows::*;
    let (id, creator, name, created_at, versions) = row;
    Ok(MarketModel {
        id: uint("model id", id)?,
        creator: key_from("creator", &creator)?,
        name,
        created_at: time_from("created_at", created_at)?,
        versions: count_from("versions", versions)?,
    })
}

macro_rules! market_store {
    ($store:ident) => {
        impl $crate::store::MarketStore for $store {
            async fn promote(
                &self,
                promotion: &$crate::store::Promotion,
            ) -> Result<$crate::store::MarketVersion, $crate::store::StoreError> {
                use $crate::store::market::*;
                use $crate::store::rows::*;
                let task = task_column(promotion.task)?;
                let at = int("promoted_at", promotion.at.get())?;
                let consensus = finite("consensus accuracy", promotion.consensus_accuracy)?;
                let accuracy = finite_opt("accuracy", promotion.accuracy)?;
                let loss = finite_opt("loss", promotion.loss)?;
                let size = int("size_bytes", promotion.size_bytes)?;
                let select = format!("SELECT {VERSION_COLUMNS} FROM market_versions v WHERE v.task = $1");
                let mut tx = self.pool.begin().await?;
                if let Some(row) = sqlx::query_as::<_, VersionRow>(&select).bind(task).fetch_optional(&mut *tx).await? {
                    return version_record(row);
                }
                sqlx::query(
                    "INSERT INTO market_models (creator, name, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (creator, name) DO NOTHING",
                )
                .bind(promotion.creator.as_bytes().as_slice())
                .bind(promotion.name.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await?;
                // The task's unique key and the (model, version) key both
                // guard this insert: a racing promotion of the same task, or
                // of another task of the same model, fails it and the caller
                // retries (and then finds its version, or the next number).
                sqlx::query(
                    "INSERT INTO market_versions (model, version, task, round, hash, size_bytes, \
                     consensus_accuracy, accuracy, loss, promoted_at) \
                     SELECT m.id, COALESCE((SELECT MAX(version) FROM market_versions WHERE model = m.id), 0) + 1, \
                     $3, $4, $5, $6, $7, $8, $9, $10 FROM market_models m WHERE m.creator = $1 AND m.name = $2",
                )
                .bind(promotion.creator.as_bytes().as_slice())
                .bind(promotion.name.as_str())
                .bind(task)
                .bind(i64::from(promotion.round.get()))
                .bind(promotion.hash.as_bytes().as_slice())
                .bind(size)
                .bind(consensus)
                .bind(accuracy)
                .bind(loss)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                let row = sqlx::query_as::<_, VersionRow>(&select).bind(task).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                version_record(row)
            }

            async fn market_models(
                &self,
                page: $crate::store::PageRequest,
            ) -> Result<
                $crate::store::Page<($crate::store::MarketModel, $crate::store::MarketVersion)>,
                $crate::store::StoreError,
            > {
                use $crate::store::market::*;
                use $crate::store::rows::*;
                let limit = page.clamped_limit();
                let after = match page.after {
                    Some(cursor) => int("cursor", cursor.get())?,
                    None => -1,
                };
                // Versions are numbered 1, 2, … without gaps, so the newest
                // version's number is also the count.
                let query = format!(
                    "SELECT m.id, m.creator, m.name, m.created_at, v.version, {VERSION_COLUMNS} \
                     FROM market_models m JOIN market_versions v ON v.model = m.id \
                     AND v.version = (SELECT MAX(version) FROM market_versions WHERE model = m.id) \
                     WHERE m.id > $1 ORDER BY m.id LIMIT $2"
                );
                let rows = sqlx::query(&query).bind(after).bind(i64::from(limit) + 1).fetch_all(&self.pool).await?;
                let mut items = Vec::with_capacity(rows.len());
                for row in rows {
                    use sqlx::Row;
                    let model = model_record((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?))?;
                    let version = version_record((
                        row.try_get(5)?,
                        row.try_get(6)?,
                        row.try_get(7)?,
                        row.try_get(8)?,
                        row.try_get(9)?,
                        row.try_get(10)?,
                        row.try_get(11)?,
                        row.try_get(12)?,
                        row.try_get(13)?,
                        row.try_get(14)?,
                    ))?;
                    items.push((model.id, (model, version)));
                }
                Ok($crate::store::Page::from_rows(items, limit))
            }

            async fn market_model(
                &self,
                id: u64,
            ) -> Result<
                Option<($crate::store::MarketModel, Vec<$crate::store::MarketVersion>)>,
                $crate::store::StoreError,
            > {
                use $crate::store::market::*;
                let Ok(id) = i64::try_from(id) else { return Ok(None) };
                let Some(row) = sqlx::query_as::<_, ModelRow>(
                    "SELECT m.id, m.creator, m.name, m.created_at, \
                     (SELECT COUNT(*) FROM market_versions WHERE model = m.id) FROM market_models m WHERE m.id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                else {
                    return Ok(None);
                };
                let model = model_record(row)?;
                let query = format!("SELECT {VERSION_COLUMNS} FROM market_versions v WHERE v.model = $1 ORDER BY v.version DESC");
                let versions = sqlx::query_as::<_, VersionRow>(&query)
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(version_record)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some((model, versions)))
            }

            async fn finished_unpromoted(&self) -> Result<Vec<starling_protocol::TaskId>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                sqlx::query_as::<_, (i64,)>(
                    "SELECT s.task FROM task_states s WHERE s.finished \
                     AND NOT EXISTS (SELECT 1 FROM market_versions v WHERE v.task = s.task) ORDER BY s.task",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|(task,)| task_from(task))
                .collect()
            }

            async fn free_items_used(
                &self,
                caller: &starling_protocol::PublicKey,
                day: u64,
            ) -> Result<u64, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let used = sqlx::query_as::<_, (i64,)>("SELECT items FROM inference_usage WHERE caller = $1 AND day = $2")
                    .bind(caller.as_bytes().as_slice())
                    .bind(int("day", day)?)
                    .fetch_optional(&self.pool)
                    .await?;
                used.map_or(Ok(0), |(items,)| uint("items", items))
            }

            async fn set_free_items_used(
                &self,
                caller: &starling_protocol::PublicKey,
                day: u64,
                expected: u64,
                new: u64,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let (day, expected, new) = (int("day", day)?, int("items", expected)?, int("items", new)?);
                // A missing row counts as zero used: insert it, then
                // compare-and-set, so both cases are one conditional write.
                sqlx::query("INSERT INTO inference_usage (caller, day, items) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING")
                    .bind(caller.as_bytes().as_slice())
                    .bind(day)
                    .execute(&self.pool)
                    .await?;
                let updated = sqlx::query("UPDATE inference_usage SET items = $4 WHERE caller = $1 AND day = $2 AND items = $3")
                    .bind(caller.as_bytes().as_slice())
                    .bind(day)
                    .bind(expected)
                    .bind(new)
                    .execute(&self.pool)
                    .await?;
                Ok(updated.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use market_store;
