//! Hand-computed worked examples of round settlement, run on the in-memory
//! reference ledger.

use starling_protocol::{PublicKey, RoundNumber, TaskId};
use starling_staking::{
    Accepted, AccountRef, Amount, BondId, EntryKind, LedgerError, MemoryLedger, Operation, Params, Ppm, Role,
    RoundReport, Timestamp, ValidatorAgreement,
};

fn key(n: u8) -> PublicKey {
    PublicKey::from_bytes([n; 32])
}

const ADMIN: u8 = 0;
const FUNDER: u8 = 1;
const T1: u8 = 10;
const T2: u8 = 11;
const T3: u8 = 12;
const V1: u8 = 20;
const V2: u8 = 21;
const D1: u8 = 30;
const D3: u8 = 31;
const TASK: TaskId = TaskId::new(7);

fn micro(n: u64) -> Amount {
    Amount::from_micro(n)
}

fn ok(ledger: &mut MemoryLedger, op: Operation, now: u64) -> Option<BondId> {
    ledger.apply(&op, Timestamp(now)).unwrap_or_else(|e| panic!("{op:?}: {e}")).bond
}

/// Trainers T1 (1 STAR own + 1 STAR from D1, commission 10%), T2 (1 STAR),
/// T3 (1 STAR own + 0.5 STAR from D3); validators V1 (3 STAR) and V2 (1 STAR);
/// a pool of 10 STAR for 2 rounds. All locks 0 days (multiplier one).
fn setup(commission_set_at: u64) -> MemoryLedger {
    let mut l = MemoryLedger::new(key(ADMIN), Params::default());
    for (k, amount) in [(FUNDER, 10_000_000), (T1, 1_000_000), (T2, 1_000_000), (T3, 1_000_000)] {
        ok(&mut l, Operation::Issue { by: key(ADMIN), to: key(k), amount: micro(amount) }, 0);
    }
    for (k, amount) in [(V1, 3_000_000), (V2, 1_000_000), (D1, 1_000_000), (D3, 500_000)] {
        ok(&mut l, Operation::Issue { by: key(ADMIN), to: key(k), amount: micro(amount) }, 0);
    }
    for (k, role) in [(T1, Role::Trainer), (T2, Role::Trainer), (T3, Role::Trainer)] {
        ok(&mut l, Operation::Stake { owner: key(k), role, amount: micro(1_000_000), lock_days: 0 }, 0);
    }
    ok(&mut l, Operation::Stake { owner: key(V1), role: Role::Validator, amount: micro(3_000_000), lock_days: 0 }, 0);
    ok(&mut l, Operation::Stake { owner: key(V2), role: Role::Validator, amount: micro(1_000_000), lock_days: 0 }, 0);
    let d1 = Operation::Delegate {
        delegator: key(D1),
        node: key(T1),
        role: Role::Trainer,
        amount: micro(1_000_000),
        lock_days: 0,
    };
    ok(&mut l, d1, 0);
    let d3 = Operation::Delegate {
        delegator: key(D3),
        node: key(T3),
        role: Role::Trainer,
        amount: micro(500_000),
        lock_days: 0,
    };
    ok(&mut l, d3, 0);
    ok(&mut l, Operation::SetCommission { node: key(T1), commission_ppm: 100_000 }, commission_set_at);
    let fund = Operation::FundTask { funder: key(FUNDER), task: TASK, amount: micro(10_000_000), total_rounds: 2 };
    ok(&mut l, fund, 0);
    l
}

fn report(round: u32) -> RoundReport {
    RoundReport {
        task: TASK,
        round: RoundNumber::new(round),
        opened_at: Timestamp(200),
        accepted: vec![Accepted { trainer: key(T2), score: 0.8 }, Accepted { trainer: key(T1), score: 0.9 }],
        rejected: vec![key(T3)],
        validators: vec![
            ValidatorAgreement { validator: key(V1), agreement: Ppm::ONE },
            ValidatorAgreement { validator: key(V2), agreement: Ppm::new(400_000).unwrap() },
        ],
    }
}

