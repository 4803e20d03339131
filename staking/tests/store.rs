//! One suite for every `LedgerStore`: each test runs on SQLite (in memory)
//! always, and on PostgreSQL as an ignored test (run with
//! `--include-ignored` and `DATABASE_URL` naming a server; each test in a
//! fresh schema). Results are compared with the in-memory reference ledger.

use std::sync::Arc;

use starling_protocol::{PublicKey, RoundNumber, TaskId};
use starling_staking::{
    Accepted, Amount, Balances, BondId, EntryKind, HistoryEntry, LedgerError, LedgerStore, MemoryLedger, Operation,
    Page, PageRequest, Params, Position, PostgresStore, Ppm, Role, RoundReport, SqliteStore, StoreError, Timestamp,
    ValidatorAgreement, scratch_schema,
};

fn key(n: u8) -> PublicKey {
    PublicKey::from_bytes([n; 32])
}

fn micro(n: u64) -> Amount {
    Amount::from_micro(n)
}

async fn sqlite() -> SqliteStore {
    SqliteStore::open("sqlite::memory:", key(0), Params::default()).await.expect("open sqlite")
}

/// A PostgreSQL store in a schema of its own, on the server `DATABASE_URL`
/// names.
async fn postgres(test: &str) -> PostgresStore {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL names a PostgreSQL server");
    let (_, options) = scratch_schema(&url, &format!("t_{test}")).await.expect("a schema of its own");
    PostgresStore::connect(options, key(0), Params::default()).await.expect("open postgres")
}

/// Two tests of the generic async fn `$check`: `$name::on_sqlite` (in
/// memory) and `$name::on_postgres`, ignored unless run with
/// `--include-ignored`, and then needing `DATABASE_URL`. `$arg`s go to
/// `#[tokio::test(..)]`.
macro_rules! on_every_store {
    ($name:ident: $check:ident $(, $($arg:tt)*)?) => {
        mod $name {
            use super::*;

            #[tokio::test$(($($arg)*))?]
            async fn on_sqlite() {
                $check(Arc::new(sqlite().await)).await;
            }

            #[tokio::test$(($($arg)*))?]
            #[ignore = "needs PostgreSQL: set DATABASE_URL and run with --include-ignored (./test.sh does when it is set)"]
            async fn on_postgres() {
                $check(Arc::new(postgres(stringify!($check)).await)).await;
            }
        }
    };
}
fn scenario() -> Vec<Operation> {
    let t = TaskId::new(1);
    vec![
        Operation::Issue { by: key(0), to: key(1), amount: micro(20_000_000) },
        Operation::Transfer { from: key(1), to: key(2), amount: micro(5_000_000) },
        Operation::Stake { owner: key(2), role: Role::Trainer, amount: micro(1_000_000), lock_days: 100 },
        Operation::Stake { owner: key(3), role: Role::Trainer, amount: micro(1), lock_days: 0 },
        Operation::Transfer { from: key(1), to: key(3), amount: micro(2_000_000) },
        Operation::Stake { owner: key(3), role: Role::Trainer, amount: micro(1_000_000), lock_days: 0 },
        Operation::Stake { owner: key(4), role: Role::Validator, amount: micro(1), lock_days: 0 },
        Operation::Transfer { from: key(1), to: key(4), amount: micro(3_000_000) },
        Operation::Stake { owner: key(4), role: Role::Validator, amount: micro(2_000_000), lock_days: 365 },
        Operation::SetCommission { node: key(2), commission_ppm: 200_000 },
        Operation::Delegate {
            delegator: key(1),
            node: key(2),
            role: Role::Trainer,
            amount: micro(500_000),
            lock_days: 40,
        },
        Operation::FundTask { funder: key(1), task: t, amount: micro(6_000_000), total_rounds: 3 },
        Operation::SettleRound(RoundReport {
            task: t,
            round: RoundNumber::FIRST,
            opened_at: Timestamp(10),
            accepted: vec![Accepted { trainer: key(2), score: 0.7 }],
            rejected: vec![key(3)],
            validators: vec![ValidatorAgreement { validator: key(4), agreement: Ppm::new(450_000).unwrap() }],
        }),
        Operation::SettleRound(RoundReport {
            task: t,
            round: RoundNumber::FIRST,
            opened_at: Timestamp(10),
            accepted: vec![],
            rejected: vec![],
            validators: vec![],
        }),
        // The rest of the pool back to its funder; then the closed pool
        // refuses another round.
        Operation::RefundTask { task: t, to: key(1) },
        Operation::SettleRound(RoundReport {
            task: t,
            round: RoundNumber::new(1),
            opened_at: Timestamp(10),
            accepted: vec![],
            rejected: vec![],
            validators: vec![],
        }),
        Operation::Burn { from: key(2), amount: micro(1_000) },
        Operation::Unstake { owner: key(2), bond: starling_staking::BondId(1) },
        Operation::Unstake { owner: key(3), bond: starling_staking::BondId(2) },
    ]
}

