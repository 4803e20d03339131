//! The coordinator service: the shell around the pure [`RoundMachine`].
//!
//! A [`Coordinator`] owns three stores, each behind a trait: the
//! [`CoordinatorStore`] (tasks, persisted machines, submissions, scores,
//! joins, settled rounds and their verdicts), the ledger ([`LedgerStore`])
//! and the [`ArtifactStore`] (model files). It answers requests from
//! trainers, validators and everyone else through one pipeline
//! (`pipeline`: reachable over QUIC with [`Coordinator::serve_quic`], and
//! in process with [`Coordinator::handle`]), and runs every unfinished task
//! in a driver of its own (`driver`). It reads time from a [`Clock`]
//! passed in with its [`ServiceConfig`].
//!
//! The rooms:
//!
//! | module | holds |
//! |---|---|
//! | `pipeline` | verify → precheck → receive → execute, each answer counted once |
//! | `quic` | the QUIC front: streams in, frames and blobs out |
//! | `upload` | receiving an upload's bytes (QUIC or memory), an update straight into the artifact store |
//! | `update_check` | what an update must pass before and after its bytes arrive |
//! | `task_requests` | create, join, submit, score |
//! | `ledger_requests` | stake, delegate, unstake, commission, transfer, issue |
//! | `reads` | the unsigned wire reads |
//! | `wire_error` | every failure as the client's error code and message |
//! | `task_slot` | each task's machine in memory, and the one way it changes |
//! | `driver` | each task's loop: deadlines, opening, aggregation, settlement, promotion |
//! | `aggregate`, `settle` | a round's new model; its rewards, verdicts and record |
//! | `read_model` | the dashboard's and JSON API's reads |
//! | `market` | promotion and priced inference |
//! | `metrics`, `clock`, `evaluate` | counters, time, the coordinator's own model measure |
//!
//! Crash safety follows one rule: **record, then persist the machine, then
//! answer.** A request's record (a submission or a score) is written before
//! the machine that counts it is saved, and the client hears back only after
//! both. The records are the log and the saved machine a snapshot: a record
//! that only adds itself to the round (no phase change, no action) does not
//! re-save the machine, which is saved at every phase change. A restart
//! reloads each machine and re-delivers the current round's records to it
//! (the machine ignores what it already has), so nothing acknowledged is
//! lost. Aggregation writes its model under its content
//! hash and settlement applies under a fixed idempotency key, so repeating
//! either after a crash changes nothing.

mod aggregate;
mod clock;
mod connections;
mod driver;
mod evaluate;
mod ledger_requests;
mod market;
mod metrics;
mod pipeline;
mod quic;
mod read_model;
mod reads;
mod settle;
mod task_requests;
mod task_slot;
mod update_check;
mod upload;
mod wire_error;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use starling_protocol::{MAX_CONTROL_MESSAGE, PublicKey, ReplayConfig, TaskId, Verifier};
use starling_staking::{LedgerStore, Params};
use thiserror::Error;
use tokio::sync::watch;

pub use clock::{Clock, ManualClock};
pub use driver::{Drive, DriverError};
pub use evaluate::{Evaluator, ModelEvaluator};

use crate::artifacts::{ArtifactError, ArtifactStore};
use crate::market::MarketParams;
use crate::round::{RoundMachine, UnixMillis};
use crate::store::{CoordinatorStore, StoreError};
use task_slot::TaskSlot;

/// [`ServiceConfig::max_model_bytes`] unless set: 256 MiB, about forty
/// times the zoo's CNN.
pub const DEFAULT_MAX_MODEL_BYTES: u64 = 256 << 20;

/// [`ServiceConfig::max_open_tasks_per_creator`] unless set.
pub const DEFAULT_MAX_OPEN_TASKS_PER_CREATOR: u64 = 16;

/// [`ServiceConfig::max_connections_per_address`] unless set.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 64;

