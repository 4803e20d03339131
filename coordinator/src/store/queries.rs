//! The [`CoordinatorStore`](super::CoordinatorStore) implementation, shared
//! by both backends through a macro (sqlx's generic executor bounds would be
//! longer than the code). The SQL is the same text for both: SQLite accepts
//! `$1` placeholders, `ON CONFLICT` upserts and `RETURNING`, and sqlx binds
//! `bool` as SQLite's 0 and 1.
//!
//! Write-once records are inserted with `ON CONFLICT DO NOTHING`, so the
//! unique keys decide, portably and without a transaction, which of two
//! racing writers wins; the loser reads the winner's row to tell a retry
//! ([`Recorded::AlreadyRecorded`](super::Recorded)) from a conflict
//! ([`StoreError::Duplicate`](super::StoreError)).

macro_rules! coordinator_store {
    ($store:ident) => {
        impl $crate::store::CoordinatorStore for $store {
            async fn reserve_task(
                &self,
                creator: &starling_protocol::PublicKey,
                at: $crate::round::UnixMillis,
            ) -> Result<starling_protocol::TaskId, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let (id,) = sqlx::query_as::<_, (i64,)>(
                    "INSERT INTO task_reservations (creator, reserved_at) VALUES ($1, $2) RETURNING id",
                )
                .bind(creator.as_bytes().as_slice())
                .bind(int("reserved_at", at.get())?)
                .fetch_one(&self.pool)
                .await?;
                task_from(id)
            }

            async fn create_task(
                &self,
                id: starling_protocol::TaskId,
                task: &$crate::store::NewTask,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::rows::*;
                let spec = encode_spec(&task.spec)?;
                let reward_pool = int("reward pool", task.spec.reward_pool)?;
                let created_at = int("created_at", task.created_at.get())?;
                let column = task_column(id)?;
                let mut tx = self.pool.begin().await?;
                // The id must be this creator's live reservation, spent here.
                let reserved = sqlx::query("DELETE FROM task_reservations WHERE id = $1 AND creator = $2 AND NOT abandoned")
                    .bind(column)
                    .bind(task.creator.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await?;
                if reserved.rows_affected() != 1 {
                    return Err($crate::store::StoreError::UnknownTask(id));
                }
                sqlx::query(
                    "INSERT INTO tasks (id, creator, model_name, dataset, rounds, reward_pool, initial_model, \
                     created_at, spec) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(column)
                .bind(task.creator.as_bytes().as_slice())
                .bind(task.spec.model.name.as_str())
                .bind(task.spec.data.dataset.as_str())
                .bind(i64::from(task.spec.rounds))
                .bind(reward_pool)
                .bind(task.initial_model.as_bytes().as_slice())
                .bind(created_at)
                .bind(spec)
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO task_states (task, version, finished, state) VALUES ($1, 0, $2, NULL)")
                    .bind(column)
                    .bind(false)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn is_public_model(
                &self,
                hash: starling_protocol::ContentHash,
            ) -> Result<bool, $crate::store::StoreError> {
                let (public,) = sqlx::query_as::<_, (bool,)>(
                    "SELECT EXISTS (SELECT 1 FROM tasks WHERE initial_model = $1) \
                     OR EXISTS (SELECT 1 FROM rounds WHERE global_model = $1)",
                )
                .bind(hash.as_bytes().as_slice())
                .fetch_one(&self.pool)
                .await?;
                Ok(public)
            }

            async fn abandon_reservation(
                &self,
                id: starling_protocol::TaskId,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::rows::*;
                sqlx::query("UPDATE task_reservations SET abandoned = $2 WHERE id = $1")
                    .bind(task_column(id)?)
                    .bind(true)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn release_reservation(
                &self,
                id: starling_protocol::TaskId,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::rows::*;
                sqlx::query("DELETE FROM task_reservations WHERE id = $1")
                    .bind(task_column(id)?)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn reservations(
                &self,
                before: $crate::round::UnixMillis,
            ) -> Result<Vec<(starling_protocol::TaskId, starling_protocol::PublicKey)>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let rows = sqlx::query_as::<_, (i64, Vec<u8>)>(
                    "SELECT id, creator FROM task_reservations WHERE reserved_at < $1 OR abandoned ORDER BY id",
                )
                .bind(int("reserved_at", before.get())?)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(|(id, creator)| Ok((task_from(id)?, key_from("creator", &creator)?))).collect()
            }

            async fn task(
                &self,
                id: starling_protocol::TaskId,
            ) -> Result<Option<$crate::store::TaskRecord>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                sqlx::query_as::<_, TaskRow>(
                    "SELECT id, creator, initial_model, created_at, spec FROM tasks WHERE id = $1",
                )
                .bind(task_column(id)?)
                .fetch_optional(&self.pool)
                .await?
                .map(task_record)
                .transpose()
            }

            async fn tasks(
                &self,
                page: $crate::store::PageRequest,
            ) -> Result<$crate::store::Page<$crate::store::TaskRecord>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let limit = page.clamped_limit();
                // Newest first: the cursor is the last id returned.
                let before = match page.after {
                    Some(cursor) => int("cursor", cursor.get())?,
                    None => i64::MAX,
                };
                let rows = sqlx::query_as::<_, TaskRow>(
                    "SELECT id, creator, initial_model, created_at, spec FROM tasks WHERE id < $1 \
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(before)
                .bind(i64::from(limit) + 1)
                .fetch_all(&self.pool)
                .await?;
                let rows = rows
                    .into_iter()
                    .map(|row| task_record(row).map(|task| (task.id.get(), task)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok($crate::store::Page::from_rows(rows, limit))
            }

            async fn open_tasks_of(
                &self,
                creator: &starling_protocol::PublicKey,
            ) -> Result<u64, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let (count,) = sqlx::query_as::<_, (i64,)>(
                    "SELECT COUNT(*) FROM tasks JOIN task_states ON task_states.task = tasks.id \
                     WHERE tasks.creator = $1 AND NOT task_states.finished",
                )
                .bind(creator.as_bytes().as_slice())
                .fetch_one(&self.pool)
                .await?;
                uint("open tasks", count)
            }

            async fn load_state(
                &self,
                task: starling_protocol::TaskId,
            ) -> Result<$crate::store::TaskState, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let row = sqlx::query_as::<_, (i64, bool, Option<Vec<u8>>)>(
                    "SELECT version, finished, state FROM task_states WHERE task = $1",
                )
                .bind(task_column(task)?)
                .fetch_optional(&self.pool)
                .await?;
                let (version, finished, state) = row.ok_or($crate::store::StoreError::UnknownTask(task))?;
                Ok($crate::store::TaskState { version: uint("state version", version)?, state, finished })
            }

            async fn save_state(
                &self,
                task: starling_protocol::TaskId,
                expected_version: u64,
                state: &[u8],
                finished: bool,
            ) -> Result<u64, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let id = task_column(task)?;
                let expected = int("expected state version", expected_version)?;
                let saved = sqlx::query(
                    "UPDATE task_states SET version = version + 1, finished = $3, state = $4 \
                     WHERE task = $1 AND version = $2",
                )
                .bind(id)
                .bind(expected)
                .bind(finished)
                .bind(state)
                .execute(&self.pool)
                .await?;
                if saved.rows_affected() == 1 {
                    return Ok(expected_version + 1);
                }
                let actual = sqlx::query_as::<_, (i64,)>("SELECT version FROM task_states WHERE task = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                match actual {
                    None => Err($crate::store::StoreError::UnknownTask(task)),
                    Some((actual,)) => Err($crate::store::StoreError::StateConflict {
                        task,
                        expected: expected_version,
                        actual: uint("state version", actual)?,
                    }),
                }
            }

            async fn unfinished_tasks(&self) -> Result<Vec<starling_protocol::TaskId>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                sqlx::query_as::<_, (i64,)>("SELECT task FROM task_states WHERE NOT finished ORDER BY task")
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|(task,)| task_from(task))
                    .collect()
            }

            async fn record_join(
                &self,
                join: &$crate::store::Join,
            ) -> Result<$crate::store::Recorded, $crate::store::StoreError> {
                use $crate::store::rows::*;
                use $crate::store::{Recorded, StoreError};
                let inserted = sqlx::query(
                    "INSERT INTO task_participants (task, participant, role, joined_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(task_column(join.task)?)
                .bind(join.participant.as_bytes().as_slice())
                .bind(role_column(join.role))
                .bind(int("joined_at", join.joined_at.get())?)
                .execute(&self.pool)
                .await;
                match inserted {
                    Ok(done) if done.rows_affected() == 1 => Ok(Recorded::Inserted),
                    Ok(_) => Ok(Recorded::AlreadyRecorded),
                    Err(e) if is_foreign_key_violation(&e) => Err(StoreError::UnknownTask(join.task)),
                    Err(e) => Err(e.into()),
                }
            }

            async fn joins(
                &self,
                task: starling_protocol::TaskId,
            ) -> Result<Vec<$crate::store::Join>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                sqlx::query_as::<_, (Vec<u8>, i64, i64)>(
                    "SELECT participant, role, joined_at FROM task_participants WHERE task = $1 \
                     ORDER BY participant, role",
                )
                .bind(task_column(task)?)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|(participant, role, joined_at)| {
                    Ok($crate::store::Join {
                        task,
                        participant: key_from("participant", &participant)?,
                        role: role_from(role)?,
                        joined_at: time_from("joined_at", joined_at)?,
                    })
                })
                .collect()
            }

            async fn record_submission(
                &self,
                submission: &$crate::store::SubmissionRecord,
            ) -> Result<$crate::store::Recorded, $crate::store::StoreError> {
                use $crate::store::rows::*;
                use $crate::store::{Duplicate, Recorded, StoreError};
                let s = submission;
                let task = task_column(s.task)?;
                let train_loss = finite_opt("train loss", s.train_loss)?;
                let (passed, reason) = check_columns(&s.check);
                let inserted = sqlx::query(
                    "INSERT INTO submissions (task, round, trainer, submission, update_hash, len, samples, \
                     train_loss, check_passed, check_reason, envelope, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
                )
                .bind(task)
                .bind(i64::from(s.round.get()))
                .bind(s.trainer.as_bytes().as_slice())
                .bind(s.id.as_bytes().as_slice())
                .bind(s.update.as_bytes().as_slice())
                .bind(int("len", s.len)?)
                .bind(int("samples", s.samples)?)
                .bind(train_loss)
                .bind(passed)
                .bind(reason)
                .bind(s.envelope.as_slice())
                .bind(int("received_at", s.received_at.get())?)
                .execute(&self.pool)
                .await;
                match inserted {
                    Ok(done) if done.rows_affected() == 1 => return Ok(Recorded::Inserted),
                    Ok(_) => {}
                    Err(e) if is_foreign_key_violation(&e) => return Err(StoreError::UnknownTask(s.task)),
                    Err(e) => return Err(e.into()),
                }
                let stored =
                    $crate::store::CoordinatorStore::submission_of(self, s.task, s.round, &s.trainer).await?;
                // No row for this trainer: the conflict was on the
                // submission id, held by another trainer's submission.
                match stored {
                    Some(stored) if same_submission(&stored, s) => Ok(Recorded::AlreadyRecorded),
                    _ => Err(Duplicate::Submission { task: s.task, round: s.round, trainer: s.trainer }.into()),
                }
            }

            async fn submissions(
                &self,
                task: starling_protocol::TaskId,
                round: starling_protocol::RoundNumber,
            ) -> Result<Vec<$crate::store::SubmissionRecord>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                sqlx::query_as::<_, SubmissionRow>(
                    "SELECT task, round, trainer, submission, update_hash, len, samples, train_loss, \
                     check_passed, check_reason, envelope, received_at FROM submissions \
                     WHERE task = $1 AND round = $2 ORDER BY received_at, trainer",
                )
                .bind(task_column(task)?)
                .bind(i64::from(round.get()))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(submission_record)
                .collect()
            }

            async fn submission_of(
                &self,
                task: starling_protocol::TaskId,
                round: starling_protocol::RoundNumber,
                trainer: &starling_protocol::PublicKey,
            ) -> Result<Option<$crate::store::SubmissionRecord>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                sqlx::query_as::<_, SubmissionRow>(
                    "SELECT task, round, trainer, submission, update_hash, len, samples, train_loss, \
                     check_passed, check_reason, envelope, received_at FROM submissions \
                     WHERE task = $1 AND round = $2 AND trainer = $3",
                )
                .bind(task_column(task)?)
                .bind(i64::from(round.get()))
                .bind(trainer.as_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await?
                .map(submission_record)
                .transpose()
            }

            async fn record_score(
                &self,
                score: &$crate::store::ScoreRecord,
            ) -> Result<$crate::store::Recorded, $crate::store::StoreError> {
                use $crate::store::rows::*;
                use $crate::store::{Duplicate, Recorded, StoreError};
                let s = score;
                let task = task_column(s.task)?;
                let inserted = sqlx::query(
                    "INSERT INTO scores (task, round, submission, validator, accuracy, loss, improvement, \
                     envelope, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .bind(task)
                .bind(i64::from(s.round.get()))
                .bind(s.submission.as_bytes().as_slice())
                .bind(s.validator.as_bytes().as_slice())
                .bind(finite("accuracy", s.values.accuracy)?)
                .bind(finite("loss", s.values.loss)?)
                .bind(finite("improvement", s.values.improvement)?)
                .bind(s.envelope.as_slice())
                .bind(int("received_at", s.received_at.get())?)
                .execute(&self.pool)
                .await;
                match inserted {
                    Ok(done) if done.rows_affected() == 1 => return Ok(Recorded::Inserted),
                    Ok(_) => {}
                    Err(e) if is_foreign_key_violation(&e) => {
                        return Err(StoreError::UnknownSubmission {
                            task: s.task,
                            round: s.round,
                            submission: s.submission,
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
                let stored = sqlx::query_as::<_, ScoreRow>(
                    "SELECT task, round, submission, validator, accuracy, loss, improvement, envelope, \
                     received_at FROM scores WHERE task = $1 AND round = $2 AND submission = $3 AND validator = $4",
                )
                .bind(task)
                .bind(i64::from(s.round.get()))
                .bind(s.submission.as_bytes().as_slice())
                .bind(s.validator.as_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await?
                .map(score_record)
                .transpose()?;
                match stored {
                    Some(stored) if stored.values == s.values => Ok(Recorded::AlreadyRecorded),
                    _ => Err(Duplicate::Score {
                        task: s.task,
                        round: s.round,
                        submission: s.submission,
                        validator: s.validator,
                    }
                    .into()),
                }
            }

            async fn scores(
                &self,
                task: starling_protocol::TaskId,
                round: starling_protocol::RoundNumber,
            ) -> Result<Vec<$crate::store::ScoreRecord>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                sqlx::query_as::<_, ScoreRow>(
                    "SELECT task, round, submission, validator, accuracy, loss, improvement, envelope, \
                     received_at FROM scores WHERE task = $1 AND round = $2 ORDER BY submission, validator",
                )
                .bind(task_column(task)?)
                .bind(i64::from(round.get()))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(score_record)
                .collect()
            }

            async fn record_round(
                &self,
                round: &$crate::store::RoundRecord,
            ) -> Result<$crate::store::Recorded, $crate::store::StoreError> {
                use $crate::store::rows::*;
                use $crate::store::{Duplicate, Recorded, RoundRecord, StoreError};
                let r = round;
                let task = task_column(r.task)?;
                let inserted = sqlx::query(
                    "INSERT INTO rounds (task, round, global_model, accuracy, loss, accepted, rejected, \
                     settled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                )
                .bind(task)
                .bind(i64::from(r.round.get()))
                .bind(r.global_model.as_bytes().as_slice())
                .bind(finite_opt("accuracy", r.accuracy)?)
                .bind(finite_opt("loss", r.loss)?)
                .bind(i64::from(r.accepted))
                .bind(i64::from(r.rejected))
                .bind(int("settled_at", r.settled_at.get())?)
                .execute(&self.pool)
                .await;
                match inserted {
                    Ok(done) if done.rows_affected() == 1 => return Ok(Recorded::Inserted),
                    Ok(_) => {}
                    Err(e) if is_foreign_key_violation(&e) => return Err(StoreError::UnknownTask(r.task)),
                    Err(e) => return Err(e.into()),
                }
                let stored = sqlx::query_as::<_, RoundRow>(
                    "SELECT task, round, global_model, accuracy, loss, accepted, rejected, settled_at \
                     FROM rounds WHERE task = $1 AND round = $2",
                )
                .bind(task)
                .bind(i64::from(r.round.get()))
                .fetch_optional(&self.pool)
                .await?
                .map(round_record)
                .transpose()?;
                match stored {
                    Some(stored) if RoundRecord { settled_at: r.settled_at, ..stored } == *r => {
                        Ok(Recorded::AlreadyRecorded)
                    }
                    _ => Err(Duplicate::Round { task: r.task, round: r.round }.into()),
                }
            }

            async fn rounds(
                &self,
                task: starling_protocol::TaskId,
                page: $crate::store::PageRequest,
            ) -> Result<$crate::store::Page<$crate::store::RoundRecord>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let limit = page.clamped_limit();
                let after = match page.after {
                    Some(cursor) => int("cursor", cursor.get())?,
                    None => -1,
                };
                let rows = sqlx::query_as::<_, RoundRow>(
                    "SELECT task, round, global_model, accuracy, loss, accepted, rejected, settled_at \
                     FROM rounds WHERE task = $1 AND round > $2 ORDER BY round LIMIT $3",
                )
                .bind(task_column(task)?)
                .bind(after)
                .bind(i64::from(limit) + 1)
                .fetch_all(&self.pool)
                .await?;
                let rows = rows
                    .into_iter()
                    .map(|row| round_record(row).map(|r| (u64::from(r.round.get()), r)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok($crate::store::Page::from_rows(rows, limit))
            }

            async fn acquire_lease(
                &self,
                task: starling_protocol::TaskId,
                owner: &str,
                until: $crate::round::UnixMillis,
                now: $crate::round::UnixMillis,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::rows::*;
                // One statement: insert, or take over a lease that expired
                // or is the owner's own. Racing acquirers serialise on the
                // row; the loser's condition sees the winner's lease.
                let taken = sqlx::query(
                    "INSERT INTO task_leases (task, owner, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (task) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
                     WHERE task_leases.expires_at <= $4 OR task_leases.owner = excluded.owner",
                )
                .bind(task_column(task)?)
                .bind(owner)
                .bind(int("lease expiry", until.get())?)
                .bind(int("now", now.get())?)
                .execute(&self.pool)
                .await;
                match taken {
                    Ok(done) => Ok(done.rows_affected() == 1),
                    Err(e) if is_foreign_key_violation(&e) => Err($crate::store::StoreError::UnknownTask(task)),
                    Err(e) => Err(e.into()),
                }
            }

            async fn renew_lease(
                &self,
                task: starling_protocol::TaskId,
                owner: &str,
                until: $crate::round::UnixMillis,
                now: $crate::round::UnixMillis,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let renewed = sqlx::query(
                    "UPDATE task_leases SET expires_at = $3 WHERE task = $1 AND owner = $2 AND expires_at > $4",
                )
                .bind(task_column(task)?)
                .bind(owner)
                .bind(int("lease expiry", until.get())?)
                .bind(int("now", now.get())?)
                .execute(&self.pool)
                .await?;
                Ok(renewed.rows_affected() == 1)
            }

            async fn release_lease(
                &self,
                task: starling_protocol::TaskId,
                owner: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let released = sqlx::query("DELETE FROM task_leases WHERE task = $1 AND owner = $2")
                    .bind(task_column(task)?)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?;
                Ok(released.rows_affected() == 1)
            }

            async fn lease(
                &self,
                task: starling_protocol::TaskId,
            ) -> Result<Option<$crate::store::Lease>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                let row = sqlx::query_as::<_, (String, i64)>(
                    "SELECT owner, expires_at FROM task_leases WHERE task = $1",
                )
                .bind(task_column(task)?)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(owner, expires_at)| {
                    Ok($crate::store::Lease { task, owner, expires_at: time_from("lease expiry", expires_at)? })
                })
                .transpose()
            }
        }
    };
}

pub(crate) use coordinator_store;
