//! Round settlement: the round budget paid to trainers and validators (and
//! through them to their delegators), and the round's slashes.
//!
//! The rules are ARCHITECTURE.md's "Economics", in integers:
//! - budget `B = floor(pool / rounds_left)`; validators get `floor(B·v)`,
//!   trainers the rest;
//! - accepted trainers are ranked by consensus score (best first; equal
//!   scores in key order, so the ranking is total and deterministic) and
//!   weighted `ρ^rank · s_j`, with `ρ^rank` in fixed point (10¹⁸ = one,
//!   floored at each step) and `s_j` the effective stake of the trainer's own
//!   bonds and the delegations to it as a trainer;
//! - validators are weighted `s_i · agreement_i` (agreement in ppm);
//! - a node's reward `R` pays commission `floor(R·σ)` to the node, and the
//!   rest pro rata to every bond behind it by effective stake: own bonds to
//!   the node, delegations to their delegators. This is `R·(σ + (1−σ)·s/(s+d))`
//!   to the node and `R·(1−σ)·d_k/(s+d)` to delegator `k`, floored;
//! - rewards are computed on the stakes before this round's slashes;
//! - a rejected trainer loses `floor(10%)` of each of its trainer bonds, a
//!   validator with agreement below one half `floor(5%)` of each validator
//!   bond (own stake and delegations alike, so pro rata); of each bond's slash
//!   the larger half (`s − floor(s/2)`) returns to the pool, `floor(s/2)` is
//!   burned;
//! - every micro-unit that flooring leaves over never leaves the pool.

use std::collections::{BTreeMap, BTreeSet};

use starling_protocol::{PublicKey, RoundNumber, TaskId};

use crate::account::AccountRef;
use crate::amount::{Amount, Timestamp};
use crate::error::LedgerError;
use crate::holdings::{Bond, Role};
use crate::journal::{EntryKind, Outcome, Plan};
use crate::params::Ppm;
use crate::snapshot::{Context, Snapshot};
use crate::split::pro_rata;

/// `ρ^0` in the fixed point used for rank decay.
const DECAY_ONE: u128 = 1_000_000_000_000_000_000;

/// An accepted submission and its consensus score.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Accepted {
    /// The trainer who submitted it.
    pub trainer: PublicKey,
    /// Its consensus score (higher is better); must be finite.
    pub score: f64,
}

/// A validator's agreement with consensus over the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ValidatorAgreement {
    /// The validator.
    pub validator: PublicKey,
    /// Share of its score mass that survived clipping to consensus.
    pub agreement: Ppm,
}

/// What the coordinator reports about a finished round, the input of
/// settlement.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoundReport {
    /// The task.
    pub task: TaskId,
    /// The round; rounds settle in order, each exactly once.
    pub round: RoundNumber,
    /// When the round opened: decides which commission each node charges.
    pub opened_at: Timestamp,
    /// Accepted submissions with their consensus scores.
    pub accepted: Vec<Accepted>,
    /// Trainers whose submissions were rejected (invalid payload or
    /// consensus score below the task's harm threshold): they are slashed.
    pub rejected: Vec<PublicKey>,
    /// Every validator that scored in this round, with its agreement.
    pub validators: Vec<ValidatorAgreement>,
}

impl RoundReport {
    /// Every `(key, role)` the settlement reads stakes for.
    pub fn participants(&self) -> impl Iterator<Item = (PublicKey, Role)> + '_ {
        let trainers = self.accepted.iter().map(|a| a.trainer).chain(self.rejected.iter().copied());
        trainers.map(|k| (k, Role::Trainer)).chain(self.validators.iter().map(|v| (v.validator, Role::Validator)))
    }

    fn validate(&self) -> Result<(), LedgerError> {
        let mut trainers = BTreeSet::new();
        for key in self.accepted.iter().map(|a| a.trainer).chain(self.rejected.iter().copied()) {
            if !trainers.insert(key) {
                return Err(LedgerError::DuplicateParticipant { key });
            }
        }
        let mut validators = BTreeSet::new();
        for v in &self.validators {
            if !validators.insert(v.validator) {
                return Err(LedgerError::DuplicateParticipant { key: v.validator });
            }
        }
        match self.accepted.iter().find(|a| !a.score.is_finite()) {
            Some(bad) => Err(LedgerError::InvalidScore { key: bad.trainer }),
            None => Ok(()),
        }
    }
}

/// Bonds grouped by the node and role they count for.
type BondIndex<'a> = BTreeMap<(PublicKey, Role), Vec<&'a Bond>>;

