//! `starling aggregate`: any rule over update files, with timings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::ValueEnum;
use serde::Serialize;
use starling_aggregation::dp::DpFedAvg;
use starling_aggregation::{Aggregate, FedAvg, Inputs, Layout, Rule, aggregate_into};

use crate::tensors::{self, UpdateFile};

/// Which rule to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RuleName {
    /// Sample-weighted mean (McMahan et al. 2017).
    Fedavg,
    /// Coordinate-wise median.
    Median,
    /// Coordinate-wise trimmed mean (see --beta).
    TrimmedMean,
    /// Krum (see --byzantine).
    Krum,
    /// Multi-Krum (see --byzantine, --select).
    MultiKrum,
    /// Bulyan (see --byzantine).
    Bulyan,
}

/// A rule and its parameters, as `aggregate` and `simulate` both take them.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RuleArgs {
    /// The aggregation rule.
    #[arg(long, value_enum, default_value = "fedavg")]
    pub(crate) rule: RuleName,
    /// Trimmed mean: fraction cut from each end, in [0, 0.5).
    #[arg(long, default_value_t = 0.1)]
    pub(crate) beta: f64,
    /// Krum, Multi-Krum, Bulyan: the number of Byzantine updates to tolerate.
    #[arg(long, default_value_t = 1)]
    pub(crate) byzantine: usize,
    /// Multi-Krum: how many best-scored updates to average. Default: n − f.
    #[arg(long)]
    pub(crate) select: Option<usize>,
    /// Clip every update to this L2 norm before aggregating.
    #[arg(long)]
    pub(crate) clip: Option<f64>,
}

impl RuleName {
    /// The rule for `n` updates with these parameters.
    pub(crate) fn build(self, n: usize, beta: f64, byzantine: usize, select: Option<usize>) -> Rule {
        let f = byzantine;
        match self {
            RuleName::Fedavg => Rule::FedAvg,
            RuleName::Median => Rule::Median,
            RuleName::TrimmedMean => Rule::TrimmedMean { beta },
            RuleName::Krum => Rule::Krum { byzantine: f },
            RuleName::MultiKrum => Rule::MultiKrum { byzantine: f, select: select.unwrap_or(n.saturating_sub(f)) },
            RuleName::Bulyan => Rule::Bulyan { byzantine: f },
        }
    }
}

impl RuleArgs {
    /// The rule for `n` updates per aggregation.
    pub(crate) fn to_rule(&self, n: usize) -> Rule {
        self.rule.build(n, self.beta, self.byzantine, self.select)
    }
}

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
    demo_opts: crate::aggregate_demo::Options,
    /// The updates, as safetensors files holding the same F32 tensors.
    #[arg(required_unless_present = "demo")]
    inputs: Vec<PathBuf>,
}

/// What one run did, as printed by `--json`.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) rule: &'static str,
    pub(crate) clients: usize,
    pub(crate) parameters: usize,
    pub(crate) input_bytes: u64,
    /// Best time of the rule alone, in seconds.
    pub(crate) seconds: f64,
    pub(crate) seconds_median: f64,
    /// Client input processed per second at the best time, in GB (10⁹ bytes).
    pub(crate) gb_per_s: f64,
    /// Time spent reading input files, in seconds.
    pub(crate) read_seconds: f64,
    pub(crate) selected: Option<Vec<usize>>,
    pub(crate) output: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> Result<()> {
    if args.demo {
        return crate::aggregate_demo::run(&args.demo_opts);
    }
    let output = args.output.clone().expect("clap requires --output without --demo");
    let (report, layout, model) = aggregate_files(&args.inputs, &Spec::from_args(&args)?)?;
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

/// A rule and how to run it, independent of the command line.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) rule: RuleName,
    pub(crate) weights: Vec<f64>,
    pub(crate) beta: f64,
    pub(crate) byzantine: usize,
    pub(crate) select: Option<usize>,
    pub(crate) clip: Option<f64>,
    pub(crate) dp: Option<(DpFedAvg, [u8; 32])>,
    pub(crate) repeat: usize,
}

impl Spec {
    fn from_args(a: &Args) -> Result<Self> {
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
        Ok(Self {
            rule: r.rule,
            weights: a.weights.clone(),
            beta: r.beta,
            byzantine: r.byzantine,
            select: r.select,
            clip: r.clip,
            dp,
            repeat: a.repeat,
        })
    }

    fn rule(&self, n: usize) -> Rule {
        self.rule.build(n, self.beta, self.byzantine, self.select)
    }
}

