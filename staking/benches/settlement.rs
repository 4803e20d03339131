//! Settling one round with 1,000 trainers, 50 validators and 10,000
//! delegations, and ledger operations per second under concurrency (16 tokio
//! tasks doing transfers and stakes), on SQLite (a file in WAL mode) and on
//! PostgreSQL when `DATABASE_URL` is set (in a schema of its own, dropped
//! afterwards). The in-memory reference ledger, which runs the same planner
//! without a database, is the baseline in the same run.
//!
//! `cargo bench -p starling-staking --bench settlement` runs everything;
//! `-- settle` or `-- ops` one group.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use starling_protocol::{PublicKey, RoundNumber, TaskId};
use starling_staking::{
    Accepted, Amount, LedgerStore, MemoryLedger, Operation, Params, PostgresStore, Ppm, Role, RoundReport, SqliteStore,
    Timestamp, ValidatorAgreement, scratch_schema,
};
use tokio::runtime::Runtime;

const TRAINERS: u32 = 1_000;
const REJECTED: u32 = 50;
const VALIDATORS: u32 = 50;
const DELEGATORS: u32 = 2_000;
/// Each delegator makes five: 9,000 behind trainers, 1,000 behind validators.
const DELEGATIONS: u32 = 10_000;
const TASK: TaskId = TaskId::new(1);
/// Enough rounds that every timed iteration settles a fresh one.
const ROUNDS: u32 = 1_000_000;
const WORKERS: u64 = 16;
const OPS_PER_WORKER: u64 = 50;
const ACCOUNTS: u32 = 64;

fn key(kind: u8, i: u32) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes[0] = kind;
    bytes[1..5].copy_from_slice(&i.to_le_bytes());
    PublicKey::from_bytes(bytes)
}

fn admin() -> PublicKey {
    key(0, 0)
}
fn trainer(i: u32) -> PublicKey {
    key(1, i)
}
fn validator(i: u32) -> PublicKey {
    key(2, i)
}
fn delegator(i: u32) -> PublicKey {
    key(3, i)
}
fn account(i: u32) -> PublicKey {
    key(4, i)
}

fn star(n: u64) -> Amount {
    Amount::from_star(n).expect("small amounts")
}

/// The set-up in phases, each needing the one before: the funded task pool
/// (in order), issuance, own stakes, then delegations (to existing nodes).
fn setup() -> [Vec<Operation>; 4] {
    let issue = |to, amount| Operation::Issue { by: admin(), to, amount };
    let prelude = vec![
        issue(account(0), star(1_000_000_000)),
        Operation::FundTask { funder: account(0), task: TASK, amount: star(100_000_000), total_rounds: ROUNDS },
    ];
    let nodes: Vec<_> = (0..TRAINERS)
        .map(|i| (trainer(i), Role::Trainer))
        .chain((0..VALIDATORS).map(|i| (validator(i), Role::Validator)))
        .collect();
    let issues = (1..ACCOUNTS)
        .map(|i| issue(account(i), star(1_000_000)))
        .chain(nodes.iter().map(|(node, _)| issue(*node, star(1_000))))
        .chain((0..DELEGATORS).map(|d| issue(delegator(d), star(1_000))))
        .collect();
    let stakes = nodes
        .iter()
        .enumerate()
        .map(|(n, (node, role))| Operation::Stake {
            owner: *node,
            role: *role,
            amount: star(1_000),
            lock_days: (n % 366) as u16,
        })
        .collect();
    let trainer_delegations = DELEGATIONS - VALIDATORS * 20;
    let delegations = (0..DELEGATIONS)
        .map(|m| {
            let (node, role) = if m < trainer_delegations {
                (trainer(m % TRAINERS), Role::Trainer)
            } else {
                (validator((m - trainer_delegations) % VALIDATORS), Role::Validator)
            };
            Operation::Delegate {
                delegator: delegator(m / (DELEGATIONS / DELEGATORS)),
                node,
                role,
                amount: star(100),
                lock_days: (m % 366) as u16,
            }
        })
        .collect();
    [prelude, issues, stakes, delegations]
}

/// Round `round`: 950 trainers accepted with scores that vary by round, 50
/// rejected (slashed), 45 validators agreeing and 5 below one half (slashed).
fn report(round: u32) -> RoundReport {
    let score = |i: u32| f64::from((i.wrapping_mul(2_654_435_761) ^ round) % 10_000) / 10_000.0;
    RoundReport {
        task: TASK,
        round: RoundNumber::new(round),
        opened_at: Timestamp(u64::from(round) + 1),
        accepted: (REJECTED..TRAINERS).map(|i| Accepted { trainer: trainer(i), score: score(i) }).collect(),
        rejected: (0..REJECTED).map(trainer).collect(),
        validators: (0..VALIDATORS)
            .map(|i| ValidatorAgreement {
                validator: validator(i),
                agreement: Ppm::new(if i < 5 { 400_000 } else { 900_000 + i * 1_000 }).expect("in range"),
            })
            .collect(),
    }
}

