//! Local training and evaluation on real MNIST samples.

use std::sync::OnceLock;

use burn::prelude::*;
use starling_protocol::NamedTensor;

use super::*;
use crate::data::test_data::shared;
use crate::data::{Dataset, Mnist, Verify};
use crate::zoo::{Model, ModelKind};

/// The first 600 training and 1,000 test images of MNIST, loaded once.
fn mnist() -> &'static (Features, Features, Dataset) {
    static DATA: OnceLock<(Features, Features, Dataset)> = OnceLock::new();
    DATA.get_or_init(|| {
        let mnist = Mnist::load(&shared(), Verify::ShapeOnly).expect("MNIST in ../shared/datasets/mnist");
        let train = mnist.train.subset(&(0..600).collect::<Vec<_>>());
        let test = mnist.test.subset(&(0..1000).collect::<Vec<_>>());
        (Features::new(&train), Features::new(&test), test)
    })
}

fn initial(kind: ModelKind) -> Vec<NamedTensor> {
    Model::init(kind, 7, &Device::flex()).to_tensors().unwrap()
}

fn apply(global: &[NamedTensor], delta: &[NamedTensor]) -> Vec<NamedTensor> {
    global
        .iter()
        .zip(delta)
        .map(|(g, d)| {
            assert_eq!(g.name, d.name);
            NamedTensor::new(
                g.name.clone(),
                g.shape.clone(),
                g.values.iter().zip(&d.values).map(|(a, b)| a + b).collect(),
            )
        })
        .collect()
}

fn norm(tensors: &[NamedTensor]) -> f64 {
    tensors.iter().flat_map(|t| &t.values).map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt()
}

fn eval(kind: ModelKind, weights: &[NamedTensor], data: &Features) -> Evaluation {
    let model = Model::from_tensors(kind, weights, &Device::flex()).unwrap();
    evaluate(&model, data, 250, &mut Quiet).unwrap()
}

#[test]
fn one_epoch_of_local_sgd_learns_mnist() {
    let (train, test, _) = mnist();
    // PyTorch, same data, batch, learning rate and init scheme, seeds 1-3:
    // logreg 72-75%, 2NN 44-62% (60 steps are few for 200k parameters).
    for (kind, floor) in [(ModelKind::LogReg, 0.65), (ModelKind::TwoNn, 0.4)] {
        let global = initial(kind);
        let before = eval(kind, &global, test);
        let config = TrainConfig { seed: 3, ..TrainConfig::default() };
        let update = train_local(kind, &global, train, &config, &Device::flex(), &mut Quiet).unwrap();
        assert_eq!(update.samples, 600);
        assert_eq!(update.steps, 60, "600 samples in batches of 10");
        let after = eval(kind, &apply(&global, &update.delta), test);
        // Untrained models sit near chance (10%); one epoch on 600 images
        // lifts both far above it on images they never saw.
        assert!(before.accuracy < 0.25, "{kind}: {before:?}");
        assert!(after.accuracy > floor, "{kind}: {after:?}");
        assert!(after.loss < 0.8 * before.loss, "{kind}: {before:?} → {after:?}");
        assert!(update.loss.is_finite() && update.loss < before.loss, "{kind}: {}", update.loss);
    }
}

#[test]
fn the_same_seed_gives_the_same_update_and_another_seed_does_not() {
    let (train, _, _) = mnist();
    let kind = ModelKind::LogReg;
    let global = initial(kind);
    let run = |seed| {
        let config = TrainConfig { seed, epochs: 2, batch_size: 32, ..TrainConfig::default() };
        train_local(kind, &global, train, &config, &Device::flex(), &mut Quiet).unwrap().delta
    };
    let (a, b, c) = (run(1), run(1), run(2));
    assert_eq!(a.iter().map(|t| &t.values).collect::<Vec<_>>(), b.iter().map(|t| &t.values).collect::<Vec<_>>());
    assert_ne!(a[0].values, c[0].values);
}

#[test]
fn momentum_weight_decay_and_prox_each_change_training_as_they_should() {
    let (train, _, _) = mnist();
    let kind = ModelKind::LogReg;
    let global = initial(kind);
    let run = |config: TrainConfig| {
        let update = train_local(kind, &global, train, &config, &Device::flex(), &mut Quiet).unwrap();
        (norm(&update.delta), norm(&apply(&global, &update.delta)), update.loss)
    };
    let base = TrainConfig { seed: 5, epochs: 2, learning_rate: 0.05, ..TrainConfig::default() };
    let (plain_step, plain_weights, plain_loss) = run(base);
    // Momentum 0.9 takes larger effective steps: the model moves further
    // and fits the training data better.
    let (momentum_step, _, momentum_loss) = run(TrainConfig { momentum: 0.9, ..base });
    assert!(momentum_step > 1.5 * plain_step, "{momentum_step} vs {plain_step}");
    assert!(momentum_loss < plain_loss, "{momentum_loss} vs {plain_loss}");
    // Weight decay pulls the weights towards zero.
    let (_, decayed_weights, _) = run(TrainConfig { weight_decay: 0.05, ..base });
    assert!(decayed_weights < plain_weights, "{decayed_weights} vs {plain_weights}");
    // A strong proximal term keeps the local model near the global one.
    let (prox_step, _, _) = run(TrainConfig { prox_mu: 1.0, ..base });
    assert!(prox_step < 0.9 * plain_step, "{prox_step} vs {plain_step}");
    // A vanishing one changes almost nothing.
    let (tiny_prox_step, _, _) = run(TrainConfig { prox_mu: 1e-9, ..base });
    assert!((tiny_prox_step - plain_step).abs() < 1e-3 * plain_step, "{tiny_prox_step} vs {plain_step}");
}