#[test]
fn worked_example_round_zero() {
    let mut l = setup(100);
    let held_before = l.total_held().unwrap();
    let outcome = l.apply(&Operation::SettleRound(report(0)), Timestamp(300)).unwrap();

    // Budget 10 STAR / 2 rounds = 5_000_000; validators 20% = 1_000_000, trainers 4_000_000.
    // T1 rank 0 weight 1·2_000_000, T2 rank 1 weight 0.85·1_000_000:
    //   T1 = floor(4e6·2/2.85) = 2_807_017, T2 = floor(4e6·0.85/2.85) = 1_192_982 (1 left over).
    // T1: commission floor(10% of 2_807_017) = 280_701; rest 2_526_316 split 1:1 with D1 →
    //   T1 gets 280_701 + 1_263_158 = 1_543_859, D1 gets 1_263_158.
    // Validators: weights 3e6·1.0 and 1e6·0.4 → V1 floor(1e6·3/3.4) = 882_352,
    //   V2 floor(1e6·0.4/3.4) = 117_647 (1 left over).
    assert_eq!(l.free_balance(&key(T1)), micro(1_543_859));
    assert_eq!(l.free_balance(&key(D1)), micro(1_263_158));
    assert_eq!(l.free_balance(&key(T2)), micro(1_192_982));
    assert_eq!(l.free_balance(&key(V1)), micro(882_352));
    assert_eq!(l.free_balance(&key(V2)), micro(117_647));
    assert_eq!(l.free_balance(&key(T3)), Amount::ZERO, "rejected trainers earn nothing");
    assert_eq!(outcome.rewarded, micro(4_999_998));

    // Slashes: T3 loses 10% of its bond (100_000) and of D3's (50_000); V2 (agreement 0.4 < 0.5)
    // loses 5% of 1_000_000 = 50_000. Half of each to the pool, half burned.
    assert_eq!(outcome.slashed, micro(200_000));
    let bond_of = |owner: u8, node: u8| l.bonds().find(|b| b.owner == key(owner) && b.node == key(node)).unwrap();
    assert_eq!(bond_of(T3, T3).amount, micro(900_000));
    assert_eq!(bond_of(D3, T3).amount, micro(450_000));
    assert_eq!(bond_of(V2, V2).amount, micro(950_000));
    assert_eq!(bond_of(V1, V1).amount, micro(3_000_000));
    assert_eq!(l.burned(), micro(100_000));
    // Pool: 10_000_000 − 4_999_998 paid + 100_000 slash refill = 5_100_002 (2 µ of rounding stayed).
    let pool = l.pool(TASK).unwrap();
    assert_eq!(pool.balance, micro(5_100_002));
    assert_eq!(pool.settled_rounds, 1);
    assert_eq!(l.total_held().unwrap(), held_before, "settlement moves money, never makes or loses it");

    // Round 1 is the last: its budget is the whole pool.
    let outcome = l.apply(&Operation::SettleRound(report(1)), Timestamp(400)).unwrap();
    assert!(outcome.rewarded <= micro(5_100_002));
    assert_eq!(l.total_held().unwrap(), l.issued());
}

#[test]
fn commission_changed_during_the_round_waits_for_the_next() {
    // Commission set at t=300, after the round opened at t=200: σ = 0 for this round.
    let mut l = setup(300);
    l.apply(&Operation::SettleRound(report(0)), Timestamp(400)).unwrap();
    // T1's 2_807_017 split 1:1 with D1: floor(2_807_017 / 2) = 1_403_508 each, 1 µ stays in the pool.
    assert_eq!(l.free_balance(&key(T1)), micro(1_403_508));
    assert_eq!(l.free_balance(&key(D1)), micro(1_403_508));
}

#[test]
fn a_round_settles_once_and_in_order() {
    let mut l = setup(100);
    let settle = |l: &mut MemoryLedger, round| l.apply(&Operation::SettleRound(report(round)), Timestamp(500));
    assert_eq!(
        settle(&mut l, 1),
        Err(LedgerError::RoundOutOfOrder { task: TASK, round: RoundNumber::new(1), expected: RoundNumber::FIRST })
    );
    settle(&mut l, 0).unwrap();
    let before = l.clone();
    assert_eq!(settle(&mut l, 0), Err(LedgerError::RoundAlreadySettled { task: TASK, round: RoundNumber::FIRST }));
    assert_eq!(l.journal().len(), before.journal().len(), "a refused settlement writes nothing");
    settle(&mut l, 1).unwrap();
    assert_eq!(settle(&mut l, 2), Err(LedgerError::TaskFinished { task: TASK }));
    let unknown = RoundReport { task: TaskId::new(99), ..report(0) };
    assert_eq!(
        l.apply(&Operation::SettleRound(unknown), Timestamp(500)),
        Err(LedgerError::UnknownTask { task: TaskId::new(99) })
    );
}

