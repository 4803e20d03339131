//! `starling demo`: a whole competition on this machine, every participant a
//! real client over loopback QUIC.
//!
//! A coordinator starts with SQLite and its artifact store in a data
//! directory and serves the dashboard; the admin key funds everyone; a
//! creator posts an MNIST task (the FedAvg paper's 2NN, label skew by a
//! Dirichlet prior) with a reward pool; honest trainers, a poisoner (trains
//! on flipped labels and boosts its update) and a free-rider (all-zero
//! updates) train; two honest validators and one in league with the
//! poisoner validate; three delegators back a trainer, a validator and,
//! unknowingly, the poisoner, locked for 0, 90 and 365 days. Each client
//! runs on a thread and runtime of its own and dials the coordinator itself,
//! as a separate process would. The rounds run with one live status line;
//! then a summary says what happened and the dashboard stays up until Ctrl-C.

mod cast;
mod summary;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use burn::prelude::Device;
use starling_client::{Backoff, BlobCache, QuicTransport, Session, Shutdown, TrustSetting, dial};
use starling_coordinator::artifacts::{AnyArtifacts, LocalArtifacts};
use starling_coordinator::service::{Coordinator, Evaluator, ModelEvaluator, ServiceConfig};
use starling_models::data::{Dataset, Mnist, Verify, partition};
use starling_models::train::{Features, Quiet};
use starling_models::zoo::{Model, ModelKind};
use starling_net::{Limits, ServerIdentity, server_endpoint};
use starling_protocol::{CreateTask, Delegate, Issue, ResponseBody, Role, SetCommission, Stake, TaskId, TaskSpec};
use starling_sim::Attack;
use starling_staking::{MICRO_PER_STAR, Params};
use starling_trainer::{TrainerClient, TrainerOptions};
use starling_validator::{ValidatorClient, ValidatorOptions};
use tokio::task::JoinHandle;

use crate::client::Coordinator as Client;
use crate::coordinator::http;
use crate::runtime::{block_on, stop_requested};
use crate::units::star;
use cast::{Cast, Part};
use summary::Summary;

const STAR: u64 = MICRO_PER_STAR;

/// Consensus accuracy below which a submission counts as harmful: far below
/// what any honest update of this task reaches, far above a poisoned one.
pub(crate) const HARM_THRESHOLD: f64 = 0.13;
/// The poisoner trains on its images with every label flipped (digit `d`
/// taught as `9 − d`) and boosts the update it gets fivefold.
const POISON_BOOST: Attack = Attack::Scale { factor: 5.0 };
/// Training images per trainer, on average, and how skewed their digits are.
const IMAGES_PER_TRAINER: usize = 1_200;
const DIRICHLET_ALPHA: f64 = 1.0;
/// What each delegator stakes behind its node.
const DELEGATION: u64 = 150 * STAR;
/// Held-out test images per honest validator; the coordinator's own
/// measure uses the rest of the test set.
const IMAGES_PER_VALIDATOR: usize = 1_000;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rounds of the task.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Honest trainers (the poisoner and the free-rider come on top).
    #[arg(long, default_value_t = 5)]
    trainers: usize,
    /// MNIST: a directory with its four IDX files (raw or .gz). Default:
    /// $STARLING_DATA, else the download cache, else a download into it
    /// (verified by SHA-256).
    #[arg(long, env = "STARLING_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where the dashboard and JSON API listen.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    http_addr: SocketAddr,
    /// Stop when the task ends instead of serving the dashboard until Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// Keep the coordinator's database and artifacts in this directory.
    /// Default: a fresh temporary one, removed when the demo stops.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Seeds the identities, the data split and training.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub(crate) fn run(args: Args) -> Result<()> {
    ensure!((1..=100).contains(&args.rounds), "--rounds must be between 1 and 100");
    ensure!((1..=20).contains(&args.trainers), "--trainers must be between 1 and 20");
    let dir = crate::data::find_or_fetch_mnist(args.data.clone())?;
    let mnist =
        Mnist::load(&dir, Verify::ShapeOnly).with_context(|| format!("loading MNIST from {}", dir.display()))?;
    let trainers = args.trainers + 2;
    ensure!(
        mnist.train.len() >= trainers * IMAGES_PER_TRAINER && mnist.test.len() >= 3 * IMAGES_PER_VALIDATOR,
        "{} holds too few images for {trainers} trainers ({} each) and the validators",
        dir.display(),
        IMAGES_PER_TRAINER
    );
    let (place, temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp =
                tempfile::Builder::new().prefix("starling-demo-").tempdir().context("creating a data directory")?;
            (temp.path().to_owned(), Some(temp))
        }
    };
    std::fs::create_dir_all(&place).with_context(|| format!("creating {}", place.display()))?;
    let outcome = block_on(demo(&args, &mnist, &place));
    drop(temporary);
    outcome
}

