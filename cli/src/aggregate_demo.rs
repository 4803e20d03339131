//! `starling aggregate --demo`: example updates made on the spot, every rule
//! run on them through the same file path as real inputs, and a table of how
//! close each rule lands to what the honest clients meant.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use starling_aggregation::{Layout, TensorInfo};
use starling_models::zoo::ModelKind;

use crate::aggregate_files::{Spec, aggregate_files};
use crate::rule_flags::{RuleArgs, RuleName};
use crate::tensors;

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// Demo: number of clients.
    #[arg(long, default_value_t = 11, requires = "demo")]
    clients: usize,
    /// Demo: how many of them attack (sign-flipped, ×10 updates claiming 1,000 samples each).
    #[arg(long, default_value_t = 2, requires = "demo")]
    attackers: usize,
    /// Demo: RNG seed for the example updates.
    #[arg(long, default_value_t = 1, requires = "demo")]
    seed: u64,
    /// Demo: keep the example update files in this directory (default: a temporary one, removed after).
    #[arg(long, requires = "demo")]
    keep: Option<PathBuf>,
}

/// The MNIST CNN of McMahan et al. 2017 (1,663,370 parameters), as the model
/// zoo lays it out.
fn cnn_layout() -> Layout {
    let tensors = ModelKind::Cnn.tensor_specs().into_iter().map(|t| TensorInfo::new(t.name, t.shape)).collect();
    Layout::new(tensors).expect("the zoo's tensor names are unique")
}

pub(crate) fn run(opts: &Options) -> Result<()> {
    let n = opts.clients;
    let bad = opts.attackers;
    ensure!(n >= 3 && bad < n, "the demo needs at least 3 clients and at least one honest one");
    let layout = cnn_layout();
    let (dir, temporary) = match &opts.keep {
        Some(dir) => (dir.clone(), false),
        None => (std::env::temp_dir().join(format!("starling-demo-{}", std::process::id())), true),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = write_and_compare(&dir, &layout, opts);
    if temporary {
        std::fs::remove_dir_all(&dir).ok();
    }
    result
}

fn write_and_compare(dir: &Path, layout: &Layout, opts: &Options) -> Result<()> {
    let (n, bad, d) = (opts.clients, opts.attackers, layout.numel());
    let (paths, weights, honest_mean) = demo_in(dir, layout, n, bad, opts.seed)?;

    println!(
        "{n} clients ({} honest, {bad} attacking) × {d} parameters (the FedAvg paper's MNIST CNN), seed {}",
        n - bad,
        opts.seed
    );
    println!("honest clients send the true update plus noise; attackers send −10× it and claim 1,000 samples\n");
    println!("{:<13} {:>10} {:>9} {:>13}  selected", "rule", "time ms", "GB/s", "error vs true");
    let byzantine = u32::try_from(bad.max(1)).context("too many attackers")?;
    let rules = [
        RuleName::Fedavg,
        RuleName::Median,
        RuleName::TrimmedMean,
        RuleName::Krum,
        RuleName::MultiKrum,
        RuleName::Bulyan,
    ];
    for rule in rules {
        let rules =
            RuleArgs { rule, beta: (bad as f64 / n as f64 + 1e-9).min(0.49), byzantine, select: None, clip: None };
        let needed = rules.to_rule(n)?.min_clients();
        if (n as u64) < needed {
            println!("{:<13} needs at least {needed} clients", rule.flag_name());
            continue;
        }
        let spec = Spec { rules, weights: weights.clone(), dp: None, repeat: 3 };
        let (report, out_layout, model) = match aggregate_files(&paths, &spec) {
            Ok(r) => r,
            Err(e) => {
                println!("{:<13} {e:#}", rule.flag_name());
                continue;
            }
        };
        // The output follows the files' tensor order, which need not be ours.
        let err = relative_error(layout, &honest_mean, &out_layout, &model);
        let selected = report.selected.map(|s| format!("{s:?}")).unwrap_or_default();
        println!(
            "{:<13} {:>10.2} {:>9.2} {:>12.1}%  {selected}",
            report.rule,
            report.seconds * 1e3,
            report.gb_per_s,
            err * 100.0
        );
    }
    println!(
        "\nerror = ‖aggregate − true update‖ / ‖true update‖; attackers are clients {:?}",
        (n - bad..n).collect::<Vec<_>>()
    );
    Ok(())
}

/// Writes the example updates; returns their paths, weights and the true update.
fn demo_in(dir: &Path, layout: &Layout, n: usize, bad: usize, seed: u64) -> Result<(Vec<PathBuf>, Vec<f64>, Vec<f32>)> {
    let d = layout.numel();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let signal = Normal::new(0.0f32, 0.01).expect("valid");
    let noise = Normal::new(0.0f32, 0.005).expect("valid");
    let truth: Vec<f32> = (0..d).map(|_| signal.sample(&mut rng)).collect();
    let mut paths = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for k in 0..n {
        let attacker = k >= n - bad;
        let update: Vec<f32> = truth
            .iter()
            .map(|&t| if attacker { -10.0 * t + noise.sample(&mut rng) } else { t + noise.sample(&mut rng) })
            .collect();
        let path = dir.join(format!("client_{k:03}.safetensors"));
        tensors::write(&path, layout, &update, HashMap::new())?;
        paths.push(path);
        weights.push(if attacker { 1000.0 } else { f64::from(rng.random_range(100u32..600)) });
    }
    Ok((paths, weights, truth))
}

fn relative_error(layout: &Layout, want: &[f32], got_layout: &Layout, got: &[f32]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (t, w) in layout.split(want) {
        let i = got_layout.index_of(&t.name).expect("same tensors");
        for (&g, &w) in got[got_layout.range(i)].iter().zip(w) {
            num += f64::from(g - w).powi(2);
            den += f64::from(w).powi(2);
        }
    }
    (num / den).sqrt()
}
