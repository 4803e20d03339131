//! Each operation's rules and each bad input's typed error, on the reference ledger.

use starling_protocol::{PublicKey, TaskId};
use starling_staking::{AccountRef, Amount, BondId, LedgerError, MemoryLedger, Operation, Params, Role, Timestamp};

fn key(n: u8) -> PublicKey {
    PublicKey::from_bytes([n; 32])
}

fn micro(n: u64) -> Amount {
    Amount::from_micro(n)
}

const DAY: u64 = 86_400;

fn funded() -> MemoryLedger {
    let mut l = MemoryLedger::new(key(0), Params::default());
    l.apply(&Operation::Issue { by: key(0), to: key(1), amount: micro(1_000_000) }, Timestamp(0)).unwrap();
    l
}

#[test]
fn issuance_is_for_the_admin_only_and_bounded() {
    let mut l = funded();
    assert_eq!(
        l.apply(&Operation::Issue { by: key(1), to: key(1), amount: micro(5) }, Timestamp(0)),
        Err(LedgerError::NotAdmin { by: key(1) })
    );
    assert_eq!(
        l.apply(&Operation::Issue { by: key(0), to: key(2), amount: micro(u64::MAX) }, Timestamp(0)),
        Err(LedgerError::Overflow)
    );
    assert_eq!(l.issued(), micro(1_000_000));
}

#[test]
fn bad_inputs_are_typed_errors() {
    let mut l = funded();
    let at = Timestamp(0);
    let cases = [
        (Operation::Transfer { from: key(1), to: key(2), amount: Amount::ZERO }, LedgerError::ZeroAmount),
        (Operation::Transfer { from: key(1), to: key(1), amount: micro(1) }, LedgerError::SelfTransfer),
        (
            Operation::Transfer { from: key(9), to: key(1), amount: micro(1) },
            LedgerError::UnknownAccount { key: key(9) },
        ),
        (
            Operation::Transfer { from: key(1), to: key(2), amount: micro(u64::MAX) },
            LedgerError::InsufficientFunds {
                account: AccountRef::Free(key(1)),
                needed: micro(u64::MAX),
                available: micro(1_000_000),
            },
        ),
        (
            Operation::Stake { owner: key(1), role: Role::Trainer, amount: micro(1), lock_days: 366 },
            LedgerError::LockDaysOutOfRange { days: 366 },
        ),
        (Operation::SetCommission { node: key(1), commission_ppm: 10 }, LedgerError::UnknownNode { key: key(1) }),
        (
            Operation::Delegate {
                delegator: key(1),
                node: key(2),
                role: Role::Trainer,
                amount: micro(1),
                lock_days: 0,
            },
            LedgerError::UnknownNode { key: key(2) },
        ),
        (Operation::Unstake { owner: key(1), bond: BondId(42) }, LedgerError::UnknownBond { bond: BondId(42) }),
        (
            Operation::FundTask { funder: key(1), task: TaskId::new(1), amount: micro(1), total_rounds: 0 },
            LedgerError::ZeroRounds,
        ),
        (Operation::Burn { from: key(1), amount: Amount::ZERO }, LedgerError::ZeroAmount),
    ];
    for (op, expected) in cases {
        assert_eq!(l.apply(&op, at), Err(expected), "{op:?}");
    }
    assert_eq!(l.free_balance(&key(1)), micro(1_000_000));
    assert_eq!(l.journal().len(), 1, "only the issuance was journalled");
}

#[test]
fn unstaking_waits_for_the_lock_and_pays_the_fee() {
    let mut l = funded();
    let stake = Operation::Stake { owner: key(1), role: Role::Validator, amount: micro(600_000), lock_days: 10 };
    let bond = l.apply(&stake, Timestamp(0)).unwrap().bond.unwrap();
    assert_eq!(l.free_balance(&key(1)), micro(400_000));
    let unlock_at = Timestamp(10 * DAY);
    assert_eq!(
        l.apply(&Operation::Unstake { owner: key(1), bond }, Timestamp(10 * DAY - 1)),
        Err(LedgerError::LockNotEnded { bond, unlock_at })
    );
    assert_eq!(
        l.apply(&Operation::Unstake { owner: key(2), bond }, unlock_at),
        Err(LedgerError::NotBondOwner { bond, key: key(2) })
    );
    assert!(matches!(
        l.apply(&Operation::Undelegate { delegator: key(1), bond }, unlock_at),
        Err(LedgerError::WrongBondKind { .. })
    ));
    l.apply(&Operation::Unstake { owner: key(1), bond }, unlock_at).unwrap();
    // 5% of 600_000 = 30_000 to the treasury.
    assert_eq!(l.free_balance(&key(1)), micro(970_000));
    assert_eq!(l.treasury(), micro(30_000));
    assert!(l.bond(bond).is_none());
    assert_eq!(l.apply(&Operation::Unstake { owner: key(1), bond }, unlock_at), Err(LedgerError::UnknownBond { bond }));
}