async fn matches_reference<S: LedgerStore>(store: Arc<S>) {
    let mut reference = MemoryLedger::new(key(0), Params::default());
    // PostgreSQL sequences are not transactional, so a refused Stake leaves a
    // gap in its bond ids: map the reference's ids to the store's.
    let mut ids = std::collections::BTreeMap::new();
    for (i, op) in scenario().iter().enumerate() {
        let now = Timestamp(i as u64 * 50 * 86_400);
        let expected = reference.apply(op, now);
        let store_op = match op {
            Operation::Unstake { owner, bond } => Operation::Unstake { owner: *owner, bond: ids[bond] },
            other => other.clone(),
        };
        let got = store.apply(&format!("op-{i}"), &store_op, now).await;
        match (&expected, got) {
            (Ok(e), Ok(g)) => {
                if let (Some(e), Some(g)) = (e.bond, g.bond) {
                    ids.insert(e, g);
                }
                assert_eq!(
                    (e.rewarded, e.slashed, e.bond.is_some()),
                    (g.rewarded, g.slashed, g.bond.is_some()),
                    "{op:?}"
                );
            }
            (Err(e), Err(StoreError::Ledger(g))) => assert_eq!(*e, g, "{op:?}"),
            (e, g) => panic!("{op:?}: reference {e:?}, store {g:?}"),
        }
    }
    for n in 0..5 {
        assert_eq!(store.free_balance(&key(n)).await.unwrap(), reference.free_balance(&key(n)), "key {n}");
    }
    for bond in reference.bonds() {
        let stored = store.bond(ids[&bond.id]).await.unwrap().expect("bond exists");
        assert_eq!(stored, starling_staking::Bond { id: stored.id, ..bond.clone() });
    }
    assert_eq!(reference.bonds().count(), 2, "the scenario leaves two bonds");
    let task = TaskId::new(1);
    assert_eq!(store.pool(task).await.unwrap().as_ref(), reference.pool(task));
    let delegated = store.bonds_of_node(&key(2), Role::Trainer).await.unwrap();
    assert_eq!(delegated.iter().filter(|b| b.is_delegation()).count(), 1);
    let audit = store.audit().await.unwrap();
    assert_eq!(audit.held, audit.issued);
    assert_eq!(audit.issued, reference.issued());
    assert_eq!(audit.burned, reference.burned());
    assert_eq!(audit.treasury, reference.treasury());
}

on_every_store!(store_matches_the_reference_ledger: matches_reference);

async fn idempotent<S: LedgerStore>(store: Arc<S>) {
    let issue = Operation::Issue { by: key(0), to: key(1), amount: micro(1_000) };
    let stake = Operation::Stake { owner: key(1), role: Role::Trainer, amount: micro(400), lock_days: 0 };
    store.apply("a", &issue, Timestamp(0)).await.unwrap();
    let first = store.apply("b", &stake, Timestamp(0)).await.unwrap();
    // Retries return the first outcome (the same bond) and move nothing.
    assert_eq!(store.apply("b", &stake, Timestamp(9)).await.unwrap(), first);
    assert_eq!(store.apply("a", &issue, Timestamp(0)).await.unwrap(), Default::default());
    assert_eq!(store.free_balance(&key(1)).await.unwrap(), micro(600));
    let other = Operation::Burn { from: key(1), amount: micro(1) };
    assert!(matches!(store.apply("b", &other, Timestamp(0)).await, Err(StoreError::IdempotencyKeyReused { .. })));
    // A refused operation records nothing: the key stays free.
    let too_much = Operation::Burn { from: key(1), amount: micro(601) };
    assert!(matches!(
        store.apply("c", &too_much, Timestamp(0)).await,
        Err(StoreError::Ledger(LedgerError::InsufficientFunds { .. }))
    ));
    store.apply("c", &other, Timestamp(0)).await.unwrap();
    assert_eq!(store.free_balance(&key(1)).await.unwrap(), micro(599));
}

