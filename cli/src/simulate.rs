//! `starling simulate`: federated learning in one process, for research and
//! for checking Starling's numbers against published ones.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use starling_models::data::{Mnist, Verify};
use starling_models::train::{Progress, Quiet, TrainConfig};
use starling_models::zoo::ModelKind;
use starling_sim::{Attack, PartitionKind, RoundResult, SimConfig, SimResult, simulate};

use crate::device::DeviceArg;
use crate::progress::{Bars, steps_bar};
use crate::rule_flags::RuleArgs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The model: logreg, 2nn or cnn.
    #[arg(long, default_value = "2nn")]
    model: ModelKind,
    /// How the training set is split: iid, shards[:N] (the paper's non-IID, 2 shards each) or dirichlet:ALPHA.
    #[arg(long, default_value = "iid", value_parser = PartitionKind::parse)]
    partition: PartitionKind,
    /// Number of clients K.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Fraction C of clients trained per round.
    #[arg(long, default_value_t = 0.1)]
    fraction: f64,
    /// Local epochs E.
    #[arg(long, default_value_t = 1)]
    epochs: u32,
    /// Local batch size B.
    #[arg(long, default_value_t = 10)]
    batch_size: usize,
    /// Local learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Local SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    momentum: f64,
    /// Local L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// FedProx proximal weight μ (0: plain FedAvg).
    #[arg(long, default_value_t = 0.0)]
    prox_mu: f64,
    /// Most rounds to run.
    #[arg(long, default_value_t = 100)]
    rounds: u32,
    /// Stop at the first round whose test accuracy reaches this (e.g. 0.97).
    #[arg(long)]
    target_accuracy: Option<f32>,
    #[command(flatten)]
    rules: RuleArgs,
    /// How many clients are malicious.
    #[arg(long, default_value_t = 0)]
    malicious: usize,
    /// What malicious clients send: noise[:SIGMA], sign-flip or scale:FACTOR.
    #[arg(long, default_value = "sign-flip", value_parser = Attack::parse)]
    attack: Attack,
    /// The MNIST directory. Default: $STARLING_DATA, else the `starling data download` cache.
    #[arg(long, env = "STARLING_DATA")]
    data: Option<PathBuf>,
    /// Seeds the initial model, the split, sampling, batches and attackers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Batch size when evaluating the global model.
    #[arg(long, default_value_t = 1000)]
    eval_batch: usize,
    #[command(flatten)]
    device: DeviceArg,
    /// Write the results as JSON here.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// The configuration as written into the results.
#[derive(Debug, Serialize)]
struct ConfigJson {
    model: &'static str,
    parameters: usize,
    partition: String,
    clients: usize,
    fraction: f64,
    clients_per_round: usize,
    epochs: u32,
    batch_size: usize,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    prox_mu: f64,
    rounds: u32,
    target_accuracy: Option<f32>,
    rule: &'static str,
    beta: f64,
    byzantine: u32,
    clip: Option<f64>,
    malicious: usize,
    attack: String,
    seed: u64,
    device: String,
    threads: usize,
}

#[derive(Debug, Serialize)]
struct Output<'a> {
    config: ConfigJson,
    #[serde(flatten)]
    result: &'a SimResult,
    seconds: f64,
}

pub(crate) fn run(args: Args) -> Result<()> {
    let dir = crate::data::locate_mnist(args.data.clone())?;
    let mnist =
        Mnist::load(&dir, Verify::Canonical).with_context(|| format!("loading MNIST from {}", dir.display()))?;
    let device = args.device.device()?;
    let train = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        momentum: args.momentum,
        weight_decay: args.weight_decay,
        prox_mu: args.prox_mu,
        seed: args.seed,
    };
    let mut config = SimConfig {
        model: args.model,
        partition: args.partition,
        clients: args.clients,
        fraction: args.fraction,
        train,
        rounds: args.rounds,
        target_accuracy: args.target_accuracy,
        rule: starling_protocol::AggregationRule::FedAvg,
        clip: args.rules.clip,
        malicious: args.malicious,
        attack: args.attack,
        seed: args.seed,
        eval_batch: args.eval_batch,
    };
    config.rule = args.rules.to_rule(config.per_round())?;
    config.validate()?;
    let config_json = ConfigJson {
        model: args.model.name(),
        parameters: args.model.parameter_count(),
        partition: args.partition.name(),
        clients: args.clients,
        fraction: args.fraction,
        clients_per_round: config.per_round(),
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        momentum: args.momentum,
        weight_decay: args.weight_decay,
        prox_mu: args.prox_mu,
        rounds: args.rounds,
        target_accuracy: args.target_accuracy,
        rule: config.rule.name(),
        beta: args.rules.beta,
        byzantine: args.rules.byzantine,
        clip: args.rules.clip,
        malicious: args.malicious,
        attack: args.attack.name(),
        seed: args.seed,
        device: args.device.name(),
        threads: rayon_threads(),
    };

    let (multi, bar) = steps_bar(u64::from(args.rounds), "round");
    let interactive = multi.is_some();
    // Off a terminal, one line per round says it all; evaluation bars only on one.
    let mut bars = Bars::new(multi);
    let mut quiet = Quiet;
    let progress: &mut dyn Progress = if interactive { &mut bars } else { &mut quiet };
    let started = Instant::now();
    let result = simulate(&config, &mnist.train, &mnist.test, &device, progress, &mut |r: &RoundResult| {
        let line = format!(
            "round {}: accuracy {:.2}%, loss {:.4}, {:.2} s{}",
            r.round,
            100.0 * r.accuracy,
            r.loss,
            r.seconds,
            if r.malicious > 0 { format!(", {} attackers", r.malicious) } else { String::new() }
        );
        bar.inc(1);
        if interactive {
            bar.set_message(line);
        } else {
            eprintln!("{line}");
        }
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    if let Some(round) = result.diverged_at {
        println!("local training diverged in round {round} (the global model blew up); the run ends there");
    }
    let Some(last) = result.rounds.last() else {
        anyhow::bail!("training diverged in the first round: lower the learning rate");
    };
    match (args.target_accuracy, result.rounds_to_target) {
        (Some(t), Some(r)) => println!("reached {:.2}% in {r} rounds ({seconds:.1} s)", 100.0 * t),
        (Some(t), None) => println!("did not reach {:.2}% in {} rounds ({seconds:.1} s)", 100.0 * t, last.round),
        (None, _) => println!("{} rounds in {seconds:.1} s", last.round),
    }
    println!("final accuracy {:.2}%, loss {:.4}", 100.0 * last.accuracy, last.loss);
    if let Some(path) = &args.output {
        let json = serde_json::to_string_pretty(&Output { config: config_json, result: &result, seconds })?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
        println!("results in {}", path.display());
    }
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
