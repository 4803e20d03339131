//! The trainer against a scripted coordinator over QUIC on 127.0.0.1: one
//! round on real MNIST images, with and without dropped connections.

#[path = "../../client/tests/support/fake_coordinator.rs"]
mod fake_coordinator;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use burn::prelude::Device;
use fake_coordinator::{FakeCoordinator, State};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use starling_client::{Backoff, Ended, Shutdown, now_ms};
use starling_models::data::{Mnist, Verify};
use starling_models::train::{Features, Quiet};
use starling_models::zoo::{Model, ModelKind};
use starling_net::Identity;
use starling_protocol::{
    DataSpec, ModelSpec, PublicKey, RoundInfo, RoundNumber, RoundPhase, TaskId, TaskInfo, TaskSpec,
};
use starling_trainer::{TrainerClient, TrainerOptions};

/// MNIST: `STARLING_DATA`, else `../shared/datasets/mnist` beside the repository.
fn mnist_dir() -> PathBuf {
    std::env::var_os("STARLING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"))
}

/// The first 300 training images.
fn train_data() -> Features {
    let mnist = Mnist::load(&mnist_dir(), Verify::ShapeOnly).expect("MNIST in ../shared/datasets/mnist");
    Features::new(&mnist.train.subset(&(0..300).collect::<Vec<_>>()))
}

fn spec() -> TaskSpec {
    let kind = ModelKind::LogReg;
    let model = ModelSpec { name: kind.name().into(), tensors: kind.tensor_specs() };
    let data = DataSpec { dataset: "mnist".into(), input_shape: vec![1, 28, 28], num_classes: 10 };
    TaskSpec::builder(model, data).deadlines(600, 600).build().unwrap()
}

fn identity(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed))
}

/// Quick retries, so the dropped-connection test does not wait seconds.
fn options() -> TrainerOptions {
    let fast = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        multiplier: 2.0,
        jitter: 0.5,
        max_attempts: Some(8),
    };
    TrainerOptions { retry: fast, poll: Backoff { max_attempts: None, ..fast }, seed: 11 }
}

/// A coordinator whose round 0 is training from a seeded logreg and samples `trainer`.
fn coordinator(trainer: PublicKey) -> (FakeCoordinator, starling_protocol::ContentHash) {
    let task = TaskId::new(1);
    let spec = spec();
    let global = Model::init(ModelKind::LogReg, 5, &Device::flex()).to_payload().unwrap().into_bytes();
    let info = TaskInfo { task, creator: PublicKey::from_bytes([9; 32]), spec, round: None };
    let mut state = State::new(info, None);
    let global_hash = state.add_blob(global.clone());
    state.round = Some(RoundInfo {
        task,
        round: RoundNumber::FIRST,
        phase: RoundPhase::Training,
        global_model: global_hash,
        global_model_len: global.len() as u64,
        training_deadline_ms: now_ms() + 600_000,
        validation_deadline_ms: None,
        sampled_trainers: vec![trainer],
        task_finished: false,
    });
    state.finish_after_updates = Some(1);
    (FakeCoordinator::start(state), global_hash)
}

async fn run(server: &FakeCoordinator, me: Identity, cache: &Path) -> Result<starling_trainer::TrainerReport> {
    let client = TrainerClient::new(me, server.transport(), cache, Device::flex(), options())?;
    let data = train_data();
    let mut quiet = Quiet;
    let run = client.run_task(TaskId::new(1), &data, &mut quiet, Shutdown::never());
    Ok(tokio::time::timeout(Duration::from_secs(120), run).await.context("the trainer finishes")??)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trainer_trains_one_round_and_uploads_a_signed_update() -> Result<()> {
    let me = identity(1);
    let key = me.public_key();
    let (server, global_hash) = coordinator(key);
    let cache = tempfile::tempdir()?;

    let report = run(&server, me, cache.path()).await?;
    assert_eq!(report.ended, Ended::TaskFinished);
    assert_eq!(report.submitted.len(), 1);
    assert_eq!(report.submitted[0].0, RoundNumber::FIRST);
    assert!(report.skipped.is_empty());

    let state = server.state();
    assert_eq!(state.joins.len(), 1, "joined once");
    assert_eq!(state.joins[0].0, key);
    assert_eq!(state.updates.len(), 1);
    let update = &state.updates[0];
    // The signature was checked by the server's Verifier; the signer is us.
    assert_eq!(update.signer, key);
    assert_eq!(update.message.base_model, global_hash);
    assert_eq!(update.message.samples, 300);
    assert!(update.message.train_loss.is_finite() && update.message.train_loss > 0.0);
    assert_eq!(report.submitted[0].1, Some(update.message.submission_id(&key)));
    let specs = ModelKind::LogReg.tensor_specs();
    assert_eq!(update.tensors.iter().map(|t| t.spec()).collect::<Vec<_>>(), specs);
    assert!(update.tensors.iter().flat_map(|t| &t.values).all(|v| v.is_finite()));
    let norm: f64 = update.tensors.iter().flat_map(|t| &t.values).map(|&v| f64::from(v).powi(2)).sum();
    assert!(norm > 0.0, "training moved the weights");
    assert!(state.refusals.is_empty(), "{:?}", state.refusals);
    // The global model is cached by hash.
    assert!(cache.path().join(format!("models/{global_hash}.blob")).exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried_and_the_round_resumes_without_a_second_update() -> Result<()> {
    let me = identity(2);
    let key = me.public_key();
    let (server, _) = coordinator(key);
    {
        let mut state = server.state();
        state.drop_fetches = 1;
        state.drop_after_update = 1;
    }
    let cache = tempfile::tempdir()?;
    let report = run(&server, me, cache.path()).await?;
    assert_eq!(report.ended, Ended::TaskFinished);
    // The first upload was recorded but its answer lost; the retry was told
    // `Duplicate`, which counts as submitted.
    assert_eq!(report.submitted, vec![(RoundNumber::FIRST, None)]);

    {
        let state = server.state();
        assert_eq!(state.updates.len(), 1, "exactly one update despite the retry");
        let fetches = state.log.iter().filter(|name| *name == "fetch-blob").count();
        assert_eq!(fetches, 2, "the dropped fetch was retried: {:?}", state.log);
        let uploads = state.log.iter().filter(|name| name.contains("submit-update")).count();
        assert_eq!(uploads, 2, "{:?}", state.log);
        assert_eq!(state.refusals.len(), 1);
        assert_eq!(state.refusals[0].code, starling_protocol::ErrorCode::Duplicate);
    }

    // A restart with the same state directory does not train that round again.
    let (again, _) = coordinator(key);
    again.state().finish_after_updates = None;
    let client = TrainerClient::new(identity(2), again.transport(), cache.path(), Device::flex(), options())?;
    let (stop, shutdown) = Shutdown::new();
    let data = train_data();
    let mut quiet = Quiet;
    let running = client.run_task(TaskId::new(1), &data, &mut quiet, shutdown);
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.trigger();
    };
    let (report, ()) = tokio::join!(running, stopper);
    let report = report?;
    assert_eq!(report.ended, Ended::Shutdown);
    assert!(report.submitted.is_empty());
    assert!(again.state().updates.is_empty(), "the journal remembered round 0");
    Ok(())
}