on_every_store!(retries_return_the_first_result: idempotent);

async fn settles_once<S: LedgerStore>(store: Arc<S>) {
    let task = TaskId::new(5);
    store.apply("i", &Operation::Issue { by: key(0), to: key(1), amount: micro(1_000) }, Timestamp(0)).await.unwrap();
    let fund = Operation::FundTask { funder: key(1), task, amount: micro(1_000), total_rounds: 2 };
    store.apply("f", &fund, Timestamp(0)).await.unwrap();
    let report = RoundReport {
        task,
        round: RoundNumber::FIRST,
        opened_at: Timestamp(0),
        accepted: vec![],
        rejected: vec![],
        validators: vec![],
    };
    store.apply("s1", &Operation::SettleRound(report.clone()), Timestamp(1)).await.unwrap();
    // Under a new key (a coordinator that forgot its key after a crash) it is still refused.
    assert!(matches!(
        store.apply("s2", &Operation::SettleRound(report), Timestamp(2)).await,
        Err(StoreError::Ledger(LedgerError::RoundAlreadySettled { .. }))
    ));
    assert_eq!(store.pool(task).await.unwrap().unwrap().settled_rounds, 1);
}

on_every_store!(a_round_settles_at_most_once: settles_once);

async fn hammer<S: LedgerStore + 'static>(store: Arc<S>) {
    // Four keys with 1_000 µ each; 8 tasks × 40 operations of transfers,
    // stakes and unstakes among them, many of which must be refused.
    for n in 1..=4 {
        store
            .apply(
                &format!("issue-{n}"),
                &Operation::Issue { by: key(0), to: key(n), amount: micro(1_000) },
                Timestamp(0),
            )
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for worker in 0..8u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut bonds = Vec::new();
            for i in 0..40u64 {
                let from = key(1 + ((worker + i) % 4) as u8);
                let to = key(1 + ((worker + i + 1) % 4) as u8);
                let op = match i % 3 {
                    0 => Operation::Transfer { from, to, amount: micro(300 + i) },
                    1 => Operation::Stake { owner: from, role: Role::Trainer, amount: micro(200), lock_days: 0 },
                    _ => match bonds.pop() {
                        Some((owner, bond)) => Operation::Unstake { owner, bond },
                        None => Operation::Burn { from, amount: micro(1) },
                    },
                };
                match store.apply(&format!("w{worker}-{i}"), &op, Timestamp(1)).await {
                    Ok(outcome) => {
                        if let (Some(bond), Operation::Stake { owner, .. }) = (outcome.bond, &op) {
                            bonds.push((*owner, bond));
                        }
                    }
                    Err(StoreError::Ledger(_)) => {}
                    Err(other) => panic!("{op:?}: {other}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let audit = store.audit().await.unwrap();
    assert_eq!(audit.issued, micro(4_000));
    assert_eq!(audit.held, audit.issued, "the books balance to the micro-unit");
}

on_every_store!(concurrent_operations_never_overdraw: hammer, flavor = "multi_thread", worker_threads = 4);

/// Reads every page of a list, `limit` items at a time, checking that only
/// full pages point to a next one.
async fn walk<T, F, Fut>(limit: u32, mut fetch: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, StoreError>>,
{
    let mut all = Vec::new();
    let mut request = PageRequest::first(limit);
    loop {
        let page = fetch(request).await.expect("page");
        assert!(page.items.len() <= limit as usize, "a page holds at most its limit");
        let full = page.items.len() == limit as usize;
        all.extend(page.items);
        match page.next {
            Some(cursor) => {
                assert!(full, "only a full page has a next one");
                request = PageRequest::after(cursor, limit);
            }
            None => return all,
        }
    }
}

const FUNDER: u8 = 1;
const T1: u8 = 10;
const T2: u8 = 11;
const T3: u8 = 12;
const V1: u8 = 20;
const V2: u8 = 21;
const D1: u8 = 30;
const D3: u8 = 31;
/// A trainer with 510 bonds: its slash writes 1,020 entries, more than one
/// multi-row insert holds.
const MANY: u8 = 40;
const MANY_BONDS: u64 = 510;
const NOBODY: u8 = 99;
const EVERYONE: [u8; 10] = [FUNDER, T1, T2, T3, V1, V2, D1, D3, MANY, NOBODY];

/// The worked example of `tests/settlement.rs` (task 7, round 0), then a
/// second task that pays a validator with a delegator, an undelegation of a
/// slashed bond, and a third task whose one slash spans many bonds.
fn read_model_scenario() -> Vec<(Operation, u64)> {
    let issue = |to: u8, amount: u64| Operation::Issue { by: key(0), to: key(to), amount: micro(amount) };
    let stake = |owner: u8, role: Role, amount: u64| Operation::Stake {
        owner: key(owner),
        role,
        amount: micro(amount),
        lock_days: 0,
    };
    let delegate = |delegator: u8, node: u8, role: Role, amount: u64, lock_days: u16| Operation::Delegate {
        delegator: key(delegator),
        node: key(node),
        role,
        amount: micro(amount),
        lock_days,
    };
    let settle = |task: u64, opened_at: u64, accepted: &[u8], rejected: &[u8], validators: &[(u8, u32)]| {
        Operation::SettleRound(RoundReport {
            task: TaskId::new(task),
            round: RoundNumber::FIRST,
            opened_at: Timestamp(opened_at),
            accepted: accepted
                .iter()
                .map(|&t| Accepted { trainer: key(t), score: 0.9 - f64::from(t) / 100.0 })
                .collect(),
            rejected: rejected.iter().map(|&t| key(t)).collect(),
            validators: validators
                .iter()
                .map(|&(v, ppm)| ValidatorAgreement { validator: key(v), agreement: Ppm::new(ppm).unwrap() })
                .collect(),
        })
    };
    let mut ops = vec![];
    for (k, amount) in [(FUNDER, 20_000_000), (T1, 1_000_000), (T2, 1_000_000), (T3, 1_000_000)] {
        ops.push((issue(k, amount), 0));
    }
    for (k, amount) in [(V1, 3_000_000), (V2, 1_000_000), (D1, 2_000_000), (D3, 500_000), (MANY, 100 * MANY_BONDS)] {
        ops.push((issue(k, amount), 0));
    }
    for k in [T1, T2, T3] {
        ops.push((stake(k, Role::Trainer, 1_000_000), 0));
    }
    ops.push((stake(V1, Role::Validator, 3_000_000), 0));
    ops.push((stake(V2, Role::Validator, 1_000_000), 0));
    ops.push((delegate(D1, T1, Role::Trainer, 1_000_000, 0), 0));
    ops.push((delegate(D3, T3, Role::Trainer, 500_000, 0), 0));
    ops.push((Operation::SetCommission { node: key(T1), commission_ppm: 100_000 }, 100));
    let fund = |task: u64, amount: u64, total_rounds: u32| Operation::FundTask {
        funder: key(FUNDER),
        task: TaskId::new(task),
        amount: micro(amount),
        total_rounds,
    };
    ops.push((fund(7, 10_000_000, 2), 0));
    // Task 7 has T1 ahead of T2 (scores 0.80 and 0.79), as in the worked example.
    ops.push((settle(7, 200, &[T2, T1], &[T3], &[(V1, 1_000_000), (V2, 400_000)]), 300));
    ops.push((delegate(D1, V1, Role::Validator, 500_000, 100), 400));
    ops.push((fund(8, 1_000_000, 1), 400));
    ops.push((settle(8, 450, &[T2], &[], &[(V1, 1_000_000)]), 500));
    ops.push((Operation::Undelegate { delegator: key(D3), bond: BondId(7) }, 600));
    for _ in 0..MANY_BONDS {
        ops.push((stake(MANY, Role::Trainer, 100), 700));
    }
    ops.push((fund(9, 1_000, 1), 700));
    ops.push((settle(9, 750, &[], &[MANY], &[]), 800));
    ops
}

async fn read_models<S: LedgerStore>(store: Arc<S>) {
    let mut reference = MemoryLedger::new(key(0), Params::default());
    let mut settled = Vec::new();
    for (i, (op, now)) in read_model_scenario().into_iter().enumerate() {
        let expected = reference.apply(&op, Timestamp(now)).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        let got = store.apply(&format!("rm-{i}"), &op, Timestamp(now)).await.unwrap_or_else(|e| panic!("{op:?}: {e}"));
        // Every operation succeeds, so bond ids agree on both backends.
        assert_eq!(got, expected, "{op:?}");
        if let Operation::SettleRound(report) = op {
            settled.push((report.task, got));
        }
    }

    for n in EVERYONE {
        let k = key(n);
        let bonds: Vec<_> = reference.bonds().filter(|b| b.owner == k).cloned().collect();
        let sum = |delegations: bool| {
            bonds.iter().filter(|b| b.is_delegation() == delegations).map(|b| b.amount.micro()).sum::<u64>()
        };
        let expected =
            Balances { free: reference.free_balance(&k), staked: micro(sum(false)), delegated: micro(sum(true)) };
        assert_eq!(store.balances(&k).await.unwrap(), expected, "balances of key {n}");
        let expected: Vec<Position> = bonds.into_iter().map(Position::from).collect();
        let limit = if n == MANY { 100 } else { 2 };
        assert_eq!(walk(limit, |p| store.positions(&k, p)).await, expected, "positions of key {n}");
        for role in [Role::Trainer, Role::Validator] {
            let expected: Vec<Position> = reference
                .bonds()
                .filter(|b| b.node == k && b.role == role && b.is_delegation())
                .cloned()
                .map(Position::from)
                .collect();
            assert_eq!(walk(1, |p| store.delegators(&k, role, p)).await, expected, "delegators of {n} as {role:?}");
        }
        let expected: Vec<HistoryEntry> =
            reference.history().iter().rev().filter(|h| h.identity == k).copied().collect();
        let limit = if n == MANY { 250 } else { 3 };
        assert_eq!(walk(limit, |p| store.identity_history(&k, p)).await, expected, "history of key {n}");
    }
    for (task, outcome) in &settled {
        let expected: Vec<HistoryEntry> =
            reference.history().iter().rev().filter(|h| h.task == *task).copied().collect();
        let history = walk(3, |p| store.task_history(*task, p)).await;
        assert_eq!(history, expected, "history of task {task}");
        // Independent of the reference: the history accounts for every
        // micro-unit the settlement reported.
        let total = |kinds: &[EntryKind]| {
            micro(history.iter().filter(|h| kinds.contains(&h.kind)).map(|h| h.amount.micro()).sum())
        };
        assert_eq!(total(&[EntryKind::Reward]), outcome.rewarded, "task {task}");
        assert_eq!(total(&[EntryKind::SlashToPool, EntryKind::SlashBurn]), outcome.slashed, "task {task}");
    }

    // Hand-computed, from the worked example: D1's share of T1's reward in
    // task 7, then its share of V1's in task 8 (newest first).
    let d1 = store.identity_history(&key(D1), PageRequest::first(10)).await.unwrap();
    assert_eq!(d1.next, None);
    assert_eq!(d1.items.len(), 2);
    assert_eq!(
        (d1.items[0].task, d1.items[0].kind, d1.items[0].at),
        (TaskId::new(8), EntryKind::Reward, Timestamp(500))
    );
    assert_eq!(
        d1.items[1],
        HistoryEntry {
            task: TaskId::new(7),
            round: RoundNumber::FIRST,
            identity: key(D1),
            kind: EntryKind::Reward,
            amount: micro(1_263_158),
            bond: None,
            at: Timestamp(300),
        }
    );
    // D3's delegation (bond 7) lost 10% of 500_000: 25_000 to the pool, then
    // 25_000 burned. The bond is gone since; its history still names D3.
    let d3 = store.identity_history(&key(D3), PageRequest::first(10)).await.unwrap().items;
    let slash = |kind| HistoryEntry {
        task: TaskId::new(7),
        round: RoundNumber::FIRST,
        identity: key(D3),
        kind,
        amount: micro(25_000),
        bond: Some(BondId(7)),
        at: Timestamp(300),
    };
    assert_eq!(d3, vec![slash(EntryKind::SlashBurn), slash(EntryKind::SlashToPool)]);
    assert_eq!(store.bond(BondId(7)).await.unwrap(), None);
    // 510 bonds of MANY, each cut by 10 µ (5 + 5): 1,020 entries in one settlement.
    let many = walk(MAX_PAGE_FOR_TEST, |p| store.task_history(TaskId::new(9), p)).await;
    assert_eq!(many.len(), 2 * MANY_BONDS as usize);
    assert!(many.iter().all(|h| h.identity == key(MANY) && h.amount == micro(5)));

    // Unknown keys hold nothing; a zero limit still makes progress.
    assert_eq!(store.balances(&key(NOBODY)).await.unwrap(), Balances::default());
    let one = store.positions(&key(D1), PageRequest::first(0)).await.unwrap();
    assert_eq!(one.items.len(), 1);
    assert!(one.next.is_some());
}

const MAX_PAGE_FOR_TEST: u32 = starling_staking::MAX_PAGE;

on_every_store!(read_models_match_the_reference_ledger: read_models);
