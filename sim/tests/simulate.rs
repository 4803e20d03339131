//! Simulations on real MNIST: learning happens, runs repeat exactly, the
//! target stops a run, attackers hurt FedAvg and robust rules resist them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::prelude::Device;
use starling_models::data::{Dataset, Mnist, Verify};
use starling_models::train::{Quiet, TrainConfig};
use starling_models::zoo::ModelKind;
use starling_protocol::AggregationRule;
use starling_sim::{Attack, PartitionKind, RoundResult, SimConfig, SimError, SimResult, simulate};

/// 6,000 training and 2,000 test images.
fn mnist() -> &'static (Dataset, Dataset) {
    static DATA: OnceLock<(Dataset, Dataset)> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = std::env::var_os("STARLING_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"));
        let mnist = Mnist::load(&dir, Verify::ShapeOnly).expect("MNIST in ../shared/datasets/mnist");
        let train = mnist.train.subset(&(0..6000).collect::<Vec<_>>());
        let test = mnist.test.subset(&(0..2000).collect::<Vec<_>>());
        (train, test)
    })
}

fn config() -> SimConfig {
    SimConfig {
        model: ModelKind::LogReg,
        partition: PartitionKind::Iid,
        clients: 20,
        fraction: 0.5,
        train: TrainConfig { epochs: 1, batch_size: 10, learning_rate: 0.05, ..TrainConfig::default() },
        rounds: 3,
        target_accuracy: None,
        rule: AggregationRule::FedAvg,
        clip: None,
        malicious: 0,
        attack: Attack::SignFlip,
        seed: 1,
        eval_batch: 500,
    }
}

fn run(config: &SimConfig) -> Result<SimResult, SimError> {
    let (train, test) = mnist();
    simulate(config, train, test, &Device::flex(), &mut Quiet, &mut |_| {})
}

fn without_times(rounds: &[RoundResult]) -> Vec<RoundResult> {
    rounds.iter().map(|r| RoundResult { seconds: 0.0, ..r.clone() }).collect()
}

#[test]
fn fedavg_learns_and_a_run_repeats_exactly() {
    let mut seen = Vec::new();
    let (train, test) = mnist();
    let result = simulate(&config(), train, test, &Device::flex(), &mut Quiet, &mut |r| seen.push(r.round)).unwrap();
    assert_eq!(seen, vec![1, 2, 3]);
    assert!(result.initial_accuracy < 0.25, "{}", result.initial_accuracy);
    let accuracies: Vec<f32> = result.rounds.iter().map(|r| r.accuracy).collect();
    assert!(accuracies[0] > 0.6 && accuracies[2] > accuracies[0], "{accuracies:?}");
    for r in &result.rounds {
        assert_eq!(r.sampled.len(), 10, "C·K = 0.5·20");
        assert!(r.sampled.windows(2).all(|w| w[0] < w[1]) && r.sampled.iter().all(|&c| c < 20));
        assert_eq!(r.malicious, 0);
        assert!(r.loss.is_finite() && r.train_loss.is_finite());
    }
    assert_ne!(result.rounds[0].sampled, result.rounds[1].sampled, "each round draws its own clients");
    assert_eq!(result.rounds_to_target, None);

    let again = run(&config()).unwrap();
    assert_eq!(without_times(&again.rounds), without_times(&result.rounds));
    let other = run(&SimConfig { seed: 2, ..config() }).unwrap();
    assert_ne!(other.rounds[0].accuracy, result.rounds[0].accuracy);
}

#[test]
fn the_target_stops_the_run_at_the_first_round_that_reaches_it() {
    let full = run(&SimConfig { rounds: 4, ..config() }).unwrap();
    let target = full.rounds[1].accuracy;
    let expected = full.rounds.iter().position(|r| r.accuracy >= target).unwrap() as u32 + 1;
    let stopped = run(&SimConfig { rounds: 4, target_accuracy: Some(target), ..config() }).unwrap();
    assert_eq!(stopped.rounds_to_target, Some(expected));
    assert_eq!(stopped.rounds.len(), expected as usize);
}

#[test]
fn sign_flippers_hurt_fedavg_and_the_median_resists_them() {
    // 40% of clients flip their updates, boosted ×4 — FedAvg's mean is
    // dragged backwards, the coordinate median follows the honest majority.
    let attacked = SimConfig {
        malicious: 8,
        attack: Attack::Scale { factor: -4.0 },
        rounds: 3,
        partition: PartitionKind::Iid,
        ..config()
    };
    let fedavg = run(&attacked).unwrap();
    let median = run(&SimConfig { rule: AggregationRule::Median, ..attacked.clone() }).unwrap();
    let krum = run(&SimConfig { rule: AggregationRule::Krum { byzantine: 3 }, ..attacked.clone() }).unwrap();
    assert_eq!(fedavg.malicious.len(), 8);
    assert!(fedavg.rounds.iter().any(|r| r.malicious > 0));
    let last = |r: &SimResult| r.rounds.last().unwrap().accuracy;
    // Without attackers this setting reaches ~79% in 3 rounds (see above).
    assert!(last(&fedavg) < 0.3, "FedAvg under attack: {}", last(&fedavg));
    assert!(last(&median) > 0.65, "median under attack: {}", last(&median));
    assert!(last(&krum) > 0.65, "Krum under attack: {}", last(&krum));
    for round in &krum.rounds {
        let chosen = round.selected.as_ref().expect("Krum reports its choice");
        assert_eq!(chosen.len(), 1);
        assert!(krum.malicious.binary_search(&chosen[0]).is_err(), "Krum picked attacker {}", chosen[0]);
    }
}

