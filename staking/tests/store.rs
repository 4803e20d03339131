//! One suite for every `LedgerStore`: each test runs on SQLite (in memory)
//! always, and on PostgreSQL when `DATABASE_URL` names one (each test in a
//! fresh schema). Results are compared with the in-memory reference ledger.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::PgConnectOptions;
use starling_protocol::{PublicKey, RoundNumber, TaskId};
use starling_staking::{
    Accepted, Amount, LedgerError, LedgerStore, MemoryLedger, Operation, Params, PostgresStore, Ppm, Role, RoundReport,
    SqliteStore, StoreError, Timestamp, ValidatorAgreement,
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

/// A PostgreSQL store in a schema of its own, or `None` (with a note) when
/// `DATABASE_URL` is not set.
async fn postgres(test: &str) -> Option<PostgresStore> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("note: DATABASE_URL not set; {test} ran on SQLite only");
        return None;
    };
    let schema = format!("t_{}_{}_{}", test, std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
    let options = PgConnectOptions::from_str(&url).expect("DATABASE_URL parses");
    let admin = sqlx::PgPool::connect_with(options.clone()).await.expect("connect to DATABASE_URL");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.expect("create schema");
    let options = options.options([("search_path", schema.as_str())]);
    Some(PostgresStore::connect(options, key(0), Params::default()).await.expect("open postgres"))
}

/// Runs the generic async fn `$check` on every backend.
macro_rules! on_every_store {
    ($check:ident) => {{
        $check(Arc::new(sqlite().await)).await;
        if let Some(store) = postgres(stringify!($check)).await {
            $check(Arc::new(store)).await;
        }
    }};
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

#[tokio::test]
async fn store_matches_the_reference_ledger() {
    on_every_store!(matches_reference);
}

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

#[tokio::test]
async fn retries_return_the_first_result() {
    on_every_store!(idempotent);
}

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

#[tokio::test]
async fn a_round_settles_at_most_once() {
    on_every_store!(settles_once);
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_operations_never_overdraw() {
    on_every_store!(hammer);
}