/// The running coordinator and how to reach it.
struct Network {
    service: http::Service,
    dial: Dial,
    endpoint: starling_net::quinn::Endpoint,
    http: SocketAddr,
    stop_http: tokio::sync::watch::Sender<bool>,
    http_task: JoinHandle<std::io::Result<()>>,
}

impl Network {
    /// Opens the stores in `place` and starts the coordinator on loopback.
    async fn start(place: &Path, cast: &Cast, held_out: &Dataset, http_addr: SocketAddr) -> Result<Self> {
        let url = format!("sqlite://{}?mode=rwc", place.join("starling.db").display());
        let admin = cast.admin.public_key();
        let store = starling_coordinator::store::open_any(&url).await.context("opening the coordinator's database")?;
        let ledger = starling_staking::open_any(&url, admin, Params::default()).await.context("opening the ledger")?;
        let artifacts = AnyArtifacts::Local(
            LocalArtifacts::open(place.join("artifacts")).await.context("opening the artifact store")?,
        );
        let evaluator = Arc::new(ModelEvaluator::new("mnist", held_out)) as Arc<dyn Evaluator>;
        let config = ServiceConfig {
            join_window: Duration::from_secs(2),
            tick: Duration::from_millis(50),
            harm_threshold: Some(HARM_THRESHOLD),
            ..ServiceConfig::new(admin)
        };
        let service = Coordinator::start(store, ledger, artifacts, config, Some(evaluator))
            .await
            .context("starting the coordinator")?;
        let identity = ServerIdentity::ephemeral().context("making the coordinator's certificate")?;
        let endpoint = server_endpoint(SocketAddr::from(([127, 0, 0, 1], 0)), &identity, &Limits::coordinator())
            .context("listening for QUIC on loopback")?;
        let addr = endpoint.local_addr()?;
        let serving = service.clone();
        let accepting = endpoint.clone();
        tokio::spawn(async move { serving.serve_quic(accepting).await });
        let (stop_http, stopped) = tokio::sync::watch::channel(false);
        let (http, http_task) = http::start(&service, http_addr, stopped)
            .await
            .with_context(|| format!("serving the dashboard on {http_addr}; pick another with --http-addr"))?;
        let dial = Dial { addr, fingerprint: identity.fingerprint() };
        Ok(Self { service, dial, endpoint, http, stop_http, http_task })
    }

    /// A wallet-like client for the set-up requests (call inside the runtime).
    fn client(&self) -> Result<Client> {
        Ok(Client::over(self.dial.transport()?, self.dial.addr.to_string()))
    }

    async fn stop(self) -> Result<()> {
        self.service.shutdown();
        self.endpoint.close(0u32.into(), b"demo over");
        self.stop_http.send_replace(true);
        self.http_task.await.context("the dashboard failed")?.context("the dashboard failed")?;
        Ok(())
    }
}