/// Aggregates the update files at `paths` as `spec` says.
///
/// FedAvg with `repeat == 1` streams: one file in memory at a time, so memory
/// stays at two models whatever the number of inputs. Every other case loads
/// all inputs first and times the rule alone.
pub(crate) fn aggregate_files(paths: &[PathBuf], spec: &Spec) -> Result<(Report, Layout, Vec<f32>)> {
    ensure!(!paths.is_empty(), "no input files");
    ensure!(spec.repeat >= 1, "--repeat must be at least 1");
    let n = paths.len();
    if !spec.weights.is_empty() && spec.weights.len() != n {
        bail!("{} weights given for {n} inputs", spec.weights.len());
    }
    let weight = |i: usize| spec.weights.get(i).copied().unwrap_or(1.0);
    let rule = spec.rule(n);
    let rule_name = if spec.dp.is_some() { "dp-fedavg" } else { rule.name() };
    ensure!(
        n >= rule.min_clients(),
        "{} with these parameters needs at least {} inputs, got {n}",
        rule.name(),
        rule.min_clients()
    );

    if spec.rule == RuleName::Fedavg && spec.repeat == 1 {
        let started = Instant::now();
        let mut read = Duration::ZERO;
        let mut file = UpdateFile::read(&paths[0])?;
        read += started.elapsed();
        let layout = file.layout()?;
        let mut acc = FedAvg::new(&layout);
        if let Some(c) = spec.clip {
            acc = acc.with_clip(c)?;
        }
        let mut input_bytes = 0u64;
        let mut scratch = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            if i > 0 {
                let t = Instant::now();
                file = file.reread(path)?;
                read += t.elapsed();
            }
            input_bytes += (layout.numel() * 4) as u64;
            let view = file.view(&layout, i, &mut scratch)?;
            acc.add(i, &view, weight(i)).with_context(|| format!("{}", path.display()))?;
        }
        let n_added = acc.count();
        let mut model = acc.finish()?;
        if let Some((dp, seed)) = &spec.dp {
            dp.add_noise(&mut model, n_added, seed);
        }
        let seconds = (started.elapsed() - read).as_secs_f64();
        let report = Report {
            rule: rule_name,
            clients: n,
            parameters: layout.numel(),
            input_bytes,
            seconds,
            seconds_median: seconds,
            gb_per_s: input_bytes as f64 / seconds / 1e9,
            read_seconds: read.as_secs_f64(),
            selected: None,
            output: None,
        };
        return Ok((report, layout, model));
    }

    let t = Instant::now();
    let files = paths.iter().map(|p| UpdateFile::read(p)).collect::<Result<Vec<_>>>()?;
    let read = t.elapsed();
    let layout = files[0].layout()?;
    let mut scratch: Vec<Vec<Vec<f32>>> = (0..n).map(|_| Vec::new()).collect();
    let views = files
        .iter()
        .zip(scratch.iter_mut())
        .enumerate()
        .map(|(i, (f, s))| f.view(&layout, i, s))
        .collect::<Result<Vec<_>>>()?;
    let weights: Vec<f64> = (0..n).map(weight).collect();
    let mut times = Vec::with_capacity(spec.repeat);
    let mut result: Option<Aggregate> = None;
    for _ in 0..spec.repeat {
        // Hand the last output back, as a server does round after round.
        let buffer = result.take().map(|r| r.model).unwrap_or_default();
        let t = Instant::now();
        let mut inputs = Inputs::new(&layout, views.clone(), weights.clone())?;
        if let Some(c) = spec.clip {
            inputs = inputs.clip(c)?;
        }
        let out = match &spec.dp {
            Some((dp, seed)) => Aggregate { model: dp.aggregate(&inputs, seed)?, selected: None, scores: None },
            None => aggregate_into(&rule, &inputs, buffer)?,
        };
        times.push(t.elapsed().as_secs_f64());
        result = Some(out);
    }
    let out = result.expect("repeat >= 1");
    times.sort_by(f64::total_cmp);
    let input_bytes = (layout.numel() * 4 * n) as u64;
    let report = Report {
        rule: rule_name,
        clients: n,
        parameters: layout.numel(),
        input_bytes,
        seconds: times[0],
        seconds_median: times[times.len() / 2],
        gb_per_s: input_bytes as f64 / times[0] / 1e9,
        read_seconds: read.as_secs_f64(),
        selected: out.selected,
        output: None,
    };
    Ok((report, layout, out.model))
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
