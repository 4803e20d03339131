//! The validator against a scripted coordinator over QUIC on 127.0.0.1:
//! it scores a trained update above a huge-norm one and a malformed one.

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
use starling_models::train::{Features, Quiet, TrainConfig, train_local};
use starling_models::zoo::{Model, ModelKind};
use starling_net::Identity;
use starling_protocol::{
    AssignmentInfo, ContentHash, DataSpec, ModelSpec, NamedTensor, PublicKey, RoundInfo, RoundNumber, RoundPhase,
    SubmissionId, TaskId, TaskInfo, TaskSpec, UpdatePayload,
};
use starling_validator::{REJECTED_LOSS, ValidatorClient, ValidatorOptions};

fn mnist() -> Mnist {
    let dir = std::env::var_os("STARLING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"));
    Mnist::load(&dir, Verify::ShapeOnly).expect("MNIST in ../shared/datasets/mnist")
}

fn spec() -> TaskSpec {
    let kind = ModelKind::LogReg;
    let model = ModelSpec { name: kind.name().into(), tensors: kind.tensor_specs() };
    let data = DataSpec { dataset: "mnist".into(), input_shape: vec![1, 28, 28], num_classes: 10 };
    TaskSpec::builder(model, data).deadlines(600, 600).build().unwrap()
}

fn assignment(n: u8, update: &[u8], base_model: ContentHash) -> AssignmentInfo {
    AssignmentInfo {
        submission: SubmissionId::from_bytes([n; 32]),
        trainer: PublicKey::from_bytes([n; 32]),
        update: ContentHash::of(update),
        update_len: update.len() as u64,
        base_model,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_scores_a_good_update_above_a_huge_norm_one() -> Result<()> {
    let mnist = mnist();
    let train = Features::new(&mnist.train.subset(&(0..300).collect::<Vec<_>>()));
    let held_out = Features::new(&mnist.test.subset(&(0..500).collect::<Vec<_>>()));
    let kind = ModelKind::LogReg;
    let global = Model::init(kind, 5, &Device::flex());
    let global_bytes = global.to_payload()?.into_bytes();
    let global_tensors = global.to_tensors()?;

    let good = train_local(kind, &global_tensors, &train, &TrainConfig::default(), &Device::flex(), &mut Quiet)?;
    let good = UpdatePayload::encode_owned(&good.delta)?.into_bytes();
    // Large enough to wreck the model, small enough that w + Δ stays finite.
    let huge: Vec<NamedTensor> = global_tensors
        .iter()
        .map(|t| {
            let values = (0..t.values.len()).map(|i| if i % 3 == 0 { 1e4 } else { -1e4 }).collect();
            NamedTensor::new(t.name.clone(), t.shape.clone(), values)
        })
        .collect();
    let huge = UpdatePayload::encode_owned(&huge)?.into_bytes();
    let malformed = b"not safetensors at all".to_vec();

    let me = Identity::generate(&mut ChaCha8Rng::seed_from_u64(3));
    let key = me.public_key();
    let task = TaskId::new(4);
    let info = TaskInfo { task, creator: PublicKey::from_bytes([9; 32]), spec: spec(), round: None };
    let mut state = State::new(info, None);
    let base = state.add_blob(global_bytes.clone());
    let assignments = [assignment(1, &good, base), assignment(2, &huge, base), assignment(3, &malformed, base)];
    for bytes in [good, huge, malformed] {
        state.add_blob(bytes);
    }
    state.assignments = assignments.iter().map(|a| (key, *a)).collect();
    // Someone else's assignment, which this validator must not see.
    state.assignments.push((PublicKey::from_bytes([8; 32]), assignment(4, b"x", base)));
    state.round = Some(RoundInfo {
        task,
        round: RoundNumber::new(2),
        phase: RoundPhase::Validating,
        global_model: base,
        global_model_len: global_bytes.len() as u64,
        training_deadline_ms: now_ms(),
        validation_deadline_ms: Some(now_ms() + 600_000),
        sampled_trainers: Vec::new(),
        task_finished: false,
    });
    state.finish_after_scores = Some(3);
    state.drop_fetches = 1;
    let server = FakeCoordinator::start(state);

    let fast = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        multiplier: 2.0,
        jitter: 0.5,
        max_attempts: Some(8),
    };
    let options =
        ValidatorOptions { retry: fast, poll: Backoff { max_attempts: None, ..fast }, seed: 5, eval_batch: 250 };
    let cache = tempfile::tempdir()?;
    let client = ValidatorClient::new(me, server.transport(), cache.path(), Device::flex(), options)?;
    let mut quiet = Quiet;
    let run = client.run_task(task, &held_out, &mut quiet, Shutdown::never());
    let report = tokio::time::timeout(Duration::from_secs(120), run).await.context("the validator finishes")??;
    assert_eq!(report.ended, Ended::TaskFinished);
    assert_eq!(report.scored.len(), 3);
    assert!(report.skipped.is_empty());

    let state = server.state();
    assert!(state.refusals.is_empty(), "{:?}", state.refusals);
    assert_eq!(state.joins.len(), 1);
    let score = |n: u8| {
        let id = SubmissionId::from_bytes([n; 32]);
        let (signer, score) = state.scores.iter().find(|(_, s)| s.submission == id).expect("scored");
        assert_eq!(*signer, key, "signed by the validator");
        assert_eq!((score.task, score.round), (task, RoundNumber::new(2)));
        *score
    };
    let (good, huge, malformed) = (score(1), score(2), score(3));
    assert!(good.accuracy > 0.6, "one epoch of logreg learns MNIST: {good:?}");
    assert!(good.improvement > 0.3, "{good:?}");
    assert!(good.accuracy > huge.accuracy + 0.3, "good {good:?} against huge {huge:?}");
    assert!(good.loss < huge.loss);
    assert!(huge.improvement < good.improvement);
    assert_eq!((malformed.accuracy, malformed.loss), (0.0, REJECTED_LOSS));
    // Every score is against the same global model, so the improvements differ
    // exactly as the accuracies do.
    let base_accuracy = good.accuracy - good.improvement;
    assert!((base_accuracy - (malformed.accuracy - malformed.improvement)).abs() < 1e-9);
    let rejected = report.scored.iter().find(|s| s.submission == SubmissionId::from_bytes([3; 32])).unwrap();
    assert!(rejected.rejected.is_some());
    // The base model was fetched once (plus the dropped attempt) and cached.
    assert!(cache.path().join(format!("models/{base}.blob")).exists());
    let count = |kind: &str| state.log.iter().filter(|name| *name == kind).count();
    assert_eq!(count("fetch-blob"), 2, "base (dropped, then again): {:?}", state.log);
    // Updates are private: each is read with a signed request, page and all.
    assert_eq!(count("starling/round.fetch-update"), 3, "three updates: {:?}", state.log);
    assert!(count("starling/round.assignments") >= 2, "pages of two: {:?}", state.log);
    Ok(())
}
