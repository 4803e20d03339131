//! Aggregating update files with any rule, timed: what `starling aggregate`
//! runs, and its `--demo` runs for every rule.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;
use starling_aggregation::dp::DpFedAvg;
use starling_aggregation::{Aggregate, FedAvg, Inputs, Layout, Rule, aggregate_into};

use crate::rule_flags::RuleArgs;
use crate::tensors::UpdateFile;

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

/// A rule and how to run it, independent of the command line.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The rule, its parameters and the clip.
    pub(crate) rules: RuleArgs,
    /// Per-update weights in input order; empty: 1 each.
    pub(crate) weights: Vec<f64>,
    /// DP-FedAvg's noise and its seed, in place of the rule.
    pub(crate) dp: Option<(DpFedAvg, [u8; 32])>,
    /// How many times to run the rule (at least 1).
    pub(crate) repeat: usize,
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
    let task_rule = spec.rules.to_rule(n)?;
    let rule_name = if spec.dp.is_some() { "dp-fedavg" } else { task_rule.name() };
    let needed = task_rule.min_clients();
    ensure!(n as u64 >= needed, "{} with these parameters needs at least {needed} inputs, got {n}", task_rule.name());
    let rule = Rule::try_from(task_rule)?;

    if rule == Rule::FedAvg && spec.repeat == 1 {
        let started = Instant::now();
        let mut read = Duration::ZERO;
        let mut file = UpdateFile::read(&paths[0])?;
        read += started.elapsed();
        let layout = file.layout()?;
        let mut acc = FedAvg::new(&layout);
        if let Some(c) = spec.rules.clip {
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
        if let Some(c) = spec.rules.clip {
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
