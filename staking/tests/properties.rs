//! Random operation sequences, valid and invalid, on the reference ledger:
//! the books always balance, balances stay in range, and every refused
//! operation is a typed error that changes nothing.

use proptest::prelude::*;
use starling_protocol::{PublicKey, RoundNumber, TaskId};
use starling_staking::{
    Accepted, Amount, BondId, LedgerError, MemoryLedger, Operation, Params, Ppm, Role, RoundReport, Timestamp,
    ValidatorAgreement,
};

fn key(n: u8) -> PublicKey {
    PublicKey::from_bytes([n; 32])
}

fn role(trainer: bool) -> Role {
    if trainer { Role::Trainer } else { Role::Validator }
}

/// Five keys (0 is the admin), two tasks, bond ids 1–12, amounts from zero
/// to near `u64::MAX`, lock-ups and commissions partly out of range.
fn operation() -> impl Strategy<Value = Operation> {
    let k = (0u8..5).prop_map(key);
    let amount =
        prop_oneof![4 => 0u64..2_000_000, 1 => Just(u64::MAX), 1 => (u64::MAX - 10)..].prop_map(Amount::from_micro);
    let days = prop_oneof![4 => 0u16..=365, 1 => 366u16..];
    let task = (1u64..3).prop_map(TaskId::new);
    let bond = (1u64..12).prop_map(BondId);
    prop_oneof![
        (k.clone(), k.clone(), amount.clone()).prop_map(|(by, to, amount)| Operation::Issue { by, to, amount }),
        (k.clone(), k.clone(), amount.clone()).prop_map(|(from, to, amount)| Operation::Transfer { from, to, amount }),
        (k.clone(), any::<bool>(), amount.clone(), days.clone())
            .prop_map(|(owner, t, amount, lock_days)| Operation::Stake { owner, role: role(t), amount, lock_days }),
        (k.clone(), bond.clone()).prop_map(|(owner, bond)| Operation::Unstake { owner, bond }),
        (k.clone(), k.clone(), any::<bool>(), amount.clone(), days).prop_map(
            |(delegator, node, t, amount, lock_days)| {
                Operation::Delegate { delegator, node, role: role(t), amount, lock_days }
            }
        ),
        (k.clone(), bond).prop_map(|(delegator, bond)| Operation::Undelegate { delegator, bond }),
        (k.clone(), 0u32..700_000).prop_map(|(node, commission_ppm)| Operation::SetCommission { node, commission_ppm }),
        (k.clone(), task.clone(), amount.clone(), 0u32..4).prop_map(|(funder, task, amount, total_rounds)| {
            Operation::FundTask { funder, task, amount, total_rounds }
        }),
        (task.clone(), k.clone()).prop_map(|(task, to)| Operation::RefundTask { task, to }),
        (k.clone(), amount.clone()).prop_map(|(from, amount)| Operation::Burn { from, amount }),
        (k.clone(), proptest::collection::vec((k.clone(), amount.clone()), 0..4), amount.clone())
            .prop_map(|(payer, shares, treasury)| Operation::PayFee { payer, shares, treasury }),
        (
            task,
            0u32..4,
            proptest::collection::vec((k.clone(), 0.0f64..1.0, any::<bool>()), 0..4),
            proptest::collection::vec((k, 0u32..=1_000_000), 0..3)
        )
            .prop_map(|(task, round, trainers, validators)| {
                let (accepted, rejected): (Vec<_>, Vec<_>) = trainers.into_iter().partition(|t| t.2);
                Operation::SettleRound(RoundReport {
                    task,
                    round: RoundNumber::new(round),
                    opened_at: Timestamp(50),
                    accepted: accepted.into_iter().map(|(trainer, score, _)| Accepted { trainer, score }).collect(),
                    rejected: rejected.into_iter().map(|(k, _, _)| k).collect(),
                    validators: validators
                        .into_iter()
                        .map(|(validator, ppm)| ValidatorAgreement { validator, agreement: Ppm::new(ppm).unwrap() })
                        .collect(),
                })
            }),
    ]
}

/// Everything observable about the ledger, to compare before and after.
fn observe(l: &MemoryLedger) -> String {
    let free: Vec<_> = (0..5).map(|n| l.free_balance(&key(n))).collect();
    let bonds: Vec<_> = l.bonds().cloned().collect();
    let nodes: Vec<_> = (0..5).map(|n| l.node(&key(n)).copied()).collect();
    let pools: Vec<_> = (1..3).map(|t| l.pool(TaskId::new(t)).copied()).collect();
    format!(
        "{free:?}{bonds:?}{nodes:?}{pools:?}{:?}{:?}{:?}{}",
        l.treasury(),
        l.burned(),
        l.issued(),
        l.journal().len()
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn books_always_balance(ops in proptest::collection::vec((operation(), 0u64..40), 1..60)) {
        let mut ledger = MemoryLedger::new(key(0), Params::default());
        let mut now = 0;
        for (op, step) in ops {
            // Time moves forward in steps of up to 40 days, so locks both hold and end.
            now += step * 86_400;
            let before = observe(&ledger);
            match ledger.apply(&op, Timestamp(now)) {
                Ok(_) => {}
                Err(error) => {
                    prop_assert_eq!(observe(&ledger), before, "{:?} failed with {} but changed the ledger", op, error);
                    prop_assert!(!matches!(error, LedgerError::Underflow), "internal guard reached by {:?}", op);
                }
            }
            prop_assert_eq!(ledger.total_held().unwrap(), ledger.issued());
            for entries in ledger.journal() {
                prop_assert!(entries.iter().all(|e| !e.amount.is_zero()));
            }
        }
    }
}