/// Applies the set-up to `store`: the prelude in order, each later phase
/// with `WORKERS` concurrent tasks.
async fn populate<S: LedgerStore + 'static>(store: &Arc<S>) {
    let started = Instant::now();
    for (phase, ops) in setup().into_iter().enumerate() {
        let workers = if phase == 0 { 1 } else { WORKERS as usize };
        let ops = Arc::new(ops);
        let tasks: Vec<_> = (0..workers)
            .map(|worker| {
                let (store, ops) = (Arc::clone(store), Arc::clone(&ops));
                tokio::spawn(async move {
                    for (i, op) in ops.iter().enumerate().skip(worker).step_by(workers) {
                        store.apply(&format!("setup-{phase}-{i}"), op, Timestamp(0)).await.expect("set-up applies");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("set-up task");
        }
    }
    eprintln!("set-up: {:.1} s", started.elapsed().as_secs_f64());
}

/// The ledgers under test, each set up once.
struct Backends {
    runtime: Runtime,
    sqlite: Arc<SqliteStore>,
    postgres: Option<(Arc<PostgresStore>, sqlx::PgPool, String)>,
    _dir: tempfile::TempDir,
}

fn backends() -> Backends {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    let sqlite = runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(&url, admin(), Params::default()).await.expect("open SQLite"));
        populate(&store).await;
        store
    });
    let postgres = std::env::var("DATABASE_URL").ok().map(|url| {
        runtime.block_on(async {
            let (schema, options) = scratch_schema(&url, "bench_settlement").await.expect("a schema of its own");
            let admin_pool = sqlx::PgPool::connect(&url).await.expect("connect to DATABASE_URL");
            let store =
                Arc::new(PostgresStore::connect(options, admin(), Params::default()).await.expect("open PostgreSQL"));
            populate(&store).await;
            (store, admin_pool, schema)
        })
    });
    if postgres.is_none() {
        eprintln!("note: DATABASE_URL not set; PostgreSQL skipped");
    }
    Backends { runtime, sqlite, postgres, _dir: dir }
}

fn memory() -> MemoryLedger {
    let mut ledger = MemoryLedger::new(admin(), Params::default());
    for op in setup().iter().flatten() {
        ledger.apply(op, Timestamp(0)).expect("set-up applies");
    }
    ledger
}

/// Times `iters` settlements of fresh rounds, `next` counting them.
async fn settle<S: LedgerStore>(store: &S, next: &Cell<u32>, iters: u64) -> Duration {
    let mut elapsed = Duration::ZERO;
    for _ in 0..iters {
        let round = next.get();
        next.set(round + 1);
        let op = Operation::SettleRound(report(round));
        let started = Instant::now();
        store.apply(&format!("settle-{round}"), &op, Timestamp(u64::from(round) + 2)).await.expect("settles");
        elapsed += started.elapsed();
    }
    elapsed
}

/// `WORKERS` tasks × `OPS_PER_WORKER` operations on `ACCOUNTS` shared accounts:
/// transfers, with every fifth a stake.
async fn hammer<S: LedgerStore + 'static>(store: &Arc<S>, seq: &Arc<AtomicU64>) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (store, seq) = (Arc::clone(store), Arc::clone(seq));
            tokio::spawn(async move {
                for i in 0..OPS_PER_WORKER {
                    let from = account(1 + ((worker * 4 + i % 4) % u64::from(ACCOUNTS - 1)) as u32);
                    let to = account(1 + ((worker * 4 + i * 7 + 1) % u64::from(ACCOUNTS - 1)) as u32);
                    let op = if i % 5 == 4 {
                        Operation::Stake {
                            owner: from,
                            role: Role::Trainer,
                            amount: Amount::from_micro(1),
                            lock_days: 0,
                        }
                    } else if from == to {
                        Operation::Burn { from, amount: Amount::from_micro(1) }
                    } else {
                        Operation::Transfer { from, to, amount: Amount::from_micro(1) }
                    };
                    let key = format!("ops-{}", seq.fetch_add(1, Ordering::Relaxed));
                    store.apply(&key, &op, Timestamp(1)).await.expect("funded accounts never run dry");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("worker");
    }
    started.elapsed()
}

fn benches(c: &mut Criterion) {
    let backends = backends();
    let rt = &backends.runtime;

    let mut group = c.benchmark_group("settle 1000 trainers, 50 validators, 10000 delegations");
    group.sampling_mode(SamplingMode::Flat).sample_size(10).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));
    let mut ledger = memory();
    let next = Cell::new(0);
    group.bench_function("memory (planner only)", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let round = next.get();
                next.set(round + 1);
                let op = Operation::SettleRound(report(round));
                let started = Instant::now();
                ledger.apply(&op, Timestamp(u64::from(round) + 2)).expect("settles");
                elapsed += started.elapsed();
            }
            elapsed
        });
    });
    let next = Cell::new(0);
    group.bench_function("sqlite", |b| b.iter_custom(|iters| rt.block_on(settle(&*backends.sqlite, &next, iters))));
    if let Some((store, ..)) = &backends.postgres {
        let next = Cell::new(0);
        group.bench_function("postgres", |b| b.iter_custom(|iters| rt.block_on(settle(&**store, &next, iters))));
    }
    group.finish();

    let mut group = c.benchmark_group("ops under concurrency");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(12));
    group.throughput(Throughput::Elements(WORKERS * OPS_PER_WORKER));
    let seq = Arc::new(AtomicU64::new(0));
    let tasks = format!("{WORKERS} tasks");
    group.bench_function(BenchmarkId::new("sqlite", &tasks), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += hammer(&backends.sqlite, &seq).await;
                }
                total
            })
        })
    });
    if let Some((store, ..)) = &backends.postgres {
        group.bench_function(BenchmarkId::new("postgres", &tasks), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += hammer(store, &seq).await;
                    }
                    total
                })
            })
        });
    }
    group.finish();

    if let Some((_, admin_pool, schema)) = &backends.postgres {
        rt.block_on(sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(admin_pool)).expect("drop schema");
    }
}

criterion_group!(settlement, benches);
criterion_main!(settlement);