/// The task: the FedAvg paper's 2NN on MNIST, every trainer in every round.
fn task_spec(rounds: u32) -> Result<TaskSpec> {
    let kind = ModelKind::TwoNn;
    TaskSpec::builder(kind.model_spec(), kind.data_spec())
        .rounds(rounds)
        .training(2, 10, 0.1)
        .reward_pool(1_000 * STAR)
        .min_stakes(50 * STAR, 50 * STAR)
        .deadlines(300, 300)
        .max_update_norm(Some(500.0))
        .build()
        .context("the demo's task spec")
}

/// Non-IID training data: label skew by a Dirichlet prior (α =
/// [`DIRICHLET_ALPHA`]) over the first images of the training set, so each
/// trainer holds every digit in its own, very uneven proportions and a share
/// of its own size.
fn split(train: &Dataset, trainers: usize, seed: u64) -> Result<Vec<Dataset>> {
    let head = train.subset(&(0..trainers * IMAGES_PER_TRAINER).collect::<Vec<_>>());
    let parts = partition::dirichlet(head.labels(), head.classes(), trainers, DIRICHLET_ALPHA, seed)?;
    ensure!(parts.iter().all(|p| !p.is_empty()), "the split left a trainer without data; try another --seed");
    Ok(parts.iter().map(|part| head.subset(part)).collect())
}

/// `data` with every label `d` replaced by `9 − d` (by `classes − 1 − d`).
fn flipped(data: &Dataset) -> Result<Dataset> {
    let [rows, cols] = data.shape();
    let images = (0..data.len()).flat_map(|i| data.image(i).iter().copied()).collect();
    let top = u8::try_from(data.classes() - 1)?;
    let labels = data.labels().iter().map(|&label| top - label).collect();
    Ok(Dataset::new(images, labels, [rows, cols], data.classes())?)
}

/// Quick polls and patient retries: rounds move at the speed of training.
fn options() -> (Backoff, Backoff) {
    let poll = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(250),
        multiplier: 2.0,
        jitter: 0.3,
        max_attempts: None,
    };
    (Backoff::RETRY, poll)
}

async fn demo(args: &Args, mnist: &Mnist, place: &Path) -> Result<()> {
    let started = Instant::now();
    let cast = Cast::new(args.seed, args.trainers);
    let test = &mnist.test;
    let coordinator_images = test.subset(&(2 * IMAGES_PER_VALIDATOR..test.len()).collect::<Vec<_>>());
    let net = Network::start(place, &cast, &coordinator_images, args.http_addr).await?;
    println!(
        "coordinator on quic://{} (certificate {}), dashboard on http://{}/, state in {}",
        net.dial.addr,
        net.dial.fingerprint,
        net.http,
        place.display()
    );

    let spec = task_spec(args.rounds)?;
    let (task, initial) = set_up(&net, &cast, &spec).await?;
    let (handle, shutdown) = Shutdown::new();
    let clients = start_clients(&net, &cast, task, mnist, args.seed, &shutdown)?;

    let finished = tokio::select! {
        finished = summary::watch(&net.service, task, args.rounds, &clients.live) => Some(finished),
        () = stop_requested() => None,
    };
    let Some(finished) = finished else {
        eprintln!("stopping: the clients leave, the coordinator stops; what was acknowledged is stored");
        handle.trigger();
        clients.finish().await;
        return net.stop().await;
    };
    let failures = clients.finish().await;
    if finished {
        summary::wait_for_promotion(&net.service, task).await;
    }
    let summary =
        Summary::collect(&net.service, &cast, task, &spec, &initial, &coordinator_images, failures, net.http).await?;
    print!("{}", summary.render(started.elapsed()));
    if let Some(path) = &args.summary {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, json).with_context(|| format!("writing the summary to {}", path.display()))?;
    }
    if !finished {
        net.stop().await?;
        bail!("every client stopped before the task finished (see above for why)");
    }
    drop(handle);
    if !args.exit {
        println!("\nthe dashboard stays up at http://{}/ until Ctrl-C", net.http);
        stop_requested().await;
    }
    net.stop().await
}

