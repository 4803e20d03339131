//! A task as the dashboard shows it: where it stands, its rounds, the
//! current round's submissions, its validators' standing and its payouts.
//!
//! Verdicts are read, never recomputed: a settled round's from the verdict
//! the store recorded at settlement (with the stakes it was decided with),
//! the round under way's from its machine once validation has closed. What
//! the page says a submission or validator got is what the ledger was told
//! to pay, whatever the stakes have done since.

use std::collections::BTreeMap;

use starling_protocol::{PageRequest, PublicKey, RoundNumber, RoundPhase, TaskId};
use starling_staking::{EntryKind, LedgerStore};
use starling_web::{IdentityPayout, SubmissionOutcome, SubmissionView, TaskSummary, ValidatorStanding};

use super::{WHOLE, ledger_failed, store_failed};
use crate::artifacts::ArtifactStore;
use crate::round::{PayloadCheck, RoundMachine, RoundVerdicts, VerdictOutcome};
use crate::service::Coordinator;
use crate::store::{CoordinatorStore, StoreError, TaskRecord};

/// Where a task stands, as far as a reader can tell.
pub(super) enum Progress {
    /// Registered, first round not yet open (waiting for its join window and
    /// eligible participants).
    Waiting,
    /// Marked finished without ever running: its pool could not be funded.
    Cancelled,
    /// Running or finished: its machine.
    Started(Box<RoundMachine>),
}

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// The task's machine: the one this coordinator drives, or else the one
    /// last saved in the store.
    pub(super) async fn progress(&self, task: TaskId) -> Result<Progress, starling_web::ReadError> {
        if let Some(slot) = self.slot(task) {
            let machine = slot.runtime.lock().await.machine.clone();
            return Ok(if machine.is_started() { Progress::Started(Box::new(machine)) } else { Progress::Waiting });
        }
        let state = match self.inner.store.load_state(task).await {
            Ok(state) => state,
            // Registered a moment ago, between our two reads.
            Err(StoreError::UnknownTask(_)) => return Ok(Progress::Waiting),
            Err(error) => return Err(store_failed(error)),
        };
        match state.state.as_deref() {
            None => Ok(Progress::Waiting),
            Some([]) => Ok(Progress::Cancelled),
            Some(bytes) => {
                let machine = RoundMachine::from_bytes(bytes).map_err(|e| {
                    starling_web::ReadError::internal(format!("task {task}: persisted state does not decode: {e}"))
                })?;
                Ok(if machine.is_started() { Progress::Started(Box::new(machine)) } else { Progress::Waiting })
            }
        }
    }

    pub(super) async fn summary(
        &self,
        record: &TaskRecord,
        progress: &Progress,
    ) -> Result<TaskSummary, starling_web::ReadError> {
        let (round, phase, participants) = match progress {
            Progress::Waiting => (RoundNumber::FIRST, RoundPhase::Open, 0),
            Progress::Cancelled => (RoundNumber::FIRST, RoundPhase::Finished, 0),
            Progress::Started(machine) => {
                let (round, phase) = machine.progress().unwrap_or((RoundNumber::FIRST, RoundPhase::Open));
                (round, phase, u32::try_from(machine.sampled_trainers().len()).unwrap_or(u32::MAX))
            }
        };
        let pool = self.inner.ledger.pool(record.id).await.map_err(ledger_failed)?;
        Ok(TaskSummary {
            id: record.id,
            model: record.spec.model.name.clone(),
            dataset: record.spec.data.dataset.clone(),
            phase,
            round,
            rounds: record.spec.rounds,
            participants,
            pool_left: pool.map_or(0, |p| p.balance.micro()),
        })
    }

    /// One row per round: settled rounds from the store's round records
    /// (accuracy and loss as the coordinator measured the new model), any
    /// settled round the store lacks from the machine's own summary, and the
    /// round under way with what is decided so far.
    pub(super) async fn history(
        &self,
        task: TaskId,
        progress: &Progress,
        current: &[SubmissionView],
    ) -> Result<Vec<starling_web::RoundRecord>, starling_web::ReadError> {
        let Progress::Started(machine) = progress else { return Ok(Vec::new()) };
        let mut rows = BTreeMap::new();
        let mut after = None;
        loop {
            let page = PageRequest { after, limit: WHOLE };
            let records = self.inner.store.rounds(task, page).await.map_err(store_failed)?;
            for r in records.items {
                let row = starling_web::RoundRecord {
                    round: r.round,
                    accuracy: r.accuracy,
                    loss: r.loss,
                    accepted: r.accepted,
                    rejected: r.rejected,
                    global_model: Some(r.global_model),
                };
                rows.insert(r.round, row);
            }
            match records.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        for summary in machine.history() {
            rows.entry(summary.round).or_insert(starling_web::RoundRecord {
                round: summary.round,
                accuracy: None,
                loss: None,
                accepted: summary.accepted,
                rejected: summary.rejected,
                global_model: Some(summary.output_model),
            });
        }
        if let Some(round) = machine.round() {
            let count = |f: fn(&SubmissionOutcome) -> bool| {
                u32::try_from(current.iter().filter(|s| f(&s.outcome)).count()).unwrap_or(u32::MAX)
            };
            rows.entry(round).or_insert(starling_web::RoundRecord {
                round,
                accuracy: None,
                loss: None,
                accepted: count(|o| matches!(o, SubmissionOutcome::Accepted)),
                rejected: count(|o| matches!(o, SubmissionOutcome::Rejected { .. })),
                global_model: None,
            });
        }
        Ok(rows.into_values().collect())
    }

    /// The machine's current round's submissions, by arrival, with their
    /// verdict once the round has one: the recorded one once the round has
    /// settled, the machine's while it aggregates and settles. Until then a
    /// valid submission is pending, an invalid one already rejected.
    pub(super) async fn submissions(
        &self,
        record: &TaskRecord,
        machine: &RoundMachine,
    ) -> Result<Vec<SubmissionView>, starling_web::ReadError> {
        let task = record.id;
        let Some(round) = machine.round() else { return Ok(Vec::new()) };
        let submissions = self.inner.store.submissions(task, round).await.map_err(store_failed)?;
        let verdicts = match self.inner.store.round_verdicts(task, round).await.map_err(store_failed)? {
            Some(recorded) => Some(recorded),
            None => machine.verdicts().filter(|v: &RoundVerdicts| v.round == round),
        };
        Ok(submissions
            .into_iter()
            .map(|s| {
                let decided = verdicts.as_ref().and_then(|v| v.submissions.iter().find(|d| d.submission == s.id));
                let (consensus_score, outcome) = match (decided, &s.check) {
                    (Some(decided), _) => (decided.consensus, outcome_view(&decided.outcome)),
                    (None, PayloadCheck::Failed { reason }) => {
                        (None, SubmissionOutcome::Rejected { reason: reason.clone() })
                    }
                    (None, PayloadCheck::Passed) => (None, SubmissionOutcome::Pending),
                };
                SubmissionView {
                    id: s.id,
                    round: s.round,
                    trainer: s.trainer,
                    samples: s.samples,
                    consensus_score,
                    outcome,
                }
            })
            .collect())
    }

    /// Each validator's agreement over the task's settled rounds, as the
    /// rounds recorded it, and what the ledger paid and slashed it; by mean
    /// agreement, highest first. A validator that never scored a resolved
    /// submission is left out.
    pub(super) async fn validator_standings(
        &self,
        task: TaskId,
        payouts: &[IdentityPayout],
    ) -> Result<Vec<ValidatorStanding>, starling_web::ReadError> {
        // Per validator: scores, rounds with an agreement, agreement sum, last agreement.
        let mut tally: BTreeMap<PublicKey, (u32, u32, f64, f64)> = BTreeMap::new();
        for (_, verdict) in self.inner.store.validator_verdicts(task).await.map_err(store_failed)? {
            let entry = tally.entry(verdict.validator).or_default();
            entry.0 = entry.0.saturating_add(verdict.scores);
            if let Some(ppm) = verdict.agreement_ppm {
                let share = f64::from(ppm) / 1e6;
                entry.1 += 1;
                entry.2 += share;
                entry.3 = share;
            }
        }
        let paid: BTreeMap<PublicKey, (u64, u64)> =
            payouts.iter().map(|p| (p.identity, (p.rewarded, p.slashed))).collect();
        let mut standings: Vec<ValidatorStanding> = tally
            .into_iter()
            .filter(|(_, (_, rounds, ..))| *rounds > 0)
            .map(|(validator, (scores, rounds, sum, last))| {
                let (rewarded, slashed) = paid.get(&validator).copied().unwrap_or_default();
                ValidatorStanding {
                    validator,
                    scores,
                    rounds,
                    agreement: sum / f64::from(rounds),
                    last_agreement: last,
                    rewarded,
                    slashed,
                }
            })
            .collect();
        standings.sort_by(|a, b| b.agreement.total_cmp(&a.agreement).then(a.validator.cmp(&b.validator)));
        Ok(standings)
    }

    /// Rewards and slashes over the whole task, per identity, by key.
    pub(super) async fn payouts(&self, task: TaskId) -> Result<Vec<IdentityPayout>, starling_web::ReadError> {
        let mut payouts: BTreeMap<PublicKey, (u64, u64)> = BTreeMap::new();
        let mut after = None;
        loop {
            let page = PageRequest { after, limit: WHOLE };
            let entries = self.inner.ledger.task_history(task, page).await.map_err(ledger_failed)?;
            for entry in entries.items {
                let (rewarded, slashed) = payouts.entry(entry.identity).or_default();
                match entry.kind {
                    EntryKind::Reward => *rewarded = rewarded.saturating_add(entry.amount.micro()),
                    EntryKind::SlashToPool | EntryKind::SlashBurn => {
                        *slashed = slashed.saturating_add(entry.amount.micro());
                    }
                    _ => {}
                }
            }
            match entries.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(payouts
            .into_iter()
            .filter(|(_, (rewarded, slashed))| *rewarded > 0 || *slashed > 0)
            .map(|(identity, (rewarded, slashed))| IdentityPayout { identity, rewarded, slashed })
            .collect())
    }
}

/// A decided outcome as the view names it. An unresolved submission (neither
/// paid nor slashed) is shown as pending.
fn outcome_view(outcome: &VerdictOutcome) -> SubmissionOutcome {
    match outcome {
        VerdictOutcome::Accepted => SubmissionOutcome::Accepted,
        VerdictOutcome::Rejected { reason } => SubmissionOutcome::Rejected { reason: reason.clone() },
        VerdictOutcome::Unresolved => SubmissionOutcome::Pending,
    }
}