/// How a coordinator runs its tasks.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The identity allowed to issue tokens (`starling admin issue`).
    pub admin: PublicKey,
    /// How long a new task waits for trainers and validators to join
    /// before its first round opens. A task whose window has passed opens
    /// as soon as it has an eligible trainer and validator.
    pub join_window: Duration,
    /// How often each task's driver wakes without being told to: deadlines
    /// are met within this much.
    pub tick: Duration,
    /// Consensus score below which an accepted-looking submission is
    /// rejected as harmful (and its trainer slashed); `None`: never.
    pub harm_threshold: Option<f64>,
    /// The largest model (and so update) this coordinator accepts, in
    /// bytes: a task whose payload limit or initial model is larger is
    /// refused before a byte of it is read.
    pub max_model_bytes: u64,
    /// How many unfinished tasks one creator may have at once: a key cannot
    /// make the coordinator drive tasks without end.
    pub max_open_tasks_per_creator: u64,
    /// How long after its join window a task whose first round never
    /// opened (nobody eligible joined) waits before it is closed and its
    /// pool refunded to its creator.
    pub unjoined_expiry: Duration,
    /// How long a QUIC stream may take to deliver its request frame, and
    /// the fixed part of the time a blob may take to arrive or be taken
    /// (see [`ServiceConfig::transfer_limit`]): a peer that opens streams
    /// and sends nothing, or withholds flow control, holds none for longer.
    pub request_timeout: Duration,
    /// The slowest transfer rate a blob is given time for, in bytes per
    /// second.
    pub min_transfer_rate: u64,
    /// Open QUIC connections one client (an IPv4 address, an IPv6 /64) may
    /// hold; more are refused at the handshake.
    pub max_connections_per_address: usize,
    /// Open QUIC connections in all. Past half of it, a client must prove
    /// its address (a QUIC retry) before the coordinator keeps any state
    /// for it; past all of it, new connections are refused.
    pub max_connections: usize,
    /// Timestamp and nonce window of signed requests.
    pub replay: ReplayConfig,
    /// The ledger's parameters (the same the ledger store was opened with):
    /// used to report an unstake's fee.
    pub params: Params,
    /// Inference prices, quotas and fee shares.
    pub market: MarketParams,
    /// Where the service reads the time.
    pub clock: Clock,
    /// Whether the service runs each task's driver loop itself (the
    /// default). Off, it runs none, and its caller drives each task with
    /// [`Coordinator::drive`]: deterministic tests on a [`ManualClock`].
    pub run_drivers: bool,
}

impl ServiceConfig {
    /// Defaults for a coordinator whose admin is `admin`: a one-minute join
    /// window, a 250 ms tick, no harm threshold, a week for a task nobody
    /// joins, 10 s for a request frame and 64 KiB/s for a blob, 64
    /// connections per client and 10,000 in all, the protocol's replay
    /// window, the system clock, drivers run by the service.
    pub fn new(admin: PublicKey) -> Self {
        Self {
            admin,
            join_window: Duration::from_secs(60),
            tick: Duration::from_millis(250),
            harm_threshold: None,
            max_model_bytes: DEFAULT_MAX_MODEL_BYTES,
            max_open_tasks_per_creator: DEFAULT_MAX_OPEN_TASKS_PER_CREATOR,
            unjoined_expiry: Duration::from_secs(7 * 24 * 3600),
            request_timeout: Duration::from_secs(10),
            min_transfer_rate: 64 * 1024,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            max_connections: 10_000,
            replay: ReplayConfig::default(),
            params: Params::default(),
            market: MarketParams::default(),
            clock: Clock::System,
            run_drivers: true,
        }
    }

    /// The time a blob of `len` bytes may take to arrive or to be taken:
    /// the request timeout plus `len` at the slowest rate allowed.
    pub fn transfer_limit(&self, len: u64) -> Duration {
        let rate = self.min_transfer_rate.max(1);
        self.request_timeout.saturating_add(Duration::from_secs_f64(len as f64 / rate as f64))
    }
}

