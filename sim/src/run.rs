//! The simulation loop.

use std::time::Instant;

use burn::prelude::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use starling_aggregation::{Inputs, Layout, Rule, TensorInfo, aggregate_into};
use starling_models::data::{Dataset, partition};
use starling_models::train::{Features, Progress, Quiet, TrainConfig, TrainError, evaluate, train_local};
use starling_models::zoo::Model;
use starling_protocol::NamedTensor;

use super::{PartitionKind, SimConfig, SimError};

/// One round's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundResult {
    /// The round, from 1.
    pub round: u32,
    /// Test accuracy of the new global model, in `[0, 1]`.
    pub accuracy: f32,
    /// Mean test cross-entropy of the new global model.
    pub loss: f32,
    /// Wall time of the whole round (training, aggregation, evaluation), in seconds.
    pub seconds: f64,
    /// Mean last-epoch training loss of the honest sampled clients.
    pub train_loss: f32,
    /// The clients trained this round.
    pub sampled: Vec<usize>,
    /// How many of them were malicious.
    pub malicious: usize,
    /// For selection rules (Krum and kin): the clients whose updates were used.
    pub selected: Option<Vec<usize>>,
}

/// A whole simulation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimResult {
    /// Test accuracy and loss of the initial model.
    pub initial_accuracy: f32,
    /// See `initial_accuracy`.
    pub initial_loss: f32,
    /// Every round run, in order.
    pub rounds: Vec<RoundResult>,
    /// The first round whose accuracy reached the target, if any.
    pub rounds_to_target: Option<u32>,
    /// The malicious clients' indices.
    pub malicious: Vec<usize>,
    /// The round in which local training diverged (its loss stopped being
    /// finite), which ends the run: an attack can blow the global model up,
    /// and that is a result, not a failure of the simulation.
    pub diverged_at: Option<u32>,
}

