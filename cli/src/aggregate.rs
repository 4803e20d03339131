//! `starling aggregate`: any rule over update files, with timings.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Result, ensure};
use starling_aggregation::dp::DpFedAvg;

use crate::aggregate_demo;
use crate::aggregate_files::{Report, Spec, aggregate_files};
use crate::rule_flags::{RuleArgs, RuleName};
use crate::tensors;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    rules: RuleArgs,
    /// Per-update weights (sample counts), comma-separated, in input order. Default: 1 each.
    #[arg(long, value_delimiter = ',')]
    weights: Vec<f64>,
    /// DP-FedAvg (McMahan et al. 2018): add Gaussian noise of σ·S to the sum of
    /// the updates clipped to S (needs --clip S and --rule fedavg; every update
    /// counts once, so --weights is refused).
    #[arg(long, value_name = "SIGMA", requires = "clip")]
    noise_multiplier: Option<f64>,
    /// Seed of the DP noise, for reproducible runs. Default: a fresh random
    /// seed (the privacy guarantee needs a secret, never reused seed).
    #[arg(long, requires = "noise_multiplier")]
    noise_seed: Option<u64>,
    /// Load every input into memory, then run the rule N times and report the
    /// best and median time of the rule alone (for benchmarking).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Where to write the aggregate (safetensors).
    #[arg(long, short, required_unless_present = "demo")]
    output: Option<PathBuf>,
    /// Make example updates (honest clients and attackers, CNN-sized), run
    /// every rule on them and compare how close each gets to the honest mean.
    #[arg(long, conflicts_with_all = ["inputs", "output", "rule", "weights"])]
    demo: bool,
    #[command(flatten)]
    demo_opts: aggregate_demo::Options,
    /// The updates, as safetensors files holding the same F32 tensors.
    #[arg(required_unless_present = "demo")]
    inputs: Vec<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    if args.demo {
        return aggregate_demo::run(&args.demo_opts);
    }
    let output = args.output.clone().expect("clap requires --output without --demo");
    let (report, layout, model) = aggregate_files(&args.inputs, &spec(&args)?)?;
    let meta = HashMap::from([
        ("starling.rule".to_owned(), report.rule.to_owned()),
        ("starling.clients".to_owned(), report.clients.to_string()),
    ]);
    tensors::write(&output, &layout, &model, meta)?;
    let report = Report { output: Some(output), ..report };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The command line's rule, weights, DP noise and repeats, checked.
fn spec(a: &Args) -> Result<Spec> {
    let r = &a.rules;
    let dp = match (a.noise_multiplier, r.clip) {
        (Some(sigma), Some(clip)) => {
            ensure!(r.rule == RuleName::Fedavg, "--noise-multiplier applies to --rule fedavg only");
            ensure!(a.weights.is_empty(), "DP-FedAvg counts every update once: drop --weights");
            let seed = match a.noise_seed {
                Some(s) => {
                    let mut seed = [0u8; 32];
                    seed[..8].copy_from_slice(&s.to_le_bytes());
                    seed
                }
                None => rand::random(),
            };
            Some((DpFedAvg::new(clip, sigma)?, seed))
        }
        _ => None,
    };
    Ok(Spec { rules: r.clone(), weights: a.weights.clone(), dp, repeat: a.repeat })
}

fn print_report(r: &Report) {
    println!(
        "{}: {} updates × {} parameters ({:.1} MB of client input)",
        r.rule,
        r.clients,
        r.parameters,
        r.input_bytes as f64 / 1e6
    );
    println!(
        "  aggregated in {:.2} ms ({:.2} GB/s){}; read inputs in {:.2} ms",
        r.seconds * 1e3,
        r.gb_per_s,
        if r.seconds_median != r.seconds {
            format!(", median {:.2} ms", r.seconds_median * 1e3)
        } else {
            String::new()
        },
        r.read_seconds * 1e3
    );
    if let Some(sel) = &r.selected {
        println!("  selected updates: {sel:?}");
    }
    if let Some(out) = &r.output {
        println!("  wrote {}", out.display());
    }
}