/// Why the service could not start or go on.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The coordinator's store failed.
    #[error("coordinator store: {0}")]
    Store(#[from] StoreError),
    /// The ledger failed.
    #[error("ledger: {0}")]
    Ledger(#[from] starling_staking::StoreError),
    /// The artifact store failed.
    #[error("artifact store: {0}")]
    Artifacts(#[from] ArtifactError),
    /// A persisted machine could not be decoded (written by an incompatible
    /// version, or corrupted).
    #[error("task {task}: persisted state does not decode: {reason}")]
    CorruptState {
        /// The task.
        task: TaskId,
        /// What the decoder said.
        reason: String,
    },
    /// A stored task's spec no longer passes the machine's checks.
    #[error("task {task}: {reason}")]
    BadTask {
        /// The task.
        task: TaskId,
        /// Why.
        reason: String,
    },
}

/// The coordinator service. Cheap to clone: every clone is the same service.
pub struct Coordinator<S, L, A> {
    inner: Arc<Inner<S, L, A>>,
}

impl<S, L, A> Clone for Coordinator<S, L, A> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

pub(crate) struct Inner<S, L, A> {
    pub(crate) store: S,
    pub(crate) ledger: L,
    pub(crate) artifacts: A,
    pub(crate) config: ServiceConfig,
    pub(crate) evaluator: Option<Arc<dyn Evaluator>>,
    /// Shared to authenticate (signatures are checked in parallel),
    /// exclusive only to record a nonce.
    pub(crate) verifier: RwLock<Verifier>,
    pub(crate) tasks: RwLock<BTreeMap<TaskId, Arc<TaskSlot>>>,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) market: market::Market,
}

impl<S, L, A> Coordinator<S, L, A>
where
    S: CoordinatorStore + 'static,
    L: LedgerStore + 'static,
    A: ArtifactStore + 'static,
{
    /// Starts the service over its stores: loads every unfinished task,
    /// re-delivers its current round's records, and starts its driver.
    /// Must be called inside a tokio runtime.
    ///
    /// `evaluator`, if given, measures each new global model (accuracy and
    /// loss on the coordinator's own held-out data) for the round records.
    pub async fn start(
        store: S,
        ledger: L,
        artifacts: A,
        config: ServiceConfig,
        evaluator: Option<Arc<dyn Evaluator>>,
    ) -> Result<Self, ServiceError> {
        // Nothing signed before this start is taken: the nonces an earlier
        // run saw are gone, so its requests must not be replayable now.
        let replay = ReplayConfig { not_before_ms: config.clock.now().get(), ..config.replay };
        let verifier = Verifier::new(MAX_CONTROL_MESSAGE, replay);
        let market = market::Market::new(config.market);
        let coordinator = Self {
            inner: Arc::new(Inner {
                store,
                ledger,
                artifacts,
                config,
                evaluator,
                verifier: RwLock::new(verifier),
                tasks: RwLock::new(BTreeMap::new()),
                shutdown: watch::channel(false).0,
                metrics: metrics::Metrics::default(),
                market,
            }),
        };
        // Creations this process's predecessor died in the middle of: their
        // pools (if escrowed) go back to their creators.
        let started = coordinator.now();
        for (task, creator) in coordinator.inner.store.reservations(started).await? {
            coordinator.refund_reservation(task, creator).await?;
        }
        for task in coordinator.inner.store.unfinished_tasks().await? {
            let pool = coordinator.inner.ledger.pool(task).await?;
            let closed = pool.is_none_or(|pool| pool.rounds_left() == 0);
            // Never funded (stored by a version that stored before it
            // escrowed), or refunded by an expiry that stopped before marking
            // it finished: it never started and cannot pay anyone. (A task
            // whose last round settled just before a crash has no rounds
            // left either, but it started: it resumes and finishes.)
            if closed && coordinator.inner.store.load_state(task).await?.version == 0 {
                coordinator.cancel(task).await;
                continue;
            }
            let slot = coordinator.load_task(task).await?;
            coordinator.run_task(slot);
        }
        coordinator.promote_pending().await?;
        Ok(coordinator)
    }

    /// Stops every task driver (at its next await point) and the QUIC accept
    /// loops. What was acknowledged is already durable; a new
    /// [`start`](Coordinator::start) over the same stores carries on.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// The coordinator's store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The ledger.
    pub fn ledger(&self) -> &L {
        &self.inner.ledger
    }

    /// The artifact store.
    pub fn artifacts(&self) -> &A {
        &self.inner.artifacts
    }

    /// A copy of a running task's machine, `None` for a task this
    /// coordinator does not run (unknown, or finished before it started).
    pub async fn machine(&self, task: TaskId) -> Option<RoundMachine> {
        let slot = self.slot(task)?;
        Some(slot.runtime.lock().await.machine.clone())
    }

    /// Waits until `task` has finished or `timeout` passes; returns whether
    /// it finished.
    pub async fn wait_finished(&self, task: TaskId, timeout: Duration) -> bool {
        let Some(slot) = self.slot(task) else { return false };
        let mut finished = slot.finished.subscribe();
        tokio::time::timeout(timeout, finished.wait_for(|done| *done)).await.is_ok_and(|r| r.is_ok())
    }

    pub(crate) fn slot(&self, task: TaskId) -> Option<Arc<TaskSlot>> {
        self.inner.tasks.read().expect("task table lock").get(&task).cloned()
    }

    /// The service clock's time.
    pub(crate) fn now(&self) -> UnixMillis {
        self.inner.config.clock.now()
    }
}
