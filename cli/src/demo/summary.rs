//! The demo's live status line and its closing summary: accuracy per round,
//! the leaderboards, who was slashed and why, what delegators earned, the
//! promoted model, and whether the ledger balances. Everything is read back
//! from the coordinator's read model, store and ledger, the same records the
//! dashboard shows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use starling_coordinator::round::PayloadCheck;
use starling_coordinator::service::{Evaluator, ModelEvaluator};
use starling_coordinator::store::CoordinatorStore;
use starling_models::data::Dataset;
use starling_protocol::{PublicKey, RoundNumber, RoundPhase, TaskId, TaskSpec};
use starling_staking::{EntryKind, LedgerStore, PageRequest};
use starling_web::{ReadModel, TaskDetail};

use super::HARM_THRESHOLD;
use super::cast::{Cast, Part};
use crate::coordinator::http::Service;
use crate::units::star;

/// Shows where the task stands until it finishes (or every client has
/// stopped, which only a failure makes happen first): one line redrawn on a
/// terminal, a line per phase otherwise.
/// Returns whether the task finished.
pub(super) async fn watch(service: &Service, task: TaskId, rounds: u32, live: &AtomicUsize) -> bool {
    let bar = crate::progress::interactive().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut last = None;
    loop {
        let finished = service.wait_finished(task, Duration::from_millis(200)).await;
        let Ok(Some(detail)) = service.task(task).await else { continue };
        let line = status(&detail, rounds, finished);
        match &bar {
            Some(bar) => bar.set_message(line.clone()),
            None => {
                let now = (detail.summary.round, detail.summary.phase, finished);
                if last != Some(now) {
                    eprintln!("{line}");
                    last = Some(now);
                }
            }
        }
        let stranded = !finished && live.load(Ordering::SeqCst) == 0;
        if finished || stranded {
            if let Some(bar) = bar {
                bar.finish_and_clear();
                eprintln!("{line}");
            }
            return finished;
        }
    }
}

fn status(detail: &TaskDetail, rounds: u32, finished: bool) -> String {
    let summary = &detail.summary;
    let accuracy = detail
        .history
        .iter()
        .rev()
        .find_map(|r| r.accuracy)
        .map_or_else(|| "—".to_owned(), |a| format!("{:.1}%", 100.0 * a));
    let paid: u64 = detail.payouts.iter().map(|p| p.rewarded).sum();
    let phase = if finished { "finished".to_owned() } else { summary.phase.to_string() };
    let uploads = if summary.phase == RoundPhase::Training && !finished {
        format!(" · {} update(s) in", detail.submissions.len())
    } else {
        String::new()
    };
    format!(
        "round {}/{rounds} · {phase}{uploads} · global accuracy {accuracy} · paid so far {}",
        summary.round.get() + 1,
        star(paid)
    )
}