/// Funds everyone from the admin key, stakes, delegates, and creates the
/// task with a freshly initialised model. Returns the task and that model.
async fn set_up(net: &Network, cast: &Cast, spec: &TaskSpec) -> Result<(TaskId, Vec<u8>)> {
    let mut client = net.client()?;
    for member in &cast.members {
        let amount = if member.part == Part::Creator { 2 * spec.reward_pool } else { 500 * STAR };
        client.signed("issue", &cast.admin, &Issue { to: member.key(), amount }, None).await?;
        let stake = |role| Stake { role, amount: 100 * STAR, lock_days: 0 };
        if member.part.trains() {
            client.signed("stake", &member.identity, &stake(Role::Trainer), None).await?;
        } else if member.part.validates() {
            client
                .signed("stake", &member.identity, &Stake { amount: 200 * STAR, ..stake(Role::Validator) }, None)
                .await?;
        }
    }
    // The first trainer keeps a 10% commission before sharing with its delegators.
    let first = cast.playing(Part::Trainer).next().context("the demo has at least one trainer")?;
    client.signed("commission", &first.identity, &SetCommission { role: Role::Trainer, ppm: 100_000 }, None).await?;
    for backing in &cast.backings {
        let (delegator, node) = (&cast.members[backing.delegator], &cast.members[backing.node]);
        let role = if node.part.validates() { Role::Validator } else { Role::Trainer };
        let delegate = Delegate { node: node.key(), role, amount: DELEGATION, lock_days: backing.lock_days };
        client.signed("delegate", &delegator.identity, &delegate, None).await?;
    }
    let creator = cast.playing(Part::Creator).next().context("the demo has a creator")?;
    let model = Model::init(ModelKind::TwoNn, 7, &Device::flex()).to_payload()?;
    let create = CreateTask { spec: spec.clone(), initial_model: *model.hash(), initial_model_len: model.len() as u64 };
    let answer = client.signed("task create", &creator.identity, &create, Some(model.bytes())).await?;
    let ResponseBody::TaskCreated { task } = answer else {
        bail!("the coordinator did not create the task: {answer:?}")
    };
    println!(
        "task {task}: {} rounds of {} on non-IID MNIST (Dirichlet α = {DIRICHLET_ALPHA} label skew), reward pool {}",
        spec.rounds,
        spec.model.name,
        star(spec.reward_pool)
    );
    Ok((task, model.into_bytes()))
}

/// Clients that stopped with an error: each one's name and the error.
pub(crate) type Failures = Vec<(String, String)>;

/// A client's result, once its thread ends.
type Pending<T> = tokio::sync::oneshot::Receiver<Result<T>>;

/// Runs the client that `make` builds on a thread and runtime of its own,
/// as if it were its own process (it dials the coordinator itself); `live`
/// counts the clients still running.
fn on_own_thread<T, F, Fut>(name: &str, live: &Arc<AtomicUsize>, make: F) -> Result<Pending<T>>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>>,
{
    let (done, pending) = tokio::sync::oneshot::channel();
    let live = live.clone();
    live.fetch_add(1, Ordering::SeqCst);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a client's runtime")
                .and_then(|runtime| runtime.block_on(make()));
            live.fetch_sub(1, Ordering::SeqCst);
            let _ = done.send(result);
        })
        .with_context(|| format!("starting {name}"))?;
    Ok(pending)
}

/// The running clients.
struct Clients {
    /// How many are still running.
    live: Arc<AtomicUsize>,
    running: Vec<(String, Pending<()>)>,
    _caches: tempfile::TempDir,
}

impl Clients {
    /// Waits for every client to end; the ones that failed, and why.
    async fn finish(self) -> Failures {
        let mut failures = Failures::new();
        for (name, pending) in self.running {
            match pending.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => failures.push((name, format!("{error:#}"))),
                Err(_) => failures.push((name, "its thread panicked".to_owned())),
            }
        }
        failures
    }
}