#[test]
fn progress_sees_every_sample_of_every_epoch_and_the_evaluation() {
    #[derive(Default)]
    struct Record {
        started: Vec<(Stage, u64)>,
        samples: u64,
        finished: Vec<(Stage, Option<f32>)>,
    }
    impl Progress for Record {
        fn start(&mut self, stage: Stage, samples: u64) {
            self.started.push((stage, samples));
        }
        fn advance(&mut self, samples: u64, loss: f32) {
            assert!(loss.is_finite());
            self.samples += samples;
        }
        fn finish(&mut self, stage: Stage, _loss: f32, accuracy: Option<f32>) {
            self.finished.push((stage, accuracy));
        }
    }
    let (train, test, _) = mnist();
    let kind = ModelKind::LogReg;
    let mut record = Record::default();
    let config = TrainConfig { epochs: 2, batch_size: 64, ..TrainConfig::default() };
    train_local(kind, &initial(kind), train, &config, &Device::flex(), &mut record).unwrap();
    let model = Model::init(kind, 1, &Device::flex());
    let evaluation = evaluate(&model, test, 300, &mut record).unwrap();
    let epoch = |epoch| Stage::Epoch { epoch, of: 2 };
    assert_eq!(record.started, vec![(epoch(1), 600), (epoch(2), 600), (Stage::Evaluate, 1000)]);
    assert_eq!(record.samples, 2 * 600 + 1000);
    assert_eq!(record.finished, vec![(epoch(1), None), (epoch(2), None), (Stage::Evaluate, Some(evaluation.accuracy))]);
}

#[test]
fn evaluation_matches_a_hand_computed_answer() {
    // A logreg model with zero weights and bias 1 for class 3 predicts 3
    // everywhere with softmax probability e/(e+9).
    let (_, test, raw) = mnist();
    let mut weights = initial(ModelKind::LogReg);
    for tensor in &mut weights {
        tensor.values.iter_mut().for_each(|v| *v = 0.0);
    }
    weights[1].values[3] = 1.0;
    let evaluation = eval(ModelKind::LogReg, &weights, test);
    let threes = raw.labels().iter().filter(|&&l| l == 3).count();
    let share = threes as f64 / 1000.0;
    let e = std::f64::consts::E;
    let expected_loss = (e + 9.0).ln() - share;
    assert_eq!(evaluation.samples, 1000);
    assert_eq!(evaluation.accuracy, threes as f32 / 1000.0);
    assert!((f64::from(evaluation.loss) - expected_loss).abs() < 1e-5, "{} vs {expected_loss}", evaluation.loss);
}

#[test]
fn bad_settings_and_bad_data_are_refused_by_name() {
    let (train, _, _) = mnist();
    let kind = ModelKind::LogReg;
    let global = initial(kind);
    let refuse = |config: TrainConfig, field: &str| {
        let err = train_local(kind, &global, train, &config, &Device::flex(), &mut Quiet).unwrap_err();
        assert!(matches!(&err, TrainError::Config { field: f, .. } if *f == field), "{field}: {err}");
    };
    let ok = TrainConfig::default();
    refuse(TrainConfig { epochs: 0, ..ok }, "epochs");
    refuse(TrainConfig { batch_size: 0, ..ok }, "batch_size");
    refuse(TrainConfig { learning_rate: 0.0, ..ok }, "learning_rate");
    refuse(TrainConfig { learning_rate: f64::NAN, ..ok }, "learning_rate");
    refuse(TrainConfig { momentum: 1.0, ..ok }, "momentum");
    refuse(TrainConfig { weight_decay: -1.0, ..ok }, "weight_decay");
    refuse(TrainConfig { prox_mu: f64::INFINITY, ..ok }, "prox_mu");

    let empty = Features::new(&Dataset::new(Vec::new(), Vec::new(), [28, 28], 10).unwrap());
    let err = train_local(kind, &global, &empty, &ok, &Device::flex(), &mut Quiet).unwrap_err();
    assert!(matches!(err, TrainError::EmptyData), "{err}");
    let small = Features::new(&Dataset::new(vec![0; 2 * 196], vec![1, 2], [14, 14], 10).unwrap());
    let err = train_local(kind, &global, &small, &ok, &Device::flex(), &mut Quiet).unwrap_err();
    assert!(matches!(err, TrainError::FeatureCount { expected: 784, found: 196 }), "{err}");
    let many = Features::new(&Dataset::new(vec![0; 784], vec![11], [28, 28], 12).unwrap());
    let err = evaluate(&Model::init(kind, 1, &Device::flex()), &many, 10, &mut Quiet).unwrap_err();
    assert!(matches!(err, TrainError::ClassCount { expected: 10, found: 12 }), "{err}");

    let mut missing = global.clone();
    missing.pop();
    let err = train_local(kind, &missing, train, &ok, &Device::flex(), &mut Quiet).unwrap_err();
    assert!(err.to_string().contains("fc.bias"), "{err}");
}

#[test]
fn a_diverging_run_is_an_error_not_a_nan_update() {
    let (train, _, _) = mnist();
    let kind = ModelKind::TwoNn;
    let config = TrainConfig { learning_rate: 1e12, ..TrainConfig::default() };
    let err = train_local(kind, &initial(kind), train, &config, &Device::flex(), &mut Quiet).unwrap_err();
    assert!(matches!(err, TrainError::Diverged { epoch: 1, .. }), "{err}");
}