/// Waits (a little) for the finished task's model to reach the marketplace.
pub(super) async fn wait_for_promotion(service: &Service, task: TaskId) {
    for _ in 0..100 {
        if promoted(service, task).await.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn promoted(service: &Service, task: TaskId) -> Option<Market> {
    let page = service.list_models(starling_web::PageRequest { after: None, limit: 100 }).await.ok()?;
    let model = page.items.into_iter().find(|m| m.latest.task == task)?;
    Some(Market {
        id: model.id,
        name: model.name,
        version: model.latest.version,
        round: model.latest.round.get(),
        accuracy: model.latest.accuracy,
        consensus_accuracy: model.latest.consensus_accuracy,
    })
}

/// What the demo came to, as the summary prints it and `--summary` writes it.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) task: TaskId,
    /// Whether every round ran (a failed client can leave the task stuck).
    pub(crate) finished: bool,
    pub(crate) model: String,
    /// The initial model's accuracy on the coordinator's held-out images.
    pub(crate) initial_accuracy: Option<f64>,
    pub(crate) rounds: Vec<Round>,
    /// Trainers by rewards, then validators by rewards.
    pub(crate) standings: Vec<Standing>,
    pub(crate) slashes: Vec<Slash>,
    pub(crate) delegators: Vec<Delegator>,
    pub(crate) market: Option<Market>,
    pub(crate) caught: Caught,
    pub(crate) ledger: Ledger,
    pub(crate) dashboard: String,
    /// Clients that stopped with an error (none, when all is well).
    pub(crate) client_failures: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Round {
    pub(crate) round: u32,
    pub(crate) accuracy: Option<f64>,
    pub(crate) loss: Option<f64>,
    pub(crate) accepted: u32,
    pub(crate) rejected: u32,
}

#[derive(Debug, Serialize)]
pub(crate) struct Standing {
    pub(crate) name: String,
    pub(crate) part: Part,
    pub(crate) key: PublicKey,
    /// Trainers: submissions made, and how many were rejected.
    pub(crate) submissions: u32,
    pub(crate) rejected: u32,
    /// Validators: mean agreement with the consensus over the rounds.
    pub(crate) agreement: Option<f64>,
    pub(crate) rewarded: u64,
    pub(crate) slashed: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Slash {
    pub(crate) name: String,
    pub(crate) part: Part,
    pub(crate) round: u32,
    pub(crate) amount: u64,
    pub(crate) reason: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Delegator {
    pub(crate) name: String,
    pub(crate) backs: String,
    pub(crate) lock_days: u16,
    pub(crate) delegated: u64,
    pub(crate) earned: u64,
    pub(crate) slashed: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Market {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) version: u32,
    pub(crate) round: u32,
    pub(crate) accuracy: Option<f64>,
    pub(crate) consensus_accuracy: f64,
}

/// Whether each adversary was caught: every submission of a bad trainer
/// rejected, its stake slashed and nothing paid to it; the dishonest
/// validator slashed.
#[derive(Debug, Serialize)]
pub(crate) struct Caught {
    pub(crate) poisoner: bool,
    pub(crate) free_rider: bool,
    pub(crate) dishonest_validator: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Ledger {
    pub(crate) issued: u64,
    pub(crate) held: u64,
    pub(crate) burned: u64,
    /// Every µSTAR ever issued is still held somewhere (burns included).
    pub(crate) balanced: bool,
}

/// Rewards and slashes of one identity in one round.
#[derive(Debug, Default, Clone, Copy)]
struct Moves {
    rewarded: u64,
    slashed: u64,
}

impl Summary {
    #[allow(clippy::too_many_arguments, reason = "one call site, the demo's whole state")]
    pub(super) async fn collect(
        service: &Service,
        cast: &Cast,
        task: TaskId,
        spec: &TaskSpec,
        initial: &[u8],
        held_out: &Dataset,
        client_failures: super::Failures,
        http: SocketAddr,
    ) -> Result<Self> {
        let detail = service.task(task).await.map_err(|e| anyhow!("reading the task: {e}"))?.context("no task")?;
        let initial_accuracy = ModelEvaluator::new("mnist", held_out)
            .evaluate(spec, initial)
            .map_err(|e| anyhow!("evaluating the initial model: {e}"))?
            .map(|(accuracy, _)| accuracy);
        let rounds: Vec<Round> = detail
            .history
            .iter()
            .map(|r| Round {
                round: r.round.get(),
                accuracy: r.accuracy,
                loss: r.loss,
                accepted: r.accepted,
                rejected: r.rejected,
            })
            .collect();

        // Every reward and slash of the task, by identity and round.
        let ledger = service.ledger();
        let mut moves: BTreeMap<(PublicKey, u32), Moves> = BTreeMap::new();
        let mut after = None;
        loop {
            let page = ledger.task_history(task, PageRequest { after, limit: 500 }).await?;
            for entry in &page.items {
                let slot = moves.entry((entry.identity, entry.round.get())).or_default();
                match entry.kind {
                    EntryKind::Reward => slot.rewarded += entry.amount.micro(),
                    EntryKind::SlashToPool | EntryKind::SlashBurn => slot.slashed += entry.amount.micro(),
                    _ => {}
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let total = |key: PublicKey| {
            moves.range((key, 0)..=(key, u32::MAX)).fold(Moves::default(), |sum, (_, m)| Moves {
                rewarded: sum.rewarded + m.rewarded,
                slashed: sum.slashed + m.slashed,
            })
        };

        // Why each slash happened: a trainer's invalid payload or low
        // consensus, a validator's disagreement, a delegator's node.
        let store = service.store();
        let mut checks: BTreeMap<(PublicKey, u32), PayloadCheck> = BTreeMap::new();
        for round in &rounds {
            for submission in store.submissions(task, RoundNumber::new(round.round)).await? {
                checks.insert((submission.trainer, round.round), submission.check);
            }
        }
        let mut slashes = Vec::new();
        for (&(key, round), m) in moves.iter().filter(|(_, m)| m.slashed > 0) {
            let Some(member) = cast.by_key(&key) else { continue };
            let reason = match (member.part, checks.get(&(key, round))) {
                (_, Some(PayloadCheck::Failed { reason })) => format!("invalid update: {reason}"),
                (part, Some(_)) if part.trains() => {
                    format!(
                        "the validators' consensus accuracy of its update was below the harm threshold {HARM_THRESHOLD}"
                    )
                }
                (part, _) if part.validates() => {
                    "its scores strayed from the consensus (agreement below one half)".to_owned()
                }
                (Part::Delegator, _) => {
                    let node = cast
                        .backings
                        .iter()
                        .find(|b| cast.members[b.delegator].key() == key)
                        .map_or("its node", |b| cast.members[b.node].name.as_str());
                    format!("its delegation shares {node}'s slash")
                }
                _ => "slashed".to_owned(),
            };
            slashes.push(Slash { name: member.name.clone(), part: member.part, round, amount: m.slashed, reason });
        }
        slashes.sort_by_key(|s| (s.part, s.name.clone(), s.round));

        let agreement: BTreeMap<PublicKey, f64> =
            detail.validators.iter().map(|v| (v.validator, v.agreement)).collect();
        let mut standings: Vec<Standing> = cast
            .members
            .iter()
            .filter(|m| m.part.trains() || m.part.validates())
            .map(|m| {
                let key = m.key();
                let mine = checks.keys().filter(|(k, _)| *k == key).count() as u32;
                let rejected = checks
                    .iter()
                    .filter(|((k, round), check)| {
                        *k == key
                            && (matches!(check, PayloadCheck::Failed { .. })
                                || moves.get(&(key, *round)).is_some_and(|m| m.slashed > 0))
                    })
                    .count() as u32;
                let Moves { rewarded, slashed } = total(key);
                Standing {
                    name: m.name.clone(),
                    part: m.part,
                    key,
                    submissions: mine,
                    rejected,
                    agreement: agreement.get(&key).copied(),
                    rewarded,
                    slashed,
                }
            })
            .collect();
        standings.sort_by_key(|s| (!s.part.trains(), std::cmp::Reverse(s.rewarded), s.name.clone()));

        let delegators = cast
            .backings
            .iter()
            .map(|b| {
                let member = &cast.members[b.delegator];
                let Moves { rewarded, slashed } = total(member.key());
                Delegator {
                    name: member.name.clone(),
                    backs: cast.members[b.node].name.clone(),
                    lock_days: b.lock_days,
                    delegated: super::DELEGATION,
                    earned: rewarded,
                    slashed,
                }
            })
            .collect();

        let caught_trainer = |part: Part| {
            standings
                .iter()
                .filter(|s| s.part == part)
                .all(|s| s.submissions > 0 && s.rejected == s.submissions && s.slashed > 0 && s.rewarded == 0)
        };
        let caught = Caught {
            poisoner: caught_trainer(Part::Poisoner),
            free_rider: caught_trainer(Part::FreeRider),
            dishonest_validator: standings.iter().filter(|s| s.part == Part::DishonestValidator).all(|s| s.slashed > 0),
        };
        let audit = ledger.audit().await?;
        let finished = detail.summary.phase == RoundPhase::Finished && detail.summary.round.get() + 1 >= spec.rounds;
        Ok(Self {
            task,
            finished,
            model: spec.model.name.clone(),
            initial_accuracy,
            rounds,
            standings,
            slashes,
            delegators,
            market: promoted(service, task).await,
            caught,
            ledger: Ledger {
                issued: audit.issued.micro(),
                held: audit.held.micro(),
                burned: audit.burned.micro(),
                balanced: audit.held == audit.issued,
            },
            dashboard: format!("http://{http}/tasks/{task}"),
            client_failures,
        })
    }

    /// The summary as the terminal shows it.
    pub(super) fn render(&self, took: Duration) -> String {
        let mut out = String::new();
        let pct = |a: Option<f64>| a.map_or_else(|| "—".to_owned(), |a| format!("{:.1}%", 100.0 * a));
        let _ = writeln!(
            out,
            "\n== task {} {} after {:.0} s: {} on non-IID MNIST",
            self.task,
            if self.finished { "finished" } else { "did NOT finish" },
            took.as_secs_f64(),
            self.model
        );
        let _ = writeln!(out, "\nglobal model accuracy (the coordinator's own held-out images)");
        let _ = writeln!(out, "  start     {:>6}", pct(self.initial_accuracy));
        for r in &self.rounds {
            let _ = writeln!(
                out,
                "  round {:<3} {:>6}   loss {}   {} accepted, {} rejected",
                r.round + 1,
                pct(r.accuracy),
                r.loss.map_or_else(|| "—".to_owned(), |l| format!("{l:.3}")),
                r.accepted,
                r.rejected
            );
        }
        let _ = writeln!(out, "\ntrainers                    updates  rejected        rewarded         slashed");
        for s in self.standings.iter().filter(|s| s.part.trains()) {
            let _ = writeln!(
                out,
                "  {:<12} {:<14} {:>4} {:>9} {:>15} {:>15}",
                s.name,
                s.part.describe(),
                s.submissions,
                s.rejected,
                star(s.rewarded),
                star(s.slashed)
            );
        }
        let _ = writeln!(out, "\nvalidators                       agreement        rewarded         slashed");
        for s in self.standings.iter().filter(|s| s.part.validates()) {
            let _ = writeln!(
                out,
                "  {:<12} {:<19} {:>9} {:>15} {:>15}",
                s.name,
                s.part.describe(),
                pct(s.agreement),
                star(s.rewarded),
                star(s.slashed)
            );
        }
        let _ = writeln!(out, "\nslashed, and why");
        if self.slashes.is_empty() {
            let _ = writeln!(out, "  nobody");
        }
        // One line per participant and reason, with the rounds it covers.
        let mut grouped: Vec<(&str, &str, Vec<u32>, u64)> = Vec::new();
        for s in &self.slashes {
            match grouped.iter_mut().find(|(name, reason, ..)| *name == s.name && *reason == s.reason) {
                Some((_, _, rounds, total)) => {
                    rounds.push(s.round + 1);
                    *total += s.amount;
                }
                None => grouped.push((&s.name, &s.reason, vec![s.round + 1], s.amount)),
            }
        }
        for (name, reason, rounds, total) in grouped {
            let rounds: Vec<String> = rounds.iter().map(u32::to_string).collect();
            let _ = writeln!(out, "  {name:<12} {:>15} in round {}: {reason}", star(total), rounds.join(", "));
        }
        let _ = writeln!(out, "\ndelegators");
        for d in &self.delegators {
            let _ = writeln!(
                out,
                "  {:<12} {} behind {:<11} locked {:>3} days: earned {}, lost {}",
                d.name,
                star(d.delegated),
                d.backs,
                d.lock_days,
                star(d.earned),
                star(d.slashed)
            );
        }
        let _ = writeln!(out, "\ncaught");
        let yes = |b: bool| if b { "yes" } else { "NO" };
        let _ = writeln!(out, "  poisoner            {}", yes(self.caught.poisoner));
        let _ = writeln!(out, "  free-rider          {}", yes(self.caught.free_rider));
        let _ = writeln!(out, "  dishonest validator {}", yes(self.caught.dishonest_validator));
        let _ = writeln!(out, "\nmarketplace");
        match &self.market {
            Some(m) => {
                let _ = writeln!(
                    out,
                    "  model {} \"{}\" version {}: the global model of round {}, accuracy {} (validators' consensus {:.1}%)",
                    m.id,
                    m.name,
                    m.version,
                    m.round + 1,
                    pct(m.accuracy),
                    100.0 * m.consensus_accuracy
                );
            }
            None => {
                let _ = writeln!(out, "  nothing promoted yet");
            }
        }
        let l = &self.ledger;
        let _ = writeln!(
            out,
            "\nledger: {} issued, {} held (of which {} burned by slashes): {}",
            star(l.issued),
            star(l.held),
            star(l.burned),
            if l.balanced { "balanced" } else { "NOT BALANCED" }
        );
        for (name, error) in &self.client_failures {
            let _ = writeln!(out, "client {name} failed: {error}");
        }
        let _ = writeln!(out, "dashboard: {}", self.dashboard);
        out
    }
}