/// How a client reaches the coordinator: dialled from its own runtime.
#[derive(Debug, Clone, Copy)]
struct Dial {
    addr: SocketAddr,
    fingerprint: starling_net::Fingerprint,
}

impl Dial {
    /// A new client connection, pinned to the coordinator's certificate
    /// (call inside the client's runtime).
    fn transport(self) -> Result<QuicTransport> {
        Ok(dial(&self.addr.to_string(), TrustSetting::Pinned(self.fingerprint))?.transport)
    }
}

/// Starts every trainer and validator as its own QUIC client, each on a
/// thread of its own.
fn start_clients(
    net: &Network,
    cast: &Cast,
    task: TaskId,
    mnist: &Mnist,
    seed: u64,
    shutdown: &Shutdown,
) -> Result<Clients> {
    let dial = net.dial;
    let live = Arc::new(AtomicUsize::new(0));
    let caches = tempfile::Builder::new().prefix("starling-demo-clients-").tempdir()?;
    let trainers: Vec<_> = cast.members.iter().filter(|m| m.part.trains()).collect();
    let mut data = split(&mnist.train, trainers.len(), seed)?.into_iter();
    let (retry, poll) = options();
    let mut running = Vec::new();
    for (i, member) in trainers.into_iter().enumerate() {
        let share = data.next().context("one share of the data per trainer")?;
        let features = Features::new(&share);
        let cache = caches.path().join(&member.name);
        let shutdown = shutdown.clone();
        let identity = member.identity.clone();
        let seed = seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9);
        if member.part == Part::Trainer {
            let pending = on_own_thread(&member.name, &live, move || async move {
                let options = TrainerOptions { retry, poll, seed };
                let client = TrainerClient::new(identity, dial.transport()?, &cache, Device::flex(), options)?;
                client.run_task(task, &features, &mut Quiet, shutdown).await?;
                Ok(())
            })?;
            running.push((member.name.clone(), pending));
        } else {
            let poisoner = member.part == Part::Poisoner;
            let features = if poisoner { Features::new(&flipped(&share)?) } else { features };
            let attack = poisoner.then_some(POISON_BOOST);
            let pending = on_own_thread(&member.name, &live, move || async move {
                let session = Session::new(dial.transport()?, identity, retry, seed);
                let blobs = BlobCache::open(cache.join("models"))?;
                cast::adversarial_trainer(session, task, features, attack, blobs, shutdown).await
            })?;
            running.push((member.name.clone(), pending));
        }
    }
    let mut slices = (0..2).map(|k| {
        let range = k * IMAGES_PER_VALIDATOR..(k + 1) * IMAGES_PER_VALIDATOR;
        Features::new(&mnist.test.subset(&range.collect::<Vec<_>>()))
    });
    for (i, member) in cast.members.iter().filter(|m| m.part.validates()).enumerate() {
        let shutdown = shutdown.clone();
        let identity = member.identity.clone();
        let seed = seed ^ (100 + i as u64).wrapping_mul(0x9E37_79B9);
        if member.part == Part::Validator {
            let held_out = slices.next().context("two honest validators")?;
            let cache = caches.path().join(&member.name);
            let pending = on_own_thread(&member.name, &live, move || async move {
                let options = ValidatorOptions { retry, poll, seed, eval_batch: 500 };
                let client = ValidatorClient::new(identity, dial.transport()?, &cache, Device::flex(), options)?;
                client.run_task(task, &held_out, &mut Quiet, shutdown).await?;
                Ok(())
            })?;
            running.push((member.name.clone(), pending));
        } else {
            let accomplice = cast.playing(Part::Poisoner).next().context("the demo has a poisoner")?.key();
            let pending = on_own_thread(&member.name, &live, move || async move {
                let session = Session::new(dial.transport()?, identity, retry, seed);
                cast::colluding_validator(session, task, accomplice, shutdown).await
            })?;
            running.push((member.name.clone(), pending));
        }
    }
    Ok(Clients { live, running, _caches: caches })
}
