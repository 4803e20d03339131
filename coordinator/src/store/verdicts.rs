//! Each settled round's verdict, as the round machine decided it, behind
//! [`VerdictStore`], implemented for both backends by one macro.
//!
//! Written once, when the round settles; read by the dashboard and the JSON
//! API, so what they show is what was paid.

use std::future::Future;

use starling_protocol::{RoundNumber, TaskId};

use super::{Recorded, StoreError};
use crate::round::{RoundVerdicts, ValidatorVerdict};

/// The rounds' verdicts.
pub trait VerdictStore: Send + Sync {
    /// Records a round's verdict, all of it or nothing, once: the same verdict
    /// again is [`Recorded::AlreadyRecorded`], a different one
    /// [`StoreError::Duplicate`]; an unknown task is
    /// [`StoreError::UnknownTask`].
    fn record_verdicts(&self, verdicts: &RoundVerdicts) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// A round's verdict, if it was recorded: submissions and validators in
    /// key order, as recorded.
    fn round_verdicts(
        &self,
        task: TaskId,
        round: RoundNumber,
    ) -> impl Future<Output = Result<Option<RoundVerdicts>, StoreError>> + Send;

    /// Every recorded validator verdict of a task, by round, then validator.
    fn validator_verdicts(
        &self,
        task: TaskId,
    ) -> impl Future<Output = Result<Vec<(RoundNumber, ValidatorVerdict)>, StoreError>> + Send;
}

/// The columns of one outcome: its code (0 accepted, 1 rejected, 2
/// unresolved) and a rejection's reason.
pub(crate) fn outcome_columns(outcome: &crate::round::VerdictOutcome) -> (i64, Option<&str>) {
    use crate::round::VerdictOutcome as O;
    match outcome {
        O::Accepted => (0, None),
        O::Rejected { reason } => (1, Some(reason.as_str())),
        O::Unresolved => (2, None),
    }
}

/// The outcome stored as `code` and `reason`.
pub(crate) fn outcome_from(code: i64, reason: Option<String>) -> Result<crate::round::VerdictOutcome, StoreError> {
    use crate::round::VerdictOutcome as O;
    match (code, reason) {
        (0, None) => Ok(O::Accepted),
        (1, Some(reason)) => Ok(O::Rejected { reason }),
        (2, None) => Ok(O::Unresolved),
        (code, reason) => Err(StoreError::Corrupt(format!("verdict outcome {code} with reason {reason:?}"))),
    }
}

/// A stake as its decimal column.
pub(crate) fn stake_from(text: &str) -> Result<u128, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt(format!("stake = {text:?}")))
}

/// `submission, trainer, samples, consensus, outcome, reason`.
pub(crate) type SubmissionVerdictRow = (Vec<u8>, Vec<u8>, i64, Option<f64>, i64, Option<String>);
/// `round, validator, stake, scores, agreement_ppm`.
pub(crate) type ValidatorVerdictRow = (i64, Vec<u8>, String, i64, Option<i64>);

pub(crate) fn submission_verdict(row: SubmissionVerdictRow) -> Result<crate::round::SubmissionVerdict, StoreError> {
    use super::rows::{key_from, submission_from, uint};
    let (submission, trainer, samples, consensus, outcome, reason) = row;
    Ok(crate::round::SubmissionVerdict {
        submission: submission_from(&submission)?,
        trainer: key_from("trainer", &trainer)?,
        samples: uint("samples", samples)?,
        consensus,
        outcome: outcome_from(outcome, reason)?,
    })
}

pub(crate) fn validator_verdict(row: ValidatorVerdictRow) -> Result<(RoundNumber, ValidatorVerdict), StoreError> {
    use super::rows::{count_from, key_from, round_from};
    let (round, validator, stake, scores, agreement) = row;
    let agreement_ppm = agreement
        .map(|ppm| u32::try_from(ppm).map_err(|_| StoreError::Corrupt(format!("agreement_ppm = {ppm}"))))
        .transpose()?;
    Ok((
        round_from(round)?,
        ValidatorVerdict {
            validator: key_from("validator", &validator)?,
            stake: stake_from(&stake)?,
            scores: count_from("scores", scores)?,
            agreement_ppm,
        },
    ))
}