#[test]
fn delegation_commission_and_burn() {
    let mut l = funded();
    l.apply(&Operation::Transfer { from: key(1), to: key(2), amount: micro(300_000) }, Timestamp(0)).unwrap();
    l.apply(
        &Operation::Stake { owner: key(2), role: Role::Trainer, amount: micro(100_000), lock_days: 0 },
        Timestamp(0),
    )
    .unwrap();
    assert_eq!(
        l.apply(&Operation::SetCommission { node: key(2), commission_ppm: 500_001 }, Timestamp(5)),
        Err(LedgerError::CommissionOutOfRange { ppm: 500_001 })
    );
    l.apply(&Operation::SetCommission { node: key(2), commission_ppm: 500_000 }, Timestamp(5)).unwrap();
    let node = *l.node(&key(2)).unwrap();
    assert_eq!(node.commission_for_round(Timestamp(5)).fraction().get(), 0, "not for a round already open");
    assert_eq!(node.commission_for_round(Timestamp(6)).fraction().get(), 500_000);
    assert_eq!(
        l.apply(
            &Operation::Delegate {
                delegator: key(2),
                node: key(2),
                role: Role::Trainer,
                amount: micro(1),
                lock_days: 0
            },
            Timestamp(0)
        ),
        Err(LedgerError::SelfDelegation)
    );
    let delegate = Operation::Delegate {
        delegator: key(1),
        node: key(2),
        role: Role::Trainer,
        amount: micro(200_000),
        lock_days: 31,
    };
    let bond = l.apply(&delegate, Timestamp(0)).unwrap().bond.unwrap();
    assert_eq!(l.bond(bond).unwrap().effective(), 201_194, "200_000 · (1 + 2/335), floored");
    assert!(matches!(
        l.apply(&Operation::Unstake { owner: key(1), bond }, Timestamp(31 * DAY)),
        Err(LedgerError::WrongBondKind { .. })
    ));
    l.apply(&Operation::Undelegate { delegator: key(1), bond }, Timestamp(31 * DAY)).unwrap();
    assert_eq!(l.free_balance(&key(1)), micro(500_000 + 190_000));
    l.apply(&Operation::Burn { from: key(1), amount: micro(90_000) }, Timestamp(0)).unwrap();
    assert_eq!(l.burned(), micro(90_000));
    assert_eq!(l.total_held().unwrap(), l.issued());
}

#[test]
fn a_fee_pays_its_shares_and_the_treasury_or_nothing() {
    let mut l = funded();
    let before = l.free_balance(&key(1));
    let fee = |treasury| Operation::PayFee {
        payer: key(1),
        shares: vec![(key(2), micro(300)), (key(1), micro(50)), (key(3), micro(200))],
        treasury: micro(treasury),
    };
    l.apply(&fee(100), Timestamp(0)).unwrap();
    // The payer's own share is not taken: 300 + 200 + 100 leave it.
    assert_eq!(l.free_balance(&key(1)), before.checked_sub(micro(600)).unwrap());
    assert_eq!(l.free_balance(&key(3)), micro(200));
    assert_eq!(l.treasury(), micro(100));
    assert_eq!(l.total_held().unwrap(), l.issued());

    let held = l.free_balance(&key(1));
    let too_much = Operation::PayFee { payer: key(1), shares: vec![(key(2), held)], treasury: micro(1) };
    assert!(matches!(l.apply(&too_much, Timestamp(0)), Err(LedgerError::InsufficientFunds { .. })));
    let twice =
        Operation::PayFee { payer: key(1), shares: vec![(key(2), micro(1)), (key(2), micro(1))], treasury: micro(0) };
    assert_eq!(l.apply(&twice, Timestamp(0)), Err(LedgerError::DuplicateShare { key: key(2) }));
    let nothing = Operation::PayFee { payer: key(1), shares: vec![(key(1), micro(5))], treasury: micro(0) };
    assert_eq!(l.apply(&nothing, Timestamp(0)), Err(LedgerError::ZeroAmount));
    let stranger = Operation::PayFee { payer: key(4), shares: vec![], treasury: micro(1) };
    assert!(matches!(l.apply(&stranger, Timestamp(0)), Err(LedgerError::UnknownAccount { .. })));
    assert_eq!(l.free_balance(&key(1)), held, "refused fees take nothing");
}

#[test]
fn task_pools_keep_their_round_count() {
    let mut l = funded();
    let fund =
        |rounds| Operation::FundTask { funder: key(1), task: TaskId::new(3), amount: micro(10), total_rounds: rounds };
    l.apply(&fund(5), Timestamp(0)).unwrap();
    assert_eq!(
        l.apply(&fund(6), Timestamp(0)),
        Err(LedgerError::TaskRoundsMismatch { task: TaskId::new(3), existing: 5, requested: 6 })
    );
    l.apply(&fund(5), Timestamp(0)).unwrap();
    assert_eq!(l.pool(TaskId::new(3)).unwrap().balance, micro(20));
}

#[test]
fn a_refund_returns_the_pool_and_closes_it() {
    let mut l = funded();
    let task = TaskId::new(4);
    let fund = Operation::FundTask { funder: key(1), task, amount: micro(300), total_rounds: 3 };
    l.apply(&fund, Timestamp(0)).unwrap();
    assert_eq!(l.free_balance(&key(1)), micro(1_000_000 - 300));

    l.apply(&Operation::RefundTask { task, to: key(1) }, Timestamp(1)).unwrap();
    assert_eq!(l.free_balance(&key(1)), micro(1_000_000));
    let pool = l.pool(task).unwrap();
    assert_eq!((pool.balance, pool.rounds_left()), (Amount::ZERO, 0));
    // Closed: nothing more can go in, and a second refund moves nothing.
    assert_eq!(l.apply(&fund, Timestamp(2)), Err(LedgerError::TaskFinished { task }));
    l.apply(&Operation::RefundTask { task, to: key(2) }, Timestamp(3)).unwrap();
    assert_eq!(l.free_balance(&key(2)), Amount::ZERO);
    assert_eq!(l.issued(), micro(1_000_000), "a refund creates nothing");
    // A pool that never existed is a typed refusal.
    let unknown = TaskId::new(9);
    assert_eq!(
        l.apply(&Operation::RefundTask { task: unknown, to: key(1) }, Timestamp(4)),
        Err(LedgerError::UnknownTask { task: unknown })
    );
}