#[test]
fn a_global_model_blown_up_by_attackers_ends_the_run_as_a_result() {
    // Attackers boosting −Δ by 1e20 make the 2NN's weights so large that
    // the next round's activations overflow f32: the loss is not finite.
    let attacked = SimConfig {
        model: ModelKind::TwoNn,
        malicious: 8,
        attack: Attack::Scale { factor: -1e20 },
        rounds: 5,
        ..config()
    };
    let result = run(&attacked).unwrap();
    let diverged = result.diverged_at.expect("the run records where training diverged");
    assert!(diverged > 1 && diverged <= 5, "{diverged}");
    assert_eq!(result.rounds.len() as u32, diverged - 1, "rounds before the divergence are kept");
    assert!(result.rounds.last().unwrap().accuracy < 0.5);
    assert_eq!(run(&config()).unwrap().diverged_at, None);
}

#[test]
fn dirichlet_and_shards_splits_run_even_when_clients_hold_nothing() {
    for partition in [PartitionKind::Dirichlet { alpha: 0.05 }, PartitionKind::Shards { per_client: 2 }] {
        let result = run(&SimConfig { partition, clients: 30, fraction: 1.0, rounds: 1, ..config() }).unwrap();
        let round = &result.rounds[0];
        // One round on skewed data: well above chance, far from converged.
        assert!(round.accuracy > 0.25, "{partition:?}: {}", round.accuracy);
        if matches!(partition, PartitionKind::Shards { .. }) {
            assert_eq!(round.sampled.len(), 30);
        }
    }
}

#[test]
fn bad_configs_are_refused_by_name_before_any_training() {
    let refused = |config: SimConfig, field: &str| {
        let err = run(&config).unwrap_err();
        assert!(matches!(&err, SimError::Config { field: f, .. } if *f == field), "{field}: {err}");
    };
    refused(SimConfig { clients: 0, ..config() }, "clients");
    refused(SimConfig { fraction: 0.0, ..config() }, "fraction");
    refused(SimConfig { fraction: 1.5, ..config() }, "fraction");
    refused(SimConfig { rounds: 0, ..config() }, "rounds");
    refused(SimConfig { target_accuracy: Some(1.5), ..config() }, "target_accuracy");
    refused(SimConfig { malicious: 21, ..config() }, "malicious");
    refused(SimConfig { clip: Some(-1.0), ..config() }, "clip");
    refused(SimConfig { rule: AggregationRule::Krum { byzantine: 4 }, ..config() }, "rule");
    // 10 sampled clients pass Krum's 2f + 3 = 5, but cannot supply 11 to average.
    refused(SimConfig { rule: AggregationRule::MultiKrum { byzantine: 1, select: 11 }, ..config() }, "rule");
    refused(SimConfig { rule: AggregationRule::Best, ..config() }, "rule");
    refused(SimConfig { train: TrainConfig { learning_rate: -1.0, ..TrainConfig::default() }, ..config() }, "train");
    let err = run(&SimConfig { clients: 7000, fraction: 0.001, ..config() }).unwrap_err();
    assert!(matches!(err, SimError::Partition(_)), "{err}");
}

#[test]
fn partitions_parse_and_print_back() {
    assert_eq!(PartitionKind::parse("iid"), Ok(PartitionKind::Iid));
    assert_eq!(PartitionKind::parse("shards"), Ok(PartitionKind::Shards { per_client: 2 }));
    assert_eq!(PartitionKind::parse("shards:3"), Ok(PartitionKind::Shards { per_client: 3 }));
    assert_eq!(PartitionKind::parse("dirichlet:0.5"), Ok(PartitionKind::Dirichlet { alpha: 0.5 }));
    for bad in ["", "IID", "shards:0", "shards:x", "dirichlet", "dirichlet:0", "dirichlet:-1", "dirichlet:nan"] {
        assert!(PartitionKind::parse(bad).is_err(), "{bad:?}");
    }
    for p in [PartitionKind::Iid, PartitionKind::Shards { per_client: 4 }, PartitionKind::Dirichlet { alpha: 0.25 }] {
        assert_eq!(PartitionKind::parse(&p.name()), Ok(p));
    }
}