macro_rules! verdict_store {
    ($store:ident) => {
        impl $crate::store::VerdictStore for $store {
            async fn record_verdicts(
                &self,
                verdicts: &$crate::round::RoundVerdicts,
            ) -> Result<$crate::store::Recorded, $crate::store::StoreError> {
                use $crate::store::rows::*;
                use $crate::store::verdicts::outcome_columns;
                use $crate::store::{Duplicate, Recorded, StoreError};
                let v = verdicts;
                let task = task_column(v.task)?;
                let round = i64::from(v.round.get());
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO round_verdicts (task, round, kappa_ppm, harm_threshold) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(task)
                .bind(round)
                .bind(i64::from(v.kappa_ppm))
                .bind(finite_opt("harm threshold", v.harm_threshold)?)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(done) if done.rows_affected() == 1 => {}
                    Ok(_) => {
                        drop(tx);
                        return match self.round_verdicts(v.task, v.round).await? {
                            Some(stored) if stored == *v => Ok(Recorded::AlreadyRecorded),
                            _ => Err(Duplicate::Verdict { task: v.task, round: v.round }.into()),
                        };
                    }
                    Err(e) if is_foreign_key_violation(&e) => return Err(StoreError::UnknownTask(v.task)),
                    Err(e) => return Err(e.into()),
                }
                for s in &v.submissions {
                    let (outcome, reason) = outcome_columns(&s.outcome);
                    sqlx::query(
                        "INSERT INTO submission_verdicts (task, round, submission, trainer, samples, consensus, \
                         outcome, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(task)
                    .bind(round)
                    .bind(s.submission.as_bytes().as_slice())
                    .bind(s.trainer.as_bytes().as_slice())
                    .bind(int("samples", s.samples)?)
                    .bind(finite_opt("consensus", s.consensus)?)
                    .bind(outcome)
                    .bind(reason)
                    .execute(&mut *tx)
                    .await?;
                }
                for validator in &v.validators {
                    sqlx::query(
                        "INSERT INTO validator_verdicts (task, round, validator, stake, scores, agreement_ppm) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(task)
                    .bind(round)
                    .bind(validator.validator.as_bytes().as_slice())
                    .bind(validator.stake.to_string())
                    .bind(i64::from(validator.scores))
                    .bind(validator.agreement_ppm.map(i64::from))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(Recorded::Inserted)
            }

            async fn round_verdicts(
                &self,
                task: starling_protocol::TaskId,
                round: starling_protocol::RoundNumber,
            ) -> Result<Option<$crate::round::RoundVerdicts>, $crate::store::StoreError> {
                use $crate::store::rows::*;
                use $crate::store::verdicts::*;
                let column = task_column(task)?;
                let number = i64::from(round.get());
                let header = sqlx::query_as::<_, (i64, Option<f64>)>(
                    "SELECT kappa_ppm, harm_threshold FROM round_verdicts WHERE task = $1 AND round = $2",
                )
                .bind(column)
                .bind(number)
                .fetch_optional(&self.pool)
                .await?;
                let Some((kappa_ppm, harm_threshold)) = header else { return Ok(None) };
                let submissions = sqlx::query_as::<_, SubmissionVerdictRow>(
                    "SELECT submission, trainer, samples, consensus, outcome, reason FROM submission_verdicts \
                     WHERE task = $1 AND round = $2 ORDER BY trainer",
                )
                .bind(column)
                .bind(number)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(submission_verdict)
                .collect::<Result<Vec<_>, _>>()?;
                let validators = sqlx::query_as::<_, ValidatorVerdictRow>(
                    "SELECT round, validator, stake, scores, agreement_ppm FROM validator_verdicts \
                     WHERE task = $1 AND round = $2 ORDER BY validator",
                )
                .bind(column)
                .bind(number)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|row| validator_verdict(row).map(|(_, v)| v))
                .collect::<Result<Vec<_>, _>>()?;
                Ok(Some($crate::round::RoundVerdicts {
                    task,
                    round,
                    kappa_ppm: count_from("kappa_ppm", kappa_ppm)?,
                    harm_threshold,
                    submissions,
                    validators,
                }))
            }

            async fn validator_verdicts(
                &self,
                task: starling_protocol::TaskId,
            ) -> Result<
                Vec<(starling_protocol::RoundNumber, $crate::round::ValidatorVerdict)>,
                $crate::store::StoreError,
            > {
                use $crate::store::rows::*;
                use $crate::store::verdicts::*;
                sqlx::query_as::<_, ValidatorVerdictRow>(
                    "SELECT round, validator, stake, scores, agreement_ppm FROM validator_verdicts \
                     WHERE task = $1 ORDER BY round, validator",
                )
                .bind(task_column(task)?)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(validator_verdict)
                .collect()
            }
        }
    };
}

pub(crate) use verdict_store;