pub(crate) fn plan_settlement(report: &RoundReport, snapshot: &Snapshot, ctx: &Context) -> Result<Plan, LedgerError> {
    let task = report.task;
    let pool = snapshot.pools.get(&task).ok_or(LedgerError::UnknownTask { task })?;
    let round = report.round.get();
    if round < pool.settled_rounds {
        return Err(LedgerError::RoundAlreadySettled { task, round: report.round });
    }
    if pool.rounds_left() == 0 {
        return Err(LedgerError::TaskFinished { task });
    }
    if round > pool.settled_rounds {
        return Err(LedgerError::RoundOutOfOrder {
            task,
            round: report.round,
            expected: RoundNumber::new(pool.settled_rounds),
        });
    }
    report.validate()?;

    let params = &ctx.params;
    let budget = Amount::from_micro(pool.balance.micro() / u64::from(pool.rounds_left()));
    let validator_budget = params.validator_share.of(budget);
    let trainer_budget = budget.checked_sub(validator_budget)?;

    let mut index = BondIndex::new();
    for bond in snapshot.bonds.values() {
        index.entry((bond.node, bond.role)).or_default().push(bond);
    }
    let stake_of = |key: PublicKey, role: Role| -> Result<u128, LedgerError> {
        index
            .get(&(key, role))
            .into_iter()
            .flatten()
            .try_fold(0u128, |sum, bond| sum.checked_add(bond.effective()).ok_or(LedgerError::Overflow))
    };

    let mut plan = Plan::default();
    let mut rewarded = Amount::ZERO;

    let mut ranked: Vec<&Accepted> = report.accepted.iter().collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.trainer.cmp(&b.trainer)));
    let mut decay = DECAY_ONE;
    let mut weights = Vec::with_capacity(ranked.len());
    for accepted in &ranked {
        weights.push(decay.checked_mul(stake_of(accepted.trainer, Role::Trainer)?).ok_or(LedgerError::Overflow)?);
        decay = decay * u128::from(params.rank_decay.get()) / u128::from(Ppm::ONE.get());
    }
    let payer = Payer { snapshot, index: &index, task, opened_at: report.opened_at };
    let (shares, _) = pro_rata(trainer_budget, &weights);
    for (accepted, share) in ranked.iter().zip(shares) {
        let paid = payer.pay(&mut plan, accepted.trainer, Role::Trainer, share)?;
        rewarded = rewarded.checked_add(paid)?;
    }

    let weights = report
        .validators
        .iter()
        .map(|v| {
            stake_of(v.validator, Role::Validator)?
                .checked_mul(u128::from(v.agreement.get()))
                .ok_or(LedgerError::Overflow)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (shares, _) = pro_rata(validator_budget, &weights);
    for (v, share) in report.validators.iter().zip(shares) {
        let paid = payer.pay(&mut plan, v.validator, Role::Validator, share)?;
        rewarded = rewarded.checked_add(paid)?;
    }

    let mut slashed = Amount::ZERO;
    for trainer in &report.rejected {
        slashed =
            slashed.checked_add(slash(&mut plan, &index, *trainer, Role::Trainer, params.trainer_slash, task)?)?;
    }
    for v in report.validators.iter().filter(|v| v.agreement < params.agreement_threshold) {
        slashed = slashed.checked_add(slash(
            &mut plan,
            &index,
            v.validator,
            Role::Validator,
            params.validator_slash,
            task,
        )?)?;
    }

    plan.pools.push((task, pool.total_rounds, pool.settled_rounds + 1));
    plan.settles = Some((task, report.round));
    plan.outcome = Outcome { bond: None, rewarded, slashed };
    Ok(plan)
}

/// Pays rewards of one round out of its task's pool.
struct Payer<'a> {
    snapshot: &'a Snapshot,
    index: &'a BondIndex<'a>,
    task: TaskId,
    opened_at: Timestamp,
}

impl Payer<'_> {
    /// Pays `reward` earned by `node` in `role`: commission to the node, the
    /// rest pro rata to the bonds behind it. Returns what left the pool.
    fn pay(&self, plan: &mut Plan, node: PublicKey, role: Role, reward: Amount) -> Result<Amount, LedgerError> {
        if reward.is_zero() {
            return Ok(Amount::ZERO);
        }
        let bonds = self.index.get(&(node, role)).map(Vec::as_slice).unwrap_or_default();
        let sigma = self.snapshot.nodes.get(&node).map(|n| n.commission_for_round(self.opened_at)).unwrap_or_default();
        let commission = sigma.fraction().of(reward);
        let weights: Vec<u128> = bonds.iter().map(|b| b.effective()).collect();
        let (shares, _) = pro_rata(reward.checked_sub(commission)?, &weights);
        let pool = AccountRef::TaskPool(self.task);
        let mut to_node = commission;
        let mut paid = commission;
        for (bond, share) in bonds.iter().zip(shares) {
            paid = paid.checked_add(share)?;
            if bond.is_delegation() {
                plan.push(pool, AccountRef::Free(bond.owner), share, EntryKind::Reward);
            } else {
                to_node = to_node.checked_add(share)?;
            }
        }
        plan.push(pool, AccountRef::Free(node), to_node, EntryKind::Reward);
        Ok(paid)
    }
}

/// Slashes `rate` of every bond of `node` in `role`. Returns the total slashed.
fn slash(
    plan: &mut Plan,
    index: &BondIndex<'_>,
    node: PublicKey,
    role: Role,
    rate: Ppm,
    task: TaskId,
) -> Result<Amount, LedgerError> {
    let mut total = Amount::ZERO;
    for bond in index.get(&(node, role)).into_iter().flatten() {
        let cut = rate.of(bond.amount);
        let burned = Amount::from_micro(cut.micro() / 2);
        plan.push(
            AccountRef::Bond(bond.id),
            AccountRef::TaskPool(task),
            cut.checked_sub(burned)?,
            EntryKind::SlashToPool,
        );
        plan.push(AccountRef::Bond(bond.id), AccountRef::Burned, burned, EntryKind::SlashBurn);
        total = total.checked_add(cut)?;
    }
    Ok(total)
}