#[test]
fn malformed_reports_are_refused() {
    let mut l = setup(100);
    let mut dup = report(0);
    dup.rejected.push(key(T1));
    assert_eq!(
        l.apply(&Operation::SettleRound(dup), Timestamp(500)),
        Err(LedgerError::DuplicateParticipant { key: key(T1) })
    );
    let mut nan = report(0);
    nan.accepted[0].score = f64::NAN;
    assert_eq!(l.apply(&Operation::SettleRound(nan), Timestamp(500)), Err(LedgerError::InvalidScore { key: key(T2) }));
    let mut dup_validator = report(0);
    dup_validator.validators.push(dup_validator.validators[0]);
    assert!(matches!(
        l.apply(&Operation::SettleRound(dup_validator), Timestamp(500)),
        Err(LedgerError::DuplicateParticipant { .. })
    ));
}

#[test]
fn rewards_and_slashes_are_journalled_with_their_kinds() {
    let mut l = setup(100);
    l.apply(&Operation::SettleRound(report(0)), Timestamp(300)).unwrap();
    let entries = l.journal().last().unwrap();
    let pool = AccountRef::TaskPool(TASK);
    let rewards: u64 = entries.iter().filter(|e| e.kind == EntryKind::Reward).map(|e| e.amount.micro()).sum();
    assert_eq!(rewards, 4_999_998);
    assert!(entries.iter().filter(|e| e.kind == EntryKind::Reward).all(|e| e.from == pool));
    let burned: u64 = entries.iter().filter(|e| e.kind == EntryKind::SlashBurn).map(|e| e.amount.micro()).sum();
    let refilled: u64 = entries.iter().filter(|e| e.kind == EntryKind::SlashToPool).map(|e| e.amount.micro()).sum();
    assert_eq!((burned, refilled), (100_000, 100_000));
}

#[test]
fn longer_locks_and_lower_ranks_weigh_as_documented() {
    // Two trainers with the same 1 STAR, one locked a year (3×) and ranked second (0.85):
    // weights 1 and 2.55 → floor(4e6/3.55) = 1_126_760 and floor(4e6·2.55/3.55) = 2_873_239.
    let mut l = MemoryLedger::new(key(ADMIN), Params::default());
    for k in [FUNDER, T1, T2] {
        ok(&mut l, Operation::Issue { by: key(ADMIN), to: key(k), amount: micro(10_000_000) }, 0);
    }
    ok(&mut l, Operation::Stake { owner: key(T1), role: Role::Trainer, amount: micro(1_000_000), lock_days: 0 }, 0);
    ok(&mut l, Operation::Stake { owner: key(T2), role: Role::Trainer, amount: micro(1_000_000), lock_days: 365 }, 0);
    ok(&mut l, Operation::FundTask { funder: key(FUNDER), task: TASK, amount: micro(5_000_000), total_rounds: 1 }, 0);
    let round = RoundReport {
        task: TASK,
        round: RoundNumber::FIRST,
        opened_at: Timestamp(1),
        accepted: vec![Accepted { trainer: key(T1), score: 0.7 }, Accepted { trainer: key(T2), score: 0.6 }],
        rejected: vec![],
        validators: vec![],
    };
    l.apply(&Operation::SettleRound(round), Timestamp(2)).unwrap();
    assert_eq!(l.free_balance(&key(T1)), micro(9_000_000 + 1_126_760));
    assert_eq!(l.free_balance(&key(T2)), micro(9_000_000 + 2_873_239));
    // No validators: their 1_000_000 and the 1 µ of rounding stay in the pool.
    assert_eq!(l.pool(TASK).unwrap().balance, micro(1_000_001));
}