/// Runs `config` with clients drawn from `train`, scoring each round's
/// global model on `test`, training on `device`. `on_round` sees each round
/// as it finishes (for live output). Everything is seeded by
/// `config.seed`: the same config and data give the same rounds, whatever
/// the number of threads. `progress` follows each evaluation of the global
/// model (clients train in parallel, quietly).
pub fn simulate(
    config: &SimConfig,
    train: &Dataset,
    test: &Dataset,
    device: &Device,
    progress: &mut dyn Progress,
    on_round: &mut dyn FnMut(&RoundResult),
) -> Result<SimResult, SimError> {
    config.validate()?;
    let rule = Rule::try_from(config.rule).map_err(|e| SimError::Config { field: "rule", reason: e.to_string() })?;
    let seed = config.seed;
    let parts = match config.partition {
        PartitionKind::Iid => partition::iid(train.len(), config.clients, seed)?,
        PartitionKind::Shards { per_client } => partition::shards(train.labels(), config.clients, per_client, seed)?,
        PartitionKind::Dirichlet { alpha } => {
            partition::dirichlet(train.labels(), train.classes(), config.clients, alpha, seed)?
        }
    };
    let mut everyone: Vec<usize> = (0..config.clients).collect();
    everyone.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(seed, 1, 0)));
    let mut malicious = everyone[..config.malicious].to_vec();
    malicious.sort_unstable();

    let kind = config.model;
    let specs = kind.tensor_specs();
    let layout = Layout::new(specs.iter().map(|s| TensorInfo::new(s.name.clone(), s.shape.clone())).collect())
        .expect("zoo specs are a valid layout");
    let eval_device = device.clone().inner();
    let test = Features::new(test);
    let mut score = |round: u32, weights: &[NamedTensor]| {
        let model = Model::from_tensors(kind, weights, &eval_device)
            .map_err(|e| SimError::Evaluate { round, source: e.into() })?;
        evaluate(&model, &test, config.eval_batch, progress).map_err(|source| SimError::Evaluate { round, source })
    };

    let mut global = Model::init(kind, seed, &eval_device).to_tensors().expect("a fresh model reads back");
    let initial = score(0, &global)?;
    let mut flat: Vec<f32> = global.iter().flat_map(|t| t.values.iter().copied()).collect();
    let mut buffer = Vec::new();
    let mut result = SimResult {
        initial_accuracy: initial.accuracy,
        initial_loss: initial.loss,
        rounds: Vec::new(),
        rounds_to_target: None,
        malicious: malicious.clone(),
        diverged_at: None,
    };

    for round in 1..=config.rounds {
        let started = Instant::now();
        let mut order: Vec<usize> = (0..config.clients).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(seed, 2, u64::from(round))));
        let mut sampled = order[..config.per_round()].to_vec();
        sampled.sort_unstable();
        // A Dirichlet split can leave a client without data: it has nothing to send.
        sampled.retain(|&c| !parts[c].is_empty());

        let updates = sampled
            .par_iter()
            .map(|&client| {
                let data = Features::new(&train.subset(&parts[client]));
                let local =
                    TrainConfig { seed: mix(seed, 3, (u64::from(round) << 32) | client as u64), ..config.train };
                let update = train_local(kind, &global, &data, &local, device, &mut Quiet)
                    .map_err(|source| SimError::Train { round, client, source })?;
                let mut delta: Vec<f32> = update.delta.iter().flat_map(|t| t.values.iter().copied()).collect();
                let attacker = malicious.binary_search(&client).is_ok();
                if attacker {
                    config.attack.apply(&mut delta, mix(seed, 4, (u64::from(round) << 32) | client as u64));
                }
                Ok((delta, update.samples as f64, update.loss, attacker))
            })
            .collect::<Result<Vec<_>, SimError>>();
        let updates = match updates {
            Err(SimError::Train { source: TrainError::Diverged { .. }, .. }) => {
                result.diverged_at = Some(round);
                break;
            }
            other => other?,
        };

        let aggregate = if updates.is_empty() {
            None
        } else {
            let fail = |source| SimError::Aggregate { round, source };
            let views = updates
                .iter()
                .enumerate()
                .map(|(i, (delta, ..))| layout.view_flat(i, delta))
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            let weights = updates.iter().map(|u| u.1).collect();
            let mut inputs = Inputs::new(&layout, views, weights).map_err(fail)?;
            if let Some(clip) = config.clip {
                inputs = inputs.clip(clip).map_err(fail)?;
            }
            Some(aggregate_into(&rule, &inputs, std::mem::take(&mut buffer)).map_err(fail)?)
        };
        let mut selected = None;
        if let Some(aggregate) = aggregate {
            for (w, d) in flat.iter_mut().zip(&aggregate.model) {
                *w += d;
            }
            selected = aggregate.selected.map(|s| s.into_iter().map(|i| sampled[i]).collect());
            buffer = aggregate.model;
            let mut offset = 0;
            for tensor in &mut global {
                let n = tensor.values.len();
                tensor.values.copy_from_slice(&flat[offset..offset + n]);
                offset += n;
            }
        }

        let evaluation = score(round, &global)?;
        let honest: Vec<f32> = updates.iter().filter(|u| !u.3).map(|u| u.2).collect();
        let record = RoundResult {
            round,
            accuracy: evaluation.accuracy,
            loss: evaluation.loss,
            seconds: started.elapsed().as_secs_f64(),
            train_loss: if honest.is_empty() { f32::NAN } else { honest.iter().sum::<f32>() / honest.len() as f32 },
            malicious: updates.iter().filter(|u| u.3).count(),
            sampled,
            selected,
        };
        on_round(&record);
        let reached = config.target_accuracy.is_some_and(|t| record.accuracy >= t);
        result.rounds.push(record);
        if reached {
            result.rounds_to_target = Some(round);
            break;
        }
    }
    Ok(result)
}

/// A seed for stream `stream`, item `item`, derived from the run's `seed`
/// (SplitMix64 finaliser over the three), so streams never overlap.
fn mix(seed: u64, stream: u64, item: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ item.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
